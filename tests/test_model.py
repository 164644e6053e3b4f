"""Tests of hamforge.model: SO(2) convolution, equivariance/invariances, smooth cutoff, heads, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hamforge import so3
from hamforge.graph import neighbor_list
from hamforge.model import (
    EDGE_INDEX,
    EDGE_OUT,
    EDGE_OVERLAP,
    EDGE_VEC,
    NODE_OUT,
    NODE_OVERLAP,
    NUMBERS,
    EdgeWigner,
    HamiltonianModel,
    ModelConfig,
    SO2Convolution,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    so2_convolution_reference,
)
from hamforge.model._nn import scatter_softmax_weighted

NODE_IRREPS = "3x0e+2x1o+2x2e+1x3o+1x4e"
EDGE_IRREPS = "4x0e+3x1o+2x2e+1x3o+1x4e"
R_CUT = 4.0


def _config(**kw) -> ModelConfig:
    base = dict(
        species=(0, 8, 72),
        node_irreps=NODE_IRREPS,
        edge_irreps=EDGE_IRREPS,
        r_cut=R_CUT,
        n_layers=2,
        predict_overlap=True,
    )
    base.update(kw)
    return ModelConfig(**base)


def _structure(seed: int = 0, n: int = 6, length: float = 5.0):
    """A few atoms in a skewed periodic cell: positions (n, 3), cell (3, 3), numbers (n,)."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * length + rng.normal(size=(3, 3)) * 0.3
    pos = rng.uniform(size=(n, 3)) @ cell
    numbers = rng.choice([0, 8, 72], size=n)
    return pos, cell, numbers


def _graph(numbers, nl) -> dict:
    return {
        NUMBERS: torch.as_tensor(np.array(numbers), dtype=torch.int64),
        EDGE_INDEX: torch.as_tensor(np.array(nl.edge_index)),
        EDGE_VEC: torch.as_tensor(np.array(nl.vec)),
    }


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.linalg.det(q)


def _slot_wigner(terms, rot: torch.Tensor) -> torch.Tensor:
    """Block-diagonal D over every output slot of an irreps layout (columns as in the Irreps string)."""
    return torch.block_diag(*[so3.wigner_D(l, rot) for mul, l in terms for _ in range(mul)])


# ----------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "field, value, match",
    [
        ("species", (), "species"),
        ("species", (8, 8), "species"),
        ("species", (-1,), "species"),
        ("node_irreps", "bogus", "node_irreps"),
        ("edge_irreps", "1x5e", "edge_irreps"),  # l = 5 > l_max = 4
        ("r_cut", 0.0, "r_cut"),
        ("r_cut", float("nan"), "r_cut"),
        ("l_max", -1, "l_max"),
        ("m_max", 5, "m_max"),
        ("embed_dim", 15, "embed_dim"),  # not divisible by n_heads = 2
        ("n_layers", 0, "n_layers"),
        ("n_radial", 1, "n_radial"),
        ("envelope", "gauss", "envelope"),
        ("strictly_local", 1, "strictly_local"),
        ("ffn_dim", 2.5, "ffn_dim"),
        ("layer_norm", "batch", "layer_norm"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        _config(**{field: value})


def test_config_dict_round_trip_and_defaults():
    cfg = _config(species=[72, 8, 0])
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain types only
    assert ModelConfig.from_dict(d) == cfg
    assert cfg.species == (0, 8, 72) and cfg.m_max == cfg.l_max == 4  # m_max None -> l_max
    assert (cfg.embed_dim, cfg.n_heads, cfg.ffn_dim) == (16, 2, 64)  # the papers' hyperparameters
    assert cfg.node_dim == 3 + 2 * 3 + 2 * 5 + 7 + 9 and cfg.halo == 2
    assert _config(strictly_local=True, n_layers=3).halo == 1
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**d, "typo": 1})
    with pytest.raises(ValueError, match="missing required keys"):
        ModelConfig.from_dict({k: v for k, v in d.items() if k != "r_cut"})


# ----------------------------------------------------------------------------------------- SO(2) conv
def _conv_inputs(l_max, m_max, c_in=5, c_out=3, e=13, seed=0, scalar_input=False):
    gen = torch.Generator().manual_seed(seed)
    conv = SO2Convolution(l_max, m_max, c_in, c_out, n_extra=4, scalar_input=scalar_input)
    conv._reset(gen)
    conv = conv.double()
    vec = torch.randn(e, 3, generator=gen, dtype=torch.float64)
    vec[0] = torch.tensor([0.0, 0.0, 1.5])  # +z: identity frame
    vec[1] = torch.tensor([0.0, 0.0, -2.0])  # -z: the discontinuous point of the frame choice
    x = torch.randn(e, 1 if scalar_input else (l_max + 1) ** 2, c_in, generator=gen, dtype=torch.float64)
    radial = torch.randn(e, conv.radial_size, generator=gen, dtype=torch.float64)
    return conv, vec, x, radial


@pytest.mark.parametrize(
    "l_max, m_max, scalar_input",
    [(4, 4, False), (4, 2, False), (6, 6, False), (3, 0, False), (0, 0, False), (4, 4, True), (2, 1, True)],
)
def test_so2_fast_equals_reference(l_max, m_max, scalar_input):
    conv, vec, x, radial = _conv_inputs(l_max, m_max, scalar_input=scalar_input)
    wigner = EdgeWigner.from_vectors(vec, l_max, m_max)
    for rad in (radial, None):
        y, extra = conv(x, wigner, rad)
        y_ref, extra_ref = so2_convolution_reference(conv, x, wigner.rotations, rad)
        # float64, same parameters, different summation order: a few ulps of O(10) sums
        assert torch.allclose(y, y_ref, rtol=0, atol=1e-12)
        assert torch.allclose(extra, extra_ref, rtol=0, atol=1e-12)
        assert y.abs().max() > 0.1  # non-trivial
        if l_max > 0:
            assert y[:, 1:].abs().max() > 0.1  # l > 0 output, also from scalar input


@pytest.mark.parametrize("l_max, m_max", [(4, 4), (4, 2)])
def test_so2_equivariance(l_max, m_max, dtype_tol):
    dtype, tol = dtype_tol
    conv, vec, x, radial = _conv_inputs(l_max, m_max)
    conv, vec, x, radial = conv.to(dtype), vec.to(dtype), x.to(dtype), radial.to(dtype)
    rot = torch.as_tensor(_rotation(3), dtype=dtype)
    d = torch.block_diag(*[so3.wigner_D(l, rot) for l in range(l_max + 1)])
    y, extra = conv(x, EdgeWigner.from_vectors(vec, l_max, m_max), radial)
    y_rot, extra_rot = conv(d @ x, EdgeWigner.from_vectors(vec @ rot.T, l_max, m_max), radial)
    scale = max(1.0, float(y.detach().abs().max()))
    # Wigner-D and GEMMs of O(10) terms: tol is a few hundred ulps of O(1) values (conftest), scaled
    assert (y_rot - d @ y).abs().max() <= tol * scale
    assert (extra_rot - extra).abs().max() <= tol * scale  # invariant scalars


def test_so2_creates_higher_l_from_scalars_and_drops_high_m():
    l_max, m_max = 4, 2
    conv, vec, x, radial = _conv_inputs(l_max, m_max)
    x = torch.zeros_like(x)
    x[:, 0] = 1.0  # scalars only
    wigner = EdgeWigner.from_vectors(vec, l_max, m_max)
    y, _ = conv(x, wigner, radial)
    for l in range(1, l_max + 1):
        assert y[:, l * l : (l + 1) ** 2].abs().max() > 1e-2, f"no l={l} output from l=0 input"
    # in the edge frame orders |m| > m_max are exactly zero
    x = torch.randn_like(x)
    y, _ = conv(x, wigner, radial)
    dense = torch.block_diag(*[so3.wigner_D(l, wigner.rotations[2]) for l in range(l_max + 1)])
    y_edge = dense @ y[2]
    high = [l * l + l + m for l in range(3, l_max + 1) for m in range(-l, l + 1) if abs(m) > m_max]
    assert y_edge[high].abs().max() < 1e-12  # float64 rotation round trip
    assert y_edge.abs().max() > 0.1


def test_weighted_scatter_softmax():
    logits = torch.tensor([[1.0, 0.0], [2.0, 5.0], [0.5, 1.0], [3.0, -1.0]], dtype=torch.float64)
    index = torch.tensor([0, 0, 1, 1])
    w = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    a = scatter_softmax_weighted(logits, w, index, 3)
    assert torch.allclose(a[:2], torch.softmax(logits[:2], dim=0), atol=1e-15)
    assert torch.equal(a[2:], torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64))  # w = 0 ignored
    big = scatter_softmax_weighted(logits * 1e3, torch.ones(4, dtype=torch.float64), index, 3)
    assert torch.isfinite(big).all()  # max-stabilised


# -------------------------------------------------------------------------------------- whole model
@pytest.mark.parametrize(
    "strict, layer_norm, edge_ffn, net_r_cut",
    [(False, "joint", True, None), (True, "joint", False, None), (False, "per_l", True, 3.0)],
)
def test_model_rotation_equivariance(strict, layer_norm, edge_ffn, net_r_cut, dtype_tol):
    dtype, tol = dtype_tol
    cfg = _config(
        strictly_local=strict,
        layer_norm=layer_norm,
        edge_ffn=edge_ffn,
        edge_reads_updated=not strict,
        net_r_cut=net_r_cut,
    )
    model = _with_baseline_and_scales(HamiltonianModel(cfg, seed=1)).to(dtype)
    pos, cell, numbers = _structure(0)
    nl = neighbor_list(pos, cell, True, R_CUT)
    for seed in (1, 2):
        q = _rotation(seed)
        nl_rot = neighbor_list(pos @ q.T, cell @ q.T, True, R_CUT)
        assert np.array_equal(nl_rot.edge_index, nl.edge_index) and np.array_equal(nl_rot.shift, nl.shift)
        out, out_rot = model(_graph(numbers, nl)), model(_graph(numbers, nl_rot))
        rot = torch.as_tensor(q, dtype=dtype)
        for key, terms in [
            (NODE_OUT, cfg.node_terms),
            (EDGE_OUT, cfg.edge_terms),
            (NODE_OVERLAP, cfg.node_terms),
            (EDGE_OVERLAP, cfg.edge_terms),
        ]:
            d = _slot_wigner(terms, rot)
            scale = max(1.0, float(out[key].detach().abs().max()))
            # float32: Wigner-D of l = 4 is ~1e-6 accurate, two layers + layer norms amplify it; measured
            # <= 1.4e-5 for outputs ~4. float64: ~4e-14. tol (conftest) times the output scale.
            assert (out_rot[key] - out[key] @ d.T).abs().max() <= tol * scale, key
            assert out[key].dtype == dtype and torch.isfinite(out[key]).all()
        # outputs of every L are non-trivial (the first SO(2) conv builds l > 0 from scalars)
        col = 0
        for mul, l in cfg.edge_terms:
            block = out[EDGE_OUT][:, col : col + mul * (2 * l + 1)]
            assert block.abs().max() > 1e-2, f"edge output L={l} is zero"
            col += mul * (2 * l + 1)


def _with_baseline_and_scales(model, seed=5):
    """Random physics-baseline coefficients and per-(kind (pair), copy) output scales: both must keep the model
    equivariant (the baselines are M = 0 values rotated back; a scale is constant over each copy's 2L+1 columns)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in (model.baseline.edge_coef, model.baseline.node_coef, model.baseline.node_const):
            b.copy_(torch.randn(b.shape, generator=g) * 0.3)
    cfg = model.config
    scales = []
    for terms, lead in ((cfg.node_terms, (len(cfg.species),)), (cfg.edge_terms, (len(cfg.species),) * 2)):
        per_copy = [
            torch.rand(lead + (1,), generator=g).expand(lead + (2 * L + 1,)) + 0.5
            for mul, L in terms
            for _ in range(mul)
        ]
        scales.append(torch.cat(per_copy, dim=-1))
    model.set_output_scaling(*scales)
    return model


def test_uncoupled_blocks_transform_as_orbital_blocks():
    # edge output = coupled (p, d) block, node output = coupled (d, d) block: after uncouple() the blocks
    # must transform as H' = D^la H D^lb^T (float64: 1e-12, a few ulps of the rotations and CG sums)
    cfg = _config(edge_irreps=so3.pair_irreps(1, 2), node_irreps=so3.pair_irreps(2, 2), predict_overlap=False)
    model = HamiltonianModel(cfg, seed=2).double()
    pos, cell, numbers = _structure(1)
    q = _rotation(7)
    nl = neighbor_list(pos, cell, True, R_CUT)
    nl_rot = neighbor_list(pos @ q.T, cell @ q.T, True, R_CUT)
    out, out_rot = model(_graph(numbers, nl)), model(_graph(numbers, nl_rot))
    rot = torch.as_tensor(q)
    d1, d2 = so3.wigner_D(1, rot), so3.wigner_D(2, rot)
    b, b_rot = so3.uncouple(out[EDGE_OUT], 1, 2), so3.uncouple(out_rot[EDGE_OUT], 1, 2)  # (E, 3, 5)
    assert (b_rot - d1 @ b @ d2.T).abs().max() < 1e-12
    h, h_rot = so3.uncouple(out[NODE_OUT], 2, 2), so3.uncouple(out_rot[NODE_OUT], 2, 2)
    assert (h_rot - d2 @ h @ d2.T).abs().max() < 1e-12
    assert b.abs().max() > 1e-2 and h.abs().max() > 1e-2


def test_translation_invariance_and_wrapped_positions():
    cfg = _config()
    model = HamiltonianModel(cfg, seed=3).double()
    pos, cell, numbers = _structure(2)
    out = model(_graph(numbers, neighbor_list(pos, cell, True, R_CUT)))
    for shift in (np.array([0.37, -1.2, 2.9]), cell[0] * 2 - cell[2]):  # arbitrary, and a lattice vector
        out_t = model(_graph(numbers, neighbor_list(pos + shift, cell, True, R_CUT)))
        for key in out:
            # edge vectors differ only by rounding of x_j - x_i (~1e-15 Angstrom); float64
            assert (out_t[key] - out[key]).abs().max() < 1e-12, key


def test_atom_permutation_equivariance():
    cfg = _config()
    model = HamiltonianModel(cfg, seed=4).double()
    pos, cell, numbers = _structure(3, n=7)
    nl = neighbor_list(pos, cell, True, R_CUT)
    perm = np.random.default_rng(0).permutation(len(numbers))  # new atom a = old atom perm[a]
    nl_p = neighbor_list(pos[perm], cell, True, R_CUT)
    out, out_p = model(_graph(numbers, nl)), model(_graph(numbers[perm], nl_p))
    key_of = {
        (int(i), int(j), *map(int, s)): e
        for e, (i, j, s) in enumerate(zip(nl.edge_index[0], nl.edge_index[1], nl.shift))
    }
    match = [
        key_of[(int(perm[a]), int(perm[b]), *map(int, s))]
        for a, b, s in zip(nl_p.edge_index[0], nl_p.edge_index[1], nl_p.shift)
    ]
    assert len(match) == nl.n_edges and sorted(match) == list(range(nl.n_edges))
    # same sums in another order: float64 rounding only
    for key in (NODE_OUT, NODE_OVERLAP):
        assert (out_p[key] - out[key][perm]).abs().max() < 1e-12
    for key in (EDGE_OUT, EDGE_OVERLAP):
        assert (out_p[key] - out[key][match]).abs().max() < 1e-12


def _dimer_outputs(model, r: float, direction=(1.0, 0.0, 0.0)):
    u = np.asarray(direction, dtype=np.float64)
    pos = np.stack([np.zeros(3), r * u / np.linalg.norm(u)])
    nl = neighbor_list(pos, np.zeros((3, 3)), False, R_CUT)
    with torch.no_grad():
        return nl.n_edges, model(_graph(np.array([8, 72]), nl))


@pytest.mark.parametrize("envelope, order", [("polynomial", 3), ("cosine", 2)])
def test_smooth_cutoff(envelope, order):
    """Edge outputs and the change of node outputs vanish like (r_cut - r)^order; derivatives too."""
    model = HamiltonianModel(_config(envelope=envelope, n_layers=1), seed=5).double()
    n_far, far = _dimer_outputs(model, R_CUT + 0.5)
    assert n_far == 0 and far[EDGE_OUT].shape == (0, model.config.edge_dim)
    n_at, at = _dimer_outputs(model, R_CUT)  # inclusive cutoff: the edge exists, with envelope 0
    assert n_at == 2
    for key in (EDGE_OUT, EDGE_OVERLAP):
        assert torch.equal(at[key], torch.zeros_like(at[key]))
    for key in (NODE_OUT, NODE_OVERLAP):
        assert torch.equal(at[key], far[key])  # an edge at r_cut changes nothing, bit for bit

    def f(h):
        _, out = _dimer_outputs(model, R_CUT - h)
        return out[EDGE_OUT], out[NODE_OUT] - far[NODE_OUT]

    hs = [4e-2, 2e-2, 1e-2]
    vals = [f(h) for h in hs]
    for a, b in zip(vals[:-1], vals[1:]):
        for va, vb in zip(a, b):
            ratio = float(va.abs().max() / vb.abs().max())
            assert 0.7 * 2**order < ratio < 1.4 * 2**order  # halving h divides the value by 2^order
    # one-sided finite-difference derivative d/dr at r_cut - h goes to 0 like h^(order-1)
    step = 1e-5
    deriv = [(f(h - step)[0] - f(h)[0]) / step for h in hs]
    assert float(deriv[0].abs().max()) > 0
    ratio = float(deriv[1].abs().max() / deriv[2].abs().max())
    assert 0.7 * 2 ** (order - 1) < ratio < 1.4 * 2 ** (order - 1)


def test_edges_along_z_are_finite_and_equivariant():
    cfg = _config()
    model = HamiltonianModel(cfg, seed=6).double()
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.7], [0.0, 0.0, -2.1], [1.3, 0.4, 0.2]])
    numbers = np.array([8, 72, 8, 0])
    nl = neighbor_list(pos, np.zeros((3, 3)), False, R_CUT)
    z_edges = np.flatnonzero((nl.vec[:, 0] == 0) & (nl.vec[:, 1] == 0))
    assert len(z_edges) >= 4  # +z and -z edges present
    graph = _graph(numbers, nl)
    out = model(graph)
    loss = sum(v.pow(2).sum() for v in out.values())
    loss.backward()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # the -z frame is a limit choice; equivariance holds there too (compare with a generic rotation)
    q = _rotation(11)
    nl_rot = neighbor_list(pos @ q.T, np.zeros((3, 3)), False, R_CUT)
    out_rot = model(_graph(numbers, nl_rot))
    rot = torch.as_tensor(q)
    for key, terms in [(EDGE_OUT, cfg.edge_terms), (NODE_OUT, cfg.node_terms)]:
        assert (out_rot[key] - out[key] @ _slot_wigner(terms, rot).T).abs().max() < 1e-12


def test_every_parameter_gets_a_gradient():
    # no unused parameters: DistributedDataParallel works without find_unused_parameters
    for strict in (False, True):
        model = HamiltonianModel(_config(strictly_local=strict, edge_ffn=strict), seed=0)
        pos, cell, numbers = _structure(4)
        out = model(_graph(numbers, neighbor_list(pos, cell, True, R_CUT)))
        sum((v * torch.linspace(-1, 1, v.shape[1])).sum() for v in out.values()).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().max() > 0]
        # the attention logits of a node with a single incoming edge have no gradient, but here every node
        # has several, so everything must be reached
        assert not missing, missing


def test_deterministic_init_and_dtypes():
    cfg = _config()
    a, b, c = HamiltonianModel(cfg, seed=7), HamiltonianModel(cfg, seed=7), HamiltonianModel(cfg, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    pos, cell, numbers = _structure(5)
    g = _graph(numbers, neighbor_list(pos, cell, True, R_CUT))
    o32, o64 = a(g), HamiltonianModel(cfg, seed=7).double()(g)
    for key in o32:  # same weights (float32 values upcast): float32 round-off of O(1) outputs
        assert (o32[key].double() - o64[key]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="seed"):
        HamiltonianModel(cfg, seed=1.5)


def test_overlap_head_two_centre_structure():
    cfg = _config()
    model = HamiltonianModel(cfg, seed=9).double()
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 4.5]])  # edges along +-z only
    nl = neighbor_list(pos, np.zeros((3, 3)), False, R_CUT)
    out = model(_graph(np.array([8, 72, 8]), nl))
    col, m0 = 0, []
    for mul, l in cfg.edge_terms:
        for _ in range(mul):
            m0.append(col + l)  # M = 0 column of this slot
            col += 2 * l + 1
    others = np.setdiff1d(np.arange(cfg.edge_dim), m0)
    s = out[EDGE_OVERLAP]
    assert s[:, others].abs().max() < 1e-14  # along z only M = 0 survives (float64 rotation round trip)
    assert s[:, m0].abs().max() > 1e-2
    # node overlap: a per-species constant on the L = 0 slots, zero elsewhere
    sn = out[NODE_OVERLAP]
    assert torch.equal(sn[0], sn[2]) and not torch.equal(sn[0], sn[1])
    assert torch.count_nonzero(sn[:, 3:]) == 0 and torch.count_nonzero(sn[:, :3]) == 9
    n_overlap = sum(p.numel() for p in model.overlap.parameters())
    assert n_overlap < 0.01 * sum(p.numel() for p in model.parameters())  # "~1% extra parameters"


def test_graph_validation_errors():
    model = HamiltonianModel(_config(), seed=0)
    pos, cell, numbers = _structure(6)
    g = _graph(numbers, neighbor_list(pos, cell, True, R_CUT))
    with pytest.raises(ValueError, match="edge_vec"):
        model({k: v for k, v in g.items() if k != EDGE_VEC})
    with pytest.raises(ValueError, match="edge_index"):
        model({**g, EDGE_INDEX: g[EDGE_INDEX].T})
    with pytest.raises(ValueError, match="edge_index"):
        model({**g, EDGE_INDEX: g[EDGE_INDEX] + 100})
    with pytest.raises(ValueError, match="edge_vec"):
        model({**g, EDGE_VEC: g[EDGE_VEC][:-1]})
    with pytest.raises(ValueError, match=r"\[14\]"):
        model({**g, NUMBERS: torch.full_like(g[NUMBERS], 14)})
    with pytest.raises(ValueError, match="zero-length"):
        model({**g, EDGE_VEC: torch.zeros_like(g[EDGE_VEC])})
    with pytest.raises(ValueError, match="numbers"):
        model({**g, NUMBERS: g[NUMBERS].double()})


def test_checkpoint_round_trip(tmp_path):
    cfg = _config(strictly_local=True, n_layers=1)
    model = HamiltonianModel(cfg, seed=10).double()
    with torch.no_grad():  # move away from the init so a fresh model would differ
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, model, extra={"epoch": 3, "scale": torch.tensor([1.5])})
    assert torch.load(path, weights_only=True)["config"] == cfg.to_dict()  # plain, weights_only-safe
    loaded = load_checkpoint(path)
    assert loaded.dtype == torch.float64 and loaded.config == cfg and not loaded.training
    pos, cell, numbers = _structure(7)
    g = _graph(numbers, neighbor_list(pos, cell, True, R_CUT))
    a, b = model(g), loaded(g)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical
    ck = read_checkpoint(path)
    assert ck.extra["epoch"] == 3 and torch.equal(ck.extra["scale"], torch.tensor([1.5]))
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary left behind
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something else"}, bad)
    with pytest.raises(ValueError, match="not a hamforge.model checkpoint"):
        load_checkpoint(bad)
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        load_checkpoint(bad)


def test_net_r_cut_leaves_the_longer_edges_to_the_baselines():
    cfg = _config(net_r_cut=3.0)
    model = _with_baseline_and_scales(HamiltonianModel(cfg, seed=1)).double()
    pos, cell, numbers = _structure(0)
    nl = neighbor_list(pos, cell, True, R_CUT)
    long = torch.as_tensor(nl.dist >= 3.0)
    assert long.any() and (~long).any()
    from hamforge.train import baseline_only

    with torch.no_grad():
        out, base = model(_graph(numbers, nl)), baseline_only(model)(_graph(numbers, nl))
    # beyond net_r_cut exactly the baselines (the network's part is not computed there); inside, the network adds
    assert torch.equal(out[EDGE_OUT][long], base[EDGE_OUT][long])
    assert (out[EDGE_OUT][~long] - base[EDGE_OUT][~long]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="net_r_cut"):
        _config(net_r_cut=0.0)
    wide = HamiltonianModel(_config(net_r_cut=5.0), seed=1).double()  # beyond r_cut: the network on every edge
    wide.load_state_dict(HamiltonianModel(_config(), seed=1).double().state_dict())
    with torch.no_grad():
        same = HamiltonianModel(_config(), seed=1).double()(_graph(numbers, nl))[EDGE_OUT]
        assert torch.equal(wide(_graph(numbers, nl))[EDGE_OUT], same)

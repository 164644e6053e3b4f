"""Prediction on tiled structures (hamforge.predict): tiling exactness, streamed == full graph, symmetry and its
report, per-image matrices, exact S, exports, bad input.

Model: untrained, seeded random weights, float64, built by ModelConfig.from_targets on a small synthetic
Si/C structure with real CP2K bases (SZV-MOLOPT-SR-GTH, s + p), so the exact overlaps can be computed.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hamforge.basis import ElementBasis, orbital_table, overlap_blocks, overlap_matrix, overlap_range
from hamforge.graph import build_targets, neighbor_list
from hamforge.io import MatrixData, Structure, read_matrix_file, write_matrix_file
from hamforge.model import EDGE_OUT, HamiltonianModel, ModelConfig, save_checkpoint
from hamforge.predict import (
    DEFAULT_OVERLAP_EPS,
    PredictError,
    predict_file,
    predict_structure,
    write_prediction,
)

SIC = {"Si": ElementBasis("Si", "SZV-MOLOPT-SR-GTH", (0, 1)), "C": ElementBasis("C", "SZV-MOLOPT-SR-GTH", (0, 1))}
R_CUT = 3.6


def unit_cell(seed=0):
    """8-atom diamond-like Si6C2 cell (5.43 Angstrom, < 2 r_cut: multiply connected pairs, no self-images at 3.6)."""
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    cell = np.diag([5.43, 5.43 * 1.02, 5.43 * 0.99])
    x = np.concatenate([base, base + 0.25]) @ cell + rng.normal(0, 0.08, (8, 3))
    kinds = np.array(["Si"] * 6 + ["C"] * 2, dtype=object)
    return Structure(
        numbers=np.where(kinds == "Si", 14, 6), positions=x, cell=cell, pbc=np.ones(3, bool), kinds=kinds, source="unit"
    )


def model_for(structure, n_layers=2, seed=1, **options):
    """Untrained float64 model of ``structure``'s kinds (``options``: more ModelConfig fields)."""
    n = orbital_table(structure.kinds, SIC).n_orbitals
    eye = sp.identity(n, format="csr")
    d = MatrixData(
        numbers=structure.numbers,
        positions=structure.positions,
        cell=structure.cell,
        pbc=structure.pbc,
        kinds=structure.kinds,
        basis=SIC,
        H=eye,
        S=eye,
    )
    t = build_targets(d, R_CUT)
    cfg = ModelConfig.from_targets(
        t, l_max=2, embed_dim=4, n_heads=1, ffn_dim=8, n_layers=n_layers, n_radial=6, radial_hidden=8, **options
    )
    return HamiltonianModel(cfg, seed=seed).to(torch.float64)


@pytest.fixture(scope="module")
def unit_and_model():
    s = unit_cell()
    return s, model_for(s)


def _edge_key(nl, n_atoms):
    i, j = nl.edge_index
    r = nl.shift + 50
    return ((i * n_atoms + j) * 101 + r[:, 0]) * 101**2 + r[:, 1] * 101 + r[:, 2]


def test_tiled_prediction_equals_unit_cell_blocks_mapped(unit_and_model):
    unit, model = unit_and_model
    pu = predict_structure(model, unit, overlap=False, n_parts=1, progress=False)
    reps = np.array([2, 2, 2])
    big = unit.tile(reps)
    pb = predict_structure(model, big, overlap=False, n_parts=3, progress=False)
    n = unit.n_atoms
    i, j = pb.nl.edge_index
    ca, cb = np.divmod(i, n)[0], np.divmod(j, n)[0]
    copies = np.indices(reps).reshape(3, -1).T
    # supercell edge (a', b', R') = unit edge (a, b, c_b - c_a + reps R') (geometry/_tile.py)
    r_unit = copies[cb] - copies[ca] + reps * pb.nl.shift
    key = ((i % n * n + j % n) * 101 + r_unit[:, 0] + 50) * 101**2 + (r_unit[:, 1] + 50) * 101 + r_unit[:, 2] + 50
    ukey = _edge_key(pu.nl, n)
    order = np.argsort(ukey)
    pos = order[np.searchsorted(ukey[order], key)]
    assert np.array_equal(ukey[pos], key)  # every supercell edge is a unit-cell edge
    assert pb.nl.n_edges == pu.nl.n_edges * 8
    for p in range(0, pb.nl.n_edges, 7):
        # float64 network, sums over neighbours in another order: rounding only (1e-12 Hartree)
        np.testing.assert_allclose(pb.H_edges.block(p), pu.H_edges.block(int(pos[p])), rtol=0, atol=1e-12)
    got = pb.H_nodes.data.reshape(8, -1)
    np.testing.assert_allclose(got, np.broadcast_to(pu.H_nodes.data, got.shape), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method,n_layers", [("lownn", 2), ("slices", 2), ("lownn", 1)])
def test_streamed_prediction_equals_full_graph(unit_and_model, method, n_layers):
    """Parts with a halo give the full graph's outputs; a one-layer model runs only the edges into labelled atoms
    (the halo atoms' own edges are pruned) and must still be exact."""
    unit, model = unit_and_model
    if n_layers != model.config.n_layers:
        model = model_for(unit, n_layers=n_layers)
    big = unit.tile((3, 2, 2))
    full = predict_structure(model, big, overlap=False, n_parts=1, symmetrize=False, progress=False)
    parts = predict_structure(model, big, overlap=False, n_parts=5, method=method, symmetrize=False, progress=False)
    assert parts.report["n_parts"] == 5 and parts.report["halo"] == model.config.halo
    # the halo makes the labelled outputs exact; float64 sums in another order: 1e-12 Hartree
    np.testing.assert_allclose(parts.H_edges.data, full.H_edges.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(parts.H_nodes.data, full.H_nodes.data, rtol=0, atol=1e-12)


class Perturbed(HamiltonianModel):
    """The same network with ``bump`` added to the outputs of the edges ``centre <- source`` (all images) only,
    not to their reverses: a deliberately asymmetric block."""

    def __init__(self, config, centre, source, bump):
        super().__init__(config)
        self.edge_centre, self.edge_source, self.bump = centre, source, bump

    def forward(self, graph):
        out = super().forward(graph)
        e = (graph["edge_index"][0] == self.edge_centre) & (graph["edge_index"][1] == self.edge_source)
        out[EDGE_OUT] = out[EDGE_OUT] + e[:, None].to(out[EDGE_OUT].dtype) * self.bump.to(out[EDGE_OUT])
        return out


def _true_asymmetry(pred):
    """max |H_ij(R) - H_ji(-R)^T| and max |H_ii - H_ii^T| by a plain loop (small systems only)."""
    i, j = pred.nl.edge_index
    index = {(int(a), int(b), tuple(r)): e for e, (a, b, r) in enumerate(zip(i, j, pred.nl.shift.tolist()))}
    worst = 0.0
    for e, (a, b, r) in enumerate(zip(i, j, pred.nl.shift.tolist())):
        f = index[(int(b), int(a), tuple(-x for x in r))]
        worst = max(worst, float(np.abs(pred.H_edges.block(e) - pred.H_edges.block(f).T).max()))
    onsite = max(float(np.abs(pred.H_nodes.block(a) - pred.H_nodes.block(a).T).max()) for a in range(pred.nl.n_atoms))
    return worst, onsite


def test_symmetric_output_and_true_asymmetry_reported(unit_and_model, tmp_path):
    unit, base = unit_and_model
    bump = torch.zeros(base.config.edge_dim, dtype=torch.float64)
    bump[5] = 5.0  # well above the untrained network's own asymmetry (~2.3 with the FFN invariants)
    model = Perturbed(base.config, 0, 3, bump).to(torch.float64)
    model.load_state_dict(base.state_dict())
    raw = predict_structure(model, unit, symmetrize=False, n_parts=2, progress=False)
    true_edge, true_onsite = _true_asymmetry(raw)
    base_raw = predict_structure(base, unit, symmetrize=False, overlap=False, n_parts=2, progress=False)
    assert true_edge > _true_asymmetry(base_raw)[0] + 0.1  # the perturbation dominates
    rep = raw.report["asymmetry_before_symmetrization_hartree"]
    assert rep["edge_asymmetry_max"] == pytest.approx(true_edge, rel=1e-14, abs=0)
    assert rep["onsite_asymmetry_max"] == pytest.approx(true_onsite, rel=1e-14, abs=0)
    pred = predict_structure(model, unit, n_parts=2, progress=False)
    assert pred.report["asymmetry_before_symmetrization_hartree"] == rep
    assert _true_asymmetry(pred) == (0.0, 0.0)
    prov = write_prediction(pred, tmp_path / "p.h5", {})
    r = read_matrix_file(tmp_path / "p.h5")
    assert prov["asymmetry_before_symmetrization_hartree"]["edge_asymmetry_max"] == true_edge
    assert r.provenance["asymmetry_before_symmetrization_hartree"]["edge_asymmetry_max"] == true_edge
    for m in (r.H, r.S):
        assert (m != m.T).nnz == 0  # exactly symmetric, bit for bit
    n = r.H.shape[0]
    for k, shift in enumerate(r.images.shifts):  # H(R) = H(-R)^T exactly
        mk = r.images.image("H", shift)
        assert (mk != r.images.image("H", -shift).T).nnz == 0, k
    assert n == orbital_table(unit.kinds, SIC).n_orbitals


def test_per_image_blocks_fold_to_gamma_and_S_is_the_basis_overlap(unit_and_model, tmp_path):
    unit, model = unit_and_model
    big = unit.tile((2, 1, 1))
    prov = write_prediction(predict_structure(model, big, n_parts=2, progress=False), tmp_path / "p.h5", {})
    r = read_matrix_file(tmp_path / "p.h5")
    assert prov["min_eigenvalue_S"] > 0 and r.provenance["min_eigenvalue_S"] > 0
    # H(k=0) from the per-image blocks: the same numbers summed in another order (1e-14 Hartree)
    for which, m in (("H", r.H), ("S", r.S)):
        diff = r.images.at_k(which, (0, 0, 0)) - m
        assert abs(diff).max() < 1e-14, which
        assert abs(r.images.gamma(which) - m).max() < 1e-14
    # S is not cut at the model's r_cut (3.6 A) but at the basis's overlap range at the default eps (C/Si SZV:
    # ~11 A): its Gamma matrix equals the basis's Gamma overlap at that eps (the same blocks; 1e-15 rounding)
    # and has many more elements than H
    s_range = prov["overlap_range_angstrom"]
    assert s_range == overlap_range(SIC, eps=DEFAULT_OVERLAP_EPS) > 2.5 * R_CUT
    assert prov["overlap_eps"] == DEFAULT_OVERLAP_EPS and prov["n_edges_S"] > 10 * prov["n_edges"]
    ref = overlap_matrix(big.positions, big.cell, big.pbc, big.kinds.astype(str), SIC, r_cut=s_range)
    assert abs(r.S - ref).max() < 1e-15 and r.S.nnz > 2 * r.H.nnz
    # per-image S equals the exact basis overlap on the same edges (libcint), up to the symmetrization (1e-15)
    nl = neighbor_list(big.positions, big.cell, big.pbc, s_range)
    nodes, edges = overlap_blocks(big.positions, big.cell, big.kinds.astype(str), SIC, nl.edge_index, nl.shift)
    tab = orbital_table(big.kinds, SIC)
    for e in range(0, nl.n_edges, 5):
        a, b = nl.edge_index[:, e]
        blk = r.images.image("S", nl.shift[e])[tab.offset[a] : tab.offset[a + 1], tab.offset[b] : tab.offset[b + 1]]
        np.testing.assert_allclose(blk.toarray(), edges.block(e), rtol=0, atol=1e-15)
    s0 = r.images.image("S", (0, 0, 0))
    for a in range(big.n_atoms):
        blk = s0[tab.offset[a] : tab.offset[a + 1], tab.offset[a] : tab.offset[a + 1]].toarray()
        np.testing.assert_allclose(blk, nodes.block(a), rtol=0, atol=1e-15)
    # a k-point: H(k) is Hermitian
    hk = r.images.at_k("H", (0.25, 0.1, 0.0))
    assert abs(hk - hk.conj().T).max() < 1e-14


def test_version_1_files_still_read(unit_and_model, tmp_path):
    unit, model = unit_and_model
    write_prediction(predict_structure(model, unit, n_parts=1, progress=False), tmp_path / "p.h5", {})
    r = read_matrix_file(tmp_path / "p.h5")
    v1 = MatrixData(**{**r.__dict__, "images": None})
    write_matrix_file(tmp_path / "v1.h5", v1)
    import h5py

    with h5py.File(tmp_path / "v1.h5") as f:
        assert int(f.attrs["version"]) == 1 and "images" not in f
    with h5py.File(tmp_path / "p.h5") as f:
        assert int(f.attrs["version"]) == 3
    back = read_matrix_file(tmp_path / "v1.h5")
    assert back.images is None and (back.H != r.H).nnz == 0
    # version 2: Gamma and per-image matrices both stored (what write_matrix_file writes, under version 3 now)
    write_matrix_file(tmp_path / "v2.h5", r)
    with h5py.File(tmp_path / "v2.h5", "r+") as f:
        assert "H" in f and "images" in f
        f.attrs["version"] = 2
    v2 = read_matrix_file(tmp_path / "v2.h5")
    assert (v2.H != r.H).nnz == 0 and (v2.images.S != r.images.S).nnz == 0
    with h5py.File(tmp_path / "v1.h5", "r+") as f:
        f.attrs["version"] = 4
    from hamforge.io import MatrixFileError

    with pytest.raises(MatrixFileError, match="version 4"):
        read_matrix_file(tmp_path / "v1.h5")


def test_predict_file_bad_input(unit_and_model, tmp_path):
    import ase
    import ase.io

    unit, model = unit_and_model
    save_checkpoint(tmp_path / "m.pt", model)
    atoms = ase.Atoms(numbers=unit.numbers, positions=unit.positions, cell=unit.cell, pbc=True)
    ase.io.write(tmp_path / "ok.extxyz", atoms)
    prov = predict_file(tmp_path / "m.pt", tmp_path / "ok.extxyz", tmp_path / "out.h5", (1, 1, 2), progress=False)
    assert prov["tiling"] == [1, 1, 2] and read_matrix_file(tmp_path / "out.h5").n_atoms == 16
    ge = atoms.copy()
    ge.numbers[0] = 32
    ase.io.write(tmp_path / "ge.extxyz", ge)
    with pytest.raises(PredictError, match=r"ge\.extxyz: kind\(s\) \['Ge'\] not known"):
        predict_file(tmp_path / "m.pt", tmp_path / "ge.extxyz", tmp_path / "bad.h5")
    close = atoms.copy()
    close.positions[1] = close.positions[0] + [0.2, 0, 0]
    ase.io.write(tmp_path / "close.extxyz", close)
    with pytest.raises(PredictError, match=r"close\.extxyz: atoms 1 and 2 are 0\.2 Angstrom apart"):
        predict_file(tmp_path / "m.pt", tmp_path / "close.extxyz", tmp_path / "bad.h5")
    for tile in ((0, 1, 1), (1, -2, 1), (1.5, 1, 1)):
        with pytest.raises(PredictError, match="--tile"):
            predict_file(tmp_path / "m.pt", tmp_path / "ok.extxyz", tmp_path / "bad.h5", tile)
    # a matrix file with another basis for kind Si
    other = read_matrix_file(tmp_path / "out.h5")
    dz = {**SIC, "Si": ElementBasis("Si", "DZVP-MOLOPT-SR-GTH", (0, 0, 1, 1, 2))}
    n = orbital_table(other.kinds, dz).n_orbitals
    eye = sp.identity(n, format="csr")
    write_matrix_file(
        tmp_path / "dz.h5", MatrixData(**{**other.__dict__, "basis": dz, "H": eye, "S": eye, "images": None})
    )
    with pytest.raises(PredictError, match=r"dz\.h5: /basis/Si: Si:DZVP-MOLOPT-SR-GTH:0,0,1,1,2 differs"):
        predict_file(tmp_path / "m.pt", tmp_path / "dz.h5", tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left behind
    # a matrix file with the model's basis is a valid input (its kinds are used)
    predict_file(tmp_path / "m.pt", tmp_path / "out.h5", tmp_path / "again.h5", progress=False)
    assert read_matrix_file(tmp_path / "again.h5").n_atoms == 16


@pytest.mark.slow
@pytest.mark.multiprocess
def test_halo_ranks_prediction_equals_one_process(unit_and_model, tmp_path):
    """``hamforge predict --parallel halo`` under torchrun (3 gloo ranks, one graph, halo exchange every layer)
    writes the H of the one-process full-graph prediction: the same sums, in another order only for the
    symmetrization (float64: 1e-12 Hartree)."""
    from _launch import torchrun

    unit, model = unit_and_model
    save_checkpoint(tmp_path / "m.pt", model)
    write_prediction(predict_structure(model, unit, n_parts=1, progress=False), tmp_path / "unit.h5", {})
    args = [str(tmp_path / "m.pt"), str(tmp_path / "unit.h5"), "--tile", "2", "2", "1", "--device", "cpu"]
    ref = predict_file(*args[:2], tmp_path / "ref.h5", (2, 2, 1), n_parts=1, progress=False)
    argv = ["hamforge.cli", "predict", *args, "-o", str(tmp_path / "halo.h5"), "--parallel", "halo"]
    r = torchrun(argv, 3, timeout=300, module=True)
    assert r.returncode == 0, r.stdout + r.stderr
    a, b = read_matrix_file(tmp_path / "ref.h5"), read_matrix_file(tmp_path / "halo.h5")
    assert b.provenance["n_parts"] == 3 and ref["n_parts"] == 1
    assert abs(a.H).max() > 0.1
    assert abs(a.H - b.H).max() < 1e-12
    for shift in a.images.shifts:
        assert abs(a.images.image("H", shift) - b.images.image("H", shift)).max() < 1e-12

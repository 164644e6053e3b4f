"""Structures periodic along the transport axis cut open: per-image and Gamma-folded routes, the validity check.

The reference is the sum of the synthetic per-edge blocks with no lattice shift along the axis (exact, built
here with np.add.at, independently of the per-image CSR layout and of the minimum-image geometry).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.basis import ElementBasis
from hamforge.graph import ragged_blocks, reverse_edge_index, synthetic_hamiltonian
from hamforge.io import ImageMatrices, MatrixData, read_matrix_file, write_matrix_file
from hamforge.predict import image_table, iter_row_slabs
from hamforge.validate import (
    TransportError,
    cut_from_gamma,
    cut_from_images,
    cut_open,
    run_transport,
    transport_setup,
    validate_device,
)

SP = {"Si": ElementBasis("Si", "test-sp", (0, 1))}
SPACING, R_CUT = 1.5, 3.2  # jittered simple-cubic grid; the synthetic blocks are nonzero up to r_cut


def grid_structure(nx, ny=3, nz=3, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.indices((nx, ny, nz)).reshape(3, -1).T
    x = (idx + 0.5) * SPACING + rng.uniform(-0.2, 0.2, size=idx.shape)
    return x, np.diag([nx, ny, nz]) * SPACING


def v2_file(path, nx, seed=0):
    """A predicted-style matrix file (version 2): Gamma H, S and their exact per-image blocks; S = 1 + small."""
    x, cell = grid_structure(nx, seed=seed)
    n = x.shape[0]
    kinds = np.array(["Si"] * n, dtype=object)
    numbers = np.full(n, 14)
    _, nl, h_edges, h_nodes = synthetic_hamiltonian(numbers, x, cell, True, kinds, SP, R_CUT, seed=seed)
    _, _, s_edges, _ = synthetic_hamiltonian(numbers, x, cell, True, kinds, SP, R_CUT, seed=seed + 1, scale=0.01)
    n_orb = np.full(n, 4)
    s_nodes = ragged_blocks(np.tile(np.eye(4).ravel(), n), n_orb, n_orb)
    offset = np.concatenate([[0], np.cumsum(n_orb)])
    shifts, (edge_image,) = image_table(nl)
    zero = int(np.flatnonzero(np.all(shifts == 0, axis=1))[0])
    rev = reverse_edge_index(nl)
    mats = {}
    for name, nodes, edges in (("H", h_nodes, h_edges), ("S", s_nodes, s_edges)):
        slabs = list(iter_row_slabs(nodes, edges, nl, rev, n_orb, offset, edge_image, zero, len(shifts)))
        mats[name] = (sp.vstack([g for g, _ in slabs]).tocsr(), sp.vstack([i for _, i in slabs]).tocsr())
    data = MatrixData(
        numbers=numbers,
        positions=x,
        cell=cell,
        pbc=np.array([True, True, True]),
        kinds=kinds,
        basis=SP,
        H=mats["H"][0],
        S=mats["S"][0],
        images=ImageMatrices(shifts=shifts, H=mats["H"][1], S=mats["S"][1]),
    )
    write_matrix_file(path, data)
    expected = {}
    for name, nodes, edges in (("H", h_nodes, h_edges), ("S", s_nodes, s_edges)):
        dense = sp.block_diag(list(nodes.data.reshape(n, 4, 4))).toarray()  # on-site blocks
        keep = np.flatnonzero(nl.shift[:, 0] == 0)  # no lattice shift along the axis x
        i, j = nl.edge_index[0][keep], nl.edge_index[1][keep]
        blocks = np.stack([edges.data[edges.offsets[e] : edges.offsets[e + 1]].reshape(4, 4) for e in keep])
        r, c = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
        np.add.at(dense, (4 * i[:, None, None] + r, 4 * j[:, None, None] + c), blocks)
        expected[name] = dense
    return read_matrix_file(path), expected


def gamma_only(data):
    """The same content as a DFT-style version 1 file: Gamma-folded matrices, no per-image blocks."""
    return MatrixData(**{**data.__dict__, "images": None})


def test_images_and_gamma_routes_give_the_same_device(tmp_path):
    data, expected = v2_file(tmp_path / "pred.h5", nx=9)  # cell 13.5 A along x > 2 r_cut = 6.4 A
    by_images = cut_open(data, 0, source="pred.h5")
    by_gamma = cut_open(gamma_only(data), 0, source="ref.h5")
    assert (by_images.route, by_gamma.route) == ("images", "gamma")
    assert by_images.length == pytest.approx(13.5) and 0 < by_gamma.range <= R_CUT
    for name in ("H", "S"):
        a, b = getattr(by_images, name), getattr(by_gamma, name)
        # the same blocks summed in a different order: round-off of a few terms of size <= 0.05 Ha
        assert abs(a - b).max() < 1e-14
        np.testing.assert_allclose(a.toarray(), expected[name], rtol=0, atol=1e-14)
        assert abs(a - a.T).max() == 0.0
    # the cut removed the wrap-around couplings: the Gamma matrix differs, and only where x is wrapped
    dropped = (data.H - by_images.H).tocoo()
    dropped.eliminate_zeros()
    assert dropped.nnz > 0
    dx = data.positions[dropped.row // 4, 0] - data.positions[dropped.col // 4, 0]
    assert np.all(np.abs(dx) > 13.5 / 2)
    # a v2 file can be cut by either route explicitly
    h, s = cut_from_images(data.images, 0)
    h2, s2, rng = cut_from_gamma(data.H, data.S, data.positions, data.cell, data.pbc, np.repeat(np.arange(108), 4), 0)
    assert abs(h - h2).max() < 1e-14 and abs(s - s2).max() < 1e-14 and rng == by_gamma.range


def test_both_routes_give_the_same_transmission(tmp_path):
    data, _ = v2_file(tmp_path / "pred.h5", nx=9)
    energies = np.linspace(-0.3, 0.3, 7)
    t = {}
    for name, d in (("images", data), ("gamma", gamma_only(data))):
        st = transport_setup(d, "x", wide_band=0.05, source=name)
        assert st.route == name and st.device.n_layers >= 3
        t[name] = run_transport(st, energies, eta=1e-6, convergence=False).transmission
    assert np.all(t["images"] > 0)
    np.testing.assert_allclose(t["images"], t["gamma"], rtol=1e-9, atol=0)  # matrices equal to 1e-14


def test_gamma_route_refuses_a_cell_shorter_than_twice_the_range(tmp_path):
    data, expected = v2_file(tmp_path / "short.h5", nx=4)  # 6.0 A along x < 2 r_cut
    write_matrix_file(tmp_path / "short_v1.h5", gamma_only(data))
    v1 = read_matrix_file(tmp_path / "short_v1.h5")
    assert v1.images is None
    with pytest.raises(TransportError, match=r"short_v1\.h5: cannot cut the Gamma-point matrices open along lattice"):
        transport_setup(v1, "x", wide_band=0.05, source=str(tmp_path / "short_v1.h5"))
    # the per-image blocks still cut it exactly
    cut = cut_open(data, 0, source="short.h5")
    np.testing.assert_allclose(cut.H.toarray(), expected["H"], rtol=0, atol=1e-14)


def test_cut_refuses_a_cell_skewed_along_the_axis(tmp_path):
    data, _ = v2_file(tmp_path / "p.h5", nx=9)
    skew = data.cell.copy()
    skew[1, 0] = 0.5  # the second lattice vector leans along x: no cut plane perpendicular to x
    with pytest.raises(TransportError, match=r"lattice vectors \[0, 1\] all have components along the transport"):
        cut_open(MatrixData(**{**data.__dict__, "cell": skew}), 0, source="p.h5")
    assert cut_open(data, 1, source="p.h5").route == "images"  # along y the same cell is fine


@pytest.mark.slow
def test_validate_device_writes_transport_metrics(tmp_path):
    """Identical prediction and reference: zero errors, ratio 1; the v2 prediction and v1 reference routes meet."""
    data, _ = v2_file(tmp_path / "pred.h5", nx=9)
    write_matrix_file(tmp_path / "ref.h5", gamma_only(data))
    m = validate_device(
        tmp_path / "pred.h5",
        tmp_path / "ref.h5",
        tmp_path / "out",
        axis="x",
        window=0.02,
        step=0.01,
        eta=1e-6,
        bias=0.1,
        temperature=300.0,
        wide_band=0.05,
        n_occupied=200,
    )
    assert m["transport_routes"] == {"pred": "images", "ref": "gamma"}
    assert m["transport_log10_max_abs_error"] < 1e-8 and m["eig_rel_l1"] < 1e-12
    assert m["current_ratio"] == pytest.approx(1.0, abs=1e-8) and m["current_ref_A"] > 0
    assert m["conductance_ref_S"] == pytest.approx(m["conductance_ref_G0"] * 7.748091729e-5)
    lo, hi = m["transport_window_eV"]
    assert lo == pytest.approx(m["homo_ref_eV"] - 0.02 * 27.211386245988)
    t = np.loadtxt(tmp_path / "out" / "transmission.csv", delimiter=",", skiprows=1)
    assert t.shape[1] == 5 and t[:, 4].sum() >= 2 and np.all(np.diff(t[:, 0]) > 0)
    assert (tmp_path / "out" / "transmission.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "transport.json").is_file() and (tmp_path / "out" / "spectrum.json").is_file()

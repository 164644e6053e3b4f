"""Streamed prediction (hamforge.predict._stream): the exact edges of chosen centres, the overlaps of chosen pairs,
the streamed matrix file == the in-memory one (H to 1e-12 with a float64 model, S to 1e-15), version 3 files
(Gamma matrices derived when they are the plain image sums, stored otherwise), block-row reads, float32 H,
temporary files cleaned up, bad input refused.

Model: untrained, seeded, float64 (as tests/test_predict.py), so differences between the two paths are only the
order of floating-point sums (parts and halos differ): 1e-12 Hartree is ~1e4 ulps of |H| ~ 0.1.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.basis import OverlapCalculator, orbital_table, overlap_blocks, overlap_range
from hamforge.graph import neighbor_list, reverse_edge_index
from hamforge.graph._search import NeighborSearch
from hamforge.io import MatrixFileError, read_matrix_file, read_matrix_rows
from hamforge.predict import PredictError, predict_structure, structure_kinds, write_prediction
from hamforge.predict._assemble import image_table, iter_row_slabs
from hamforge.predict._stream import stream_prediction

# the 8-atom Si6C2 cell and the untrained model of tests/test_predict.py
from test_predict import SIC, model_for, unit_cell


def _stream(model, big, path, eps, **kw):
    s_range = overlap_range(SIC, eps=eps)
    kinds = structure_kinds(big, model.config)
    return stream_prediction(model, big, kinds, path, s_range=s_range, progress=False, **kw)


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True)])
def test_neighbor_search_equals_neighbor_list_rows(pbc):
    rng = np.random.default_rng(3)
    cell = np.array([[6.0, 0.0, 0.0], [1.5, 5.0, 0.0], [0.7, -0.4, 4.5]])
    x = rng.uniform(-0.3, 1.3, (40, 3)) @ cell  # some atoms outside the cell: shifts refer to them as given
    r_cut = 7.3  # longer than the cell: self-images and multiply connected pairs
    nl = neighbor_list(x, cell, np.array(pbc), r_cut)
    search = NeighborSearch(x, cell, np.array(pbc), r_cut)
    for centres in (np.arange(40), rng.choice(40, 13, replace=False), np.array([7])):
        got = search.edges(centres)
        m = np.isin(nl.edge_index[0], centres)
        assert np.array_equal(got.i, nl.edge_index[0][m]) and np.array_equal(got.j, nl.edge_index[1][m])
        assert np.array_equal(got.shift, nl.shift[m])
        # bitwise: the cutoff is decided on the same float64 distance
        assert np.array_equal(got.vec, nl.vec[m]) and np.array_equal(got.dist, nl.dist[m])


def test_overlap_calculator_equals_the_sweep():
    big = unit_cell().tile((2, 1, 1))
    nl = neighbor_list(big.positions, big.cell, big.pbc, 6.0)
    nodes, edges = overlap_blocks(big.positions, big.cell, big.kinds.astype(str), SIC, nl.edge_index, nl.shift)
    calc = OverlapCalculator(big.positions, big.cell, big.kinds.astype(str), SIC)
    pick = np.random.default_rng(0).choice(nl.n_edges, 50, replace=False)
    got = calc.edge_blocks(nl.edge_index[0][pick], nl.edge_index[1][pick], nl.shift[pick])
    want = np.concatenate([edges.block(e).ravel() for e in pick])
    assert np.array_equal(got, want)  # a block depends only on its pair: the same bits from any chunk
    assert np.array_equal(calc.node_blocks([3, 0]), np.concatenate([nodes.block(3).ravel(), nodes.block(0).ravel()]))


@pytest.mark.parametrize(
    "options",
    [{}, {"edge_reads_updated": True}, {"n_layers": 1, "net_r_cut": 2.9, "edge_reads_updated": True}, {"n_layers": 1}],
    ids=["2-layers", "edge-reads-updated", "net-r-cut", "1-layer-pruned"],
)
def test_streamed_file_equals_in_memory_file(options, tmp_path):
    unit = unit_cell()
    model = model_for(unit, **options)
    big = unit.tile((2, 2, 1))  # 32 atoms, 5 parts with halos; small cell: the Gamma matrices are stored
    mem = tmp_path / "mem.h5"
    write_prediction(predict_structure(model, big, n_parts=1, progress=False), mem, {})
    prov = _stream(model, big, tmp_path / "str.h5", 1e-8, atoms_per_part=7)
    assert prov["n_parts"] == 5 and prov["halo"] == model.config.halo
    a, b = read_matrix_file(mem), read_matrix_file(tmp_path / "str.h5")
    assert prov["gamma_stored"] and np.array_equal(a.images.shifts, b.images.shifts)
    for name, tol in (("H", 1e-12), ("S", 1e-15)):
        for x, y in ((getattr(a, name), getattr(b, name)), (getattr(a.images, name), getattr(b.images, name))):
            assert x.shape == y.shape and x.nnz == y.nnz
            assert abs(x - y).max() <= tol
        g = getattr(b, name)
        assert (g != g.T).nnz == 0  # exactly symmetric
    with h5py.File(mem) as f:
        pm = __import__("json").loads(f.attrs["provenance"])
    for key in ("n_atoms", "n_edges", "n_edges_S", "r_cut", "symmetrized", "min_eigenvalue_S"):
        assert pm[key] == pytest.approx(prov[key], rel=1e-9), key
    assert not list(tmp_path.glob(".hamforge-rows-*"))  # the row store is gone


def test_large_cell_file_derives_gamma_exactly(tmp_path):
    """Heights > 2 x range: every Gamma element is one image element; not stored, derived bit for bit equal to
    the canonical Gamma sums of the in-memory prediction."""
    unit = unit_cell()
    model = model_for(unit, n_layers=1)
    big = unit.tile((3, 3, 3))  # 216 atoms, heights ~16 A > 2 x the S range at eps 1e-3
    eps = 1e-3
    assert 2 * overlap_range(SIC, eps=eps) < 16.0
    prov = _stream(model, big, tmp_path / "str.h5", eps, atoms_per_part=60)
    assert not prov["gamma_stored"]
    with h5py.File(tmp_path / "str.h5") as f:
        assert int(f.attrs["version"]) == 3 and "H" not in f and "S" not in f
        assert f["images/H/indices"].dtype == np.int32 and f["images/H/data"].compression == "gzip"
    pred = predict_structure(model, big, n_parts=1, overlap_eps=eps, progress=False)
    tab = orbital_table(big.kinds, SIC)
    shifts, (img_h, _) = image_table(pred.nl, pred.nl_S)
    zero = int(np.flatnonzero(~shifts.any(axis=1))[0])
    slabs = iter_row_slabs(
        pred.H_nodes, pred.H_edges, pred.nl, reverse_edge_index(pred.nl), tab.n_orb, tab.offset, img_h, zero, 27
    )
    gamma = sp.vstack([g for g, _ in slabs], format="csr")
    got = read_matrix_file(tmp_path / "str.h5")
    assert abs(gamma - got.H).max() <= 1e-12 and got.H.nnz == gamma.nnz
    # block rows read alone equal the rows of the whole matrices
    rows = slice(int(tab.offset[100]), int(tab.offset[103]))
    assert (read_matrix_rows(tmp_path / "str.h5", "H", rows) != got.H[rows]).nnz == 0
    assert (read_matrix_rows(tmp_path / "str.h5", "S", rows, image="all") != got.images.S[rows]).nnz == 0
    one = read_matrix_rows(tmp_path / "str.h5", "H", rows, image=(0, 0, -1))
    assert (one != got.images.image("H", (0, 0, -1))[rows]).nnz == 0
    with pytest.raises(MatrixFileError, match="not stored"):
        read_matrix_rows(tmp_path / "str.h5", "H", rows, image=(5, 5, 5))
    with pytest.raises(MatrixFileError, match="which"):
        read_matrix_rows(tmp_path / "str.h5", "X", rows)


def test_float32_h_is_the_rounded_float64_h(tmp_path):
    unit = unit_cell()
    model = model_for(unit, n_layers=1)
    big = unit.tile((2, 1, 1))
    _stream(model, big, tmp_path / "64.h5", 1e-6, atoms_per_part=5)
    prov = _stream(model, big, tmp_path / "32.h5", 1e-6, atoms_per_part=5, h_dtype=np.float32)
    a, b = read_matrix_file(tmp_path / "64.h5"), read_matrix_file(tmp_path / "32.h5")
    assert prov["h_dtype"] == "float32"
    assert np.array_equal(b.images.H.data, a.images.H.data.astype(np.float32).astype(np.float64))
    assert (a.images.S != b.images.S).nnz == 0  # S stays float64
    assert (tmp_path / "32.h5").stat().st_size < (tmp_path / "64.h5").stat().st_size


def test_stream_failure_keeps_inputs_and_leaves_no_temporaries(tmp_path):
    unit = unit_cell()
    model = model_for(unit, n_layers=1)
    target = tmp_path / "keep.h5"
    target.write_bytes(b"user data")
    with pytest.raises(Exception, match="keep.h5"):
        _stream(model, unit, target, 1e-6, inputs=[target])  # the output would overwrite an input
    assert target.read_bytes() == b"user data"
    assert not list(tmp_path.glob(".hamforge-rows-*"))
    with pytest.raises(PredictError, match="metis"):
        _stream(model, unit.tile((2, 1, 1)), tmp_path / "o.h5", 1e-6, atoms_per_part=4, method="metis")


def test_cli_refuses_zero_atoms_per_part(tmp_path, capsys):
    from hamforge.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["predict", "m.pt", "s.xyz", "-o", str(Path(tmp_path) / "o.h5"), "--atoms-per-part", "0"])
    assert exc.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_output_larger_than_the_free_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    unit = unit_cell()
    model = model_for(unit, n_layers=1)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    called = []
    monkeypatch.setattr(type(model), "forward", lambda *a, **k: called.append(1))
    with pytest.raises(PredictError, match=r"needs ~.* GB .* has 1e-06 GB free"):
        _stream(model, unit.tile((2, 1, 1)), tmp_path / "o.h5", 1e-6)
    assert not called and not (tmp_path / "o.h5").exists()


@pytest.mark.multiprocess
def test_ranks_write_their_own_rows_and_equal_one_process(tmp_path):
    """``hamforge predict --parallel ranks`` under torchrun (3 gloo ranks): every rank predicts its parts, writes
    its share of the rows to its own part file, and the joined file (virtual datasets) equals the one-process
    streamed file (same parts and halos: H bit for bit, S too)."""
    from _launch import torchrun
    from hamforge.model import save_checkpoint
    from hamforge.predict import predict_file

    unit = unit_cell()
    model = model_for(unit, edge_reads_updated=True)
    save_checkpoint(tmp_path / "m.pt", model)
    write_prediction(predict_structure(model, unit, n_parts=1, progress=False), tmp_path / "unit.h5", {})
    args = [str(tmp_path / "m.pt"), str(tmp_path / "unit.h5"), "--tile", "2", "2", "1", "--atoms-per-part", "6"]
    predict_file(*args[:2], tmp_path / "one.h5", (2, 2, 1), atoms_per_part=6, progress=False)
    out = tmp_path / "sub" / "ranks.h5"
    out.parent.mkdir()
    argv = ["hamforge.cli", "predict", *args, "-o", str(out), "--parallel", "ranks", "--device", "cpu"]
    r = torchrun(argv, 3, timeout=300, module=True)
    assert r.returncode == 0, r.stdout + r.stderr
    parts = sorted(p.name for p in out.parent.iterdir())
    assert parts == ["ranks.h5", *(f"ranks.h5.part{k}of3.h5" for k in range(3))]  # no row store left behind
    with h5py.File(out) as f:
        assert f["images/H/data"].is_virtual and f["H/indices"].is_virtual
    # the folder moves as a whole: the virtual datasets name their sources relative to the file
    moved = tmp_path / "moved"
    out.parent.rename(moved)
    a, b = read_matrix_file(tmp_path / "one.h5"), read_matrix_file(moved / "ranks.h5")
    assert b.provenance["ranks"] == 3 and b.provenance["n_parts"] == a.provenance["n_parts"] == 6
    assert len(b.provenance["peak_rss_mb_ranks"]) == 3 and min(b.provenance["peak_rss_mb_ranks"]) > 0
    for name in ("H", "S"):
        assert (getattr(a, name) != getattr(b, name)).nnz == 0
        assert (getattr(a.images, name) != getattr(b.images, name)).nnz == 0
    for key in ("n_edges", "n_edges_S", "min_eigenvalue_S", "asymmetry_before_symmetrization_hartree"):
        assert b.provenance[key] == pytest.approx(a.provenance[key], rel=1e-9), key


def test_the_output_folder_is_made(tmp_path):
    unit = unit_cell()
    model = model_for(unit, n_layers=1)
    _stream(model, unit, tmp_path / "new" / "deeper" / "p.h5", 1e-6)
    assert read_matrix_file(tmp_path / "new" / "deeper" / "p.h5").n_atoms == 8

"""Exports of predicted matrix files: sisl TSHS (read back by sisl), Matrix Market (scipy), CP2K-style CSR."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from hamforge.io import ExportError, export_matrices, read_matrix_file
from hamforge.io.units import HARTREE_TO_EV
from hamforge.predict import predict_structure, write_prediction
from test_predict import model_for, unit_cell


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    unit = unit_cell(seed=2)
    big = unit.tile((2, 1, 1))
    write_prediction(predict_structure(model_for(unit), big, n_parts=2, progress=False), d / "p.h5", {})
    return d, read_matrix_file(d / "p.h5")


def test_tshs_round_trip_through_sisl(predicted):
    import sisl

    d, r = predicted
    (out,) = export_matrices(r, "tshs", d / "p", source=str(d / "p.h5"))
    h = sisl.get_sile(str(out)).read_hamiltonian()
    assert h.no == r.H.shape[0] and not h.orthogonal
    # eV <-> Ry conversions inside sisl: rounding only; 1e-12 as the issue asks (values ~1-10 eV)
    np.testing.assert_allclose(h.Hk().toarray() / HARTREE_TO_EV, r.H.toarray(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h.Sk().toarray(), r.S.toarray(), rtol=0, atol=1e-12)
    n = r.H.shape[0]
    for shift in r.images.shifts:  # every image lands in sisl's supercell block of that R (no wrap-around)
        isc = int(h.geometry.lattice.sc_index(shift))
        hs = h.tocsr(0)[:, isc * n : (isc + 1) * n].toarray() / HARTREE_TO_EV
        np.testing.assert_allclose(hs, r.images.image("H", shift).toarray(), rtol=0, atol=1e-12)
        ss = h.tocsr(h.S_idx)[:, isc * n : (isc + 1) * n].toarray()
        np.testing.assert_allclose(ss, r.images.image("S", shift).toarray(), rtol=0, atol=1e-12)
    k = (0.3, 0.0, 0.0)
    np.testing.assert_allclose(h.Hk(k).toarray() / HARTREE_TO_EV, r.images.at_k("H", k).toarray(), rtol=0, atol=1e-12)
    assert np.allclose(h.geometry.xyz, r.positions) and np.allclose(h.geometry.cell, r.cell)


def test_matrix_market_is_exact_and_csr_text_reads_back(predicted):
    from hamforge.dft import read_csr_triplets

    d, r = predicted
    outs = export_matrices(r, "mm", d / "p", source=str(d / "p.h5"))
    for path, m in zip(outs, (r.H, r.S)):
        back = scipy.io.mmread(path).tocsr()
        assert back.shape == m.shape and (back != m).nnz == 0  # 17 significant digits: bit-identical
    outs = export_matrices(r, "csr", d / "p", source=str(d / "p.h5"))
    assert [p.name for p in outs] == ["p.KS.csr", "p.S.csr"]
    first = outs[0].read_text().splitlines()[0].split()
    assert first[:2] == ["1", "1"]  # 1-based, as CP2K writes them
    for path, m in zip(outs, (r.H, r.S)):
        rows, cols, vals = read_csr_triplets(path)  # 0-based after reading
        coo = m.tocoo()
        np.testing.assert_array_equal(rows, coo.row)
        np.testing.assert_array_equal(cols, coo.col)
        # 17 significant digits are written; the CP2K reader's own vectorized conversion may differ by 1 ulp
        np.testing.assert_allclose(vals, coo.data, rtol=4.5e-16, atol=0)
    with pytest.raises(ExportError, match="--format"):
        export_matrices(r, "xyz", d / "p")


def test_cli_predict_and_export(tmp_path):
    import argparse

    import ase
    import ase.io
    from hamforge.model import save_checkpoint
    from hamforge.predict import add_predict_parsers

    unit = unit_cell(seed=3)
    save_checkpoint(tmp_path / "m.pt", model_for(unit))
    ase.io.write(
        tmp_path / "s.cif", ase.Atoms(numbers=unit.numbers, positions=unit.positions, cell=unit.cell, pbc=True)
    )
    parser = argparse.ArgumentParser()
    add_predict_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "predict",
            str(tmp_path / "m.pt"),
            str(tmp_path / "s.cif"),
            "--tile",
            "1",
            "2",
            "1",
            "-o",
            str(tmp_path / "o.h5"),
            "--parts",
            "2",
        ]
    )
    assert args.func(args) == 0
    r = read_matrix_file(tmp_path / "o.h5")
    assert r.n_atoms == 16 and r.provenance["tiling"] == [1, 2, 1] and r.provenance["n_parts"] == 2
    args = parser.parse_args(["export", str(tmp_path / "o.h5"), "--format", "tshs"])
    assert args.func(args) == 0 and (tmp_path / "o.TSHS").is_file()


def test_streamed_text_exports_equal_the_whole_matrix_ones(predicted, tmp_path, monkeypatch):
    """Large files export row slab by row slab (forced here with slabs of 5 rows): the same Matrix Market and
    CSR text as the whole-matrix writers, read back to the same values."""
    from hamforge.io import _export, export_file

    d, r = predicted
    monkeypatch.setattr(_export, "_small", lambda path: False)
    monkeypatch.setattr(_export, "_ROWS_PER_SLAB", 5)
    mm = export_file(d / "p.h5", "mm", tmp_path / "s")
    for path, m in zip(mm, (r.H, r.S)):
        back = scipy.io.mmread(path).tocsr()
        assert back.shape == m.shape and (back != m).nnz == 0
    csr = export_file(d / "p.h5", "csr", tmp_path / "s")
    whole = export_matrices(r, "csr", tmp_path / "w", source=str(d / "p.h5"))
    for a, b in zip(csr, whole):
        assert a.read_text() == b.read_text()


def test_tshs_to_a_non_ascii_path(predicted, tmp_path):
    """sisl's Fortran writer takes ASCII names only: the export writes under an ASCII name and moves the file
    (issue 22: a traceback from inside sisl). Read back through an ASCII copy (sisl's reader has the same limit)."""
    import shutil

    import sisl

    d, r = predicted
    folder = tmp_path / "dossiér"
    folder.mkdir()
    (out,) = export_matrices(r, "tshs", folder / "prédit", source=str(d / "p.h5"))
    assert out.name == "prédit.TSHS" and sorted(p.name for p in folder.iterdir()) == ["prédit.TSHS"]
    shutil.copyfile(out, tmp_path / "ascii.TSHS")
    h = sisl.get_sile(str(tmp_path / "ascii.TSHS")).read_hamiltonian()
    np.testing.assert_allclose(h.Hk().toarray() / HARTREE_TO_EV, r.H.toarray(), rtol=0, atol=1e-12)

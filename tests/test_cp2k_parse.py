"""CP2K matrices: parsed (H, S) are exactly what CP2K diagonalized; bad files are rejected by name.

Fixtures in tests/data/cp2k/ are real CP2K 2023.1 runs made by tests/data/make_cp2k_fixtures.py.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sl
from hamforge.cli import main as cli_main
from hamforge.dft import DFTError, parse_cp2k_run, read_mo_eigenvalues, read_scf_summary
from hamforge.io import MatrixFileError, read_matrix_file

DATA = Path(__file__).parent / "data" / "cp2k"


def generalized_eigenvalues(data):
    return sl.eigh(data.H.toarray(), data.S.toarray(), eigvals_only=True)


# 1e-8 Ha is the bound; CP2K prints eigenvalues with 12 decimals, and agreement is ~5e-13 in practice.
EIG_TOL = 1e-8


@pytest.mark.parametrize("case", ["hfo2_szv", "hfo2_dzvp_rot0"])
def test_eigenvalues_match_cp2k(case):
    run = DATA / case
    data = parse_cp2k_run(run)
    mo = read_mo_eigenvalues(run / "cp2k.out")
    eig = generalized_eigenvalues(data)
    assert len(mo) <= len(eig)
    np.testing.assert_allclose(eig[: len(mo)], mo, rtol=0, atol=EIG_TOL)
    # two species, d shells (and an f shell for DZVP Hf)
    assert set(data.kinds) == {"Hf", "O"}
    assert max(max(b.shells) for b in data.basis.values()) >= 2


def test_binary_upper_triangular_default_names_equal_text_layout():
    data = parse_cp2k_run(DATA / "hfo2_dzvp_rot0")
    assert any(p.name.endswith("KS_SPIN_1-1_0.csr") for p in (DATA / "hfo2_dzvp_rot0").iterdir())
    assert data.basis["Hf"].shells == (0, 0, 0, 1, 1, 2, 2, 3)
    n = 4 * 26 + 8 * 4
    assert data.H.shape == (n, n)
    # symmetric after mirroring the upper triangle (exactly: mirrored values are copies)
    assert abs(data.H - data.H.T).max() == 0.0
    assert abs(data.S - data.S.T).max() == 0.0


def test_structure_read_from_input_matches_output_geometry():
    data = parse_cp2k_run(DATA / "hfo2_szv")
    assert data.numbers.tolist() == [72] * 4 + [8] * 8
    assert data.pbc.all()
    assert np.isclose(abs(np.linalg.det(data.cell)), 5.1170 * 5.1754 * 5.2915 * np.sin(np.radians(99.216)), rtol=1e-6)


def test_cli_writes_matrix_file_that_round_trips(tmp_path):
    out = tmp_path / "m.h5"
    assert cli_main(["parse-cp2k", str(DATA / "hfo2_szv"), "-o", str(out)]) == 0
    back = read_matrix_file(out)
    direct = parse_cp2k_run(DATA / "hfo2_szv")
    assert abs(back.H - direct.H).max() == 0.0 and abs(back.S - direct.S).max() == 0.0
    np.testing.assert_array_equal(back.positions, direct.positions)
    assert back.provenance["scf_converged"] is True
    tab = back.orbitals()
    assert tab.n_orbitals == back.H.shape[0]


def _copy(tmp_path, case="hfo2_szv"):
    dst = tmp_path / case
    shutil.copytree(DATA / case, dst)
    return dst


def test_truncated_csr_rejected(tmp_path):
    run = _copy(tmp_path)
    lines = (run / "KS.csr").read_text().splitlines()
    (run / "KS.csr").write_text("\n".join(lines[:-7]) + "\n")
    with pytest.raises(DFTError, match=r"KS\.csr.*missing entries"):
        parse_cp2k_run(run)


def test_asymmetric_matrix_rejected(tmp_path):
    run = _copy(tmp_path)
    lines = (run / "KS.csr").read_text().splitlines()
    r, c, v = lines[1].split()
    assert r != c
    lines[1] = f"{r} {c} {float(v) + 1e-3}"
    (run / "KS.csr").write_text("\n".join(lines) + "\n")
    with pytest.raises(DFTError, match=r"KS\.csr.*not symmetric"):
        parse_cp2k_run(run)


def test_wrong_basis_orbital_count_rejected(tmp_path):
    run = _copy(tmp_path)
    inp = (
        (run / "cp2k.inp")
        .read_text()
        .replace(
            "BASIS_SET SZV-MOLOPT-SR-GTH\n         POTENTIAL GTH-PBE-q6",
            "BASIS_SET DZVP-MOLOPT-SR-GTH\n         POTENTIAL GTH-PBE-q6",
        )
    )
    assert "DZVP" in inp
    (run / "cp2k.inp").write_text(inp)
    with pytest.raises(DFTError, match="missing entries|exceeds|missing"):
        parse_cp2k_run(run)


def test_too_small_basis_rejected(tmp_path):
    run = _copy(tmp_path, "hfo2_dzvp_rot0")
    inp = (run / "cp2k.inp").read_text().replace("DZVP-MOLOPT-SR-GTH", "SZV-MOLOPT-SR-GTH")
    (run / "cp2k.inp").write_text(inp)
    with pytest.raises(DFTError, match="exceeds the .* orbitals"):
        parse_cp2k_run(run)


def test_missing_matrix_file_and_cli_error(tmp_path, capsys):
    run = _copy(tmp_path)
    (run / "S.csr").unlink()
    with pytest.raises(DFTError, match="S matrix file S.csr"):
        parse_cp2k_run(run)
    assert cli_main(["parse-cp2k", str(run), "-o", str(tmp_path / "x.h5")]) == 2
    assert "S.csr" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_scf_summary_and_mo_parse():
    s = read_scf_summary(DATA / "hfo2_szv" / "cp2k.out")
    assert s.converged and s.finished and s.n_steps > 0 and s.energy < 0
    assert "2023" in s.version
    mo = read_mo_eigenvalues(DATA / "hfo2_szv" / "cp2k.out")
    assert np.all(np.diff(mo) >= 0)


def test_matrix_file_errors_name_field(tmp_path):
    import h5py

    out = tmp_path / "m.h5"
    assert cli_main(["parse-cp2k", str(DATA / "hfo2_szv"), "-o", str(out)]) == 0
    with h5py.File(out, "a") as f:
        del f["structure/positions"]
    with pytest.raises(MatrixFileError, match=r"m\.h5: /structure/positions: missing"):
        read_matrix_file(out)
    with pytest.raises(MatrixFileError, match="no such matrix file"):
        read_matrix_file(tmp_path / "none.h5")


def test_coordinates_from_named_xyz_file_and_ghost_kind(tmp_path):
    """&TOPOLOGY COORD_FILE_NAME instead of &COORD, and a GHOST kind (basis, no nucleus: Z = 0)."""
    run = _copy(tmp_path)
    text = (run / "cp2k.inp").read_text()
    start, end = text.index("      &COORD"), text.index("&END COORD") + len("&END COORD")
    lines = [ln.strip() for ln in text[start:end].splitlines()[1:-1]]
    (run / "coords.xyz").write_text(f"{len(lines)}\nfrom the test\n" + "\n".join(lines) + "\n")
    text = (
        text[:start]
        + "      &TOPOLOGY\n         COORD_FILE_NAME coords.xyz\n         COORD_FILE_FORMAT XYZ\n      &END TOPOLOGY"
        + text[end:]
    )
    text = text.replace("ELEMENT O\n", "ELEMENT O\n         GHOST T\n")
    (run / "cp2k.inp").write_text(text)
    ref = parse_cp2k_run(DATA / "hfo2_szv")
    data = parse_cp2k_run(run)
    np.testing.assert_array_equal(data.positions, ref.positions)
    assert data.numbers.tolist() == [72] * 4 + [0] * 8
    assert abs(data.H - ref.H).max() == 0.0
    (run / "coords.xyz").unlink()
    with pytest.raises(DFTError, match="coords.xyz named by COORD_FILE_NAME not found"):
        parse_cp2k_run(run)

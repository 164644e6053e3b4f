"""DFT data that must never become a matrix file: each real fixture altered the way a user's file gets damaged.

Every case runs the user's path (``hamforge parse-cp2k RUN -o out.h5``) and asserts: exit status 2, a one-line
error naming the damaged file and the cause, no traceback, and nothing written (neither the output nor a
temporary file next to it).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from hamforge.cli import main as cli_main
from hamforge.dft import DFTError, check_overlap, parse_cp2k_run, read_csr_triplets

DATA = Path(__file__).parent / "data" / "cp2k"


def _copy(tmp_path, case="hfo2_szv"):
    dst = tmp_path / case
    shutil.copytree(DATA / case, dst)
    return dst


def _refused(tmp_path, run, capsys, *needles, extra=()):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc = cli_main(["parse-cp2k", str(run), "-o", str(out_dir / "m.h5"), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert list(out_dir.iterdir()) == []  # no output, no temporary file
    return err


def _rewrite_values(path: Path, fn):
    """Apply ``fn(row, col, value_token) -> value_token`` to every line, keeping CP2K's column layout."""
    lines = path.read_text().splitlines()
    out = []
    for ln in lines:
        r, c, v = ln.split()
        out.append(f"{r:>8}{c:>8} {fn(int(r), int(c), v):>22}")
    path.write_text("\n".join(out) + "\n")


def _negate(tok: str) -> str:
    return tok[1:] if tok.startswith("-") else "-" + tok


# ---------------------------------------------------------------- SCF convergence


def _unconverge(run: Path):
    text = (run / "cp2k.out").read_text()
    import re

    new, n = re.subn(r"\*\*\* SCF run converged in\s+\d+ steps \*\*\*", "*** SCF run NOT converged ***", text)
    assert n == 1
    (run / "cp2k.out").write_text(new)


def test_unconverged_scf_is_refused_unless_accepted(tmp_path, capsys):
    run = _copy(tmp_path)
    _unconverge(run)
    _refused(tmp_path, run, capsys, "cp2k.out", "SCF run NOT converged", "--allow-unconverged")
    # explicitly accepted: written, and the provenance says so
    out = tmp_path / "accepted.h5"
    assert cli_main(["parse-cp2k", str(run), "-o", str(out), "--allow-unconverged"]) == 0
    from hamforge.io import read_matrix_file

    prov = read_matrix_file(out).provenance
    assert prov["scf_converged"] is False and prov["accepted_unconverged"] is True


def test_output_without_scf_outcome_is_refused(tmp_path, capsys):
    """cp2k.out cut short before the SCF finished (job killed while CP2K wrote it)."""
    run = _copy(tmp_path)
    text = (run / "cp2k.out").read_text()
    (run / "cp2k.out").write_text(text[: text.index("SCF WAVEFUNCTION OPTIMIZATION")])
    _refused(tmp_path, run, capsys, "cp2k.out", "no SCF outcome")


# ---------------------------------------------------------------- S must be an overlap matrix


def test_swapped_ks_and_s_files_are_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    (run / "KS.csr").rename(run / "tmp.csr")
    (run / "S.csr").rename(run / "KS.csr")
    (run / "tmp.csr").rename(run / "S.csr")
    _refused(tmp_path, run, capsys, "S.csr", "not an overlap matrix", "swapped")


@pytest.mark.parametrize("case", ["hfo2_szv", "hfo2_dzvp_rot0"])
def test_negated_overlap_is_refused(tmp_path, capsys, case):
    run = _copy(tmp_path, case)
    if case == "hfo2_szv":
        _rewrite_values(run / "S.csr", lambda r, c, v: _negate(v))
        name = "S.csr"
    else:  # binary, upper triangular, CP2K's default file names
        f = next(run.glob("*-S_SPIN_1-1_0.csr"))
        from hamforge.dft._csr import _BIN_DTYPE

        raw = np.fromfile(f, dtype=_BIN_DTYPE)
        raw["val"] *= -1
        raw.tofile(f)
        name = f.name
    _refused(tmp_path, run, capsys, name, "not positive")


def test_indefinite_overlap_with_positive_diagonal_is_refused(tmp_path, capsys):
    """A damaged S whose diagonal still looks right: only the eigenvalue estimate (Lanczos) can tell."""
    run = _copy(tmp_path)
    # S[1,2] = S[2,1] = 3 with S[1,1] ~ S[2,2] ~ 1: the 2x2 minor has a negative eigenvalue
    _rewrite_values(run / "S.csr", lambda r, c, v: "0.30000000000000E+001" if {r, c} == {1, 2} else v)
    _refused(tmp_path, run, capsys, "S.csr", "not positive definite")


def test_lanczos_estimate_matches_dense_smallest_eigenvalue():
    """The scalable check (ARPACK Lanczos, forced with dense_max=0) agrees with a dense solve on the real
    136-orbital fixture; the parser records the smallest eigenvalue."""
    from hamforge.basis import overlap_min_eigenvalue

    data = parse_cp2k_run(DATA / "hfo2_dzvp_rot0")
    dense = np.linalg.eigvalsh(data.S.toarray())[0]
    lam, converged = overlap_min_eigenvalue(data.S, dense_max=0)
    # ARPACK relative tolerance 1e-10 on a small, well-separated spectrum
    assert converged and lam == pytest.approx(dense, rel=1e-8)
    assert check_overlap(data.S, "S") == pytest.approx(dense, rel=1e-12)  # dense path below 4,000 orbitals
    assert data.provenance["min_eigenvalue_S"] == pytest.approx(dense, rel=1e-12)


# ---------------------------------------------------------------- H must be a Kohn-Sham matrix


def test_all_zero_hamiltonian_is_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    _rewrite_values(run / "KS.csr", lambda r, c, v: "0.00000000000000E+000")
    _refused(tmp_path, run, capsys, "KS.csr", "all zero")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_value_is_reported_with_its_line(tmp_path, capsys, token):
    run = _copy(tmp_path)
    lines = (run / "KS.csr").read_text().splitlines()
    r, c, _ = lines[99].split()
    lines[99] = f"{r:>8}{c:>8} {token:>22}"  # what gfortran prints for a NaN/Inf value
    (run / "KS.csr").write_text("\n".join(lines) + "\n")
    _refused(tmp_path, run, capsys, "KS.csr", "line 100", "not finite")


# ---------------------------------------------------------------- truncated text CSR


def test_csr_cut_mid_number_is_refused(tmp_path, capsys):
    """A copy interrupted mid-line: no final newline; the value cut to '0.22' would parse as a number."""
    run = _copy(tmp_path)
    raw = (run / "KS.csr").read_bytes()
    cut = raw.rindex(b"E", 0, len(raw) - 1) - 10  # inside the mantissa of the last value
    (run / "KS.csr").write_bytes(raw[:cut])
    _refused(tmp_path, run, capsys, "KS.csr", "truncated")


def test_csr_last_value_without_exponent_is_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    lines = (run / "KS.csr").read_text().splitlines()
    r, c, v = lines[-1].split()
    lines[-1] = f"{r:>8}{c:>8} 0.22"
    (run / "KS.csr").write_text("\n".join(lines) + "\n")
    _refused(tmp_path, run, capsys, "KS.csr", "last line", "truncated")
    # and the cut inside the exponent ("E+001" -> "E+00": a factor of 10 off) as well
    lines[-1] = f"{r:>8}{c:>8} {v[:-1]}"
    (run / "KS.csr").write_text("\n".join(lines) + "\n")
    with pytest.raises(DFTError, match=r"KS\.csr: last line .* not in the format of line 1"):
        read_csr_triplets(run / "KS.csr")


def test_truncated_binary_csr_is_refused(tmp_path, capsys):
    run = _copy(tmp_path, "hfo2_dzvp_rot0")
    f = next(run.glob("*-KS_SPIN_1-1_0.csr"))
    f.write_bytes(f.read_bytes()[:-7])
    _refused(tmp_path, run, capsys, f.name, "truncated")


def test_csr_index_out_of_range_names_line(tmp_path, capsys):
    run = _copy(tmp_path)
    lines = (run / "S.csr").read_text().splitlines()
    _, c, v = lines[9].split()
    lines[9] = f"{9999:>8}{c:>8} {v:>22}"
    (run / "S.csr").write_text("\n".join(lines) + "\n")
    _refused(tmp_path, run, capsys, "S.csr", "line 10", "orbital index 9999 exceeds")


# ---------------------------------------------------------------- tolerances are options, not loopholes


@pytest.mark.parametrize("tol", ["nan", "-1e-6", "inf"])
def test_nan_or_negative_tolerance_is_rejected(tol, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["parse-cp2k", str(DATA / "hfo2_szv"), "-o", "/nonexistent/never.h5", f"--asymmetry-tol={tol}"])
    assert exc.value.code == 2
    assert "--asymmetry-tol" in capsys.readouterr().err
    with pytest.raises(DFTError, match="asymmetry_tol must be a finite number >= 0"):
        parse_cp2k_run(DATA / "hfo2_szv", asymmetry_tol=float(tol))


# ---------------------------------------------------------------- elements and kinds


def test_element_that_is_no_element_is_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    inp = run / "cp2k.inp"
    inp.write_text(inp.read_text().replace("ELEMENT O\n", "ELEMENT Ox\n"))  # formerly read as oxygen
    _refused(tmp_path, run, capsys, "cp2k.inp", "'Ox' is not a chemical element symbol")


def test_kind_label_that_is_no_element_is_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    inp = run / "cp2k.inp"
    text = (
        inp.read_text()
        .replace("&KIND O\n         ELEMENT O\n", "&KIND Xx\n")
        .replace("\n         O ", "\n         Xx ")
    )
    assert "&KIND Xx" in text and " Xx 0.10399" in text
    inp.write_text(text)  # formerly reported as element 'X'
    _refused(tmp_path, run, capsys, "cp2k.inp", "&KIND Xx", "'Xx' is not a chemical element symbol")


def test_kind_label_with_suffix_still_reads_its_element(tmp_path):
    run = _copy(tmp_path)
    inp = run / "cp2k.inp"
    text = (
        inp.read_text()
        .replace("&KIND O\n         ELEMENT O\n", "&KIND O1\n")
        .replace("\n         O ", "\n         O1 ")
    )
    inp.write_text(text)
    assert parse_cp2k_run(run).numbers.tolist() == [72] * 4 + [8] * 8


# ---------------------------------------------------------------- structure in the input


def test_zero_cell_is_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    inp = run / "cp2k.inp"
    inp.write_text(inp.read_text().replace("A 5.117 0.0 0.0", "A 0.0 0.0 0.0"))
    _refused(tmp_path, run, capsys, "cp2k.inp", "zero volume")


def test_coincident_atoms_are_refused(tmp_path, capsys):
    run = _copy(tmp_path)
    inp = run / "cp2k.inp"
    text = inp.read_text()
    first_o = "O 0.103998418443072 1.7503541012730588 1.8087484942004515"
    second_o = "O 4.598799429646364 4.292955441047609 0.7729201783541282"
    assert first_o in text and second_o in text
    inp.write_text(text.replace(second_o, first_o))  # a line pasted twice
    _refused(tmp_path, run, capsys, "cp2k.inp", "atoms 5 and 6", "coincident")


def test_the_cp2k_output_is_found_whatever_its_name(tmp_path, capsys):
    """`cp2k.psmp -i x.inp -o x.out` is the usual naming: the output is found and an unconverged one refused; a run
    directory without any CP2K output is refused (its SCF outcome is unknown) unless accepted explicitly."""
    run = _copy(tmp_path)
    _unconverge(run)
    (run / "cp2k.out").rename(run / "job.log")
    (run / "notes.txt").write_text("not a CP2K output\n")
    _refused(tmp_path, run, capsys, "job.log", "SCF run NOT converged")
    (run / "job.log").unlink()
    shutil.rmtree(tmp_path / "out")
    _refused(tmp_path, run, capsys, "no CP2K output found", "--allow-unconverged")
    data = parse_cp2k_run(run, allow_unconverged=True)
    assert data.provenance["accepted_unconverged"] is True and data.provenance["scf_converged"] is None
    good = _copy(tmp_path, "si_szv")
    (good / "cp2k.out").rename(good / "cp2k.inp.out")
    assert parse_cp2k_run(good).provenance["output"] == "cp2k.inp.out"

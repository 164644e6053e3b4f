"""CP2K input generation against the installed CP2K's schema, and real runs (tiny cells, seconds)."""

import numpy as np
import pytest
from ase.build import bulk
from hamforge.dft import (
    CP2KSettings,
    DFTError,
    KindSettings,
    cp2k_input_schema,
    cp2k_input_tree,
    launcher_command,
    parse_cp2k_run,
    read_mo_eigenvalues,
    render_cp2k_input,
    run_cp2k,
)

SI = CP2KSettings(kinds={"Si": KindSettings("Si", "SZV-MOLOPT-SR-GTH", "GTH-PBE-q4")}, added_mos=4)
LAUNCHER = "/usr/bin/mpirun --allow-run-as-root -np {tasks}"


def si2():
    return bulk("Si", "diamond", a=5.431)  # 2-atom primitive cell, runs in ~1 s


@pytest.mark.cp2k
def test_schema_is_the_installed_cp2k_one():
    schema = cp2k_input_schema()
    assert schema.is_file() and schema.stat().st_size > 1_000_000
    assert cp2k_input_schema() == schema  # cached


@pytest.mark.cp2k
def test_input_validated_against_installed_schema():
    a = si2()
    tree = cp2k_input_tree(a.get_chemical_symbols(), a.positions, a.cell.array, SI)
    text = render_cp2k_input(tree, cp2k_input_schema())
    for needle in (
        "&KS_CSR_WRITE",
        "FILENAME =KS.csr",
        "BINARY .TRUE.",
        "&S_CSR_WRITE",
        "EIGENVALUES",
        "CUTOFF 200.0",
        "EPS_PPNL 1e-14",
    ):
        assert needle in text
    # a keyword that cp2k-input-tools' bundled (2024.1) schema accepts but CP2K 2023.1 rejects
    tree["+force_eval"][0]["+dft"]["+scf"]["ignore_convergence_failure"] = True
    with pytest.raises(DFTError, match="IGNORE_CONVERGENCE_FAILURE"):
        render_cp2k_input(tree, cp2k_input_schema())


def test_bad_structure_input_is_rejected():
    a = si2()
    with pytest.raises(DFTError, match="no CP2K kind settings for \\['Ge'\\]"):
        cp2k_input_tree(["Si", "Ge"], a.positions, a.cell.array, SI)
    with pytest.raises(DFTError, match="positions must have shape"):
        cp2k_input_tree(["Si"], a.positions, a.cell.array, SI)
    with pytest.raises(DFTError, match="non-singular"):
        cp2k_input_tree(a.get_chemical_symbols(), a.positions, np.zeros((3, 3)), SI)


def test_launcher_template():
    assert launcher_command(LAUNCHER, 4)[-1] == "4"
    assert launcher_command("", 1) == []
    with pytest.raises(DFTError, match="only \\{tasks\\}"):
        launcher_command("mpirun -np {ntasks}", 2)
    # hybrid MPI x OpenMP: the SLURM profile's "srun -c {threads}" gets the threads per task from config
    assert launcher_command("srun -n {tasks} -c {threads}", 4, 2) == ["srun", "-n", "4", "-c", "2"]
    with pytest.raises(DFTError, match="threads=0"):
        launcher_command("srun", 2, 0)


def _write_input(tmp_path, settings, atoms=None):
    a = si2() if atoms is None else atoms
    inp = tmp_path / "cp2k.inp"
    inp.write_text(
        render_cp2k_input(
            cp2k_input_tree(a.get_chemical_symbols(), a.positions, a.cell.array, settings), cp2k_input_schema()
        )
    )
    return inp


@pytest.mark.cp2k
def test_real_run_parses_to_cp2k_eigenvalues(tmp_path):
    inp = _write_input(tmp_path, SI)
    summary = run_cp2k(inp, launcher=LAUNCHER, tasks=2)
    assert summary.converged and summary.energy < 0
    data = parse_cp2k_run(tmp_path)
    import scipy.linalg as sl

    eig = sl.eigh(data.H.toarray(), data.S.toarray(), eigvals_only=True)
    mo = read_mo_eigenvalues(tmp_path / "cp2k.out")
    # 1e-8 Ha: the bound for "exactly what CP2K diagonalized" (typically ~1e-13)
    np.testing.assert_allclose(eig[: len(mo)], mo, atol=1e-8, rtol=0)
    # 2-atom cell << 2 r_cut: the Gamma-point S has folded images, so its diagonal exceeds 1
    assert data.S.diagonal().max() > 1.0


@pytest.mark.cp2k
def test_unconverged_scf_fails_and_keeps_output(tmp_path):
    import dataclasses

    # the 2-atom cell converges in 2 steps; the 8-atom cubic cell needs ~12: stop it after 3
    cubic = bulk("Si", "diamond", a=5.431, cubic=True)
    inp = _write_input(tmp_path, dataclasses.replace(SI, max_scf=3, eps_scf=1e-12), cubic)
    with pytest.raises(DFTError, match="SCF did not converge") as err:
        run_cp2k(inp, launcher=LAUNCHER, tasks=1)
    assert "kept there for inspection" in str(err.value)
    assert (tmp_path / "cp2k.out").is_file()
    assert (tmp_path / "KS.csr").is_file()
    # its matrices are refused, unless accepted explicitly (and then recorded)
    with pytest.raises(DFTError, match=r"cp2k\.out: reports 'SCF run NOT converged'"):
        parse_cp2k_run(tmp_path)
    data = parse_cp2k_run(tmp_path, allow_unconverged=True)
    assert data.provenance["scf_converged"] is False and data.provenance["accepted_unconverged"] is True


@pytest.mark.cp2k
def test_cp2k_abort_message_reaches_the_error_and_the_log(tmp_path):
    """A basis name CP2K does not know: the error (and the rule's log) quote CP2K's ABORT box, not MPI noise."""
    import logging

    from hamforge._logging import configure_logging, log_failure

    bad = CP2KSettings(kinds={"Si": KindSettings("Si", "SZV-MOLOPT-SR-GTX", "GTH-PBE-q4")}, added_mos=4)
    inp = _write_input(tmp_path, bad)
    log_file = tmp_path / "rule.log"
    log = configure_logging(log_file)
    try:
        with pytest.raises(DFTError) as err, log_failure(log):
            run_cp2k(inp, launcher=LAUNCHER, tasks=2)
    finally:
        for h in list(log.handlers):
            if getattr(h, "_hamforge", False):
                log.removeHandler(h)
                h.close()
        log.setLevel(logging.NOTSET)
    msg = str(err.value)
    assert "CP2K aborted" in msg and "The requested basis set <SZV-MOLOPT-SR-GTX> for element <Si> was not found" in msg
    assert "MPI_ABORT" not in msg
    assert "The requested basis set <SZV-MOLOPT-SR-GTX>" in log_file.read_text()


def test_missing_executable_is_a_clear_error(tmp_path):
    inp = _write_input(tmp_path, SI)
    with pytest.raises(DFTError, match="cannot start CP2K"):
        run_cp2k(inp, executable="no-such-cp2k-binary")

"""Running CP2K and turning a finished run directory into a matrix file."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hamforge._launcher import launcher_command as _launcher_command
from hamforge._process import run_process_group
from hamforge.dft._checks import check_hamiltonian, check_overlap
from hamforge.dft._csr import assemble_symmetric, check_tolerance
from hamforge.dft._output import SCFSummary, read_cp2k_abort, read_scf_summary
from hamforge.dft._read_input import locate_csr_file, read_cp2k_input
from hamforge.dft._settings import DFTError
from hamforge.io import MatrixData

__all__ = ["find_cp2k_output", "launcher_command", "parse_cp2k_run", "run_cp2k"]

logger = logging.getLogger(__name__)

OUTPUT_NAME = "cp2k.out"
STDOUT_NAME = "cp2k.stdout"


def launcher_command(launcher: str, tasks: int, threads: int = 1) -> list[str]:
    """Split a launcher template such as ``"/usr/bin/mpirun --allow-run-as-root -np {tasks}"`` or ``"srun"``.

    An empty template runs CP2K directly (threads only). ``{tasks}`` is replaced by the MPI task count and
    ``{threads}`` by the OpenMP threads per task (see :mod:`hamforge._launcher`).
    """
    return _launcher_command(launcher, tasks, threads, error=DFTError)


def _abort_message(work: Path) -> str | None:
    for name in (OUTPUT_NAME, STDOUT_NAME):
        msg = read_cp2k_abort(work / name)
        if msg:
            return msg
    return None


def _tail(path: Path, n: int = 20) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def run_cp2k(
    input_file: str | os.PathLike,
    *,
    executable: str = "cp2k.psmp",
    launcher: str = "",
    tasks: int = 1,
    threads: int = 1,
    timeout_s: float | None = None,
) -> SCFSummary:
    """Run CP2K on ``input_file`` inside its own directory and check that the SCF converged.

    Writes ``cp2k.out`` (and the launcher's and CP2K's stdout/stderr as ``cp2k.stdout``) next to the input.
    Stale matrices and outputs of an earlier attempt are removed first. On a crash or an unconverged SCF a
    :class:`DFTError` says so, quoting CP2K's own ABORT message when there is one, and everything CP2K wrote
    stays in the directory for inspection. The launcher and all MPI ranks run in their own session and are
    stopped when this call ends in any way: SIGTERM to this process (SLURM/Snakemake timeout or cancel),
    SIGINT, ``timeout_s``, or an error (see :func:`hamforge._process.run_process_group`).
    """
    input_file = Path(input_file).resolve()
    work = input_file.parent
    for stale in [work / OUTPUT_NAME, work / STDOUT_NAME, *work.glob("*.csr")]:
        stale.unlink(missing_ok=True)
    cmd = launcher_command(launcher, tasks, threads) + [executable, "-i", input_file.name, "-o", OUTPUT_NAME]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    logger.info("running %s in %s", " ".join(cmd), work)
    t0 = time.perf_counter()
    try:
        with open(work / STDOUT_NAME, "w") as out:
            proc = run_process_group(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, timeout_s=timeout_s)
    except FileNotFoundError as exc:
        raise DFTError(f"cannot start CP2K: {exc} (is Debian's 'cp2k' installed, is the launcher right?)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DFTError(
            f"CP2K in {work} exceeded {timeout_s} s and was stopped; output kept in {work / OUTPUT_NAME}"
        ) from exc
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        abort = _abort_message(work)
        if abort:
            raise DFTError(f"CP2K aborted in {work}: {abort}; see {work / OUTPUT_NAME}")
        tail = _tail(work / OUTPUT_NAME) or _tail(work / STDOUT_NAME)
        raise DFTError(f"CP2K failed with exit code {proc.returncode} in {work}; see {work / OUTPUT_NAME}\n{tail}")
    summary = read_scf_summary(work / OUTPUT_NAME)
    if not summary.finished:
        raise DFTError(f"CP2K did not finish normally in {work}; see {work / OUTPUT_NAME}")
    if not summary.converged:
        raise DFTError(
            f"SCF did not converge in {work / OUTPUT_NAME}; its output and matrices are kept there for inspection. "
            "Raise max_scf, lower mixing_alpha or raise the smearing temperature in the material's dft settings."
        )
    logger.info("CP2K converged in %s SCF steps, E = %.10f Ha, %.1f s", summary.n_steps, summary.energy, elapsed)
    return summary


# What CP2K writes at the top of every output (its banner and the version line of the header).
_CP2K_MARKS = ("PROGRAM STARTED AT", "CP2K| version string")
_OUTPUT_SUFFIXES = (".out", ".log", ".stdout", ".txt")


def find_cp2k_output(run_dir: str | os.PathLike, inp: str | os.PathLike | None = None) -> Path | None:
    """The CP2K output of a run directory whatever its name (``cp2k.psmp -i x.inp -o x.out`` is the usual form):
    ``cp2k.out``, then ``<input stem>.out``, then the newest ``*.out`` / ``*.log`` / ``*.stdout`` / ``*.txt``
    whose first 64 kB carry CP2K's banner; None when there is none."""
    run_dir = Path(run_dir)
    first = [run_dir / OUTPUT_NAME] + ([run_dir / f"{Path(inp).stem}.out"] if inp is not None else [])
    others = sorted(
        (p for p in run_dir.iterdir() if p.suffix in _OUTPUT_SUFFIXES and p not in first),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for p in first + others:
        if p.is_file() and _has_banner(p):
            return p
    return None


def _has_banner(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16).decode(errors="replace")
    except OSError:
        return False
    return any(m in head for m in _CP2K_MARKS)


def parse_cp2k_run(
    run_dir: str | os.PathLike,
    *,
    input_name: str | None = None,
    asymmetry_tol: float = 1e-6,
    provenance: Mapping[str, Any] | None = None,
    allow_unconverged: bool = False,
) -> MatrixData:
    """Matrix data (structure, basis, H, S) of a finished CP2K run directory.

    ``run_dir`` holds one CP2K input (``*.inp``, or ``input_name``) and the KS and S CSR files it wrote.
    Structure, cell and kinds are read from the input (and any coordinate file it names), the basis shells
    from the basis files it names. See :func:`hamforge.dft.assemble_symmetric` for the checks of each file.

    The CP2K output is found whatever its name (:func:`find_cp2k_output`). Refused (:class:`DFTError` naming
    the file): an output that reports an unconverged SCF or no SCF outcome at all, or no output at all, unless
    ``allow_unconverged`` (then ``scf_converged: false`` or null and ``accepted_unconverged: true`` are recorded
    in the provenance); an S that is not positive definite (KS and S swapped, S negated); an all-zero H; a
    negative or NaN ``asymmetry_tol``.
    """
    asymmetry_tol = check_tolerance("asymmetry_tol", asymmetry_tol)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DFTError(f"{run_dir}: not a directory")
    if input_name is None:
        inputs = sorted(run_dir.glob("*.inp"))
        if len(inputs) != 1:
            raise DFTError(
                f"{run_dir}: expected exactly one CP2K input (*.inp), found {[p.name for p in inputs]}; name it"
            )
        inp = inputs[0]
    else:
        inp = run_dir / input_name
    info = read_cp2k_input(inp)
    from hamforge.basis import orbital_table

    tab = orbital_table(info.kinds, dict(info.basis))
    mats = {}
    reports = {}
    files = {}
    for which in ("KS", "S"):
        f = files[which] = locate_csr_file(run_dir, info, which)
        mats[which], reports[which] = assemble_symmetric(f, tab.n_orb, tab.offset, asymmetry_tol=asymmetry_tol)
        if reports[which].max_asymmetry > 0:
            logger.info("%s: symmetrized, max |A - A^T| = %.3g", f, reports[which].max_asymmetry)
    check_hamiltonian(mats["KS"], files["KS"])
    lam = check_overlap(mats["S"], files["S"])
    prov: dict[str, Any] = {
        "source": "cp2k",
        "input": str(inp.name),
        "max_asymmetry_H": reports["KS"].max_asymmetry,
        "max_asymmetry_S": reports["S"].max_asymmetry,
        "min_eigenvalue_S": lam,
        "scf_converged": None,
    }
    out = find_cp2k_output(run_dir, inp)
    if out is None and not allow_unconverged:
        raise DFTError(
            f"{run_dir}: no CP2K output found (looked for {OUTPUT_NAME}, {inp.stem}.out and any *.out / *.log / "
            "*.stdout file with CP2K's banner), so whether the SCF converged is unknown. Put the output there, or "
            "accept the matrices explicitly (allow_unconverged / --allow-unconverged; recorded in the provenance)"
        )
    if out is not None:
        s = read_scf_summary(out)
        if not s.converged:
            why = "reports 'SCF run NOT converged'" if s.scf_reported else "reports no SCF outcome (cut short?)"
            if not allow_unconverged:
                raise DFTError(
                    f"{out}: {why}; its matrices are not a converged Kohn-Sham solution. Rerun CP2K, or accept them "
                    "explicitly (allow_unconverged / --allow-unconverged; recorded in the provenance)"
                )
            logger.warning("%s %s; accepted because allow_unconverged is set", out, why)
            prov["accepted_unconverged"] = True
        prov.update(
            cp2k_version=s.version,
            scf_converged=s.converged,
            scf_steps=s.n_steps,
            energy_hartree=s.energy,
            n_electrons=s.n_electrons,
        )
        prov["output"] = out.name
    else:
        logger.warning("%s: no CP2K output, SCF outcome unknown; accepted because allow_unconverged is set", run_dir)
        prov["accepted_unconverged"] = True
    prov.update(provenance or {})
    return MatrixData(
        numbers=info.numbers,
        positions=info.positions,
        cell=info.cell,
        pbc=info.pbc,
        kinds=np.asarray(info.kinds, dtype=object),
        basis=dict(info.basis),
        H=mats["KS"],
        S=mats["S"],
        provenance=prov,
    )

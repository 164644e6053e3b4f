"""Reading the CP2K main output: SCF convergence, total energy, MO eigenvalues, version."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamforge.dft._settings import DFTError

__all__ = ["SCFSummary", "read_scf_summary", "read_mo_eigenvalues", "read_cp2k_abort"]

_CONVERGED = re.compile(r"\*\*\* SCF run converged in\s+(\d+) steps \*\*\*")
_NOT_CONVERGED = re.compile(r"SCF run NOT converged")
_ENERGY = re.compile(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(\S+)")
_VERSION = re.compile(r"CP2K\| version string:\s+(.*\S)")
_MO_HEADER = "MO| EIGENVALUES AND OCCUPATION NUMBERS"
_MO_LINE = re.compile(r"^\s*MO\|\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


@dataclass(frozen=True)
class SCFSummary:
    """Final state of a CP2K single point; ``energy`` in Hartree."""

    converged: bool
    n_steps: int | None
    energy: float | None
    version: str | None
    finished: bool
    scf_reported: bool = True  # False: the output holds no SCF outcome at all (cut short, or no SCF ran)
    n_electrons: int | None = None  # CP2K's "Number of electrons" (valence electrons of the cell)


_ELECTRONS = re.compile(r"^\s*Number of electrons:\s+(\d+)\s*$", re.M)


def read_scf_summary(path: str | os.PathLike) -> SCFSummary:
    """SCF outcome of a CP2K output file (the last SCF loop in the file counts)."""
    path = Path(path)
    if not path.is_file():
        raise DFTError(f"{path}: CP2K output not found")
    text = path.read_text(errors="replace")
    conv = list(_CONVERGED.finditer(text))
    notconv = list(_NOT_CONVERGED.finditer(text))
    last_conv = conv[-1].start() if conv else -1
    last_not = notconv[-1].start() if notconv else -1
    converged = last_conv > last_not
    energy = _ENERGY.findall(text)
    version = _VERSION.search(text)
    return SCFSummary(
        converged=converged,
        n_steps=int(conv[-1].group(1)) if converged else None,
        energy=float(energy[-1]) if energy else None,
        version=version.group(1) if version else None,
        finished="PROGRAM ENDED AT" in text,
        scf_reported=bool(conv or notconv),
        n_electrons=int(electrons[-1]) if (electrons := _ELECTRONS.findall(text)) else None,
    )


# CP2K's abort box: ASCII art in the first columns, message to the right, source location on the last line:
#  *   ___                                                                       *
#  * [ABORT]                                                                     *
#  *  \___/    The requested basis set <SZV-MOLOPT-SR-GTX> for element <Si> was  *
#  *    |               not found in the basis set files <BASIS_MOLOPT>          *
#  * / \                                          aobasis/basis_set_types.F:1509 *
_ART = re.compile(r"^(?:\\___/|\||O/\||/\| \||/ \\)")
_WHERE = re.compile(r"^(?:(.*?)\s+)?(\S+\.F:\d+)$")


def read_cp2k_abort(path: str | os.PathLike) -> str | None:
    """CP2K's own message of the last ``[ABORT]`` box in ``path`` (one line, source location appended), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    lines = path.read_text(errors="replace").splitlines()
    starts = [i for i, ln in enumerate(lines) if "[ABORT]" in ln]
    if not starts:
        return None
    words: list[str] = []
    where = None
    for ln in lines[starts[-1] + 1 :]:
        s = ln.strip()
        if not s.startswith("*") or s.startswith("**"):
            break
        inner = s[1:-1] if s.endswith("*") and len(s) > 1 else s[1:]
        inner = _ART.sub("", inner.strip()).strip()
        m = _WHERE.match(inner)
        if m:
            where = m.group(2)
            inner = m.group(1) or ""
        if inner:
            words.append(inner)
    msg = " ".join(" ".join(words).split())
    if not msg:
        return None
    return f"{msg} ({where})" if where else msg


def read_mo_eigenvalues(path: str | os.PathLike) -> np.ndarray:
    """Eigenvalues (Hartree) of the last ``MO| EIGENVALUES`` block (needs &MO EIGENVALUES T in &DFT/&PRINT).

    Spin-polarized runs print two blocks per step and are rejected.
    """
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    starts = [i for i, ln in enumerate(lines) if _MO_HEADER in ln]
    if not starts:
        raise DFTError(f"{path}: no '{_MO_HEADER}' block (enable &DFT/&PRINT/&MO EIGENVALUES T)")
    vals: list[tuple[int, float]] = []
    for ln in lines[starts[-1] + 1 :]:
        mt = _MO_LINE.match(ln)
        if mt:
            vals.append((int(mt.group(1)), float(mt.group(2))))
        elif vals and not ln.strip().startswith("MO|"):
            break
        elif "Sum:" in ln:
            break
    if not vals:
        raise DFTError(f"{path}: empty MO eigenvalue block")
    idx = np.array([v[0] for v in vals])
    if np.any(idx != np.arange(1, len(idx) + 1)):
        raise DFTError(f"{path}: MO eigenvalue indices are not 1..{len(idx)} (spin-polarized run?)")
    return np.array([v[1] for v in vals], dtype=np.float64)

"""Reading CP2K's CSR matrix dumps (&KS_CSR_WRITE / &S_CSR_WRITE) and checking them.

Text files hold one ``row col value`` line per stored element, 1-based, values in Hartree.
``BINARY T`` files are Fortran sequential unformatted records of (int32 row, int32 col, float64 value),
each framed by 4-byte record-length markers. CP2K stores atomic blocks whole: every block it writes is
complete, zero blocks are omitted. With ``UPPER_TRIANGULAR T`` only elements with row <= col are written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hamforge.dft._settings import DFTError

__all__ = ["read_csr_triplets", "assemble_symmetric", "CSRReport", "check_tolerance"]

_BIN_DTYPE = np.dtype([("m1", "<i4"), ("row", "<i4"), ("col", "<i4"), ("val", "<f8"), ("m2", "<i4")])


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return len(head) == 4 and np.frombuffer(head, "<i4")[0] == 16


# CP2K writes every value as Fortran ES, e.g. "-0.18423171605598E+001": sign, "0.", 14 digits, "E", sign, 3 digits
_CP2K_VALUE = re.compile(rb"^[+-]?\d*\.(\d+)[EeDd][+-](\d+)$")
_TEXT_LINE = re.compile(rb"^\s*\d+\s+\d+\s+\S+\s*$")


def where_in_file(path: Path, k: int) -> str:
    """'line N' of the k-th (0-based) stored element of a CSR file, 'record N' for binary files (error path only)."""
    if _is_binary(path):
        return f"record {k + 1}"
    seen = -1
    with open(path, "rb") as fh:
        for lineno, ln in enumerate(fh, start=1):
            if ln.strip():
                seen += 1
                if seen == k:
                    return f"line {lineno}"
    return f"element {k + 1}"  # pragma: no cover


def _element_text(path: Path, k: int) -> str:
    """Text of the k-th (0-based) stored element of a text CSR file (error path only)."""
    if _is_binary(path):
        return ""
    seen = -1
    with open(path, "rb") as fh:
        for ln in fh:
            if ln.strip():
                seen += 1
                if seen == k:
                    return ln.decode(errors="replace").strip()
    return ""  # pragma: no cover


def _first_bad_text_line(path: Path) -> str:
    """'line N: <text>' of the first line that is not 'row col value' with a parsable value (error path only)."""
    with open(path, "rb") as fh:
        for lineno, ln in enumerate(fh, start=1):
            if not ln.strip():
                continue
            ok = _TEXT_LINE.match(ln) is not None
            if ok:
                try:
                    float(ln.split()[2])
                except ValueError:
                    ok = False
            if not ok:
                return f"line {lineno}: {ln.decode(errors='replace').rstrip()!r}"
    return "no bad line found"


def _check_text_ending(path: Path) -> None:
    """Refuse a text file cut short: CP2K ends every line with a newline and writes every value in one ES format.

    Reads only the first and the last line. A value cut to ``0.22`` (or ``-0.1842E+00`` from ``E+001``) still
    parses as a number, so the parse alone cannot tell.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        first = fh.readline()
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    if not tail.endswith(b"\n"):
        last = tail.rsplit(b"\n", 1)[-1].decode(errors="replace")
        raise DFTError(f"{path}: last line {last!r} has no newline: the file is truncated (CP2K ends every line)")
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    first_val = first.split()[-1] if first.split() else b""
    last_val = last.split()[-1] if last.split() else b""
    if _nonfinite(first_val) or _nonfinite(last_val):
        return  # NaN/Inf: reported with its line by the finiteness check
    ref, got = _CP2K_VALUE.match(first_val), _CP2K_VALUE.match(last_val)
    if ref is None:
        raise DFTError(
            f"{path}: line 1 {first.decode(errors='replace').rstrip()!r}: value not in CP2K's format "
            "(e.g. -0.18423171605598E+001)"
        )
    if got is None or (len(got.group(1)), len(got.group(2))) != (len(ref.group(1)), len(ref.group(2))):
        raise DFTError(
            f"{path}: last line {last.decode(errors='replace')!r}: value not in the format of line 1 "
            f"({first_val.decode(errors='replace')}): the file is truncated or was edited"
        )


def _nonfinite(tok: bytes) -> bool:
    try:
        return not np.isfinite(float(tok))
    except ValueError:
        return False


def read_csr_triplets(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of a CP2K CSR file, 0-based int64 indices; text or binary detected.

    Refused with a :class:`DFTError` naming the file (and the line or record): a missing or empty file, a binary
    file with broken record markers, a text line that is not ``row col value``, a text file whose last line is cut
    (no final newline, or a value not in the ES format of the first line), indices below 1, NaN or Inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise DFTError(f"{path}: CSR file not found")
    if path.stat().st_size == 0:
        raise DFTError(f"{path}: CSR file is empty")
    binary = _is_binary(path)
    if binary:
        raw = np.fromfile(path, dtype=_BIN_DTYPE)
        if raw.nbytes != path.stat().st_size or np.any(raw["m1"] != 16) or np.any(raw["m2"] != 16):
            raise DFTError(f"{path}: not a CP2K binary CSR file (bad Fortran record markers, or truncated)")
        rows, cols, vals = raw["row"].astype(np.int64), raw["col"].astype(np.int64), raw["val"].astype(np.float64)
    else:
        import pandas as pd

        _check_text_ending(path)
        try:
            # a NaN or missing value becomes NaN here and is reported below with its line
            df = pd.read_csv(
                path,
                sep=r"\s+",
                header=None,
                names=["row", "col", "val"],
                engine="c",
                dtype={"row": np.int64, "col": np.int64, "val": np.float64},
            )
        except (ValueError, pd.errors.ParserError) as exc:
            raise DFTError(
                f"{path}: not a CP2K text CSR file of 'row col value' lines: {_first_bad_text_line(path)}"
            ) from exc
        rows, cols, vals = (df[c].to_numpy() for c in ("row", "col", "val"))
    if rows.size == 0:
        raise DFTError(f"{path}: CSR file holds no elements")
    low = np.minimum(rows, cols) < 1
    if low.any():
        k = int(np.flatnonzero(low)[0])
        raise DFTError(
            f"{path}: {where_in_file(path, k)}: CSR indices must be 1-based positive, got ({rows[k]}, {cols[k]})"
        )
    bad = ~np.isfinite(vals)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        where, text = where_in_file(path, k), _element_text(path, k)
        what = f"value {text.split()[2]!r}" if len(text.split()) == 3 else f"incomplete line {text!r}"
        raise DFTError(
            f"{path}: {where}: {what} at ({rows[k]}, {cols[k]}) is not finite "
            f"({int(bad.sum())} such element(s) in the file; CP2K diverged, or the file is damaged)"
        )
    return rows - 1, cols - 1, vals


def check_tolerance(name: str, value: float) -> float:
    """``value`` as a float if it is a finite number >= 0, else a :class:`DFTError` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DFTError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise DFTError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


@dataclass(frozen=True)
class CSRReport:
    """What :func:`assemble_symmetric` found: storage mode and the largest asymmetry it removed."""

    upper_triangular: bool
    max_asymmetry: float
    nnz: int


def assemble_symmetric(
    path: str | os.PathLike,
    n_orb: np.ndarray,
    offset: np.ndarray,
    *,
    asymmetry_tol: float = 1e-6,
) -> tuple[sp.csr_matrix, CSRReport]:
    """Read a CP2K CSR file into a full symmetric CSR matrix, checking it against the orbital layout.

    ``n_orb`` (N,) and ``offset`` (N+1,) give orbitals per atom (see :class:`hamforge.basis.OrbitalTable`).
    Upper-triangular files are detected (no element below the diagonal) and mirrored. Checks, each with an
    error naming the file: indices within the basis size, no duplicated element, every stored atomic block
    complete, every diagonal (on-site) block present, and symmetry: |A - A^T| <= ``asymmetry_tol``.
    A smaller asymmetry (CP2K's default screening leaves ~1e-8 Ha in on-site blocks) is removed by taking the
    upper triangle, which is what CP2K itself diagonalizes; its size is reported.
    """
    path = Path(path)
    rows, cols, vals = read_csr_triplets(path)
    norb = int(offset[-1])
    check_tolerance("asymmetry_tol", asymmetry_tol)
    over = np.maximum(rows, cols) >= norb
    if over.any():
        k = int(np.flatnonzero(over)[0])
        raise DFTError(
            f"{path}: {where_in_file(path, k)}: orbital index {max(rows[k], cols[k]) + 1} exceeds the {norb} "
            "orbitals of the structure's basis (wrong basis set, or matrix of another structure?)"
        )
    upper = bool(np.all(rows <= cols))
    key = rows * norb + cols
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    if np.any(key_sorted[1:] == key_sorted[:-1]):
        dup = key_sorted[1:][key_sorted[1:] == key_sorted[:-1]][0]
        raise DFTError(f"{path}: element ({dup // norb + 1}, {dup % norb + 1}) is stored twice")
    if upper:
        off = rows != cols
        rows, cols, vals = (
            np.concatenate([rows, cols[off]]),
            np.concatenate([cols, rows[off]]),
            np.concatenate([vals, vals[off]]),
        )
    atom_of = np.repeat(np.arange(len(n_orb), dtype=np.int64), n_orb)
    ai, aj = atom_of[rows], atom_of[cols]
    n_atoms = len(n_orb)
    bkey, counts = np.unique(ai * n_atoms + aj, return_counts=True)
    expected = n_orb[bkey // n_atoms] * n_orb[bkey % n_atoms]
    if np.any(counts != expected):
        k = int(np.flatnonzero(counts != expected)[0])
        raise DFTError(
            f"{path}: block of atoms ({bkey[k] // n_atoms + 1}, {bkey[k] % n_atoms + 1}) has {counts[k]} of its "
            f"{expected[k]} elements (missing entries; truncated file or THRESHOLD > 0?)"
        )
    diag_present = np.zeros(n_atoms, dtype=bool)
    diag_present[(bkey // n_atoms)[bkey // n_atoms == bkey % n_atoms]] = True
    if not diag_present.all():
        raise DFTError(f"{path}: on-site block of atom {int(np.flatnonzero(~diag_present)[0]) + 1} is missing")
    m = sp.csr_matrix((vals, (rows, cols)), shape=(norb, norb))
    m.sort_indices()
    asym = 0.0
    if not upper:
        d = (m - m.T).tocoo()
        asym = float(np.abs(d.data).max()) if d.nnz else 0.0
        # a structurally missing mirror block shows up here as a large asymmetry
        if asym > asymmetry_tol:
            k = int(np.argmax(np.abs(d.data)))
            raise DFTError(
                f"{path}: matrix is not symmetric: "
                f"|A[{d.row[k] + 1},{d.col[k] + 1}] - A[{d.col[k] + 1},{d.row[k] + 1}]| "
                f"= {asym:.3g} > tolerance {asymmetry_tol:g}"
            )
        if asym > 0.0:
            up = sp.triu(m, k=0, format="csr")
            m = (up + sp.triu(m, k=1, format="csr").T).tocsr()
            m.sort_indices()
    return m, CSRReport(upper_triangular=upper, max_asymmetry=asym, nnz=int(m.nnz))

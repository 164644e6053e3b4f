"""Reading CP2K's CSR matrix dumps (&KS_CSR_WRITE / &S_CSR_WRITE) and checking them.

Text files hold one ``row col value`` line per stored element, 1-based, values in Hartree.
``BINARY T`` files are Fortran sequential unformatted records of (int32 row, int32 col, float64 value),
each framed by 4-byte record-length markers. CP2K stores atomic blocks whole: every block it writes is
complete, zero blocks are omitted. With ``UPPER_TRIANGULAR T`` only elements with row <= col are written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hamforge.dft._settings import DFTError

__all__ = ["read_csr_triplets", "assemble_symmetric", "CSRReport"]

_BIN_DTYPE = np.dtype([("m1", "<i4"), ("row", "<i4"), ("col", "<i4"), ("val", "<f8"), ("m2", "<i4")])


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return len(head) == 4 and np.frombuffer(head, "<i4")[0] == 16


def read_csr_triplets(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of a CP2K CSR file, 0-based int64 indices; text or binary detected."""
    path = Path(path)
    if not path.is_file():
        raise DFTError(f"{path}: CSR file not found")
    if path.stat().st_size == 0:
        raise DFTError(f"{path}: CSR file is empty")
    if _is_binary(path):
        raw = np.fromfile(path, dtype=_BIN_DTYPE)
        if raw.nbytes != path.stat().st_size or np.any(raw["m1"] != 16) or np.any(raw["m2"] != 16):
            raise DFTError(f"{path}: not a CP2K binary CSR file (bad Fortran record markers)")
        rows, cols, vals = raw["row"].astype(np.int64), raw["col"].astype(np.int64), raw["val"].astype(np.float64)
    else:
        import pandas as pd

        try:
            df = pd.read_csv(path, sep=r"\s+", header=None, names=["row", "col", "val"], engine="c",
                             dtype={"row": np.int64, "col": np.int64, "val": np.float64})
        except (ValueError, pd.errors.ParserError) as exc:
            raise DFTError(f"{path}: not a CP2K text CSR file of 'row col value' lines ({exc})") from exc
        if df.isna().to_numpy().any():
            raise DFTError(f"{path}: CSR file has incomplete lines")
        rows, cols, vals = (df[c].to_numpy() for c in ("row", "col", "val"))
    if rows.size == 0:
        raise DFTError(f"{path}: CSR file holds no elements")
    if rows.min() < 1 or cols.min() < 1:
        raise DFTError(f"{path}: CSR indices must be 1-based positive, found {min(rows.min(), cols.min())}")
    if not np.all(np.isfinite(vals)):
        raise DFTError(f"{path}: non-finite matrix values")
    return rows - 1, cols - 1, vals


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
    top = int(max(rows.max(), cols.max())) + 1
    if top > norb:
        raise DFTError(
            f"{path}: orbital index {top} exceeds the {norb} orbitals of the structure's basis "
            "(wrong basis set, or matrix of another structure?)"
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
        rows, cols, vals = np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]]), np.concatenate([vals, vals[off]])
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
                f"{path}: matrix is not symmetric: |A[{d.row[k] + 1},{d.col[k] + 1}] - A[{d.col[k] + 1},{d.row[k] + 1}]| "
                f"= {asym:.3g} > tolerance {asymmetry_tol:g}"
            )
        if asym > 0.0:
            up = sp.triu(m, k=0, format="csr")
            m = (up + sp.triu(m, k=1, format="csr").T).tocsr()
            m.sort_indices()
    return m, CSRReport(upper_triangular=upper, max_asymmetry=asym, nnz=int(m.nnz))

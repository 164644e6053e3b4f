"""Physical sanity checks of DFT data: a positive definite overlap, a non-trivial H, a sensible structure.

A matrix file that is silently wrong is the worst failure of this product, so what CP2K could never have
produced (KS and S swapped, S negated, H all zero, atoms on top of each other, a zero cell) is refused here
with a :class:`DFTError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hamforge._structure_checks import MIN_ATOM_DISTANCE
from hamforge.basis import check_overlap_positive
from hamforge.dft._settings import DFTError

__all__ = ["MIN_ATOM_DISTANCE", "check_hamiltonian", "check_overlap", "check_structure"]


def check_overlap(s: sp.spmatrix, path: str | Path) -> float:
    """Refuse an S that is not positive definite (:func:`hamforge.basis.check_overlap_positive`, the one check
    of the project); return its smallest eigenvalue."""
    return check_overlap_positive(sp.csr_matrix(s), where=str(path), error=DFTError)


def check_hamiltonian(h: sp.spmatrix, path: str | Path) -> None:
    """Refuse an H that is all zero (non-finite values are refused when the file is read)."""
    h = sp.csr_matrix(h)
    if h.nnz == 0 or not np.any(h.data != 0):
        raise DFTError(f"{path}: Kohn-Sham matrix is all zero (a damaged or placeholder file)")


def check_structure(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, where: str) -> None:
    """:func:`hamforge._structure_checks.check_structure` raising :class:`DFTError` (``where`` names the source)."""
    from hamforge._structure_checks import check_structure as _check

    _check(positions, cell, pbc, where, error=DFTError)

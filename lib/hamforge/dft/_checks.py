"""Physical sanity checks of DFT data: a positive definite overlap, a non-trivial H, a sensible structure.

A matrix file that is silently wrong is the worst failure of this product, so what CP2K could never have
produced (KS and S swapped, S negated, H all zero, atoms on top of each other, a zero cell) is refused here
with a :class:`DFTError` naming the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hamforge._structure_checks import MIN_ATOM_DISTANCE
from hamforge.dft._settings import DFTError

__all__ = ["MIN_ATOM_DISTANCE", "check_hamiltonian", "check_overlap", "check_structure"]

logger = logging.getLogger(__name__)

# Below this smallest eigenvalue of the diagonally scaled S, the basis is numerically linearly dependent:
# the generalized eigenproblem loses ~ -log10(lambda_min) digits; worth a warning, CP2K ran with it.
_NEAR_SINGULAR = 1e-8

# ARPACK's relative accuracy for the smallest eigenvalue: we need its sign and rough size, not digits.
_EIG_TOL = 1e-6


def _smallest_eigenvalue(a: sp.csr_matrix) -> tuple[float, bool]:
    """(estimate of the smallest eigenvalue of symmetric ``a``, converged?) by Lanczos (ARPACK).

    Any Ritz value is >= the true smallest eigenvalue, so a negative estimate proves ``a`` indefinite even
    when ARPACK did not converge. Memory O(nnz + 40 n), time O(iterations x nnz): no factorization, no
    dense matrix. Tiny matrices (n <= 40, below ARPACK's useful range) use a dense solver.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    n = a.shape[0]
    if n <= 40:
        return float(np.linalg.eigvalsh(a.toarray())[0]), True
    v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: the same answer on every run
    try:
        val = eigsh(
            a, k=1, which="SA", tol=_EIG_TOL, ncv=min(n - 1, 40), maxiter=max(2000, n), v0=v0, return_eigenvectors=False
        )
        return float(val[0]), True
    except ArpackNoConvergence as exc:
        vals = np.asarray(exc.eigenvalues, dtype=float)
        return (float(vals.min()) if vals.size else float("nan")), False


def check_overlap(s: sp.spmatrix, path: str | Path) -> float:
    """Refuse an S that is not positive definite; return the smallest eigenvalue of D^-1/2 S D^-1/2.

    First every diagonal element must be > 0 (cheap; catches a negated S and, as on-site KS elements of
    valence orbitals are negative, most KS/S swaps); then the smallest eigenvalue of the diagonally scaled
    matrix (unit diagonal, same definiteness as S by Sylvester's law of inertia) is estimated by Lanczos and
    must be > 0. A near-singular S (< 1e-8) is logged as a warning.
    """
    s = sp.csr_matrix(s)
    d = s.diagonal()
    bad = ~(d > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DFTError(
            f"{path}: not an overlap matrix: diagonal element S[{i + 1},{i + 1}] = {d[i]:.6g} is not positive "
            f"({int(bad.sum())} of {len(d)}); were the KS and S files swapped, or S negated?"
        )
    scale = sp.diags(1.0 / np.sqrt(d))
    lam, converged = _smallest_eigenvalue((scale @ s @ scale).tocsr())
    if lam <= 0:
        raise DFTError(
            f"{path}: overlap matrix is not positive definite (smallest eigenvalue of the diagonally scaled S "
            f"{lam:.3g}); were the KS and S files swapped, or is S damaged?"
        )
    if not converged:
        logger.warning(
            "%s: could not confirm that S is positive definite (Lanczos did not converge; smallest Ritz value %.3g)",
            path,
            lam,
        )
    elif lam < _NEAR_SINGULAR:
        logger.warning(
            "%s: S is nearly singular (smallest scaled eigenvalue %.3g): linearly dependent basis", path, lam
        )
    return lam


def check_hamiltonian(h: sp.spmatrix, path: str | Path) -> None:
    """Refuse an H that is all zero (non-finite values are refused when the file is read)."""
    h = sp.csr_matrix(h)
    if h.nnz == 0 or not np.any(h.data != 0):
        raise DFTError(f"{path}: Kohn-Sham matrix is all zero (a damaged or placeholder file)")


def check_structure(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, where: str) -> None:
    """:func:`hamforge._structure_checks.check_structure` raising :class:`DFTError` (``where`` names the source)."""
    from hamforge._structure_checks import check_structure as _check

    _check(positions, cell, pbc, where, error=DFTError)

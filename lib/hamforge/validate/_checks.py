"""Input checks for validation: H symmetric, S symmetric positive definite, pred/ref files compatible.

Every failure is a :class:`ValidationError` (a ``ValueError``) whose message names the file (or the label the
caller gave) and the matrix, so the CLI prints one line instead of a numpy traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from hamforge._errors import HamforgeError

__all__ = [
    "DENSE_LIMIT",
    "SYMMETRY_RTOL",
    "ValidationError",
    "check_positive_definite",
    "check_same_structure",
    "check_symmetric",
    "load_checked",
    "symmetric_lu",
]

# Relative asymmetry max|A - A^T| / max|A| accepted. Parsed CP2K matrices and assembled predictions are
# symmetrized exactly (0); 1e-8 leaves room for a float32 prediction written as float64 (eps 1.2e-7 per
# element, mostly cancelling) while rejecting a wrong transpose or half-filled triangle (O(1)).
SYMMETRY_RTOL = 1e-8
# Largest matrix diagonalized densely (scipy.linalg.eigh). Measured here: N=2,000 ~4 s, N=5,000 ~45 s.
DENSE_LIMIT = 5000


class ValidationError(ValueError, HamforgeError):
    """Bad input for validation (asymmetric H, indefinite S, mismatched files, unusable structure)."""


def _as_csr(a, source: str, name: str) -> sp.csr_matrix:
    if not sp.issparse(a):
        a = np.asarray(a)
        if a.ndim != 2:
            raise ValidationError(f"{source}: {name}: expected a 2-D matrix, got shape {a.shape}")
    m = sp.csr_matrix(a, dtype=np.float64)
    if m.shape[0] != m.shape[1]:
        raise ValidationError(f"{source}: {name}: matrix is not square, shape {m.shape}")
    if m.nnz and not np.all(np.isfinite(m.data)):
        raise ValidationError(f"{source}: {name}: non-finite values")
    return m


def check_symmetric(a, source: str = "<memory>", name: str = "H", rtol: float = SYMMETRY_RTOL) -> sp.csr_matrix:
    """Return ``a`` as exactly symmetric CSR, ``(a + a^T) / 2``, after checking ``max|a - a^T| <= rtol max|a|``."""
    m = _as_csr(a, source, name)
    scale = float(abs(m).max()) if m.nnz else 0.0
    asym = float(abs(m - m.T).max()) if m.nnz else 0.0
    if asym > rtol * scale:
        raise ValidationError(
            f"{source}: {name} is not symmetric: max|{name} - {name}^T| = {asym:.3g} exceeds "
            f"{rtol:g} x max|{name}| = {rtol * scale:.3g}"
        )
    return ((m + m.T) * 0.5).tocsr()


def symmetric_lu(a: sp.spmatrix) -> tuple[object, int | None]:
    """Sparse LU of a symmetric matrix with symmetric ordering only, and its number of negative eigenvalues.

    SuperLU with ``SymmetricMode`` and ``diag_pivot_thresh=0`` keeps the pivots on the diagonal, so
    ``P A P^T = L U`` with ``U = D L^T``: by Sylvester's law of inertia the number of negative entries of
    ``diag(U)`` is the number of negative eigenvalues of ``A`` (for ``A = H - E S`` with S positive definite:
    the number of generalized eigenvalues below E). Returns ``(lu, None)`` when SuperLU had to pivot off the
    diagonal anyway (row and column permutations differ), i.e. when the count cannot be read off.
    Raises ``RuntimeError`` (from SuperLU) when ``a`` is exactly singular.
    """
    lu = sla.splu(sp.csc_matrix(a), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return lu, None
    return lu, int(np.count_nonzero(lu.U.diagonal() < 0))


def check_positive_definite(s, source: str = "<memory>", name: str = "S", dense_limit: int = DENSE_LIMIT) -> float:
    """Raise unless the symmetric matrix ``s`` is positive definite; return its smallest eigenvalue.

    The project's one check (:func:`hamforge.basis.check_overlap_positive`: dense up to ``dense_limit`` rows,
    ARPACK Lanczos beyond), after the symmetry check; errors are :class:`ValidationError` naming the file.
    """
    from hamforge.basis import check_overlap_positive

    m = check_symmetric(s, source, name)
    return check_overlap_positive(m, where=source, error=ValidationError, dense_max=dense_limit)


@dataclass(frozen=True)
class CheckedMatrices:
    """H and S after the checks (exactly symmetric CSR) and S's smallest eigenvalue."""

    H: sp.csr_matrix
    S: sp.csr_matrix
    s_min: float


def check_matrices(
    h, s, source: str = "<memory>", *, rtol: float = SYMMETRY_RTOL, dense_limit: int = DENSE_LIMIT
) -> CheckedMatrices:
    """Check one (H, S) pair: same square shape, H symmetric, S symmetric positive definite."""
    hm = check_symmetric(h, source, "H", rtol)
    sm = check_symmetric(s, source, "S", rtol)
    if hm.shape != sm.shape:
        raise ValidationError(f"{source}: H has shape {hm.shape} but S has shape {sm.shape}")
    lam = check_positive_definite(sm, source, "S", dense_limit)
    return CheckedMatrices(hm, sm, lam)


def check_same_structure(pred, ref, pred_source: str, ref_source: str, pos_tol: float = 1e-4) -> None:
    """Raise unless two :class:`~hamforge.io.MatrixData` describe the same atoms and orbitals.

    ``pos_tol`` (Angstrom): positions may differ by rounding only; 1e-4 A is far below any structural change
    that would alter H measurably and far above float32 round-off of coordinates < 100 A (~1e-5 A).
    """
    where = f"{pred_source} vs {ref_source}"
    if len(pred.numbers) != len(ref.numbers) or np.any(pred.numbers != ref.numbers):
        raise ValidationError(f"{where}: /structure/numbers differ ({len(pred.numbers)} vs {len(ref.numbers)} atoms)")
    dpos = float(np.max(np.abs(pred.positions - ref.positions))) if len(ref.numbers) else 0.0
    if dpos > pos_tol:
        raise ValidationError(f"{where}: /structure/positions differ by up to {dpos:.3g} A (> {pos_tol:g} A)")
    if pred.H.shape != ref.H.shape:
        raise ValidationError(f"{where}: /H shapes differ, {pred.H.shape} vs {ref.H.shape} (different basis?)")
    tp, tr = pred.orbitals(), ref.orbitals()
    if not (np.array_equal(tp.l, tr.l) and np.array_equal(tp.atom, tr.atom)):
        raise ValidationError(f"{where}: /basis gives different orbital layouts")


def load_checked(path: str | os.PathLike, *, rtol: float = SYMMETRY_RTOL, dense_limit: int = DENSE_LIMIT):
    """Read a matrix file and check its H and S; return ``(MatrixData, CheckedMatrices)``."""
    from hamforge.io import read_matrix_file

    data = read_matrix_file(path)
    return data, check_matrices(data.H, data.S, str(path), rtol=rtol, dense_limit=dense_limit)

"""Generalized eigenvalues of (H, S): dense for small matrices, shift-invert windows for large ones.

Every state carries its global index in the full ascending spectrum (0-based), so spectra of a prediction and
a reference computed as windows can be matched state by state. For shift-invert the index comes from the
inertia of ``H - sigma S`` (the number of eigenvalues below sigma), read off the same sparse LU that drives
the eigensolver (see :func:`hamforge.validate.symmetric_lu`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from hamforge.validate._checks import DENSE_LIMIT, ValidationError, symmetric_lu

__all__ = ["Spectrum", "count_below", "find_gap_energy", "generalized_spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """Eigenvalues (Hartree, ascending) of H x = e S x and their global indices in the full spectrum."""

    energies: np.ndarray  # (k,) float64 | Hartree, ascending
    index: np.ndarray  # (k,) int64 | position of each state in the full ascending spectrum
    n_total: int  # size of the full problem (number of orbitals)
    method: str  # "dense" or "shift-invert"
    sigma: float | None = None  # shift used by shift-invert (Hartree)

    @property
    def is_complete(self) -> bool:
        return len(self.energies) == self.n_total


def count_below(h: sp.spmatrix, s: sp.spmatrix, energy: float, source: str = "<memory>") -> int:
    """Number of generalized eigenvalues of (H, S) below ``energy`` (S positive definite), by inertia."""
    _, n = _factorize(h, s, energy, source)
    return n


def _factorize(h, s, sigma: float, source: str):
    try:
        lu, n_neg = symmetric_lu((h - sigma * s).tocsc())
    except RuntimeError as exc:  # sigma is (numerically) an eigenvalue: SuperLU reports an exact zero pivot
        raise ValidationError(f"{source}: H - {sigma:.12g} S is singular; choose another shift ({exc})") from exc
    if n_neg is None:
        raise ValidationError(
            f"{source}: the sparse LU of H - {sigma:.6g} S needed off-diagonal pivots, so the states' indices are "
            "unknown; raise dense_limit to diagonalize densely or choose another shift"
        )
    return lu, n_neg


def generalized_spectrum(
    h: sp.spmatrix,
    s: sp.spmatrix,
    *,
    dense_limit: int = DENSE_LIMIT,
    k: int = 100,
    sigma: float | None = None,
    source: str = "<memory>",
) -> Spectrum:
    """Eigenvalues of ``H x = e S x`` for symmetric H and positive definite S (check them first).

    Up to ``dense_limit`` orbitals: all of them, dense ``scipy.linalg.eigh``. Beyond: a window of ``k`` states
    around ``sigma`` (Hartree, required), ``k // 2`` just below it and the rest just above, by shift-invert
    Lanczos ``eigsh(H, M=S, sigma=sigma)`` with the operator ``(H - sigma S)^{-1}`` applied through one
    symmetric sparse LU, whose inertia also gives the global indices.
    """
    n = h.shape[0]
    if n <= dense_limit:
        e = sl.eigh(h.toarray(), s.toarray(), eigvals_only=True)
        return Spectrum(np.asarray(e, dtype=np.float64), np.arange(n, dtype=np.int64), n, "dense")
    if sigma is None:
        raise ValidationError(f"{source}: {n} orbitals > dense_limit {dense_limit}: shift-invert needs a shift (sigma)")
    k = int(min(k, n - 1))
    if k < 1:
        raise ValidationError(f"{source}: k must be >= 1 for shift-invert, got {k}")
    hc, sc = sp.csc_matrix(h), sp.csc_matrix(s)
    lu, n_below = _factorize(hc, sc, sigma, source)
    op_inv = sla.LinearOperator((n, n), matvec=lu.solve, dtype=np.float64)
    # half the window below sigma, half above (fewer where the spectrum ends): in shift-invert mode the
    # eigenvalues of (H - sigma S)^{-1} S are 1 / (e - sigma), so 'SA' gives the states just below sigma
    # and 'LA' those just above
    k_below = min(k // 2, n_below)
    k_above = min(k - k_below, n - n_below)
    k_below = min(k - k_above, n_below)
    # v0 fixed: ARPACK's random start would make repeated runs differ in the last digits
    v0 = np.ones(n) / np.sqrt(n)
    parts = []
    for count, which in ((k_below, "SA"), (k_above, "LA")):
        if count == 0:
            parts.append(np.zeros(0))
            continue
        if count >= n - 1:
            raise ValidationError(f"{source}: a shift-invert window of {k} states needs more than {n} orbitals")
        e = sla.eigsh(hc, k=count, M=sc, sigma=sigma, which=which, OPinv=op_inv, v0=v0, return_eigenvectors=False)
        parts.append(np.sort(np.asarray(e, dtype=np.float64)))
    below, above = parts
    if np.any(below >= sigma) or np.any(above <= sigma):
        raise ValidationError(f"{source}: shift-invert at sigma={sigma:.6g} returned states on the wrong side")
    e = np.concatenate([below, above])
    index = np.arange(n_below - below.size, n_below + above.size, dtype=np.int64)
    return Spectrum(e, index, n, "shift-invert", float(sigma))


def find_gap_energy(
    h: sp.spmatrix,
    s: sp.spmatrix,
    n_occupied: int,
    s_min: float,
    *,
    source: str = "<memory>",
    tol: float = 1e-6,
    max_steps: int = 80,
    guess: float | None = None,
    window: int = 48,
) -> float:
    """An energy E with exactly ``n_occupied`` generalized eigenvalues below it, by targeted inertia search.

    Each step is one sparse LU of ``H - sigma S`` (its inertia: the states below sigma). The same LU then drives a
    shift-invert Lanczos run for up to ``window`` states on the side of the gap: when they reach states
    ``n_occupied - 1`` and ``n_occupied`` the next shift is the middle of that gap (verified by the next LU), else
    it is extrapolated from the local density of states the window measured. The first shift is ``guess``
    (default: the mean ``H_ii / S_ii``); the bracket ``|e| <= ||H||_inf / s_min`` (Rayleigh quotient bound),
    narrowed by every count, catches any overshoot by bisection. Typically 2-3 factorizations, where bisection
    from the bracket took ~14. When no such E exists (a degenerate level at the Fermi energy) it stops once the
    bracket is narrower than ``tol`` Hartree, or the gap found is, and returns its middle.
    """
    n = h.shape[0]
    if not 0 < n_occupied < n:
        raise ValidationError(f"{source}: n_occupied must be in 1..{n - 1}, got {n_occupied}")
    hc, sc = sp.csc_matrix(h), sp.csc_matrix(s)
    bound = float(abs(hc).sum(axis=1).max()) / s_min * (1 + 1e-9) + 1e-9
    lo, hi = -bound, bound
    if guess is None:
        guess = float(np.mean(hc.diagonal() / sc.diagonal()))
    sigma = float(np.clip(guess, lo, hi))
    v0 = np.ones(n) / np.sqrt(n)
    for _ in range(max_steps):
        lu, c = _factorize(hc, sc, sigma, source)
        if c == n_occupied:
            return sigma
        if c < n_occupied:
            lo = sigma
        else:
            hi = sigma
        if hi - lo < tol:
            return 0.5 * (lo + hi)
        need = n_occupied - c  # states between sigma and the gap (> 0: above it)
        m = int(min(abs(need) + 1, window, (n - c) if need > 0 else c, n - 2))
        nxt = None
        if m >= 1:
            op_inv = sla.LinearOperator((n, n), matvec=lu.solve, dtype=np.float64)
            which = "LA" if need > 0 else "SA"  # shift-invert: just above / just below sigma
            e = np.sort(
                sla.eigsh(hc, k=m, M=sc, sigma=sigma, which=which, OPinv=op_inv, v0=v0, return_eigenvectors=False)
            )
            if abs(need) + 1 <= m:  # the window holds both states around the gap
                pair = (e[need - 1], e[need]) if need > 0 else (e[0], e[1])
                if pair[1] - pair[0] < tol:
                    return float(0.5 * (pair[0] + pair[1]))
                nxt = float(0.5 * (pair[0] + pair[1]))
            else:  # extrapolate with the window's density of states
                far = e[-1] if need > 0 else e[0]
                nxt = sigma + (far - sigma) * abs(need) / m
        sigma = nxt if nxt is not None and lo < nxt < hi else 0.5 * (lo + hi)
    return 0.5 * (lo + hi)

"""T(E) at every energy from one eigendecomposition, for energy-independent self-energies (wide-band contacts).

With Sigma_L, Sigma_R independent of E (the wide-band limit), ``A(z) = z S - K`` with ``K = H + Sigma_L + Sigma_R``
is a linear pencil. One generalized eigendecomposition ``K V = S V Lambda`` (dense, O(N^3) once) gives
``A(z)^{-1} = V (z - Lambda)^{-1} W`` with ``W = (S V)^{-1}``, so with ``A0`` the rows of ``V`` on the first layer
and ``B`` the columns of ``W`` on the last one::

    T(z) = Tr[Gamma_L G Gamma_R G^dagger] = sum_jk d_j M_jk conj(d_k),   d = 1 / (z - lambda),
    M = (A0^dagger Gamma_L A0)^T o (B Gamma_R B^dagger)    (o: elementwise)

O(N^2) per energy instead of an RGF sweep's O(L n^3): every energy, the half-step grid and the 10 eta rerun of
the convergence check come from the same decomposition. Only for devices up to ``SPECTRAL_LIMIT`` orbitals (dense
N x N complex matrices); an ill-conditioned eigenbasis would lose digits, so the result is checked against the
RGF at a few energies of every call and the RGF is used instead when they differ (logged).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["SPECTRAL_LIMIT", "SpectralSolver"]

logger = logging.getLogger(__name__)

# Largest device (orbitals) decomposed densely: 6,000 complex orbitals is ~0.6 GB per N x N matrix, a few minutes
# of LAPACK on 2 cores; beyond, the RGF (O(L n^3) per energy) is the only affordable route.
SPECTRAL_LIMIT = 6000
# Accepted difference from the RGF at the check energies: |dT| <= CHECK_TOL * max(1, T).
CHECK_TOL = 1e-6


class SpectralSolver:
    """T(E) of a layered device with energy-independent end-layer self-energies (module docstring)."""

    def __init__(self, dev, sigma_l: np.ndarray, sigma_r: np.ndarray):
        import scipy.linalg as sla

        n = int(dev.bounds[-1])
        h, s = _dense(dev)
        k = h.astype(np.complex128)
        a0, b0 = int(dev.bounds[1]), int(dev.bounds[-2])
        k[:a0, :a0] += sigma_l
        k[b0:, b0:] += sigma_r
        lam, v = sla.eig(k, s)
        if not np.all(np.isfinite(lam)):
            raise np.linalg.LinAlgError("infinite eigenvalues: S is singular")
        w = np.linalg.inv(s @ v)
        gam_l = 1j * (sigma_l - sigma_l.conj().T)
        gam_r = 1j * (sigma_r - sigma_r.conj().T)
        a = v[:a0, :]
        b = w[:, b0:]
        p = a.conj().T @ gam_l @ a
        q = b @ gam_r @ b.conj().T
        self.lam, self.m, self.n = lam, p.T * q, n

    def transmission(self, energies: np.ndarray, eta: float) -> np.ndarray:
        z = np.asarray(energies, np.float64) + 1j * eta
        out = np.empty(z.shape[0])
        step = max(1, (1 << 24) // max(self.n, 1))
        for s in range(0, z.shape[0], step):
            d = 1.0 / (z[s : s + step, None] - self.lam[None, :])
            out[s : s + step] = np.einsum("ej,ej->e", d @ self.m, d.conj()).real
        return out


def _dense(dev) -> tuple[np.ndarray, np.ndarray]:
    """The device's H and S as dense matrices in layer order."""
    n = int(dev.bounds[-1])
    h, s = np.zeros((n, n)), np.zeros((n, n))
    b = dev.bounds
    for i in range(dev.n_layers):
        h[b[i] : b[i + 1], b[i] : b[i + 1]] = dev.H_diag[i]
        s[b[i] : b[i + 1], b[i] : b[i + 1]] = dev.S_diag[i]
        if i + 1 < dev.n_layers:
            h[b[i] : b[i + 1], b[i + 1] : b[i + 2]] = dev.H_up[i]
            h[b[i + 1] : b[i + 2], b[i] : b[i + 1]] = dev.H_up[i].T
            s[b[i] : b[i + 1], b[i + 1] : b[i + 2]] = dev.S_up[i]
            s[b[i + 1] : b[i + 2], b[i] : b[i + 1]] = dev.S_up[i].T
    return h, s

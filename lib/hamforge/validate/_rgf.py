"""Recursive Green's function through a block-tridiagonal device and the transmission T(E).

With A = z S - H - Sigma_L - Sigma_R (Sigma_L on layer 0, Sigma_R on layer N-1), the left-connected
recursion g_0 = A_00^{-1}, g_n = (A_nn - A_{n,n-1} g_{n-1} A_{n-1,n})^{-1} and G_{0,n} = -G_{0,n-1} A_{n-1,n} g_n
give the corner block G = G_{0,N-1} of A^{-1} in O(N) block operations, and

    T(E) = Tr[Gamma_L G Gamma_R G^dagger],   Gamma = i (Sigma - Sigma^dagger).

Every step is batched over energies (leading axis); energies are processed in chunks so memory stays bounded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from hamforge.validate._layers import LayeredDevice, LeadBlocks, TransportError
from hamforge.validate._surface import lead_self_energy, wide_band_self_energy

logger = logging.getLogger(__name__)

__all__ = ["TransmissionResult", "rgf_transmission", "self_energies", "transmission"]

# bytes of complex work arrays per chunk of energies (a few (nE, n, n) arrays are alive at once)
_CHUNK_BYTES = 64 * 2**20


def rgf_transmission(
    dev: LayeredDevice, energies: np.ndarray, eta: float, sigma_l: np.ndarray, sigma_r: np.ndarray
) -> np.ndarray:
    """T(E) (nE,) of ``dev`` with given self-energies (nE, n_0, n_0) and (nE, n_{N-1}, n_{N-1})."""
    z = (np.asarray(energies, dtype=np.float64) + 1j * eta)[:, None, None]
    nl = dev.n_layers
    if sigma_l.shape[1:] != dev.H_diag[0].shape or sigma_r.shape[1:] != dev.H_diag[-1].shape:
        raise TransportError(
            f"self-energies of shapes {sigma_l.shape[1:]} and {sigma_r.shape[1:]} do not fit the end layers "
            f"({dev.H_diag[0].shape}, {dev.H_diag[-1].shape})"
        )

    def diag(i):
        a = z * dev.S_diag[i] - dev.H_diag[i]
        if i == 0:
            a = a - sigma_l
        if i == nl - 1:
            a = a - sigma_r
        return a

    g = np.linalg.inv(diag(0))
    g0n = g
    for i in range(1, nl):
        up = z * dev.S_up[i - 1] - dev.H_up[i - 1]  # A_{i-1,i}
        down = np.swapaxes(up, 1, 2)  # A_{i,i-1} = A_{i-1,i}^T (H, S real symmetric)
        g = np.linalg.inv(diag(i) - down @ g @ up)
        g0n = -(g0n @ up) @ g
    gam_l = 1j * (sigma_l - np.conj(np.swapaxes(sigma_l, 1, 2)))
    gam_r = 1j * (sigma_r - np.conj(np.swapaxes(sigma_r, 1, 2)))
    # Tr[(Gamma_L G)(Gamma_R G^dagger)] as a sum of elementwise products: two batched matmuls, no 4-operand einsum
    left = gam_l @ g0n
    right = gam_r @ np.conj(np.swapaxes(g0n, 1, 2))
    return np.einsum("eij,eji->e", left, right).real


def self_energies(
    dev: LayeredDevice,
    energies: np.ndarray,
    eta: float,
    left: LeadBlocks | None,
    right: LeadBlocks | None,
    wide_band: float | None = None,
    **kw,
):
    """(Sigma_L, Sigma_R) on the end layers: semi-infinite leads (``kw``: :func:`hamforge.validate.surface_green`),
    or the wide-band limit when ``wide_band`` is set."""
    e = np.asarray(energies, dtype=np.float64)
    if wide_band is not None:
        return (
            wide_band_self_energy(e.size, dev.S_diag[0], wide_band),
            wide_band_self_energy(e.size, dev.S_diag[-1], wide_band),
        )
    if left is None or right is None:
        raise TransportError("lead blocks (left and right) are required unless the wide-band limit is used")
    for side, lead, n in (("left", left, dev.H_diag[0].shape[0]), ("right", right, dev.H_diag[-1].shape[0])):
        if lead.n != n:
            raise TransportError(f"{side} lead has {lead.n} orbitals per cell but the device's end layer has {n}")
    return lead_self_energy(e, left, "left", eta, **kw), lead_self_energy(e, right, "right", eta, **kw)


@dataclass(frozen=True)
class TransmissionResult:
    energies: np.ndarray  # (nE,) Hartree
    transmission: np.ndarray  # (nE,) NaN where a lead was not solved (see failures)
    eta: float  # Hartree
    failures: dict = field(default_factory=dict)  # E (Hartree) -> why its lead Green's function was not solved
    method: str = "rgf"  # "rgf" or "spectral" (hamforge.validate._spectral)


def transmission(
    dev: LayeredDevice,
    energies,
    eta: float,
    left: LeadBlocks | None = None,
    right: LeadBlocks | None = None,
    *,
    wide_band: float | None = None,
    solver=None,
    **kw,
) -> TransmissionResult:
    """T(E) of the device on an energy grid (Hartree), chunked over energies; see :func:`rgf_transmission`.

    An energy whose lead surface Green's function neither decimation nor mode matching solves
    (``hamforge.validate._surface``) gets T = NaN and its reason in ``failures``; the others are unaffected.
    ``solver``: a :class:`hamforge.validate._spectral.SpectralSolver` of this device and its wide-band
    self-energies; its T(E) is used when it matches the RGF at the first, middle and last energy."""
    e = np.atleast_1d(np.asarray(energies, dtype=np.float64))
    if not eta > 0:
        raise TransportError(f"eta must be > 0 Hartree, got {eta}")
    if solver is not None and wide_band is not None:
        from hamforge.validate._spectral import CHECK_TOL

        t = solver.transmission(e, eta)
        pick = np.unique([0, e.size // 2, e.size - 1])
        ref = transmission(dev, e[pick], eta, left, right, wide_band=wide_band, **kw).transmission
        diff = float(np.max(np.abs(t[pick] - ref) / np.maximum(1.0, np.abs(ref))))
        if np.all(np.isfinite(t)) and diff <= CHECK_TOL:
            return TransmissionResult(e, t, float(eta), {}, "spectral")
        logger.warning("spectral T(E) differs from the RGF by %.3g (> %g) at the check energies: RGF", diff, CHECK_TOL)
    nmax = int(dev.layer_sizes.max())
    chunk = max(1, _CHUNK_BYTES // (16 * 6 * nmax * nmax))
    out = np.full(e.size, np.nan)
    failures: dict = {}
    for start in range(0, e.size, chunk):
        ec = e[start : start + chunk]
        sl, sr = self_energies(dev, ec, eta, left, right, wide_band, failures=failures, **kw)
        ok = np.isfinite(sl).all(axis=(1, 2)) & np.isfinite(sr).all(axis=(1, 2))
        if ok.any():
            out[start : start + chunk][ok] = rgf_transmission(dev, ec[ok], eta, sl[ok], sr[ok])
    return TransmissionResult(e, out, float(eta), failures, "rgf")

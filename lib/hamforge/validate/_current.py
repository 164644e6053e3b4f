"""Landauer current I(V) = (2 e^2 / h) * integral T(E) [f_L(E) - f_R(E)] dE / e, in Amperes.

Constants (CODATA 2018 via scipy.constants): G0 = 2 e^2 / h = 7.748091729e-5 S, 1 Hartree = 27.211386245988 eV,
k_B = 8.617333262e-5 eV/K. Energies are Hartree; a bias V (volts) puts the chemical potentials at
mu_L = mu + V/2 and mu_R = mu - V/2 (so V > 0 drives a positive current from left to right) and the
transmission is taken bias-independent (no potential drop in H). T is linearly interpolated between grid
points and the Fermi window is resolved on a sub-grid (spacing <= kT / 8), so the result converges with the
grid step of T alone.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as const

from hamforge.io.units import HARTREE_TO_EV
from hamforge.validate._layers import TransportError

__all__ = ["G0_SIEMENS", "KB_HARTREE_PER_K", "fermi", "landauer_current"]

G0_SIEMENS = 2.0 * const.e**2 / const.h  # conductance quantum incl. spin, 7.748091729e-5 S
KB_HARTREE_PER_K = const.k / const.physical_constants["Hartree energy"][0]  # 3.166811563e-6 Ha/K
# the Fermi window is taken to be zero beyond this many kT from the chemical potentials (exp(-40) ~ 4e-18)
_WINDOW_KT = 40.0


def fermi(e: np.ndarray, mu: float, kt: float) -> np.ndarray:
    """Fermi-Dirac occupation; kt = 0 gives the step function (1 below mu, 1/2 at mu)."""
    if kt == 0:
        return np.where(e < mu, 1.0, np.where(e > mu, 0.0, 0.5))
    return 0.5 * (1.0 - np.tanh(0.5 * (e - mu) / kt))  # tanh form: no overflow far from mu


def landauer_current(
    energies: np.ndarray, trans: np.ndarray, biases, *, mu: float, temperature: float = 300.0
) -> np.ndarray:
    """Current (A) at each bias (V) from T(E) on an ascending grid (Hartree); see module docstring.

    Raises :class:`TransportError` when the grid does not cover the bias window (mu -/+ V/2, widened by
    40 kT) of any bias, since the missing part of the integral would be silently lost.
    """
    e = np.asarray(energies, dtype=np.float64)
    t = np.asarray(trans, dtype=np.float64)
    v = np.atleast_1d(np.asarray(biases, dtype=np.float64))
    if e.ndim != 1 or e.shape != t.shape or e.size < 2 or np.any(np.diff(e) <= 0):
        raise TransportError("landauer_current needs an ascending energy grid of >= 2 points and T of the same length")
    if temperature < 0:
        raise TransportError(f"temperature must be >= 0 K, got {temperature}")
    kt = temperature * KB_HARTREE_PER_K
    step = float(np.min(np.diff(e)))
    out = np.empty(v.size)
    for k, bias in enumerate(v):
        half = 0.5 * bias / HARTREE_TO_EV
        lo, hi = mu - abs(half) - _WINDOW_KT * kt, mu + abs(half) + _WINDOW_KT * kt
        if bias == 0:
            out[k] = 0.0
            continue
        if lo < e[0] or hi > e[-1]:
            raise TransportError(
                f"energy grid [{e[0]:.6g}, {e[-1]:.6g}] Ha does not cover the bias window [{lo:.6g}, {hi:.6g}] Ha "
                f"of V = {bias:g} V at {temperature:g} K (mu = {mu:.6g} Ha)"
            )
        h = min(step, kt / 8.0) if kt > 0 else step
        n = int(np.ceil((hi - lo) / h)) + 1
        fine = np.linspace(lo, hi, max(n, 2))
        if kt == 0:  # exact window edges for the step function
            fine = np.union1d(fine, [mu - half, mu + half])
        window = fermi(fine, mu + half, kt) - fermi(fine, mu - half, kt)
        out[k] = G0_SIEMENS * HARTREE_TO_EV * np.trapezoid(np.interp(fine, e, t) * window, fine)
    return out

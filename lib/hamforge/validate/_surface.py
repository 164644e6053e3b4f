"""Lead self-energies: Sancho-Rubio decimation with overlap (z S - H), checked; and the wide-band limit.

Written here rather than taken from sisl/kwant because it must run batched over energies inside the RGF with
the lead blocks of our own layering, and fail loudly; kwant (tests) and sisl's ``RecursiveSI`` are the
independent references. All arrays carry a leading energy axis (nE, n, n); z = E + i eta, energies Hartree.

With M = z S - H (blocks M00, M01 and M10 = M01^T, H and S real symmetric) the surface Green's functions obey::

    right lead (cells 0, 1, ... to the right): g_R = (M00 - M01 g_R M10)^{-1}
    left lead  (cells ..., -2, -1 to the left): g_L = (M00 - M10 g_L M01)^{-1}

and the self-energies on the device's end layers are Sigma_L = M10 g_L M01, Sigma_R = M01 g_R M10
(López Sancho, López Sancho and Rubio, J. Phys. F 15, 851 (1985)).
"""

from __future__ import annotations

import numpy as np

from hamforge.validate._layers import LeadBlocks, TransportError

__all__ = ["SurfaceGreenError", "lead_self_energy", "surface_green", "wide_band_self_energy"]

# Decimation stops when the renormalized couplings fall below this fraction of the onsite block: their
# contribution to g is then below double-precision round-off.
DECIMATION_TOL = 1e-14
# Accepted relative residual max|(M00 - M01 g M10) g - I|; round-off alone gives ~1e-13 (cond(g) x eps) away
# from band edges; a non-converged decimation leaves O(1).
RESIDUAL_TOL = 1e-8


class SurfaceGreenError(TransportError):
    """Sancho-Rubio decimation did not converge, or its result fails the surface Green's function equation."""


def _m_blocks(lead: LeadBlocks, z: np.ndarray):
    zz = z[:, None, None]
    m00 = zz * lead.S00 - lead.H00
    m01 = zz * lead.S01 - lead.H01
    m10 = zz * lead.S01.T - lead.H01.T
    return m00, m01, m10


def surface_green(
    energies: np.ndarray,
    lead: LeadBlocks,
    side: str,
    eta: float,
    *,
    max_iter: int = 200,
    residual_tol: float = RESIDUAL_TOL,
) -> np.ndarray:
    """Surface Green's function (nE, n, n) of a semi-infinite lead at z = E + i eta (see module docstring).

    ``side`` is ``"left"`` or ``"right"``. Raises :class:`SurfaceGreenError` naming the energies where the
    decimation did not converge within ``max_iter`` steps or where the residual exceeds ``residual_tol``.
    The iterations needed grow like log2(bandwidth / eta): about 40 for eta = 1e-8 Hartree.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if not eta > 0:
        raise TransportError(f"eta must be > 0 Hartree for the surface Green's function, got {eta}")
    z = np.asarray(energies, dtype=np.float64) + 1j * eta
    m00, m01, m10 = _m_blocks(lead, z)
    eps_s, eps = m00.copy(), m00.copy()
    a, b = m01.copy(), m10.copy()
    scale = np.maximum(np.abs(m00).max(axis=(1, 2)), 1e-300)
    done = np.zeros(z.size, dtype=bool)
    for _ in range(max_iter):
        todo = ~done
        if not todo.any():
            break
        e_, a_, b_ = eps[todo], a[todo], b[todo]
        ga = np.linalg.solve(e_, a_)  # eps^{-1} a
        gb = np.linalg.solve(e_, b_)  # eps^{-1} b
        agb, bga = a_ @ gb, b_ @ ga
        eps_s[todo] -= agb if side == "right" else bga
        eps[todo] = e_ - agb - bga
        a[todo] = -a_ @ ga
        b[todo] = -b_ @ gb
        size = np.maximum(np.abs(a[todo]).max(axis=(1, 2)), np.abs(b[todo]).max(axis=(1, 2)))
        done[np.flatnonzero(todo)[size < DECIMATION_TOL * scale[todo]]] = True
    if not done.all():
        bad = np.asarray(energies)[~done]
        raise SurfaceGreenError(
            f"Sancho-Rubio decimation did not converge in {max_iter} steps at {bad.size} energies "
            f"(first {bad[0]:.8g} Ha, eta {eta:g} Ha); raise eta or max_iter"
        )
    g = np.linalg.inv(eps_s)
    inner = m01 @ g @ m10 if side == "right" else m10 @ g @ m01
    eye = np.eye(lead.n)
    res = np.abs((m00 - inner) @ g - eye).max(axis=(1, 2))
    if np.any(res > residual_tol):
        i = int(np.argmax(res))
        raise SurfaceGreenError(
            f"{side} surface Green's function fails its equation: residual {res[i]:.3g} > {residual_tol:g} at "
            f"E = {energies[i]:.8g} Ha (eta {eta:g} Ha); near a band edge raise eta"
        )
    return g


def lead_self_energy(energies: np.ndarray, lead: LeadBlocks, side: str, eta: float, **kw) -> np.ndarray:
    """Self-energy (nE, n, n) of a lead on the adjacent device layer: M10 g_L M01 (left), M01 g_R M10 (right)."""
    g = surface_green(energies, lead, side, eta, **kw)
    _, m01, m10 = _m_blocks(lead, np.asarray(energies, dtype=np.float64) + 1j * eta)
    return m10 @ g @ m01 if side == "left" else m01 @ g @ m10


def wide_band_self_energy(n_energies: int, s_layer: np.ndarray, gamma: float) -> np.ndarray:
    """Wide-band-limit self-energy -i (gamma / 2) S_layer on a device end layer, the same at every energy.

    ``gamma`` (Hartree) is the energy-independent broadening; weighting by the layer's overlap keeps it
    independent of the (non-orthogonal) basis.
    """
    if not gamma > 0:
        raise TransportError(f"wide-band gamma must be > 0 Hartree, got {gamma}")
    sig = -0.5j * gamma * np.asarray(s_layer, dtype=np.float64)
    return np.broadcast_to(sig, (n_energies, *sig.shape)).copy()

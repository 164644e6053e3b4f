"""Lead self-energies: Sancho-Rubio decimation with overlap (z S - H), a mode-matching fallback, checked; and the
wide-band limit.

Written here rather than taken from sisl/kwant because it must run batched over energies inside the RGF with
the lead blocks of our own layering, and fail loudly; kwant (tests) and sisl's ``RecursiveSI`` are the
independent references. All arrays carry a leading energy axis (nE, n, n); z = E + i eta, energies Hartree.

With M = z S - H (blocks M00, M01 and M10 = M01^T, H and S real symmetric) the surface Green's functions obey::

    right lead (cells 0, 1, ... to the right): g_R = (M00 - M01 g_R M10)^{-1}
    left lead  (cells ..., -2, -1 to the left): g_L = (M00 - M10 g_L M01)^{-1}

and the self-energies on the device's end layers are Sigma_L = M10 g_L M01, Sigma_R = M01 g_R M10
(López Sancho, López Sancho and Rubio, J. Phys. F 15, 851 (1985)).

Decimation divides by the renormalized on-site block, which is (nearly) singular at some energies inside a band
(a chain at its band centre: M00 = i eta). There, and wherever decimation does not converge or its result fails
the equation, the surface Green's function is taken from the lead's Bloch modes instead (mode matching, Ando,
Phys. Rev. B 44, 8017 (1991)): the 2n solutions of ``M_back u + M00 lambda u + M_fwd lambda^2 u = 0`` (a
generalized eigenproblem of size 2n, with ``M_fwd = M01, M_back = M10`` for the right lead and swapped for the
left one) split, at eta > 0, into n decaying (|lambda| < 1) and n growing ones; with the decaying ones
``U``, ``Lambda``, ``F = U Lambda U^{-1}`` propagates a cell to the next and ``g = (M00 + M_fwd F)^{-1}``. No
division by a renormalized block, so it holds at every energy of a band; it costs a dense eigensolve per energy,
hence only the fallback. Every result is checked against its equation; an energy that neither method solves is
reported with the residuals of both and left out (NaN), never aborting the other energies unless asked to.
"""

from __future__ import annotations

import numpy as np

from hamforge.validate._layers import LeadBlocks, TransportError

__all__ = ["SurfaceGreenError", "lead_self_energy", "surface_green", "surface_green_modes", "wide_band_self_energy"]

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
    failures: dict | None = None,
) -> np.ndarray:
    """Surface Green's function (nE, n, n) of a semi-infinite lead at z = E + i eta (see module docstring).

    ``side`` is ``"left"`` or ``"right"``. Decimation first (batched; about 40 steps for eta = 1e-8 Hartree),
    mode matching where it did not converge within ``max_iter`` steps or its residual exceeds ``residual_tol``.
    An energy neither solves: with ``failures`` (a dict) its g is NaN and ``failures[E]`` says why; without it,
    :class:`SurfaceGreenError` names the energies and both residuals.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if not eta > 0:
        raise TransportError(f"eta must be > 0 Hartree for the surface Green's function, got {eta}")
    e_in = np.asarray(energies, dtype=np.float64)
    z = e_in + 1j * eta
    m00, m01, m10 = _m_blocks(lead, z)
    with np.errstate(all="ignore"):
        g, converged = _decimate(m00, m01, m10, side, max_iter)
        res = _residual(g, m00, m01, m10, side)
    bad = np.flatnonzero(~converged | ~(res <= residual_tol))
    why = {}
    for k in bad.tolist():
        first = f"decimation {'residual %.2g' % res[k] if converged[k] else 'not converged in %d steps' % max_iter}"
        try:
            gk = surface_green_modes(m00[k], m01[k], m10[k], side)
            rk = float(_residual(gk[None], m00[k : k + 1], m01[k : k + 1], m10[k : k + 1], side)[0])
        except (np.linalg.LinAlgError, ValueError) as exc:
            gk, rk = None, f"failed ({exc})"
        if gk is not None and rk <= residual_tol:
            g[k] = gk
            continue
        g[k] = np.nan
        rk_text = rk if isinstance(rk, str) else f"residual {rk:.2g}"
        why[float(e_in[k])] = f"{side} lead: {first}, mode matching {rk_text} (tolerance {residual_tol:g})"
    if why:
        if failures is None:
            e0 = min(why)
            raise SurfaceGreenError(
                f"{side} surface Green's function not solved at {len(why)} energies (first E = {e0:.8g} Ha, eta "
                f"{eta:g} Ha: {why[e0]}); raise eta or leave such energies out"
            )
        failures.update(why)
    return g


def _decimate(m00, m01, m10, side, max_iter):
    """Sancho-Rubio: (g, converged) per energy (g of the last step where not converged)."""
    eps_s, eps = m00.copy(), m00.copy()
    a, b = m01.copy(), m10.copy()
    scale = np.maximum(np.abs(m00).max(axis=(1, 2)), 1e-300)
    done = np.zeros(m00.shape[0], dtype=bool)
    for _ in range(max_iter):
        todo = np.flatnonzero(~done)
        if not todo.size:
            break
        e_, a_, b_ = eps[todo], a[todo], b[todo]
        try:
            ga = np.linalg.solve(e_, a_)  # eps^{-1} a
            gb = np.linalg.solve(e_, b_)  # eps^{-1} b
        except np.linalg.LinAlgError:  # an exactly singular block somewhere in the batch: one by one
            ga, gb = _solve_each(e_, a_), _solve_each(e_, b_)
        agb, bga = a_ @ gb, b_ @ ga
        eps_s[todo] -= agb if side == "right" else bga
        eps[todo] = e_ - agb - bga
        a[todo] = -a_ @ ga
        b[todo] = -b_ @ gb
        size = np.maximum(np.abs(a[todo]).max(axis=(1, 2)), np.abs(b[todo]).max(axis=(1, 2)))
        done[todo[size < DECIMATION_TOL * scale[todo]]] = True
        done[todo[~np.isfinite(size)]] = False
    return _inv_each(eps_s), done & np.isfinite(eps_s).all(axis=(1, 2))


def _solve_each(a, b):
    out = np.full(b.shape, np.nan, dtype=np.result_type(a, b))
    for k in range(a.shape[0]):
        try:
            out[k] = np.linalg.solve(a[k], b[k])
        except np.linalg.LinAlgError:
            pass
    return out


def _inv_each(a):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return _solve_each(a, np.broadcast_to(np.eye(a.shape[1]), a.shape))


def _residual(g, m00, m01, m10, side):
    """max |(M00 - M_fwd g M_back) g - I| per energy (inf where not finite)."""
    inner = m01 @ g @ m10 if side == "right" else m10 @ g @ m01
    res = np.abs((m00 - inner) @ g - np.eye(g.shape[1])).max(axis=(1, 2))
    return np.where(np.isfinite(res), res, np.inf)


def surface_green_modes(m00: np.ndarray, m01: np.ndarray, m10: np.ndarray, side: str) -> np.ndarray:
    """Surface Green's function (n, n) of one energy from the lead's Bloch modes (module docstring)."""
    import scipy.linalg as sla

    fwd, back = (m01, m10) if side == "right" else (m10, m01)
    n = m00.shape[0]
    eye, zero = np.eye(n), np.zeros((n, n))
    a = np.block([[zero, eye], [-back, -m00]])
    b = np.block([[eye, zero], [zero, fwd]])
    (alpha, beta), vec = sla.eig(a, b, homogeneous_eigvals=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.where(np.abs(beta) > 0, np.abs(alpha) / np.abs(beta), np.inf)
    order = np.argsort(size, kind="stable")[:n]  # the n decaying modes (|lambda| < 1 at eta > 0)
    if not np.all(size[order] < 1.0):
        raise ValueError(f"{int(np.sum(size[order] >= 1))} of the {n} slowest modes do not decay")
    lam = alpha[order] / beta[order]
    u = vec[:n, order]
    f = np.linalg.solve(u.T, (u * lam).T).T  # U Lambda U^{-1}
    return np.linalg.inv(m00 + fwd @ f)


def lead_self_energy(energies: np.ndarray, lead: LeadBlocks, side: str, eta: float, **kw) -> np.ndarray:
    """Self-energy (nE, n, n) of a lead on the adjacent device layer: M10 g_L M01 (left), M01 g_R M10 (right).
    ``kw``: :func:`surface_green` (``failures`` leaves unsolved energies NaN)."""
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

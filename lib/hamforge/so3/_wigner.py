"""Real Wigner-D matrices, edge frames and m-index tables in the project (CP2K) convention.

Convention: ``D^l(R)`` is defined by ``Y_l(R r) = D^l(R) Y_l(r)`` for the project's real spherical
harmonics (:func:`hamforge.so3.real_spherical_harmonics`, components ``m = -l..l``). It is a
representation, ``D(R1 R2) = D(R1) D(R2)``, orthogonal, ``D(R^T) = D(R)^T``, and ``D^1(R) = P R P^T`` with
``P`` the permutation (x, y, z) -> (y, z, x). A shell block transforms as ``H' = D^{la} H D^{lb}^T``.

The polar axis is ``z``: a rotation about ``z`` by ``phi`` leaves the ``m = 0`` component invariant and acts
on the pair ``(c_{+m}, c_{-m})`` as the 2-D rotation ``[[cos m phi, -sin m phi], [sin m phi, cos m phi]]``
(``Y_{l,+m} ~ cos(m phi)``, ``Y_{l,-m} ~ sin(m phi)``). That is the structure the SO(2) convolution uses.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from hamforge.so3._conventions import _cp2k_eval_np, _sphere_points, check_l

#: Rotation by +90 degrees about x: maps y to z and z to -y.
_RX90 = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0))


def _fit_wigner_np(l: int, rotation: np.ndarray) -> np.ndarray:
    """D^l of one constant (3, 3) rotation, float64, by least squares on CP2K's polynomials."""
    xyz = _sphere_points(8 * (2 * l + 1) + 16, seed=777 + l)
    y = _cp2k_eval_np(l, xyz)
    y_rot = _cp2k_eval_np(l, xyz @ rotation.T)
    dt, *_ = np.linalg.lstsq(y, y_rot, rcond=None)  # y_rot = y @ D^T
    u, _, vt = np.linalg.svd(dt.T)  # nearest orthogonal matrix: drop least-squares noise
    d = u @ vt
    d[np.abs(d) < 1e-14] = 0.0
    return d + 0.0


@functools.lru_cache(maxsize=None)
def _rx90_wigner(l: int) -> np.ndarray:
    d = _fit_wigner_np(l, np.array(_RX90))
    d.setflags(write=False)
    return d


@functools.lru_cache(maxsize=None)
def _small_d_table(l: int) -> np.ndarray:
    """T (2l+1, 4*n*n): ``K^T Z(beta) K = ([1, cos(mu beta)_mu=1..l, sin(mu beta)_mu=1..l] @ T)[:n*n]``.

    ``Z(beta)[k, k] = cos(m_k beta)``, ``Z(beta)[k, p(k)] = -sin(m_k beta)`` (rotation about z), so the
    cos(mu beta) coefficient is ``sum_{|m_k| = mu} K[k]^T K[k]`` and the sin(mu beta) one is
    ``-sum_{|m_k| = mu} sign(m_k) K[k]^T K[p(k)]``. The next three n*n blocks are the same matrix with
    columns, rows, and both reversed (m -> -m).
    """
    k = _rx90_wigner(l)
    n = 2 * l + 1
    p = _pair_index(l)
    t = np.zeros((2 * l + 1, n, n))
    for row in range(n):
        mk = row - l
        t[abs(mk)] += np.outer(k[row], k[row])
        if mk != 0:
            t[l + abs(mk)] -= np.sign(mk) * np.outer(k[row], k[p[row]])
    # variants with columns, rows, both reversed (m -> -m), concatenated: (2l+1, 4*n*n)
    t = np.stack([t, t[:, :, p], t[:, p, :], t[:, p][:, :, p]], axis=1).reshape(2 * l + 1, 4 * n * n)
    t = np.ascontiguousarray(t)
    t.setflags(write=False)
    return t


def _pair_index(l: int) -> np.ndarray:
    """Index of order -m for each position (order m) in a shell: reverses m = -l..l."""
    return np.arange(2 * l, -1, -1)


def _check_rotation(rotation):
    import torch

    if not isinstance(rotation, torch.Tensor):
        raise ValueError(f"rotation must be a torch.Tensor, got {type(rotation).__name__}")
    if rotation.ndim < 2 or tuple(rotation.shape[-2:]) != (3, 3):
        raise ValueError(f"rotation must have shape (..., 3, 3), got {tuple(rotation.shape)}")
    if not rotation.is_floating_point():
        raise ValueError(f"rotation must be floating point, got {rotation.dtype}")


def wigner_D(l: int, rotation):
    """Real Wigner-D matrices of rotation matrices, project convention.

    l: angular momentum, 0..10.
    rotation: (..., 3, 3) torch tensor of proper rotations (float32 or float64, any device).
    Returns (..., 2l+1, 2l+1) with the dtype/device of ``rotation``, such that
    ``real_spherical_harmonics(l, R @ r) = wigner_D(l, R) @ real_spherical_harmonics(l, r)``.

    Method: ZYZ Euler angles, ``D = Z(alpha) d(beta) Z(gamma)`` with ``Z`` the (m, -m) 2x2 blocks of a z
    rotation and ``d(beta) = K^T Z(beta) K``, ``K = D(Rx(90 deg))``, evaluated as one GEMM of the 2l+1
    features ``[1, cos(mu beta), sin(mu beta)]`` with a cached table. To stay away from gimbal lock,
    rotations with ``|R[2, 2]| > 1/2`` are evaluated as ``D(R Rx90^T) K``, so every angle extraction has
    ``sin(beta) >= 1/2``: uniform accuracy, no NaN, and gradients along rotations (tangent directions of
    SO(3)) are exact everywhere: on SO(3) the two branches are the same analytic function. Fully batched: two
    GEMMs with constant matrices plus ~10 elementwise passes,
    no Python loop over the batch. The input is assumed orthogonal with det +1 (not checked: that would
    cost a reduction).
    """
    import torch

    l = check_l(l)
    _check_rotation(rotation)
    dtype, device = rotation.dtype, rotation.device
    n = 2 * l + 1
    if l == 0:
        return torch.ones(rotation.shape[:-2] + (1, 1), dtype=dtype, device=device)

    rx90 = torch.tensor(_RX90, dtype=dtype, device=device)
    switch = rotation[..., 2, 2].abs() > 0.5  # (...)
    rot = torch.where(switch[..., None, None], rotation @ rx90.T, rotation)

    # ZYZ Euler angles: R = Rz(alpha) Ry(beta) Rz(gamma); R z_hat = (sb ca, sb sa, cb), sb >= 1/2 here.
    col = rot[..., :, 2]
    alpha = torch.atan2(col[..., 1], col[..., 0])
    rho = torch.sqrt(col[..., 0] ** 2 + col[..., 1] ** 2)
    beta = torch.atan2(rho, col[..., 2])
    # first column of Ry(-beta) Rz(-alpha) R = (cos gamma, sin gamma, 0)
    ca, sa, cb, sb = torch.cos(alpha), torch.sin(alpha), torch.cos(beta), torch.sin(beta)
    c0 = rot[..., :, 0]
    w0 = ca * c0[..., 0] + sa * c0[..., 1]
    w1 = -sa * c0[..., 0] + ca * c0[..., 1]
    gamma = torch.atan2(w1, cb * w0 - sb * c0[..., 2])

    m = torch.arange(-l, l + 1, dtype=dtype, device=device)  # (n,)
    k = torch.tensor(_rx90_wigner(l), dtype=dtype, device=device)  # (n, n)
    t = torch.tensor(_small_d_table(l), dtype=dtype, device=device)  # (2l+1, 4*n*n)

    # d(beta) = K^T Z(beta) K = [1, cos(mu b), sin(mu b)]_mu @ T: one GEMM for the whole batch, which
    # also yields d with rows and/or columns reversed (m -> -m), needed by the z rotations below.
    mu = torch.arange(1, l + 1, dtype=dtype, device=device)
    mb = beta[..., None] * mu
    feats = torch.cat([torch.ones_like(beta)[..., None], torch.cos(mb), torch.sin(mb)], dim=-1)
    y, y_c, y_r, y_rc = (feats @ t).reshape(*beta.shape, 4, n, n).unbind(-3)
    # D = Z(alpha) d Z(gamma); with c/s = cos/sin of m*angle:
    # D[i, j] = ca_i (d[i, j] cg_j + d[i, p(j)] sg_j) - sa_i (d[p(i), j] cg_j + d[p(i), p(j)] sg_j)
    mg, ma = gamma[..., None] * m, alpha[..., None] * m
    cg, sg = torch.cos(mg)[..., None, :], torch.sin(mg)[..., None, :]
    w = y * cg + y_c * sg
    w_r = y_r * cg + y_rc * sg
    d = torch.cos(ma)[..., :, None] * w - torch.sin(ma)[..., :, None] * w_r
    d = torch.where(switch[..., None, None], d @ k, d)
    return d


def edge_rotation(vectors):
    """Deterministic rotations into edge frames: ``R_e @ (v_e / |v_e|) = e_z``.

    vectors: (E, 3) (or (..., 3)) torch tensor of edge vectors, floating, no zero vectors (ValueError).
    Returns (..., 3, 3) proper rotations, same dtype/device, differentiable.

    Choice (no random roll): the minimal rotation taking v_hat = (x, y, z) to e_z, about the axis
    ``v_hat x e_z``::

        R = [[1 - x^2 f, -x y f, -x],
             [-x y f, 1 - y^2 f, -y],
             [x,       y,        z ]],   f = 1 / (1 + z) = (1 - z) / (x^2 + y^2)

    (the first form is used for z >= 0, the second for z < 0 with (x, y) scaled by 1/hypot(x, y), so no
    cancellation, overflow or underflow). It is smooth everywhere except at v_hat = -e_z, where any continuous
    choice must fail (hairy-ball theorem); there we return the
    limit from the +y side, ``diag(1, -1, -1)`` (rotation by pi about x). v_hat = +e_z gives the identity.
    The third row is v_hat, so ``R^T e_z = v_hat``. Edge-frame features: ``D^l(R_e) @ x``.
    """
    import torch

    if not isinstance(vectors, torch.Tensor):
        raise ValueError(f"vectors must be a torch.Tensor, got {type(vectors).__name__}")
    if vectors.ndim < 1 or vectors.shape[-1] != 3 or not vectors.is_floating_point():
        raise ValueError(f"vectors must be a floating (..., 3) tensor, got {tuple(vectors.shape)} {vectors.dtype}")
    norm = torch.linalg.vector_norm(vectors, dim=-1)
    if bool((norm == 0).any()):
        raise ValueError("vectors contains zero-length edge vectors: the edge frame is undefined")
    u = vectors / norm[..., None]
    x, y, z = u.unbind(-1)
    neg = z < 0
    one, zero = torch.ones_like(z), torch.zeros_like(z)
    # z >= 0: f = 1/(1+z) <= 1, well conditioned.
    f_pos = 1.0 / (1.0 + torch.where(neg, zero, z))
    xxf, xyf, yyf = x * x * f_pos, x * y * f_pos, y * y * f_pos
    # z < 0: x^2 f = (1 - z) cx^2 etc. with (cx, cy) = (x, y)/rho; hypot avoids under/overflow of rho^2.
    # Safe arguments keep the unused branch finite (no NaN gradients through torch.where).
    anti = neg & (x == 0) & (y == 0)  # exactly -e_z
    use = neg & ~anti
    # at -e_z (and for unused entries) (cx, cy) = (0, 1): the limit from the +y side, diag(1, -1, -1)
    xs, ys = torch.where(use, x, zero), torch.where(use, y, one)
    rho = torch.hypot(xs, ys)
    cx, cy = xs / rho, ys / rho
    omz = 1.0 - z
    xxf = torch.where(neg, omz * cx * cx, xxf)
    xyf = torch.where(neg, omz * cx * cy, xyf)
    yyf = torch.where(neg, omz * cy * cy, yyf)
    row0 = torch.stack([1.0 - xxf, -xyf, -x], dim=-1)
    row1 = torch.stack([-xyf, 1.0 - yyf, -y], dim=-1)
    row2 = torch.stack([x, y, z], dim=-1)
    return torch.stack([row0, row1, row2], dim=-2)


class MIndexTables(NamedTuple):
    """Index tables of a concatenated feature ``l = 0..l_max`` (size (l_max+1)^2, by l then m = -l..l).

    For each order ``m = 0..m_max``: ``plus[m]`` / ``minus[m]`` are int64 positions of the components
    (l, +m) / (l, -m) for ``l = m..l_max`` (ascending l), and ``l[m]`` those l values. For m = 0 ``plus`` and
    ``minus`` are the same (the invariant component along z). Position of (l, m) is ``l*l + l + m``.
    """

    plus: tuple[np.ndarray, ...]
    minus: tuple[np.ndarray, ...]
    l: tuple[np.ndarray, ...]


def m_index_tables(l_max: int, m_max: int | None = None) -> MIndexTables:
    """SO(2) index tables for concatenated features; see :class:`MIndexTables`.

    In the edge frame (edge along +z) a rotation by phi about z maps ``(x[plus[m]], x[minus[m]])`` to
    ``(cos m phi x+ - sin m phi x-, sin m phi x+ + cos m phi x-)`` and leaves ``x[plus[0]]`` unchanged.
    Fresh numpy arrays each call (no shared cache to corrupt).
    """
    l_max = check_l(l_max, "l_max")
    m_max = l_max if m_max is None else check_l(m_max, "m_max")
    if m_max > l_max:
        raise ValueError(f"m_max ({m_max}) must be <= l_max ({l_max})")
    ls = [np.arange(m, l_max + 1, dtype=np.int64) for m in range(m_max + 1)]
    plus = tuple(lv * lv + lv + m for m, lv in enumerate(ls))
    minus = tuple(lv * lv + lv - m for m, lv in enumerate(ls))
    return MIndexTables(plus=plus, minus=minus, l=tuple(ls))

"""CP2K's real spherical harmonics and the change of basis from e3nn's convention.

The project convention (``docs/conventions.md``, ``docs/so3.md``) is CP2K's: inside a shell of angular
momentum ``l`` the ``2l+1`` functions are ordered ``m = -l..l``, the polar axis is ``z`` and

    Y_{l,0}  ~ P_l(cos theta)                         (no phase)
    Y_{l,+m} ~ + P_l^m(cos theta) cos(m phi)    m > 0  (no Condon-Shortley phase (-1)^m)
    Y_{l,-m} ~ + P_l^m(cos theta) sin(m phi)    m > 0

with positive prefactors, i.e. the "standard" real spherical harmonics of chemistry tables. The explicit
cartesian polynomials (``r^l Y_lm``) for l <= 3, all normalised to one on the unit sphere, are::

    l=0  s    1/(2 sqrt(pi))
    l=1  p-1  sqrt(3/4pi) y          (p_y)
         p0   sqrt(3/4pi) z          (p_z)
         p+1  sqrt(3/4pi) x          (p_x)
    l=2  d-2  sqrt(15/4pi) xy
         d-1  sqrt(15/4pi) yz
         d0   sqrt(5/16pi) (2z^2 - x^2 - y^2)
         d+1  sqrt(15/4pi) xz
         d+2  sqrt(15/16pi) (x^2 - y^2)
    l=3  f-3  sqrt(35/32pi) (3x^2 y - y^3)
         f-2  sqrt(105/4pi) xyz
         f-1  sqrt(21/32pi) y (4z^2 - x^2 - y^2)
         f0   sqrt(7/16pi) z (2z^2 - 3x^2 - 3y^2)
         f+1  sqrt(21/32pi) x (4z^2 - x^2 - y^2)
         f+2  sqrt(105/16pi) z (x^2 - y^2)
         f+3  sqrt(35/32pi) (x^3 - 3x y^2)

Source: CP2K ``src/aobasis/orbital_transformation_matrices.F`` (``create_spherical_harmonics``; formula 15
of H. B. Schlegel, M. J. Frisch, Int. J. Quantum Chem. 54, 83 (1995)), which builds ``orbtramat(l)%c2s``
(normalised cartesian Gaussians -> spherical Gaussians) and ``orbtramat(l)%slm`` (the coefficients of
``r^l Y_lm`` on the monomials ``x^lx y^ly z^lz``). :func:`cp2k_solid_harmonics` re-derives ``slm`` from that
formula; the tests compare it with the table that the installed CP2K 2023.1 prints with
``&GLOBAL / &PRINT / SPHERICAL_HARMONICS 6`` (12 printed decimals, all l <= 6 agree).

e3nn (``e3nn.o3.spherical_harmonics``) uses ``y`` as its polar axis: ``Y^e3nn_l(y, z, x) = Y^cp2k_l(x, y,
z)`` with the same m labels. The change of basis ``Q_l`` with ``Y^project_l(r) = Q_l @ Y^e3nn_l(r)`` is
therefore the e3nn Wigner-D of the cyclic axis permutation: a signed permutation only for ``l <= 1``
(``Q_1`` maps (x, y, z) to (y, z, x)); dense within parity classes of m for ``l >= 2``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: Largest ``l`` this module supports: e3nn's spherical harmonics stop at l = 11 and the closed-form
#: CP2K coefficients lose digits to cancellation beyond ~l = 10.
L_MAX_SUPPORTED = 10


def check_l(l: int, name: str = "l") -> int:
    """Validate an angular momentum argument; return it as a Python int."""
    if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {type(l).__name__} ({l!r})")
    l = int(l)
    if l < 0 or l > L_MAX_SUPPORTED:
        raise ValueError(f"{name} must be in 0..{L_MAX_SUPPORTED}, got {l}")
    return l


def _dfac(n: int) -> float:
    """Double factorial n!! with (-1)!! = 0!! = 1."""
    return float(math.prod(range(n, 0, -2))) if n > 0 else 1.0


def _monomials(l: int) -> np.ndarray:
    """(K, 3) int exponents (lx, ly, lz) with lx + ly + lz = l, K = (l+1)(l+2)/2, lx descending then ly."""
    return np.array([(lx, ly, l - lx - ly) for lx in range(l, -1, -1) for ly in range(l - lx, -1, -1)], dtype=np.int64)


def _c2s_coefficient(l: int, m: int, lx: int, ly: int, lz: int) -> float:
    """Schlegel-Frisch eq. 15: coefficient of the normalised cartesian Gaussian (lx, ly, lz) in the
    normalised real spherical Gaussian (l, m), exactly as CP2K's ``create_spherical_harmonics``."""
    ma = abs(m)
    j = lx + ly - ma
    if j < 0 or j % 2:
        return 0.0
    j //= 2
    s1 = 0.0
    for i in range((l - ma) // 2 + 1):
        s2 = 0.0
        for k in range(j + 1):
            if (m < 0 and abs(ma - lx) % 2 == 1) or (m > 0 and abs(ma - lx) % 2 == 0):
                # Fortran integer division truncates toward zero; math.comb below vanishes unless
                # 0 <= lx - 2k <= ma, so the numerator is >= 0 whenever it matters and // is the same.
                expo = (ma - lx + 2 * k) // 2
                s = (-1.0) ** expo * math.sqrt(2.0)
            elif m == 0 and lx % 2 == 0:
                s = (-1.0) ** (k - lx // 2)
            else:
                s = 0.0
            b = math.comb(ma, lx - 2 * k) if 0 <= lx - 2 * k <= ma else 0
            s2 += math.comb(j, k) * b * s
        s1 += (
            math.comb(l, i)
            * (math.comb(i, j) if j <= i else 0)
            * (-1.0) ** i
            * math.factorial(2 * l - 2 * i)
            / math.factorial(l - ma - 2 * i)
            * s2
        )
    f = math.factorial
    norm = math.sqrt(
        f(2 * lx) * f(2 * ly) * f(2 * lz) * f(l) * f(l - ma) / (f(lx) * f(ly) * f(lz) * f(2 * l) * f(l + ma))
    )
    return norm * s1 / (2.0**l * f(l))


@functools.lru_cache(maxsize=None)
def _cp2k_table(l: int) -> tuple[np.ndarray, np.ndarray]:
    mono = _monomials(l)
    coef = np.zeros((2 * l + 1, len(mono)))
    pref = math.sqrt(_dfac(2 * l + 1) / (4.0 * math.pi))
    for ic, (lx, ly, lz) in enumerate(mono):
        s1 = math.sqrt(_dfac(2 * lx - 1) * _dfac(2 * ly - 1) * _dfac(2 * lz - 1))
        for m in range(-l, l + 1):
            coef[l + m, ic] = pref * _c2s_coefficient(l, m, int(lx), int(ly), int(lz)) / s1
    mono.setflags(write=False)
    coef.setflags(write=False)
    return mono, coef


def cp2k_solid_harmonics(l: int) -> tuple[np.ndarray, np.ndarray]:
    """CP2K's real solid harmonics ``r^l Y_lm(r) = sum_k coef[m+l, k] x^a_k y^b_k z^c_k``.

    Returns ``(exponents, coef)``: ``exponents`` (K, 3) int64 ``(a, b, c)`` with ``a+b+c = l`` (K =
    (l+1)(l+2)/2, ordered ``a`` descending then ``b`` descending, CP2K's print order ``x^l, x^(l-1)y, ...``),
    ``coef`` (2l+1, K) float64, rows ``m = -l..l``. This is CP2K's ``orbtramat(l)%slm``: the Y_lm are
    orthonormal on the unit sphere. Copies; the cache is not exposed.
    """
    mono, coef = _cp2k_table(check_l(l))
    return mono.copy(), coef.copy()


def _cp2k_eval_np(l: int, xyz: np.ndarray) -> np.ndarray:
    """Evaluate CP2K's polynomials on (N, 3) float64 points (no normalisation of the points)."""
    mono, coef = _cp2k_table(l)
    powers = np.prod(xyz[:, None, :] ** mono[None, :, :], axis=-1)  # (N, K)
    return powers @ coef.T


def _sphere_points(n: int, seed: int) -> np.ndarray:
    """(n, 3) deterministic pseudo-random unit vectors (local generator, no global state)."""
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _e3nn_sh_np(l: int, xyz: np.ndarray) -> np.ndarray:
    import torch
    from e3nn import o3

    y = o3.spherical_harmonics(l, torch.from_numpy(xyz), normalize=True, normalization="integral")
    return y.numpy()


def _nearest_orthogonal(a: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(a)
    return u @ vt


@functools.lru_cache(maxsize=None)
def _change_of_basis(l: int) -> np.ndarray:
    xyz = _sphere_points(8 * (2 * l + 1) + 16, seed=12345 + l)
    y_cp2k = _cp2k_eval_np(l, xyz)  # (N, 2l+1)
    y_e3nn = _e3nn_sh_np(l, xyz)  # (N, 2l+1)
    qt, *_ = np.linalg.lstsq(y_e3nn, y_cp2k, rcond=None)  # y_cp2k = y_e3nn @ Q^T
    resid = np.abs(y_e3nn @ qt - y_cp2k).max()
    if resid > 1e-10:  # both are exact polynomial bases of the same space: any residual is a bug
        raise RuntimeError(f"CP2K and e3nn harmonics do not span the same space for l={l} (residual {resid:.2e})")
    q = qt.T
    q[np.abs(q) < 1e-13] = 0.0  # exact zeros stay zeros (sparsity by parity of m)
    q = _nearest_orthogonal(q)  # removes the ~1e-15 least-squares noise
    q[np.abs(q) < 1e-14] = 0.0
    q += 0.0  # no negative zeros
    q.setflags(write=False)
    return q


def change_of_basis(l: int) -> np.ndarray:
    """Q_l, (2l+1, 2l+1) float64 orthogonal: ``Y^project_l(r) = Q_l @ Y^e3nn_l(r)``.

    ``Y^e3nn`` is ``e3nn.o3.spherical_harmonics(l, r, normalize=True, normalization="integral")``. The
    same Q_l maps e3nn's Wigner-D: ``D^project = Q_l D^e3nn Q_l^T``, and any e3nn feature of irrep ``l``
    to the project's CP2K order: ``x_project = Q_l @ x_e3nn``. Returned as a copy of a cached array.
    """
    return _change_of_basis(check_l(l)).copy()


def real_spherical_harmonics(l: int, vectors):
    """CP2K-convention real spherical harmonics of the directions of ``vectors``.

    vectors: (..., 3) torch tensor (floating; result has its dtype/device, differentiable) or numpy array
    (evaluated in float64, numpy result). Returns (..., 2l+1), components ``m = -l..l`` (CP2K order, e.g.
    ``(p_y, p_z, p_x)``). Normalisation: orthonormal on the unit sphere,
    ``integral over S^2 of Y_lm Y_l'm' = delta_ll' delta_mm'`` (so ``Y_00 = 1/sqrt(4 pi)``); vectors are
    normalised first, so only the direction matters (a zero vector gives ``Y_00`` and zeros for l > 0).
    """
    import torch
    from e3nn import o3

    l = check_l(l)
    is_numpy = not isinstance(vectors, torch.Tensor)
    x = torch.from_numpy(np.asarray(vectors, dtype=np.float64)) if is_numpy else vectors
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"vectors must have shape (..., 3), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"vectors must be floating point, got {x.dtype}")
    y = o3.spherical_harmonics(l, x, normalize=True, normalization="integral")
    q = torch.tensor(_change_of_basis(l), dtype=x.dtype, device=x.device)
    out = y @ q.T
    return out.numpy() if is_numpy else out

"""Real Clebsch-Gordan coefficients and the coupled |L, M> basis of shell blocks, project convention.

A block ``B`` (2l1+1, 2l2+1) between shells l1 and l2 transforms as ``B' = D^{l1} B D^{l2}^T``. Its coupled
components ``c_L[M] = sum_{m1, m2} C[M, m1, m2] B[m1, m2]`` transform as ``c_L' = D^L c_L`` for
``L = |l1-l2| .. l1+l2``. The stacked map over all L is orthogonal (no sqrt(2L+1) weights), so
``uncouple(couple(B)) = B`` and Frobenius norms are preserved.

Sign convention (per (l1, l2, L), a free choice): the first entry of ``C`` in C order over (M, m1, m2)
with ``|C| > 1e-10`` is positive. Consequences: for l2 = 0 (or l1 = 0) ``couple`` is the identity, and for
l1 = l2 the L = 0 component is ``+trace(B) / sqrt(2l1+1)``.

Parity: the coupled components of an (l1, l2) block have parity ``(-1)^(l1+l2)`` for every L (a product of
orbitals with parities (-1)^l1 and (-1)^l2), e.g. the (1, 1) block is "1x0e+1x1e+1x2e": its L = 1 part is a
pseudovector. :func:`pair_irreps` emits that string; SO(3)-only models may ignore parity.
"""

from __future__ import annotations

import functools

import numpy as np

from hamforge.so3._conventions import _change_of_basis, check_l


def irreps_of_pair(l1: int, l2: int) -> list[int]:
    """The L values of the product of shells l1 and l2: ``|l1-l2|, ..., l1+l2`` (ascending)."""
    l1, l2 = check_l(l1, "l1"), check_l(l2, "l2")
    return list(range(abs(l1 - l2), l1 + l2 + 1))


def irreps_string(ls, parity) -> str:
    """e3nn Irreps string for a list of L values sharing one parity, e.g. ``([0, 1, 2], +1) -> "1x0e+1x1e+1x2e"``.

    ls: iterable of non-negative ints (order kept, repeats allowed, one ``1x`` term each).
    parity: +1 / "e" (even) or -1 / "o" (odd).
    """
    if isinstance(parity, str):
        if parity not in ("e", "o"):
            raise ValueError(f"parity must be +1, -1, 'e' or 'o', got {parity!r}")
        p = parity
    elif parity in (1, -1) and not isinstance(parity, bool):
        p = "e" if parity == 1 else "o"
    else:
        raise ValueError(f"parity must be +1, -1, 'e' or 'o', got {parity!r}")
    ls = [check_l(L, "ls") for L in ls]
    if not ls:
        raise ValueError("ls must not be empty")
    return "+".join(f"1x{L}{p}" for L in ls)


def pair_irreps(l1: int, l2: int) -> str:
    """Irreps string of the coupled (l1, l2) block: all L of :func:`irreps_of_pair`, parity (-1)^(l1+l2)."""
    return irreps_string(irreps_of_pair(l1, l2), (-1) ** (check_l(l1, "l1") + check_l(l2, "l2")))


@functools.lru_cache(maxsize=None)
def _clebsch_gordan(l1: int, l2: int, L: int) -> np.ndarray:
    import torch
    from e3nn import o3

    w = o3.wigner_3j(l1, l2, L, dtype=torch.float64).numpy()  # (2l1+1, 2l2+1, 2L+1), |w|_F = 1, e3nn basis
    q1, q2, q3 = _change_of_basis(l1), _change_of_basis(l2), _change_of_basis(L)
    c = np.einsum("abc,ia,jb,kc->kij", w, q1, q2, q3) * np.sqrt(2 * L + 1)  # (2L+1, 2l1+1, 2l2+1)
    c[np.abs(c) < 1e-14] = 0.0
    first = c.ravel()[np.flatnonzero(np.abs(c.ravel()) > 1e-10)[0]]
    c = c * np.sign(first) + 0.0
    c.setflags(write=False)
    return c


def clebsch_gordan(l1: int, l2: int, L: int) -> np.ndarray:
    """Real CG coefficients C (2L+1, 2l1+1, 2l2+1), float64, project (CP2K-order) basis.

    ``c[M] = sum C[M, m1, m2] B[m1, m2]`` maps a block B (transforming as D^l1 B D^l2^T) to a vector
    transforming as D^L. For fixed L the rows ``C[M].ravel()`` are orthonormal. Copy of a cached array.
    """
    l1, l2, L = check_l(l1, "l1"), check_l(l2, "l2"), check_l(L, "L")
    if not abs(l1 - l2) <= L <= l1 + l2:
        raise ValueError(f"L must be in |l1-l2|..l1+l2 = {abs(l1 - l2)}..{l1 + l2}, got L={L}")
    return _clebsch_gordan(l1, l2, L).copy()


@functools.lru_cache(maxsize=None)
def _coupling_matrix(l1: int, l2: int) -> np.ndarray:
    n = (2 * l1 + 1) * (2 * l2 + 1)
    u = np.concatenate([_clebsch_gordan(l1, l2, L).reshape(2 * L + 1, n) for L in irreps_of_pair(l1, l2)])
    u.setflags(write=False)
    return u


def coupling_matrix(l1: int, l2: int) -> np.ndarray:
    """U ((2l1+1)(2l2+1), (2l1+1)(2l2+1)) orthogonal float64: ``coupled = U @ block.ravel()``.

    Rows: L ascending, then M = -L..L; columns: block entries in C order (m1 major). Copy of a cache.
    """
    return _coupling_matrix(check_l(l1, "l1"), check_l(l2, "l2")).copy()


def _u_like(l1: int, l2: int, x):
    """The coupling matrix as numpy float64 or as a torch tensor matching x's dtype/device."""
    u = _coupling_matrix(l1, l2)
    if isinstance(x, np.ndarray):
        return u.astype(x.dtype, copy=False)
    import torch

    return torch.tensor(u, dtype=x.dtype, device=x.device)


def _check_array(x, name):
    import torch

    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {x.dtype}")
        return x
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{name} must be floating point, got {x.dtype}")
        return x
    raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


def couple(block, l1: int, l2: int):
    """Coupled components of shell blocks.

    block: (..., 2l1+1, 2l2+1) numpy (float) or torch tensor. Returns (..., (2l1+1)(2l2+1)) of the same
    kind/dtype/device, ordered by L ascending (``irreps_of_pair``) then M = -L..L. Batched, differentiable.
    """
    l1, l2 = check_l(l1, "l1"), check_l(l2, "l2")
    block = _check_array(block, "block")
    n1, n2 = 2 * l1 + 1, 2 * l2 + 1
    if block.ndim < 2 or tuple(block.shape[-2:]) != (n1, n2):
        raise ValueError(f"block must have shape (..., {n1}, {n2}) for l1={l1}, l2={l2}, got {tuple(block.shape)}")
    u = _u_like(l1, l2, block)
    return block.reshape(*block.shape[:-2], n1 * n2) @ u.T


def uncouple(coupled, l1: int, l2: int):
    """Exact inverse of :func:`couple`: (..., (2l1+1)(2l2+1)) -> (..., 2l1+1, 2l2+1), numpy or torch."""
    l1, l2 = check_l(l1, "l1"), check_l(l2, "l2")
    coupled = _check_array(coupled, "coupled")
    n1, n2 = 2 * l1 + 1, 2 * l2 + 1
    if coupled.ndim < 1 or coupled.shape[-1] != n1 * n2:
        raise ValueError(f"coupled must have shape (..., {n1 * n2}) for l1={l1}, l2={l2}, got {tuple(coupled.shape)}")
    u = _u_like(l1, l2, coupled)
    return (coupled @ u).reshape(*coupled.shape[:-1], n1, n2)

"""Supercells: a cell repeated ``reps = (n0, n1, n2)`` times along its lattice vectors.

Atom order (one rule for every room, ``docs/conventions.md``): copy-major. Copy ``c = (c0, c1, c2)`` (C order,
``c2`` fastest, as ``itertools.product``) of unit-cell atom ``a`` is supercell atom ``flat(c) * N + a``, at
``x_a + c @ cell``; the supercell's lattice vectors are ``reps[k] * cell[k]``. An edge ``(a', b', R')`` of the
supercell between copies ``c_a``, ``c_b`` is the unit-cell edge ``(a, b, R)`` with
``R = c_b - c_a + reps * R'`` (same edge vector), which is how per-image blocks map onto a supercell.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_reps", "tile_copies", "tile_positions"]


def check_reps(reps, pbc=None, name: str = "reps") -> np.ndarray:
    """``reps`` as a (3,) int64 array of positive integers; > 1 only along periodic axes (when ``pbc`` given).

    ValueError naming ``name`` otherwise (a non-positive, fractional or non-integer count, a wrong length, or
    a repetition along an open axis, which has no lattice vector to repeat along)."""
    try:
        arr = np.asarray(reps)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected three positive integers NX NY NZ, got {reps!r}") from None
    if arr.shape != (3,) or arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise ValueError(f"{name}: expected three positive integers NX NY NZ, got {reps!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ValueError(f"{name}: every repetition must be a positive integer, got {np.asarray(reps).tolist()}")
    out = arr.astype(np.int64)
    if pbc is not None:
        open_axes = [k for k in range(3) if out[k] > 1 and not bool(np.asarray(pbc)[k])]
        if open_axes:
            raise ValueError(
                f"{name}: cannot repeat along non-periodic axis/axes {open_axes} "
                f"(pbc {np.asarray(pbc).tolist()}); use 1 there"
            )
    return out


def tile_copies(reps) -> np.ndarray:
    """``(n0 n1 n2, 3)`` int64 copy offsets ``c`` in supercell order (C order, last axis fastest)."""
    reps = check_reps(reps)
    grid = np.indices(tuple(int(r) for r in reps)).reshape(3, -1).T
    return np.ascontiguousarray(grid, dtype=np.int64)


def tile_positions(positions, cell, reps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positions (C N, 3), supercell (3, 3), copies (C, 3))`` of ``positions`` (N, 3) in ``cell`` repeated
    ``reps`` times (module docstring for the order). Vectorized; float64."""
    x = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"positions: expected shape (N, 3), got {x.shape}")
    if cell.shape != (3, 3):
        raise ValueError(f"cell: expected shape (3, 3), got {cell.shape}")
    reps = check_reps(reps)
    copies = tile_copies(reps)
    xs = (x[None, :, :] + (copies.astype(np.float64) @ cell)[:, None, :]).reshape(-1, 3)
    return xs, cell * reps[:, None].astype(np.float64), copies

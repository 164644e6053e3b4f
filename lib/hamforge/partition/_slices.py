"""Slices along one lattice axis (the ICML paper's partitioning).

Slices are bounded by lattice planes (constant fractional coordinate along ``axis``), so the other two
directions keep their periodicity. Along a periodic axis the slices tile ``[0, 1)`` in the wrapped
fractional coordinate (the first and last slice touch through the boundary); along a non-periodic axis
they tile the range spanned by the atoms.
"""

from __future__ import annotations

import math

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.partition._checks import check_axis, check_n_parts, check_nl, finish
from hamforge.partition._geometry import frame

__all__ = ["partition_slices", "longest_axis"]


def longest_axis(nl: NeighborList, positions) -> int:
    """Axis with the largest extent: perpendicular height for periodic axes, atom span for open ones."""
    fr = frame(check_nl(nl), positions)
    idx = np.arange(nl.n_atoms)
    ext = [fr.extent(idx, k, bool(fr.pbc[k])) for k in range(3)]
    return int(np.argmax(ext))


def partition_slices(
    nl: NeighborList, positions, n_parts: int | None = None, *, axis: int | None = None, thickness: float | None = None
) -> np.ndarray:
    """Cut the structure into equal-width slices along one lattice axis.

    Args:
        nl: neighbour list of the structure (gives cell and pbc).
        positions: ``(N, 3)`` Cartesian positions, Angstrom.
        n_parts: number of slices; give either this or ``thickness``.
        axis: 0, 1, 2, or None for the longest axis (:func:`longest_axis`, perpendicular heights).
        thickness: slice thickness in Angstrom (perpendicular to the lattice planes). The number of
            slices is ``max(1, floor(L / thickness))`` for the extent ``L`` along the axis, so every slice
            is at least ``thickness`` thick (the remainder is spread evenly).

    Returns:
        ``(N,)`` int64 slice ids, increasing with the fractional coordinate along ``axis``.

    Raises:
        ValueError: bad arguments, or a slice without atoms (inhomogeneous structures: use fewer or
            thicker slices, or ``lownn``, which balances edges).
    """
    nl = check_nl(nl)
    ax = check_axis(axis)
    fr = frame(nl, positions)
    n_atoms = nl.n_atoms
    if ax is None:
        idx = np.arange(n_atoms)
        ax = int(np.argmax([fr.extent(idx, k, bool(fr.pbc[k])) for k in range(3)]))
    periodic = bool(fr.pbc[ax])
    f = fr.frac[:, ax]
    if periodic:
        lo, span = 0.0, 1.0
    else:
        lo = float(f.min()) if n_atoms else 0.0
        span = float(f.max() - lo) if n_atoms else 0.0
    length = span * float(fr.heights[ax])
    if thickness is not None:
        if n_parts is not None:
            raise ValueError("thickness: give either n_parts or thickness, not both")
        try:
            t = float(thickness)
        except (TypeError, ValueError):
            raise ValueError(f"thickness: expected a number (Angstrom), got {thickness!r}") from None
        if not math.isfinite(t) or t <= 0:
            raise ValueError(f"thickness: must be finite and > 0, got {thickness!r}")
        n_parts = max(1, int(math.floor(length / t * (1.0 + 1e-12))))
    elif n_parts is None:
        raise ValueError("n_parts: give either n_parts or thickness")
    n = check_n_parts(n_parts, n_atoms)
    if n > 1 and length == 0.0:
        raise ValueError(f"axis: the atoms have no extent along axis {ax}; cannot cut it into {n} slices")
    rel = (f - lo) / span if span > 0 else np.zeros_like(f)
    ids = np.minimum(np.floor(rel * n).astype(np.int64), n - 1)
    return finish(ids, n, f"slicing along axis {ax}", "thickness" if thickness is not None else "n_parts")

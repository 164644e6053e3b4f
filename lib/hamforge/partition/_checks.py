"""Argument checks shared by the partition modules (ValueError naming the argument)."""

from __future__ import annotations

import numbers

import numpy as np

from hamforge._checks import check_int
from hamforge.geometry import NeighborList
from hamforge.io import check_assignment

__all__ = ["check_assignment", "check_axis", "check_int", "check_n_parts", "check_nl", "finish", "row_pointers"]


def check_nl(nl) -> NeighborList:
    if not isinstance(nl, NeighborList):
        raise ValueError(f"nl: expected a hamforge.graph.NeighborList, got {type(nl).__name__}")
    return nl


def row_pointers(nl: NeighborList) -> np.ndarray:
    """``(N + 1,)`` int64 CSR row pointers of the edges by centre atom (edges must be sorted by ``i``).

    Uses a binary search instead of ``np.bincount``, which would allocate an (E,) int64 temporary.
    """
    centre = nl.edge_index[0]
    if centre.size and np.any(centre[1:] < centre[:-1]):  # (E,) bool temporary: 1 byte per edge
        raise ValueError("nl: edges must be sorted by centre atom i (hamforge.graph.neighbor_list does)")
    return np.searchsorted(centre, np.arange(nl.n_atoms + 1, dtype=centre.dtype)).astype(np.int64)


def check_n_parts(n_parts, n_atoms: int) -> int:
    n = check_int(n_parts, "n_parts", 1)
    if n > n_atoms:
        raise ValueError(f"n_parts: {n} parts for {n_atoms} atoms (every part needs at least one atom)")
    return n


def check_axis(axis) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or int(axis) not in (0, 1, 2):
        raise ValueError(f"axis: expected 0, 1, 2 or None (longest cell axis), got {axis!r}")
    return int(axis)


def finish(assignment: np.ndarray, n_parts: int, method: str, name: str = "n_parts") -> np.ndarray:
    """Check that every part 0..n_parts-1 got an atom; return read-only int64 ids."""
    a = np.ascontiguousarray(assignment, dtype=np.int64)
    counts = np.bincount(a, minlength=n_parts)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"{name}: {method} left part(s) {empty[:10].tolist()} of {n_parts} empty; "
            f"use fewer parts ({n_parts} requested)"
        )
    return a

"""Argument checks shared by the partition modules (ValueError naming the argument)."""

from __future__ import annotations

import numbers

import numpy as np

from hamforge.graph import NeighborList


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


def check_int(value, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


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


def check_assignment(assignment, n_atoms: int) -> tuple[np.ndarray, int]:
    """``(N,)`` int64 part ids; returns them and the number of parts ``max + 1`` (every part non-empty)."""
    a = np.asarray(assignment)
    if a.shape != (n_atoms,):
        raise ValueError(f"assignment: expected shape ({n_atoms},) (one part id per atom), got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"assignment: expected integer part ids, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size == 0:
        return a, 0
    if a.min() < 0:
        raise ValueError(f"assignment: part ids must be >= 0, found {int(a.min())}")
    n_parts = int(a.max()) + 1
    counts = np.bincount(a, minlength=n_parts)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"assignment: parts must be numbered 0..{n_parts - 1} without gaps; "
                         f"part(s) {empty[:10].tolist()} have no atom")
    return a, n_parts


def finish(assignment: np.ndarray, n_parts: int, method: str, name: str = "n_parts") -> np.ndarray:
    """Check that every part 0..n_parts-1 got an atom; return read-only int64 ids."""
    a = np.ascontiguousarray(assignment, dtype=np.int64)
    counts = np.bincount(a, minlength=n_parts)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"{name}: {method} left part(s) {empty[:10].tolist()} of {n_parts} empty; "
                         f"use fewer parts ({n_parts} requested)")
    return a

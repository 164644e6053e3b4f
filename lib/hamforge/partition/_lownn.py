"""Low-NN recursive bisection (SC'25 Appendix A, docs/references.md).

Goal: few neighbouring partitions per part (communication partners) and balanced edges, fast.

Algorithm. Start with one domain holding all atoms and ``n_parts`` parts to make. A domain with ``n > 1``
parts is cut by one lattice plane (constant fractional coordinate along one axis) into a left domain
with ``n // 2`` parts and a right one with ``n - n // 2``; both are cut again until every domain has one
part. Part ids follow the leaves from left to right, so neighbouring ids are neighbouring in space.

* Where to cut: atoms are sorted by their fractional coordinate along the axis (ties by atom id) and
  the cut is placed where the cumulative **weight** (default: node degree = number of incoming edges,
  i.e. the edges the part will own) is closest to ``n_left / n`` of the domain's total weight. Dense and
  sparse regions therefore get equal numbers of edges, not equal volumes. Each side keeps at least as
  many atoms as it has parts to make. A domain whose atoms all weigh 0 is split by atom count.
* Which axis: a periodic axis not yet cut (within the domain's history) first: its two halves touch each
  other on both sides, so the cut adds exactly one neighbour; the largest such axis (perpendicular
  height) wins. Otherwise the axis with the fewest expected new neighbours ``ceil(2 r_cut / L)``, with
  ``L`` the domain's extent along the axis measured perpendicular to the lattice planes (fractional span
  times plane spacing); ties go to the larger ``L``, then to the lower axis index.

Generalisation: the paper uses ``n_parts = 2^m``; any ``n_parts`` works here (uneven splits with weight
targets in proportion), and for powers of two it is exactly the paper's bisection.

Cost: one sort per domain and level, ``O(N log N log n_parts)``; plus one pass over the edges for the
degrees.
"""

from __future__ import annotations

import math

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.partition._checks import check_n_parts, check_nl, finish, row_pointers
from hamforge.partition._geometry import Frame, frame

__all__ = ["partition_lownn", "node_degree"]


def node_degree(nl: NeighborList) -> np.ndarray:
    """``(N,)`` int64 number of incoming edges of every atom (edges ``(i, j, R)`` with centre ``i``)."""
    return np.diff(row_pointers(check_nl(nl)))


def balance_weights(nl: NeighborList, weights=None) -> np.ndarray:
    """``(N,)`` float64 per-atom cost the cuts balance: ``weights`` checked, or the node degree (edges owned)."""
    if weights is None:
        return node_degree(nl).astype(np.float64)
    w = np.asarray(weights)
    if w.shape != (nl.n_atoms,):
        raise ValueError(f"weights: expected shape ({nl.n_atoms},), got {w.shape}")
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
        raise ValueError("weights: must be finite and >= 0")
    return w


def partition_lownn(nl: NeighborList, positions, n_parts: int, *, weights=None) -> np.ndarray:
    """Low-NN recursive bisection (module docstring).

    Args:
        nl: neighbour list (cell, pbc, r_cut, and the degrees used as weights).
        positions: ``(N, 3)`` Cartesian positions, Angstrom.
        n_parts: number of parts (a power of two is the paper's method; others are allowed).
        weights: optional ``(N,)`` non-negative per-atom cost to balance instead of the node degree.

    Returns:
        ``(N,)`` int64 part ids in ``0 .. n_parts - 1``, every part non-empty.
    """
    nl = check_nl(nl)
    n_parts = check_n_parts(n_parts, nl.n_atoms)
    fr = frame(nl, positions)
    w = balance_weights(nl, weights)
    out = np.zeros(nl.n_atoms, dtype=np.int64)
    # Depth-first over domains: (atom ids, parts to make, axes already cut, first part id).
    stack = [(np.arange(nl.n_atoms, dtype=np.int64), n_parts, np.zeros(3, dtype=bool), 0)]
    while stack:
        idx, n, cut, first = stack.pop()
        if n == 1:
            out[idx] = first
            continue
        ax = choose_axis(fr, idx, cut, nl.r_cut)
        order = np.lexsort((idx, fr.frac[idx, ax]))
        s = idx[order]
        n_left = n // 2
        m = _balanced_split(w[s], n_left, n - n_left)
        child_cut = cut.copy()
        child_cut[ax] = True
        stack.append((s[m:], n - n_left, child_cut, first + n_left))
        stack.append((s[:m], n_left, child_cut, first))
    return finish(out, n_parts, "lownn")


def choose_axis(fr: Frame, idx: np.ndarray, cut: np.ndarray, r_cut: float) -> int:
    """Axis to cut for the domain of atoms ``idx`` whose axes ``cut`` (3,) bool were cut before."""
    whole = fr.pbc & ~cut
    ext = np.array([fr.extent(idx, k, bool(whole[k])) for k in range(3)])
    if whole.any():
        cand = np.flatnonzero(whole)
        return int(cand[np.argmax(ext[cand])])
    cost = np.array([math.ceil(2.0 * r_cut / e) if e > 0 else math.inf for e in ext])
    best = np.flatnonzero(cost == cost.min())
    return int(best[np.argmax(ext[best])])


def _balanced_split(ws: np.ndarray, n_left: int, n_right: int) -> int:
    """Number of leading atoms (sorted along the cut axis) that go left; weights ``ws`` >= 0."""
    c = np.concatenate([[0.0], np.cumsum(ws)])
    if c[-1] <= 0.0:
        c = np.arange(ws.shape[0] + 1, dtype=np.float64)
    target = c[-1] * n_left / (n_left + n_right)
    k = int(np.searchsorted(c, target))  # c[k-1] < target <= c[k]
    m = k if k == 0 or (k < c.shape[0] and c[k] - target <= target - c[k - 1]) else k - 1
    return int(np.clip(m, n_left, ws.shape[0] - n_right))

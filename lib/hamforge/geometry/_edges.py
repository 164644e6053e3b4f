"""The neighbour-list record (edges with lattice-image shifts) and the one formula for edge vectors.

Edge convention (``docs/conventions.md``): an edge ``(i, j, R)`` joins the centre atom ``i`` (block row,
message receiver) and the neighbour ``j`` in lattice image ``R`` (block column, message source),
``vec = x_j + R @ cell - x_i``. The search that finds the edges is ``hamforge.graph.neighbor_list``; this
record lives here so that file readers (``hamforge.io``) can rebuild it without depending on the graph room.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NeighborList", "edge_vectors", "frozen_neighbor_list"]


@dataclass(frozen=True, eq=False)
class NeighborList:
    """All edges ``(i, j, R)`` with ``0 < |x_j + R @ cell - x_i| <= r_cut``. Arrays are read-only. Fields::

    edge_index  # (2, E) int64   | [centre i (row, receiver); neighbour j (column, source)]
    shift       # (E, 3) int64   | lattice image R of j (0 along non-periodic axes)
    vec         # (E, 3) float64 | x_j + R @ cell - x_i, Angstrom
    dist        # (E,)   float64 | |vec|, Angstrom
    n_atoms     # int            | N
    r_cut       # float          | inclusive cutoff, Angstrom
    cell        # (3, 3) float64 | rows are lattice vectors
    pbc         # (3,)   bool    | periodic axes
    """

    edge_index: np.ndarray
    shift: np.ndarray
    vec: np.ndarray
    dist: np.ndarray
    n_atoms: int
    r_cut: float
    cell: np.ndarray
    pbc: np.ndarray

    @property
    def n_edges(self) -> int:
        """Number of edges E."""
        return int(self.dist.shape[0])


def edge_vectors(positions: np.ndarray, cell: np.ndarray, edge_index: np.ndarray, shift: np.ndarray):
    """``(vec (E, 3), dist (E,))`` with ``vec = x_j + R @ cell - x_i`` for edges ``(i, j, R)``.

    Computed component by component in a fixed order, element-wise only (no BLAS, whose summation order
    may depend on array sizes): ``((R0 a0k + R1 a1k) + R2 a2k) + x_jk - x_ik``. ``neighbor_list`` uses the
    same order, so vectors recomputed from a file are bit-identical to the ones of the search.
    """
    i, j = edge_index[0], edge_index[1]
    vec = np.empty((i.shape[0], 3), np.float64)
    sf = [shift[:, k].astype(np.float64) for k in range(3)]
    for k in range(3):
        v = sf[0] * cell[0, k]
        v += sf[1] * cell[1, k]
        v += sf[2] * cell[2, k]
        v += positions[j, k]
        v -= positions[i, k]
        vec[:, k] = v
    dist = vec[:, 0] * vec[:, 0]
    dist += vec[:, 1] * vec[:, 1]
    dist += vec[:, 2] * vec[:, 2]
    np.sqrt(dist, out=dist)
    return vec, dist


def frozen_neighbor_list(edge_index, shift, vec, dist, n_atoms, r_cut, cell, pbc) -> NeighborList:
    """A :class:`NeighborList` with all arrays made read-only (no copies)."""
    for a in (edge_index, shift, vec, dist, cell, pbc):
        a.setflags(write=False)
    return NeighborList(
        edge_index=edge_index,
        shift=shift,
        vec=vec,
        dist=dist,
        n_atoms=int(n_atoms),
        r_cut=float(r_cut),
        cell=cell,
        pbc=pbc,
    )

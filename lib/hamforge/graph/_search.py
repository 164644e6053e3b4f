"""Edges of chosen centre atoms, exactly those of :func:`hamforge.graph.neighbor_list`, without the whole list.

Streamed prediction needs the edges of one part (and of its halo) at a time; the whole neighbour list of a
10^6-atom structure would take ~10 GB (72 bytes per edge). :class:`NeighborSearch` keeps only the wrapped
positions in a k-d tree (``hamforge.basis.ImageSearch``, O(N) memory) and answers, per set of centres, the
edges ``(i, j, R)`` with ``i`` among them: candidates come from a tree search with a radius enlarged by a tiny
slack, and the decision is the neighbour list's exact rule (``0 < dist <= r_cut`` on the float64 ``dist`` of
:func:`hamforge.graph._neighbors.edge_geometry`). So the edges, their order ``(i, j, R)``, ``vec`` and ``dist``
are bit for bit the rows of ``neighbor_list`` for those centres.
"""

from __future__ import annotations

import numpy as np

from hamforge.basis import ImageSearch
from hamforge.graph._neighbors import _check_inputs, edge_geometry

__all__ = ["EdgeSet", "NeighborSearch"]

# Centres per tree query (bounds the candidate temporaries to ~100 MB at ~150 neighbours per atom).
_CENTRES_PER_QUERY = 4096
_SLACK = 1e-8  # relative to the coordinate scale, as in neighbor_list


class EdgeSet:
    """Edges of some centres, sorted by ``(i, j, R)``. Fields: ``i``, ``j`` (E,) int64; ``shift`` (E, 3) int64;
    ``vec`` (E, 3) float64; ``dist`` (E,) float64."""

    __slots__ = ("i", "j", "shift", "vec", "dist")

    def __init__(self, i, j, shift, vec, dist):
        self.i, self.j, self.shift, self.vec, self.dist = i, j, shift, vec, dist

    @property
    def n_edges(self) -> int:
        return int(self.i.shape[0])


class NeighborSearch:
    """Exact neighbour-list rows of any set of centres (module docstring); ``positions`` as given (not wrapped)."""

    def __init__(self, positions, cell, pbc, r_cut: float):
        x, cell, pbc, r_cut = _check_inputs(positions, cell, pbc, r_cut)
        self.r_cut, self.pbc, self.cell = r_cut, pbc, np.where(pbc[:, None], cell, 0.0)
        self.n_atoms = int(x.shape[0])
        self._xT = np.ascontiguousarray(x.T)
        scale = r_cut + 2.0 * float(np.abs(x).max(initial=0.0)) + 4.0 * float(np.abs(self.cell).sum())
        self._search = ImageSearch(x, self.cell, pbc, r_cut + _SLACK * scale)

    def edges(self, centres) -> EdgeSet:
        """All edges ``(i, j, R)`` with ``i`` in ``centres`` (any order, no duplicates), sorted by ``(i, j, R)``."""
        centres = np.sort(np.asarray(centres, np.int64))
        got = []
        for a in range(0, centres.shape[0], _CENTRES_PER_QUERY):
            i, j, r = self._search.pairs(centres[a : a + _CENTRES_PER_QUERY])
            vec, dist = edge_geometry(self._xT, self.cell, i, j, [r[:, 0], r[:, 1], r[:, 2]])
            coincide = np.flatnonzero(dist == 0.0)
            if coincide.size:
                k = int(coincide[0])
                raise ValueError(
                    f"positions: atom {int(i[k])} and atom {int(j[k])} in image {r[k].tolist()} coincide (distance 0)"
                )
            keep = dist <= self.r_cut
            got.append((i[keep], j[keep], r[keep], np.stack(vec, axis=1)[keep], dist[keep]))
        if not got:
            z = np.zeros(0, np.int64)
            return EdgeSet(z, z, np.zeros((0, 3), np.int64), np.zeros((0, 3)), np.zeros(0))
        return EdgeSet(*(np.concatenate(parts) for parts in zip(*got)))

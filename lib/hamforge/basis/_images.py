"""Periodic image pairs ``(i, j, R)`` within ``r_cut`` for one chunk of centre atoms (for the Gamma-point S).

``hamforge.graph.neighbor_list`` is the project's neighbour list (exact tie rules, the graph's edge order);
it sits above this room and builds every edge at once. :func:`overlap_matrix` only needs the pairs of one
chunk of centres at a time, so this module finds them per chunk: positions are wrapped into the cell once and
put in one k-d tree (scipy's ``cKDTree``, O(N) memory); for a chunk, the candidate image shifts are those whose
translated cell can hold a point within ``r_cut`` of the chunk (per periodic axis, the chunk's fractional
range widened by ``r_cut / height``), and each shift is one vectorized tree-tree query
(``sparse_distance_matrix``). No edge list of the whole structure exists at any time (ASE's
``primitive_neighbor_list`` peaks at ~1.4 kB per edge, benchmarks/bench_neighbors.py).

Convention as in ``hamforge.graph``: ``vec = x_j + R @ cell - x_i`` with the positions as given, pairs with
``0 < |vec| <= r_cut`` (a distance within rounding of ``r_cut`` may fall either way; overlap blocks there are
below the range's threshold anyway), ``R = 0`` along non-periodic axes, self-images ``(i, i, R != 0)``
included.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["ImageSearch"]


class ImageSearch:
    """Chunk-wise periodic pair search (see the module docstring)."""

    def __init__(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, r_cut: float):
        from scipy.spatial import cKDTree

        self.r_cut = float(r_cut)
        self.pbc = np.asarray(pbc, bool)
        self.cell = np.where(self.pbc[:, None], cell, 0.0)  # open axes never translate
        x = np.asarray(positions, np.float64)
        periodic = np.flatnonzero(self.pbc)
        self.wrap = np.zeros(x.shape, np.int64)  # x + wrap @ cell lies in the cell along periodic axes
        self.frac = np.zeros(x.shape)
        self.reach = np.zeros(3)
        if periodic.size:
            lat = cell[periodic]  # (p, 3)
            if np.linalg.matrix_rank(lat) < periodic.size:
                raise ValueError("cell: the lattice vectors of the periodic axes are linearly dependent")
            dual = np.linalg.pinv(lat)  # (3, p): frac = x @ dual, dual columns are reciprocal vectors
            frac = x @ dual
            self.wrap[:, periodic] = -np.floor(frac).astype(np.int64)
            self.frac[:, periodic] = frac + self.wrap[:, periodic]
            self.reach[periodic] = self.r_cut * np.linalg.norm(dual, axis=0)  # r_cut / plane spacing
        self.xw = x + self.wrap.astype(np.float64) @ self.cell
        self.tree = cKDTree(self.xw)

    def pairs(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs ``(i, j, R)`` with ``i`` in ``centres``, sorted by ``(i, j, R)``; int64 arrays."""
        from scipy.spatial import cKDTree

        centres = np.asarray(centres, np.int64)
        f = self.frac[centres]
        lo = np.floor(f.min(axis=0) - self.reach).astype(np.int64)
        hi = np.floor(f.max(axis=0) + self.reach).astype(np.int64)
        lo[~self.pbc] = hi[~self.pbc] = 0
        ctree = cKDTree(self.xw[centres])
        out_i, out_j, out_r = [], [], []
        for s in itertools.product(*(range(a, b + 1) for a, b in zip(lo.tolist(), hi.tolist()))):
            # copies xw_j + s @ cell within r_cut of xw_i  <=>  xw_j within r_cut of xw_i - s @ cell
            shift = np.asarray(s, np.float64) @ self.cell
            ctree_s = ctree if not shift.any() else cKDTree(self.xw[centres] - shift)
            hits = ctree_s.sparse_distance_matrix(self.tree, self.r_cut, output_type="ndarray")
            if not hits.shape[0]:
                continue
            li, j = hits["i"].astype(np.int64), hits["j"].astype(np.int64)
            i = centres[li]
            keep = (i != j) | any(s)  # (i, i, 0) is the node, not a pair
            i, j = i[keep], j[keep]
            r = np.asarray(s, np.int64) + self.wrap[j] - self.wrap[i]  # back to the positions as given
            out_i.append(i)
            out_j.append(j)
            out_r.append(r)
        if not out_i:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
        i, j, r = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_r)
        order = np.lexsort((r[:, 2], r[:, 1], r[:, 0], j, i))
        return i[order], j[order], r[order]

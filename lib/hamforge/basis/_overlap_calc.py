"""Exact overlap blocks of chosen atoms and pairs of one structure, the inputs prepared once.

:func:`hamforge.basis.iter_overlap_blocks` sweeps every atom of a structure; streamed prediction needs the
blocks of one row slab at a time (and of the reverse edges it owns), so :class:`OverlapCalculator` keeps the
prepared structure (positions, kinds, libcint sites: O(N)) and computes the blocks of any subset, chunk by
chunk of spatially compact centres (the same libcint call per chunk as the sweep: a block depends only on its
pair's geometry, so its bits do not depend on which chunk computed it).
"""

from __future__ import annotations

import numpy as np

from hamforge.basis._overlap import (
    DEFAULT_CHUNK_ATOMS,
    _check_edges,
    _chunk_blocks,
    _offsets,
    _prepare,
    _ranges,
    _spatial_order,
)

__all__ = ["OverlapCalculator"]


class OverlapCalculator:
    """Overlap blocks of a structure on demand. Arguments as :func:`hamforge.basis.iter_overlap_blocks`."""

    def __init__(self, positions, cell, kinds, basis_sets, *, basis_file=None, chunk_atoms: int = DEFAULT_CHUNK_ATOMS):
        self._prep = _prepare(positions, cell, kinds, basis_sets, basis_file)
        self.chunk_atoms = int(chunk_atoms)

    @property
    def n_orb(self) -> np.ndarray:
        """(N,) orbitals per atom."""
        return self._prep.n_orb

    def node_blocks(self, atoms) -> np.ndarray:
        """Flat on-site blocks ``S_ii(0)`` of ``atoms`` (in that order), row-major."""
        atoms = np.asarray(atoms, np.int64)
        z = np.zeros(0, np.int64)
        sizes = self._prep.n_orb[atoms] ** 2
        off, out = _offsets(sizes), np.empty(int(sizes.sum()))
        for sel in self._chunks(atoms):
            node, _ = _chunk_blocks(self._prep, atoms[sel], z, z, np.zeros((0, 3), np.int64))
            out[_ranges(off[sel], sizes[sel])] = node
        return out

    def edge_blocks(self, i, j, shift) -> np.ndarray:
        """Flat blocks ``S_ij(R)`` of the pairs ``(i, j, R)`` (in that order, any centres), row-major."""
        i, j, shift = _check_edges((i, j), shift, self._prep.x.shape[0])
        n_orb = self._prep.n_orb
        sizes = n_orb[i] * n_orb[j]
        off, out = _offsets(sizes), np.empty(int(sizes.sum()))
        centres, inv = np.unique(i, return_inverse=True)
        chunk_of = np.empty(centres.shape[0], np.int64)
        groups = list(self._chunks(centres))
        for c, sel in enumerate(groups):
            chunk_of[sel] = c
        ec = chunk_of[inv.reshape(-1)]
        by = np.argsort(ec, kind="stable")
        bounds = np.searchsorted(ec[by], np.arange(len(groups) + 1))
        for c, sel in enumerate(groups):
            e = by[bounds[c] : bounds[c + 1]]
            if e.size:
                _, data = _chunk_blocks(self._prep, centres[sel], i[e], j[e], shift[e])
                out[_ranges(off[e], sizes[e])] = data
        return out

    def _chunks(self, atoms):
        """Index arrays into ``atoms``: spatially compact groups of at most ``chunk_atoms``."""
        order = _spatial_order(self._prep.x[atoms], self.chunk_atoms)
        for a in range(0, order.shape[0], self.chunk_atoms):
            yield order[a : a + self.chunk_atoms]

"""Augmented partitions: labelled atoms of one part plus a k-hop halo of virtual nodes and edges.

Ownership ("incoming-edge", SC'25): a part owns its atoms and every edge ``(i, j, R)`` whose centre
``i`` (the receiver) is one of them. Every atom and every edge of the full graph is therefore labelled in
exactly one part.

Halo of depth ``k`` (the hop distance of an atom is the length of the shortest path of edges
``j -> i`` from it to a labelled atom):

* ``k >= 1``: the nodes are all atoms at hop ``<= k``; the edges are **all** incoming edges of the nodes
  at hop ``< k`` (for ``k = 1``: the edges into labelled atoms, the paper's virtual nodes/edges; for
  ``k > 1`` the virtual nodes at hop ``< k`` get their own incoming edges too).
* ``k = 0``: only the labelled atoms and the edges between them (edges from outside sources are dropped;
  the "raw partition" baseline of the ICML paper, not exact for any model).

Exactness: a message-passing model with ``M`` layers, in which layer ``l`` updates node ``i`` from its
incoming edges and the layer ``l - 1`` states of ``i`` and the sources, gives on the part with
``k = M`` the same labelled-node outputs as on the full graph: by induction, after ``l`` layers every
node at hop ``<= k - l`` is exact (its incoming edges are all present, its sources are at hop
``<= k - l + 1``). An edge readout that uses the layer-``M`` states of **both** ends of a labelled edge
needs ``k = M + 1`` (the source is at hop 1).

Periodic images: an atom ``j`` reached through several images ``R`` is **one** node; the edges carry
their shifts (``nl.shift[part.edges]``), so self-images and multiply-connected pairs stay ordinary edges.
Local edge data are gathered with the edge ids: ``nl.vec[part.edges]``, ``targets[part.edges]``.

Cost per part: ``O(local edges + local nodes)`` after one ``O(N + E)`` setup; no per-edge Python loop.
"""

from __future__ import annotations

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.io import AugmentedPartition, check_assignment
from hamforge.partition._checks import check_int, check_nl, row_pointers

__all__ = ["AugmentedPartition", "augment", "augment_all", "iter_augment"]


class _Graph:
    """CSR view of the incoming edges, shared by all parts, with scratch maps reset after each part."""

    def __init__(self, nl: NeighborList):
        self.indptr = row_pointers(nl)
        self.centre = nl.edge_index[0]
        self.source = nl.edge_index[1]
        self.in_part = np.zeros(nl.n_atoms, dtype=bool)  # scratch, all False between parts
        self.local = np.full(nl.n_atoms, -1, dtype=np.int64)  # scratch, all -1 between parts

    def incoming(self, rows: np.ndarray) -> np.ndarray:
        """Edge ids of all incoming edges of ``rows`` (increasing when ``rows`` is)."""
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        total = int(counts.sum())
        offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return offsets + np.arange(total, dtype=np.int64)

    def build(self, part: int, labelled: np.ndarray, halo: int) -> AugmentedPartition:
        layers = [labelled]
        chunks = []
        self.in_part[labelled] = True
        frontier = labelled
        try:
            for _ in range(halo):
                e = self.incoming(frontier)
                chunks.append(e)
                src = self.source[e]
                new = np.unique(src[~self.in_part[src]])
                self.in_part[new] = True
                layers.append(new)
                frontier = new
            if halo == 0:
                e = self.incoming(labelled)
                edges = e[self.in_part[self.source[e]]]
            else:
                edges = np.sort(np.concatenate(chunks)) if len(chunks) > 1 else chunks[0]
            nodes = np.concatenate(layers)
            hop = np.repeat(np.arange(len(layers), dtype=np.int64), [len(x) for x in layers])
            self.local[nodes] = np.arange(nodes.shape[0], dtype=np.int64)
            eil = np.stack([self.local[self.centre[edges]], self.local[self.source[edges]]])
            is_lab = hop[eil[0]] == 0
        finally:
            self.in_part[np.concatenate(layers)] = False
            self.local[np.concatenate(layers)] = -1
        arrays = dict(
            nodes=nodes,
            node_hop=hop,
            edges=np.asarray(edges, dtype=np.int64),
            edge_index_local=eil,
            edge_is_labelled=is_lab,
        )
        for a in arrays.values():
            a.setflags(write=False)
        return AugmentedPartition(part=int(part), halo=int(halo), n_labelled=int(labelled.shape[0]), **arrays)


def augment(nl: NeighborList, assignment, part: int, halo: int) -> AugmentedPartition:
    """Part ``part`` of ``assignment`` ((N,) part ids) with a halo of depth ``halo`` (module docstring)."""
    nl = check_nl(nl)
    a, n_parts = check_assignment(assignment, nl.n_atoms)
    part = check_int(part, "part", 0)
    if part >= n_parts:
        raise ValueError(f"part: {part} is not a part of the assignment (parts 0..{n_parts - 1})")
    halo = check_int(halo, "halo", 0)
    return _Graph(nl).build(part, np.flatnonzero(a == part).astype(np.int64), halo)


def augment_all(nl: NeighborList, assignment, halo: int) -> list[AugmentedPartition]:
    """:func:`augment` for every part ``0 .. max(assignment)``, sharing one setup pass over the edges."""
    return list(iter_augment(nl, assignment, halo))


def iter_augment(nl: NeighborList, assignment, halo: int):
    """:func:`augment_all` one part at a time (a generator): memory holds one augmented part, not all of them."""
    nl = check_nl(nl)
    a, n_parts = check_assignment(assignment, nl.n_atoms)
    halo = check_int(halo, "halo", 0)
    g = _Graph(nl)
    order = np.argsort(a, kind="stable")  # atoms grouped by part, increasing ids inside each part
    bounds = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=n_parts))])
    for p in range(n_parts):
        yield g.build(p, order[bounds[p] : bounds[p + 1]].astype(np.int64), halo)

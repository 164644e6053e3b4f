"""METIS (pymetis) on the atom graph: the edge-cut minimizing baseline."""

from __future__ import annotations

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.partition._checks import check_int, check_n_parts, check_nl, finish
from hamforge.partition._lownn import node_degree

__all__ = ["partition_metis", "atom_adjacency"]

_VERTEX_WEIGHTS = ("degree", "none")


def atom_adjacency(nl: NeighborList):
    """Undirected atom graph as a ``scipy.sparse.csr_matrix`` (N, N) int64, no diagonal.

    Entry ``(i, j)`` is the number of lattice images ``R`` with an edge ``(i, j, R)`` (the multiplicity);
    self-images ``(i, i, R != 0)`` are dropped. The neighbour list is symmetric under
    ``(i, j, R) -> (j, i, -R)``, so the matrix is symmetric.
    """
    import scipy.sparse as sp

    nl = check_nl(nl)
    i, j = nl.edge_index
    keep = i != j
    n = nl.n_atoms
    a = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.int64), (i[keep], j[keep])), shape=(n, n))
    a.sum_duplicates()
    return a


def partition_metis(
    nl: NeighborList,
    n_parts: int,
    *,
    edge_weights: bool = False,
    vertex_weights: str = "degree",
    seed: int = 0,
    contiguous: bool = False,
) -> np.ndarray:
    """Partition the atom graph with METIS (``pymetis.part_graph``, k-way).

    Args:
        nl: neighbour list; the graph is :func:`atom_adjacency`.
        n_parts: number of parts.
        edge_weights: weight each atom pair by its image multiplicity (default: every pair weighs 1).
        vertex_weights: ``"degree"`` balances ``1 + degree`` per atom (the edges a part owns, like Low-NN;
            the 1 keeps isolated atoms from weighing 0), ``"none"`` balances atom counts.
        seed: METIS random seed (the result is deterministic for a given seed and pymetis version).
        contiguous: ask METIS for connected parts.

    Returns:
        ``(N,)`` int64 part ids in ``0 .. n_parts - 1``. METIS may leave a part empty for tiny or
        disconnected graphs; that is reported as a ValueError naming ``n_parts``.
    """
    import pymetis

    nl = check_nl(nl)
    n_parts = check_n_parts(n_parts, nl.n_atoms)
    seed = check_int(seed, "seed", 0)
    if vertex_weights not in _VERTEX_WEIGHTS:
        raise ValueError(f"vertex_weights: expected one of {_VERTEX_WEIGHTS}, got {vertex_weights!r}")
    if n_parts == 1:
        return np.zeros(nl.n_atoms, dtype=np.int64)
    a = atom_adjacency(nl)
    xadj = a.indptr.astype(np.int64)
    adjncy = a.indices.astype(np.int64)
    if xadj[-1] >= np.iinfo(np.int32).max:  # METIS idx_t is 32-bit in the pymetis wheels
        raise ValueError(f"nl: {int(xadj[-1])} adjacency entries exceed METIS' 32-bit index range")
    kwargs = dict(options=pymetis.Options(seed=seed), contiguous=bool(contiguous) or None)
    if vertex_weights == "degree":
        kwargs["vweights"] = (node_degree(nl) + 1).astype(np.int64)
    if edge_weights:
        kwargs["eweights"] = a.data.astype(np.int64)
    if hasattr(pymetis, "CSRAdjacency"):
        res = pymetis.part_graph(n_parts, pymetis.CSRAdjacency(xadj, adjncy), **kwargs)
    else:  # pymetis < 2025.2
        res = pymetis.part_graph(n_parts, xadj=xadj, adjncy=adjncy, **kwargs)
    membership = np.asarray(res[1], dtype=np.int64)
    return finish(membership, n_parts, "METIS")

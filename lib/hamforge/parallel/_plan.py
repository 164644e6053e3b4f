"""Incoming-edge ownership of one graph over ranks: owned atoms, owned edges, ghosts, send and receive lists.

Rank ``r`` owns the atoms of part ``r`` of an assignment (``hamforge.partition.partition_atoms``) and every
edge whose centre ``i = edge_index[0]`` (the receiver, ``docs/conventions.md``) it owns. The sources ``j``
of owned edges owned by other ranks are its *ghosts*. Local node numbering: owned atoms first (ascending
global index), then the ghosts grouped by owner rank (ascending), ascending global index inside a group.
Owned edges keep their global order, so the incoming edges of a node stay contiguous and in the order of
the full graph. The atoms rank ``r`` sends to rank ``q`` are exactly ``q``'s ghosts owned by ``r``, in the
same order, so buffers need no index headers. Every rank builds its own plan from the global edge list
and the assignment; nothing is exchanged to agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hamforge.model import EDGE_INDEX, EDGE_VEC, NUMBERS

__all__ = ["HaloPlan", "build_halo_plan"]


@dataclass(frozen=True, eq=False)
class HaloPlan:
    """What one rank owns and exchanges. Index arrays are int64 numpy arrays::

    rank, world        # this rank, number of ranks (= number of parts)
    owned              # (n_owned,)  global atom indices, ascending
    ghosts             # (n_ghost,)  global atom indices of the remote sources, grouped by owner
    edges              # (E_r,)      global edge indices of the owned edges (centre owned), ascending
    edge_index         # (2, E_r)    local numbering: centre in 0..n_owned-1, source in 0..n_local-1
    send_ranks         # ranks this one sends node rows to, ascending
    send_index         # per send rank: (n_send,) local (= owned) row indices, in the receiver's ghost order
    recv_ranks         # ranks this one receives ghost rows from, ascending
    recv_counts        # per receive rank: number of ghost rows (they are contiguous, in recv_ranks order)
    """

    rank: int
    world: int
    owned: np.ndarray
    ghosts: np.ndarray
    edges: np.ndarray
    edge_index: np.ndarray
    send_ranks: tuple[int, ...]
    send_index: tuple[np.ndarray, ...]
    recv_ranks: tuple[int, ...]
    recv_counts: tuple[int, ...]

    @property
    def n_owned(self) -> int:
        return int(self.owned.shape[0])

    @property
    def n_ghost(self) -> int:
        return int(self.ghosts.shape[0])

    @property
    def nodes(self) -> np.ndarray:
        """(n_owned + n_ghost,) global atom index of every local node."""
        return np.concatenate([self.owned, self.ghosts])

    @property
    def neighbours(self) -> tuple[int, ...]:
        """Ranks exchanged with in either direction."""
        return tuple(sorted(set(self.send_ranks) | set(self.recv_ranks)))

    def local_graph(self, numbers, edge_vec) -> dict[str, torch.Tensor]:
        """Model input of this rank (``hamforge.model`` keys) from global ``numbers (N,)`` and
        ``edge_vec (E, 3)`` (numpy or torch): local+ghost atoms, owned edges in local numbering."""
        numbers, edge_vec = torch.as_tensor(numbers), torch.as_tensor(edge_vec)
        return {
            NUMBERS: numbers[torch.from_numpy(self.nodes)],
            EDGE_INDEX: torch.from_numpy(self.edge_index),
            EDGE_VEC: edge_vec[torch.from_numpy(self.edges)],
        }


def build_halo_plan(edge_index, assignment, rank: int) -> HaloPlan:
    """Plan of ``rank`` for a graph ``edge_index (2, E)`` (global, sorted by centre) split by
    ``assignment (N,)`` (part id per atom, parts ``0 .. world-1`` all non-empty, world = number of parts).

    Raises:
        ValueError: malformed edge_index or assignment, rank outside ``0 .. world-1``, an empty part.
    """
    ei = np.asarray(edge_index)
    part = np.asarray(assignment)
    if ei.ndim != 2 or ei.shape[0] != 2 or not np.issubdtype(ei.dtype, np.integer):
        raise ValueError(f"edge_index: expected an integer (2, E) array, got {ei.shape} {ei.dtype}")
    if part.ndim != 1 or not np.issubdtype(part.dtype, np.integer) or part.size == 0 or part.min() < 0:
        raise ValueError(f"assignment: expected a non-empty (N,) array of part ids >= 0, got {part.shape} {part.dtype}")
    n, world = part.shape[0], int(part.max()) + 1
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        raise ValueError(f"edge_index: node indices outside 0..{n - 1} (assignment has {n} atoms)")
    sizes = np.bincount(part, minlength=world)
    if (sizes == 0).any():
        raise ValueError(f"assignment: parts {np.flatnonzero(sizes == 0).tolist()} are empty (one rank per part)")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world:
        raise ValueError(f"rank: expected an int in 0..{world - 1} (parts in the assignment), got {rank!r}")
    ei, part, rank = ei.astype(np.int64), part.astype(np.int64), int(rank)
    pi, pj = part[ei[0]], part[ei[1]]

    owned = np.flatnonzero(part == rank)
    edges = np.flatnonzero(pi == rank)
    src = ei[1, edges]
    remote = np.unique(src[pj[edges] != rank])
    ghosts = remote[np.lexsort((remote, part[remote]))]
    recv_ranks, recv_counts = np.unique(part[ghosts], return_counts=True)

    local = np.full(n, -1, dtype=np.int64)
    local[owned] = np.arange(owned.shape[0])
    local[ghosts] = owned.shape[0] + np.arange(ghosts.shape[0])
    edge_local = local[ei[:, edges]]

    # Rows wanted by the others: owned sources of edges whose centre another rank owns, unique per rank
    out = (pj == rank) & (pi != rank)
    pairs = np.unique(np.stack([pi[out], ei[1, out]], axis=1), axis=0) if out.any() else np.zeros((0, 2), np.int64)
    send_ranks = np.unique(pairs[:, 0])
    send_index = tuple(local[pairs[pairs[:, 0] == q, 1]] for q in send_ranks)
    return HaloPlan(
        rank=rank,
        world=world,
        owned=owned,
        ghosts=ghosts,
        edges=edges,
        edge_index=edge_local,
        send_ranks=tuple(int(q) for q in send_ranks),
        send_index=send_index,
        recv_ranks=tuple(int(q) for q in recv_ranks),
        recv_counts=tuple(int(c) for c in recv_counts),
    )

"""Training samples: one structure's targets on its full graph, on one augmented partition or on the part one rank
owns in a halo-exchanged run, as tensors.

A sample carries the model inputs of its local nodes and edges and the fold of its *labelled* items
(incoming-edge ownership: a part owns its atoms and every edge into them, hence every image of every pair
``(i, j)`` with ``i`` labelled and every self-image of its atoms, so the folded targets of its labelled nodes
and pairs are complete). Virtual nodes and edges get inputs like real ones; their outputs never reach the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from hamforge.model import EDGE_INDEX, EDGE_VEC, NUMBERS
from hamforge.train._fold import self_image_column_map

__all__ = ["Sample", "SymmetricFold", "make_owned_sample", "make_samples"]


@dataclass(frozen=True, eq=False)
class SymmetricFold:
    """What folds a sample onto symmetrized blocks, the ones ``hamforge.predict`` delivers: pair ``(i, j)`` gets
    ``(p_ij + T(p_ji)) / 2`` and node ``i`` gets ``(n_i + T(n_i)) / 2``, ``T`` the transpose in coupled space
    (:func:`hamforge.graph.pair_transpose_map`: ``T(c)[d] = sign[k, d] * c[cols[k, d]]`` for kind pair ``k``).
    Fields::

        pair_rev     # (n_pairs,) int64     | row of the reverse pair (j, i) in the sample's pairs
        pair_kp      # (n_pairs,) int64     | kind pair of each pair
        pair_cols    # (n_kp, Dp) int64     | pair_transpose_map of the pair layout
        pair_sign    # (n_kp, Dp) float
        node_kp      # (n_lab,) int64       | kind pair (a, a) of each labelled node
        node_cols    # (n_kp_node, Dn) int64 | pair_transpose_map of the node layout
        node_sign    # (n_kp_node, Dn) float
    """

    pair_rev: torch.Tensor
    pair_kp: torch.Tensor
    pair_cols: torch.Tensor
    pair_sign: torch.Tensor
    node_kp: torch.Tensor
    node_cols: torch.Tensor
    node_sign: torch.Tensor

    def to(self, device=None, dtype=None) -> "SymmetricFold":
        return SymmetricFold(
            **{
                f.name: getattr(self, f.name).to(
                    device=device, dtype=dtype if getattr(self, f.name).is_floating_point() and dtype else None
                )
                for f in fields(self)
            }
        )


def _symmetric_fold(t, name, g, pair_ids, dtype) -> SymmetricFold:
    """The :class:`SymmetricFold` of a sample with labelled nodes ``g`` and pairs ``pair_ids`` (global rows)."""
    from hamforge.graph import pair_transpose_map, reverse_edge_index

    other = t.edge_to_pair >= 0  # the reverse (j, i, -R) of an edge of pair (i, j) is an edge of pair (j, i)
    rev_pair = np.empty(t.pair_index.shape[1], np.int64)
    rev_pair[t.edge_to_pair[other]] = t.edge_to_pair[reverse_edge_index(t.nl)[other]]
    local = np.full(len(rev_pair), -1, np.int64)
    local[pair_ids] = np.arange(len(pair_ids))
    rev = local[rev_pair[pair_ids]]
    if np.any(rev < 0):
        k = int(np.flatnonzero(rev < 0)[0])
        i, j = (int(x) for x in t.pair_index[:, pair_ids[k]])
        raise ValueError(
            f"{name}: train.symmetrize needs the reverse ({j}, {i}) of every labelled pair ({i}, {j}) in the same "
            "sample: train on full graphs (use_partitions: false, parallel: partitions)"
        )
    (pc, ps), (nc, ns) = (pair_transpose_map(lay, t.basis) for lay in (t.pair_layout, t.node_layout))
    tt = lambda a, dt=torch.int64: torch.tensor(np.asarray(a), dtype=dt)  # noqa: E731
    return SymmetricFold(
        pair_rev=tt(rev),
        pair_kp=tt(t.pair_kind_pair[pair_ids]),
        pair_cols=tt(pc),
        pair_sign=tt(ps, dtype),
        node_kp=tt(t.node_kind_pair[g]),
        node_cols=tt(nc),
        node_sign=tt(ns, dtype),
    )


@dataclass(frozen=True, eq=False)
class Sample:
    """Tensors of one training item. Fields::

    name          # str                 | "<structure>" or "<structure>/part<p>"
    numbers       # (n_local,) int64    | kind ids (the model's species)
    edge_index    # (2, e_local) int64  | local [centre; source]
    edge_vec      # (e_local, 3) float  | Angstrom
    node_rows     # (n_lab,) int64      | local rows of the labelled nodes
    node_atoms    # (n_lab,) int64      | their global atom ids
    node_target   # (n_lab, Dn) float   | folded coupled on-site targets (Hartree)
    node_mask     # (n_lab, Dn) bool    | columns that exist for each node's kind pair
    pair_edge     # (e_p,) int64        | local ids of labelled edges with i != j
    pair_of_edge  # (e_p,) int64        | their row in pair_target
    pair_ids      # (n_pairs,) int64    | global pair rows (targets.pair_index columns)
    pair_target   # (n_pairs, Dp) float | folded coupled pair targets (Hartree)
    pair_mask     # (n_pairs, Dp) bool
    self_edge     # (e_s,) int64        | local ids of labelled self-image edges (i, i, R != 0)
    self_node     # (e_s,) int64        | their node row in node_target
    self_cols     # (e_s, Dn) int64     | pair column of each node column (self_image_column_map)
    symmetric     # SymmetricFold | None | fold onto symmetrized blocks (H_ij + H_ji^T) / 2 (make_samples)
    """

    name: str
    numbers: torch.Tensor
    edge_index: torch.Tensor
    edge_vec: torch.Tensor
    node_rows: torch.Tensor
    node_atoms: torch.Tensor
    node_target: torch.Tensor
    node_mask: torch.Tensor
    pair_edge: torch.Tensor
    pair_of_edge: torch.Tensor
    pair_ids: torch.Tensor
    pair_target: torch.Tensor
    pair_mask: torch.Tensor
    self_edge: torch.Tensor
    self_node: torch.Tensor
    self_cols: torch.Tensor
    symmetric: "SymmetricFold | None" = None

    @property
    def graph(self) -> dict[str, torch.Tensor]:
        """The model input dict."""
        return {NUMBERS: self.numbers, EDGE_INDEX: self.edge_index, EDGE_VEC: self.edge_vec}

    def to(self, device=None, dtype=None) -> "Sample":
        """A copy with tensors on ``device`` and floating tensors in ``dtype``."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device=device, dtype=dtype if v.is_floating_point() and dtype is not None else v.dtype)
            elif isinstance(v, SymmetricFold):
                v = v.to(device, dtype)
            out[f.name] = v
        return Sample(**out)


def _sample(t, name, nodes, n_lab, edges, eil, labelled, col_map, dtype, symmetrize=False) -> Sample:
    le = np.flatnonzero(labelled)
    etp = t.edge_to_pair[edges[le]]
    other = etp >= 0
    pair_ids, pair_of_edge = np.unique(etp[other], return_inverse=True)
    self_edge = le[~other]
    self_node = eil[0, self_edge]  # local centre of a labelled edge: a labelled node (labelled come first)
    g = nodes[:n_lab]
    tt = lambda a, dt=torch.int64: torch.tensor(np.asarray(a), dtype=dt)  # noqa: E731 (copies: inputs are read-only)
    return Sample(
        name=name,
        numbers=tt(t.atom_kind[nodes]),
        edge_index=tt(eil),
        edge_vec=tt(t.nl.vec[edges], dtype),
        node_rows=tt(np.arange(n_lab)),
        node_atoms=tt(g),
        node_target=tt(t.node_targets[g], dtype),
        node_mask=tt(t.node_layout.mask[t.node_kind_pair[g]], torch.bool),
        pair_edge=tt(le[other]),
        pair_of_edge=tt(pair_of_edge.reshape(-1)),
        pair_ids=tt(pair_ids),
        pair_target=tt(t.pair_targets[pair_ids], dtype),
        pair_mask=tt(t.pair_layout.mask[t.pair_kind_pair[pair_ids]], torch.bool),
        self_edge=tt(self_edge),
        self_node=tt(self_node),
        self_cols=tt(col_map[t.atom_kind[nodes[self_node]]].reshape(-1, t.node_layout.width)),
        symmetric=_symmetric_fold(t, name, g, pair_ids, dtype) if symmetrize else None,
    )


def make_samples(t, name: str, partition=None, dtype=torch.float32, symmetrize: bool = False) -> list[Sample]:
    """Samples of targets ``t`` (:class:`hamforge.io.Targets`): the full graph, or one per part of
    ``partition`` (a :class:`hamforge.io.PartitionFile` made from ``t``'s graph; checked). ``symmetrize``: fold
    onto symmetrized blocks (:class:`SymmetricFold`; needs the reverse of every pair in the sample: full graphs)."""
    col_map = self_image_column_map(t.node_layout, t.pair_layout)
    if partition is None:
        n, e = t.nl.n_atoms, t.nl.n_edges
        everything = (np.arange(n), n, np.arange(e), t.nl.edge_index, np.ones(e, bool))
        return [_sample(t, name, *everything, col_map, dtype, symmetrize)]
    partition.check_graph(t.nl)
    return [
        _sample(
            t,
            f"{name}/part{p.part}",
            p.nodes,
            p.n_labelled,
            p.edges,
            p.edge_index_local,
            p.edge_is_labelled,
            col_map,
            dtype,
            symmetrize,
        )
        for p in partition.parts
    ]


def make_owned_sample(t, name: str, plan, dtype=torch.float32) -> Sample:
    """The sample of one rank of a halo-exchanged run: ``plan`` (a :class:`hamforge.parallel.HaloPlan` of ``t``'s
    graph) gives its nodes (owned atoms, labelled, then the ghosts) and its edges (every edge into an owned atom,
    all labelled), in the local numbering of :meth:`HaloPlan.local_graph`. Incoming-edge ownership puts every image
    of a pair ``(i, j)`` and every self-image of ``i`` on ``i``'s rank, so the fold of the owned items is complete
    and each node and pair is on exactly one rank."""
    n_edges = int(plan.edges.shape[0])
    outside_atoms = plan.nodes.shape[0] > 0 and int(plan.nodes.max()) >= t.nl.n_atoms
    if outside_atoms or (n_edges > 0 and int(plan.edges.max()) >= t.nl.n_edges):
        raise ValueError(f"{name}: the halo plan is not one of this structure's graph ({t.nl.n_atoms} atoms)")
    col_map = self_image_column_map(t.node_layout, t.pair_layout)
    labelled = np.ones(n_edges, bool)
    return _sample(t, name, plan.nodes, plan.n_owned, plan.edges, plan.edge_index, labelled, col_map, dtype)

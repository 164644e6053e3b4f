"""The differentiable fold in coupled space: per-image edge outputs -> the Gamma-point targets.

CP2K's Gamma-point matrix is ``H(Gamma) = sum_R H(R)`` (docs/conventions.md, "Folding"). The model predicts one
block per edge ``(i, j, R)``; coupling is linear, so folding commutes with it and is done on the padded
coupled columns:

* pair ``(i, j)``, ``i != j``: the sum of the edge outputs of all its images (``edge_to_pair >= 0``);
* node ``i``: its own output plus the outputs of its self-image edges ``(i, i, R != 0)``. Those edges are in the
  *pair* layout, the node target in the *node* layout; the two differ in general (kinds A = (s, s, s) and
  B = (p): node layout 9x0e+1x1e+1x2e, pair layout 9x0e+1x1e+3x1o+1x2e), so an explicit column map per kind
  (:func:`self_image_column_map`) takes every (shell_a, shell_b, L) slot of kind pair (a, a) from its pair
  column to its node column.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["fold", "self_image_column_map"]


def self_image_column_map(node_layout, pair_layout) -> np.ndarray:
    """``(n_kinds, Dn)`` int64: for kind ``a`` and node column ``c`` the pair-layout column holding the same
    (shell_a, shell_b, L, M) component of kind pair (a, a), or ``Dp`` (an appended zero column) where the node
    column is padding for kind ``a``."""
    kinds = node_layout.kinds
    if tuple(pair_layout.kinds) != tuple(kinds):
        raise ValueError(f"node and pair layouts have different kinds: {kinds} vs {pair_layout.kinds}")
    dp = pair_layout.width
    out = np.full((len(kinds), node_layout.width), dp, dtype=np.int64)
    for a in range(len(kinds)):
        kn = int(node_layout.kind_pair_index(np.array([a]), np.array([a]))[0])
        kp = int(pair_layout.kind_pair_index(np.array([a]), np.array([a]))[0])
        if kn < 0 or kp < 0:
            raise ValueError(f"kind {kinds[a]!r}: no ({kinds[a]}, {kinds[a]}) kind pair in the layouts")
        pslots = {
            (int(pair_layout.slot_shell_a[s]), int(pair_layout.slot_shell_b[s]), int(pair_layout.slot_L[s])): int(
                pair_layout.slot_start[s]
            )
            for s in np.flatnonzero(pair_layout.slot_kind_pair == kp)
        }
        for s in np.flatnonzero(node_layout.slot_kind_pair == kn):
            key = (int(node_layout.slot_shell_a[s]), int(node_layout.slot_shell_b[s]), int(node_layout.slot_L[s]))
            if key not in pslots:
                raise ValueError(f"kind {kinds[a]!r}: node slot (shells {key[:2]}, L={key[2]}) has no pair-layout slot")
            w = 2 * key[2] + 1
            n0, p0 = int(node_layout.slot_start[s]), pslots[key]
            out[a, n0 : n0 + w] = np.arange(p0, p0 + w)
    return out


def fold(node_out: torch.Tensor, edge_out: torch.Tensor, s) -> tuple[torch.Tensor, torch.Tensor]:
    """Folded predictions ``(nodes (n_labelled, Dn), pairs (n_pairs, Dp))`` of one sample ``s``
    (:class:`hamforge.train.Sample`) from the model outputs on its nodes and edges. Differentiable."""
    pairs = edge_out.new_zeros((s.pair_target.shape[0], edge_out.shape[1]))
    pairs = pairs.index_add(0, s.pair_of_edge, edge_out.index_select(0, s.pair_edge))
    nodes = node_out.index_select(0, s.node_rows)
    if s.self_edge.numel():
        src = torch.cat([edge_out.index_select(0, s.self_edge), edge_out.new_zeros((s.self_edge.shape[0], 1))], 1)
        nodes = nodes.index_add(0, s.self_node, torch.gather(src, 1, s.self_cols))
    if s.symmetric is not None:  # the blocks hamforge.predict delivers: (H_ij + H_ji^T) / 2, per pair and node
        y = s.symmetric
        pairs = 0.5 * (pairs + _transposed(pairs.index_select(0, y.pair_rev), y.pair_kp, y.pair_cols, y.pair_sign))
        nodes = 0.5 * (nodes + _transposed(nodes, y.node_kp, y.node_cols, y.node_sign))
    return nodes, pairs


def _transposed(c: torch.Tensor, kp: torch.Tensor, cols: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Rows ``c`` (coupled blocks of the reverse pairs) transposed into kind pairs ``kp`` (pair_transpose_map)."""
    return sign.index_select(0, kp) * torch.gather(c, 1, cols.index_select(0, kp))

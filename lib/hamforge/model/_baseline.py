"""Physics baselines inside the model (Delta-learning): a linear two-centre model of every edge block and a linear
two-body crystal-field model of every on-site block, fitted by least squares before training
(``hamforge.train.fit_baseline``); the network predicts what they leave.

Both are the same construction. In the frame of a bond ``i <- j`` (bond along +z) a block that depends only on
the two atoms is invariant under rotations about the bond, so each coupled ``|L, M>`` component is non-zero
only at ``M = 0``; its value is a radial function ``f(d)`` of the kinds of both atoms and the output slot.
Rotated back, the slot gets ``f(d) * D^L(R_e)[M=0, :]`` (``∝ Y_L`` of the bond direction), as the overlap
head does. Edge ``(i, j, R)``::

    base_edge[e, slot] = f_edge[kind_i, kind_j, slot](d_e) * D^L(R_e)[0, :]

and on-site block ``i``, a sum over its neighbours (the crystal field of two-body terms)::

    base_node[i, slot] = c[kind_i, slot] (L = 0 only) + sum_{e: i <- j} f_node[kind_i, kind_j, slot](d_e) D^L(R_e)[0, :]

with ``f(d) = sum_k coef[k] g_k(d) u(d)``: the model's Gaussian expansion ``g`` times its cutoff envelope ``u``,
so the baseline vanishes at r_cut like every other output. Linear in the coefficients, exactly equivariant.
The coefficients are buffers (saved with the model, not trained by the optimizer).
"""

from __future__ import annotations

import torch
from torch import nn

from hamforge.model._heads import IrrepsLayout
from hamforge.model._so2 import EdgeWigner

__all__ = ["PhysicsBaseline", "slot_rows"]


def slot_rows(layout: IrrepsLayout, wigner: EdgeWigner, f: torch.Tensor) -> torch.Tensor:
    """``f`` (E, n_slots) M = 0 values in the edge frame, grouped slot order -> (E, D) rotated back, grouped
    column order (``layout.perm`` takes it to the Irreps-string order)."""
    e, parts, s = f.shape[0], [], 0
    for L in layout.ls:
        mul = layout.mul[L]
        row = wigner.wigner_row0(L)  # (E, 2L+1)
        parts.append((f[:, s : s + mul, None] * row[:, None, :]).reshape(e, mul * (2 * L + 1)))
        s += mul
    return torch.cat(parts, dim=1)


class PhysicsBaseline(nn.Module):
    """Two-centre edge and two-body on-site baselines (module docstring); all coefficients 0 until fitted.

    Buffers::

        edge_coef   # (S, S, n_edge_slots, K) | f_edge of kind pair (centre, neighbour) per slot (grouped order)
        node_coef   # (S, S, n_node_slots, K) | f_node of (centre kind, neighbour kind) per on-site slot
        node_const  # (S, n_node_L0)          | constant per centre kind and L = 0 slot (grouped order: first)

    ``forward(species, edge_index, wigner, radial (E, K)) -> (node (N, Dn), edge (E, De))`` in the
    Irreps-string column layouts; ``radial`` is ``g_k(d) u(d)``.
    """

    def __init__(self, n_species: int, node_terms, edge_terms, n_radial: int):
        super().__init__()
        self.n_species, self.n_radial = n_species, n_radial
        self.edge_layout, self.node_layout = IrrepsLayout(edge_terms), IrrepsLayout(node_terms)
        s, ne, nn_ = n_species, self.edge_layout.n_slots, self.node_layout.n_slots
        self.register_buffer("edge_coef", torch.zeros(s, s, ne, n_radial))
        self.register_buffer("node_coef", torch.zeros(s, s, nn_, n_radial))
        self.register_buffer("node_const", torch.zeros(s, self.node_layout.mul.get(0, 0)))
        self.register_buffer("_edge_perm", self.edge_layout.perm.clone(), persistent=False)
        self.register_buffer("_node_perm", self.node_layout.perm.clone(), persistent=False)

    @property
    def is_fitted(self) -> bool:
        return bool(self.edge_coef.any() or self.node_coef.any() or self.node_const.any())

    def edge_slot_values(self, species_i, species_j, radial, coef) -> torch.Tensor:
        """(E, n_slots) M = 0 values ``sum_k coef[kind_i, kind_j, slot, k] radial[e, k]``."""
        s, n_slots = self.n_species, coef.shape[2]
        per_pair = radial @ coef.reshape(s * s * n_slots, -1).T  # (E, S*S*n_slots): S is small
        ab = (species_i * s + species_j)[:, None, None].expand(-1, 1, n_slots)
        return torch.gather(per_pair.view(-1, s * s, n_slots), 1, ab)[:, 0]

    def forward(self, species, edge_index, wigner: EdgeWigner, radial):
        i, j = edge_index[0], edge_index[1]
        si, sj = species.index_select(0, i), species.index_select(0, j)
        edge = slot_rows(self.edge_layout, wigner, self.edge_slot_values(si, sj, radial, self.edge_coef))
        per_edge = slot_rows(self.node_layout, wigner, self.edge_slot_values(si, sj, radial, self.node_coef))
        node = per_edge.new_zeros((species.shape[0], per_edge.shape[1])).index_add_(0, i, per_edge)
        n0 = self.node_const.shape[1]  # grouped order: the L = 0 slots are the first columns, one each
        node = torch.cat([node[:, :n0] + self.node_const.index_select(0, species), node[:, n0:]], dim=1)
        return node.index_select(1, self._node_perm), edge.index_select(1, self._edge_perm)

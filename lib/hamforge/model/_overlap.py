"""Two-centre overlap head (SLEM-style): S depends only on the geometry of the pair and the basis.

Edge (i <- j): the overlap block of two atoms is symmetric under rotations about the bond axis, so in
the edge frame every coupled L component is non-zero only at M = 0. Per output slot (one copy of one L)
a small MLP of (Gaussian distance features, species of i, species of j) gives that M = 0 value ``f``,
times the cutoff envelope; rotating back with ``D^L(R_e)^T`` puts ``f * D^L(R_e)[M=0, :]`` (proportional to
``Y_L(v_hat)``) into the slot. Exactly equivariant, independent of every other part of the network.

Node: the on-site overlap of an atom's own orbitals is a constant of its species; for shells l1, l2 it
is diagonal in m (zero unless l1 = l2), so only coupled L = 0 is non-zero: a learned per-species vector
on the L = 0 slots of node_irreps, zero elsewhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hamforge.model._config import ModelConfig
from hamforge.model._heads import IrrepsLayout
from hamforge.model._nn import Linear
from hamforge.model._so2 import EdgeWigner

_SPECIES_DIM = 8


class OverlapHead(nn.Module):
    """forward(species (N,), edge_index (2, E), wigner, rbf (E, n_radial), env (E,)) ->
    (node_overlap (N, Dn), edge_overlap (E, De)) in the Irreps-string layouts of the config."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n_species = len(cfg.species)
        self.edge_layout = IrrepsLayout(cfg.edge_terms)
        self.node_layout = IrrepsLayout(cfg.node_terms)
        self.species_centre = nn.Parameter(torch.zeros(n_species, _SPECIES_DIM, dtype=torch.float32))
        self.species_neighbour = nn.Parameter(torch.zeros(n_species, _SPECIES_DIM, dtype=torch.float32))
        self.lin1 = Linear(cfg.n_radial + 2 * _SPECIES_DIM, cfg.overlap_hidden)
        self.lin2 = Linear(cfg.overlap_hidden, self.edge_layout.n_slots)
        self.n_node_s = self.node_layout.mul.get(0, 0)
        self.node_s = (
            nn.Parameter(torch.zeros(n_species, self.n_node_s, dtype=torch.float32)) if self.n_node_s else None
        )
        self.register_buffer("_edge_perm", self.edge_layout.perm.clone(), persistent=False)
        self.register_buffer("_node_perm", self.node_layout.perm.clone(), persistent=False)

    def _reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            for p in (self.species_centre, self.species_neighbour):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32))
            if self.node_s is not None:
                self.node_s.copy_(
                    torch.randn(self.node_s.shape, generator=gen, dtype=torch.float32) / math.sqrt(self.n_node_s)
                )

    def forward(self, species, edge_index, wigner: EdgeWigner, rbf, env):
        i, j = edge_index[0], edge_index[1]
        feats = torch.cat(
            [
                rbf,
                self.species_centre.index_select(0, species.index_select(0, i)),
                self.species_neighbour.index_select(0, species.index_select(0, j)),
            ],
            dim=1,
        )
        f = self.lin2(nn.functional.silu(self.lin1(feats))) * env[:, None]  # (E, slots), M = 0 values
        e, parts, s = f.shape[0], [], 0
        for L in self.edge_layout.ls:
            mul = self.edge_layout.mul[L]
            row = wigner.wigner_row0(L)  # (E, 2L+1): row M = 0 of D^L(R_e) = column M = 0 of D^T
            parts.append((f[:, s : s + mul, None] * row[:, None, :]).reshape(e, mul * (2 * L + 1)))
            s += mul
        edge = torch.cat(parts, dim=1).index_select(1, self._edge_perm)

        n = species.shape[0]
        grouped = rbf.new_zeros(n, self.node_layout.dim)
        if self.node_s is not None:
            grouped = torch.cat([self.node_s.index_select(0, species), grouped[:, self.n_node_s :]], dim=1)
        return grouped.index_select(1, self._node_perm), edge

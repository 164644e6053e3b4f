"""``HaloModel``: a ``HamiltonianModel`` run on this rank's part of one graph, halo-exchanged every layer."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from hamforge.model import EDGE_INDEX, NODE_OUT, NODE_OVERLAP, NUMBERS, HamiltonianModel
from hamforge.parallel._exchange import HaloExchange
from hamforge.parallel._plan import HaloPlan
from hamforge.parallel._stats import HaloStats

__all__ = ["HaloModel"]


class HaloModel(nn.Module):
    """This rank's share of ``model(full graph)``: outputs of the owned atoms and owned edges.

    ``graph`` is the rank's local graph (:meth:`HaloPlan.local_graph`: owned + ghost atoms, owned edges).
    The layers of ``model`` are reused unchanged; before each layer :class:`HaloExchange` overwrites the
    ghost rows of the node embeddings with their owners' values (the embeddings, rbf, envelope and Wigner
    matrices of the owned edges are computed locally). Returns ``node_out (n_owned, Dn)`` (rows of
    ``plan.owned``), ``edge_out (E_r, De)`` (rows of ``plan.edges``) and the overlaps likewise.

    Strictly local models (``config.strictly_local``) never read a neighbour's node state: no exchange.
    ``stats`` (default: a new :class:`HaloStats`; False: none) records times and bytes; use
    :meth:`backward` for the timed backward pass. Collective: all ranks call forward (and backward) together.
    """

    def __init__(self, model: HamiltonianModel, plan: HaloPlan, group=None, stats: HaloStats | bool | None = None):
        super().__init__()
        if not isinstance(model, HamiltonianModel):
            raise ValueError(f"model must be a HamiltonianModel, got {type(model).__name__}")
        if not isinstance(plan, HaloPlan):
            raise ValueError(f"plan must be a HaloPlan, got {type(plan).__name__}")
        self.model, self.plan = model, plan
        if stats is None or stats is True:
            stats = HaloStats(plan.rank, len(plan.neighbours), model.node_scale.device)
        self.stats = stats or None
        self.exchange = None if model.config.strictly_local else HaloExchange(plan, group, self.stats)

    def forward(self, graph: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n_local = self.plan.n_owned + self.plan.n_ghost
        n_atoms, n_edges = graph[NUMBERS].shape[0], graph[EDGE_INDEX].shape[1]
        if n_atoms != n_local or n_edges != self.plan.edges.shape[0]:
            raise ValueError(
                f"graph of rank {self.plan.rank} must have {n_local} atoms and {self.plan.edges.shape[0]} edges "
                f"(HaloPlan.local_graph), got {n_atoms} and {n_edges}"
            )
        if self.stats is not None:
            self.stats.device = self.model.node_scale.device  # synchronised before each clock read on a GPU
            self.stats.start("forward")
        out = self.model(graph, node_exchange=self.exchange)
        n = self.plan.n_owned
        out = {k: (v[:n] if k in (NODE_OUT, NODE_OVERLAP) else v) for k, v in out.items()}
        if self.stats is not None:
            self.stats.stop()
        return out

    def reset_stats(self) -> None:
        """Start new records (a new :class:`HaloStats`, e.g. for one training epoch); none without stats."""
        if self.stats is not None:
            self.stats = HaloStats(self.plan.rank, len(self.plan.neighbours), self.model.node_scale.device)
            if self.exchange is not None:
                self.exchange.stats = self.stats

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` (collective: the ghost-row gradients go back to their owners), timed."""
        if self.stats is not None:
            self.stats.start("backward")
        loss.backward()
        if self.stats is not None:
            self.stats.stop()

"""Message-passing layer: node block (SO(2) conv + gate + attention + aggregation), edge block, FFNs.

Reading order inside layer t (what makes a k-hop halo exact with k = n_layers, ``docs/model.md``):

    node block:  n_i^t  <- n_i^{t-1}, n_j^{t-1}, e_ji^{t-1}   for all incoming edges (i <- j)
    edge block:  e_ji^t <- n_i^t (updated centre), n_j^{t-1} (neighbour entering the layer), e_ji^{t-1}

strictly local (SLEM): the node block reads n_i^{t-1}, e_ji^{t-1}; the edge block n_i^t, e_ji^{t-1}: nothing
ever reads a neighbour's node features, so a 1-hop halo is exact at any depth.
"""

from __future__ import annotations

import torch
from torch import nn

from hamforge.model._config import ModelConfig
from hamforge.model._nn import (
    EquivariantLayerNorm,
    Gate,
    GatedFeedForward,
    Linear,
    PerLLinear,
    scatter_softmax_weighted,
)
from hamforge.model._radial import RadialMLP
from hamforge.model._so2 import EdgeWigner, SO2Convolution


class _MessageConv(nn.Module):
    """Shared message path: concat inputs (E, K, n_in C) -> radial-weighted SO(2) conv -> gate (E, K, C)."""

    def __init__(self, cfg: ModelConfig, n_inputs: int, scalar_input: bool = False):
        super().__init__()
        c = cfg.embed_dim
        self.gate = Gate(cfg.l_max, c)
        self.conv = SO2Convolution(
            cfg.l_max, cfg.m_max, n_inputs * c, c, n_extra=self.gate.n_gates, scalar_input=scalar_input
        )
        self.radial = RadialMLP(cfg.n_radial, cfg.radial_hidden, self.conv.radial_size)

    def forward(self, msg, wigner: EdgeWigner, rbf, env):
        y, extra = self.conv(msg, wigner, self.radial(rbf))
        # The envelope multiplies the radial weights; the convolution is linear without bias, so that is
        # applied to its (smaller) outputs: messages vanish smoothly at r_cut (the gate keeps 0 at 0).
        return self.gate(y * env[:, None, None], extra * env[:, None])


class NodeBlock(nn.Module):
    """Attention-weighted aggregation of SO(2) messages onto the centre node: returns dn (N, K, C).

    message(i <- j) = gate(SO2(concat(n_i, n_j, e_ji)))  [strictly local: concat(n_i, e_ji)]
    logits (E, H) = l = 0 part of the message @ W_a; alpha = envelope-weighted softmax over the incoming
    edges of each node (an edge at r_cut has weight 0, so edges crossing the cutoff change nothing
    abruptly); value = the whole message split into H heads of C/H channels; sum onto i; per-l linear.
    """

    def __init__(self, cfg: ModelConfig, scalar_input: bool = False):
        super().__init__()
        self.strict, self.n_heads, self.c = cfg.strictly_local, cfg.n_heads, cfg.embed_dim
        self.scalar_input = scalar_input  # first layer: embeddings are l = 0 only, so are the messages
        self.message = _MessageConv(cfg, 2 if cfg.strictly_local else 3, scalar_input)
        self.logits = Linear(cfg.embed_dim, cfg.n_heads, bias=False)
        self.proj = PerLLinear(cfg.l_max, cfg.embed_dim, cfg.embed_dim, bias=True)

    def forward(self, hn, he, edge_index, wigner, rbf, env):
        i, j = edge_index[0], edge_index[1]
        sn, se = (hn[:, :1], he[:, :1]) if self.scalar_input else (hn, he)
        parts = [sn.index_select(0, i)] + ([] if self.strict else [sn.index_select(0, j)]) + [se]
        v = self.message(torch.cat(parts, dim=-1), wigner, rbf, env)  # (E, K, C)
        alpha = scatter_softmax_weighted(self.logits(v[:, 0]), env, i, hn.shape[0])  # (E, H)
        e, k = v.shape[0], v.shape[1]
        v = (v.view(e, k, self.n_heads, self.c // self.n_heads) * alpha[:, None, :, None]).view(e, k, self.c)
        agg = v.new_zeros((hn.shape[0], k, self.c)).index_add_(0, i, v)
        return self.proj(agg)


class EdgeBlock(nn.Module):
    """Edge update de_ji (E, K, C) = per-l linear(gate(SO2(concat(n_i^t, n_j^{t-1}, e_ji))));
    strictly local: concat(n_i^t, e_ji). No attention, no aggregation."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.strict = cfg.strictly_local
        self.message = _MessageConv(cfg, 2 if cfg.strictly_local else 3)
        self.proj = PerLLinear(cfg.l_max, cfg.embed_dim, cfg.embed_dim, bias=True)

    def forward(self, hn_new, hn_old, he, edge_index, wigner, rbf, env):
        i, j = edge_index[0], edge_index[1]
        parts = [hn_new.index_select(0, i)] + ([] if self.strict else [hn_old.index_select(0, j)]) + [he]
        return self.proj(self.message(torch.cat(parts, dim=-1), wigner, rbf, env))


class InteractionLayer(nn.Module):
    """One layer, pre-norm residual blocks::

    n' = n + NodeBlock(LN(n), LN(e));            n^t = n' + FFN(LN(n'))
    e' = e + EdgeBlock(LN(n^t)_i, LN(n)_j, LN(e)); e^t = e' + FFN(LN(e'))   (FFN if cfg.edge_ffn)

    ``edge_reads_updated``: the edge block reads ``LN(n^t)_j`` instead of ``LN(n)_j`` (one more halo hop).
    """

    def __init__(self, cfg: ModelConfig, first: bool = False):
        super().__init__()
        l, c, eps, mode = cfg.l_max, cfg.embed_dim, cfg.ln_eps, cfg.layer_norm
        self.strict, self.reads_updated = cfg.strictly_local, cfg.edge_reads_updated
        self.ln_node_msg = EquivariantLayerNorm(l, c, eps, mode)
        self.ln_edge_msg = EquivariantLayerNorm(l, c, eps, mode)
        self.node_block = NodeBlock(cfg, scalar_input=first)  # layer 1 reads l = 0 embeddings only
        self.ln_node_ffn = EquivariantLayerNorm(l, c, eps, mode)
        self.node_ffn = GatedFeedForward(l, c, cfg.ffn_dim, cfg.ffn_invariants)
        self.ln_edge_nodes = EquivariantLayerNorm(l, c, eps, mode)
        self.edge_block = EdgeBlock(cfg)
        if cfg.edge_ffn:
            self.ln_edge_ffn = EquivariantLayerNorm(l, c, eps, mode)
            self.edge_ffn = GatedFeedForward(l, c, cfg.ffn_dim, cfg.ffn_invariants)
        else:
            self.ln_edge_ffn = self.edge_ffn = None

    def forward(self, n, e, edge_index, wigner: EdgeWigner, rbf, env, exchange=None):
        """``exchange(h) -> h`` (only with ``edge_reads_updated``): the halo exchange of the updated node
        embeddings before the edge block reads them (``hamforge.parallel``)."""
        he = self.ln_edge_msg(e)
        n_new = n + self.node_block(self.ln_node_msg(n), he, edge_index, wigner, rbf, env)
        n_new = n_new + self.node_ffn(self.ln_node_ffn(n_new))
        if self.reads_updated:  # both atoms' updated environments (the ICML code's edge update)
            n_new = exchange(n_new) if exchange is not None else n_new
            hn_new = hn_old = self.ln_edge_nodes(n_new)
        else:
            hn_new = self.ln_edge_nodes(n_new)
            hn_old = hn_new if self.strict else self.ln_edge_nodes(n)  # strictly local never reads n_j
        e_new = e + self.edge_block(hn_new, hn_old, he, edge_index, wigner, rbf, env)
        if self.edge_ffn is not None:
            e_new = e_new + self.edge_ffn(self.ln_edge_ffn(e_new))
        return n_new, e_new

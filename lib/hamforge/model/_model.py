"""``HamiltonianModel``: SO(2)-equivariant message passing from a graph dict to coupled-basis blocks."""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from hamforge.model._baseline import PhysicsBaseline
from hamforge.model._config import ModelConfig
from hamforge.model._heads import IrrepsHead
from hamforge.model._keys import EDGE_INDEX, EDGE_OUT, EDGE_OVERLAP, EDGE_VEC, NODE_OUT, NODE_OVERLAP, NUMBERS
from hamforge.model._layers import InteractionLayer
from hamforge.model._nn import EquivariantLayerNorm, Linear
from hamforge.model._overlap import OverlapHead
from hamforge.model._radial import Envelope, GaussianBasis
from hamforge.model._so2 import EdgeWigner

NodeExchange = Callable[[int, torch.Tensor], torch.Tensor]


class SpeciesEmbedding(nn.Module):
    """Learned vector per species index: (N,) int64 -> (N, dim); entries ~ N(0, 1)."""

    def __init__(self, n_species: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_species, dim, dtype=torch.float32))

    def _reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=gen, dtype=torch.float32))

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.weight.index_select(0, index)


class HamiltonianModel(nn.Module):
    """SO(2)-equivariant graph network predicting padded coupled-basis node and edge blocks.

    ``model(graph)`` with a plain dict of tensors (keys in ``hamforge.model``)::

        numbers     # (N,) int64     | atomic numbers, all in config.species (0 = ghost atom)
        edge_index  # (2, E) int64   | [centre i (receiver, block row); neighbour j (source, column)]
        edge_vec    # (E, 3) float   | x_j + R @ cell - x_i, Angstrom, nonzero; cast to the model dtype

    returns a dict::

        node_out      # (N, Dn) | columns = config.node_irreps (e3nn layout), L block transforms with D^L
        edge_out      # (E, De) | columns = config.edge_irreps; times the cutoff envelope (0 at r_cut)
        node_overlap  # (N, Dn) | only with config.predict_overlap
        edge_overlap  # (E, De) | only with config.predict_overlap

    Embeddings ``(N | E, (l_max+1)^2, embed_dim)``: node l = 0 from the species, edge l = 0 from the
    Gaussian distance expansion plus the species of both ends, everything else 0 at the start.
    Deterministic: parameters are drawn from ``torch.Generator().manual_seed(seed)``. Equivariant in
    float32 and float64 (``model.to(torch.float64)``). Plain ``nn.Module`` (no TorchScript).
    """

    def __init__(self, config: ModelConfig, seed: int = 0):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = cfg = config
        c, k = cfg.embed_dim, (cfg.l_max + 1) ** 2
        self._k = k
        lookup = torch.full((max(cfg.species) + 1,), -1, dtype=torch.int64)
        lookup[torch.tensor(cfg.species)] = torch.arange(len(cfg.species))
        self.register_buffer("_species_lookup", lookup, persistent=False)

        self.rbf = GaussianBasis(cfg.r_cut, cfg.n_radial)
        self.envelope = Envelope(cfg.r_cut, cfg.envelope, cfg.envelope_p)
        net_cut = cfg.r_cut if cfg.net_r_cut is None else cfg.net_r_cut  # the network's own distance features
        self.net_rbf = GaussianBasis(net_cut, cfg.n_radial)
        self.net_envelope = Envelope(net_cut, cfg.envelope, cfg.envelope_p)
        self.node_species = SpeciesEmbedding(len(cfg.species), c)
        self.edge_radial = Linear(cfg.n_radial, c, bias=True)
        self.edge_species_centre = SpeciesEmbedding(len(cfg.species), c)
        self.edge_species_neighbour = SpeciesEmbedding(len(cfg.species), c)
        self.layers = nn.ModuleList([InteractionLayer(cfg, first=t == 0) for t in range(cfg.n_layers)])
        self.ln_node_out = EquivariantLayerNorm(cfg.l_max, c, cfg.ln_eps, cfg.layer_norm)
        self.ln_edge_out = (
            EquivariantLayerNorm(cfg.l_max, c, cfg.ln_eps, cfg.layer_norm) if cfg.edge_out_norm else nn.Identity()
        )
        self.node_head = IrrepsHead(cfg.l_max, c, cfg.node_terms)
        self.edge_head = IrrepsHead(cfg.l_max, c, cfg.edge_terms)
        self.overlap = OverlapHead(cfg) if cfg.predict_overlap else None
        # Physics baselines (buffers fitted by hamforge.train.fit_baseline; 0 until then) and the scaling of what
        # the network adds: per (kind, column) on-site and per (kind pair, column) edge scales, set from the
        # residual's statistics (set_output_scaling), and a per-kind shift on the L = 0 node columns only.
        self.baseline = PhysicsBaseline(len(cfg.species), cfg.node_terms, cfg.edge_terms, cfg.n_radial)
        s = len(cfg.species)
        self.register_buffer("node_scale", torch.ones(s, cfg.node_dim))
        self.register_buffer("edge_scale", torch.ones(s, s, cfg.edge_dim))
        self.register_buffer("node_shift", torch.zeros(s, cfg.node_dim))
        self.reset_parameters(seed)

    def set_output_scaling(self, node_scale, edge_scale, node_shift=None) -> None:
        """Set the scaling of the network's part: ``node_out = baseline + head * node_scale[kind] +
        node_shift[kind]``, ``edge_out = baseline + head * edge_scale[kind_i, kind_j] * envelope``. Scales are
        numbers or tables of shape ``(n_species, Dn)`` / ``(n_species, n_species, De)`` (finite, > 0) that must
        be constant over the 2L+1 columns of each output copy; ``node_shift`` (n_species, Dn) may be non-zero
        on L = 0 columns only (a shift or a scale varying over M would break equivariance)."""
        for name, v in (("node_scale", node_scale), ("edge_scale", edge_scale)):
            buf = getattr(self, name)
            t = torch.as_tensor(v, dtype=torch.float64)
            if t.ndim and t.shape != buf.shape:
                raise ValueError(f"{name} must be a number or have shape {tuple(buf.shape)}, got {tuple(t.shape)}")
            if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
            terms = self.config.node_terms if name == "node_scale" else self.config.edge_terms
            if t.ndim and not _constant_per_copy(t, terms):
                raise ValueError(f"{name} must be the same for the 2L+1 columns of each output copy")
            buf.copy_(t.expand(buf.shape).to(buf.dtype))
        if node_shift is not None:
            shift = torch.as_tensor(node_shift, dtype=self.node_shift.dtype)
            if shift.shape != self.node_shift.shape:
                raise ValueError(f"node_shift must have shape {tuple(self.node_shift.shape)}, got {tuple(shift.shape)}")
            l0 = torch.cat([torch.full((mul * (2 * l + 1),), l == 0) for mul, l in self.config.node_terms])
            if bool((shift[:, ~l0] != 0).any()):
                raise ValueError("node_shift must be zero on L > 0 columns (a shift there breaks equivariance)")
            self.node_shift.copy_(shift)

    def reset_parameters(self, seed: int = 0) -> None:
        """(Re)draw every parameter from ``torch.Generator().manual_seed(seed)`` in module order."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        gen = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if hasattr(module, "_reset"):
                module._reset(gen)

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters (inputs are cast to it)."""
        return self.node_species.weight.dtype

    def species_index(self, numbers: torch.Tensor) -> torch.Tensor:
        """(N,) atomic numbers -> (N,) positions in config.species; ValueError for unknown numbers."""
        lookup = self._species_lookup
        bad = (numbers < 0) | (numbers >= lookup.numel())
        idx = lookup.index_select(0, numbers.clamp(0, lookup.numel() - 1))
        bad = bad | (idx < 0)
        if bool(bad.any()):
            unknown = sorted({int(z) for z in numbers[bad].tolist()})
            raise ValueError(
                f"graph['{NUMBERS}'] has atomic numbers {unknown} not in config.species {list(self.config.species)}"
            )
        return idx

    def forward(self, graph: Mapping[str, torch.Tensor], node_exchange: NodeExchange | None = None) -> dict:
        """Outputs of ``graph`` (class docstring). ``node_exchange(t, h_n) -> h_n`` is called before layer
        ``t`` with the node embeddings ``(N, K, C)`` entering it and returns the tensor the layer reads: the
        halo exchange of ``hamforge.parallel`` replaces the rows of remote (ghost) source atoms there by
        their owners' current values. Without it the model is the plain single-graph network."""
        numbers, edge_index, vec = _check_graph(graph, self.dtype, self._species_lookup.device)
        cfg = self.config
        n, c, s = numbers.shape[0], cfg.embed_dim, len(cfg.species)
        species = self.species_index(numbers)
        dist = torch.linalg.vector_norm(vec, dim=1)
        if bool((dist == 0).any()):
            raise ValueError(f"graph['{EDGE_VEC}'] contains zero-length edge vectors")
        wigner_all = EdgeWigner.from_vectors(vec, cfg.l_max, cfg.m_max)
        rbf_all, env_all = self.rbf(dist), self.envelope(dist)  # (E, n_radial), (E,)
        i, j = edge_index[0], edge_index[1]
        base_node, base_edge = self.baseline(species, edge_index, wigner_all, rbf_all * env_all[:, None])
        edge_scale = self.edge_scale.view(s * s, -1).index_select(
            0, species.index_select(0, i) * s + species.index_select(0, j)
        )
        # the network: on every edge, or (net_r_cut) on the edges shorter than it, with its own distance features
        short = None
        if cfg.net_r_cut is not None and cfg.net_r_cut < cfg.r_cut:
            short = torch.nonzero(dist < cfg.net_r_cut).squeeze(1)
            edges, wigner, d = edge_index.index_select(1, short), wigner_all.select(short), dist.index_select(0, short)
            rbf, env, edge_scale = self.net_rbf(d), self.net_envelope(d), edge_scale.index_select(0, short)
        else:
            edges, wigner, rbf, env = edge_index, wigner_all, rbf_all, env_all
        e = edges.shape[1]

        node0 = self.node_species(species)  # (N, C)
        edge0 = (
            self.edge_radial(rbf)
            + self.edge_species_centre(species.index_select(0, edges[0]))
            + self.edge_species_neighbour(species.index_select(0, edges[1]))
        )  # (E, C)
        h_n = torch.cat([node0[:, None], node0.new_zeros(n, self._k - 1, c)], dim=1)
        h_e = torch.cat([edge0[:, None], edge0.new_zeros(e, self._k - 1, c)], dim=1)
        for t, layer in enumerate(self.layers):
            if node_exchange is not None:
                h_n = node_exchange(t, h_n)
            mid = None
            if node_exchange is not None and cfg.edge_reads_updated:
                mid = lambda h, t=t: node_exchange(t, h)  # noqa: E731 (the updated nodes the edge block reads)
            h_n, h_e = layer(h_n, h_e, edges, wigner, rbf, env, mid)

        net_edge = self.edge_head(self.ln_edge_out(h_e)) * edge_scale * env[:, None]
        out = {
            NODE_OUT: base_node
            + self.node_head(self.ln_node_out(h_n)) * self.node_scale.index_select(0, species)
            + self.node_shift.index_select(0, species),
            EDGE_OUT: base_edge + net_edge if short is None else base_edge.index_add(0, short, net_edge),
        }
        if self.overlap is not None:
            out[NODE_OVERLAP], out[EDGE_OVERLAP] = self.overlap(species, edge_index, wigner_all, rbf_all, env_all)
        return out


def _check_graph(graph, dtype, device):
    if not isinstance(graph, Mapping):
        raise ValueError(f"graph must be a mapping of tensors, got {type(graph).__name__}")
    for key in (NUMBERS, EDGE_INDEX, EDGE_VEC):
        if key not in graph:
            raise ValueError(f"graph is missing '{key}'")
        if not isinstance(graph[key], torch.Tensor):
            raise ValueError(f"graph['{key}'] must be a torch.Tensor, got {type(graph[key]).__name__}")
    numbers, edge_index, vec = graph[NUMBERS], graph[EDGE_INDEX], graph[EDGE_VEC]
    if numbers.ndim != 1 or numbers.is_floating_point() or numbers.is_complex():
        raise ValueError(
            f"graph['{NUMBERS}'] must be an integer (N,) tensor, got {tuple(numbers.shape)} {numbers.dtype}"
        )
    if edge_index.ndim != 2 or edge_index.shape[0] != 2 or edge_index.is_floating_point():
        raise ValueError(
            f"graph['{EDGE_INDEX}'] must be an integer (2, E) tensor, got {tuple(edge_index.shape)} {edge_index.dtype}"
        )
    e = edge_index.shape[1]
    if vec.shape != (e, 3) or not vec.is_floating_point():
        raise ValueError(
            f"graph['{EDGE_VEC}'] must be a floating (E, 3) = ({e}, 3) tensor, got {tuple(vec.shape)} {vec.dtype}"
        )
    n = numbers.shape[0]
    if e and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(f"graph['{EDGE_INDEX}'] has node indices outside 0..{n - 1}")
    numbers, edge_index = numbers.to(device=device, dtype=torch.int64), edge_index.to(device, torch.int64)
    return numbers, edge_index, vec.to(device=device, dtype=dtype)


def _constant_per_copy(t: torch.Tensor, terms) -> bool:
    """Whether ``t`` (..., D) is constant over the 2L+1 columns of each copy of ``terms`` (Irreps-string order)."""
    col = 0
    for mul, L in terms:
        for _ in range(mul):
            block = t[..., col : col + 2 * L + 1]
            if bool((block != block[..., :1]).any()):
                return False
            col += 2 * L + 1
    return True

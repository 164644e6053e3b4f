"""Partition exactness of hamforge.model: outputs of labelled nodes and of the edges into them, computed on
an augmented partition with a halo of ``config.halo`` hops, equal the full-graph outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hamforge.graph import neighbor_list
from hamforge.model import EDGE_INDEX, EDGE_OUT, EDGE_VEC, NODE_OUT, NUMBERS, HamiltonianModel, ModelConfig
from hamforge.partition import augment, partition_atoms

R_CUT = 3.0
# float64; the partition sums the same terms, possibly in another order (attention denominators,
# aggregation): rounding differences ~1e-15 relative, far below this
EXACT = 1e-10


def _config(**kw) -> ModelConfig:
    base = dict(
        species=(0, 8, 72),
        node_irreps="2x0e+1x1o+1x2e",
        edge_irreps="2x0e+1x1o+1x2e+1x3o",
        r_cut=R_CUT,
        l_max=3,
        embed_dim=8,
        ffn_dim=16,
        radial_hidden=16,
        n_radial=12,
    )
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope="module")
def structure():
    """90 atoms in an elongated periodic cell (5.5 x 6 x 36 Angstrom): a sparse graph, several parts."""
    rng = np.random.default_rng(42)
    cell = np.diag([5.5, 6.0, 36.0])
    pos = rng.uniform(size=(90, 3)) @ cell
    numbers = rng.choice([0, 8, 72], size=90)
    nl = neighbor_list(pos, cell, True, R_CUT)
    return pos, numbers, nl


def _graph(numbers, edge_index, vec) -> dict:
    return {
        NUMBERS: torch.as_tensor(np.array(numbers), dtype=torch.int64),
        EDGE_INDEX: torch.as_tensor(np.array(edge_index), dtype=torch.int64),
        EDGE_VEC: torch.as_tensor(np.array(vec)),
    }


def _k_hop(edge_index: np.ndarray, n_atoms: int, labelled: np.ndarray, k: int):
    """Test-side halo extraction by BFS: nodes within k hops upstream (j -> i) of the labelled ones
    (labelled first), the edges into nodes at hop < k. Returns nodes, edges, local edge_index, hop."""
    hop = np.full(n_atoms, -1)
    hop[labelled] = 0
    frontier = labelled
    for h in range(1, k + 1):
        src = edge_index[1][np.isin(edge_index[0], frontier)]
        frontier = np.unique(src[hop[src] < 0])
        hop[frontier] = h
    nodes = np.concatenate([labelled, np.flatnonzero(hop > 0)])
    edges = np.flatnonzero((hop[edge_index[0]] >= 0) & (hop[edge_index[0]] < k))
    local = np.full(n_atoms, -1)
    local[nodes] = np.arange(len(nodes))
    return nodes, edges, local[edge_index[:, edges]], hop


def _compare(model, numbers, nl, full, nodes, n_labelled, edges, edge_index_local, edge_is_labelled):
    """Max abs differences (node, edge) between the part's labelled outputs and the full-graph ones."""
    assert (edge_index_local >= 0).all()
    out = model(_graph(numbers[nodes], edge_index_local, nl.vec[np.asarray(edges)]))
    lab = torch.as_tensor(np.array(nodes[:n_labelled]))
    edges, edge_is_labelled = torch.as_tensor(np.array(edges)), torch.as_tensor(np.array(edge_is_labelled))
    d_node = (out[NODE_OUT][:n_labelled] - full[NODE_OUT][lab]).abs().max().item()
    d_edge = (out[EDGE_OUT][edge_is_labelled] - full[EDGE_OUT][edges[edge_is_labelled]]).abs().max().item()
    return d_node, d_edge


@pytest.mark.parametrize(
    "n_layers, strict, halo, exact, reads",
    [
        (2, False, 2, True, False),  # halo = n_layers: exact
        (2, False, 1, False, False),  # one hop short: must differ (the test can fail)
        (3, True, 1, True, False),  # strictly local: one hop is exact at any depth
        (3, False, 3, True, False),
        (1, False, 2, True, True),  # the edge update reads the neighbour's updated node: n_layers + 1 hops
        (1, False, 1, False, True),
    ],
)
def test_own_k_hop_extraction(structure, n_layers, strict, halo, exact, reads):
    pos, numbers, nl = structure
    cfg = _config(n_layers=n_layers, strictly_local=strict, edge_reads_updated=reads)
    assert (cfg.halo == halo) == exact
    model = HamiltonianModel(cfg, seed=0).double()
    with torch.no_grad():
        full = model(_graph(numbers, nl.edge_index, nl.vec))
        parts = np.digitize(pos[:, 2], [12.0, 24.0])  # three slabs along z
        covered, worst = np.zeros(nl.n_edges, bool), 0.0
        for p in range(3):
            labelled = np.flatnonzero(parts == p)
            nodes, edges, eil, hop = _k_hop(nl.edge_index, nl.n_atoms, labelled, halo)
            assert len(nodes) < nl.n_atoms  # a genuine part, not the whole graph
            is_lab = hop[nl.edge_index[0, edges]] == 0
            covered[edges[is_lab]] = True
            worst = max(worst, *_compare(model, numbers, nl, full, nodes, len(labelled), edges, eil, is_lab))
    assert covered.all()  # every edge compared once
    if exact:
        assert worst < EXACT
    else:
        assert worst > 1e-6


@pytest.mark.parametrize("method", ["slices", "lownn", "metis"])
@pytest.mark.parametrize("n_layers, strict, extra", [(2, False, {}), (3, True, {}), (1, False, {"net_r_cut": 2.5})])
def test_partition_module_halo_is_exact(structure, method, n_layers, strict, extra):
    pos, numbers, nl = structure
    cfg = _config(n_layers=n_layers, strictly_local=strict, predict_overlap=True, **extra)
    model = HamiltonianModel(cfg, seed=1).double()
    assignment = partition_atoms(nl, pos, method, 4)
    with torch.no_grad():
        full = model(_graph(numbers, nl.edge_index, nl.vec))
        n_lab_edges = 0
        for p in range(4):
            part = augment(nl, assignment, p, cfg.halo)
            d_node, d_edge = _compare(
                model,
                numbers,
                nl,
                full,
                part.nodes,
                part.n_labelled,
                part.edges,
                part.edge_index_local,
                part.edge_is_labelled,
            )
            assert d_node < EXACT and d_edge < EXACT, (p, d_node, d_edge)
            n_lab_edges += part.n_labelled_edges
    assert n_lab_edges == nl.n_edges

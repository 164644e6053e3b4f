"""hamforge.partition: partitioners, k-hop augmented partitions, metrics, partition file, CLI.

The halo tests compare against a breadth-first search on the full graph (scipy.sparse.csgraph) and
against a small message-passing model run on the full graph and on every augmented part.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from _systems import TRICLINIC, system  # tests/_systems.py: shared random structures
from hamforge.cli import add_partition_parser
from hamforge.graph import load_structure_graph, neighbor_list
from hamforge.io import TargetsFileError, read_targets_file
from hamforge.partition import (
    METHODS,
    PARTITION_FORMAT,
    PartitionFileError,
    atom_adjacency,
    augment,
    augment_all,
    longest_axis,
    node_degree,
    partition_atoms,
    partition_lownn,
    partition_metis,
    partition_metrics,
    partition_slices,
    plot_partition,
    read_partitions,
    run_partition,
    write_partitions,
)
from hamforge.stages import write_partition_outputs


@pytest.fixture(scope="module")
def cubic():
    return system(300, np.eye(3) * 14.0, seed=1, r_cut=4.5)


def hop_distances(nl, labelled):
    """Hop distance of every atom to the labelled set along edges j -> i (test-side reference BFS)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path

    i, j = nl.edge_index
    # Path v -> ... -> labelled follows source -> centre; reversed: centre -> source from the labelled set.
    g = sp.csr_matrix((np.ones(i.size), (i, j)), shape=(nl.n_atoms, nl.n_atoms))
    d = shortest_path(g, directed=True, unweighted=True, indices=labelled)
    return np.atleast_2d(d).min(axis=0)


def check_partition_invariants(nl, assignment, parts, halo):
    n_parts = int(assignment.max()) + 1
    assert len(parts) == n_parts
    # Every atom labelled exactly once, every edge labelled exactly once (halo 0: the edges whose two
    # ends share a part; the others are dropped).
    lab = np.concatenate([p.labelled_nodes for p in parts])
    np.testing.assert_array_equal(np.sort(lab), np.arange(nl.n_atoms))
    lab_e = np.concatenate([p.edges[p.edge_is_labelled] for p in parts])
    i, j = nl.edge_index
    all_e = np.arange(nl.n_edges) if halo else np.flatnonzero(assignment[i] == assignment[j])
    np.testing.assert_array_equal(np.sort(lab_e), all_e)
    for p in parts:
        assert p.halo == halo
        np.testing.assert_array_equal(p.labelled_nodes, np.flatnonzero(assignment == p.part))
        assert np.all(np.diff(p.edges) > 0)  # each edge at most once, in nl order
        assert np.unique(p.nodes).size == p.n_nodes  # an atom reached through several images is one node
        # Local numbering reproduces the global edges.
        np.testing.assert_array_equal(p.nodes[p.edge_index_local], nl.edge_index[:, p.edges])
        # Virtual nodes ordered by (hop, id).
        v, vh = p.virtual_nodes, p.node_hop[p.n_labelled :]
        assert np.all((np.diff(vh) > 0) | ((np.diff(vh) == 0) & (np.diff(v) > 0)))
        assert np.all(p.node_hop[: p.n_labelled] == 0)
        np.testing.assert_array_equal(p.edge_is_labelled, p.node_hop[p.edge_index_local[0]] == 0)
        # Closure against a breadth-first search on the full graph.
        d = hop_distances(nl, p.labelled_nodes)
        expect_nodes = np.flatnonzero(d <= halo)
        np.testing.assert_array_equal(np.sort(p.nodes), expect_nodes)
        np.testing.assert_array_equal(p.node_hop, d[p.nodes].astype(np.int64))
        if halo == 0:
            expect_edges = np.flatnonzero((d[i] == 0) & (d[j] == 0))
        else:
            expect_edges = np.flatnonzero(d[i] < halo)
        np.testing.assert_array_equal(p.edges, expect_edges)


# ---------------------------------------------------------------------------------------------------
# Augmentation
@pytest.mark.parametrize("halo", [0, 1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_augmented_partitions_match_bfs(cubic, method, halo):
    x, nl = cubic
    a = partition_atoms(nl, x, method, 4)
    parts = augment_all(nl, a, halo)
    check_partition_invariants(nl, a, parts, halo)


def test_augment_single_part_equals_augment_all(cubic):
    x, nl = cubic
    a = partition_lownn(nl, x, 4)
    for p in augment_all(nl, a, 2):
        q = augment(nl, a, p.part, 2)
        for name in ("nodes", "node_hop", "edges", "edge_index_local", "edge_is_labelled"):
            np.testing.assert_array_equal(getattr(p, name), getattr(q, name))
        assert q.n_labelled == p.n_labelled


def test_periodic_images_and_self_images():
    # 3 A cubic cell, 2 atoms, r_cut 4.5: every pair couples through many images, and each atom to itself.
    x = np.array([[0.1, 0.2, 0.3], [1.6, 1.4, 1.5]])
    cell = np.eye(3) * 3.0
    nl = neighbor_list(x, cell, True, 4.5)
    i, j = nl.edge_index
    assert np.count_nonzero((i == 0) & (j == 0)) > 1 and np.count_nonzero((i == 0) & (j == 1)) > 1
    a = np.array([0, 1])
    for halo in (0, 1, 2):
        parts = augment_all(nl, a, halo)
        check_partition_invariants(nl, a, parts, halo)
    p0 = augment(nl, a, 0, 1)
    np.testing.assert_array_equal(p0.nodes, [0, 1])  # atom 1 is ONE virtual node whatever its images
    np.testing.assert_array_equal(p0.edges, np.flatnonzero(i == 0))  # all incoming edges, self-images too
    self_img = p0.edge_index_local[1] == 0
    assert np.all(np.any(nl.shift[p0.edges[self_img]] != 0, axis=1))
    assert np.unique(nl.shift[p0.edges[~self_img]], axis=0).shape[0] == np.count_nonzero(~self_img)
    p00 = augment(nl, a, 0, 0)  # halo 0: only labelled atoms and edges between them (self-images here)
    np.testing.assert_array_equal(p00.nodes, [0])
    np.testing.assert_array_equal(p00.edges, np.flatnonzero((i == 0) & (j == 0)))


def test_halo_of_an_edge_with_image_shift_between_labelled_atoms():
    # Two labelled atoms 0 and 1 joined only through the periodic boundary: an ordinary labelled edge.
    cell = np.diag([20.0, 20.0, 20.0])
    x = np.array([[0.5, 5.0, 5.0], [19.5, 5.0, 5.0], [10.0, 5.0, 5.0]])
    nl = neighbor_list(x, cell, True, 1.5)
    p = augment(nl, np.array([0, 0, 1]), 0, 1)
    assert p.n_virtual_nodes == 0 and p.n_edges == 2
    assert np.all(np.abs(nl.shift[p.edges]).sum(axis=1) == 1)


def _mp_model(n_layers, seed=3, width=4):
    """A small attention-style message-passing network (numpy), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    w = [
        dict(
            self=rng.normal(size=(width, width)),
            src=rng.normal(size=(width, width)),
            geo=rng.normal(size=(4, width)),
            att=rng.normal(size=(width,)),
        )
        for _ in range(n_layers)
    ]
    edge_w = rng.normal(size=(width, width))

    def run(h, centre, source, vec, dist, n_nodes):
        geo = np.concatenate([vec, dist[:, None]], axis=1)
        for lw in w:
            msg = np.tanh(h[source] @ lw["src"] + geo @ lw["geo"])
            score = (h[centre] * msg) @ lw["att"]  # softmax over the incoming edges of every centre
            smax = np.full(n_nodes, -np.inf)
            np.maximum.at(smax, centre, score)
            ex = np.exp(score - smax[centre])
            den = np.zeros(n_nodes)
            np.add.at(den, centre, ex)
            agg = np.zeros_like(h)
            np.add.at(agg, centre, (ex / den[centre])[:, None] * msg)
            h = np.tanh(h @ lw["self"] + agg)
        edge_out = np.einsum("ea,ab,eb->e", h[centre], edge_w, h[source]) * np.exp(-dist)
        return h, edge_out

    return run


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_halo_equal_to_layers_reproduces_full_graph(cubic, n_layers):
    x, nl = cubic
    a = partition_lownn(nl, x, 4)
    rng = np.random.default_rng(0)
    h0 = rng.normal(size=(nl.n_atoms, 4))
    model = _mp_model(n_layers)
    i, j = nl.edge_index
    h_full, e_full = model(h0, i, j, nl.vec, nl.dist, nl.n_atoms)

    def on_part(p):
        c, s = p.edge_index_local
        return model(h0[p.nodes], c, s, nl.vec[p.edges], nl.dist[p.edges], p.n_nodes)

    # The part sees the same incoming edges of every exact node in the same order, so sums agree to
    # rounding; 1e-12 is ~1e4 ulps of O(1) numbers.
    for p in augment_all(nl, a, n_layers):
        h, _ = on_part(p)
        np.testing.assert_allclose(h[: p.n_labelled], h_full[p.labelled_nodes], rtol=0, atol=1e-12)
    # Edge outputs read the last-layer states of both ends: exact with one more hop.
    for p in augment_all(nl, a, n_layers + 1):
        _, e = on_part(p)
        lab = p.edge_is_labelled
        np.testing.assert_allclose(e[lab], e_full[p.edges[lab]], rtol=0, atol=1e-12)
    # One hop less is not exact (the test can fail).
    worst = 0.0
    for p in augment_all(nl, a, n_layers - 1):
        h, _ = on_part(p)
        worst = max(worst, np.abs(h[: p.n_labelled] - h_full[p.labelled_nodes]).max())
    assert worst > 1e-6


# ---------------------------------------------------------------------------------------------------
# Low-NN
def _part_weights(nl, a):
    return np.bincount(a, weights=node_degree(nl))


def test_lownn_balances_degree_in_inhomogeneous_structure():
    rng = np.random.default_rng(5)
    f = rng.random((1200, 3))
    f[:900, 0] *= 0.35  # 3/4 of the atoms in 35% of the cell along x: dense and sparse regions
    x, nl = system(1200, np.diag([24.0, 16.0, 16.0]), frac=f, r_cut=4.0)
    deg = node_degree(nl)
    for n_parts in (8, 6):
        a = partition_lownn(nl, x, n_parts)
        assert np.all(np.bincount(a, minlength=n_parts) > 0)
        w = _part_weights(nl, a)
        # Each cut misses its weight target by at most half an atom's degree and halves the error of the
        # parent, so every part is within max(degree) of the mean (exact arithmetic on integer weights).
        assert np.abs(w - w.mean()).max() <= deg.max()
        counts = np.bincount(a)
        assert counts.max() / counts.min() > 1.2  # balanced by edges, not by atom count ...
        w1 = _part_weights(nl, partition_lownn(nl, x, n_parts, weights=np.ones(nl.n_atoms)))
        assert w1.max() / w1.mean() > 1.15  # ... which would leave the edges unbalanced here,
    ws = _part_weights(nl, partition_slices(nl, x, 8, axis=0))
    assert ws.max() / ws.mean() > 2.0  # ... and so would equal volumes


def test_lownn_triclinic_cuts_lattice_planes_and_largest_height():
    x, nl = system(600, TRICLINIC, seed=2, r_cut=4.0)
    frac = x @ np.linalg.inv(TRICLINIC)
    frac -= np.floor(frac)
    a = partition_lownn(nl, x, 2)
    # First cut: the uncut periodic axis with the largest perpendicular height (a3), along a lattice plane.
    assert frac[a == 0, 2].max() <= frac[a == 1, 2].min()
    a8 = partition_lownn(nl, x, 8)
    # 8 parts: every periodic axis is cut once (no part spans most of an axis), and the parts are boxes in
    # fractional coordinates: any two are separated by a lattice plane along some axis.
    lo = np.array([frac[a8 == p].min(axis=0) for p in range(8)])
    hi = np.array([frac[a8 == p].max(axis=0) for p in range(8)])
    assert np.all(hi - lo < 0.7)
    for p in range(8):
        for q in range(p + 1, 8):
            assert np.any((hi[p] <= lo[q]) | (hi[q] <= lo[p]))
    w = _part_weights(nl, a8)
    assert np.abs(w - w.mean()).max() <= node_degree(nl).max()  # bound as in the test above


def test_lownn_prefers_uncut_periodic_axes_then_fewest_new_neighbours():
    # Slab: periodic x (20 A) and y (15 A), open z spanning 40 A.
    rng = np.random.default_rng(4)
    n = 900
    x = rng.random((n, 3)) * [20.0, 15.0, 40.0]
    cell = np.diag([20.0, 15.0, 0.0])
    nl = neighbor_list(x, cell, [True, True, False], 4.0)
    span = lambda a, p, k: np.ptp(x[a == p, k])  # noqa: E731
    a2 = partition_lownn(nl, x, 2)
    assert x[a2 == 0, 0].max() <= x[a2 == 1, 0].min()  # periodic x (largest height) first, not open z
    a4 = partition_lownn(nl, x, 4)
    assert all(span(a4, p, 2) > 35.0 for p in range(4))  # x and y cut, z not
    a8 = partition_lownn(nl, x, 8)
    # Third level: ceil(2 r_cut / L) is 1 for z (L = 40) and x (~10) and 2 for y (~7.5): the tie goes to
    # the longer z. (Spans differ from 20 A and 10 A by the density fluctuations the cuts balance.)
    assert all(span(a8, p, 2) < 25.0 and span(a8, p, 0) < 12.5 for p in range(8))


def test_lownn_weights_option_and_zero_weights(cubic):
    x, nl = cubic
    a = partition_lownn(nl, x, 4, weights=np.ones(nl.n_atoms))
    counts = np.bincount(a)
    assert counts.max() - counts.min() <= 2  # equal weights: equal counts up to the one-atom rounding
    a0 = partition_lownn(nl, x, 4, weights=np.zeros(nl.n_atoms))  # all zero: split by count
    assert np.bincount(a0).min() >= 70
    with pytest.raises(ValueError, match="weights"):
        partition_lownn(nl, x, 4, weights=-np.ones(nl.n_atoms))


def test_lownn_without_edges_and_tiny_parts():
    x = np.array([[0.0, 0, 0], [5, 0, 0], [0, 5, 0], [5, 5, 0.0]])
    nl = neighbor_list(x, np.zeros((3, 3)), False, 1.0)
    assert nl.n_edges == 0
    a = partition_lownn(nl, x, 4)
    np.testing.assert_array_equal(np.sort(a), np.arange(4))  # one atom per part, none empty


# ---------------------------------------------------------------------------------------------------
# Slices
def test_slices_n_parts_along_axis(cubic):
    x, nl = cubic
    a = partition_slices(nl, x, 5, axis=1)
    f = (x @ np.linalg.inv(nl.cell))[:, 1] % 1.0
    np.testing.assert_array_equal(a, np.floor(f * 5).astype(int))


def test_slices_longest_axis_uses_perpendicular_height():
    x, nl = system(400, TRICLINIC, seed=3)
    assert longest_axis(nl, x) == 2
    a = partition_slices(nl, x, 2)
    f = (x @ np.linalg.inv(TRICLINIC)) % 1.0
    np.testing.assert_array_equal(a, (f[:, 2] >= 0.5).astype(int))


def test_slices_thickness():
    x, nl = system(500, np.diag([10.0, 10.0, 17.0]), seed=4)
    a = partition_slices(nl, x, axis=2, thickness=4.0)
    assert a.max() + 1 == 4  # floor(17 / 4) slices, each 4.25 A >= 4 A thick
    z = x[:, 2] % 17.0
    for p in range(4):
        assert z[a == p].min() >= p * 4.25 - 1e-9 and z[a == p].max() < (p + 1) * 4.25 + 1e-9
    assert partition_slices(nl, x, axis=2, thickness=100.0).max() == 0  # thicker than the cell: 1 slice
    a2 = partition_atoms(nl, x, "slices", None, axis=2, thickness=4.0)
    np.testing.assert_array_equal(a, a2)


def test_slices_non_periodic_axis_spans_the_atoms():
    rng = np.random.default_rng(0)
    x = rng.random((200, 3)) * [8.0, 8.0, 30.0] + [0, 0, 5.0]
    nl = neighbor_list(x, np.diag([8.0, 8.0, 0.0]), [True, True, False], 3.0)
    assert longest_axis(nl, x) == 2
    a = partition_slices(nl, x, 3)
    z0, z1 = x[:, 2].min(), x[:, 2].max()
    np.testing.assert_array_equal(a, np.minimum(np.floor((x[:, 2] - z0) / (z1 - z0) * 3), 2).astype(int))


def test_slices_empty_slice_is_an_error():
    x = np.array([[0.5, 1, 1], [1.0, 1, 1], [9.5, 1, 1]])
    nl = neighbor_list(x, np.eye(3) * 10.0, True, 2.0)
    with pytest.raises(ValueError, match="n_parts.*empty"):
        partition_slices(nl, x, 3, axis=0)
    with pytest.raises(ValueError, match="thickness.*empty"):
        partition_slices(nl, x, axis=0, thickness=3.0)


# ---------------------------------------------------------------------------------------------------
# METIS
def test_metis_partition_valid_and_deterministic(cubic):
    x, nl = cubic
    a = partition_metis(nl, 6, seed=1)
    assert a.shape == (nl.n_atoms,) and a.dtype == np.int64
    assert np.all(np.bincount(a, minlength=6) > 0) and a.max() == 5
    np.testing.assert_array_equal(a, partition_metis(nl, 6, seed=1))
    b = partition_metis(nl, 6, edge_weights=True, vertex_weights="none")
    assert np.all(np.bincount(b, minlength=6) > 0)
    assert np.all(partition_metis(nl, 1) == 0)
    with pytest.raises(ValueError, match="vertex_weights"):
        partition_metis(nl, 2, vertex_weights="mass")


def test_atom_adjacency_counts_images_and_drops_self_images():
    x = np.array([[0.1, 0.2, 0.3], [1.6, 1.4, 1.5]])
    nl = neighbor_list(x, np.eye(3) * 3.0, True, 4.5)
    adj = atom_adjacency(nl).toarray()
    i, j = nl.edge_index
    assert adj[0, 0] == 0 and adj[1, 1] == 0
    assert adj[0, 1] == adj[1, 0] == np.count_nonzero((i == 0) & (j == 1)) > 1


# ---------------------------------------------------------------------------------------------------
# Errors
@pytest.mark.parametrize("method", METHODS)
def test_bad_n_parts(cubic, method):
    x, nl = cubic
    with pytest.raises(ValueError, match="n_parts"):
        partition_atoms(nl, x, method, 0)
    with pytest.raises(ValueError, match="n_parts"):
        partition_atoms(nl, x, method, nl.n_atoms + 1)
    with pytest.raises(ValueError, match="n_parts"):
        partition_atoms(nl, x, method, 2.5)
    with pytest.raises(ValueError, match="n_parts"):
        partition_atoms(nl, x, method, None)


def test_bad_arguments(cubic):
    x, nl = cubic
    with pytest.raises(ValueError, match="method"):
        partition_atoms(nl, x, "kmeans", 2)
    with pytest.raises(ValueError, match="thickness: not an option"):
        partition_atoms(nl, x, "lownn", 2, thickness=3.0)
    for axis in (3, -1, 1.5, True):
        with pytest.raises(ValueError, match="axis"):
            partition_atoms(nl, x, "slices", 2, axis=axis)
    with pytest.raises(ValueError, match="thickness"):
        partition_slices(nl, x, 2, thickness=2.0)
    with pytest.raises(ValueError, match="thickness"):
        partition_slices(nl, x, thickness=-1.0)
    with pytest.raises(ValueError, match="positions"):
        partition_lownn(nl, x[:-1], 2)
    with pytest.raises(ValueError, match="nl"):
        partition_lownn(x, x, 2)
    a = partition_lownn(nl, x, 2)
    with pytest.raises(ValueError, match="halo"):
        augment_all(nl, a, -1)
    with pytest.raises(ValueError, match="halo"):
        augment(nl, a, 0, 1.0)
    with pytest.raises(ValueError, match="part"):
        augment(nl, a, 2, 1)
    with pytest.raises(ValueError, match="assignment"):
        augment_all(nl, a[:-1], 1)
    gap = np.where(a == 1, 2, a)
    with pytest.raises(ValueError, match="assignment.*no atom"):
        augment_all(nl, gap, 1)


# ---------------------------------------------------------------------------------------------------
# Metrics, file, CLI
def test_metrics_table_and_summary(cubic):
    x, nl = cubic
    a = partition_lownn(nl, x, 4)
    parts = augment_all(nl, a, 1)
    table, s = partition_metrics(nl, a, parts, elapsed_s=0.25)
    assert table["labelled_nodes"].sum() == nl.n_atoms and table["labelled_edges"].sum() == nl.n_edges
    assert np.all(table["virtual_edges"] == 0)  # halo 1: only edges into labelled atoms
    for p, row in zip(parts, table.itertuples()):
        owners = set(a[p.virtual_nodes].tolist())
        assert row.neighbours == len(owners) and p.part not in owners
        assert row.embeddings_received == p.n_virtual_nodes
        assert row.node_halo_ratio == pytest.approx(p.n_virtual_nodes / p.n_labelled)
    lab = table["labelled_edges"]
    assert s["edge_imbalance"] == pytest.approx(lab.max() / lab.mean())
    assert s["neighbours_max"] == table["neighbours"].max() and s["partition_time_s"] == 0.25
    assert s["embeddings_received_total"] == table["virtual_nodes"].sum()
    _, s0 = partition_metrics(nl, a, augment_all(nl, a, 0))
    assert s0["neighbours_max"] == 0 and s0["node_halo_ratio_mean"] == 0


def test_partition_file_round_trip(cubic, tmp_path):
    x, nl = cubic
    res = run_partition(nl, x, "metis", 3, 2, seed=0)
    out = tmp_path / "p.h5"
    write_partition_outputs(
        res, nl, x, out, plot=tmp_path / "p.png", metrics_csv=tmp_path / "p.csv", provenance={"structure": "cubic"}
    )
    pf = read_partitions(out, nl)
    assert (pf.method, pf.n_parts, pf.halo, pf.r_cut, pf.n_edges) == ("metis", 3, 2, nl.r_cut, nl.n_edges)
    np.testing.assert_array_equal(pf.assignment, res.assignment)
    for p, q in zip(res.parts, pf.parts):
        assert (p.part, p.halo, p.n_labelled) == (q.part, q.halo, q.n_labelled)
        for name in ("nodes", "node_hop", "edges", "edge_index_local", "edge_is_labelled"):
            np.testing.assert_array_equal(getattr(p, name), getattr(q, name))
    assert pf.summary["edge_imbalance"] == pytest.approx(res.summary["edge_imbalance"])
    assert pf.options == {"seed": 0} and pf.provenance["structure"] == "cubic"
    assert list(pf.table.columns) == list(res.table.columns)
    np.testing.assert_array_equal(pf.table.to_numpy(), res.table.to_numpy())
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "p.csv").read_text().splitlines()[0].startswith("part,labelled_nodes")
    # A different graph is refused.
    _, other = system(300, np.eye(3) * 14.0, seed=2, r_cut=4.5)
    with pytest.raises(PartitionFileError, match="graph_digest"):
        read_partitions(out, other)


def test_partition_file_errors_name_file_and_field(cubic, tmp_path):
    import h5py

    x, nl = cubic
    res = run_partition(nl, x, "lownn", 2, 1)
    out = tmp_path / "p.h5"
    write_partitions(out, nl, res.assignment, res.parts, res.summary, res.table, method="lownn")
    with h5py.File(out, "a") as f:
        del f["parts/1/edges"]
    with pytest.raises(PartitionFileError, match=r"p\.h5: /parts/1/edges: missing"):
        read_partitions(out)
    with h5py.File(out, "a") as f:
        f.attrs["format"] = "something"
    with pytest.raises(PartitionFileError, match="format"):
        read_partitions(out)
    with pytest.raises(PartitionFileError, match="no such"):
        read_partitions(tmp_path / "missing.h5")


def _write_targets(path, x, nl, numbers):
    """The part of a targets file that the graph-only reader needs (header, structure, graph)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"], f.attrs["version"], f.attrs["kinds"] = "hamforge.targets", 1, json.dumps(["Si"])
        s = f.create_group("structure")
        s["numbers"], s["positions"], s["cell"], s["pbc"] = numbers, x, nl.cell, nl.pbc
        s["kinds"] = np.array(["Si"] * len(numbers), dtype=object).astype(h5py.string_dtype())
        s["kind_id"] = np.zeros(len(numbers), np.int64)
        g = f.create_group("graph")
        g["edge_index"], g["shift"] = nl.edge_index, nl.shift
        g.attrs["r_cut"] = nl.r_cut


def test_read_targets_graph(tmp_path):
    x, nl = system(120, TRICLINIC, seed=7, r_cut=4.0)
    path = tmp_path / "t.h5"
    _write_targets(path, x, nl, np.full(120, 14))
    sg = read_targets_file(path, graph_only=True)
    np.testing.assert_array_equal(sg.nl.edge_index, nl.edge_index)
    np.testing.assert_array_equal(sg.nl.shift, nl.shift)
    # vec recomputed by hamforge.geometry.edge_vectors, the neighbour list's own formula and order: bit-identical.
    np.testing.assert_array_equal(sg.nl.vec, nl.vec)
    np.testing.assert_array_equal(sg.nl.dist, nl.dist)
    assert sg.nl.r_cut == nl.r_cut and sg.numbers.tolist() == [14] * 120
    res = run_partition(sg.nl, sg.positions, "lownn", 2, 1)
    out = tmp_path / "p.h5"
    write_partition_outputs(res, sg.nl, sg.positions, out)
    read_partitions(out, nl)  # same graph digest as the original neighbour list
    # Inconsistent files.
    _write_targets(path, x * 1.5, nl, np.full(120, 14))  # positions no longer fit the graph
    with pytest.raises(TargetsFileError, match="graph and structure do not match"):
        read_targets_file(path, graph_only=True)
    import h5py

    with h5py.File(path, "a") as f:
        del f["graph/shift"]
    with pytest.raises(TargetsFileError, match=r"t\.h5: /graph/shift: missing"):
        read_targets_file(path, graph_only=True)


def test_cli_on_extxyz(tmp_path):
    import ase.io
    from ase import Atoms

    x, nl = system(150, np.eye(3) * 12.0, seed=8)
    ase.io.write(tmp_path / "s.extxyz", Atoms("Si150", positions=x, cell=nl.cell, pbc=True))
    ap = argparse.ArgumentParser()
    add_partition_parser(ap.add_subparsers(dest="command"))

    def run(*argv):
        args = ap.parse_args(["partition", *map(str, argv)])
        return args.func(args)

    out = tmp_path / "out.h5"
    assert (
        run(
            tmp_path / "s.extxyz",
            "--rcut",
            4.0,
            "--method",
            "lownn",
            "--parts",
            4,
            "--halo",
            2,
            "-o",
            out,
            "--plot",
            tmp_path / "out.png",
        )
        == 0
    )
    pf = read_partitions(out, nl)
    assert pf.n_parts == 4 and pf.halo == 2 and json.loads(json.dumps(pf.summary))["n_atoms"] == 150
    assert (tmp_path / "out.png").stat().st_size > 1000
    assert (
        run(tmp_path / "s.extxyz", "--rcut", 4.0, "--method", "slices", "--axis", 1, "--thickness", 3.0, "-o", out) == 0
    )
    assert read_partitions(out).n_parts == 4
    with pytest.raises(ValueError, match="r_cut"):
        run(tmp_path / "s.extxyz", "--method", "lownn", "--parts", 2, "-o", out)
    with pytest.raises(ValueError, match="axis"):
        run(tmp_path / "s.extxyz", "--rcut", 4.0, "--method", "lownn", "--parts", 2, "--axis", 0, "-o", out)
    # Periodic without a cell.
    ase.io.write(tmp_path / "nocell.extxyz", Atoms("Si150", positions=x, pbc=[True, False, False]))
    with pytest.raises(ValueError, match="nocell.*cell"):
        run(tmp_path / "nocell.extxyz", "--rcut", 4.0, "--parts", 2, "-o", out)
    # A targets file is read with its own graph.
    _write_targets(tmp_path / "t.h5", x, nl, np.full(150, 14))
    assert run(tmp_path / "t.h5", "--method", "metis", "--parts", 3, "-o", out) == 0
    assert read_partitions(out, nl).method == "metis"
    with pytest.raises(ValueError, match="r_cut.*differs"):
        run(tmp_path / "t.h5", "--rcut", 5.0, "--parts", 3, "-o", out)


def test_plot_partition_writes_png(cubic, tmp_path):
    x, nl = cubic
    a = partition_slices(nl, x, 3, axis=2)
    plot_partition(tmp_path / "a.png", nl, x, a)  # projection only
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="projection"):
        plot_partition(tmp_path / "b.png", nl, x, a, projection=(1, 1))


def test_load_structure_graph_from_matrix_like_h5(tmp_path):
    import h5py

    x, nl = system(80, np.eye(3) * 10.0, seed=9)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        s = f.create_group("structure")
        s["numbers"], s["positions"], s["cell"], s["pbc"] = np.full(80, 14), x, nl.cell, nl.pbc
    sg = load_structure_graph(tmp_path / "m.h5", r_cut=4.0)
    np.testing.assert_array_equal(sg.nl.edge_index, nl.edge_index)
    assert PARTITION_FORMAT == "hamforge.partitions"

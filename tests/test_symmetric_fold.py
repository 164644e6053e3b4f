"""The symmetrized fold (train.symmetrize): training and evaluation on the blocks hamforge.predict delivers,
(H_ij + H_ji^T) / 2, through the coupled-space transpose of hamforge.graph.pair_transpose_map."""

import numpy as np
import pytest
import torch
from hamforge.graph import blocks_to_coupled, build_targets, pair_transpose_map
from hamforge.graph._blocks import ragged_blocks
from hamforge.io import read_partitions
from hamforge.partition import run_partition
from hamforge.stages import write_partition_outputs
from hamforge.train import TrainSettings, fold, make_samples, squared_error
from test_train import AB, synthetic


@pytest.mark.parametrize("block", ["pair", "node"])
def test_transpose_map_is_the_block_transpose(block):
    """A/B kinds with different shells on both sides: coupled(B^T) from coupled(B) equals the coupled vector of
    the transposed blocks, exactly (a signed permutation: float64 equality up to the coupling's rounding)."""
    from hamforge.basis import build_layout

    lay = build_layout(AB, ["A", "B"], block)
    cols, sign = pair_transpose_map(lay, AB)
    rng = np.random.default_rng(1)
    for a, b in np.asarray(lay.kind_pairs).tolist():
        na, nb = (AB[lay.kinds[x]].n_orbitals for x in (a, b))
        blk = rng.normal(size=(4, na, nb))
        c = blocks_to_coupled(ragged_blocks(blk.ravel(), np.full(4, na), np.full(4, nb)), [a] * 4, [b] * 4, lay, AB)
        ct = blocks_to_coupled(
            ragged_blocks(blk.transpose(0, 2, 1).ravel(), np.full(4, nb), np.full(4, na)), [b] * 4, [a] * 4, lay, AB
        )
        kt = int(lay.kind_pair_index(np.array([b]), np.array([a]))[0])
        np.testing.assert_allclose(sign[kt] * c[:, cols[kt]], ct, rtol=0, atol=1e-14)
    assert set(np.unique(sign)) <= {-1.0, 0.0, 1.0} and np.any(sign == -1.0)  # signs really occur


def _coupled_outputs(t, nl, edge_blocks, node_blocks):
    ec = blocks_to_coupled(
        edge_blocks, t.atom_kind[nl.edge_index[0]], t.atom_kind[nl.edge_index[1]], t.pair_layout, t.basis
    )
    nc = blocks_to_coupled(node_blocks, t.atom_kind, t.atom_kind, t.node_layout, t.basis)
    return torch.as_tensor(nc), torch.as_tensor(ec)


def test_symmetrized_fold_removes_antisymmetric_errors_and_keeps_exact_outputs():
    """Exact per-image outputs (symmetric H) fold to the targets with or without symmetrization; an error that is
    antisymmetric under (i, j, R) <-> (j, i, -R) vanishes from the symmetrized fold but not from the raw one."""
    data, nl, edge_blocks, node_blocks = synthetic()
    t = build_targets(data, 4.0)
    (raw,) = make_samples(t, "syn", dtype=torch.float64)
    (sym,) = make_samples(t, "syn", dtype=torch.float64, symmetrize=True)
    nodes_c, edges_c = _coupled_outputs(t, nl, edge_blocks, node_blocks)
    for s in (raw, sym):
        n, p = fold(nodes_c, edges_c, s)
        e = squared_error(n, p, s)
        assert float(e.node_sq) < 1e-24 and float(e.pair_sq) < 1e-24  # float64 sums of O(0.1) numbers
    # antisymmetric perturbation: +D on edge (i, j, R) and -D^T on its reverse (j, i, -R)
    i, j = nl.edge_index
    key = {(a, b, *s): k for k, (a, b, s) in enumerate(zip(i.tolist(), j.tolist(), nl.shift.tolist()))}
    rev = np.array(
        [key[(b, a, *(-np.asarray(s)).tolist())] for a, b, s in zip(i.tolist(), j.tolist(), nl.shift.tolist())]
    )
    rng = np.random.default_rng(3)
    pert = edge_blocks._replace(data=np.zeros_like(edge_blocks.data))
    for e in range(nl.n_edges):
        if e < rev[e]:
            na, nb = (int(x) for x in edge_blocks.shape[e])
            d = 0.01 * rng.normal(size=(na, nb))
            pert.data[edge_blocks.offsets[e] : edge_blocks.offsets[e] + na * nb] = d.ravel()
            pert.data[edge_blocks.offsets[rev[e]] : edge_blocks.offsets[rev[e]] + na * nb] = -d.T.ravel()
    moved = edge_blocks._replace(data=edge_blocks.data + pert.data)
    nodes_c, edges_c = _coupled_outputs(t, nl, moved, node_blocks)
    n, p = fold(nodes_c, edges_c, sym)
    np.testing.assert_allclose(p.numpy(), sym.pair_target.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(n.numpy(), sym.node_target.numpy(), rtol=0, atol=1e-13)  # self-images too
    n, p = fold(nodes_c, edges_c, raw)
    assert float(squared_error(n, p, raw).pair_sq) > 1e-6  # the raw fold sees the perturbation


def test_symmetrize_refused_where_reverse_pairs_are_elsewhere(tmp_path):
    data, *_ = synthetic(n=12, cell_len=6.0)
    t = build_targets(data, 4.0)
    res = run_partition(t.nl, data.positions, "slices", 2, 1)
    write_partition_outputs(res, t.nl, data.positions, tmp_path / "p.h5")
    with pytest.raises(ValueError, match=r"train\.symmetrize needs the reverse"):
        make_samples(t, "syn", read_partitions(tmp_path / "p.h5"), torch.float64, symmetrize=True)
    with pytest.raises(ValueError, match=r"train\.symmetrize"):
        TrainSettings(symmetrize=True, parallel="halo")

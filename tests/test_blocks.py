"""Atom blocks and Gamma-point folding (hamforge.graph._blocks).

The Hamiltonian used here is synthetic: every per-image block H_ij(R) is a smooth function of the edge
vector and the two species only, zero beyond r_cut, and obeys H_ji(-R) = H_ij(R)^T, so the same rule
gives the per-image blocks of a small cell and of any supercell tiled from it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.geometry import tile_positions
from hamforge.graph import (
    RaggedBlocks,
    _blocks,
    assemble_gamma,
    extract_blocks,
    extract_gamma_blocks,
    fold_blocks,
    fold_map,
    folding_is_identity,
    neighbor_list,
    ragged_blocks,
)

# Gamma blocks are sums of at most a few hundred O(1) terms: 1e-12 is far above float64 rounding.
TOL = 1e-12
N_ORB = np.array([2, 3])  # orbitals per species: mixed block shapes
R_CUT = 4.0
WAVES = np.array([[0.9, -0.4, 0.3], [-0.2, 0.7, 1.1]])  # fixed wave vectors of the synthetic rule


def _coefficients(seed=0):
    """Per species pair (a, b): A_ab = A_ba^T (even part) and C_ab = -C_ba^T (odd part), one per wave."""
    rng = np.random.default_rng(seed)
    A, C = {}, {}
    for a, b in itertools.combinations_with_replacement(range(2), 2):
        shape = (len(WAVES), N_ORB[a], N_ORB[b])
        A[a, b], C[a, b] = rng.normal(size=shape), rng.normal(size=shape)
        if a == b:
            A[a, b] = A[a, b] + A[a, b].transpose(0, 2, 1)
            C[a, b] = C[a, b] - C[a, b].transpose(0, 2, 1)
        A[b, a], C[b, a] = A[a, b].transpose(0, 2, 1), -C[a, b].transpose(0, 2, 1)
    return A, C


COEF = _coefficients()


def rule_block(vec, si, sj):
    """H_ij(R) for one edge with displacement ``vec`` between species ``si`` -> ``sj`` (test helper)."""
    d = np.linalg.norm(vec)
    if d > R_CUT:
        return np.zeros((N_ORB[si], N_ORB[sj]))
    f = (1.0 - (d / R_CUT) ** 2) ** 2
    phase = WAVES @ vec
    A, C = COEF[0][si, sj], COEF[1][si, sj]
    return f * (np.tensordot(np.cos(phase), A, 1) + np.tensordot(np.sin(phase), C, 1))


def rule_edge_blocks(nl, species):
    blocks = [rule_block(v, species[i], species[j]) for v, (i, j) in zip(nl.vec, nl.edge_index.T)]
    shapes = np.array([b.shape for b in blocks]).reshape(-1, 2)
    data = np.concatenate([b.ravel() for b in blocks]) if blocks else np.zeros(0)
    return ragged_blocks(data, shapes[:, 0], shapes[:, 1])


def node_blocks_for(species):
    """Deterministic symmetric on-site blocks depending on the atom index and species."""
    blocks = []
    for a, s in enumerate(species):
        m = np.cos(np.arange(N_ORB[s] ** 2).reshape(N_ORB[s], N_ORB[s]) + 0.37 * a + s)
        blocks.append(m + m.T)
    n = N_ORB[species]
    return ragged_blocks(np.concatenate([b.ravel() for b in blocks]), n, n)


def orbitals(species):
    n = N_ORB[species]
    return n, np.concatenate([[0], np.cumsum(n)])


def brute_force_gamma(x, cell, species, nodes):
    """H(Gamma) = sum_R H(R) by explicit loops over atoms and images (independent of neighbor_list)."""
    n, off = orbitals(species)
    H = np.zeros((off[-1], off[-1]))
    h = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    m = np.ceil(R_CUT / h).astype(int) + 1
    for i, j in itertools.product(range(len(x)), repeat=2):
        for R in itertools.product(*[range(-k, k + 1) for k in m]):
            vec = x[j] + np.array(R) @ cell - x[i]
            if i == j and not any(R):
                H[off[i] : off[i + 1], off[i] : off[i + 1]] += nodes.block(i)
            else:
                H[off[i] : off[i + 1], off[j] : off[j + 1]] += rule_block(vec, species[i], species[j])
    return H


def small_cell():
    """3 atoms of mixed species in a triclinic cell much thinner than 2 r_cut (heights ~3 Angstrom)."""
    cell = np.array([[3.3, 0.0, 0.0], [0.8, 3.1, 0.0], [-0.5, 0.6, 3.4]])
    x = np.array([[0.1, 0.2, 0.3], [1.7, 1.1, 0.9], [2.2, 2.9, 2.6]])
    return x, cell, np.array([0, 1, 1])


def tile(x, cell, species, reps):
    """Supercell: copy c = (c0, c1, c2) of atom a is atom ``flat(c) * N + a`` (copy-major order)."""
    xs, cs, copies = tile_positions(x, cell, reps)
    assert copies.tolist() == [list(c) for c in itertools.product(*[range(r) for r in reps])]
    return xs, cs, np.tile(species, len(copies)), copies


def test_extract_blocks_matches_dense_slicing():
    rng = np.random.default_rng(1)
    n_orb = rng.integers(1, 6, 9)
    off = np.concatenate([[0], np.cumsum(n_orb)])
    M = sp.random(off[-1], off[-1], density=0.3, random_state=2, format="csr")
    dense = M.toarray()
    pi = np.array([0, 3, 3, 8, 5, 2, 2, 7])
    pj = np.array([0, 1, 3, 8, 6, 2, 7, 2])
    blocks = extract_blocks(M, pi, pj, n_orb, off)
    assert isinstance(blocks, RaggedBlocks) and blocks.data.dtype == np.float64
    for p, (i, j) in enumerate(zip(pi, pj)):
        np.testing.assert_array_equal(blocks.block(p), dense[off[i] : off[i + 1], off[j] : off[j + 1]])
    # non-canonical input (duplicates, unsorted columns) and other formats give the same blocks
    coo = M.tocoo()
    dup = sp.csr_matrix(
        (
            np.concatenate([coo.data * 0.25, coo.data * 0.75]),
            (np.concatenate([coo.row, coo.row]), np.concatenate([coo.col, coo.col])),
        ),
        shape=M.shape,
    )
    dup.has_sorted_indices = False
    snapshot = dup.data.copy()
    for other in (dup, M.tocoo(), M.tocsc()):
        again = extract_blocks(other, pi, pj, n_orb, off)
        # duplicates are summed in a different order: rounding only (1e-15 relative)
        np.testing.assert_allclose(again.data, blocks.data, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(dup.data, snapshot)  # the caller's matrix is not modified


def test_extract_blocks_many_chunks(monkeypatch):
    rng = np.random.default_rng(3)
    n_orb = rng.integers(1, 5, 12)
    off = np.concatenate([[0], np.cumsum(n_orb)])
    M = sp.random(off[-1], off[-1], density=0.5, random_state=4, format="csr")
    pi, pj = rng.integers(0, 12, 40), rng.integers(0, 12, 40)
    ref = extract_blocks(M, pi, pj, n_orb, off)
    monkeypatch.setattr(_blocks, "_ELEMENTS_PER_CHUNK", 5)
    assert len(_blocks._chunks(n_orb[pi] * n_orb[pj])) > 10
    np.testing.assert_array_equal(extract_blocks(M, pi, pj, n_orb, off).data, ref.data)
    # a block-dense matrix takes the one-gather path; chunking must not change it either
    dense = M.toarray() + 1.0
    expected = np.concatenate([dense[off[i] : off[i + 1], off[j] : off[j + 1]].ravel() for i, j in zip(pi, pj)])
    np.testing.assert_array_equal(extract_blocks(sp.csr_matrix(dense), pi, pj, n_orb, off).data, expected)


@pytest.mark.parametrize("chunk", [None, 11])
def test_assemble_extract_round_trip(chunk, monkeypatch):
    if chunk:
        monkeypatch.setattr(_blocks, "_ELEMENTS_PER_CHUNK", chunk)
    x, cell, species = small_cell()
    nl = neighbor_list(x, cell, True, R_CUT)
    n, off = orbitals(species)
    pair_index, _ = fold_map(nl)
    rng = np.random.default_rng(5)
    nodes = ragged_blocks(rng.normal(size=(n * n).sum()), n, n)
    pn = n[pair_index]
    pairs = ragged_blocks(rng.normal(size=(pn[0] * pn[1]).sum()), pn[0], pn[1])
    H = assemble_gamma(nodes, pairs, pair_index, n, off, off[-1])
    assert sp.isspmatrix_csr(H) and H.shape == (off[-1], off[-1]) and H.has_canonical_format
    dense = np.zeros(H.shape)
    for a in range(len(x)):
        dense[off[a] : off[a + 1], off[a] : off[a + 1]] = nodes.block(a)
    for p, (i, j) in enumerate(pair_index.T):
        dense[off[i] : off[i + 1], off[j] : off[j + 1]] = pairs.block(p)
    np.testing.assert_array_equal(H.toarray(), dense)
    n2, p2, idx = extract_gamma_blocks(H, nl, n, off)
    np.testing.assert_array_equal(idx, pair_index)
    np.testing.assert_array_equal(n2.data, nodes.data)
    np.testing.assert_array_equal(p2.data, pairs.data)


def test_fold_map_encoding():
    x, cell, species = small_cell()
    nl = neighbor_list(x, cell, True, R_CUT)
    pair_index, e2p = fold_map(nl)
    i, j = nl.edge_index
    is_pair = e2p >= 0
    assert np.any(~is_pair) and np.any(is_pair)
    np.testing.assert_array_equal(e2p[~is_pair], -1 - i[~is_pair])
    np.testing.assert_array_equal(i[~is_pair], j[~is_pair])
    np.testing.assert_array_equal(pair_index[:, e2p[is_pair]], nl.edge_index[:, is_pair])
    assert np.all(pair_index[0] != pair_index[1])
    keys = pair_index[0] * len(x) + pair_index[1]
    assert np.all(np.diff(keys) > 0), "pairs unique and sorted by (i, j)"
    # 3 atoms, all within r_cut of each other through some image: all 6 ordered pairs
    assert pair_index.shape == (2, 6)
    assert not folding_is_identity(nl)


def test_big_cell_folding_is_identity():
    x, cell, species = small_cell()
    xs, cs, ss, _ = tile(x, cell, species, (3, 3, 3))  # heights ~9.3 Angstrom > 2 r_cut
    nl = neighbor_list(xs, cs, True, R_CUT)
    assert folding_is_identity(nl)
    edges = rule_edge_blocks(nl, ss)
    nodes = node_blocks_for(ss)
    node_f, pair_f = fold_blocks(edges, nl, nodes)
    pair_index, e2p = fold_map(nl)
    np.testing.assert_array_equal(pair_index, nl.edge_index)
    np.testing.assert_array_equal(e2p, np.arange(nl.n_edges))
    np.testing.assert_array_equal(pair_f.data, edges.data)
    np.testing.assert_array_equal(node_f.data, nodes.data)


@pytest.mark.parametrize("cell_kind", ["triclinic", "one_atom"])
def test_small_cell_fold_matches_brute_force_gamma(cell_kind):
    x, cell, species = small_cell()
    if cell_kind == "one_atom":  # a single atom seeing only its own images
        x, cell, species = x[1:2], np.diag([2.6, 3.0, 3.6]), species[1:2]
    nl = neighbor_list(x, cell, True, R_CUT)
    n, off = orbitals(species)
    nodes = node_blocks_for(species)
    node_f, pair_f = fold_blocks(rule_edge_blocks(nl, species), nl, nodes)
    pair_index, _ = fold_map(nl)
    H = assemble_gamma(node_f, pair_f, pair_index, n, off)
    ref = brute_force_gamma(x, cell, species, nodes)
    assert np.abs(ref).max() > 1.0
    np.testing.assert_allclose(H.toarray(), ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(ref, ref.T, rtol=0, atol=TOL)  # the rule is Hermitian: a check of the test


def test_fold_many_chunks(monkeypatch):
    x, cell, species = small_cell()
    nl = neighbor_list(x, cell, True, R_CUT)
    args = (rule_edge_blocks(nl, species), nl, node_blocks_for(species))
    ref = fold_blocks(*args)
    monkeypatch.setattr(_blocks, "_ELEMENTS_PER_CHUNK", 7)
    assert len(_blocks._chunks(args[0].shape.prod(axis=1))) > 10
    again = fold_blocks(*args)
    # bincount sums in a different grouping per chunk: rounding only
    np.testing.assert_allclose(again[0].data, ref[0].data, rtol=0, atol=TOL)
    np.testing.assert_allclose(again[1].data, ref[1].data, rtol=0, atol=TOL)


def test_tiling_consistency():
    """Per-edge blocks of a small cell are the Gamma blocks of a supercell > 2 r_cut tiled from it."""
    x, cell, species = small_cell()
    reps = np.array([3, 3, 3])
    xs, cs, ss, copies = tile(x, cell, species, reps)
    n_small = len(x)
    small = neighbor_list(x, cell, True, R_CUT)
    big = neighbor_list(xs, cs, True, R_CUT)
    ns, offs = orbitals(ss)
    Hs = assemble_gamma(
        *fold_blocks(rule_edge_blocks(big, ss), big, node_blocks_for(ss)), fold_map(big)[0], ns, offs
    )  # the "reference calculation" on the supercell

    # (a) every small-cell edge (i, j, R) is the supercell edge from atom i of copy 0 to atom j of copy
    #     R mod reps, and its block is that supercell Gamma block
    i, j = small.edge_index
    copy = np.mod(small.shift, reps)
    flat = np.ravel_multi_index(copy.T, reps)
    I, J = i, flat * n_small + j
    blocks = extract_blocks(Hs, I, J, ns, offs)
    expected = rule_edge_blocks(small, species)
    np.testing.assert_allclose(blocks.data, expected.data, rtol=0, atol=TOL)
    # the supercell has exactly that edge, with the same vector and supercell shift floor(R / reps)
    key_big = {(a, b, *s): v for a, b, s, v in zip(*big.edge_index, map(tuple, big.shift), big.vec)}
    for e in range(small.n_edges):
        v = key_big[(I[e], J[e], *np.floor_divide(small.shift[e], reps))]
        np.testing.assert_allclose(v, small.vec[e], rtol=0, atol=TOL)

    # (b) the small cell's Gamma matrix is the supercell's first block row summed over the copies
    n, off = orbitals(species)
    node_f, pair_f = fold_blocks(rule_edge_blocks(small, species), small, node_blocks_for(species))
    H = assemble_gamma(node_f, pair_f, fold_map(small)[0], n, off).toarray()
    # (node_blocks_for depends on the atom index: atoms of copy 0 keep the small cell's on-site blocks)
    row = Hs.toarray()[: off[-1]].reshape(off[-1], len(copies), off[-1]).sum(axis=1)
    np.testing.assert_allclose(H, row, rtol=0, atol=TOL)


def test_fold_and_assemble_errors():
    x, cell, species = small_cell()
    nl = neighbor_list(x, cell, True, R_CUT)
    n, off = orbitals(species)
    edges, nodes = rule_edge_blocks(nl, species), node_blocks_for(species)
    with pytest.raises(ValueError, match="edge_blocks"):
        fold_blocks(ragged_blocks(edges.data[:4], [2], [2]), nl, nodes)
    swapped = ragged_blocks(edges.data, edges.shape[:, 1], edges.shape[:, 0])
    assert not np.array_equal(swapped.shape, edges.shape)  # mixed species: some blocks are not square
    with pytest.raises(ValueError, match="edge_blocks: block of edge"):
        fold_blocks(swapped, nl, nodes)
    with pytest.raises(ValueError, match="node_blocks: expected 3 blocks"):
        fold_blocks(edges, nl, ragged_blocks(np.zeros(6), [2, 3], [3, 0]))
    with pytest.raises(ValueError, match="node_blocks: on-site blocks must be square"):
        fold_blocks(edges, nl, ragged_blocks(np.zeros(19), [2, 3, 3], [2, 3, 2]))
    node_f, pair_f = fold_blocks(edges, nl, nodes)
    pair_index = fold_map(nl)[0]
    with pytest.raises(ValueError, match="n_orbitals"):
        assemble_gamma(node_f, pair_f, pair_index, n, off, off[-1] + 1)
    with pytest.raises(ValueError, match="orb_offset"):
        assemble_gamma(node_f, pair_f, pair_index, n, off + 1)
    with pytest.raises(ValueError, match="pair_index"):
        assemble_gamma(node_f, pair_f, pair_index[0], n, off)
    with pytest.raises(ValueError, match="pair_blocks"):
        assemble_gamma(node_f, pair_f, pair_index[::-1], n, off)
    shapes = np.concatenate([pair_f.shape, pair_f.shape[:1]])
    doubled = ragged_blocks(np.concatenate([pair_f.data, pair_f.block(0).ravel()]), shapes[:, 0], shapes[:, 1])
    with pytest.raises(ValueError, match="pair_index: pairs must be distinct"):
        assemble_gamma(node_f, doubled, np.concatenate([pair_index, pair_index[:, :1]], axis=1), n, off)
    with pytest.raises(ValueError, match=r"pair_index\[0\]: atom indices"):
        assemble_gamma(node_f, pair_f, np.where(pair_index == 2, 3, pair_index), n, off)


def test_extract_errors():
    n_orb = np.array([1, 2])
    off = np.array([0, 1, 3])
    M = sp.identity(3, format="csr")
    with pytest.raises(ValueError, match="matrix"):
        extract_blocks(np.eye(3), [0], [1], n_orb, off)
    with pytest.raises(ValueError, match="matrix"):
        extract_blocks(sp.identity(4, format="csr"), [0], [1], n_orb, off)
    with pytest.raises(ValueError, match="matrix"):
        extract_blocks(sp.csr_matrix(np.eye(3) * 1j), [0], [1], n_orb, off)
    with pytest.raises(ValueError, match="orb_offset"):
        extract_blocks(M, [0], [1], n_orb, [0, 2, 3])
    with pytest.raises(ValueError, match="pairs_i"):
        extract_blocks(M, [2], [1], n_orb, off)
    with pytest.raises(ValueError, match="pairs_i, pairs_j"):
        extract_blocks(M, [0, 1], [1], n_orb, off)
    with pytest.raises(ValueError, match="pairs_j"):
        extract_blocks(M, [0], [0.5], n_orb, off)
    with pytest.raises(ValueError, match="data"):
        ragged_blocks(np.zeros(5), [2], [2])

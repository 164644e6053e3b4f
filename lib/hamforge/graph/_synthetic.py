"""A Hamiltonian with known per-image blocks, for tests and benchmarks of folding, training and prediction.

Random blocks ``H_ij(R)`` for every edge of the periodic graph with ``H_ji(-R) = H_ij(R)^T`` and symmetric
on-site blocks, folded into ``H(Gamma) = sum_R H(R)`` exactly as CP2K folds: a structure for which the exact
per-image answer is known, which no DFT output provides. Blocks decay with distance like ``exp(-d / decay)`` so
that magnitudes resemble a localized basis. Vectorized over edges (one normal draw for all blocks).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hamforge.basis import orbital_table
from hamforge.graph._blocks import assemble_gamma, fold_blocks, fold_map, ragged_blocks
from hamforge.graph._neighbors import neighbor_list, reverse_edge_index

__all__ = ["synthetic_hamiltonian"]


def synthetic_hamiltonian(
    numbers, positions, cell, pbc, kinds, basis, r_cut: float, *, seed: int = 0, scale: float = 0.05, decay: float = 2.0
):
    """``(MatrixData, nl, edge_blocks, node_blocks)``: a matrix file's content with S = identity whose H is the
    Gamma fold of random per-image blocks (``edge_blocks`` one per edge of ``nl``, ``node_blocks`` on-site)."""
    from hamforge.io import MatrixData

    rng = np.random.default_rng(seed)
    kinds = np.asarray(kinds, dtype=object)
    tab = orbital_table(kinds, dict(basis))
    nl = neighbor_list(positions, cell, pbc, r_cut)
    rev = reverse_edge_index(nl)
    i, j = nl.edge_index
    rows, cols = tab.n_orb[i], tab.n_orb[j]
    size = rows * cols
    offsets = np.concatenate([[0], np.cumsum(size)])
    data = rng.normal(size=int(offsets[-1])) * scale * np.repeat(np.exp(-nl.dist / decay), size)
    # H_ji(-R) = H_ij(R)^T: the block of the reverse edge is the transpose of the block of the edge
    fwd = np.flatnonzero(rev > np.arange(nl.n_edges))
    e_src = np.repeat(fwd, size[fwd])
    starts = np.concatenate([[0], np.cumsum(size[fwd])])[:-1]
    k = np.arange(e_src.shape[0]) - np.repeat(starts, size[fwd])  # position inside the block
    r, c = k // cols[e_src], k % cols[e_src]
    e_dst = rev[e_src]
    data[offsets[e_dst] + c * cols[e_dst] + r] = data[offsets[e_src] + k]
    edge_blocks = ragged_blocks(data, rows, cols)
    onsite = rng.normal(size=int((tab.n_orb**2).sum()))
    node_blocks = ragged_blocks(onsite, tab.n_orb, tab.n_orb)
    node_off = np.concatenate([[0], np.cumsum(tab.n_orb**2)])
    for n in np.unique(tab.n_orb).tolist():  # symmetric on-site blocks, all atoms of one size at once
        sel = np.flatnonzero(tab.n_orb == n)
        idx = node_off[sel][:, None] + np.arange(n * n)
        b = onsite[idx].reshape(-1, n, n)
        onsite[idx] = (b + b.transpose(0, 2, 1)).reshape(-1, n * n)
    nodes_f, pairs_f = fold_blocks(edge_blocks, nl, node_blocks)
    pair_index, _ = fold_map(nl)
    H = assemble_gamma(nodes_f, pairs_f, pair_index, tab.n_orb, tab.offset)
    data_ = MatrixData(
        numbers=np.asarray(numbers, np.int64),
        positions=np.asarray(positions, float),
        cell=np.asarray(cell, float),
        pbc=np.broadcast_to(np.asarray(pbc, bool), (3,)).copy(),
        kinds=kinds,
        basis=dict(basis),
        H=H,
        S=sp.identity(tab.n_orbitals, format="csr"),
    )
    return data_, nl, edge_blocks, node_blocks

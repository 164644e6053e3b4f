"""Atom blocks of orbital matrices, and folding per-image edge blocks onto the Gamma point.

Blocks are stored *ragged*: :class:`RaggedBlocks` holds one flat float64 array with every block written
row-major one after the other, the offsets where each block starts, and each block's shape. Block ``p``
is ``data[offsets[p]:offsets[p + 1]].reshape(shape[p])``. Orbital bookkeeping comes as plain arrays:
``n_orb (N,)`` orbitals per atom and ``orb_offset (N + 1,)`` with atom ``a``'s orbitals at
``orb_offset[a]:orb_offset[a + 1]`` (``hamforge.basis`` provides them).

Folding (``docs/conventions.md``): at the Gamma point ``H(Gamma)_ij = sum_R H_ij(R)``. For ``i != j`` the
folded block of the atom pair ``(i, j)`` is the sum of the blocks of all edges ``(i, j, R)``; for
``i == j`` it is the on-site block plus the self-image edges ``(i, i, R != 0)``.

Unfolding is impossible in general: several edges (different ``R``) add up into one Gamma block and the
sum does not determine the terms, so per-image reference blocks cannot be recovered from a Gamma-point
matrix of a small cell. When every perpendicular height of the cell exceeds ``2 r_cut`` each atom pair
has at most one edge and no atom sees its own image (:func:`folding_is_identity` checks the edge list
itself), so the Gamma block *is* the per-edge block. Per-image references for a small cell therefore
come from a tiled supercell larger than ``2 r_cut`` (docs/conventions.md, "Folding"), while training on a
small cell compares the folded prediction with its Gamma blocks.
"""

from __future__ import annotations

import numpy as np

from hamforge.basis import RaggedBlocks

__all__ = [
    "RaggedBlocks",
    "ragged_blocks",
    "extract_blocks",
    "extract_gamma_blocks",
    "fold_map",
    "folding_is_identity",
    "fold_blocks",
    "assemble_gamma",
]

# Matrix elements handled per vectorized step (bounds temporaries to ~100 MB).
_ELEMENTS_PER_CHUNK = 1 << 20


def ragged_blocks(data, n_rows, n_cols) -> RaggedBlocks:
    """Wrap a flat row-major ``data`` array holding blocks of shapes ``(n_rows[p], n_cols[p])``."""
    n_rows = _int_array(n_rows, "n_rows", ndim=1)
    n_cols = _int_array(n_cols, "n_cols", ndim=1)
    if n_rows.shape != n_cols.shape:
        raise ValueError(f"n_rows, n_cols: shapes differ ({n_rows.shape} vs {n_cols.shape})")
    if np.any(n_rows < 0) or np.any(n_cols < 0):
        raise ValueError("n_rows, n_cols: block dimensions must be >= 0")
    data = np.ascontiguousarray(data, dtype=np.float64)
    offsets = _offsets(n_rows * n_cols)
    if data.shape != (offsets[-1],):
        raise ValueError(f"data: expected shape ({offsets[-1]},) for the given block shapes, got {data.shape}")
    return RaggedBlocks(data, offsets, np.stack([n_rows, n_cols], axis=1))


def extract_blocks(matrix, pairs_i, pairs_j, n_orb, orb_offset) -> RaggedBlocks:
    """Dense atom blocks ``matrix[orbitals(i), orbitals(j)]`` for atom pairs ``(pairs_i[p], pairs_j[p])``.

    Args:
        matrix: scipy.sparse matrix ``(Norb, Norb)`` (CSR preferred; others are converted; the input is
            never modified). Entries not stored read as 0.
        pairs_i, pairs_j: ``(P,)`` atom indices (row atom, column atom); ``i == j`` gives on-site blocks.
        n_orb: ``(N,)`` orbitals per atom. orb_offset: ``(N + 1,)`` first orbital of each atom.

    Returns:
        :class:`RaggedBlocks` with ``P`` blocks of shapes ``(n_orb[i], n_orb[j])``.

    Vectorized: a per-row binary search for the column range of every block row, then one gather.
    """
    csr = _canonical_csr(matrix, "matrix")
    n_orb, orb_offset = _check_orbitals(n_orb, orb_offset)
    if csr.shape != (orb_offset[-1], orb_offset[-1]):
        raise ValueError(
            f"matrix: expected shape ({orb_offset[-1]}, {orb_offset[-1]}) from orb_offset, got {csr.shape}"
        )
    pi, pj = _check_pairs(pairs_i, pairs_j, n_orb.shape[0])
    rows, cols = n_orb[pi], n_orb[pj]
    offsets = _offsets(rows * cols)
    out = np.zeros(offsets[-1], np.float64)
    indptr = csr.indptr.astype(np.int64)
    indices, values = csr.indices, csr.data  # no copies of nnz-sized arrays
    sizes = rows * cols
    chunks = _chunks(sizes)
    ramp = _ramp(sizes, chunks)
    for a, b in chunks:  # about _ELEMENTS_PER_CHUNK matrix elements each
        block_row_start = _offsets(rows[a:b])
        block = np.repeat(np.arange(a, b, dtype=np.int64), rows[a:b])  # pair of each block row
        local = np.arange(block_row_start[-1], dtype=np.int64) - np.repeat(block_row_start[:-1], rows[a:b])
        r = orb_offset[pi[block]] + local  # matrix row of each block row
        c0 = orb_offset[pj[block]]  # first column of the block
        nc = cols[block]
        lo = _lower_bound(indptr, indices, r, c0)
        # Dense stored block row (the usual case): the nc entries from lo end at column c0 + nc - 1.
        # Columns inside a row are strictly increasing, so then they are exactly c0 .. c0 + nc - 1.
        last = lo + nc - 1
        dense = nc == 0
        if len(indices):
            dense |= (last < indptr[r + 1]) & (indices[np.clip(last, 0, len(indices) - 1)] == c0 + nc - 1)
        if dense.all():  # block rows are consecutive in `out`: one gather fills the chunk
            out[offsets[a] : offsets[b]] = values[_ranges(lo, nc, ramp)]
            continue
        row_dest = offsets[block] + local * nc  # where each block row starts in `out`
        d = np.flatnonzero(dense)
        out[_ranges(row_dest[d], nc[d], ramp)] = values[_ranges(lo[d], nc[d], ramp)]
        s = np.flatnonzero(~dense)  # partly stored block rows: scatter entry by entry
        lo_s = lo[s]
        count = _lower_bound(indptr, indices, r[s], c0[s] + nc[s]) - lo_s
        k = _ranges(lo_s, count, ramp)
        owner = np.repeat(s, count)
        out[row_dest[owner] + (indices[k] - c0[owner])] = values[k]
    return RaggedBlocks(out, offsets, np.stack([rows, cols], axis=1))


def extract_gamma_blocks(matrix, nl, n_orb, orb_offset):
    """Reference Gamma blocks of a matrix on the folded graph of ``nl``.

    Returns ``(node_blocks, pair_blocks, pair_index)``: on-site blocks of all N atoms, the blocks of the
    atom pairs ``pair_index`` of :func:`fold_map` (the folded targets to compare with
    :func:`fold_blocks` of predicted per-edge blocks), and ``pair_index (2, P)``.
    """
    pair_index, _ = fold_map(nl)
    atoms = np.arange(nl.n_atoms, dtype=np.int64)
    nodes = extract_blocks(matrix, atoms, atoms, n_orb, orb_offset)
    pairs = extract_blocks(matrix, pair_index[0], pair_index[1], n_orb, orb_offset)
    return nodes, pairs, pair_index


def fold_map(nl):
    """Where every edge lands when folded onto the Gamma point.

    Returns:
        pair_index: ``(2, P)`` int64, the distinct atom pairs ``(i, j)``, ``i != j``, that have at least
            one edge, sorted by ``(i, j)`` (both directions are present: the edge set is symmetric).
        edge_to_pair: ``(E,)`` int64. For an edge ``(i, j, R)`` with ``i != j`` the index of its pair in
            ``pair_index`` (``>= 0``); for a self-image edge ``(i, i, R != 0)`` the value ``-1 - i``
            (``< 0``): it folds onto the on-site block of node ``i``.
    """
    i, j = nl.edge_index
    self_image = i == j
    other = np.flatnonzero(~self_image)
    io, jo = i[other], j[other]
    new = np.ones(other.shape[0], bool)
    new[1:] = (io[1:] != io[:-1]) | (jo[1:] != jo[:-1])
    edge_to_pair = np.empty(i.shape[0], np.int64)
    edge_to_pair[other] = np.cumsum(new) - 1
    edge_to_pair[self_image] = -1 - i[self_image]
    return np.stack([io[new], jo[new]]).astype(np.int64), edge_to_pair


def folding_is_identity(nl) -> bool:
    """True when folding changes nothing: no self-image edge and at most one edge per atom pair.

    Always true when every perpendicular cell height exceeds ``2 r_cut``; then the Gamma blocks of the
    pairs are exactly the per-edge blocks (``pair_index`` equals ``edge_index``).
    """
    i, j = nl.edge_index
    if np.any(i == j):
        return False
    return not np.any((i[1:] == i[:-1]) & (j[1:] == j[:-1]))


def fold_blocks(edge_blocks, nl, node_blocks):
    """Fold per-image edge blocks onto the Gamma point.

    Args:
        edge_blocks: :class:`RaggedBlocks` with one block per edge of ``nl`` (shape ``(n_i, n_j)``).
        nl: the :class:`~hamforge.graph.NeighborList` the edge blocks belong to.
        node_blocks: :class:`RaggedBlocks` with the N on-site blocks ``(n_i, n_i)``.

    Returns:
        ``(node_folded, pair_folded)``: on-site block plus its self-image edges for every node, and for
        every pair of :func:`fold_map`'s ``pair_index`` the sum of its edge blocks.
    """
    edge_blocks = _check_ragged(edge_blocks, "edge_blocks", nl.n_edges)
    node_blocks = _check_ragged(node_blocks, "node_blocks", nl.n_atoms)
    n_node = node_blocks.shape[:, 0]
    if not np.array_equal(node_blocks.shape[:, 1], n_node):
        raise ValueError("node_blocks: on-site blocks must be square")
    i, j = nl.edge_index
    expected = np.stack([n_node[i], n_node[j]], axis=1)
    if not np.array_equal(edge_blocks.shape, expected):
        bad = int(np.flatnonzero(np.any(edge_blocks.shape != expected, axis=1))[0])
        raise ValueError(
            f"edge_blocks: block of edge {bad} has shape {edge_blocks.shape[bad].tolist()}, "
            f"expected {expected[bad].tolist()} from the on-site blocks of atoms "
            f"{int(i[bad])}, {int(j[bad])}"
        )
    pair_index, edge_to_pair = fold_map(nl)
    pair_shape = np.stack([n_node[pair_index[0]], n_node[pair_index[1]]], axis=1)
    pair_offsets = _offsets(pair_shape[:, 0] * pair_shape[:, 1])
    pair_data = np.zeros(pair_offsets[-1], np.float64)
    node_data = node_blocks.data.copy()
    is_pair = edge_to_pair >= 0
    _scatter_add(edge_blocks, np.flatnonzero(is_pair), pair_offsets[edge_to_pair[is_pair]], pair_data)
    selfs = np.flatnonzero(~is_pair)
    _scatter_add(edge_blocks, selfs, node_blocks.offsets[-1 - edge_to_pair[selfs]], node_data)
    return (
        RaggedBlocks(node_data, node_blocks.offsets.copy(), node_blocks.shape.copy()),
        RaggedBlocks(pair_data, pair_offsets, pair_shape),
    )


def assemble_gamma(node_blocks, pair_blocks, pair_index, n_orb, orb_offset, n_orbitals=None):
    """Sparse Gamma-point matrix from on-site blocks and atom-pair blocks.

    Args:
        node_blocks: :class:`RaggedBlocks`, N blocks ``(n_orb[i], n_orb[i])``.
        pair_blocks: :class:`RaggedBlocks`, P blocks ``(n_orb[i], n_orb[j])`` for ``pair_index[:, p]``.
        pair_index: ``(2, P)`` distinct atom pairs (row atom, column atom), ``i != j``.
        n_orb, orb_offset: orbital counts ``(N,)`` and offsets ``(N + 1,)``.
        n_orbitals: total orbital count (defaults to ``orb_offset[-1]``; checked against it).

    Returns:
        ``scipy.sparse.csr_matrix`` of shape ``(Norb, Norb)``, float64, with sorted column indices and
        no duplicates; blocks not given are not stored (explicit zeros inside given blocks are).

    Built directly in CSR order (no COO sort): O(nnz), chunked.
    """
    import scipy.sparse as sp

    n_orb, orb_offset = _check_orbitals(n_orb, orb_offset)
    n = n_orb.shape[0]
    total = int(orb_offset[-1])
    if n_orbitals is not None and int(n_orbitals) != total:
        raise ValueError(f"n_orbitals: {n_orbitals} disagrees with orb_offset[-1] = {total}")
    node_blocks = _check_ragged(node_blocks, "node_blocks", n)
    pi, pj = _check_pairs(*_pair_rows(pair_index), n, names=("pair_index[0]", "pair_index[1]"))
    pair_blocks = _check_ragged(pair_blocks, "pair_blocks", pi.shape[0])
    if not np.array_equal(node_blocks.shape, np.stack([n_orb, n_orb], axis=1)):
        raise ValueError("node_blocks: shapes must be (n_orb[i], n_orb[i])")
    if not np.array_equal(pair_blocks.shape, np.stack([n_orb[pi], n_orb[pj]], axis=1)):
        raise ValueError("pair_blocks: shapes must be (n_orb[pair_index[0]], n_orb[pair_index[1]])")
    # All blocks (nodes and pairs) in CSR order: by row atom, then column atom.
    atoms = np.arange(n, dtype=np.int64)
    brow = np.concatenate([atoms, pi])
    bcol = np.concatenate([atoms, pj])
    order = np.argsort(brow * n + bcol, kind="stable")
    brow, bcol = brow[order], bcol[order]
    if np.any((brow[1:] == brow[:-1]) & (bcol[1:] == bcol[:-1])):
        raise ValueError("pair_index: pairs must be distinct and off-diagonal (i != j)")
    n_node_data = int(node_blocks.offsets[-1])  # sources: node data, then pair data (not concatenated)
    bsrc = np.concatenate([node_blocks.offsets[:-1], pair_blocks.offsets[:-1] + n_node_data])[order]
    nc = n_orb[bcol]
    # Orbital row t of atom a holds row t of each of a's blocks, one after the other: a "segment" per
    # (atom, row, block), enumerated in exactly the CSR storage order.
    k = np.bincount(brow, minlength=n)  # blocks per row atom
    first = _offsets(k)[:-1]
    row_nnz = np.bincount(brow, weights=nc, minlength=n).astype(np.int64)
    indptr = _offsets(np.repeat(row_nnz, n_orb))
    seg_per_atom = n_orb * k
    seg_atom = np.repeat(atoms, seg_per_atom)
    s_local = np.arange(seg_atom.shape[0], dtype=np.int64) - np.repeat(_offsets(seg_per_atom)[:-1], seg_per_atom)
    k_seg = k[seg_atom]
    blk = first[seg_atom] + s_local % k_seg
    seg_len = nc[blk]
    seg_src = bsrc[blk] + (s_local // k_seg) * seg_len
    seg_col = orb_offset[bcol[blk]]
    del seg_atom, s_local, k_seg
    nnz = int(indptr[-1])
    idx_dtype = np.int32 if max(nnz, total) < np.iinfo(np.int32).max else np.int64
    out_data = np.empty(nnz, np.float64)
    out_indices = np.empty(nnz, idx_dtype)
    pos = 0
    chunks = _chunks(seg_len)
    ramp = _ramp(seg_len, chunks)
    for a, b in chunks:
        length = seg_len[a:b]
        end = pos + int(length.sum())
        src = _ranges(seg_src[a:b], length, ramp)
        from_node = src < n_node_data
        dst = out_data[pos:end]
        dst[from_node] = node_blocks.data[src[from_node]]
        from_pair = ~from_node
        dst[from_pair] = pair_blocks.data[src[from_pair] - n_node_data]
        out_indices[pos:end] = _ranges(seg_col[a:b], length, ramp)
        pos = end
    out = sp.csr_matrix((out_data, out_indices, indptr.astype(idx_dtype)), shape=(total, total))
    out.has_sorted_indices = True  # blocks sorted by column atom, columns ascending inside a block
    return out


# ----------------------------------------------------------------------------------------------------
def _offsets(sizes):
    out = np.zeros(sizes.shape[0] + 1, np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def _ranges(starts, lengths, ramp=None):
    """Concatenation of ``arange(s, s + n)`` for every (s, n), vectorized.

    ``ramp``: an optional precomputed ``arange`` at least as long as the result (saves allocating one).
    """
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths
    out = np.repeat(np.asarray(starts, np.int64) - before, lengths)
    out += ramp[:total] if ramp is not None and ramp.shape[0] >= total else np.arange(total, dtype=np.int64)
    return out


def _ramp(sizes, chunks):
    """``arange`` as long as the largest chunk of :func:`_chunks` (shared by its :func:`_ranges` calls)."""
    longest = max((int(sizes[a:b].sum()) for a, b in chunks), default=0)
    return np.arange(longest, dtype=np.int64)


def _chunks(sizes):
    """Consecutive index ranges [a, b) whose summed sizes are about _ELEMENTS_PER_CHUNK (>= 1 item)."""
    budget = _ELEMENTS_PER_CHUNK
    ends = np.cumsum(sizes)
    out, a = [], 0
    while a < sizes.shape[0]:
        base = ends[a - 1] if a else 0
        b = int(np.searchsorted(ends, base + budget, side="right"))
        b = max(b, a + 1)
        out.append((a, b))
        a = b
    return out


def _lower_bound(indptr, indices, rows, cols):
    """First position in CSR row ``rows[q]`` whose column is ``>= cols[q]`` (vectorized bisection)."""
    lo = indptr[rows]
    hi = indptr[rows + 1]
    act = np.flatnonzero(lo < hi)
    while act.size:
        lo_a, hi_a = lo[act], hi[act]
        mid = (lo_a + hi_a) >> 1
        right = indices[mid] < cols[act]
        lo[act] = np.where(right, mid + 1, lo_a)
        hi[act] = np.where(right, hi_a, mid)
        act = act[lo[act] < hi[act]]
    return lo


def _scatter_add(src, sel, dest_start, out):
    """``out[dest_start[k] + t] += src block sel[k] element t`` for all selected blocks (chunked).

    ``dest_start`` must be non-decreasing (it is: edges are sorted by (i, j)), so each chunk touches a
    contiguous range of ``out`` and one ``np.bincount`` sums it, duplicates included.
    """
    sizes = src.offsets[sel + 1] - src.offsets[sel]
    chunks = _chunks(sizes)
    ramp = _ramp(sizes, chunks)
    for a, b in chunks:
        n = sizes[a:b]
        values = src.data[_ranges(src.offsets[sel[a:b]], n, ramp)]
        dest = _ranges(dest_start[a:b], n, ramp)
        base = int(dest_start[a])
        span = int(dest.max()) - base + 1 if dest.shape[0] else 0
        out[base : base + span] += np.bincount(dest - base, weights=values, minlength=span)


def _canonical_csr(matrix, name):
    import scipy.sparse as sp

    if not sp.issparse(matrix):
        raise ValueError(f"{name}: expected a scipy.sparse matrix, got {type(matrix).__name__}")
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a real matrix, got dtype {matrix.dtype}")
    csr = sp.csr_matrix(matrix)  # a new object for non-CSR input, a view sharing arrays otherwise
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()  # also sorts the column indices
    return csr


def _int_array(a, name, ndim):
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d integer array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_orbitals(n_orb, orb_offset):
    n_orb = _int_array(n_orb, "n_orb", ndim=1)
    orb_offset = _int_array(orb_offset, "orb_offset", ndim=1)
    if np.any(n_orb < 0):
        raise ValueError("n_orb: orbital counts must be >= 0")
    if (
        orb_offset.shape != (n_orb.shape[0] + 1,)
        or orb_offset[0] != 0
        or not np.array_equal(np.diff(orb_offset), n_orb)
    ):
        raise ValueError("orb_offset: expected shape (N + 1,) = [0, cumsum(n_orb)] consistent with n_orb")
    return n_orb, orb_offset


def _check_pairs(pairs_i, pairs_j, n_atoms, names=("pairs_i", "pairs_j")):
    pi = _int_array(pairs_i, names[0], ndim=1)
    pj = _int_array(pairs_j, names[1], ndim=1)
    if pi.shape != pj.shape:
        raise ValueError(f"{names[0]}, {names[1]}: shapes differ ({pi.shape} vs {pj.shape})")
    for arr, name in zip((pi, pj), names):
        if arr.size and (arr.min() < 0 or arr.max() >= n_atoms):
            raise ValueError(f"{name}: atom indices must lie in [0, {n_atoms})")
    return pi, pj


def _pair_rows(pair_index):
    arr = np.asarray(pair_index)
    if arr.ndim != 2 or arr.shape[0] != 2:
        raise ValueError(f"pair_index: expected shape (2, P), got {arr.shape}")
    return arr[0], arr[1]


def _check_ragged(blocks, name, n_blocks):
    if not isinstance(blocks, tuple) or len(tuple(blocks)) != 3:
        raise ValueError(f"{name}: expected RaggedBlocks(data, offsets, shape)")
    data, offsets, shape = (np.asarray(a) for a in tuple(blocks))
    if shape.shape != (n_blocks, 2):
        raise ValueError(f"{name}: expected {n_blocks} blocks (shape array ({n_blocks}, 2)), got {shape.shape}")
    if (
        offsets.shape != (n_blocks + 1,)
        or offsets[0] != 0
        or not np.array_equal(np.diff(offsets), shape[:, 0] * shape[:, 1])
    ):
        raise ValueError(f"{name}: offsets inconsistent with block shapes")
    if data.shape != (offsets[-1],):
        raise ValueError(f"{name}: data has shape {data.shape}, expected ({offsets[-1]},)")
    return RaggedBlocks(np.asarray(data, np.float64), offsets.astype(np.int64), shape.astype(np.int64))

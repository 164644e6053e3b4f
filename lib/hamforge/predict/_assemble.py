"""Per-image and Gamma-point CSR rows from per-edge blocks, slab by slab of atoms (never the whole matrix).

Rows of atoms ``a .. b`` hold the on-site blocks of those atoms and the blocks of the edges centred on them
(edges are sorted by centre, so they are one contiguous range). Per image (``/images/H``): block ``(i, j, R_k)``
goes to columns ``k Norb + orbitals(j)``, on-site blocks to the image ``R = 0``. Gamma: ``sum_R`` of the same
blocks at columns ``orbitals(j)``. The Gamma sums are formed in a canonical order (on-site block first, then the
edges of a pair ordered by ``min(e, rev(e))``), the same order for element ``(r, c)`` as for ``(c, r)``, so a
symmetrized set of blocks gives an exactly symmetric Gamma matrix, bit for bit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["image_table", "iter_row_slabs"]

# Matrix elements per slab (bounds the COO temporaries to ~200 MB).
_SLAB_ELEMENTS = 1 << 22


def image_table(*nls) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(shifts (K, 3), [edge_image (E_k,) per list])``: the distinct lattice images of the edges of all the
    neighbour lists plus ``R = 0``, sorted lexicographically, and the image index of every edge of each list
    (H and S may have different ranges but share one image table in a matrix file)."""
    parts = [np.zeros((1, 3), np.int64)] + [np.asarray(nl.shift, np.int64).reshape(-1, 3) for nl in nls]
    shifts, inv = np.unique(np.concatenate(parts), axis=0, return_inverse=True)
    inv = np.asarray(inv, np.int64).reshape(-1)
    bounds = np.cumsum([p.shape[0] for p in parts])
    return shifts, [inv[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def iter_row_slabs(nodes, edges, nl, rev, n_orb, orb_offset, edge_image, zero_image: int, n_img: int):
    """Yield ``(gamma_slab, image_slab)`` CSR row slabs (consecutive atoms) covering all rows in order.

    ``nodes``/``edges``: symmetrized blocks; ``rev``: reverse edge of every edge; ``n_orb`` (N,), ``orb_offset``
    (N + 1,); ``edge_image`` (E,) image index into a table of ``n_img`` images; ``zero_image`` the index of
    ``R = 0``.
    """
    n = n_orb.shape[0]
    norb = int(orb_offset[-1])
    i, j = nl.edge_index
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(i, minlength=n), out=ptr[1:])
    row_elems = n_orb * n_orb + np.bincount(i, weights=n_orb[j], minlength=n).astype(np.int64) * n_orb
    cum = np.concatenate([[0], np.cumsum(row_elems)])
    a = 0
    while a < n:
        b = int(np.searchsorted(cum, cum[a] + _SLAB_ELEMENTS, side="right")) - 1
        b = min(max(b, a + 1), n)
        atoms = np.arange(a, b, dtype=np.int64)
        eid = np.arange(ptr[a], ptr[b], dtype=np.int64)
        bi = np.concatenate([atoms, i[eid]])
        bj = np.concatenate([atoms, j[eid]])
        src = np.concatenate([nodes.offsets[atoms], edges.offsets[eid]])
        nr, nc = n_orb[bi], n_orb[bj]
        sizes = nr * nc
        blk = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)
        t = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = orb_offset[bi[blk]] - orb_offset[a] + t // nc[blk]
        cols = orb_offset[bj[blk]] + t % nc[blk]
        flat = src[blk] + t
        n_node = int(sizes[: atoms.shape[0]].sum())  # on-site elements come first, then the edges'
        vals = np.concatenate([nodes.data[flat[:n_node]], edges.data[flat[n_node:]]])
        shape = (int(orb_offset[b] - orb_offset[a]), norb)
        img = np.concatenate([np.full(atoms.shape[0], zero_image, np.int64), edge_image[eid]])[blk]
        image_slab = sp.csr_matrix((vals, (rows, img * norb + cols)), shape=(shape[0], n_img * norb))
        image_slab.sort_indices()
        key = np.concatenate([np.full(atoms.shape[0], -1, np.int64), np.minimum(eid, rev[eid])])[blk]
        yield _canonical_sum(rows, cols, key, vals, shape), image_slab
        a = b


def _canonical_sum(rows, cols, key, vals, shape) -> sp.csr_matrix:
    """CSR of the sums over duplicates of ``(rows, cols)``, each sum taken in increasing ``key`` order."""
    order = np.lexsort((key, cols, rows))
    r, c, v = rows[order], cols[order], vals[order]
    new = np.ones(r.shape[0], bool)
    new[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    starts = np.flatnonzero(new)
    # a sequential left-to-right sum per run (np.add.reduceat): the same terms in the same order give the same bits
    sums = np.add.reduceat(v, starts) if v.size else v
    indptr = np.zeros(shape[0] + 1, np.int64)
    np.cumsum(np.bincount(r[starts], minlength=shape[0]), out=indptr[1:])
    out = sp.csr_matrix((sums, c[starts], indptr), shape=shape)
    out.has_sorted_indices = True
    return out

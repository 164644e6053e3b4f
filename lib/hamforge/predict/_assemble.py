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

from hamforge.predict._infer import ranges

__all__ = ["build_slab", "image_table", "iter_row_slabs", "slab_bounds"]

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


def iter_row_slabs(nodes, edges, nl, rev, n_orb, orb_offset, edge_image, zero_image: int, n_img: int, gamma=True):
    """Yield ``(gamma_slab | None, image_slab)`` CSR row slabs (consecutive atoms) covering all rows in order.

    ``nodes``/``edges``: symmetrized blocks; ``rev``: reverse edge of every edge; ``n_orb`` (N,), ``orb_offset``
    (N + 1,); ``edge_image`` (E,) image index into a table of ``n_img`` images; ``zero_image`` the index of
    ``R = 0``.
    """
    n = n_orb.shape[0]
    i, j = nl.edge_index
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(i, minlength=n), out=ptr[1:])
    for a, b in slab_bounds(n_orb, ptr, np.bincount(i, weights=n_orb[j], minlength=n)):
        eid = np.arange(ptr[a], ptr[b], dtype=np.int64)
        atoms = np.arange(a, b, dtype=np.int64)
        node_vals = nodes.data[ranges(nodes.offsets[atoms], nodes.offsets[atoms + 1] - nodes.offsets[atoms])]
        edge_vals = edges.data[ranges(edges.offsets[eid], edges.offsets[eid + 1] - edges.offsets[eid])]
        key = np.minimum(eid, rev[eid])
        edges_ab = (i[eid], j[eid], edge_image[eid], key)
        yield build_slab(a, b, n_orb, orb_offset, node_vals, edges_ab, edge_vals, zero_image, n_img, gamma)


def slab_bounds(n_orb, ptr, degree_orbitals=None, start: int = 0, stop: int | None = None):
    """``(a, b)`` atom ranges of consecutive row slabs of about ``_SLAB_ELEMENTS`` matrix elements each, covering
    atoms ``start .. stop - 1`` (default all).

    ``ptr``: (N + 1,) first edge of every row; ``degree_orbitals`` (N,): sum of the neighbours' orbitals per row
    (None: every neighbour counted with the mean orbitals per atom, an estimate that only sizes the slabs)."""
    n = n_orb.shape[0]
    deg = np.diff(ptr)
    if degree_orbitals is None:
        degree_orbitals = deg * (float(n_orb.mean()) if n else 0.0)
    row_elems = n_orb * n_orb + (np.asarray(degree_orbitals, np.float64) * n_orb).astype(np.int64)
    cum = np.concatenate([[0], np.cumsum(row_elems)])
    a, stop = int(start), n if stop is None else int(stop)
    while a < stop:
        b = int(np.searchsorted(cum, cum[a] + _SLAB_ELEMENTS, side="right")) - 1
        b = min(max(b, a + 1), stop)
        yield a, b
        a = b


def build_slab(a, b, n_orb, orb_offset, node_vals, edges, edge_vals, zero_image: int, n_img: int, gamma: bool = True):
    """``(gamma_slab | None, image_slab)``: CSR rows of atoms ``a .. b - 1`` from their on-site blocks (flat, atom
    order) and the blocks of their edges ``edges = (i, j, image, key)`` (sorted by ``(i, j, R)``; ``key`` orders
    the terms of every Gamma sum: ``min(e, rev(e))`` of the global edge ids), flat in edge order."""
    norb = int(orb_offset[-1])
    ei, ej, eimg, ekey = edges
    atoms = np.arange(a, b, dtype=np.int64)
    bi = np.concatenate([atoms, ei])
    bj = np.concatenate([atoms, ej])
    nr, nc = n_orb[bi], n_orb[bj]
    sizes = nr * nc
    blk = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)
    t = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows = orb_offset[bi[blk]] - orb_offset[a] + t // nc[blk]
    cols = orb_offset[bj[blk]] + t % nc[blk]
    vals = np.concatenate([node_vals, edge_vals])  # on-site elements come first, then the edges'
    shape = (int(orb_offset[b] - orb_offset[a]), norb)
    img = np.concatenate([np.full(atoms.shape[0], zero_image, np.int64), eimg])[blk]
    image_slab = sp.csr_matrix((vals, (rows, img * norb + cols)), shape=(shape[0], n_img * norb))
    image_slab.sort_indices()
    if not gamma:
        return None, image_slab
    key = np.concatenate([np.full(atoms.shape[0], -1, np.int64), ekey])[blk]
    return _canonical_sum(rows, cols, key, vals, shape), image_slab


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

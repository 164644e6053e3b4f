"""Explicit symmetrization of per-image blocks: ``H_ij(R) = H_ji(-R)^T`` and symmetric on-site blocks.

The network predicts every edge ``(i, j, R)`` and its reverse ``(j, i, -R)`` independently, so the two blocks
are transposes only approximately. Both are replaced by their average ``(H_ij(R) + H_ji(-R)^T) / 2`` (and its
transpose), on-site blocks by ``(H_ii + H_ii^T) / 2``; the averages are written to both partners, so the
result is exactly symmetric. The asymmetry removed, ``max |H_ij(R) - H_ji(-R)^T|`` over all edges and
``max |H_ii - H_ii^T|`` over atoms (and RMS values), is returned for the provenance and the log.
Vectorized per block shape, chunked.
"""

from __future__ import annotations

import numpy as np

__all__ = ["symmetrize_blocks"]

# Matrix elements handled per vectorized step.
_CHUNK_ELEMENTS = 1 << 21


def symmetrize_blocks(nodes, edges, rev: np.ndarray) -> dict[str, float]:
    """Symmetrize ``nodes`` (N square blocks) and ``edges`` (E blocks; ``rev[e]`` the reverse edge) **in place**.

    Returns ``{"edge_asymmetry_max", "edge_asymmetry_rms", "onsite_asymmetry_max", "onsite_asymmetry_rms",
    "max_abs"}`` of the blocks before averaging (same units as the blocks)."""
    rev = np.asarray(rev, np.int64)
    e_all = np.arange(rev.shape[0], dtype=np.int64)
    if np.any(rev[rev] != e_all):
        raise ValueError("rev: not an involution (each edge's reverse must point back to it)")
    first = np.flatnonzero(e_all < rev)  # one representative per pair of partner edges
    e_max, e_sq, e_cnt = _pairs(edges, first, rev[first])
    n_max, n_sq, n_cnt = _pairs(nodes, np.arange(nodes.shape.shape[0], dtype=np.int64), None)
    max_abs = float(max(np.abs(edges.data).max(initial=0.0), np.abs(nodes.data).max(initial=0.0)))
    return {
        "edge_asymmetry_max": e_max,
        "edge_asymmetry_rms": float(np.sqrt(e_sq / max(e_cnt, 1))),
        "onsite_asymmetry_max": n_max,
        "onsite_asymmetry_rms": float(np.sqrt(n_sq / max(n_cnt, 1))),
        "max_abs": max_abs,
    }


def _pairs(blocks, a_ids, b_ids):
    """Average block ``a`` with the transpose of block ``b`` (``b_ids`` None: with its own transpose)."""
    shape = blocks.shape
    worst, sq, cnt = 0.0, 0.0, 0
    keys = shape[a_ids, 0] * (1 << 20) + shape[a_ids, 1]
    for key in np.unique(keys).tolist():
        sel_all = a_ids[keys == key]
        r, c = divmod(int(key), 1 << 20)
        size = r * c
        if size == 0:
            continue
        step = max(1, _CHUNK_ELEMENTS // size)
        for s in range(0, sel_all.shape[0], step):
            sa = sel_all[s : s + step]
            sb = sa if b_ids is None else b_ids[np.searchsorted(a_ids, sa)]
            ia = blocks.offsets[sa][:, None] + np.arange(size)
            ib = blocks.offsets[sb][:, None] + np.arange(size)
            a = blocks.data[ia].reshape(-1, r, c)
            bt = blocks.data[ib].reshape(-1, c, r).transpose(0, 2, 1)
            d = a - bt
            worst = max(worst, float(np.abs(d).max(initial=0.0)))
            sq += float((d * d).sum()) / (2 if b_ids is None else 1)  # on-site: each pair of elements counted twice
            cnt += d.size // (2 if b_ids is None else 1)
            avg = 0.5 * (a + bt)
            blocks.data[ia] = avg.reshape(-1, size)
            blocks.data[ib] = avg.transpose(0, 2, 1).reshape(-1, size)
    return worst, sq, cnt

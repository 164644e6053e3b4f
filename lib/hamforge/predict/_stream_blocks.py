"""Block arithmetic of the streamed prediction's second sweep: symmetrization with its asymmetry statistics,
transposes, the pair key that orders Gamma sums, and exact S rows in each pair's canonical orientation."""

from __future__ import annotations

import numpy as np

from hamforge.predict._infer import ranges

__all__ = ["Asymmetry", "onsite", "overlap_rows", "pair_key", "symmetrize"]


class Asymmetry:
    """Running max / RMS of the asymmetry removed by symmetrization (the provenance's keys)."""

    def __init__(self):
        self.e_max = self.e_sq = self.n_max = self.n_sq = self.max_abs = 0.0
        self.e_cnt = self.n_cnt = 0

    def report(self) -> dict:
        return {
            "edge_asymmetry_max": self.e_max,
            "edge_asymmetry_rms": float(np.sqrt(self.e_sq / max(self.e_cnt, 1))),
            "onsite_asymmetry_max": self.n_max,
            "onsite_asymmetry_rms": float(np.sqrt(self.n_sq / max(self.n_cnt, 1))),
            "max_abs": self.max_abs,
        }


def pair_key(i, j, img, n, k):
    """int64 key ordering edges ``(i, j, R)`` lexicographically; a pair's key is the smaller of its two
    orientations' (the in-memory prediction's ``min(e, rev(e))`` order for the Gamma sums)."""
    return np.minimum(i * (n * k) + j * k + img, j * (n * k) + i * k + (k - 1 - img))


def _by_shape(rows, cols):
    """Per distinct block shape ``(r, c)``: ``(r, c, sel, idx)``: the blocks of that shape and the (len(sel), r c)
    positions of their elements in the flat row-major concatenation of blocks ``rows[k] x cols[k]``."""
    off = np.concatenate([[0], np.cumsum(rows * cols)])
    keys = rows * (1 << 20) + cols
    for key in np.unique(keys).tolist():
        r, c = divmod(int(key), 1 << 20)
        sel = np.flatnonzero(keys == key)
        yield r, c, sel, off[sel][:, None] + np.arange(r * c)


def symmetrize(a_data, b_data, rows, cols, acc: Asymmetry, count):
    """``(A + B^T) / 2`` of flat blocks ``A`` (rows x cols, row-major) and ``B`` (cols x rows); ``count`` marks
    the blocks whose asymmetry enters ``acc`` (one per pair)."""
    out = np.empty_like(a_data)
    for r, c, sel, idx in _by_shape(rows, cols):
        a = a_data[idx].reshape(-1, r, c)
        bt = b_data[idx].reshape(-1, c, r).transpose(0, 2, 1)
        out[idx] = (0.5 * (a + bt)).reshape(-1, r * c)
        d = (a - bt)[count[sel]]
        acc.e_max = max(acc.e_max, float(np.abs(d).max(initial=0.0)))
        acc.e_sq += float((d * d).sum())
        acc.e_cnt += d.size
        acc.max_abs = max(acc.max_abs, float(np.abs(a).max(initial=0.0)))
    return out


def _transpose_blocks(data, rows, cols):
    """Flat blocks ``rows x cols`` -> their transposes (flat ``cols x rows``)."""
    out = np.empty_like(data)
    for r, c, _, idx in _by_shape(rows, cols):
        out[idx] = data[idx].reshape(-1, r, c).transpose(0, 2, 1).reshape(-1, r * c)
    return out


def onsite(data, n_orb_atoms, acc: Asymmetry):
    """``(A + A^T) / 2`` of on-site blocks, their asymmetry into ``acc`` (each pair of elements once)."""
    sizes = n_orb_atoms * n_orb_atoms
    off = np.concatenate([[0], np.cumsum(sizes)])
    out = np.empty_like(data)
    for m in np.unique(n_orb_atoms).tolist():
        sel = np.flatnonzero(n_orb_atoms == m)
        idx = off[sel][:, None] + np.arange(m * m)
        a = data[idx].reshape(-1, m, m)
        at = a.transpose(0, 2, 1)
        d = a - at
        acc.n_max = max(acc.n_max, float(np.abs(d).max(initial=0.0)))
        acc.n_sq += float((d * d).sum()) / 2
        acc.n_cnt += d.size // 2
        acc.max_abs = max(acc.max_abs, float(np.abs(a).max(initial=0.0)))
        out[idx] = (0.5 * (a + at)).reshape(-1, m * m)
    return out


def overlap_rows(overlaps, es, img, key, n, kc, n_orb):
    """Flat S blocks of the edges ``es`` (in order), each computed in the pair's canonical orientation (the one
    whose ``(i, j, R)`` is the smaller), the others transposed from it."""
    canon = es.i * (n * kc) + es.j * kc + img == key
    out = np.empty(int((n_orb[es.i] * n_orb[es.j]).sum()))
    sizes = n_orb[es.i] * n_orb[es.j]
    off = np.concatenate([[0], np.cumsum(sizes)])
    c = np.flatnonzero(canon)
    out[ranges(off[c], sizes[c])] = overlaps.edge_blocks(es.i[c], es.j[c], es.shift[c])
    r = np.flatnonzero(~canon)
    if r.size:
        rev = overlaps.edge_blocks(es.j[r], es.i[r], -es.shift[r])
        out[ranges(off[r], sizes[r])] = _transpose_blocks(rev, n_orb[es.j[r]], n_orb[es.i[r]])
    return out

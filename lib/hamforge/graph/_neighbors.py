"""Periodic neighbour search with explicit lattice-image shifts.

Edge convention (``docs/conventions.md``): an edge ``(i, j, R)`` joins the centre atom ``i`` (block row,
message receiver) and the neighbour atom ``j`` in lattice image ``R`` (block column, message source),

    vec = x_j + R @ cell - x_i,        dist = |vec|,

with ``x`` the positions exactly as given (not wrapped) and the rows of ``cell`` the lattice vectors.
Every ``(i, j, R)`` with ``0 < dist <= r_cut`` is an edge (the cutoff is **inclusive**, decided on the
float64 ``dist`` computed by that formula, no tolerance); self-images ``(i, i, R != 0)`` are edges,
``(i, i, 0)`` is the node and never an edge. Along a non-periodic axis ``R`` is 0 and that cell vector
is never used (it may be zero). Edges are sorted lexicographically by ``(i, j, R[0], R[1], R[2])``.

Algorithm: positions are wrapped into the periodic cell (integer offsets ``w``, so nothing depends on
whether input positions lie inside it), every atom is replicated into all images that lie within
``r_cut`` of the cell measured in perpendicular heights (which covers cells thinner than ``r_cut``),
a k-d tree over that padded set is queried chunk by chunk of centre atoms with a slightly enlarged
radius, and the integer shift is recovered as ``R = (w_j + s) - w_i`` (``s`` the image of the padded
copy). The tree distance decides a hit unless it lies within a tiny slack (1e-8 of the coordinate
scale, far above its rounding error) of 0 or ``r_cut``; those hits are decided by the exact rule on
``dist`` recomputed from the original positions, so the result is exactly the rule above. ``vec`` and
``dist`` are always computed by that formula, element-wise in a fixed order. Peak memory is the output
(72 bytes per edge) plus 4 bytes per edge (padded-copy index) plus one chunk of tree hits.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from hamforge._errors import HamforgeError
from hamforge.geometry import NeighborList, check_cell, check_positions, completed_cell, frozen_neighbor_list

logger = logging.getLogger(__name__)

# Bytes per edge of a NeighborList: edge_index (2 int64), shift (3 int64), vec (3 float64), dist (float64).
_BYTES_PER_EDGE = 72
# Environment variable with the memory budget (GB) above which a neighbour list is warned about.
MEMORY_BUDGET_ENV = "HAMFORGE_MEMORY_BUDGET_GB"

__all__ = ["MemoryBudgetError", "NeighborList", "neighbor_list", "reverse_edge_index"]

# Candidate pairs (tree hits) per chunk of centre atoms: bounds the temporaries to ~100-200 MB.
_PAIRS_PER_CHUNK = 1 << 20
_FIRST_CHUNK_ATOMS = 64
# Slack of the candidate search relative to the coordinate scale; hits closer than that to the cutoff
# (or to 0) are decided by the exact rule on the recomputed float64 ``dist``.
_SEARCH_SLACK = 1e-8


def neighbor_list(positions, cell, pbc, r_cut: float) -> NeighborList:
    """Periodic neighbour list with image shifts, sorted by ``(i, j, R)``.

    Args:
        positions: ``(N, 3)`` Cartesian positions in Angstrom, anywhere in space (wrapping is internal;
            ``vec`` refers to the positions as given).
        cell: ``(3, 3)`` rows are lattice vectors. Rows of non-periodic axes are ignored (may be zero);
            the rows of periodic axes must be linearly independent.
        pbc: ``(3,)`` bool (a single bool is broadcast).
        r_cut: cutoff in Angstrom, ``> 0``, inclusive.

    Returns:
        :class:`NeighborList`.

    Raises:
        ValueError: bad shapes, non-finite values, ``r_cut <= 0``, a singular cell along periodic axes,
            or two distinct atoms (or an atom and its image) at distance 0.
    """
    from scipy.spatial import cKDTree

    x, cell, pbc, r_cut = _check_inputs(positions, cell, pbc, r_cut)
    n = x.shape[0]
    if n == 0:
        return frozen_neighbor_list(
            np.zeros((2, 0), np.int64),
            np.zeros((0, 3), np.int64),
            np.zeros((0, 3)),
            np.zeros((0,)),
            0,
            r_cut,
            cell,
            pbc,
        )

    full = completed_cell(cell, pbc)
    _warn_if_large(x, full, pbc, r_cut)
    inv = np.linalg.inv(full)
    heights = 1.0 / np.linalg.norm(inv.T, axis=1)  # distance between lattice planes per axis
    frac = x @ inv
    wrap = np.where(pbc, -np.floor(frac), 0.0).astype(np.int64)  # (N, 3) | x + wrap @ cell lies in the cell
    xw = x + wrap.astype(np.float64) @ cell
    reach = np.where(pbc, r_cut * (1.0 + _SEARCH_SLACK) / heights + _SEARCH_SLACK, 0.0)
    pad_atom, pad_off = _padded_images(frac + wrap, pbc, reach)
    pad_off += wrap[pad_atom]  # (M, 3) | copy M lies at x[pad_atom] + pad_off @ cell (unwrapped positions)
    tree = cKDTree(x[pad_atom] + pad_off.astype(np.float64) @ cell)
    n_pad = pad_atom.shape[0]
    geo = _Geometry(
        np.ascontiguousarray(x.T), cell, np.ascontiguousarray(wrap.T), pad_atom, np.ascontiguousarray(pad_off.T)
    )
    del pad_off

    # Coordinates entering the tree distances are at most `scale` in size; their rounding errors are
    # ~1e-16 * scale, so `slack` bounds |tree distance - exact dist| with a wide margin.
    scale = (
        r_cut
        + float(np.abs(x).max())
        + float(np.abs(xw).max())
        + float(np.abs(cell[pbc]).sum()) * float(reach.max() + 1.0)
    )
    slack = _SEARCH_SLACK * scale
    r_search = r_cut + slack
    p_dtype = np.int32 if n_pad <= np.iinfo(np.int32).max else np.int64
    p_bits = max(int(n_pad - 1).bit_length(), 1)
    p_mask = (1 << p_bits) - 1
    if (n << p_bits) >= 2**63:
        raise ValueError(f"positions: {n} atoms with {n_pad} periodic copies exceed the int64 index range")

    # Per chunk of centres keep only the sorted padded indices p of the accepted hits (4 bytes per edge)
    # and the number of edges per centre. Padded copies are ordered by atom j, then image
    # lexicographically, and R = pad_off[p] - wrap[i], so for a fixed centre i ascending p is ascending
    # (j, R): sorting by (i, p) is sorting by (i, j, R).
    chunk_p, chunk_counts = [], []
    start, size = 0, min(n, _FIRST_CHUNK_ATOMS)
    while start < n:
        stop = min(n, start + size)
        hits = cKDTree(xw[start:stop]).sparse_distance_matrix(tree, r_search, output_type="ndarray")
        n_hits = hits.shape[0]
        key = hits["i"].astype(np.int64)  # centre within the chunk, then padded copy, in one int64
        key <<= p_bits
        key |= hits["j"]
        # The tree distance differs from the exact dist by far less than `slack`: it decides alone
        # unless it lies within `slack` of 0 or of r_cut; those few hits get the exact rule.
        keep = (hits["v"] > slack) & (hits["v"] < r_cut - slack)
        del hits
        unsure = np.flatnonzero(~keep)
        ci, p = (key[unsure] >> p_bits) + start, key[unsure] & p_mask
        j, shift, _, dist = geo.edges(ci, p)
        self_node = (j == ci) & ~np.any(shift, axis=0)
        coincide = np.flatnonzero((dist == 0.0) & ~self_node)
        if coincide.size:
            k = int(coincide[0])
            raise ValueError(
                f"positions: atom {int(ci[k])} and atom {int(j[k])} in image "
                f"{[int(s[k]) for s in shift]} coincide (distance 0)"
            )
        keep[unsure] = (dist > 0.0) & (dist <= r_cut)
        del unsure, ci, p, j, shift, dist, self_node
        key = key[keep]
        del keep
        key.sort()
        chunk_counts.append(np.bincount(key >> p_bits, minlength=stop - start))
        key &= p_mask
        chunk_p.append(key.astype(p_dtype))
        del key
        size = int(np.clip(_PAIRS_PER_CHUNK * (stop - start) // max(n_hits, 1), 1, n))
        start = stop
    del tree

    counts = np.concatenate(chunk_counts)
    n_edges = int(counts.sum())
    edge_index = np.empty((2, n_edges), np.int64)
    edge_index[0] = np.repeat(np.arange(n, dtype=np.int64), counts)
    shift = np.empty((n_edges, 3), np.int64)
    vec = np.empty((n_edges, 3), np.float64)
    dist = np.empty((n_edges,), np.float64)
    pos = 0
    chunk_p.reverse()
    while chunk_p:
        p = chunk_p.pop()  # release each compact chunk once expanded
        sl = slice(pos, pos + p.shape[0])
        j, s, v, dist[sl] = geo.edges(edge_index[0, sl], p)
        edge_index[1, sl] = j
        for k in range(3):
            shift[sl, k] = s[k]
            vec[sl, k] = v[k]
        pos = sl.stop
    if edge_index.shape[1] == 0:
        logger.warning(
            "r_cut %g Angstrom gives no edges for %d atoms: no atom has a neighbour within it (every off-site "
            "block is left out); is r_cut in Angstrom?",
            r_cut,
            n,
        )
    return frozen_neighbor_list(edge_index, shift, vec, dist, n, r_cut, cell, pbc)


def memory_budget_bytes() -> float:
    """The budget above which :func:`neighbor_list` warns: ``$HAMFORGE_MEMORY_BUDGET_GB`` (GB) if set, else half
    of this machine's physical memory."""
    text = os.environ.get(MEMORY_BUDGET_ENV)
    if text:
        try:
            gb = float(text)
        except ValueError:
            raise ValueError(f"{MEMORY_BUDGET_ENV}: expected a number of GB, got {text!r}") from None
        if not gb > 0:
            raise ValueError(f"{MEMORY_BUDGET_ENV}: expected a number of GB > 0, got {text!r}")
        return gb * 1e9
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return math.inf


class MemoryBudgetError(ValueError, HamforgeError):
    """A neighbour list (and the blocks on it) would exceed the memory budget: refused before allocating."""


def _warn_if_large(x, full, pbc, r_cut) -> None:
    """Refuse before the search when the expected edge list (mean density x sphere volume) exceeds the budget."""
    n = x.shape[0]
    span = np.where(pbc, 0.0, np.ptp(x @ np.linalg.inv(full), axis=0) if n else 0.0)
    # volume: the cell along periodic axes, the atoms' extent (at least r_cut) along open ones
    lengths = np.linalg.norm(full, axis=1)
    factors = np.where(pbc, 1.0, np.maximum(span, r_cut / np.maximum(lengths, 1e-300)))
    volume = abs(float(np.linalg.det(full))) * float(np.prod(factors))
    expected = n * min(n / max(volume, 1e-300) * 4.0 / 3.0 * math.pi * r_cut**3, 1e12)
    budget = memory_budget_bytes()
    if expected * _BYTES_PER_EDGE > budget:
        raise MemoryBudgetError(
            f"r_cut {r_cut:g} Angstrom: ~{expected:.3g} edges expected for {n} atoms, ~"
            f"{expected * _BYTES_PER_EDGE / 1e9:.1f} GB for the neighbour list alone (and more for the blocks on "
            f"it), above the memory budget of {budget / 1e9:.1f} GB; refused before allocating. Set "
            f"{MEMORY_BUDGET_ENV} (GB) to allow more, or use a path with bounded memory (hamforge predict streams "
            "its parts)"
        )


@dataclass(frozen=True)
class _Geometry:
    """Component-wise (structure-of-arrays) data for the exact edge geometry of tree hits."""

    xT: np.ndarray  # (3, N) float64 | positions as given
    cell: np.ndarray  # (3, 3)
    wrapT: np.ndarray  # (3, N) int64 | wrap offsets: x + wrap @ cell lies in the cell
    pad_atom: np.ndarray  # (M,) int64 | atom of each padded copy
    pad_offT: np.ndarray  # (3, M) int64 | copy at x + pad_off @ cell

    def edges(self, i, p):
        """``j (E,)``, ``R`` (3 x (E,) int64), ``vec`` (3 x (E,) float64), ``dist (E,)`` of hits (i, p)."""
        j = self.pad_atom[p]
        shift = [self.pad_offT[k][p] - self.wrapT[k][i] for k in range(3)]
        vec, dist = edge_geometry(self.xT, self.cell, i, j, shift)
        return j, shift, vec, dist


def edge_geometry(xT, cell, i, j, shift) -> tuple[list, np.ndarray]:
    """``vec`` (3 x (E,) float64) and ``dist (E,)`` of edges ``(i, j, R)`` (``shift``: 3 x (E,) int64,
    ``xT``: (3, N) positions as given).

    ``vec = (x_j + (R0 a0 + R1 a1) + R2 a2) - x_i`` component by component: element-wise only, in a fixed
    order (no BLAS, whose summation order may depend on array sizes), so every search that uses this
    function (the cutoff decision and the stored ``dist``) gives bit-identical results.
    """
    sf = [np.asarray(s).astype(np.float64) for s in shift]
    vec = []
    for k in range(3):
        v = sf[0] * cell[0, k]
        v += sf[1] * cell[1, k]
        v += sf[2] * cell[2, k]
        v += xT[k][j]
        v -= xT[k][i]
        vec.append(v)
    dist = vec[0] * vec[0]
    dist += vec[1] * vec[1]
    dist += vec[2] * vec[2]
    np.sqrt(dist, out=dist)
    return vec, dist


def reverse_edge_index(nl: NeighborList) -> np.ndarray:
    """``(E,)`` int64: for every edge ``(i, j, R)`` the index of its reverse edge ``(j, i, -R)``.

    The reverse edge carries the transposed block and ``-vec``. Requires the sorted, symmetric edge set
    that :func:`neighbor_list` returns; raises ValueError otherwise.
    """
    return _reverse_permutation(nl.edge_index[0], nl.edge_index[1], nl.shift, nl.n_atoms)


def _reverse_permutation(i, j, shift, n_atoms, method="auto"):
    """Reverse-edge permutation; ``method``: "auto", or force "packed", "argsort" or "lexsort" (tests)."""
    e = i.shape[0]
    if e == 0:
        return np.zeros((0,), np.int64)
    # Sorting the reversed tuples (j, i, -R) lexicographically gives the sorted edge list again (the set
    # is closed under reversal), so position k of that order is edge k. Fastest: one int64 sort of the
    # reversed tuple's key and the edge id packed together; then argsort of the key; then np.lexsort.
    bound = np.abs(shift).max(axis=0)
    key_range = int(n_atoms) ** 2 * int((2 * bound + 1).prod())  # Python ints: no overflow here
    bits = max(int(e - 1).bit_length(), 1)
    if method == "auto":
        method = "packed" if key_range << bits < 2**63 else "argsort" if key_range < 2**63 else "lexsort"
    if method == "lexsort":
        order = np.lexsort((-shift[:, 2], -shift[:, 1], -shift[:, 0], i, j))
        ok = np.array_equal(j[order], i) and np.array_equal(i[order], j) and np.array_equal(-shift[order], shift)
    else:
        key = _tuple_key(i, j, shift, n_atoms, bound)
        if not np.all(key[1:] > key[:-1]):
            raise ValueError("nl: edges are not sorted by (i, j, R) or contain duplicates")
        rkey = _tuple_key(j, i, -shift, n_atoms, bound)
        if method == "packed":
            rkey <<= bits
            rkey |= np.arange(e, dtype=np.int64)
            rkey.sort()
            ok = np.array_equal(rkey >> bits, key)
            order = rkey & ((1 << bits) - 1)
        else:
            order = np.argsort(rkey)
            ok = np.array_equal(rkey[order], key)
    if not ok:
        raise ValueError("nl: edge set is not closed under (i, j, R) -> (j, i, -R) or not sorted by (i, j, R)")
    rev = np.empty(e, np.int64)
    rev[order] = np.arange(e, dtype=np.int64)
    return rev


def _tuple_key(i, j, shift, n_atoms, bound):
    """int64 key increasing lexicographically with ``(i, j, R)`` for ``|R_k| <= bound[k]``."""
    spans = 2 * bound + 1
    key = np.asarray(i, np.int64) * n_atoms + j
    for k in range(3):
        key *= spans[k]
        key += shift[:, k] + bound[k]
    return key


def _padded_images(fw, pbc, reach):
    """Copies of every atom in all images near the cell, ordered by atom, then image lexicographically.

    A neighbour within r_cut of a centre differs from it by at most r_cut / height in every periodic
    fractional coordinate, so copies whose fractional coordinates lie within ``reach`` (fractional
    units, (3,)) of the range spanned by the wrapped atoms ``fw`` (N, 3) suffice.

    Returns ``pad_atom (M,) int64`` (original atom) and ``pad_off (M, 3) int64`` (image offset of the
    copy relative to the wrapped position).
    """
    n = fw.shape[0]
    lo = np.where(pbc, fw.min(axis=0) - reach, 0.0)
    hi = np.where(pbc, fw.max(axis=0) + reach, 0.0)
    n_lo = np.where(pbc, np.ceil(lo - fw), 0).astype(np.int64)  # (N, 3)
    n_hi = np.where(pbc, np.floor(hi - fw), 0).astype(np.int64)
    count = np.maximum(n_hi - n_lo + 1, 0)
    per_atom = count.prod(axis=1)
    pad_atom = np.repeat(np.arange(n, dtype=np.int64), per_atom)
    t = np.arange(pad_atom.shape[0], dtype=np.int64) - np.repeat(np.cumsum(per_atom) - per_atom, per_atom)
    c1, c2 = count[pad_atom, 1], count[pad_atom, 2]
    pad_off = n_lo[pad_atom]
    pad_off[:, 0] += t // (c1 * c2)
    pad_off[:, 1] += (t // c2) % c1
    pad_off[:, 2] += t % c2
    return pad_atom, pad_off


# ----------------------------------------------------------------------------------------------------
def _check_inputs(positions, cell, pbc, r_cut):
    x = check_positions(positions, "positions")
    c, p = check_cell(cell, pbc)
    try:
        r = float(r_cut)
    except (TypeError, ValueError):
        raise ValueError(f"r_cut: expected a number, got {r_cut!r}") from None
    if not np.isfinite(r) or r <= 0.0:
        raise ValueError(f"r_cut: must be finite and > 0, got {r_cut!r}")
    return x, c, p, r

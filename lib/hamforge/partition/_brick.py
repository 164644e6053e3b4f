"""Brick-wall partitioning: slabs, staggered columns, staggered bricks (fewer neighbouring parts than Low-NN).

Why. Low-NN's aligned recursive cuts make the parts a grid: a part touches every part of its 3 x 3 x 3
block (26 in 3D) and more when parts are thinner than ``r_cut``. Shifting the cuts of one slab against
those of the next (a brick wall) lets a part touch fewer parts of the next slab; thin columns or slabs
can do better still when parts are not much larger than ``r_cut``. Which layout is best depends on the
cell, ``r_cut`` and ``n_parts``, so this module models the candidates and builds the best one.

Layout. Three levels along three different lattice axes ``(a0, a1, a2)`` with counts ``(nx, ny, nz)``,
``nx * ny * nz = n_parts``: ``nx`` slabs along ``a0``; every slab is cut into ``ny`` columns along ``a1``;
every column into ``nz`` bricks along ``a2``. In fractions of the extent (the period along a periodic
axis, the atoms' span along an open one), part ``(i, j, k)`` starts at::

    a0: i / nx        a1: (j + i * sy) / ny        a2: (k + i * s1 + j * s2) / nz

so the columns of slab ``i + 1`` are shifted by ``sy`` columns against those of slab ``i``, and bricks by
``s1`` bricks per slab and ``s2`` per column. Shifts are only used along periodic axes (an open axis has no
freedom: its pieces tile the atoms' span), and they are multiples that close around the period (e.g.
``nx * sy`` integer when ``a0`` is periodic), so every part has the same surroundings, the first and last
slab included: along periodic axes they are neighbours.

Model (choosing the layout). Parts are boxes in the lattice-plane frame, sizes = extent / count. Two parts
are neighbours when their gap, ``sqrt(gap_0^2 + gap_1^2 + gap_2^2)`` with per-axis gaps perpendicular to
the lattice planes (minimum image along periodic axes), is below ``r_cut``. The layout is a lattice, so
the mean over parts is one part's count over all offsets (along an open axis an offset ``d`` of ``n``
pieces exists for a fraction ``(n - |d|) / n`` of the parts). Candidates: every ordered factorization
``(n_0, n_1, n_2)`` of ``n_parts`` over the cell axes; for the twelve with the fewest aligned neighbours,
every order of the three levels and the shifts ``{0, 1/2, 1/3, 1/4}`` (rounded to the closing multiples).
The fewest modelled mean neighbours wins; ties go to the smaller modelled halo
``prod_k (size_k + 2 r_cut) / size_k``, then to fewer shifts, then to the first candidate (deterministic).
The model is exact for uniform density in an orthogonal cell; in a triclinic cell it is approximate.

Cuts (building the layout). Like Low-NN, every cut is a lattice plane placed where the cumulative weight
(default: node degree = edges owned) of the atoms sorted along the axis reaches its target, so parts own
equal numbers of edges (every part within a few maximal degrees of the mean) whatever the density; each
piece keeps at least as many atoms as parts it holds. A shifted level starts at the modelled position
(fraction ``frac(i * sy) / ny`` of the period for slab ``i``) and its pieces follow around the period by
weight. Cost: one sort per slab and column, ``O(N log N)`` per level; no per-atom Python loops.

Part ids: slab-major, ``(i * ny + j) * nz + k``, so neighbouring ids are neighbouring in space.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.partition._checks import check_n_parts, check_nl, finish
from hamforge.partition._geometry import frame
from hamforge.partition._lownn import balance_weights

__all__ = ["BrickLayout", "partition_brick", "plan_brick"]

_SHIFTS = (0.0, 1 / 2, 1 / 3, 1 / 4)  # staggers tried per level (mirror images 1 - s model the same)
_KEEP = 12  # factorizations (by aligned neighbours) whose level orders and shifts are searched


@dataclass(frozen=True)
class BrickLayout:
    """The chosen layout (module docstring): levels along ``axes`` with ``counts`` and ``shifts``."""

    axes: tuple[int, int, int]  # lattice axes of the slab, column and brick levels
    counts: tuple[int, int, int]  # nx slabs, ny columns per slab, nz bricks per column
    shifts: tuple[float, float, float]  # sy (columns per slab), s1 (bricks per slab), s2 (bricks per column)
    neighbours: float  # modelled mean number of neighbouring parts
    halo: float  # modelled halo: prod_k (size_k + 2 r_cut) / size_k


def _factorizations(n: int) -> list[tuple[int, int, int]]:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return [(a, b, n // (a * b)) for a in divisors for b in divisors if (n // a) % b == 0]


def _gap(pos: np.ndarray, n: int, periodic: bool, length: float) -> np.ndarray:
    """Gap (Angstrom) between piece [0, 1/n) and pieces starting at fractions ``pos``, same size."""
    size = 1.0 / n
    if periodic:
        d = np.mod(pos, 1.0)
        g = np.minimum(d - size, 1.0 - d - size)
    else:
        g = np.abs(pos) - size
    return np.maximum(g, 0.0) * length


def _model(axes, counts, shifts: np.ndarray, extent: np.ndarray, pbc: np.ndarray, r_cut: float) -> np.ndarray:
    """Modelled mean neighbours (C,) of the layouts ``axes``/``counts`` with ``shifts`` (C, 3)."""
    per = [bool(pbc[a]) for a in axes]
    ranges, weights = [], []
    for n, p in zip(counts, per):
        d = np.arange(n) if p else np.arange(-(n - 1), n)
        ranges.append(d.astype(np.float64))
        weights.append(np.ones(n) if p else (n - np.abs(d)) / n)
    di, dj, dk = (g.ravel() for g in np.meshgrid(*ranges, indexing="ij"))
    w = np.einsum("i,j,k->ijk", *weights).ravel()
    sy, s1, s2 = (shifts[:, c : c + 1] for c in range(3))
    nx, ny, nz = counts
    g2 = _gap(di / nx, nx, per[0], extent[axes[0]]) ** 2
    g2 = g2 + _gap((dj + di * sy) / ny, ny, per[1], extent[axes[1]]) ** 2
    g2 = g2 + _gap((dk + di * s1 + dj * s2) / nz, nz, per[2], extent[axes[2]]) ** 2
    return ((g2 < r_cut * r_cut) * w).sum(axis=-1) - 1.0


def _shift_candidates(axes, counts, pbc) -> np.ndarray:
    """(C, 3) shifts (sy, s1, s2) for one level order; multiples that close around periodic axes."""
    nx, ny, nz = counts
    p0, p1, p2 = (bool(pbc[a]) for a in axes)

    def closing(f, n, periodic_outer, offset=0.0):
        return (round(f * n - offset) + offset) / n if periodic_outer else f

    sys_ = [0.0] if nx == 1 or ny == 1 or not p1 else sorted({closing(f, nx, p0) % 1.0 for f in _SHIFTS})
    s2s = [0.0] if ny == 1 or nz == 1 or not p2 else sorted({closing(f, ny, p1) % 1.0 for f in _SHIFTS})
    out = set()
    for sy, s2 in itertools.product(sys_, s2s):
        if nx == 1 or nz == 1 or not p2:
            out.add((sy, 0.0, s2))
            continue
        c = round(nx * sy) * s2 if p0 else 0.0  # slab nx wraps to slab 0 shifted by nx * sy columns
        for f in _SHIFTS:
            out.add((sy, closing(f, nx, p0, c) % 1.0, s2))
    return np.array(sorted(out), dtype=np.float64)


def plan_brick(extent, pbc, r_cut: float, n_parts: int) -> BrickLayout:
    """Best modelled layout (module docstring) for a cell of ``extent`` (3,) Angstrom and ``pbc`` (3,).

    ``extent``: perpendicular height along periodic axes, the atoms' span along open ones.
    """
    extent = np.asarray(extent, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    r_cut = float(r_cut)

    def halo(counts_by_axis):
        size = np.maximum(extent / np.asarray(counts_by_axis, dtype=np.float64), 1e-9)
        return float(np.prod((size + 2.0 * r_cut) / size))

    zero = np.zeros((1, 3))
    facts = _factorizations(n_parts)
    aligned = [(float(_model((0, 1, 2), f, zero, extent, pbc, r_cut)[0]), halo(f), f) for f in facts]
    aligned.sort(key=lambda t: (round(t[0], 9), round(t[1], 9)))
    best, best_key, seen = None, None, set()
    for _, h, f in aligned[:_KEEP]:
        for axes in itertools.permutations(range(3)):
            counts = tuple(f[a] for a in axes)
            levels = tuple((a, n) for a, n in zip(axes, counts) if n > 1)  # a level of 1 piece is no level
            if levels in seen:
                continue
            seen.add(levels)
            shifts = _shift_candidates(axes, counts, pbc)
            nb = _model(axes, counts, shifts, extent, pbc, r_cut)
            for c in range(shifts.shape[0]):
                key = (round(float(nb[c]), 9), round(h, 9), int(np.count_nonzero(shifts[c])))
                if best_key is None or key < best_key:
                    best_key = key
                    best = BrickLayout(
                        axes=tuple(int(a) for a in axes),
                        counts=counts,
                        shifts=tuple(float(s) for s in shifts[c]),
                        neighbours=float(nb[c]),
                        halo=h,
                    )
    return best


def _pieces(idx: np.ndarray, f: np.ndarray, w: np.ndarray, n: int, start: float, min_atoms: int):
    """Sort atoms ``idx`` along fractional coordinate ``f`` (of all atoms) from ``start`` (around the
    period when ``start > 0``) and cut into ``n`` pieces of equal weight, each >= ``min_atoms`` atoms.

    Returns ``(sorted atom ids, piece id of each)``.
    """
    key = f[idx]
    if start > 0.0:
        key = np.where(key >= start, key - start, key - start + 1.0)
    s = idx[np.lexsort((idx, key))]
    m_atoms = s.shape[0]
    if n == 1:
        return s, np.zeros(m_atoms, dtype=np.int64)
    c = np.concatenate([[0.0], np.cumsum(w[s])])
    if c[-1] <= 0.0:
        c = np.arange(m_atoms + 1, dtype=np.float64)
    t = c[-1] * np.arange(1, n) / n
    k = np.searchsorted(c, t)  # c[k - 1] < t <= c[k]
    k = np.clip(k, 1, m_atoms)
    m = np.where(c[k] - t <= t - c[k - 1], k, k - 1)  # boundary nearest to the target
    j = np.arange(1, n) * min_atoms
    m = np.maximum.accumulate(np.maximum(m - j, 0)) + j  # pieces of >= min_atoms atoms, left to right
    m = np.minimum(m, m_atoms - j[::-1])  # and from the right
    return s, np.repeat(np.arange(n, dtype=np.int64), np.diff(np.concatenate([[0], m, [m_atoms]])))


def partition_brick(
    nl: NeighborList, positions, n_parts: int, *, weights=None, layout: BrickLayout | None = None
) -> np.ndarray:
    """Brick-wall partition (module docstring): slabs, staggered columns, staggered bricks.

    Args:
        nl: neighbour list (cell, pbc, r_cut, and the degrees used as weights).
        positions: ``(N, 3)`` Cartesian positions, Angstrom.
        n_parts: number of parts; layouts factor it as ``nx * ny * nz`` (a prime gives slabs).
        weights: optional ``(N,)`` non-negative per-atom cost to balance instead of the node degree.
        layout: a :class:`BrickLayout` to build instead of the modelled best (:func:`plan_brick`).

    Returns:
        ``(N,)`` int64 part ids in ``0 .. n_parts - 1``, every part non-empty.
    """
    nl = check_nl(nl)
    n_parts = check_n_parts(n_parts, nl.n_atoms)
    fr = frame(nl, positions)
    w = balance_weights(nl, weights)
    everyone = np.arange(nl.n_atoms, dtype=np.int64)
    if layout is None:
        extent = [fr.extent(everyone, k, bool(fr.pbc[k])) for k in range(3)]
        layout = plan_brick(extent, fr.pbc, nl.r_cut, n_parts)
    elif not isinstance(layout, BrickLayout) or math.prod(layout.counts) != n_parts:
        raise ValueError(f"layout: expected a BrickLayout with counts multiplying to {n_parts}, got {layout!r}")
    (a0, a1, a2), (nx, ny, nz), (sy, s1, s2) = layout.axes, layout.counts, layout.shifts
    p1, p2 = bool(fr.pbc[a1]), bool(fr.pbc[a2])
    out = np.empty(nl.n_atoms, dtype=np.int64)
    s, slab = _pieces(everyone, fr.frac[:, a0], w, nx, 0.0, ny * nz)
    bounds = np.searchsorted(slab, np.arange(nx + 1))
    for i in range(nx):
        start_y = (i * sy % 1.0) / ny if p1 else 0.0
        sc, col = _pieces(s[bounds[i] : bounds[i + 1]], fr.frac[:, a1], w, ny, start_y, nz)
        cb = np.searchsorted(col, np.arange(ny + 1))
        for q in range(ny):
            j = q - math.floor(i * sy) if p1 else q  # column index of the layout (piece q starts at j + i sy)
            start_z = ((i * s1 + j * s2) % 1.0) / nz if p2 else 0.0
            sb, brick = _pieces(sc[cb[q] : cb[q + 1]], fr.frac[:, a2], w, nz, start_z, 1)
            out[sb] = (i * ny + q) * nz + brick
    return finish(out, n_parts, "brick")

"""Trajectory decorrelation: equilibration detection and distance-based snapshot selection.

The method follows MALA's trajectory analyser (SCIENCE.md section 7), done correctly under periodic
boundary conditions:

1. Equilibration. ``d_t = 1 - cos(g_t, g_last)`` with ``g_t`` the radial distribution function of
   frame ``t`` (:func:`rdf`). The signal is smoothed with a centred moving average of width ``window``
   (:func:`moving_average`); the threshold is the mean of the smoothed signal over the final
   ``final_fraction`` of the frames; the first equilibrated frame is the one at which the smoothed signal has
   stayed below the threshold for ``patience`` consecutive frames (:func:`find_equilibration`).
2. Cutoff. ``D(centre, t)`` (:func:`snapshot_distance`) for the ``centre_frames`` frames nearest to the
   middle of the equilibrated part; ``cutoff = mean - z_score * std``.
3. Greedy pass from the first equilibrated frame: a frame is a candidate when its distance to the last
   candidate exceeds the cutoff (and its temperature is within the tolerance, when one is set). When
   there are more candidates than ``n_snapshots``, ``n_snapshots`` of them are drawn with
   ``numpy.random.default_rng(seed)``.

Conventions: lengths in Angstrom, ``cell`` rows are lattice vectors, ``pbc`` is a (3,) bool array, a
periodic image of atom ``j`` sits at ``x_j + R @ cell`` (docs/conventions.md). Every distance here is a
minimum-image distance over all lattice translations along the periodic axes (exact for triclinic cells,
not the rounded-fractional-coordinate shortcut that fails for skewed cells). Neighbour searches use
``scipy.spatial.cKDTree`` on the atoms plus the periodic images that lie within a margin of the cell:
``O(N log N)`` time and ``O(N)`` memory, never an ``N x N`` array.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from hamforge.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "DecorrelationError",
    "DecorrelationResult",
    "DecorrelationSettings",
    "decorrelate",
    "decorrelate_trajectory",
    "equilibration_signal",
    "find_equilibration",
    "moving_average",
    "rdf",
    "snapshot_distance",
]

# Pairs closer than this (Angstrom) are an atom and itself in the RDF (self pairs are not counted).
_SELF_PAIR_TOL = 1e-8
# Atoms per block in the RDF pair search (bounds the pair-distance temporaries to ~block * neighbours).
_RDF_BLOCK = 10_000
# Refuse neighbour searches that would replicate more than this many periodic images of atoms.
_MAX_IMAGE_POINTS = 50_000_000
# Table columns written by decorrelate (selection.csv adds step/time_ps/stage when the file has them).
TABLE_COLUMNS = (
    "frame",
    "temperature",
    "signal",
    "smoothed_signal",
    "distance_to_last_accepted",
    "candidate",
    "accepted",
    "reason",
)


class DecorrelationError(ValueError):
    """The trajectory cannot be decorrelated as asked (never equilibrates, too few snapshots, ...).

    The message says what happened and which setting or input to change.
    """


# ----------------------------------------------------------------------------------------------------
# settings and result
# ----------------------------------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"DecorrelationSettings.{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"DecorrelationSettings.{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value, *, positive: bool = True, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"DecorrelationSettings.{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"DecorrelationSettings.{name} must be finite, got {value}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"DecorrelationSettings.{name} must be {bound}, got {value}")


@dataclass(frozen=True)
class DecorrelationSettings:
    """Parameters of equilibration detection and snapshot selection (MALA defaults where MALA has one).

    n_snapshots:            number of snapshots to return (required).
    rdf_rmax:               RDF range in Angstrom; may exceed half the cell (several images are counted).
    rdf_bins:               number of RDF bins on (0, rdf_rmax].
    window:                 width in frames of the centred moving average of the signal (MALA: 100).
    final_fraction:         fraction of the run at its end whose mean smoothed signal is the threshold (0.1).
    patience:               consecutive frames below the threshold that mark equilibration (MALA: 50).
    temperature:            target temperature in K, or None for no temperature filter.
    temperature_tolerance:  accepted deviation from ``temperature`` in K (set both or neither).
    centre_frames:          frames around the middle of the equilibrated part used to estimate the
                            cutoff (the centre frame itself excluded). They should mostly be decorrelated
                            from the centre: MALA uses 2 * final_fraction * n_frames of them.
    z_score:                cutoff = mean - z_score * std of those distances (2.576: 99% bound).
    seed:                   seed of the numpy Generator drawing n_snapshots out of more candidates.
    """

    n_snapshots: int
    rdf_rmax: float = 6.0
    rdf_bins: int = 100
    window: int = 100
    final_fraction: float = 0.1
    patience: int = 50
    temperature: float | None = None
    temperature_tolerance: float | None = None
    centre_frames: int = 100
    z_score: float = 2.576
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("n_snapshots", self.n_snapshots, 1)
        _check_float("rdf_rmax", self.rdf_rmax)
        _check_int("rdf_bins", self.rdf_bins, 1)
        _check_int("window", self.window, 1)
        _check_float("final_fraction", self.final_fraction)
        if self.final_fraction > 1:
            raise ValueError(f"DecorrelationSettings.final_fraction must be in (0, 1], got {self.final_fraction}")
        _check_int("patience", self.patience, 1)
        if (self.temperature is None) != (self.temperature_tolerance is None):
            raise ValueError(
                "DecorrelationSettings.temperature and temperature_tolerance must be set together "
                f"(got temperature={self.temperature!r}, temperature_tolerance={self.temperature_tolerance!r})"
            )
        if self.temperature is not None:
            _check_float("temperature", self.temperature)
            _check_float("temperature_tolerance", self.temperature_tolerance, allow_zero=True)
        _check_int("centre_frames", self.centre_frames, 2)
        _check_float("z_score", self.z_score, allow_zero=True)
        _check_int("seed", self.seed, 0)


@dataclass(frozen=True)
class DecorrelationResult:
    """Outcome of :func:`decorrelate`. Frame numbers are the caller's frame ids (file indices).

    selected:           (n_snapshots,) int64, selected frame ids in increasing order.
    equilibrated_from:  frame id of the first equilibrated frame.
    cutoff:             decorrelation cutoff in Angstrom.
    threshold:          equilibration threshold on the smoothed signal.
    table:              pandas.DataFrame, one row per frame considered (columns: TABLE_COLUMNS).
    signal:             (T,) 1 - cosine similarity of each frame's RDF with the last frame's.
    smoothed:           (T,) centred moving average of ``signal``.
    """

    selected: np.ndarray
    equilibrated_from: int
    cutoff: float
    threshold: float
    table: pd.DataFrame = field(repr=False)
    signal: np.ndarray = field(repr=False)
    smoothed: np.ndarray = field(repr=False)


# ----------------------------------------------------------------------------------------------------
# periodic geometry
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lattice:
    """An invertible basis for fractional coordinates; only rows with ``pbc`` are lattice vectors.

    Non-periodic rows that are zero or degenerate (ASE's cell of a molecule or wire) are replaced by an
    orthonormal basis of the complement of the periodic rows: fractional coordinates along them are
    never wrapped, only the periodic ones are.
    """

    basis: np.ndarray  # (3, 3) | rows: periodic lattice vectors + completion
    inverse: np.ndarray  # (3, 3) | frac = x @ inverse
    heights: np.ndarray  # (3,) | distance between lattice planes along each axis, 1 / |inverse[:, k]|
    pbc: np.ndarray  # (3,) bool
    volume: float  # |det(cell)| when the cell is a full 3D cell, else 0

    def frac(self, positions: np.ndarray) -> np.ndarray:
        """(N, 3) fractional coordinates, wrapped into [0, 1) along periodic axes."""
        frac = positions @ self.inverse
        frac[:, self.pbc] -= np.floor(frac[:, self.pbc])
        return frac

    def padded(self, frac: np.ndarray, margin: float) -> np.ndarray:
        """(M, 3) Cartesian positions of all images ``frac + R`` within ``margin`` of the cell.

        Along periodic axis k an image is kept when its fractional coordinate is in
        [-margin / h_k, 1 + margin / h_k]: every point within ``margin`` of a point inside the cell
        satisfies this (|delta s_k| <= |delta x| / h_k), so a nearest-neighbour query from inside the
        cell that finds a neighbour closer than ``margin`` is exact.
        """
        if not self.pbc.any():
            return frac @ self.basis
        lim = np.full(3, np.inf)
        lim[self.pbc] = margin / self.heights[self.pbc]
        n_img = np.zeros(3, dtype=np.int64)
        n_img[self.pbc] = np.ceil(lim[self.pbc]).astype(np.int64)
        growth = float(np.prod(1.0 + 2.0 * lim[self.pbc]))
        if len(frac) * growth > _MAX_IMAGE_POINTS:
            raise ValueError(
                f"neighbour search to {margin:.3g} Å needs ~{len(frac) * growth:.3g} periodic images for a cell "
                f"with plane spacings {np.round(self.heights, 3).tolist()} Å; lower the range (e.g. rdf_rmax)"
            )
        axes = [np.arange(-k, k + 1, dtype=float) for k in n_img]
        shifts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)  # (S, 3)
        per_block = max(1, 2_000_000 // max(len(frac), 1))  # bound the (S, N, 3) temporaries
        blocks = []
        for start in range(0, len(shifts), per_block):
            shifted = frac[None, :, :] + shifts[start : start + per_block, None, :]  # (s, N, 3)
            keep = np.all((shifted >= -lim) & (shifted <= 1.0 + lim), axis=-1)
            blocks.append(shifted[keep])
        return np.concatenate(blocks) @ self.basis


def _lattice(cell: np.ndarray, pbc: np.ndarray) -> _Lattice:
    cell = np.asarray(cell, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    scale = max(float(np.abs(cell).max()), 1.0)
    det = float(np.linalg.det(cell))
    full = abs(det) > 1e-9 * scale**3
    if full:
        basis = cell.copy()
    else:
        periodic = cell[pbc]
        if len(periodic):
            sv = np.linalg.svd(periodic, compute_uv=False)
            if sv.min() <= 1e-9 * scale:
                raise ValueError(f"cell: the periodic lattice vectors {periodic.tolist()} are linearly dependent")
            _, _, vt = np.linalg.svd(np.vstack([periodic, np.zeros((3 - len(periodic), 3))]))
            complement = vt[len(periodic) :]
        else:
            complement = np.eye(3)
        basis = np.empty((3, 3))
        basis[pbc] = periodic
        basis[~pbc] = complement
    inverse = np.linalg.inv(basis)
    heights = 1.0 / np.linalg.norm(inverse, axis=0)
    return _Lattice(basis=basis, inverse=inverse, heights=heights, pbc=pbc, volume=abs(det) if full else 0.0)


class _NearestImage:
    """Nearest periodic image of a reference frame, for repeated queries (private, one frame's lifetime).

    The tree holds the reference atoms plus their images within ``margin`` of the cell. Query points
    whose nearest neighbour is farther than ``margin`` are resolved again with a doubled margin (and the
    tree is kept at that margin for later queries), so the result is always exact.
    """

    def __init__(self, positions: np.ndarray, lattice: _Lattice) -> None:
        self._lattice = lattice
        self._frac = lattice.frac(positions)
        if lattice.pbc.any():
            volume = abs(float(np.linalg.det(lattice.basis)))
            self._margin = max((volume / len(positions)) ** (1.0 / 3.0), 1e-3)
        else:
            self._margin = math.inf
        self._tree = self._build()

    def _build(self):
        from scipy.spatial import cKDTree

        return cKDTree(self._lattice.padded(self._frac, self._margin))

    def distances(self, points: np.ndarray) -> np.ndarray:
        """(M,) minimum-image distance from each of ``points`` (M, 3) to the nearest reference atom."""
        query = self._lattice.frac(points) @ self._lattice.basis
        dist, _ = self._tree.query(query, k=1, distance_upper_bound=self._margin)
        todo = np.flatnonzero(~(dist <= self._margin))
        while todo.size:
            self._margin *= 2.0
            logger.debug("nearest-image search: %d points farther than margin, margin -> %.3g Å", todo.size, self._margin)
            self._tree = self._build()
            d, _ = self._tree.query(query[todo], k=1, distance_upper_bound=self._margin)
            dist[todo] = d
            todo = todo[~(d <= self._margin)]
        return dist


# ----------------------------------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------------------------------


def _as_positions(name: str, value, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != ndim or arr.shape[-1] != 3:
        want = "(N, 3)" if ndim == 2 else "(T, N, 3)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.shape[-2] == 0:
        raise ValueError(f"{name} holds no atoms")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _as_cell(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape != (3, 3):
        raise ValueError(f"{name} must have shape (3, 3) (rows are lattice vectors), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _as_cells(value, n_frames: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape == (3, 3):
        arr = np.broadcast_to(arr, (n_frames, 3, 3))
    if arr.shape != (n_frames, 3, 3):
        raise ValueError(f"cells must have shape (T, 3, 3) or (3, 3) with T={n_frames} frames, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("cells contains non-finite values")
    return arr


def _as_pbc(value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape == ():
        arr = np.full(3, bool(arr))
    if arr.shape != (3,) or arr.dtype.kind not in "bi":
        raise ValueError(f"pbc must be a (3,) bool array, got {np.asarray(value)!r}")
    return arr.astype(bool)


# ----------------------------------------------------------------------------------------------------
# RDF, signal, equilibration
# ----------------------------------------------------------------------------------------------------


def _rdf(positions: np.ndarray, lattice: _Lattice, rmax: float, bins: int) -> np.ndarray:
    from scipy.spatial import cKDTree

    frac = lattice.frac(positions)
    centres = frac @ lattice.basis
    images = cKDTree(lattice.padded(frac, rmax))
    counts = np.zeros(bins, dtype=np.int64)
    width = rmax / bins
    for start in range(0, len(centres), _RDF_BLOCK):  # bounded memory: pairs of one block of centres
        block = cKDTree(centres[start : start + _RDF_BLOCK])
        d = block.sparse_distance_matrix(images, rmax, output_type="ndarray")["v"]
        d = d[d > _SELF_PAIR_TOL]
        counts += np.bincount(np.minimum((d / width).astype(np.int64), bins - 1), minlength=bins)
    n = len(positions)
    shells = 4.0 / 3.0 * np.pi * np.diff(np.linspace(0.0, rmax, bins + 1) ** 3)
    density = n / lattice.volume if lattice.volume > 0 else 1.0
    return counts / (n * density * shells)


def rdf(positions, cell, pbc, rmax: float = 6.0, bins: int = 100) -> np.ndarray:
    """Radial distribution function g(r) of one periodic frame.

    positions: (N, 3) Å; cell: (3, 3), rows are lattice vectors; pbc: (3,) bool.
    Returns (bins,) g(r) on the bins [r_k, r_k+1) of a uniform grid on [0, rmax] (the last bin closed). Every periodic image
    within ``rmax`` is counted, self-images ``(i, i, R != 0)`` included, so ``rmax`` may exceed half (or
    all) of the cell. Normalised by the ideal-gas count ``N * (N / V) * shell volume`` with ``V = |det cell|``;
    when the cell is not a full 3D cell (zero rows along non-periodic axes) the density is taken as
    1 Å^-3 (only the shape of g(r) matters for the equilibration signal).
    """
    positions = _as_positions("positions", positions, 2)
    cell = _as_cell("cell", cell)
    pbc = _as_pbc(pbc)
    if not (isinstance(rmax, (int, float, np.integer, np.floating)) and math.isfinite(rmax) and rmax > 0):
        raise ValueError(f"rmax must be a positive finite number of Å, got {rmax!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return _rdf(positions, _lattice(cell, pbc), float(rmax), int(bins))


def equilibration_signal(positions, cells, pbc, settings: DecorrelationSettings) -> np.ndarray:
    """d_t = 1 - cos(g_t, g_last) for every frame (SCIENCE.md 7.1).

    positions: (T, N, 3) Å; cells: (T, 3, 3) or one (3, 3) for all frames; pbc: (3,) bool.
    Returns (T,) values in [0, 2] (0 for the last frame). RDFs use ``settings.rdf_rmax`` and
    ``settings.rdf_bins``.
    """
    positions = _as_positions("positions", positions, 3)
    n_frames = len(positions)
    cells = _as_cells(cells, n_frames)
    pbc = _as_pbc(pbc)
    if n_frames == 0:
        raise DecorrelationError("the trajectory has no frames")
    g = np.empty((n_frames, settings.rdf_bins))
    step = max(n_frames // 10, 1)
    for t in range(n_frames):
        g[t] = _rdf(positions[t], _lattice(cells[t], pbc), settings.rdf_rmax, settings.rdf_bins)
        if n_frames >= 1000 and (t + 1) % step == 0:
            logger.info("RDF of frame %d/%d", t + 1, n_frames)
    norms = np.linalg.norm(g, axis=1)
    empty = np.flatnonzero(norms == 0)
    if empty.size:
        raise DecorrelationError(
            f"no atom pairs within rdf_rmax={settings.rdf_rmax} Å in {empty.size} frame(s) (first: {empty[0]}); "
            "increase `rdf_rmax`"
        )
    cos = g @ g[-1] / (norms * norms[-1])
    return np.clip(1.0 - cos, 0.0, 2.0)


def moving_average(signal, window: int) -> np.ndarray:
    """Centred moving average of width ``window`` with shrinking windows at the edges.

    smoothed[t] = mean(signal[max(0, t - window // 2) : min(T, t - window // 2 + window)]): the window
    covers ``window`` frames around ``t`` and is cut (not zero-padded) at the ends, so a constant signal
    stays constant and the end of the run, which sets the threshold, is not biased towards zero.
    ``window`` must not exceed the number of frames (DecorrelationError).
    """
    signal = np.asarray(signal, dtype=float)
    if signal.ndim != 1:
        raise ValueError(f"signal must be one-dimensional, got shape {signal.shape}")
    n = len(signal)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if window > n:
        raise DecorrelationError(
            f"the trajectory has {n} frames, fewer than the moving-average window={window}: "
            "run longer or lower `window`"
        )
    csum = np.concatenate([[0.0], np.cumsum(signal)])
    t = np.arange(n)
    lo = np.maximum(t - window // 2, 0)
    hi = np.minimum(t - window // 2 + window, n)
    return (csum[hi] - csum[lo]) / (hi - lo)


def _equilibration(signal: np.ndarray, settings: DecorrelationSettings) -> tuple[int, np.ndarray, float]:
    """(first equilibrated index, smoothed signal, threshold); see :func:`find_equilibration`."""
    signal = np.asarray(signal, dtype=float)
    if signal.ndim != 1:
        raise ValueError(f"signal must be one-dimensional, got shape {signal.shape}")
    if not np.isfinite(signal).all():
        raise ValueError("signal contains non-finite values")
    n = len(signal)
    if settings.patience > n:
        raise DecorrelationError(
            f"the trajectory has {n} frames, fewer than patience={settings.patience}: run longer or lower `patience`"
        )
    smoothed = moving_average(signal, settings.window)
    n_final = max(1, math.ceil(settings.final_fraction * n))
    threshold = float(smoothed[-n_final:].mean())
    below = smoothed < threshold
    # run[t] = length of the run of consecutive below-threshold frames ending at t
    idx = np.arange(n)
    last_above = np.maximum.accumulate(np.where(below, -1, idx))
    run = idx - last_above
    hits = np.flatnonzero(run >= settings.patience)
    if hits.size == 0:
        raise DecorrelationError(
            f"the smoothed RDF signal never stays below its threshold {threshold:.3g} for patience="
            f"{settings.patience} consecutive frames (longest run: {int(run.max())} of {n} frames): the trajectory "
            "has not equilibrated; run longer or lower `patience`"
        )
    first = int(hits[0])
    if first >= n - n_final:
        raise DecorrelationError(
            f"the smoothed RDF signal has first stayed below its threshold {threshold:.3g} for patience="
            f"{settings.patience} frames at frame {first}, inside the final {n_final} frames "
            f"(final_fraction={settings.final_fraction}) that define the threshold: the trajectory is still drifting "
            "or too noisy to tell; run longer (or lower `patience`, raise `window`)"
        )
    return first, smoothed, threshold


def find_equilibration(signal, settings: DecorrelationSettings) -> int:
    """Index of the first equilibrated frame of ``signal`` (T,) (SCIENCE.md 7.1).

    The signal is smoothed with :func:`moving_average` (width ``settings.window``, centred, shrinking
    windows at the ends); the threshold is the mean smoothed value over the last
    ``ceil(final_fraction * T)`` frames; the answer is the first frame of the first run of
    ``settings.patience`` consecutive frames with smoothed value strictly below the threshold: the frame at
    which the signal *has stayed* below for ``patience`` frames (MALA's convention; the run's first
    ``patience - 1`` frames are not counted as equilibrated).

    Raises DecorrelationError when the window or patience exceed the trajectory, when no such run exists,
    or when the run only starts inside the final fraction (a trajectory still drifting at its end passes
    MALA's test there, because the threshold then follows the drift).
    """
    return _equilibration(signal, settings)[0]


# ----------------------------------------------------------------------------------------------------
# snapshot distance
# ----------------------------------------------------------------------------------------------------


def snapshot_distance(pos_a, pos_b, cell, pbc) -> float:
    """D(A, B) = mean over atoms of B of the minimum-image distance to the nearest atom of A (Å).

    pos_a: (N, 3), pos_b: (M, 3) Å; cell: (3, 3), rows are lattice vectors; pbc: (3,) bool.
    Invariant under permutations of either frame and under wrapping atoms by lattice vectors; exact for
    triclinic cells. Not symmetric in general (D(A, B) != D(B, A)). O((N + M) log N) time, O(N + M) memory.
    """
    pos_a = _as_positions("pos_a", pos_a, 2)
    pos_b = _as_positions("pos_b", pos_b, 2)
    lattice = _lattice(_as_cell("cell", cell), _as_pbc(pbc))
    return float(_NearestImage(pos_a, lattice).distances(pos_b).mean())


# ----------------------------------------------------------------------------------------------------
# decorrelation
# ----------------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def decorrelate(
    positions,
    cells,
    pbc,
    temperatures,
    settings: DecorrelationSettings,
    *,
    frame_ids=None,
    signal=None,
) -> DecorrelationResult:
    """Select ``settings.n_snapshots`` decorrelated, equilibrated frames of a trajectory.

    positions: (T, N, 3) Å; cells: (T, 3, 3) (or one (3, 3)); pbc: (3,) bool; temperatures: (T,) K or None.
    frame_ids: (T,) int labels of the frames used in the result and its messages (default 0..T-1; e.g. the
    frames' indices in a file when only some of them are passed).
    signal: (T,) a precomputed :func:`equilibration_signal` of the same frames and settings (e.g. the
    ``signal`` of an earlier result, to redraw with another seed or n_snapshots without recomputing RDFs).

    Steps (SCIENCE.md 7): :func:`equilibration_signal` and :func:`find_equilibration`; cutoff from
    ``D(centre, t)`` over ``centre_frames`` frames nearest the middle of the equilibrated part (the centre
    itself excluded); a greedy pass from the first equilibrated frame where a frame becomes a candidate when
    ``D(last candidate, frame) > cutoff`` and its temperature is within the tolerance; finally
    ``n_snapshots`` candidates are drawn with ``numpy.random.default_rng(seed)`` (all of them when there are
    exactly enough). Distances between frames use the cell of the reference (earlier) frame.

    Raises DecorrelationError (a ValueError) when the trajectory does not equilibrate, when the cutoff is
    not positive, or when fewer than ``n_snapshots`` candidates are found.
    """
    import pandas as pd

    if not isinstance(settings, DecorrelationSettings):
        raise ValueError(f"settings must be a DecorrelationSettings, got {type(settings).__name__}")
    positions = _as_positions("positions", positions, 3)
    n_frames = len(positions)
    if n_frames == 0:
        raise DecorrelationError("the trajectory has no frames")
    cells = _as_cells(cells, n_frames)
    pbc = _as_pbc(pbc)
    if frame_ids is None:
        ids = np.arange(n_frames, dtype=np.int64)
    else:
        ids = np.asarray(frame_ids)
        if ids.shape != (n_frames,) or ids.dtype.kind not in "iu":
            raise ValueError(f"frame_ids must be an int array of shape ({n_frames},), got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
    if temperatures is None:
        temps = np.full(n_frames, np.nan)
        if settings.temperature is not None:
            raise ValueError("settings.temperature is set but no temperatures were given")
    else:
        temps = np.asarray(temperatures, dtype=float)
        if temps.shape != (n_frames,):
            raise ValueError(f"temperatures must have shape ({n_frames},), got {temps.shape}")

    logger.info("decorrelating %d frames of %d atoms", n_frames, positions.shape[1])
    if signal is None:
        signal = equilibration_signal(positions, cells, pbc, settings)
    else:
        signal = np.asarray(signal, dtype=float)
        if signal.shape != (n_frames,):
            raise ValueError(f"signal must have shape ({n_frames},) like the frames, got {signal.shape}")
    first, smoothed, threshold = _equilibration(signal, settings)
    logger.info("equilibrated from frame %d (threshold %.3g)", ids[first], threshold)

    # --- cutoff from distances around the middle of the equilibrated part
    n_eq = n_frames - first
    if n_eq < settings.centre_frames + 1:
        raise DecorrelationError(
            f"the equilibrated part (frames {ids[first]}..{ids[-1]}) has {n_eq} frames, fewer than "
            f"centre_frames + 1 = {settings.centre_frames + 1} needed to estimate the cutoff: run longer or "
            "lower `centre_frames`"
        )
    centre = first + (n_eq - 1) // 2
    lo = min(max(centre - settings.centre_frames // 2, first), n_frames - settings.centre_frames - 1)
    around = np.array([t for t in range(lo, lo + settings.centre_frames + 1) if t != centre])
    ref = _NearestImage(positions[centre], _lattice(cells[centre], pbc))
    d_centre = np.array([ref.distances(positions[t]).mean() for t in around])
    mean, std = float(d_centre.mean()), float(d_centre.std())
    cutoff = mean - settings.z_score * std
    logger.info("cutoff %.4g Å (mean %.4g, std %.4g over %d frames around %d)", cutoff, mean, std, around.size, ids[centre])
    if not cutoff > 0:
        raise DecorrelationError(
            f"the decorrelation cutoff mean - z_score * std = {mean:.3g} - {settings.z_score} * {std:.3g} Å is not "
            f"positive (distances of {around.size} frames to the centre frame {ids[centre]}): use more "
            "`centre_frames` (most of them should be decorrelated from the centre) or a lower `z_score`"
        )

    # --- greedy pass
    reasons = np.array(["before equilibration"] * n_frames, dtype=object)
    distance = np.full(n_frames, np.nan)
    candidate = np.zeros(n_frames, dtype=bool)
    if settings.temperature is not None:
        t0, tol = settings.temperature, settings.temperature_tolerance
        missing = np.flatnonzero(np.isnan(temps[first:]))
        if missing.size:
            raise DecorrelationError(
                f"{missing.size} equilibrated frame(s) have no temperature (first: frame {ids[first + missing[0]]}) "
                "but a temperature filter is set: store `temperature` per frame or unset `temperature`"
            )
        too_far = np.abs(temps - t0) > tol
    else:
        too_far = np.zeros(n_frames, dtype=bool)
    last: int | None = None
    last_index: _NearestImage | None = None
    step = max((n_frames - first) // 10, 1)
    for t in range(first, n_frames):
        if too_far[t]:
            reasons[t] = f"temperature {temps[t]:.0f} K outside {settings.temperature:g}±{settings.temperature_tolerance:g} K"
        elif last is None:
            candidate[t] = True
            reasons[t] = "first equilibrated frame" if t == first else "first equilibrated frame within temperature tolerance"
        else:
            distance[t] = last_index.distances(positions[t]).mean()
            if distance[t] > cutoff:
                candidate[t] = True
                reasons[t] = f"distance {_fmt(distance[t])} Å > cutoff {_fmt(cutoff)} Å"
            else:
                reasons[t] = f"too close to frame {ids[last]} ({_fmt(distance[t])} Å ≤ {_fmt(cutoff)} Å)"
        if candidate[t]:
            last = t
            last_index = _NearestImage(positions[t], _lattice(cells[t], pbc))
        if n_frames - first >= 1000 and (t - first + 1) % step == 0:
            logger.info("greedy pass: frame %d/%d, %d candidates", t + 1, n_frames, int(candidate.sum()))

    cand = np.flatnonzero(candidate)
    n_want = settings.n_snapshots
    if cand.size < n_want:
        hint = " or widen `temperature_tolerance`" if settings.temperature is not None else ""
        raise DecorrelationError(
            f"found {cand.size} decorrelated frame(s) (cutoff {_fmt(cutoff)} Å, equilibrated from frame "
            f"{ids[first]}, {n_eq} equilibrated frames) but n_snapshots={n_want}: run the MD longer, lower "
            f"`n_snapshots`, or raise `z_score` (a smaller cutoff){hint}"
        )
    if cand.size > n_want:
        rng = np.random.default_rng(settings.seed)
        chosen = np.sort(rng.choice(cand, size=n_want, replace=False))
        for t in np.setdiff1d(cand, chosen):
            reasons[t] = "not drawn: more candidates than n_snapshots"
    else:
        chosen = cand
    accepted = np.zeros(n_frames, dtype=bool)
    accepted[chosen] = True
    logger.info("selected %d of %d candidate frames", n_want, cand.size)

    table = pd.DataFrame(
        {
            "frame": ids,
            "temperature": temps,
            "signal": signal,
            "smoothed_signal": smoothed,
            "distance_to_last_accepted": distance,
            "candidate": candidate,
            "accepted": accepted,
            "reason": reasons.astype(str),
        },
        columns=list(TABLE_COLUMNS),
    )
    return DecorrelationResult(
        selected=ids[chosen],
        equilibrated_from=int(ids[first]),
        cutoff=float(cutoff),
        threshold=float(threshold),
        table=table,
        signal=signal,
        smoothed=smoothed,
    )


# ----------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------


def _read_trajectory(path: Path, stage: str | Sequence[str] | None):
    """Arrays of the frames to consider: (ids, positions, cells, pbc, temperatures, extra columns)."""
    import ase.io

    ids, positions, cells, temps, steps, times, stages = [], [], [], [], [], [], []
    wanted = None if stage is None else ({stage} if isinstance(stage, str) else {str(x) for x in stage})
    numbers0 = pbc0 = None
    all_stages: set[str] = set()
    for index, atoms in enumerate(ase.io.iread(str(path), index=":", format="extxyz")):
        if numbers0 is None:
            numbers0, pbc0 = atoms.numbers.copy(), atoms.pbc.copy()
        elif len(atoms) != len(numbers0):
            raise DecorrelationError(
                f"{path}: frame {index} has {len(atoms)} atoms but frame 0 has {len(numbers0)}: a trajectory must keep "
                "its atoms; split the file or select one run"
            )
        elif not np.array_equal(atoms.numbers, numbers0):
            raise DecorrelationError(f"{path}: frame {index} has different species (or atom order) than frame 0")
        elif not np.array_equal(atoms.pbc, pbc0):
            raise DecorrelationError(f"{path}: frame {index} has pbc {atoms.pbc.tolist()} but frame 0 has {pbc0.tolist()}")
        frame_stage = atoms.info.get("stage")
        if frame_stage is not None:
            all_stages.add(str(frame_stage))
        if wanted is not None and str(frame_stage) not in wanted:
            continue
        ids.append(index)
        positions.append(atoms.positions.copy())
        cells.append(atoms.cell.array.copy())
        temps.append(float(atoms.info.get("temperature", np.nan)))
        steps.append(atoms.info.get("step", np.nan))
        times.append(float(atoms.info.get("time_ps", np.nan)))
        stages.append("" if frame_stage is None else str(frame_stage))
        if (index + 1) % 1000 == 0:
            logger.info("%s: read %d frames", path, index + 1)
    if numbers0 is None:
        raise DecorrelationError(f"{path}: no frames in the trajectory file")
    if not ids:
        raise DecorrelationError(
            f"{path}: no frame has stage={stage!r} (stages in the file: {sorted(all_stages) or 'none'}); "
            "pick one of them or pass stage=None"
        )
    extra = {"step": steps, "time_ps": times, "stage": stages}
    return (
        np.array(ids, dtype=np.int64),
        np.array(positions),
        np.array(cells),
        pbc0,
        np.array(temps),
        extra,
    )


def _plot(result: DecorrelationResult, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = result.table
    frames = table["frame"].to_numpy()
    fig = Figure(figsize=(8, 6))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.97, bottom=0.08, hspace=0.08)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(frames, result.signal, color="0.7", lw=0.8, label="1 - cos(RDF_t, RDF_last)")
    ax1.plot(frames, result.smoothed, color="C0", lw=1.5, label="moving average")
    ax1.axhline(result.threshold, color="C3", ls="--", lw=1, label=f"threshold {result.threshold:.3g}")
    ax1.axvline(result.equilibrated_from, color="k", ls=":", lw=1, label=f"equilibrated from {result.equilibrated_from}")
    ax1.set_ylabel("RDF distance to last frame")
    ax1.legend(fontsize="small")
    dist = table["distance_to_last_accepted"].to_numpy()
    ok = np.isfinite(dist)
    ax2.plot(frames[ok], dist[ok], ".", ms=3, color="0.5", label="distance to last candidate")
    ax2.axhline(result.cutoff, color="C3", ls="--", lw=1, label=f"cutoff {result.cutoff:.3g} Å")
    cand = table["candidate"].to_numpy() & ~table["accepted"].to_numpy()
    acc = table["accepted"].to_numpy()
    y = np.where(np.isfinite(dist), dist, result.cutoff)
    ax2.plot(frames[cand], y[cand], "o", mfc="none", color="C1", ms=5, label="candidate, not drawn")
    ax2.plot(frames[acc], y[acc], "o", color="C2", ms=5, label="selected")
    ax2.axvline(result.equilibrated_from, color="k", ls=":", lw=1)
    ax2.set_xlabel("frame")
    ax2.set_ylabel("D (Å)")
    ax2.legend(fontsize="small")
    fig.savefig(path, format="png", dpi=120)


def decorrelate_trajectory(
    trajectory_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: DecorrelationSettings,
    *,
    stage: str | Sequence[str] | None = None,
    prefix: str = "",
) -> DecorrelationResult:
    """Decorrelate an extxyz trajectory and write the selected snapshots.

    Per-frame ``atoms.info`` may hold ``temperature`` (K), ``step``, ``time_ps`` and ``stage``. With
    ``stage`` given (a name or several) only frames whose ``info['stage']`` is one of them are considered; frame numbers everywhere
    are indices in the whole file. All frames must have the same atoms (species, order) and pbc.

    Writes (atomically, via :func:`hamforge.io.atomic_path`):
    - ``out_dir / f"{prefix}f{frame:05d}.extxyz"``: each selected frame (species, cell, pbc, info kept);
    - ``out_dir / "selection.csv"``: the result table plus ``step``, ``time_ps``, ``stage``;
    - ``out_dir / "selection.png"``: signal with threshold and equilibration frame, distances with cutoff.
    Errors name the trajectory file.
    """
    import ase.io

    path = Path(trajectory_path)
    out = Path(out_dir)
    if not isinstance(settings, DecorrelationSettings):
        raise ValueError(f"settings must be a DecorrelationSettings, got {type(settings).__name__}")
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file not found: {path}")
    if any(sep in prefix for sep in ("/", os.sep)):
        raise ValueError(f"prefix must be a file-name prefix without directory separators, got {prefix!r}")
    logger.info("reading %s", path)
    try:
        ids, positions, cells, pbc, temps, extra = _read_trajectory(path, stage)
    except DecorrelationError:
        raise
    except Exception as exc:  # ASE parse errors come in many types
        raise DecorrelationError(f"{path}: cannot read the trajectory as extxyz: {exc}") from exc
    if settings.temperature is not None and np.isnan(temps).all():
        raise DecorrelationError(
            f"{path}: a temperature filter is set but no frame has info['temperature']; unset `temperature` "
            "or write temperatures into the trajectory"
        )
    try:
        result = decorrelate(positions, cells, pbc, None if np.isnan(temps).all() else temps, settings, frame_ids=ids)
    except ValueError as exc:
        scope = f" (stage {stage!r})" if stage is not None else ""
        raise DecorrelationError(f"{path}{scope}: {exc}") from exc

    table = result.table.copy()
    for name, values in extra.items():
        table[name] = values
    result = DecorrelationResult(
        selected=result.selected,
        equilibrated_from=result.equilibrated_from,
        cutoff=result.cutoff,
        threshold=result.threshold,
        table=table,
        signal=result.signal,
        smoothed=result.smoothed,
    )

    out.mkdir(parents=True, exist_ok=True)
    wanted = set(int(f) for f in result.selected)
    last_wanted = max(wanted)
    for index, atoms in enumerate(ase.io.iread(str(path), index=":", format="extxyz")):
        if index in wanted:
            with atomic_path(out / f"{prefix}f{index:05d}.extxyz") as tmp:
                ase.io.write(tmp, atoms, format="extxyz")
        if index >= last_wanted:
            break
    with atomic_path(out / "selection.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "selection.png") as tmp:
        _plot(result, tmp)
    logger.info("%s: wrote %d snapshots to %s", path, len(wanted), out)
    return result

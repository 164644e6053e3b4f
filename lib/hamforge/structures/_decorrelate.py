"""Trajectory decorrelation: equilibration detection and distance-based snapshot selection.

The method follows MALA's trajectory analyser (MALA, docs/references.md), done correctly under periodic
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

import numpy as np

from hamforge.geometry import Lattice, check_cell, lattice
from hamforge.structures._decorrelate_settings import (
    TABLE_COLUMNS,
    DecorrelationError,
    DecorrelationResult,
    DecorrelationSettings,
)

logger = logging.getLogger(__name__)

__all__ = [
    "decorrelate",
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


# ----------------------------------------------------------------------------------------------------
# periodic geometry (hamforge.geometry) and nearest images
# ----------------------------------------------------------------------------------------------------


class _NearestImage:
    """Nearest periodic image of a reference frame, for repeated queries (private, one frame's lifetime).

    The tree holds the reference atoms plus their images within ``margin`` of the cell. Query points
    whose nearest neighbour is farther than ``margin`` are resolved again with a doubled margin (and the
    tree is kept at that margin for later queries), so the result is always exact.
    """

    def __init__(self, positions: np.ndarray, lattice: Lattice) -> None:
        self._lattice = lattice
        self._frac = lattice.fractional(positions)
        if lattice.pbc.any():
            volume = lattice.volume
            self._margin = max((volume / len(positions)) ** (1.0 / 3.0), 1e-3)
        else:
            self._margin = math.inf
        self._tree = self._build()

    def _build(self):
        from scipy.spatial import cKDTree

        return cKDTree(self._lattice.images_within(self._frac, self._margin, _MAX_IMAGE_POINTS))

    def distances(self, points: np.ndarray) -> np.ndarray:
        """(M,) minimum-image distance from each of ``points`` (M, 3) to the nearest reference atom."""
        query = self._lattice.wrap(points)
        dist, _ = self._tree.query(query, k=1, distance_upper_bound=self._margin)
        todo = np.flatnonzero(~(dist <= self._margin))
        while todo.size:
            self._margin *= 2.0
            logger.debug(
                "nearest-image search: %d points farther than margin, margin -> %.3g Å", todo.size, self._margin
            )
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
    return check_cell(np.eye(3), value)[1]


# ----------------------------------------------------------------------------------------------------
# RDF, signal, equilibration
# ----------------------------------------------------------------------------------------------------


def _rdf(positions: np.ndarray, lattice: Lattice, rmax: float, bins: int) -> np.ndarray:
    from scipy.spatial import cKDTree

    frac = lattice.fractional(positions)
    centres = frac @ lattice.basis
    images = cKDTree(lattice.images_within(frac, rmax, _MAX_IMAGE_POINTS))
    counts = np.zeros(bins, dtype=np.int64)
    width = rmax / bins
    for start in range(0, len(centres), _RDF_BLOCK):  # bounded memory: pairs of one block of centres
        block = cKDTree(centres[start : start + _RDF_BLOCK])
        d = block.sparse_distance_matrix(images, rmax, output_type="ndarray")["v"]
        d = d[d > _SELF_PAIR_TOL]
        counts += np.bincount(np.minimum((d / width).astype(np.int64), bins - 1), minlength=bins)
    n = len(positions)
    shells = 4.0 / 3.0 * np.pi * np.diff(np.linspace(0.0, rmax, bins + 1) ** 3)
    density = n / lattice.volume if lattice.is_full else 1.0
    return counts / (n * density * shells)


def rdf(positions, cell, pbc, rmax: float = 6.0, bins: int = 100) -> np.ndarray:
    """Radial distribution function g(r) of one periodic frame.

    positions: (N, 3) Å; cell: (3, 3), rows are lattice vectors; pbc: (3,) bool.
    Returns (bins,) g(r) on the bins [r_k, r_k+1) of a uniform grid on [0, rmax] (the last bin closed). Every
    periodic image
    within ``rmax`` is counted, self-images ``(i, i, R != 0)`` included, so ``rmax`` may exceed half (or
    all) of the cell. Normalised by the ideal-gas count ``N * (N / V) * shell volume`` with ``V = |det cell|``;
    when the cell is not a full 3D cell (zero rows along non-periodic axes) the density is taken as
    1 Å^-3 (only the shape of g(r) matters for the equilibration signal).
    """
    positions = _as_positions("positions", positions, 2)
    lat = lattice(cell, pbc)
    if not (isinstance(rmax, (int, float, np.integer, np.floating)) and math.isfinite(rmax) and rmax > 0):
        raise ValueError(f"rmax must be a positive finite number of Å, got {rmax!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return _rdf(positions, lat, float(rmax), int(bins))


def equilibration_signal(positions, cells, pbc, settings: DecorrelationSettings) -> np.ndarray:
    """d_t = 1 - cos(g_t, g_last) for every frame (MALA, docs/references.md).

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
        g[t] = _rdf(positions[t], lattice(cells[t], pbc), settings.rdf_rmax, settings.rdf_bins)
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
    """Index of the first equilibrated frame of ``signal`` (T,) (MALA, docs/references.md).

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
    return float(_NearestImage(pos_a, lattice(cell, pbc)).distances(pos_b).mean())


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

    Steps (MALA, docs/references.md): :func:`equilibration_signal` and :func:`find_equilibration`; cutoff from
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
    ref = _NearestImage(positions[centre], lattice(cells[centre], pbc))
    d_centre = np.array([ref.distances(positions[t]).mean() for t in around])
    mean, std = float(d_centre.mean()), float(d_centre.std())
    cutoff = mean - settings.z_score * std
    logger.info(
        "cutoff %.4g Å (mean %.4g, std %.4g over %d frames around %d)", cutoff, mean, std, around.size, ids[centre]
    )
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
            reasons[t] = (
                f"temperature {temps[t]:.0f} K outside {settings.temperature:g}±{settings.temperature_tolerance:g} K"
            )
        elif last is None:
            candidate[t] = True
            reasons[t] = (
                "first equilibrated frame" if t == first else "first equilibrated frame within temperature tolerance"
            )
        else:
            distance[t] = last_index.distances(positions[t]).mean()
            if distance[t] > cutoff:
                candidate[t] = True
                reasons[t] = f"distance {_fmt(distance[t])} Å > cutoff {_fmt(cutoff)} Å"
            else:
                reasons[t] = f"too close to frame {ids[last]} ({_fmt(distance[t])} Å ≤ {_fmt(cutoff)} Å)"
        if candidate[t]:
            last = t
            last_index = _NearestImage(positions[t], lattice(cells[t], pbc))
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

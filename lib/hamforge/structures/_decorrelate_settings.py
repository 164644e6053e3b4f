"""Settings, result and error of trajectory decorrelation (the algorithm is in ``_decorrelate.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hamforge._checks import check_float, check_int
from hamforge._errors import HamforgeError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_COLUMNS", "DecorrelationError", "DecorrelationResult", "DecorrelationSettings"]

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


def _check_int(name: str, value, minimum: int) -> None:
    check_int(value, f"DecorrelationSettings.{name}", minimum)


def _check_float(name: str, value, *, allow_zero: bool = False) -> None:
    check_float(value, f"DecorrelationSettings.{name}", positive=True, allow_zero=allow_zero)


class DecorrelationError(ValueError, HamforgeError):
    """The trajectory cannot be decorrelated as asked (never equilibrates, too few snapshots, ...).

    The message says what happened and which setting or input to change.
    """


# ----------------------------------------------------------------------------------------------------
# settings and result
# ----------------------------------------------------------------------------------------------------


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

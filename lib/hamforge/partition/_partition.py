"""One interface over the four partitioners, and the partition + augment + metrics pipeline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.io import AugmentedPartition
from hamforge.partition._augment import augment_all
from hamforge.partition._brick import partition_brick
from hamforge.partition._checks import check_int, check_nl
from hamforge.partition._lownn import partition_lownn
from hamforge.partition._metis import partition_metis
from hamforge.partition._metrics import partition_metrics
from hamforge.partition._slices import partition_slices

__all__ = ["METHODS", "partition_atoms", "PartitionResult", "run_partition"]

METHODS = ("slices", "lownn", "brick", "metis")
_OPTIONS = {
    "slices": ("axis", "thickness"),
    "lownn": ("weights",),
    "brick": ("weights",),
    "metis": ("edge_weights", "vertex_weights", "seed", "contiguous"),
}


def partition_atoms(nl: NeighborList, positions, method: str, n_parts: int | None, **options) -> np.ndarray:
    """Part id of every atom: ``(N,)`` int64 in ``0 .. n_parts - 1``, every part non-empty.

    Methods and their options (see the individual functions):

    * ``"slices"`` (:func:`partition_slices`): ``axis`` (0, 1, 2 or None = longest), ``thickness`` (Å;
      then ``n_parts`` must be None, the number of slices follows from the thickness);
    * ``"lownn"`` (:func:`partition_lownn`): ``weights`` (default: node degree);
    * ``"brick"`` (:func:`partition_brick`): ``weights`` (default: node degree);
    * ``"metis"`` (:func:`partition_metis`): ``edge_weights``, ``vertex_weights``, ``seed``,
      ``contiguous``. ``positions`` is not used.

    Options set to None are ignored (so a config's ``axis: null`` can be passed to any method).

    Raises:
        ValueError: unknown method or option, ``n_parts < 1`` or more parts than atoms, bad option values.
    """
    nl = check_nl(nl)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(_OPTIONS[method]))
    if unknown:
        raise ValueError(f"{unknown[0]}: not an option of method {method!r} (options: {_OPTIONS[method]})")
    if n_parts is None and not (method == "slices" and "thickness" in options):
        raise ValueError("n_parts: required (only method 'slices' with a thickness may omit it)")
    if method == "slices":
        return partition_slices(nl, positions, n_parts, **options)
    if method == "lownn":
        return partition_lownn(nl, positions, n_parts, **options)
    if method == "brick":
        return partition_brick(nl, positions, n_parts, **options)
    return partition_metis(nl, n_parts, **options)


@dataclass(frozen=True, eq=False)
class PartitionResult:
    """Everything :func:`run_partition` produced (inputs of :func:`write_partitions` and the plot)."""

    method: str
    options: dict[str, Any]
    assignment: np.ndarray  # (N,) int64
    parts: list[AugmentedPartition]
    table: Any  # pandas.DataFrame, per part (hamforge.partition.partition_metrics)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def n_parts(self) -> int:
        return len(self.parts)

    @property
    def halo(self) -> int:
        return self.parts[0].halo if self.parts else 0


def run_partition(
    nl: NeighborList, positions, method: str, n_parts: int | None, halo: int, **options
) -> PartitionResult:
    """Partition (:func:`partition_atoms`), augment every part (:func:`augment_all`), measure.

    The summary gets ``partition_time_s`` (the partitioner alone), ``augment_time_s`` and ``method``.
    """
    halo = check_int(halo, "halo", 0)
    t0 = time.perf_counter()
    assignment = partition_atoms(nl, positions, method, n_parts, **options)
    t1 = time.perf_counter()
    parts = augment_all(nl, assignment, halo)
    t2 = time.perf_counter()
    table, summary = partition_metrics(nl, assignment, parts, elapsed_s=t1 - t0)
    summary = {"method": method, **summary, "augment_time_s": t2 - t1}
    used = {k: v for k, v in options.items() if v is not None and k != "weights"}
    return PartitionResult(
        method=method, options=used, assignment=assignment, parts=parts, table=table, summary=summary
    )

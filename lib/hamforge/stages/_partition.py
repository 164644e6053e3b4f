"""Partition stage: structure/targets file -> partition file, per-part metrics CSV and plot."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from hamforge.graph import load_structure_graph
from hamforge.io import atomic_paths, check_output_path, write_partitions, write_text_atomic
from hamforge.partition import PartitionResult, plot_partition, run_partition

__all__ = ["make_partition_file", "write_partition_outputs"]

logger = logging.getLogger(__name__)


def write_partition_outputs(
    result: PartitionResult,
    nl,
    positions,
    output,
    *,
    plot=None,
    metrics_csv=None,
    provenance=None,
    title: str | None = None,
) -> None:
    """Write the partition file, and optionally the PNG plot and the per-part metrics CSV: all of them or none
    (they appear together at the end; an error or SIGTERM in any step leaves none)."""
    names = [p for p in (output, metrics_csv, plot) if p is not None]
    with atomic_paths(*names) as temps:
        tmp_out = temps[0]
        tmp_csv = temps[1] if metrics_csv is not None else None
        tmp_plot = temps[-1] if plot is not None else None
        _write(result, nl, positions, tmp_out, tmp_plot, tmp_csv, provenance, title)


def _write(result, nl, positions, output, plot, metrics_csv, provenance, title) -> None:
    write_partitions(
        output,
        nl,
        result.assignment,
        result.parts,
        result.summary,
        result.table,
        method=result.method,
        options=result.options,
        provenance=provenance,
    )
    if metrics_csv is not None:
        write_text_atomic(metrics_csv, result.table.to_csv(index=False))
    if plot is not None:
        plot_partition(plot, nl, positions, result.assignment, result.table, title=title)


def make_partition_file(
    structure: str | os.PathLike,
    output: str | os.PathLike,
    *,
    method: str,
    parts: int | None,
    halo: int,
    r_cut: float | None = None,
    plot=None,
    metrics_csv=None,
    provenance: Mapping[str, Any] | None = None,
    title: str | None = None,
    **options,
) -> PartitionResult:
    """Read ``structure`` (targets file: its stored graph; otherwise a graph at ``r_cut``), partition, augment,
    write the partition file and optionally its plot and metrics CSV; log a one-line summary."""
    for o in (output, plot, metrics_csv):
        if o is not None:
            check_output_path(o, inputs=[structure])
    sg = load_structure_graph(structure, r_cut)
    result = run_partition(sg.nl, sg.positions, method, parts, halo, **options)
    write_partition_outputs(
        result,
        sg.nl,
        sg.positions,
        output,
        plot=plot,
        metrics_csv=metrics_csv,
        provenance={"structure": str(structure), **dict(provenance or {})},
        title=title or f"{structure}: {method}, halo {halo}",
    )
    s = result.summary
    logger.info(
        "wrote %s: %d atoms, %d edges, %d parts (%s, %.3f s), halo %d: edge imbalance %.3f, "
        "neighbours mean %.1f max %d, node halo ratio %.2f",
        output,
        s["n_atoms"],
        s["n_edges"],
        s["n_parts"],
        method,
        s["partition_time_s"],
        s["halo"],
        s["edge_imbalance"],
        s["neighbours_mean"],
        s["neighbours_max"],
        s["node_halo_ratio_mean"],
    )
    return result

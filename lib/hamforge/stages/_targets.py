"""Matrix file -> targets file, with the coverage report (CSV, JSON) and plot written next to it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from hamforge.basis import ElementBasis
from hamforge.graph import build_targets, coverage_report
from hamforge.io import (
    atomic_path,
    atomic_paths,
    check_output_path,
    read_matrix_file,
    strict_json,
    write_targets_file,
    write_text_atomic,
)
from hamforge.io.units import HARTREE_TO_MEV

__all__ = ["make_targets_file", "plot_coverage"]

logger = logging.getLogger(__name__)


def plot_coverage(blocks, r_cut: float, path: str | os.PathLike, title: str = "") -> None:
    """Scatter of the largest |H| element of every off-site block vs the pair's minimum-image distance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for (a, b), g in blocks.groupby(["kind_i", "kind_j"], sort=True):
        ax.scatter(
            g["min_image_distance"], np.maximum(g["max_abs"] * HARTREE_TO_MEV, 1e-9), s=4, alpha=0.5, label=f"{a}-{b}"
        )
    ax.axvline(r_cut, color="k", ls="--", lw=1, label=f"r_cut = {r_cut:g} Å")
    ax.set_yscale("log")
    ax.set_xlabel("minimum-image distance of the atom pair (Å)")
    ax.set_ylabel("max |H| in block (meV)")
    ax.set_title(title or "What the graph captures of H")
    ax.legend(markerscale=3, fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def make_targets_file(
    matrix_path: str | os.PathLike,
    r_cut: float,
    output: str | os.PathLike,
    *,
    kinds: Sequence[str] | None = None,
    basis: Mapping[str, ElementBasis] | None = None,
    report_prefix: str | os.PathLike | None = None,
):
    """Build and write the targets of one matrix file; write ``<prefix>.coverage.{csv,json,png}``.

    ``kinds`` and ``basis`` (the material's basis registry, :meth:`hamforge.dft.CP2KSettings.kind_basis`) are
    those of :func:`hamforge.graph.build_targets`. ``report_prefix`` defaults to the output path without its
    suffix. All four files or none: they appear together at the end, and an error (or SIGTERM) in any step
    leaves none of them. Returns the coverage table.
    """
    prefix = Path(report_prefix) if report_prefix else Path(output).with_suffix("")
    outputs = [Path(output)] + [Path(f"{prefix}.coverage.{ext}") for ext in ("csv", "json", "png")]
    for o in outputs:
        check_output_path(o, inputs=[matrix_path])
    data = read_matrix_file(matrix_path)
    try:
        t = build_targets(data, r_cut, kinds=kinds, basis=basis)
    except ValueError as exc:
        raise ValueError(f"{matrix_path}: {exc}") from exc
    with atomic_paths(*outputs) as (tmp_out, tmp_csv, tmp_json, tmp_png):
        table = _write_all(data, t, r_cut, tmp_out, tmp_csv, tmp_json, tmp_png, Path(matrix_path).stem)
    logger.info(
        "%s: %d edges, %d pairs; fraction of |H| beyond r_cut = %s",
        output,
        int(t.nl.edge_index.shape[1]),
        int(t.pair_index.shape[1]),
        ", ".join(f"{r.kind_i}-{r.kind_j}: {r.fraction_abs_beyond:.2e}" for r in table.itertuples()),
    )
    return table


def _write_all(data, t, r_cut, out, csv, json_path, png, title):
    write_targets_file(out, t, data)
    table, blocks = coverage_report(data, t)
    write_text_atomic(csv, table.to_csv(index=False))
    summary = {
        "r_cut": float(r_cut),
        "n_atoms": int(data.n_atoms),
        "n_edges": int(t.nl.edge_index.shape[1]),
        "n_pairs": int(t.pair_index.shape[1]),
        "node_irreps": t.node_layout.irreps,
        "pair_irreps": t.pair_layout.irreps,
        "per_kind_pair": table.to_dict(orient="records"),
    }
    write_text_atomic(json_path, strict_json(summary, indent=2) + "\n")
    plot_coverage(blocks, r_cut, png, title=title)
    return table

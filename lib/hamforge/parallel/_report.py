"""Instrumentation output of a halo-exchanged run: CSV tables on rank 0 and the communication topology plot.

Files (``write_halo_report``, collective, written atomically by rank 0 into ``out_dir``)::

    halo_layers.csv     one row per rank, step, phase (forward | backward) and layer (HaloStats columns)
    halo_ranks.csv      one row per rank: atoms owned / ghost, owned edges, neighbour ranks, bytes sent,
                        summed times, comm_fraction = (pack + exchange + unpack) / (that + compute)
    halo_topology.csv   one row per (src, dst) pair that exchanged: bytes sent from src to dst
    halo_topology.png   ranks as nodes on a circle (area ~ owned atoms), edge width ~ bytes of the pair
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hamforge.io import atomic_path
from hamforge.parallel._plan import HaloPlan
from hamforge.parallel._stats import LAYER_COLUMNS, HaloStats

__all__ = ["write_halo_report", "plot_topology", "REPORT_FILES"]

REPORT_FILES = ("halo_layers.csv", "halo_ranks.csv", "halo_topology.csv", "halo_topology.png")
_TIMES = ("t_pack", "t_exchange", "t_unpack", "t_compute")


def _gather(payload: dict, group) -> list[dict]:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return [payload]
    out: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, payload, group=group)
    return out


def write_halo_report(stats: HaloStats, plan: HaloPlan, out_dir: str | os.PathLike, group=None) -> dict | None:
    """Gather every rank's records and write :data:`REPORT_FILES` on rank 0 (collective). Returns the
    paths on rank 0 (name -> Path), None on the other ranks."""
    import pandas as pd

    payload = {
        "rank": plan.rank,
        "rows": list(stats.rows),
        "bytes_to": dict(stats.bytes_to),
        "n_owned": plan.n_owned,
        "n_ghost": plan.n_ghost,
        "n_edges": int(plan.edges.shape[0]),
        "n_neighbours": len(plan.neighbours),
    }
    everyone = sorted(_gather(payload, group), key=lambda p: p["rank"])
    if plan.rank != 0:
        return None
    layers = pd.DataFrame([r for p in everyone for r in p["rows"]], columns=list(LAYER_COLUMNS))
    sums = layers.groupby("rank")[list(_TIMES)].sum().reindex([p["rank"] for p in everyone], fill_value=0.0)
    ranks = pd.DataFrame(
        {
            "rank": [p["rank"] for p in everyone],
            "n_owned": [p["n_owned"] for p in everyone],
            "n_ghost": [p["n_ghost"] for p in everyone],
            "n_edges": [p["n_edges"] for p in everyone],
            "n_neighbours": [p["n_neighbours"] for p in everyone],
            "bytes_sent": [int(sum(p["bytes_to"].values())) for p in everyone],
        }
    )
    for col in _TIMES:
        ranks[col] = sums[col].to_numpy()
    comm = ranks["t_pack"] + ranks["t_exchange"] + ranks["t_unpack"]
    total = comm + ranks["t_compute"]
    ranks["comm_fraction"] = np.where(total > 0, comm / total.where(total > 0, 1.0), 0.0)
    topology = pd.DataFrame(
        [(p["rank"], q, b) for p in everyone for q, b in sorted(p["bytes_to"].items()) if b > 0],
        columns=["src", "dst", "bytes"],
    )
    out = Path(out_dir)
    paths = {name: out / name for name in REPORT_FILES}
    for name, table in zip(REPORT_FILES[:3], (layers, ranks, topology)):
        with atomic_path(paths[name]) as tmp:
            table.to_csv(tmp, index=False)
    plot_topology(paths["halo_topology.png"], topology, ranks["n_owned"].to_numpy())
    return paths


def plot_topology(path: str | os.PathLike, topology, n_owned, title: str | None = None) -> None:
    """PNG (Agg canvas, no pyplot): ranks on a circle, node area ~ ``n_owned``, a line per pair of ranks
    that exchanged, width ~ bytes of both directions; ``topology`` has columns src, dst, bytes."""
    from matplotlib.figure import Figure

    n_owned = np.asarray(n_owned, float)
    world = n_owned.shape[0]
    angle = 2 * np.pi * np.arange(world) / max(world, 1) + np.pi / 2
    xy = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    volume: dict[tuple[int, int], float] = {}
    for s, d, b in zip(topology["src"], topology["dst"], topology["bytes"]):
        key = (min(int(s), int(d)), max(int(s), int(d)))
        volume[key] = volume.get(key, 0.0) + float(b)
    top = max(volume.values(), default=1.0)
    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.subplots()
    for (a, b), v in sorted(volume.items()):
        ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="tab:blue", alpha=0.6, lw=0.5 + 8.0 * v / top, zorder=1)
    size = 300.0 * n_owned / max(float(n_owned.max(initial=0.0)), 1.0) + 50.0
    ax.scatter(xy[:, 0], xy[:, 1], s=size, color="tab:orange", edgecolors="k", zorder=2)
    for r in range(world):
        ax.annotate(str(r), xy[r], ha="center", va="center", fontsize=8, zorder=3)
    ax.set_aspect("equal")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_axis_off()
    ax.set_title(title or f"halo exchange: {world} ranks, max pair volume {top / 1e3:.1f} kB")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

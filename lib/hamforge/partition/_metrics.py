"""Partition quality: per-part table, summary figures and a plot.

Per part ``p`` (columns of :func:`partition_metrics`'s table)::

    part                  part id
    labelled_nodes        atoms owned by p
    labelled_edges        edges owned by p (centre labelled: the edges p computes and is trained on)
    virtual_nodes         halo atoms (owned by other parts)
    virtual_edges         halo edges (centre is a virtual node; only for halo >= 2)
    local_nodes, local_edges   labelled + virtual (what p holds in memory)
    node_halo_ratio       virtual_nodes / labelled_nodes
    edge_halo_ratio       virtual_edges / labelled_edges
    neighbours            number of other parts owning at least one virtual node of p
                          (communication partners)
    embeddings_received   distinct atoms owned by other parts whose node embeddings p receives
                          (= virtual_nodes: every virtual node is owned by another part)

Summary: ``node_imbalance`` and ``edge_imbalance`` (max / mean of labelled nodes and labelled edges;
SC'25 defines edge imbalance on the edges a rank owns), ``local_edge_imbalance`` (max / mean of
local edges: memory per rank), ``neighbours_mean``/``neighbours_max``, ``node_halo_ratio_mean``,
``edge_halo_ratio_mean`` (mean over parts), ``embeddings_received_total``, ``partition_time_s``.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.partition._augment import AugmentedPartition
from hamforge.partition._checks import check_assignment, check_nl

__all__ = ["partition_metrics", "plot_partition"]

COLUMNS = (
    "part",
    "labelled_nodes",
    "labelled_edges",
    "virtual_nodes",
    "virtual_edges",
    "local_nodes",
    "local_edges",
    "node_halo_ratio",
    "edge_halo_ratio",
    "neighbours",
    "embeddings_received",
)


def partition_metrics(
    nl: NeighborList, assignment, parts: Sequence[AugmentedPartition], elapsed_s: float = float("nan")
):
    """Per-part table (``pandas.DataFrame``, columns in the module docstring) and summary dict.

    Args:
        nl: the neighbour list the parts were built from.
        assignment: ``(N,)`` part ids.
        parts: one :class:`AugmentedPartition` per part, in part order (:func:`augment_all`).
        elapsed_s: partitioning wall time in seconds, copied into the summary.

    Returns:
        ``(table, summary)``.
    """
    import pandas as pd

    nl = check_nl(nl)
    a, n_parts = check_assignment(assignment, nl.n_atoms)
    if len(parts) != n_parts or any(p.part != k for k, p in enumerate(parts)):
        raise ValueError(f"parts: expected the {n_parts} parts of the assignment in order 0..{n_parts - 1}")
    rows = []
    for p in parts:
        owners = np.unique(a[p.virtual_nodes])
        lab_e = p.n_labelled_edges
        rows.append(
            dict(
                part=p.part,
                labelled_nodes=p.n_labelled,
                labelled_edges=lab_e,
                virtual_nodes=p.n_virtual_nodes,
                virtual_edges=p.n_virtual_edges,
                local_nodes=p.n_nodes,
                local_edges=p.n_edges,
                node_halo_ratio=p.n_virtual_nodes / p.n_labelled,
                edge_halo_ratio=p.n_virtual_edges / lab_e if lab_e else (0.0 if p.n_virtual_edges == 0 else np.inf),
                neighbours=int(owners.size),
                embeddings_received=p.n_virtual_nodes,
            )
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))

    def imbalance(col):
        mean = float(table[col].mean())
        return float(table[col].max()) / mean if mean > 0 else 1.0

    summary: dict[str, Any] = dict(
        n_parts=n_parts,
        n_atoms=nl.n_atoms,
        n_edges=nl.n_edges,
        halo=int(parts[0].halo) if parts else 0,
        node_imbalance=imbalance("labelled_nodes"),
        edge_imbalance=imbalance("labelled_edges"),
        local_edge_imbalance=imbalance("local_edges"),
        neighbours_mean=float(table["neighbours"].mean()),
        neighbours_max=int(table["neighbours"].max()),
        node_halo_ratio_mean=float(table["node_halo_ratio"].mean()),
        edge_halo_ratio_mean=float(table["edge_halo_ratio"].mean()),
        embeddings_received_total=int(table["embeddings_received"].sum()),
        local_edges_max=int(table["local_edges"].max()),
        partition_time_s=float(elapsed_s),
    )
    return table, summary


def plot_partition(
    path: str | os.PathLike,
    nl: NeighborList,
    positions,
    assignment,
    table=None,
    *,
    projection: tuple[int, int] | None = None,
    title: str | None = None,
) -> None:
    """PNG (matplotlib, Agg canvas): atoms coloured by part on two Cartesian axes; bars of edges, neighbours.

    Positions are wrapped into the cell along periodic axes first. ``projection``: two Cartesian axes;
    None picks the two along which the part centroids spread most (the cut directions). ``table`` is the
    per-part table of :func:`partition_metrics` (without it only the projection is drawn). Written
    atomically.
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global backend state
    from matplotlib.ticker import MaxNLocator

    from hamforge.geometry import lattice
    from hamforge.io import atomic_path
    from hamforge.partition._geometry import check_positions

    nl = check_nl(nl)
    x = check_positions(nl, positions)
    a, n_parts = check_assignment(assignment, nl.n_atoms)
    xw = lattice(nl.cell, nl.pbc).wrap(x)
    if projection is None:
        counts = np.bincount(a, minlength=n_parts)[:, None]
        centroids = np.stack([np.bincount(a, weights=xw[:, k], minlength=n_parts) for k in range(3)], 1) / counts
        projection = tuple(sorted(np.argsort(-centroids.var(axis=0), kind="stable")[:2].tolist()))
    if len(projection) != 2 or any(k not in (0, 1, 2) for k in projection) or projection[0] == projection[1]:
        raise ValueError(f"projection: expected two different axes out of 0, 1, 2, got {projection!r}")
    panels = 1 if table is None else 3
    fig = Figure(figsize=(5.0 * panels, 4.5))
    axes = fig.subplots(1, panels, squeeze=False)
    ax = axes[0, 0]
    cmap = matplotlib.colormaps["tab10" if n_parts <= 10 else "tab20" if n_parts <= 20 else "nipy_spectral"]
    size = float(np.clip(2e4 / max(len(a), 1), 0.3, 30.0))
    ax.scatter(
        xw[:, projection[0]],
        xw[:, projection[1]],
        c=a,
        cmap=cmap,
        s=size,
        vmin=0,
        vmax=max(n_parts - 1, 1),
        linewidths=0,
    )
    names = "xyz"
    ax.set_xlabel(f"{names[projection[0]]} (Å)")
    ax.set_ylabel(f"{names[projection[1]]} (Å)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{n_parts} parts")
    if table is not None:
        p = table["part"].to_numpy()
        ax = axes[0, 1]
        ax.bar(p, table["labelled_edges"], label="labelled")
        ax.bar(p, table["virtual_edges"], bottom=table["labelled_edges"], label="virtual")
        ax.set_xlabel("part")
        ax.set_ylabel("edges")
        ax.legend(loc="lower right", framealpha=0.9)
        ax = axes[0, 2]
        ax.bar(p, table["neighbours"], color="tab:green")
        ax.set_xlabel("part")
        ax.set_ylabel("neighbouring parts")
        for ax in axes[0, 1:]:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

"""Brick-wall partitioner vs METIS (pymetis) and Low-NN: neighbours per part, edge imbalance, wall time.

One process, one neighbour list per cell, the three partitioners side by side on it; each partition is
augmented with a halo of 1 and measured with ``partition_metrics`` (neighbours = other parts owning a
virtual node; edge imbalance = max / mean of owned edges; node halo = virtual / labelled nodes; recv =
embeddings received in total). Times include each method's own preparation (node degrees and the layout
search for brick and Low-NN, the CSR adjacency for METIS).

Structures: amorphous-like random packing (``_structures.amorphous_like_si``) at 0.087 atoms / A^3 (a-HfO2's
density, the SC'25 graph: 24k atoms, r_cut 12 A, ~1.5e7 edges) with a 1.8 A minimum distance, in a cubic
cell and in a 1:1:4 cell (a quarter of the atoms in a cube, tiled 1 x 1 x 4).

Target (hamforge issue 13, item 4): brick's mean neighbours <= 0.85 x METIS at edge imbalance <= 1.05,
>= 10x faster than METIS.

    python benchmarks/bench_partition_brick.py            # 24,000 atoms, r_cut 12 A, 32/64/128 parts
    python benchmarks/bench_partition_brick.py --quick    # 3,000 atoms, r_cut 8 A, 8/16/32 parts
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _structures import amorphous_like_si

FULL = {"n_atoms": 24_000, "r_cut": 12.0, "parts": (32, 64, 128)}
QUICK = {"n_atoms": 3_000, "r_cut": 8.0, "parts": (8, 16, 32)}


def _best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def compare(label, atoms, r_cut, parts, repeat, metis_repeat):
    from hamforge.graph import neighbor_list
    from hamforge.partition import (
        augment_all,
        partition_brick,
        partition_lownn,
        partition_metis,
        partition_metrics,
        plan_brick,
    )
    from hamforge.partition._geometry import frame

    x, cell = atoms.positions, np.array(atoms.cell[:])
    t0 = time.perf_counter()
    nl = neighbor_list(x, cell, atoms.pbc, r_cut)
    lengths = " x ".join(f"{v:.1f}" for v in np.linalg.norm(cell, axis=1))
    print(
        f"{label}: {nl.n_atoms} atoms, {nl.n_edges:,} edges, r_cut = {r_cut} A, cell {lengths} A "
        f"(neighbour list {time.perf_counter() - t0:.1f} s)"
    )
    fns = {
        "brick": (lambda p: partition_brick(nl, x, p), repeat),
        "lownn": (lambda p: partition_lownn(nl, x, p), repeat),
        "metis": (lambda p: partition_metis(nl, p, seed=0), metis_repeat),
    }
    fr = frame(nl, x)
    rows = {}
    head = (
        f"{'parts':>5} {'method':>6} {'time s':>7} {'neigh mean':>10} {'max':>4} {'edge imb':>8} "
        f"{'node halo':>9} {'recv total':>11}"
    )
    print(head)
    print("-" * len(head))
    for p in parts:
        lay = plan_brick(fr.heights, fr.pbc, r_cut, p)
        for name, (fn, rep) in fns.items():
            t, a = _best(lambda fn=fn, p=p: fn(p), rep)
            _, s = partition_metrics(nl, a, augment_all(nl, a, 1), elapsed_s=t)
            rows[p, name] = s
            print(
                f"{p:>5} {name:>6} {t:>7.3f} {s['neighbours_mean']:>10.2f} {s['neighbours_max']:>4d} "
                f"{s['edge_imbalance']:>8.3f} {s['node_halo_ratio_mean']:>9.2f} "
                f"{s['embeddings_received_total']:>11,d}"
            )
        print(
            f"{'':>5} brick layout: axes {lay.axes}, counts {lay.counts}, shifts "
            f"({', '.join(f'{v:.3g}' for v in lay.shifts)}), modelled {lay.neighbours:.1f} neighbours"
        )
    print(
        "\nbrick vs METIS and Low-NN (neighbour ratio < 1: brick has fewer; target <= 0.85 x METIS, "
        "edge imbalance <= 1.05, >= 10x faster than METIS)"
    )
    print(
        f"{'parts':>5} {'neigh b/METIS':>13} {'neigh b/LowNN':>13} {'METIS t / b t':>13} {'LowNN t / b t':>13} "
        f"{'recv b/METIS':>12} {'target':>6}"
    )
    for p in parts:
        b, lo, me = rows[p, "brick"], rows[p, "lownn"], rows[p, "metis"]
        ok = (
            b["neighbours_mean"] <= 0.85 * me["neighbours_mean"]
            and b["edge_imbalance"] <= 1.05
            and me["partition_time_s"] >= 10 * b["partition_time_s"]
        )
        print(
            f"{p:>5} {b['neighbours_mean'] / me['neighbours_mean']:>13.2f} "
            f"{b['neighbours_mean'] / lo['neighbours_mean']:>13.2f} "
            f"{me['partition_time_s'] / b['partition_time_s']:>13.1f} "
            f"{lo['partition_time_s'] / b['partition_time_s']:>13.2f} "
            f"{b['embeddings_received_total'] / me['embeddings_received_total']:>12.2f} {'yes' if ok else 'no':>6}"
        )
    print(f"(brick and Low-NN best of {repeat}, METIS best of {metis_repeat})\n")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--n-atoms", type=int, default=None, help="override the number of atoms")
    ap.add_argument("--density", type=float, default=0.087, help="atoms / A^3")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats of brick and Low-NN (best of)")
    ap.add_argument("--metis-repeat", type=int, default=1, help="timing repeats of METIS (best of)")
    ap.add_argument("--cells", default="cube,long", help="comma-separated: cube, long (1:1:4)")
    args = ap.parse_args()
    size = dict(QUICK if args.quick else FULL)
    if args.n_atoms:
        size["n_atoms"] = args.n_atoms
    n = size["n_atoms"]
    cells = args.cells.split(",")
    if "cube" in cells:
        cube = amorphous_like_si(n, seed=0, density=args.density, min_distance=1.8)
        compare("cubic cell", cube, size["r_cut"], size["parts"], args.repeat, args.metis_repeat)
    if "long" in cells:
        long = amorphous_like_si(n // 4, seed=0, density=args.density, min_distance=1.8).repeat((1, 1, 4))
        compare(
            "1:1:4 cell (a quarter of the atoms tiled 1 x 1 x 4)",
            long,
            size["r_cut"],
            size["parts"],
            args.repeat,
            args.metis_repeat,
        )


if __name__ == "__main__":
    main()

"""``hamforge partition STRUCTURE ...``: partition one structure outside the workflow (thin adapter)."""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_partition_parser"]


def _cmd_partition(args: argparse.Namespace) -> int:
    from hamforge.partition._io import load_structure_graph
    from hamforge.partition._partition import run_partition, write_partition_outputs

    log = logging.getLogger("hamforge")
    sg = load_structure_graph(args.structure, args.rcut)
    options = {"axis": args.axis} if args.method == "slices" else {}
    if args.thickness is not None:
        if args.method != "slices":
            raise ValueError("thickness: only method 'slices' takes --thickness")
        options["thickness"] = args.thickness
    elif args.parts is None:
        raise ValueError("parts: --parts is required (or --thickness with --method slices)")
    if args.axis is not None and args.method != "slices":
        raise ValueError(f"axis: only method 'slices' takes --axis (got --method {args.method})")
    result = run_partition(sg.nl, sg.positions, args.method, args.parts, args.halo, **options)
    write_partition_outputs(result, sg.nl, sg.positions, args.output, plot=args.plot, metrics_csv=args.metrics_csv,
                            provenance={"structure": str(args.structure)},
                            title=f"{args.structure}: {args.method}, halo {args.halo}")
    s = result.summary
    log.info("wrote %s: %d atoms, %d edges, %d parts (%s, %.3f s), halo %d: edge imbalance %.3f, "
             "neighbours mean %.1f max %d, node halo ratio %.2f", args.output, s["n_atoms"], s["n_edges"],
             s["n_parts"], args.method, s["partition_time_s"], s["halo"], s["edge_imbalance"],
             s["neighbours_mean"], s["neighbours_max"], s["node_halo_ratio_mean"])
    return 0


def add_partition_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``partition`` subcommand to an ``argparse`` subparsers object; sets ``func``."""
    p = subparsers.add_parser(
        "partition",
        help="partition a structure's atom graph and add k-hop halos (HDF5 partition file)",
        description="Read STRUCTURE (any file ase.io.read reads, last frame; or a hamforge targets/matrix "
        ".h5 file), build its periodic neighbour list at --rcut (a targets file's stored graph is used "
        "as is), partition the atoms, add a halo of --halo hops to every part and write the partition "
        "file with its metrics.",
    )
    p.add_argument("structure", metavar="STRUCTURE")
    p.add_argument("--rcut", type=float, default=None, metavar="R",
                   help="neighbour cutoff in Angstrom (required unless STRUCTURE stores a graph)")
    p.add_argument("--method", choices=("slices", "lownn", "metis"), default="lownn")
    p.add_argument("--parts", type=int, default=None, metavar="P", help="number of parts")
    p.add_argument("--halo", type=int, default=1, metavar="K",
                   help="halo depth in hops (= message-passing layers for exact predictions; default 1)")
    p.add_argument("--axis", type=int, default=None, metavar="A",
                   help="slices: axis 0, 1 or 2 (default: the longest, by perpendicular height)")
    p.add_argument("--thickness", type=float, default=None, metavar="T",
                   help="slices: slice thickness in Angstrom instead of --parts")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also write a plot of the partition")
    p.add_argument("--metrics-csv", default=None, metavar="OUT.csv", help="also write the per-part metrics")
    p.set_defaults(func=_cmd_partition)
    return p

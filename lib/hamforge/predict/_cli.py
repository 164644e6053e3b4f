"""``hamforge predict MODEL STRUCTURE [--tile NX NY NZ] -o OUT.h5`` and ``hamforge export FILE.h5 --format F``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

__all__ = ["add_predict_parsers"]


def _cmd_predict(args: argparse.Namespace) -> int:
    import contextlib

    from hamforge._dist import distributed
    from hamforge.predict._predict import predict_file

    halo = args.parallel in ("halo", "ranks")  # both run under torchrun/srun
    with distributed(device=args.device) if halo else contextlib.nullcontext() as ctx:
        prov = predict_file(
            args.model,
            args.structure,
            args.output,
            tuple(args.tile),
            overlap=True,
            n_parts=args.parts,
            atoms_per_part=args.atoms_per_part,
            method=args.method,
            device=ctx.device if halo else args.device,
            basis_file=args.basis_file,
            overlap_eps=args.overlap_eps,
            overlap_check_orbitals=args.overlap_check_orbitals,
            parallel=args.parallel,
            h_dtype="float32" if args.float32 else "float64",
        )
    if prov is None:  # --parallel halo, a rank other than 0
        return 0
    a = prov["asymmetry_before_symmetrization_hartree"]
    logging.getLogger("hamforge").info(
        "wrote %s: %d atoms, %d edges, %d part(s); asymmetry removed max %.3g Ha; S min eigenvalue %s; peak memory "
        "%s MB; times %s",
        args.output,
        prov["n_atoms"],
        prov["n_edges"],
        prov["n_parts"],
        a["edge_asymmetry_max"],
        prov.get("min_eigenvalue_S"),
        round(prov["peak_rss_mb"]) if "peak_rss_mb" in prov else "?",
        json.dumps({k: round(v, 2) for k, v in prov["timings_s"].items()}),
    )
    return 0


def _eps(text: str) -> float:
    """argparse type: a number in (0, 1) (a block-norm threshold)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < x < 1:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return x


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        x = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if x < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return x


def _cmd_export(args: argparse.Namespace) -> int:
    from hamforge.io import export_file

    prefix = Path(args.output) if args.output else Path(args.file).with_suffix("")
    for p in export_file(args.file, args.format, prefix):
        logging.getLogger("hamforge").info("wrote %s", p)
    return 0


def add_predict_parsers(subparsers) -> None:
    """Add the ``predict`` and ``export`` subcommands to an ``argparse`` subparsers object; set ``func``."""
    from hamforge.io import EXPORT_FORMATS
    from hamforge.partition import METHODS
    from hamforge.predict._infer import DEFAULT_ATOMS_PER_PART
    from hamforge.predict._predict import DEFAULT_OVERLAP_CHECK_ORBITALS, DEFAULT_OVERLAP_EPS, PREDICT_PARALLEL

    p = subparsers.add_parser(
        "predict",
        help="predict H (and the exact S) of any structure, optionally tiled, as a matrix file (v3)",
        description="STRUCTURE: anything ASE reads (extxyz, CIF, POSCAR, LAMMPS data) or a hamforge matrix file. "
        "Atoms of a plain file get the kind of their chemical symbol; kinds must be the model's.",
    )
    p.add_argument("model", metavar="MODEL.pt")
    p.add_argument("structure", metavar="STRUCTURE")
    p.add_argument(
        "--tile",
        nargs=3,
        type=int,
        default=(1, 1, 1),
        metavar=("NX", "NY", "NZ"),
        help="repeat the cell NX x NY x NZ times (periodic axes only; default 1 1 1)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5")
    p.add_argument(
        "--parts", type=_positive, default=None, metavar="P", help="number of parts (default: from --atoms-per-part)"
    )
    p.add_argument(
        "--atoms-per-part",
        type=_positive,
        default=DEFAULT_ATOMS_PER_PART,
        metavar="N",
        help=f"labelled atoms per streamed part (default {DEFAULT_ATOMS_PER_PART}); memory grows with it, the "
        "halo's share of the work shrinks",
    )
    p.add_argument(
        "--float32",
        action="store_true",
        help="store H in float32 (half of H's bytes; relative rounding 6e-8 of each element, docs/predict.md)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="lownn",
        help="partitioner (streamed: on the positions, equal atom counts; metis needs the whole graph in memory)",
    )
    p.add_argument(
        "--parallel",
        choices=PREDICT_PARALLEL,
        default="partitions",
        help="partitions: parts streamed through this process (memory of one part); ranks: the same parts shared "
        "by the torchrun/srun ranks, each writing its rows to OUT.h5.part<r>of<W>.h5 beside OUT.h5 (keep them: "
        "OUT.h5 reads them as HDF5 virtual datasets); halo: one graph, one part per rank, node embeddings "
        "exchanged every layer, gathered and written by rank 0 (in memory)",
    )
    p.add_argument("--device", default=None, help="torch device (default: where the checkpoint loads, cpu)")
    p.add_argument("--basis-file", default=None, help="CP2K basis file for the exact S (default BASIS_MOLOPT)")
    p.add_argument(
        "--overlap-eps",
        type=_eps,
        default=DEFAULT_OVERLAP_EPS,
        metavar="EPS",
        help=f"S blocks of atom pairs with ||S_ij|| below EPS are left out; sets the range of S "
        f"(default {DEFAULT_OVERLAP_EPS:g}; see docs/overlap.md)",
    )
    p.add_argument(
        "--overlap-check-orbitals",
        type=int,
        default=DEFAULT_OVERLAP_CHECK_ORBITALS,
        metavar="N",
        help="check S positive definite (Lanczos) up to this many orbitals",
    )
    p.set_defaults(func=_cmd_predict)

    e = subparsers.add_parser("export", help="export a matrix file: Matrix Market, CP2K CSR text or sisl TSHS")
    e.add_argument("file", metavar="FILE.h5")
    e.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    e.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="PREFIX",
        help="output prefix (default FILE without .h5): PREFIX.H.mtx/.S.mtx, PREFIX.KS.csr/.S.csr, PREFIX.TSHS",
    )
    e.set_defaults(func=_cmd_export)

"""``hamforge <stage> ...``: run any stage on files made outside the workflow.

Every subcommand is a thin adapter over the library; errors from bad input are printed as one line
naming the file and field (exit code 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

__all__ = ["main", "build_parser"]

# Exceptions that mean "bad input": printed as one line, exit code 2. Resolved lazily (no import-time work).
_USER_ERRORS = (
    "hamforge.dft:DFTError",
    "hamforge.basis:BasisError",
    "hamforge.io:MatrixFileError",
    "hamforge.config:ConfigError",
    "builtins:ValueError",
)


def _user_error_types() -> tuple[type[BaseException], ...]:
    import importlib

    out = []
    for spec in _USER_ERRORS:
        mod, name = spec.split(":")
        try:
            out.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            continue
    return tuple(out) + (FileNotFoundError,)


def _cmd_parse_cp2k(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hamforge.dft import parse_cp2k_run
    from hamforge.io import check_output_path, write_matrix_file

    run_dir = Path(args.run_dir)
    # refuse before the (slow) parse: an output that would replace an input, a directory, a device, ...
    check_output_path(args.output, inputs=[p for p in run_dir.iterdir() if p.is_file()] if run_dir.is_dir() else [])
    data = parse_cp2k_run(
        run_dir, input_name=args.input, asymmetry_tol=args.asymmetry_tol, allow_unconverged=args.allow_unconverged
    )
    write_matrix_file(args.output, data)
    logging.getLogger("hamforge").info(
        "wrote %s: %d atoms, %d orbitals, nnz(H) = %d, max |H - H^T| removed = %.3g Ha",
        args.output, data.n_atoms, data.H.shape[0], data.H.nnz, data.provenance.get("max_asymmetry_H", 0.0),
    )
    return 0


def _tolerance(text: str) -> float:
    """argparse type: a finite number >= 0 (NaN, inf and negative tolerances would accept anything or nothing)."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return v


def _add_parse_cp2k(sub) -> None:
    p = sub.add_parser(
        "parse-cp2k",
        help="CP2K run directory (input + KS/S CSR files) -> matrix file (HDF5)",
        description="Read the CP2K input of RUN_DIR (structure, cell, kinds, basis files) and the KS and S CSR "
        "files it wrote, check them, and write a hamforge matrix file.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", required=True, metavar="FILE.h5")
    p.add_argument("--input", default=None, help="input file name inside RUN_DIR (default: the only *.inp)")
    p.add_argument(
        "--asymmetry-tol",
        type=_tolerance,
        default=1e-6,
        help="largest |A - A^T| (Hartree) accepted and removed by symmetrizing (default 1e-6)",
    )
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="accept matrices of a run whose cp2k.out reports an unconverged SCF (recorded in the provenance)",
    )
    p.set_defaults(func=_cmd_parse_cp2k)


def _cmd_targets(args: argparse.Namespace) -> int:
    from hamforge.graph import make_targets_file

    make_targets_file(args.matrix, args.rcut, args.output, kinds=args.kinds)
    return 0


def _add_targets(sub) -> None:
    p = sub.add_parser(
        "targets",
        help="matrix file -> coupled-basis learning targets on the periodic graph (HDF5)",
        description="Build the periodic graph (edges within r_cut, images included), fold H and S onto its nodes "
        "and atom pairs, couple every shell block into |L,M> components and write the targets file, plus a "
        "coverage report (<output>.coverage.csv/json/png) of how much of H lies beyond r_cut.",
    )
    p.add_argument("matrix", metavar="MATRIX.h5")
    p.add_argument("--rcut", type=float, required=True, help="graph cutoff in Angstrom")
    p.add_argument("-o", "--output", required=True, metavar="TARGETS.h5")
    p.add_argument("--kinds", nargs="+", default=None, help="species (kind labels) of the layout; default: this structure's")
    p.set_defaults(func=_cmd_targets)


def _add_partition(sub) -> None:
    from hamforge.partition import add_partition_parser

    add_partition_parser(sub)


_SUBCOMMANDS: list[Callable] = [_add_parse_cp2k, _add_targets, _add_partition]


def build_parser() -> argparse.ArgumentParser:
    from hamforge import __version__

    ap = argparse.ArgumentParser(prog="hamforge", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"hamforge {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    from hamforge._logging import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except _user_error_types() as exc:
        if args.verbose:
            raise
        print(f"hamforge {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

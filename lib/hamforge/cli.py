"""``hamforge <stage> ...``: run any stage on files made outside the workflow.

Every subcommand is a thin adapter over the library; errors from bad input are printed as one line
naming the file and field (exit code 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["add_partition_parser", "build_parser", "main"]

# Exceptions that mean "bad input": printed as one line, exit code 2. Resolved lazily (no import-time work).
_USER_ERRORS = (
    "hamforge._errors:HamforgeError",  # every room's user errors derive from it
    "hamforge.dft:DFTError",
    "hamforge.basis:BasisError",
    "hamforge.io:FileFormatError",
    "hamforge.config:ConfigError",
    "builtins:ValueError",
    # the machine's answer about a path (no space left, permission, not a directory): it names the file
    "builtins:OSError",
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
        args.output,
        data.n_atoms,
        data.H.shape[0],
        data.H.nnz,
        data.provenance.get("max_asymmetry_H", 0.0),
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
    from hamforge.stages import make_targets_file

    basis = None
    if args.config:
        from hamforge.config import load_config
        from hamforge.dft import CP2KSettings

        mat = _material(load_config(args.config), args.config, args.material)
        basis = CP2KSettings.from_config(mat["dft"]).kind_basis()
    make_targets_file(args.matrix, args.rcut, args.output, kinds=args.kinds, basis=basis)
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
    p.add_argument(
        "--kinds",
        nargs="+",
        default=None,
        help="species (kind labels) of the layout; default: every kind of --config's material, else this structure's",
    )
    _add_config_args(
        p,
        "whose material's dft.kinds give the basis registry: every configured kind (ghosts included) is in the "
        "layout even when this structure has no atom of it, as the workflow's targets are",
    )
    p.set_defaults(func=_cmd_targets)


def _cmd_partition(args: argparse.Namespace) -> int:
    from hamforge.stages import make_partition_file

    options = {"axis": args.axis} if args.method == "slices" else {}
    if args.thickness is not None:
        if args.method != "slices":
            raise ValueError("thickness: only method 'slices' takes --thickness")
        options["thickness"] = args.thickness
    elif args.parts is None:
        raise ValueError("parts: --parts is required (or --thickness with --method slices)")
    if args.axis is not None and args.method != "slices":
        raise ValueError(f"axis: only method 'slices' takes --axis (got --method {args.method})")
    make_partition_file(
        args.structure,
        args.output,
        method=args.method,
        parts=args.parts,
        halo=args.halo,
        r_cut=args.rcut,
        plot=args.plot,
        metrics_csv=args.metrics_csv,
        **options,
    )
    return 0


def add_partition_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``partition`` subcommand to an ``argparse`` subparsers object; sets ``func``."""
    from hamforge.partition import METHODS

    p = subparsers.add_parser(
        "partition",
        help="partition a structure's atom graph and add k-hop halos (HDF5 partition file)",
        description="Read STRUCTURE (any file ase.io.read reads, last frame; or a hamforge targets/matrix "
        ".h5 file), build its periodic neighbour list at --rcut (a targets file's stored graph is used "
        "as is), partition the atoms, add a halo of --halo hops to every part and write the partition "
        "file with its metrics.",
    )
    p.add_argument("structure", metavar="STRUCTURE")
    p.add_argument(
        "--rcut",
        type=float,
        default=None,
        metavar="R",
        help="neighbour cutoff in Angstrom (required unless STRUCTURE stores a graph)",
    )
    p.add_argument("--method", choices=METHODS, default="lownn")
    p.add_argument("--parts", type=int, default=None, metavar="P", help="number of parts")
    p.add_argument(
        "--halo",
        type=int,
        default=1,
        metavar="K",
        help="halo depth in hops (= message-passing layers for exact predictions; default 1)",
    )
    p.add_argument(
        "--axis",
        type=int,
        default=None,
        metavar="A",
        help="slices: axis 0, 1 or 2 (default: the longest, by perpendicular height)",
    )
    p.add_argument(
        "--thickness",
        type=float,
        default=None,
        metavar="T",
        help="slices: slice thickness in Angstrom instead of --parts",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also write a plot of the partition")
    p.add_argument("--metrics-csv", default=None, metavar="OUT.csv", help="also write the per-part metrics")
    p.set_defaults(func=_cmd_partition)
    return p


_TRAIN_FLAGS = ("lr", "min_lr", "patience", "factor", "threshold", "batch_size", "dtype", "seed", "node_weight")
_MODEL_FLAGS = {"l_max": "l_max", "embed_dim": "embed_dim", "layers": "n_layers"}


def _add_config_args(p, what: str) -> None:
    """``--config`` (repeatable: merged in order) and ``--material`` of a subcommand; ``what`` ends the help."""
    p.add_argument(
        "--config",
        action="append",
        default=None,
        metavar="CONFIG.yaml",
        help=f"workflow config (repeat --config to merge several in order, like snakemake --configfile A B) {what}",
    )
    p.add_argument("--material", default=None, help="material of --config (needed when it has several)")


def _material(cfg: dict, paths, name):
    path = " + ".join(paths)
    mats = cfg["materials"]
    name = name or (next(iter(mats)) if len(mats) == 1 else None)
    if name not in mats:
        raise ValueError(f"{path}: --material {name!r}: choose one of {sorted(mats)}")
    return mats[name]


def _train_inputs(args: argparse.Namespace):
    """(model hyperparameters, TrainSettings): the --config material's ``model`` and ``train`` blocks (schema
    defaults filled) or the flags' defaults, then every flag given on the command line on top."""
    from hamforge.train import TrainSettings

    if args.config:
        from hamforge.config import load_config

        mat = _material(load_config(args.config), args.config, args.material)
        hyper, train = dict(mat["model"]), dict(mat["train"])
        budget = train.pop("time_budget_min")
        train["time_budget_s"] = None if budget is None else 60.0 * budget
        train.pop("validation_structures")  # the CLI names its validation files (--val)
        if train.pop("use_partitions"):
            raise ValueError(
                f"{' + '.join(args.config)}: train.use_partitions: the CLI trains on the full graphs of its targets "
                "files; set it to false or run the workflow's train rule"
            )
    else:
        hyper, train = {"l_max": 4, "embed_dim": 16, "n_layers": 1}, {}  # TrainSettings: the paper's schedule
    for flag in _TRAIN_FLAGS:
        if getattr(args, flag) is not None:
            train[flag] = getattr(args, flag)
    for flag, key in _MODEL_FLAGS.items():
        if getattr(args, flag) is not None:
            hyper[key] = getattr(args, flag)
    if args.epochs is not None:
        train["max_epochs"] = args.epochs
    if args.budget_min is not None:
        train["time_budget_s"] = 60.0 * args.budget_min
    if args.parallel is not None:
        train["parallel"] = args.parallel
    if args.halo_partition is not None:
        train["halo_partition"] = args.halo_partition
    if args.halo_report:
        train["halo_report"] = True
    if args.symmetrize is not None:
        train["symmetrize"] = args.symmetrize
    return hyper, TrainSettings.from_dict(train)


def _cmd_train(args: argparse.Namespace) -> int:
    from hamforge.stages import train_model

    hyper, settings = _train_inputs(args)
    entry = lambda p: {"structure": Path(p).stem, "targets": p}  # noqa: E731
    out = Path(args.output)
    train_model(
        [entry(p) for p in args.targets],
        [entry(p) for p in args.val],
        hyper,
        settings,
        out / "checkpoints",
        outputs={
            "model": out / "model.pt",
            "metrics": out / "metrics.csv",
            "curve": out / "learning_curve.png",
            "summary": out / "summary.json",
        },
    )
    return 0


def _add_train(sub) -> None:
    from hamforge.partition import METHODS
    from hamforge.train import PARALLEL as TRAIN_PARALLEL

    p = sub.add_parser(
        "train",
        help="train the equivariant network on targets files (torchrun/srun for several ranks)",
        description="Train a model whose species, layouts and r_cut come from the targets files; "
        "checkpoints in OUT/checkpoints (a rerun resumes), model.pt, metrics.csv, "
        "learning_curve.png and summary.json in OUT.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGETS.h5")
    p.add_argument("--val", nargs="*", default=[], metavar="TARGETS.h5", help="validation targets files")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    _add_config_args(
        p,
        "whose material's model and train blocks are the settings (flags given override them); without it the "
        "paper's schedule (lr 1e-4 -> 1e-5, patience 500) and l_max 4",
    )
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--min-lr", type=float, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--factor", type=float, default=None, help="ReduceLROnPlateau lr factor")
    p.add_argument("--threshold", type=float, default=None, help="ReduceLROnPlateau relative improvement")
    p.add_argument("--node-weight", type=float, default=None, help="weight of the on-site term of the loss")
    p.add_argument(
        "--symmetrize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="loss and metrics on the symmetrized blocks (H_ij + H_ji^T) / 2 that predict delivers (full graphs)",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--budget-min", type=float, default=None, help="wall-time budget in minutes")
    p.add_argument("--batch-size", type=int, default=None, help="samples per optimizer step (0 = all)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--l-max", type=int, default=None)
    p.add_argument("--embed-dim", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument(
        "--parallel",
        choices=TRAIN_PARALLEL,
        default=None,
        help="partitions: whole structures spread over the torchrun/srun ranks (DDP); halo: every structure split "
        "into one part per rank, node embeddings halo-exchanged every layer (docs/training.md)",
    )
    p.add_argument(
        "--halo-partition",
        choices=METHODS,
        default=None,
        help="--parallel halo: partitioner of the structures (default lownn)",
    )
    p.add_argument(
        "--halo-report",
        action="store_true",
        help="--parallel halo: write the halo report of the last epoch to OUT_DIR/checkpoints/halo_report/",
    )
    p.set_defaults(func=_cmd_train)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from hamforge.stages import evaluate_model

    m = evaluate_model(args.model, args.targets, args.output)
    print(json.dumps({k: v for k, v in m.items() if k.startswith("mae_")}, indent=2))
    b = m["baseline"]
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"MAE (meV)      {'model':>9} {'baselines':>9}" + ("" if m["baseline_fitted"] else "  (no baseline fitted)"))
    for key in ("node", "edge", "total"):
        print(f"  {key:<12} {f(m[f'mae_{key}_meV']):>9} {f(b.get(f'mae_{key}_meV')):>9}")
    al = m["shift_aligned"]
    print(
        f"potential shift mu = {m['potential_shift_meV']:.2f} meV (H + mu S): aligned MAE total "
        f"{f(al['mae_total_meV'])}, edges {f(al['mae_edge_meV'])}; mean signed on-site error "
        f"{f(m['mean_signed_onsite_error_meV'])} meV"
    )
    print("pair distance (A)  entries   model  baselines   MAE (meV)")
    for row in m["by_distance"]:
        print(
            f"  {row['r_min_A']:4.1f}-{row['r_max_A']:4.1f}  {row['entries']:9d} {f(row['model_mae_meV']):>7} "
            f"{f(row['baseline_mae_meV']):>9}"
        )
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="MAE (meV) of a trained model on one targets file",
        description="Evaluate MODEL.pt on TARGETS.h5 (refused when layout, kinds, basis or r_cut "
        "differ): MAE in the uncoupled basis, nodes, edges, total and per element pair, beside the model's "
        "physics baselines alone; by pair distance and coupled slot; after the best potential shift H + mu S; "
        "the mean signed on-site error. -o writes all of it as JSON.",
    )
    p.add_argument("model", metavar="MODEL.pt")
    p.add_argument("targets", metavar="TARGETS.h5")
    p.add_argument("-o", "--output", default=None, metavar="metrics.json")
    p.set_defaults(func=_cmd_evaluate)


def _add_validate(sub) -> None:
    from hamforge.validate import add_validate_parsers

    add_validate_parsers(sub)


def _add_predict(sub) -> None:
    from hamforge.predict import add_predict_parsers

    add_predict_parsers(sub)


def _add_release(sub) -> None:
    from hamforge._cli_release import add_release_parsers

    add_release_parsers(sub)


_SUBCOMMANDS: list[Callable] = [
    _add_parse_cp2k,
    _add_targets,
    add_partition_parser,
    _add_train,
    _add_evaluate,
    _add_predict,
    _add_validate,
    _add_release,
]


def build_parser() -> argparse.ArgumentParser:
    from hamforge import __version__

    ap = argparse.ArgumentParser(prog="hamforge", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"hamforge {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return ap


def _guard_paths(args: argparse.Namespace) -> None:
    from hamforge._cli_guard import guard_paths

    guard_paths(args)


def main(argv: Sequence[str] | None = None) -> int:
    from hamforge._logging import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        _guard_paths(args)  # hamforge._cli_guard
        return int(args.func(args) or 0)
    except _user_error_types() as exc:
        if args.verbose:
            raise
        print(f"hamforge {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

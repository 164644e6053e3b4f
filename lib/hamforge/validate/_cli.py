"""``hamforge eigen PRED.h5 REF.h5`` and ``hamforge transport FILE.h5 [REF.h5]`` (thin adapters)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from hamforge.io.units import HARTREE_TO_EV

__all__ = ["add_validate_parsers"]


def _cmd_eigen(args: argparse.Namespace) -> int:
    from hamforge.validate._pipeline import validate_pair

    out_dir = Path(args.output).parent if args.output else Path(args.out_dir)
    m = validate_pair(
        args.pred,
        args.ref,
        out_dir,
        n_occupied=args.n_occupied,
        dense_limit=args.dense_limit,
        k=args.k,
        sigma=None if args.sigma is None else args.sigma / HARTREE_TO_EV,
        dos_width=args.dos_width / HARTREE_TO_EV,
        plots_dir=args.plots_dir,
        plots=not args.no_plots,
        metrics_path=args.output,
    )
    logging.getLogger("hamforge").info(
        "%s vs %s (%s, %d states): eig_rel_l1 %.4g, occupied %.4g, gap error %s meV, mae_total %.4g meV",
        args.pred,
        args.ref,
        m["eig_method"],
        m["n_states_compared"],
        m["eig_rel_l1"],
        m["eig_rel_l1_occupied"],
        None if m.get("gap_error_meV") is None else f"{m['gap_error_meV']:.3f}",
        m["mae_total_meV"],
    )
    return 0


def _cmd_transport(args: argparse.Namespace) -> int:
    from hamforge.validate._pipeline import validate_transport

    if args.ne < 2:
        raise ValueError(f"ne: need at least 2 energies, got {args.ne}")
    if not args.emax > args.emin:
        raise ValueError(f"emax: must exceed emin ({args.emin} eV), got {args.emax} eV")
    energies = np.linspace(args.emin, args.emax, args.ne) / HARTREE_TO_EV
    from hamforge.io import staged_directory

    with staged_directory(args.out_dir) as stage:  # the CSVs, JSON and plot: all of them or none
        m = validate_transport(
            args.file,
            stage,
            axis=args.axis,
            energies=energies,
            eta=args.eta / HARTREE_TO_EV,
            biases=args.bias,
            temperature=args.temperature,
            mu=None if args.mu is None else args.mu / HARTREE_TO_EV,
            thickness=args.thickness,
            wide_band=None if args.wide_band is None else args.wide_band / HARTREE_TO_EV,
            ref_path=args.ref,
            plots=not args.no_plots,
        )
    log = logging.getLogger("hamforge")
    for v, i in zip(m["biases_V"], m["current_A"]):
        log.info("V = %g V: I = %.6g A", v, i)
    log.info("convergence: %s; wrote %s", m["convergence"], Path(args.out_dir) / "transport.json")
    return 0


def add_validate_parsers(subparsers) -> None:
    """Add the ``eigen`` and ``transport`` subcommands to an ``argparse`` subparsers object; set ``func``."""
    p = subparsers.add_parser(
        "eigen",
        help="compare generalized eigenvalues and matrix elements of PRED.h5 against REF.h5 (metrics.json)",
        description="Check both matrix files (H symmetric, S positive definite, same structure), solve "
        "H x = e S x for each with its own S (dense up to --dense-limit orbitals, otherwise --k states around "
        "the Fermi level by shift-invert) and write metrics.json, eigenvalues.csv and plots. Energies in eV.",
    )
    p.add_argument("pred", metavar="PRED.h5")
    p.add_argument("ref", metavar="REF.h5")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="metrics.json",
        help="metrics file (its folder receives the CSV and, without --plots-dir, the plots)",
    )
    p.add_argument("--out-dir", default=".", help="output folder when -o is not given (default: .)")
    p.add_argument("--plots-dir", default=None, metavar="DIR", help="folder for the PNG plots")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument(
        "--n-occupied",
        type=int,
        default=None,
        metavar="N",
        help="doubly occupied states (default: from REF.h5's provenance)",
    )
    p.add_argument(
        "--dense-limit",
        type=int,
        default=5000,
        metavar="N",
        help="largest number of orbitals diagonalized densely (default 5000)",
    )
    p.add_argument("--k", type=int, default=100, help="states in the shift-invert window (default 100)")
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        metavar="EV",
        help="shift-invert centre in eV (default: inside the reference's gap, by inertia bisection)",
    )
    p.add_argument("--dos-width", type=float, default=0.1, metavar="EV", help="DOS Gaussian sigma (default 0.1 eV)")
    p.set_defaults(func=_cmd_eigen)

    t = subparsers.add_parser(
        "transport",
        help="NEGF transmission T(E) and Landauer current of FILE.h5 (and REF.h5) along an axis",
        description="Cut a structure periodic along --axis open there (from per-image blocks, or from Gamma-point "
        "matrices when the cell exceeds twice the interaction range), order the orbitals along the axis into "
        "principal layers, attach semi-infinite leads that "
        "repeat the end layers (Sancho-Rubio surface Green's functions with overlap) or wide-band leads, "
        "compute T(E) by recursive Green's functions on an energy grid and I(V) by the Landauer formula. "
        "Energies in eV, bias in V, currents in A. Writes transmission.csv, current.csv, transport.json, "
        "transmission.png to --out-dir.",
    )
    t.add_argument("file", metavar="FILE.h5")
    t.add_argument("ref", metavar="REF.h5", nargs="?", default=None, help="reference computed the same way")
    t.add_argument("--axis", choices=("x", "y", "z"), required=True)
    t.add_argument("--emin", type=float, required=True, metavar="EV")
    t.add_argument("--emax", type=float, required=True, metavar="EV")
    t.add_argument("--ne", type=int, default=201, help="energy points (default 201)")
    t.add_argument("--eta", type=float, default=1e-6, metavar="EV", help="broadening i*eta (default 1e-6 eV)")
    t.add_argument("--bias", type=float, nargs="*", default=[], metavar="V", help="bias voltages (V)")
    t.add_argument("--temperature", type=float, default=300.0, metavar="K", help="lead temperature (default 300 K)")
    t.add_argument(
        "--mu",
        type=float,
        default=None,
        metavar="EV",
        help="equilibrium chemical potential (default: the centre of the energy grid)",
    )
    t.add_argument(
        "--thickness",
        type=float,
        default=None,
        metavar="A",
        help="principal layer thickness in Angstrom (default: the interaction range along the axis)",
    )
    t.add_argument(
        "--wide-band",
        type=float,
        default=None,
        metavar="EV",
        help="use wide-band leads with this broadening instead of semi-infinite leads",
    )
    t.add_argument("--out-dir", default=".", help="output folder (default: .)")
    t.add_argument("--no-plots", action="store_true")
    t.set_defaults(func=_cmd_transport)

"""``hamforge release`` and ``hamforge verify``: dataset releases outside the workflow (thin adapters)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["add_release_parsers"]


def _cmd_release(args: argparse.Namespace) -> int:
    from hamforge.config import load_config
    from hamforge.io._release import make_release

    config = load_config(args.config)
    material_dir = Path(args.material_dir)
    out = Path(args.output) if args.output else material_dir / "release"
    manifest = make_release(material_dir, out, config, material=args.material, force=args.force)
    n_nd = sum(not f["deterministic"] for f in manifest["files"].values())
    logging.getLogger("hamforge").info(
        "wrote %s: %d files (%d marked non-deterministic), config hash %s",
        out,
        len(manifest["files"]),
        n_nd,
        manifest["config"]["hash"],
    )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from hamforge.io._release import verify_release

    check = verify_release(args.release_dir)
    print(check.report())
    return 0 if check.ok else 1


def add_release_parsers(subparsers) -> None:
    """Add the ``release`` and ``verify`` subcommands to an ``argparse`` subparsers object (sets ``func``)."""
    p = subparsers.add_parser(
        "release",
        help="collect a material's results into a checksummed release folder with a data card",
        description="Copy the structures, matrix files, targets, partitions, index (and model and metrics when "
        "present; config key release.include) of MATERIAL_DIR (results/<material>) into a release folder with "
        "config.yaml, a data card README.md and manifest.json (SHA-256 of every file, config hash, seeds, "
        "software versions).",
    )
    p.add_argument("material_dir", metavar="MATERIAL_DIR", help="results/<material> of a workflow run")
    p.add_argument(
        "--config",
        required=True,
        action="append",
        metavar="CONFIG.yaml",
        help="the workflow config of that run (repeat --config to merge several in order, like snakemake "
        "--configfile A B)",
    )
    p.add_argument("--material", default=None, help="material name in the config (default: MATERIAL_DIR's name)")
    p.add_argument("-o", "--output", default=None, metavar="DIR", help="release folder (default MATERIAL_DIR/release)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace DIR also when it is a previous release with a damaged manifest.json (never other folders)",
    )
    p.set_defaults(func=_cmd_release)

    v = subparsers.add_parser(
        "verify",
        help="check a release folder against its manifest (exit code 1 names changed, missing, extra files)",
        description="Recompute the SHA-256 of every file of RELEASE_DIR and compare with manifest.json; print "
        "every changed, missing or unlisted file. Exit code 0 when everything matches, 1 otherwise.",
    )
    v.add_argument("release_dir", metavar="RELEASE_DIR")
    v.set_defaults(func=_cmd_verify)

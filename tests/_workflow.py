"""A copy of the workflow for tests that run Snakemake (a helper module, not a test file)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_workflow(dst: Path, keep_docs: bool = False) -> Path:
    """Copy the checkout's workflow (Snakefile, rules, config, lib, profiles) to ``dst``: its own .snakemake/
    and results. ``symlinks=True`` keeps ./slurm -> profiles/slurm a link, as in a checkout; ``keep_docs``
    for tests that run the how-to's commands."""
    skip = [".venv", "results*", ".snakemake", ".git", "tests", "benchmarks"] + ([] if keep_docs else ["docs"])
    shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(*skip))
    return dst

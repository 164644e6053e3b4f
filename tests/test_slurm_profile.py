"""The SLURM profile (profiles/slurm/config.yaml, a YTE template): the literal `snakemake --profile slurm` works on a
cluster with a default account and partition; HAMFORGE_SLURM_ACCOUNT / _PARTITION (or SBATCH_*) override (issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yte

ROOT = Path(__file__).resolve().parents[1]
VARS = ("HAMFORGE_SLURM_ACCOUNT", "HAMFORGE_SLURM_PARTITION", "SBATCH_ACCOUNT", "SBATCH_PARTITION")


def _resources(monkeypatch, **env):
    for v in VARS:
        monkeypatch.delenv(v, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return yte.process_yaml((ROOT / "profiles/slurm/config.yaml").read_text())["default-resources"]


def test_account_and_partition_are_optional_overrides(monkeypatch):
    plain = _resources(monkeypatch)
    assert "slurm_account" not in plain and "slurm_partition" not in plain and plain["mem_mb"] > 0
    given = _resources(monkeypatch, HAMFORGE_SLURM_ACCOUNT="acme", SBATCH_PARTITION="gpu")
    assert given["slurm_account"] == "acme" and given["slurm_partition"] == "gpu"
    both = _resources(monkeypatch, HAMFORGE_SLURM_PARTITION="a100", SBATCH_PARTITION="gpu")
    assert both["slurm_partition"] == "a100"  # hamforge's variable wins


@pytest.mark.snakemake
def test_dry_run_with_the_profile_needs_no_variable():
    env = {k: v for k, v in os.environ.items() if k not in VARS}
    exe = Path(sys.executable).parent / "snakemake"
    r = subprocess.run(
        [str(exe), "--profile", "slurm", "-n", "--configfile", "config/smoke.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

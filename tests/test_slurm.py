"""The smoke workflow through a real SLURM with `snakemake --profile slurm`, and a failing job's report and log.

Needs a running SLURM: `sudo bash .ci/slurm-up.sh` starts a one-node one (CI's .ci/run does, and stops it
with .ci/slurm-down.sh). Without it these tests fail with that instruction; they never skip.
Slow: ~5 min on 2 cores (SLURM status polling, every job is a batch job).
"""

import getpass
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _workflow import copy_workflow  # tests/_workflow.py
from hamforge.io import read_matrix_file

pytestmark = [pytest.mark.slurm, pytest.mark.snakemake, pytest.mark.cp2k, pytest.mark.lammps]

ROOT = Path(__file__).resolve().parents[1]
HOWTO = "start one with `sudo bash .ci/slurm-up.sh` (stop it with `sudo bash .ci/slurm-down.sh`), see docs/slurm.md"


def _slurm_partition() -> str:
    """The default partition of a running SLURM whose nodes accept jobs; fails the test otherwise."""
    if shutil.which("sinfo") is None:
        pytest.fail(f"SLURM is not installed (no sinfo): {HOWTO}")
    res = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30, check=False)
    rows = [line.split() for line in res.stdout.splitlines() if line.strip()]
    usable = [p for p, state in rows if state.rstrip("*~#") in ("idle", "mixed", "allocated")]
    if res.returncode != 0 or not usable:
        pytest.fail(f"SLURM is not running or has no usable node (sinfo: {res.stdout or res.stderr!r}): {HOWTO}")
    default = [p for p in usable if p.endswith("*")]
    return (default or usable)[0].rstrip("*")


def _snakemake(work: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        HAMFORGE_SLURM_ACCOUNT=os.environ.get("HAMFORGE_SLURM_ACCOUNT", getpass.getuser()),
        HAMFORGE_SLURM_PARTITION=os.environ.get("HAMFORGE_SLURM_PARTITION", _slurm_partition()),
        # the batch jobs start python/snakemake/lmp from this venv (sbatch --export=ALL)
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    exe = Path(sys.executable).parent / "snakemake"
    # exactly the README's command; only the first status check comes sooner than the profile's 40 s
    # (MinJobAge 300 s of .ci/slurm-up.sh stays above 3x this, so squeue remains the status command)
    cmd = [str(exe), "--profile", "slurm", "--slurm-init-seconds-before-status-checks", "10", *args]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture()
def work(tmp_path):
    """A fresh copy of the workflow per test: its own .snakemake/ (SLURM logs, locks)."""
    _slurm_partition()
    return copy_workflow(tmp_path / "wf")


@pytest.mark.slow
def test_smoke_workflow_runs_through_slurm(work, tmp_path_factory):
    results = tmp_path_factory.mktemp("slurm-results")
    # the smoke chain without its tiled transport device (a third, 3x larger CP2K run): the device and its
    # validation are run by tests/test_workflow_e2e.py; here the point is the profile, the allocation and srun
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    del cfg["materials"]["a-Si"]["transport"]
    smoke = work / "smoke-no-device.yaml"
    smoke.write_text(yaml.safe_dump(cfg))
    res = _snakemake(work, "--configfile", str(smoke), "--config", f"results={results}", timeout=2400)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "submitted with SLURM jobid" in out  # really went through sbatch, not local execution
    mat = results / "a-Si"
    assert sorted(p.name for p in (mat / "index").glob("q*.json")) == ["q0.json", "q1.json"]
    h5s = sorted((mat / "dft").glob("q*_f*.h5"))
    assert len(h5s) == 2
    for h5 in h5s:
        data = read_matrix_file(h5)
        assert data.n_atoms == 64 and data.provenance["scf_converged"]
        # CP2K's two MPI ranks were started by the profile's launcher inside the allocation
        log = (results / "logs" / "a-Si" / "cp2k" / f"{h5.stem}.log").read_text()
        assert "running srun --cpus-per-task=1 cp2k.psmp" in log
    assert len(list((mat / "partitions").glob("q*_f*.h5"))) == 2
    # which rules were submitted (the plugin removes successful jobs' SLURM logs, so read its report):
    # cp2k_input, index and all are localrules
    ran = set(re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/rule_(\w+)/", out))
    assert {"melt_quench", "decorrelate", "cp2k", "parse_cp2k", "targets", "partition"} <= ran, ran
    assert not ran & {"cp2k_input", "index", "all"}


@pytest.mark.slow
def test_failing_job_is_reported_and_keeps_its_log(work, tmp_path_factory):
    results = tmp_path_factory.mktemp("slurm-fail")
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    mat = cfg["materials"]["a-Si"]
    # the bad setting: a potential file that exists (so the checks at workflow start pass) but that LAMMPS cannot
    # parse; the job fails inside SLURM
    bad_potential = results / "broken.sw"
    bad_potential.write_text("Si Si Si this is not a Stillinger-Weber parameter line\n")
    mat["md"]["potential"]["file"] = str(bad_potential)
    # two quenches (the config checks need one to train on besides the test quench); only q0 is asked for below
    mat["md"]["quenches"], mat["test_quench"] = 2, 1
    cfg["results"] = str(results)
    bad = work / "config" / "bad-potential.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    target = results / "a-Si" / "md" / "q0" / "trajectory.extxyz"  # one melt-quench job
    res = _snakemake(work, str(target), "--configfile", str(bad), timeout=900)  # --configfile takes several
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-4000:]
    log = results / "logs" / "a-Si" / "melt_quench" / "q0.log"
    assert "Error in rule melt_quench" in out and str(log.relative_to(results)) in out
    assert "failed, SLURM status is: 'FAILED'" in out
    assert log.is_file()  # the rule's log is kept
    # the job's SLURM log is kept too (the plugin deletes only successful ones), is named in the report and
    # holds the reason: the script's exception naming the bad setting
    kept = list((work / ".snakemake" / "slurm_logs" / "rule_melt_quench").rglob("*.log"))
    assert len(kept) == 1, kept
    assert str(kept[0]) in out
    kept_text = kept[0].read_text()
    assert "LAMMPS failed" in kept_text and "broken.sw" in kept_text
    assert not (results / "a-Si" / "md" / "q0" / "trajectory.extxyz").exists()

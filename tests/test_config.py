"""Workflow configuration: schema validation with messages naming the key; the workflow parses (dry run, lint)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hamforge.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


def default():
    with open(ROOT / "config.yaml") as fh:
        return yaml.safe_load(fh)


def test_default_and_smoke_configs_are_valid():
    cfg = load_config(ROOT / "config.yaml")
    assert cfg["materials"]["a-Si"]["dft"]["cutoff_ry"] == 200
    assert cfg["materials"]["a-Si"]["md"]["stages"][0]["ensemble"] == "nvt"  # default filled in
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    assert smoke["materials"]["a-Si"]["md"]["initial"]["repeat"] == [2, 2, 2]  # 64 atoms


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["materials"]["a-Si"]["dft"].update(cutof=300), "materials.a-Si.dft"),
        (lambda c: c["materials"]["a-Si"]["md"]["stages"][1].update(duration_ps=-1), "materials.a-Si.md.stages[1].duration_ps"),
        (lambda c: c["materials"]["a-Si"]["md"].update(quenches="three"), "materials.a-Si.md.quenches"),
        (lambda c: c["resources"]["cp2k"].update(mpi_tasks=0), "resources.cp2k.mpi_tasks"),
        (lambda c: c["materials"]["a-Si"]["md"]["stages"][0].update(ensemble="nve"), "materials.a-Si.md.stages[0].ensemble"),
        (lambda c: c["materials"]["a-Si"].pop("dft"), "materials.a-Si"),
    ],
)
def test_bad_value_names_the_key(mutate, key):
    cfg = default()
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert key in str(err.value)


def test_cross_field_checks():
    cfg = default()
    cfg["materials"]["a-Si"]["test_quench"] = 7
    with pytest.raises(ConfigError, match=r"materials\.a-Si\.test_quench: 7 but only 3 quenches"):
        validate_config(cfg)
    cfg = default()
    for s in cfg["materials"]["a-Si"]["md"]["stages"]:
        s["sample"] = False
    with pytest.raises(ConfigError, match="sample: true"):
        validate_config(cfg)
    cfg = default()
    cfg["materials"]["a-Si"]["elements"] = ["Si", "Ge"]
    with pytest.raises(ConfigError, match=r"dft\.kinds: no kind for element\(s\) \['Ge'\]"):
        validate_config(cfg)


def _snakemake(*args, cwd=ROOT):
    exe = Path(sys.executable).parent / "snakemake"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("extra", [[], ["--configfile", "config/smoke.yaml"]])
def test_dry_run_default_and_smoke(extra, tmp_path):
    # a fresh copy so that results of other runs do not change the plan
    work = tmp_path / "wf"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", "results*", ".snakemake", ".git", "tests", "benchmarks"))
    res = _snakemake("-n", "--cores", "2", *extra, cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    quenches = 2 if extra else 3
    assert f"melt_quench        {quenches}" in out
    assert f"decorrelate        {quenches}" in out


def test_bad_config_stops_workflow_naming_key(tmp_path):
    cfg = default()
    cfg["materials"]["a-Si"]["md"]["timestep_fs"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = _snakemake("-n", "--cores", "1", "--configfile", str(bad))
    assert res.returncode != 0
    assert "materials.a-Si.md.timestep_fs" in res.stdout + res.stderr


def test_lint_is_clean():
    res = _snakemake("--lint")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Lints for" not in res.stdout + res.stderr

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
        (
            lambda c: c["materials"]["a-Si"]["md"]["stages"][1].update(duration_ps=-1),
            "materials.a-Si.md.stages[1].duration_ps",
        ),
        (lambda c: c["materials"]["a-Si"]["md"].update(quenches="three"), "materials.a-Si.md.quenches"),
        (lambda c: c["resources"]["cp2k"].update(mpi_tasks=0), "resources.cp2k.mpi_tasks"),
        (
            lambda c: c["materials"]["a-Si"]["md"]["stages"][0].update(ensemble="nve"),
            "materials.a-Si.md.stages[0].ensemble",
        ),
        (lambda c: c["materials"]["a-Si"].pop("dft"), "materials.a-Si"),
        # training settings, refused at workflow start
        (lambda c: c["materials"]["a-Si"]["train"].update(lr=0.0), "materials.a-Si.train.lr"),
        (lambda c: c["materials"]["a-Si"]["train"].update(optimizer="sgdx"), "materials.a-Si.train.optimizer"),
        (lambda c: c["materials"]["a-Si"]["train"].update(min_lr=1.0), "materials.a-Si.train.min_lr"),
        # 4 quenches x 2 snapshots, quench 2 held out and no validation quench: 6 training structures, all 6 held
        # aside leaves none
        (
            lambda c: (
                c["materials"]["a-Si"].update(validation_quench=None)
                or c["materials"]["a-Si"]["train"].update(validation_structures=6)
            ),
            "materials.a-Si.train.validation_structures",
        ),
        (lambda c: c["materials"]["a-Si"].update(validation_quench=2), "materials.a-Si.validation_quench"),
        (lambda c: c["materials"]["a-Si"].update(validation_quench=9), "materials.a-Si.validation_quench"),
        (
            lambda c: c["materials"]["a-Si"]["model"].update(strictly_local=True, edge_reads_updated=True),
            "materials.a-Si.model.edge_reads_updated",
        ),
        (lambda c: c["materials"]["a-Si"]["train"].update(schedule="step"), "materials.a-Si.train.schedule"),
        (lambda c: c["materials"]["a-Si"]["train"].update(ema_decay=1.0), "materials.a-Si.train.ema_decay"),
        (lambda c: c["materials"]["a-Si"]["model"].update(n_heads=3), "materials.a-Si.model.n_heads"),
        (
            lambda c: (
                c["materials"]["a-Si"]["train"].update(use_partitions=True)
                or c["materials"]["a-Si"].setdefault("partition", {}).update(halo=0)
            ),
            "materials.a-Si.partition.halo",
        ),
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
    with pytest.raises(ConfigError, match=r"materials\.a-Si\.test_quench: 7 but only 4 quenches"):
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


@pytest.mark.parametrize(
    ("block", "key", "value", "match"),
    [
        ("model", "l_max", 1, r"model\.l_max: 1, but the basis of kind Si .* L up to 2"),
        ("transport", "axis", "z", r"transport\.axis: z, but transport\.tiling \[2, 1, 1\]"),
        ("transport", "structures", 3, r"transport\.structures: 3, but the test quench has 2 structures"),
        ("predict", "tilings", [[1000, 1000, 1000]], r"predict\.tilings: \[1000, 1000, 1000\] makes 2\.16e\+11 atoms"),
        ("transport", "tiling", [1, 1, 1], r"transport\.tiling: \[1, 1, 1\] gives a device 16\.3 A long .* 10\.0 A"),
    ],
)
def test_values_a_later_rule_would_refuse_are_refused_at_once(block, key, value, match):
    """Checked when the config is read (dry run), not after MD, DFT and targets (issue 22)."""
    cfg = default()
    cfg["materials"]["a-Si"].setdefault(block, {})[key] = value
    with pytest.raises(ConfigError, match=match):
        validate_config(cfg)


def _snakemake(*args, cwd=ROOT):
    exe = Path(sys.executable).parent / "snakemake"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("extra", [[], ["--configfile", "config/smoke.yaml"]])
@pytest.mark.snakemake
def test_dry_run_default_and_smoke(extra, tmp_path):
    # a fresh copy so that results of other runs do not change the plan
    work = tmp_path / "wf"
    shutil.copytree(
        ROOT, work, ignore=shutil.ignore_patterns(".venv", "results*", ".snakemake", ".git", "tests", "benchmarks")
    )
    res = _snakemake("-n", "--cores", "2", *extra, cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    quenches = 2 if extra else 4
    assert f"melt_quench        {quenches}" in out
    assert f"decorrelate        {quenches}" in out


@pytest.mark.snakemake
def test_bad_config_stops_workflow_naming_key(tmp_path):
    cfg = default()
    cfg["materials"]["a-Si"]["md"]["timestep_fs"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = _snakemake("-n", "--cores", "1", "--configfile", str(bad))
    assert res.returncode != 0
    assert "materials.a-Si.md.timestep_fs" in res.stdout + res.stderr


@pytest.mark.snakemake
def test_lint_is_clean():
    res = _snakemake("--lint")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Lints for" not in res.stdout + res.stderr


def _si(c):
    return c["materials"]["a-Si"]


@pytest.mark.parametrize(
    "mutate, key, cause",
    [
        (
            lambda c: _si(c)["dft"]["kinds"]["Si"].update(basis_set="SZV-MOLOPT-SR-GTX"),
            "materials.a-Si.dft.kinds.Si.basis_set",
            "did you mean SZV-MOLOPT-SR-GTH",
        ),
        (
            lambda c: _si(c)["dft"]["kinds"]["Si"].update(potential="GTH-PBE-q5"),
            "materials.a-Si.dft.kinds.Si.potential",
            "not found in",
        ),
        (lambda c: _si(c)["dft"].update(basis_file="BASIS_MOLOPTX"), "materials.a-Si.dft.basis_file", "not found"),
        (lambda c: _si(c).update(elements=["Xx"]), "materials.a-Si.elements[0]", "'Xx' is not a chemical element"),
        (lambda c: _si(c)["dft"]["kinds"]["Si"].update(element="Sx"), "materials.a-Si.dft.kinds.Si.element", "'Sx'"),
        (
            lambda c: _si(c)["dft"].update(kinds={"Xx": {"basis_set": "SZV-MOLOPT-SR-GTH", "potential": "GTH-PBE-q4"}}),
            "materials.a-Si.dft.kinds.Xx",
            "needs 'element'",
        ),
        (lambda c: _si(c)["md"]["potential"].update(file="Si.swx"), "materials.a-Si.md.potential.file", "not found"),
        (lambda c: _si(c)["md"]["initial"].update(crystal="diamant"), "materials.a-Si.md.initial.crystal", "diamant"),
        (lambda c: _si(c)["md"].update(initial={"file": "no/such.extxyz"}), "materials.a-Si.md.initial.file", "such"),
        (lambda c: c["resources"]["cp2k"].update(launcher="mpirun -np {ntasks}"), "resources.cp2k.launcher", "ntasks"),
        (
            lambda c: c["resources"]["melt_quench"].update(launcher="srun -n {0}"),
            "resources.melt_quench.launcher",
            "{tasks}",
        ),
        (lambda c: _si(c)["md"].update(dump_every=10**6), "materials.a-Si.md.dump_every", "longer than the whole run"),
        (lambda c: _si(c)["md"].update(dump_every=2000), "materials.a-Si.decorrelate.centre_frames", "dump only 15"),
    ],
)
def test_config_errors_found_before_anything_runs(mutate, key, cause):
    """Names that CP2K, LAMMPS or ASE would reject only after MD and decorrelation are checked up front."""
    cfg = default()
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, source="my.yaml")
    msg = str(err.value)
    assert msg.startswith(f"my.yaml: {key}:") and cause in msg, msg


def test_r_cut_without_edges_is_warned(caplog):
    cfg = default()
    _si(cfg)["targets"]["r_cut"] = 1.0  # Si-Si bonds are 2.35 Angstrom
    with caplog.at_level("WARNING", logger="hamforge.config"):
        validate_config(cfg, source="my.yaml")
    assert "materials.a-Si.targets.r_cut: 1 Angstrom gives no edges" in caplog.text


@pytest.mark.parametrize("dry", [True, False])
@pytest.mark.snakemake
def test_misspelled_basis_stops_snakemake_before_any_job(tmp_path, dry):
    cfg = default()
    _si(cfg)["dft"]["kinds"]["Si"]["basis_set"] = "SZV-MOLOPT-SR-GHT"
    cfg["results"] = str(tmp_path / "results")
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = _snakemake(*(["-n"] if dry else []), "--cores", "1", "--configfile", str(bad))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "materials.a-Si.dft.kinds.Si.basis_set" in out and str(bad) in out, out
    assert not (tmp_path / "results").exists()  # no job ran


def test_gpu_template_of_the_training_rule_validates():
    """resources.train is the GPU template (gpus, gpu_model, cpus_per_gpu besides threads, mem_mb, runtime_min):
    a second, plain resources.train entry in the schema used to shadow it and refuse `gpus`."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["resources"]["train"] = {"gpus": 2, "gpu_model": "h100", "cpus_per_gpu": 8, "mem_mb": 64000}
    out = validate_config(cfg)
    assert out["resources"]["train"]["gpus"] == 2 and out["resources"]["train"]["runtime_min"] == 240
    cfg["resources"]["train"]["gpus"] = -1
    with pytest.raises(ConfigError, match="resources.train.gpus"):
        validate_config(cfg)


def test_overlays_merge_in_order_like_snakemake(tmp_path):
    """Several files merge like `snakemake --configfile A B`: mappings key by key, the later file wins."""
    over = tmp_path / "over.yaml"
    over.write_text("results: elsewhere\nmaterials:\n  a-Si:\n    model: {n_layers: 3}\n    train: {lr: 0.01}\n")
    base = load_config(ROOT / "config.yaml")
    cfg = load_config([ROOT / "config.yaml", over])
    mat, ref = cfg["materials"]["a-Si"], base["materials"]["a-Si"]
    assert cfg["results"] == "elsewhere" and mat["model"]["n_layers"] == 3 and mat["train"]["lr"] == 0.01
    assert mat["model"]["embed_dim"] == ref["model"]["embed_dim"] and mat["md"] == ref["md"]
    assert mat["train"]["patience"] == ref["train"]["patience"]


def test_overlay_error_names_the_files(tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text("materials:\n  a-Si:\n    train: {lr: -1}\n")
    with pytest.raises(ConfigError, match=r"(?s)over\.yaml.*materials\.a-Si\.train\.lr"):
        load_config([ROOT / "config.yaml", over])


def test_long_config_is_an_overlay_of_the_default():
    cfg = load_config([ROOT / "config.yaml", ROOT / "config" / "a-si-long.yaml"])
    assert cfg["results"] != load_config(ROOT / "config.yaml")["results"]  # never overwrites the demo's results


def test_split_index_validates_on_the_validation_quench(tmp_path):
    import json

    from hamforge.stages import split_index

    def index(q, split, frames):
        entries = [{"structure": f"q{q}_f{f}", "targets": f"../targets/q{q}_f{f}.h5"} for f in frames]
        path = tmp_path / f"q{q}.json"
        path.write_text(json.dumps({"quench": q, "split": split, "structures": entries}))
        return path

    paths = [
        index(0, "train", (1, 2)),
        index(1, "train", (3, 4)),
        index(2, "test", (5,)),
        index(3, "validation", (6, 7)),
    ]
    train, val = split_index(paths, n_validation=1)
    assert [e["structure"] for e in train] == ["q0_f1", "q0_f2", "q1_f3", "q1_f4"]  # none held aside from these
    assert [e["structure"] for e in val] == ["q3_f6", "q3_f7"]  # the whole validation quench, never q2
    train, val = split_index(paths[:3], n_validation=1)  # no validation quench: the last training structure
    assert [e["structure"] for e in val] == ["q1_f4"] and len(train) == 3

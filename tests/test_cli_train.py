"""`hamforge train --config`: a workflow config's model and train blocks are the settings of a training on
files outside the workflow, flags given on the command line override them, and keys the CLI cannot honour
are refused naming the file and the key."""

from pathlib import Path

import yaml
from hamforge.cli import _train_inputs, build_parser
from hamforge.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.yaml"


def _inputs(*argv):
    return _train_inputs(build_parser().parse_args(["train", "t.h5", "-o", "out", *argv]))


def test_config_blocks_are_the_settings():
    mat = yaml.safe_load(CONFIG.read_text())["materials"]["a-Si"]
    hyper, settings = _inputs("--config", str(CONFIG))
    for key, value in mat["model"].items():
        assert hyper[key] == value, key
    for key in ("lr", "min_lr", "patience", "batch_size", "seed"):
        if key in mat["train"]:
            assert getattr(settings, key) == mat["train"][key], key
    assert settings.time_budget_s == 60.0 * mat["train"]["time_budget_min"]


def test_flags_override_the_config():
    hyper, settings = _inputs("--config", str(CONFIG), "--lr", "3e-3", "--embed-dim", "8", "--budget-min", "2")
    assert settings.lr == 3e-3 and hyper["embed_dim"] == 8 and settings.time_budget_s == 120.0


def test_without_config_the_paper_schedule():
    hyper, settings = _inputs()
    assert (settings.lr, settings.min_lr, settings.patience, settings.threshold) == (1e-4, 1e-5, 500, 1e-3)
    assert hyper == {"l_max": 4, "embed_dim": 16, "n_layers": 1}


def test_use_partitions_refused(tmp_path, capsys):
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["materials"]["a-Si"]["train"]["use_partitions"] = True
    cfg["materials"]["a-Si"].setdefault("partition", {})["halo"] = 2  # the demo's model needs 2 hops: valid config
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli_main(["train", "t.h5", "-o", str(tmp_path / "o"), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "train.use_partitions" in err


def test_unknown_material_named(tmp_path, capsys):
    assert cli_main(["train", "t.h5", "-o", str(tmp_path), "--config", str(CONFIG), "--material", "a-C"]) == 2
    assert "a-C" in capsys.readouterr().err


def test_config_overlay():
    """`--config config.yaml --config config/a-si-long.yaml`: the overlay's keys win, the rest is the base's."""
    long = yaml.safe_load((ROOT / "config" / "a-si-long.yaml").read_text())["materials"]["a-Si"]
    hyper, settings = _inputs("--config", str(CONFIG), "--config", str(ROOT / "config" / "a-si-long.yaml"))
    base, _ = _inputs("--config", str(CONFIG))
    assert hyper["n_layers"] == long["model"]["n_layers"] and hyper["embed_dim"] == base["embed_dim"]
    assert settings.time_budget_s == 60.0 * long["train"]["time_budget_min"]


def test_config_does_not_swallow_positionals():
    """`--config` takes one file per use, so positionals may follow it (`release --config c.yaml DIR`)."""
    args = build_parser().parse_args(["train", "--config", str(CONFIG), "t.h5", "-o", "out"])
    assert args.targets == ["t.h5"] and args.config == [str(CONFIG)]
    args = build_parser().parse_args(["release", "--config", str(CONFIG), "results/a-Si"])
    assert args.material_dir == "results/a-Si"


def test_symmetrize_can_be_switched_either_way(tmp_path):
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["materials"]["a-Si"]["train"]["symmetrize"] = True
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert _inputs("--config", str(path))[1].symmetrize is True
    assert _inputs("--config", str(path), "--no-symmetrize")[1].symmetrize is False
    assert _inputs("--symmetrize")[1].symmetrize is True

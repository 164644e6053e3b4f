"""Every enumerated name and default has one definition in the library: the CLI's choices and the config schema's
enums and defaults must agree with it (issue 23). A disagreement fails here, naming the key."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
import yaml
from hamforge.cli import build_parser
from hamforge.config import default_schema_path
from hamforge.model import ModelConfig
from hamforge.partition import METHODS
from hamforge.train import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load(default_schema_path().read_text())
MATERIAL = SCHEMA["$defs"]["material"]["properties"]


def _choices(command: str, option: str):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return tuple(action.choices), action.default


@pytest.mark.parametrize(
    ("command", "option"), [("partition", "--method"), ("predict", "--method"), ("train", "--halo-partition")]
)
def test_cli_partitioner_choices_are_the_library_methods(command, option):
    choices, default = _choices(command, option)
    assert set(choices) == set(METHODS) and default in ("lownn", None)  # None: the config's (whose default is lownn)


@pytest.mark.parametrize(
    "where", [("partition", "method"), ("predict", "method"), ("train", "halo_partition")], ids=lambda w: ".".join(w)
)
def test_schema_partitioner_enums_are_the_library_methods(where):
    block, key = where
    assert set(MATERIAL[block]["properties"][key]["enum"]) == set(METHODS), f"materials.<m>.{block}.{key}"


def test_parallel_modes_agree():
    from hamforge.predict import PREDICT_PARALLEL
    from hamforge.train import PARALLEL

    assert _choices("train", "--parallel")[0] == PARALLEL
    assert tuple(MATERIAL["train"]["properties"]["parallel"]["enum"]) == PARALLEL
    assert set(_choices("predict", "--parallel")[0]) == set(PREDICT_PARALLEL)


def _defaults(block: str) -> dict:
    return {k: v["default"] for k, v in MATERIAL[block]["properties"].items() if "default" in v}


@pytest.mark.parametrize(("block", "cls"), [("model", ModelConfig), ("train", TrainSettings)])
def test_schema_defaults_are_the_library_defaults(block, cls):
    fields = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    wrong = {k: (v, fields[k]) for k, v in _defaults(block).items() if k in fields and fields[k] != v}
    assert not wrong, f"materials.<m>.{block}: schema default vs library default: {wrong}"
    # keys the training stage (hamforge.stages.train_model / split_index) takes, not TrainSettings
    stage_keys = {"time_budget_min", "use_partitions", "validation_structures"}
    missing = sorted(set(_defaults(block)) - set(fields) - stage_keys)
    assert not missing, f"materials.<m>.{block}: schema keys the library does not know: {missing}"

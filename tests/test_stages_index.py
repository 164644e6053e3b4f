"""The dataset index of a quench (hamforge.stages.write_dataset_index, rule index)."""

from __future__ import annotations

import json

import pytest
from hamforge.stages import write_dataset_index


def test_index_lists_each_structure_with_its_files_relative_to_the_index(tmp_path):
    r = tmp_path / "results" / "a-Si"
    stages = {
        "matrices": [str(r / "dft" / "q1_f10.h5"), str(r / "dft" / "q1_f20.h5")],
        "targets": [str(r / "targets" / "q1_f10.h5"), str(r / "targets" / "q1_f20.h5")],
    }
    out = r / "index" / "q1.json"
    out.parent.mkdir(parents=True)
    index = write_dataset_index(out, "a-Si", 1, "train", stages)
    assert json.loads(out.read_text()) == index
    assert index["split"] == "train" and index["quench"] == 1
    assert index["structures"][1] == {
        "structure": "q1_f20",
        "matrices": "../dft/q1_f20.h5",
        "targets": "../targets/q1_f20.h5",
    }
    with pytest.raises(ValueError, match="'matrices' has 2"):
        write_dataset_index(out, "a-Si", 1, "train", {**stages, "targets": stages["targets"][:1]})

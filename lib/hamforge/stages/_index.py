"""The dataset index of one quench (``results/<m>/index/q<k>.json``): its structures, their files per stage, its
split (train / validation / test). Written by the workflow's index rule; read by training and releases."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from hamforge.io import strict_json, write_text_atomic

__all__ = ["write_dataset_index"]


def write_dataset_index(
    output: str | os.PathLike, material: str, quench: int, split: str, stages: Mapping[str, Sequence[str]]
) -> dict:
    """Write the index: one entry per structure (named after its ``matrices`` file) with the path of its file
    of every stage in ``stages`` (name -> files, in the same structure order), relative to the index's folder.
    Returns the index."""
    base = os.path.dirname(os.fspath(output))
    stages = {name: list(files) for name, files in stages.items()}
    if "matrices" not in stages:
        raise ValueError(f"{output}: stages: 'matrices' missing (has {sorted(stages)})")
    n = len(stages["matrices"])
    bad = {name: len(files) for name, files in stages.items() if len(files) != n}
    if bad:
        raise ValueError(f"{output}: stages have {bad} files, 'matrices' has {n}")
    entries = []
    for k, path in enumerate(stages["matrices"]):
        entry = {"structure": os.path.basename(path)[: -len(".h5")]}
        entry.update({name: os.path.relpath(files[k], base) for name, files in stages.items()})
        entries.append(entry)
    index = {"material": material, "quench": int(quench), "split": split, "structures": entries}
    write_text_atomic(output, strict_json(index, indent=2) + "\n")
    return index

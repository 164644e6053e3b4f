"""Snakemake adapter: JSON index of one quench's structures (files per stage) and its train/test split."""

import json
import os

from hamforge._logging import configure_logging
from hamforge.io import write_text_atomic

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
base = os.path.dirname(sm.output.index)
stages = {name: list(files) for name, files in sm.input.items()}
n = len(stages["matrices"])
entries = []
for k in range(n):
    path = stages["matrices"][k]
    entry = {"structure": os.path.basename(path)[: -len(".h5")]}
    entry.update({name: os.path.relpath(files[k], base) for name, files in stages.items()})
    entries.append(entry)
index = {
    "material": sm.wildcards.material,
    "quench": int(sm.wildcards.quench),
    "split": sm.params.split,
    "structures": entries,
}
write_text_atomic(sm.output.index, json.dumps(index, indent=2) + "\n")
log.info("q%s (%s): %d structures", sm.wildcards.quench, sm.params.split, n)

"""Snakemake adapter: JSON index of one quench's matrix files and its train/test split."""

import json
import os

from hamforge._logging import configure_logging
from hamforge.io import write_text_atomic

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
entries = [
    {"structure": os.path.basename(p)[: -len(".h5")], "matrices": os.path.relpath(p, os.path.dirname(sm.output.index))}
    for p in sm.input
]
index = {
    "material": sm.wildcards.material,
    "quench": int(sm.wildcards.quench),
    "split": sm.params.split,
    "structures": entries,
}
write_text_atomic(sm.output.index, json.dumps(index, indent=2) + "\n")
log.info("q%s (%s): %d structures", sm.wildcards.quench, sm.params.split, len(entries))

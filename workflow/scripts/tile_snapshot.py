"""Snakemake adapter: a snapshot tiled for the transport device (hamforge.stages.tile_snapshot_file)."""

import numpy as np
from hamforge._logging import configure_logging, log_failure
from hamforge.stages import tile_snapshot_file

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    s = tile_snapshot_file(sm.input.snapshot, sm.params.tile, sm.output.structure)
log.info(
    "%s tiled %s: %d atoms (kinds %s), cell lengths %s A",
    sm.input.snapshot,
    sm.params.tile,
    len(s.numbers),
    sorted(set(s.kinds.tolist())),
    np.linalg.norm(s.cell, axis=1),
)

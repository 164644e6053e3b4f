"""Snakemake adapter: JSON index of one quench's structures and its split (hamforge.stages.write_dataset_index)."""

from hamforge._logging import configure_logging, log_failure
from hamforge.stages import write_dataset_index

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    index = write_dataset_index(
        sm.output.index, sm.wildcards.material, int(sm.wildcards.quench), sm.params.split, dict(sm.input.items())
    )
log.info("q%s (%s): %d structures", sm.wildcards.quench, sm.params.split, len(index["structures"]))

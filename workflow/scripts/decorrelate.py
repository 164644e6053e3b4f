"""Snakemake adapter: equilibration detection + snapshot selection (hamforge.structures.decorrelate_trajectory)."""

from hamforge._logging import configure_logging, log_failure
from hamforge.structures import DecorrelationSettings, decorrelate_trajectory

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    decorrelate_trajectory(
        sm.input.trajectory,
        sm.output.snapshots,
        DecorrelationSettings(**sm.params.settings),
        stage=sm.params.sample_stages,
    )

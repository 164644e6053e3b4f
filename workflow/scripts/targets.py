"""Snakemake adapter: matrix file -> targets file + coverage report (hamforge.stages.make_targets_file)."""

from hamforge._logging import configure_logging, log_failure
from hamforge.dft import CP2KSettings
from hamforge.stages import make_targets_file

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    make_targets_file(
        sm.input.matrices,
        sm.params.r_cut,
        sm.output.targets,
        basis=CP2KSettings.from_config(sm.params.dft).kind_basis(),
        report_prefix=sm.output.coverage[: -len(".coverage.csv")],
    )

"""Snakemake adapter: matrix file -> targets file + coverage report (hamforge.stages.make_targets_file)."""

from hamforge._logging import configure_logging
from hamforge.stages import make_targets_file

sm = snakemake  # noqa: F821 (injected by Snakemake)
configure_logging(sm.log[0])
make_targets_file(
    sm.input.matrices,
    sm.params.r_cut,
    sm.output.targets,
    kinds=sm.params.kinds,
    report_prefix=sm.output.coverage[: -len(".coverage.csv")],
)

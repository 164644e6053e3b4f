"""Snakemake adapter: targets file -> partition file, plot and metrics CSV (hamforge.stages.make_partition_file)."""

from hamforge._logging import configure_logging, log_failure
from hamforge.config import config_hash
from hamforge.stages import make_partition_file

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    settings = dict(sm.params.settings)
    options = {"axis": settings.get("axis")} if settings["method"] == "slices" else {}
    make_partition_file(
        sm.input.targets,
        sm.output.partitions,
        method=settings["method"],
        parts=settings["parts"],
        halo=settings["halo"],
        plot=sm.output.plot,
        metrics_csv=sm.output.metrics,
        provenance={
            "material": sm.wildcards.material,
            "structure": sm.wildcards.structure,
            "config_hash": config_hash(sm.config["materials"][sm.wildcards.material]),
        },
        title=f"{sm.wildcards.material} {sm.wildcards.structure}: {settings['method']}, halo {settings['halo']}",
        **options,
    )

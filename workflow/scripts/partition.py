"""Snakemake adapter: targets file -> partition file, plot and metrics CSV (hamforge.partition)."""

from hamforge._logging import configure_logging
from hamforge.config import config_hash
from hamforge.partition import read_targets_graph, run_partition, write_partition_outputs

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
settings = dict(sm.params.settings)
graph = read_targets_graph(sm.input.targets)
options = {"axis": settings.get("axis")} if settings["method"] == "slices" else {}
result = run_partition(graph.nl, graph.positions, settings["method"], settings["parts"], settings["halo"], **options)
write_partition_outputs(
    result,
    graph.nl,
    graph.positions,
    sm.output.partitions,
    plot=sm.output.plot,
    metrics_csv=sm.output.metrics,
    provenance={
        "material": sm.wildcards.material,
        "structure": sm.wildcards.structure,
        "config_hash": config_hash(sm.config["materials"][sm.wildcards.material]),
    },
    title=f"{sm.wildcards.material} {sm.wildcards.structure}: {settings['method']}, halo {settings['halo']}",
)
s = result.summary
log.info(
    "wrote %s: %d atoms, %d edges, %d parts (%s, %.3f s), halo %d: edge imbalance %.3f, neighbours mean %.1f "
    "max %d, node halo ratio %.2f",
    sm.output.partitions, s["n_atoms"], s["n_edges"], s["n_parts"], settings["method"], s["partition_time_s"],
    s["halo"], s["edge_imbalance"], s["neighbours_mean"], s["neighbours_max"], s["node_halo_ratio_mean"],
)

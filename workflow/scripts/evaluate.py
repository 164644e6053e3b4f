"""Snakemake adapter: trained model + one test structure's targets -> mae.json (hamforge.stages.evaluate_model)."""

from hamforge._logging import configure_logging, log_failure
from hamforge.stages import evaluate_model

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    m = evaluate_model(sm.input.model, sm.input.targets, sm.output.mae)

log.info(
    "%s: MAE node %.3f, edge %.3f, total %.3f meV",
    sm.wildcards.structure,
    m["mae_node_meV"],
    m["mae_edge_meV"],
    m["mae_total_meV"],
)

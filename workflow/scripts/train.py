"""Snakemake adapter: dataset indices -> trained model (hamforge.stages.train_model)."""

from hamforge._logging import configure_logging, log_failure
from hamforge.stages import split_index, train_model
from hamforge.train import TrainSettings

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    cfg = dict(sm.params.train)
    n_val = cfg.pop("validation_structures")
    use_partitions = cfg.pop("use_partitions")
    budget = cfg.pop("time_budget_min")
    settings = TrainSettings.from_dict({**cfg, "time_budget_s": None if budget is None else 60.0 * budget})
    train_entries, val_entries = split_index(list(sm.input.indices), n_val)
    train_model(
        train_entries,
        val_entries,
        dict(sm.params.model),
        settings,
        sm.params.checkpoints,
        use_partitions=use_partitions,
        outputs={
            "model": sm.output.model,
            "metrics": sm.output.metrics,
            "curve": sm.output.curve,
            "summary": sm.output.summary,
        },
    )

"""hamforge.stages: stage orchestration (read -> build -> write -> plot) above the rooms it combines.

What the Snakemake scripts and the ``hamforge`` command line call; the rooms below stay free of file
orchestration.
"""

from hamforge.stages._index import write_dataset_index
from hamforge.stages._partition import make_partition_file, write_partition_outputs
from hamforge.stages._targets import make_targets_file, plot_coverage
from hamforge.stages._tile import tile_snapshot_file
from hamforge.stages._train import evaluate_model, split_index, train_model

__all__ = [
    "evaluate_model",
    "make_partition_file",
    "make_targets_file",
    "plot_coverage",
    "split_index",
    "tile_snapshot_file",
    "train_model",
    "write_dataset_index",
    "write_partition_outputs",
]

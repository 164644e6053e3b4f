"""hamforge.train: samples on full graphs or augmented partitions, the differentiable fold in coupled space,
masked MSE loss and uncoupled MAE metrics, and the resumable, data-parallel training loop (``docs/training.md``).
"""

from hamforge._dist import DistContext, distributed
from hamforge.train._data import Sample, make_samples
from hamforge.train._fold import fold, self_image_column_map
from hamforge.train._loop import CSV_COLUMNS, DETERMINISTIC_COLUMNS, Item, TrainingError, evaluate, train
from hamforge.train._loss import ErrorSums, MetricsAccumulator, forward_fold, squared_error
from hamforge.train._settings import OPTIMIZERS, TrainSettings

__all__ = [
    "ErrorSums",
    "CSV_COLUMNS",
    "DETERMINISTIC_COLUMNS",
    "DistContext",
    "Item",
    "MetricsAccumulator",
    "OPTIMIZERS",
    "Sample",
    "TrainSettings",
    "TrainingError",
    "distributed",
    "evaluate",
    "fold",
    "forward_fold",
    "make_samples",
    "self_image_column_map",
    "squared_error",
    "train",
]

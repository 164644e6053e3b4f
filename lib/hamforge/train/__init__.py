"""hamforge.train: samples on full graphs, augmented partitions or halo-exchanged parts, the differentiable fold in
coupled space, masked MSE loss and uncoupled MAE metrics, and the resumable training loop, parallel over ranks by
whole samples (DDP) or by one part of every structure per rank (``train.parallel: halo``; ``docs/training.md``).
"""

from hamforge._dist import DistContext, distributed
from hamforge.train._anatomy import error_anatomy
from hamforge.train._baseline import baseline_only, fit_baseline, fit_output_scaling, prepare_model
from hamforge.train._data import Sample, SymmetricFold, make_owned_sample, make_samples
from hamforge.train._fold import fold, self_image_column_map
from hamforge.train._loop import CSV_COLUMNS, DETERMINISTIC_COLUMNS, Item, TrainingError, evaluate, train
from hamforge.train._loss import ErrorSums, LossSpec, MetricsAccumulator, forward_fold, squared_error
from hamforge.train._parallel import HaloItem, all_gather, halo_item
from hamforge.train._settings import OPTIMIZERS, PARALLEL, TrainSettings

__all__ = [
    "ErrorSums",
    "LossSpec",
    "all_gather",
    "baseline_only",
    "error_anatomy",
    "fit_baseline",
    "fit_output_scaling",
    "prepare_model",
    "HaloItem",
    "PARALLEL",
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
    "halo_item",
    "make_owned_sample",
    "forward_fold",
    "make_samples",
    "SymmetricFold",
    "self_image_column_map",
    "squared_error",
    "train",
]

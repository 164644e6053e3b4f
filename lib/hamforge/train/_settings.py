"""Training settings (the paper's defaults, ICML 2025, docs/references.md), validated with errors naming the key."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from hamforge.partition import METHODS

__all__ = ["OPTIMIZERS", "PARALLEL", "SCHEDULES", "SELECT_ON", "TrainSettings"]

OPTIMIZERS = ("adam", "adamw")
DTYPES = ("float32", "float64")
PARALLEL = ("partitions", "halo")  # ranks take whole samples (DDP) | every structure split over all ranks
SCHEDULES = ("plateau", "cosine")
SELECT_ON = ("mae", "loss")


@dataclass(frozen=True)
class TrainSettings:
    """Fields::

    lr, min_lr          # Adam learning rate (peak) and the minimum (plateau: training stops there; cosine: the end)
    schedule            # "plateau" (ReduceLROnPlateau) or "cosine" (warm-up, then cosine decay that ends with the
                        # time or epoch budget; _schedule)
    warmup_epochs       # cosine: epochs of linear warm-up
    patience, factor    # ReduceLROnPlateau: epochs without improvement, lr reduction factor
    threshold           # relative improvement that counts (ReduceLROnPlateau 'rel' mode)
    ema_decay           # exponential moving average of the weights (0 = off); validation, best and final model use it
    select_on           # best epoch by validation "mae" (total MAE, what users see) or "loss"
    baseline            # fit the two-centre / crystal-field baselines before training; the network learns the rest
    scale_per_slot      # scale the network's output per (kind (pair), output copy) by the residual's RMS
    l1_weight           # loss += l1_weight * (the same terms with mean absolute instead of squared errors)
    loss_norm           # divide each loss term by the training residual's RMS of its block kind (else raw Hartree)
    max_epochs          # hard limit on epochs
    time_budget_s       # wall-time budget (None: unlimited); stops before an epoch that would exceed it
    batch_size          # samples (structures or partitions) per optimizer step; 0 = all
    optimizer           # "adam" or "adamw"
    weight_decay        # for adamw
    dtype               # "float32" (default) or "float64"
    mixed_precision     # bfloat16 autocast on CUDA devices (ignored on CPU)
    seed                # model initialisation and sample order
    node_weight         # loss = node_weight * MSE(on-site blocks) + MSE(pairs), each over its own entries and
                        # normalised by its residual's RMS (_loss)
    symmetrize          # loss and metrics on the symmetrized blocks (H_ij + H_ji^T) / 2 that hamforge.predict
                        # delivers, not on each direction's raw output (full graphs only: not with halo)
    checkpoint_every    # epochs between checkpoints (the last epoch is always written)
    parallel            # "partitions": whole samples spread over the ranks (DDP; full graphs or augmented
                        # partitions); "halo": every structure split into one part per rank, halo-exchanged
    halo_partition      # parallel = halo: partitioner of the structures (hamforge.partition METHODS)
    halo_report         # parallel = halo: write the halo report of the last epoch (checkpoint dir, halo_report/)
    """

    lr: float = 1e-4
    min_lr: float = 1e-5
    schedule: str = "plateau"
    warmup_epochs: int = 0
    ema_decay: float = 0.0
    select_on: str = "mae"
    baseline: bool = True
    scale_per_slot: bool = True
    l1_weight: float = 0.0
    loss_norm: bool = True
    patience: int = 500
    factor: float = 0.5
    threshold: float = 1e-3
    max_epochs: int = 100_000
    time_budget_s: float | None = None
    batch_size: int = 0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    dtype: str = "float32"
    mixed_precision: bool = False
    seed: int = 0
    checkpoint_every: int = 1
    node_weight: float = 1.0
    symmetrize: bool = False
    parallel: str = "partitions"
    halo_partition: str = "lownn"
    halo_report: bool = False

    def __post_init__(self):
        def bad(key, msg):
            raise ValueError(f"train.{key}: {msg}")

        for key in ("lr", "min_lr", "factor", "threshold", "weight_decay", "node_weight", "ema_decay", "l1_weight") + (
            ("time_budget_s",) if self.time_budget_s is not None else ()
        ):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(key, f"must be a finite number, got {v!r}")
        if self.lr <= 0:
            bad("lr", f"must be > 0, got {self.lr}")
        if not 0 < self.min_lr <= self.lr:
            bad("min_lr", f"must be in (0, lr = {self.lr}], got {self.min_lr}")
        if not 0 < self.factor < 1:
            bad("factor", f"must be in (0, 1), got {self.factor}")
        if not 0 <= self.ema_decay < 1:
            bad("ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        for key in ("threshold", "weight_decay", "node_weight", "l1_weight"):
            if getattr(self, key) < 0:
                bad(key, f"must be >= 0, got {getattr(self, key)}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            bad("time_budget_s", f"must be > 0, got {self.time_budget_s}")
        for key, lo in (
            ("patience", 0),
            ("warmup_epochs", 0),
            ("max_epochs", 1),
            ("batch_size", 0),
            ("seed", 0),
            ("checkpoint_every", 1),
        ):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                bad(key, f"must be an integer >= {lo}, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"unknown optimizer {self.optimizer!r} (known: {', '.join(OPTIMIZERS)})")
        if self.dtype not in DTYPES:
            bad("dtype", f"must be one of {DTYPES}, got {self.dtype!r}")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"unknown schedule {self.schedule!r} (known: {', '.join(SCHEDULES)})")
        if self.select_on not in SELECT_ON:
            bad("select_on", f"unknown value {self.select_on!r} (known: {', '.join(SELECT_ON)})")
        for key in ("mixed_precision", "halo_report", "symmetrize", "baseline", "scale_per_slot", "loss_norm"):
            if not isinstance(getattr(self, key), bool):
                bad(key, f"must be true or false, got {getattr(self, key)!r}")
        if self.parallel not in PARALLEL:
            bad("parallel", f"unknown value {self.parallel!r} (known: {', '.join(PARALLEL)})")
        if self.symmetrize and self.parallel == "halo":
            bad(
                "symmetrize",
                "needs the reverse of every pair on the same rank; not with train.parallel: halo (use partitions)",
            )
        if self.halo_partition not in METHODS:
            bad("halo_partition", f"unknown partitioner {self.halo_partition!r} (known: {', '.join(METHODS)})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"train: unknown key(s) {unknown} (known: {sorted(names)})")
        return cls(**dict(d))

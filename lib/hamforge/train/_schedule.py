"""Learning-rate schedules and the exponential moving average of the weights.

``cosine``: a linear warm-up over ``warmup_epochs`` then ``lr_min + (lr - lr_min) (1 + cos(pi p)) / 2`` with
``p`` the fraction of the planned epochs done, so the lr reaches its minimum exactly when the budget ends. With a
wall-time budget the plan is made once, after the second epoch of a fresh run: the epochs that fit the rest of the
budget at that epoch's measured time (validation included), times a margin; it is saved in the checkpoint, so a
resumed run follows the same lr trajectory (bitwise, like an uninterrupted one). ``plateau``: ReduceLROnPlateau on
the monitored loss (the run stops at ``min_lr``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["LRSchedule", "WeightEMA"]

_PLAN_MARGIN = 0.97  # epochs vary by a few percent; the last one must still fit the budget


class LRSchedule:
    """Sets the lr of ``opt`` before each epoch (:meth:`before_epoch`) and takes the monitored value after it."""

    def __init__(self, opt, settings):
        self.opt, self.s = opt, settings
        self.planned: int | None = None
        self.plateau = None
        if settings.schedule == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt,
                mode="min",
                factor=settings.factor,
                patience=settings.patience,
                threshold=settings.threshold,
                min_lr=settings.min_lr,
            )
        elif settings.time_budget_s is None:
            self.planned = settings.max_epochs

    def plan(self, epoch: int, elapsed_s: float, epoch_s: float) -> None:
        """After ``epoch`` of a fresh budgeted cosine run: fix the number of epochs (``elapsed_s`` of the budget
        used, the last epoch took ``epoch_s``)."""
        if self.plateau is not None or self.planned is not None or epoch < 2:
            return
        left = max(self.s.time_budget_s - elapsed_s, 0.0)
        self.planned = min(self.s.max_epochs, epoch + max(1, int(_PLAN_MARGIN * left / max(epoch_s, 1e-9))))

    def before_epoch(self, epoch: int) -> None:
        if self.plateau is not None:
            return
        s = self.s
        if epoch <= s.warmup_epochs:
            lr = s.lr * epoch / (s.warmup_epochs + 1)
        elif self.planned is None:
            lr = s.lr  # before the plan is made (first two epochs of a budgeted run)
        else:
            span = max(self.planned - s.warmup_epochs, 1)
            p = min(max(epoch - 1 - s.warmup_epochs, 0) / span, 1.0)
            lr = s.min_lr + (s.lr - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        for g in self.opt.param_groups:
            g["lr"] = lr

    def after_epoch(self, monitor: float) -> None:
        if self.plateau is not None:
            self.plateau.step(monitor)

    def finished(self, epoch: int) -> str | None:
        """Why training stops after ``epoch`` (None: it goes on)."""
        if self.plateau is not None:
            return "minimum learning rate" if self.opt.param_groups[0]["lr"] <= self.s.min_lr * (1 + 1e-9) else None
        return "schedule complete" if self.planned is not None and epoch >= self.planned else None

    def state_dict(self) -> dict:
        return {"planned": self.planned, "plateau": self.plateau.state_dict() if self.plateau is not None else None}

    def load_state_dict(self, d: dict) -> None:
        if "planned" not in d:  # a checkpoint of a plateau run written before this class: the scheduler's own state
            d = {"planned": None, "plateau": d}
        self.planned = d["planned"]
        if self.plateau is not None and d.get("plateau") is not None:
            self.plateau.load_state_dict(d["plateau"])


class WeightEMA:
    """Exponential moving average of the parameters, updated after every optimizer step with decay
    ``min(decay, (1 + n) / (10 + n))`` (n = steps so far: early averages forget the random start). :meth:`swapped`
    puts the averages into the model for evaluation and saving, and the trained weights back afterwards."""

    def __init__(self, model, decay: float):
        self.params = [p for p in model.parameters()]
        self.decay, self.steps = float(decay), 0
        self.shadow = [p.detach().clone() for p in self.params]

    def update(self) -> None:
        d = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                s.mul_(d).add_(p.detach(), alpha=1.0 - d)
        self.steps += 1

    def swapped(self):
        ema = self

        class _Swap:
            def __enter__(self):
                with torch.no_grad():
                    self.saved = [p.detach().clone() for p in ema.params]
                    for p, s in zip(ema.params, ema.shadow):
                        p.copy_(s)

            def __exit__(self, *exc):
                with torch.no_grad():
                    for p, v in zip(ema.params, self.saved):
                        p.copy_(v)
                return False

        return _Swap()

    def state_dict(self) -> dict:
        return {"steps": self.steps, "shadow": [s.detach().cpu() for s in self.shadow]}

    def load_state_dict(self, d: dict) -> None:
        self.steps = int(d["steps"])
        with torch.no_grad():
            for s, v in zip(self.shadow, d["shadow"]):
                s.copy_(v)

"""Learning-rate schedules and the exponential moving average of the weights.

``cosine``: ``lr(p) = lr_min + (lr - lr_min) (1 + cos(pi p)) / 2`` times a linear warm-up over the first
``warmup_epochs``, with ``p`` the fraction of the budget used when the epoch starts: with a wall-time budget, the
training time used so far (epochs and their validation, summed over resumed runs and saved in the checkpoint) over
the budget, so the lr reaches its minimum when the budget ends, whatever the epochs cost (a plan made from the first
epochs' times missed by a third when the machine's load changed: measured); without one, ``(epoch - 1) / max_epochs``
(deterministic: a resumed run then continues bitwise like an uninterrupted one). The run stops before an epoch that
would exceed the budget. ``plateau``: ReduceLROnPlateau on the monitored loss (the run stops at ``min_lr``; its time
budget counts this process's time, as before).
"""

from __future__ import annotations

import math

import torch

__all__ = ["LRSchedule", "WeightEMA"]


class LRSchedule:
    """Sets the lr of ``opt`` before each epoch (:meth:`before_epoch`) and takes the monitored value after it."""

    def __init__(self, opt, settings):
        self.opt, self.s = opt, settings
        self.time_used = 0.0  # training seconds of all epochs so far (cosine with a budget; saved in checkpoints)
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

    @property
    def counts_time(self) -> bool:
        """Whether the budget is the summed training time of every run (cosine with a budget)."""
        return self.plateau is None and self.s.time_budget_s is not None

    def progress(self, epoch: int) -> float:
        """Fraction of the budget used when ``epoch`` starts."""
        if self.counts_time:
            return min(self.time_used / self.s.time_budget_s, 1.0)
        return min((epoch - 1) / self.s.max_epochs, 1.0)

    def before_epoch(self, epoch: int) -> None:
        if self.plateau is not None:
            return
        s = self.s
        lr = s.min_lr + (s.lr - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * self.progress(epoch)))
        if epoch <= s.warmup_epochs:
            lr *= epoch / (s.warmup_epochs + 1)
        for g in self.opt.param_groups:
            g["lr"] = lr

    def after_epoch(self, monitor: float, epoch_s: float) -> None:
        self.time_used += epoch_s
        if self.plateau is not None:
            self.plateau.step(monitor)

    def charge(self, seconds: float) -> None:
        """Count ``seconds`` spent outside the epoch proper (checkpoints, plots) against the budget."""
        self.time_used += seconds

    def over_budget(self, last_epoch_s: float) -> bool | None:
        """Cosine with a budget: whether another epoch of ``last_epoch_s`` would exceed it (None: the loop's
        per-process rule applies)."""
        if not self.counts_time:
            return None
        return self.time_used + last_epoch_s > self.s.time_budget_s

    def finished(self, epoch: int) -> str | None:
        """Why training stops after ``epoch`` (None: it goes on)."""
        if self.plateau is not None:
            return "minimum learning rate" if self.opt.param_groups[0]["lr"] <= self.s.min_lr * (1 + 1e-9) else None
        if not self.counts_time and epoch >= self.s.max_epochs:
            return "schedule complete"
        return None

    def state_dict(self) -> dict:
        return {"time_used": self.time_used, "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, d: dict) -> None:
        if "time_used" not in d:  # a checkpoint of a plateau run written before this class: the scheduler's state
            d = {"time_used": 0.0, "plateau": d}
        self.time_used = float(d["time_used"])
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

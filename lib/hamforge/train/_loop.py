"""The training loop: Adam with a plateau or budgeted cosine schedule (``_schedule``), optional EMA of the weights,
parallel over ranks, resumable checkpoints.

Exactness across process counts: a step's loss is ``node_weight * MSE(nodes) + MSE(pairs)`` over the *global*
batch (``_loss``; the entry counts of the whole batch are known to every rank). How samples and gradients are
spread over the ranks is the runner's (``_parallel``, ``train.parallel``): ``partitions`` deals whole samples and
each rank backpropagates ``world_size * (its share of that sum)`` for DDP to average; ``halo`` gives every rank
its part of every structure, each backpropagates its share through the halo exchange and the gradients are
summed. Either way any number of ranks gives the gradient of the same global loss (up to summation order).
Sample order per epoch comes from ``numpy.random.default_rng((seed, epoch))``, so a run resumed from the
checkpoint of epoch k continues exactly as an uninterrupted one (same process count).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hamforge._errors import HamforgeError
from hamforge.io import atomic_path, write_text_atomic
from hamforge.model import HamiltonianModel, read_checkpoint, save_checkpoint
from hamforge.train._loss import ErrorSums, LossSpec, MetricsAccumulator, squared_error
from hamforge.train._parallel import DataParallel, all_gather, make_runner
from hamforge.train._schedule import LRSchedule, WeightEMA
from hamforge.train._settings import TrainSettings

__all__ = ["Item", "TrainingError", "evaluate", "train"]

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "train_mae_node_meV",
    "train_mae_edge_meV",
    "train_mae_total_meV",
    "val_mae_node_meV",
    "val_mae_edge_meV",
    "val_mae_total_meV",
    "lr",
    "epoch_time_s",
    "peak_rss_mb",
)
DETERMINISTIC_COLUMNS = CSV_COLUMNS[:10]  # all but time and memory


class TrainingError(RuntimeError, HamforgeError):
    """Training cannot go on (non-finite loss, ...); the message names the epoch and the samples."""


@dataclass(frozen=True)
class Item:
    """One training or validation sample with the targets it comes from (for metrics)."""

    targets: object  # hamforge.io.Targets
    sample: object  # hamforge.train.Sample


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _merge(accs: Sequence[MetricsAccumulator]) -> MetricsAccumulator:
    m = MetricsAccumulator()
    for a in accs:
        for k, v in a.sums.items():
            m.sums[k] += v
        for k, v in a.counts.items():
            m.counts[k] += v
    return m


def evaluate(
    model, items: Sequence[Item], ctx=None, node_weight: float | LossSpec = 1.0, runner=None
) -> tuple[float, dict[str, float]]:
    """``(loss, metrics)`` of ``model`` on ``items`` (this rank's share when distributed), no gradients.
    ``node_weight``: a :class:`LossSpec` or the node weight of a raw MSE.
    ``runner`` (``_parallel``; default: whole samples dealt to the ranks) says which items and how to run them."""
    acc, sums = MetricsAccumulator(), ErrorSums(0.0, 0.0, 0, 0)
    runner = DataParallel(model, ctx, ddp=False) if runner is None else runner
    with torch.no_grad():
        for it in runner.share(items):
            nodes, pairs = runner.forward(it)
            sums = sums + squared_error(nodes, pairs, it.sample).detached()
            acc.add(it.targets, it.sample, nodes, pairs)
    if ctx is not None:
        gathered = all_gather((sums, acc), ctx)
        sums = sum((g[0] for g in gathered), ErrorSums(0.0, 0.0, 0, 0))
        acc = _merge([g[1] for g in gathered])
    loss = sums.loss(node_weight) if sums.n_node + sums.n_pair else float("nan")
    return loss, acc.result()


def _rng_states(epoch_rng_seed):
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy_seed": list(epoch_rng_seed)}


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def plot_learning_curve(rows: list[dict], path: Path) -> None:
    """Losses and total MAE per epoch (log scale), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ep = [r["epoch"] for r in rows]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ys = [r[key] for r in rows]
        if any(np.isfinite(ys)):
            ax1.semilogy(ep, ys, label=label)
    ax1.set_xlabel("epoch"), ax1.set_ylabel("MSE, coupled basis (Ha$^2$)"), ax1.legend()
    for key, label in (("train_mae_total_meV", "train"), ("val_mae_total_meV", "validation")):
        ys = [r[key] for r in rows]
        if any(np.isfinite(ys)):
            ax2.semilogy(ep, ys, label=label)
    ax2.set_xlabel("epoch"), ax2.set_ylabel("total MAE (meV)"), ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def _make_optimizer(model, s: TrainSettings):
    if s.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)


def train(
    model: HamiltonianModel,
    train_items: Sequence[Item],
    val_items: Sequence[Item],
    settings: TrainSettings,
    out_dir: str | os.PathLike,
    ctx,
    loss_spec: LossSpec | None = None,
    content: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """Train ``model`` in place; write ``out_dir/{latest,best}.pt``, ``metrics.csv``, ``learning_curve.png``.
    ``loss_spec`` (default: the settings' node and L1 weights on raw errors) sets the loss (``_loss``).
    ``content``: ``{"train": [...], "val": [...]}`` digests of the input files, recorded in the checkpoints and
    compared on resume (a file replaced under the same name is another training).

    Resumes from ``out_dir/latest.pt`` when it exists (same settings and process count give a bitwise
    identical run). Returns the summary of the best epoch. ``ctx`` is a :class:`hamforge.train.DistContext`.
    ``settings.parallel == "halo"``: the items are this rank's :class:`hamforge.train.HaloItem` of every
    structure (:func:`hamforge.train.halo_item`), the same structures in the same order on every rank.
    """
    if not train_items:
        raise ValueError("train: the training set is empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = settings
    runner = make_runner(s, model, ctx, train_items, val_items)
    spec = loss_spec or LossSpec(node_weight=s.node_weight, l1_weight=s.l1_weight)
    opt = _make_optimizer(model, s)
    sched = LRSchedule(opt, s)
    ema = WeightEMA(model, s.ema_decay) if s.ema_decay > 0 else None
    rows, start, best = [], 1, {"val_loss": math.inf}
    latest = out / "latest.pt"
    data = {"train": _structures(train_items), "val": _structures(val_items)}
    if content is not None:
        data.update({f"{k}_content": sorted(v) for k, v in content.items()})
    ck, changed = None, []
    if latest.is_file():
        try:
            ck = read_checkpoint(latest)
            changed = _resume_conflicts(ck, model, s, data)
        except ValueError as exc:  # e.g. a checkpoint of an older hamforge: moved aside below, never resumed
            ck, changed = _Unreadable(exc), [f"the checkpoint itself ({exc})"]
    # rank 0 wrote the checkpoint: every rank follows its decision (and all have read the file before it moves)
    changed = all_gather(changed, ctx)[0]
    if ck is not None and changed:
        if ctx.is_main:
            epoch = ck.extra.get("epoch", "?") if isinstance(ck.extra, dict) else "?"
            stale = _free_name(out / f"stale-epoch{epoch}-{time.strftime('%Y%m%dT%H%M%S')}")
            logger.warning(
                "%s: not resuming: the checkpoint is of another training (%s differ); starting afresh, its "
                "checkpoints, metrics and curve moved to %s",
                latest,
                ", ".join(changed),
                stale,
            )
            stale.mkdir()
            for name in ("latest.pt", "best.pt", "metrics.csv", "learning_curve.png"):
                if (out / name).exists():
                    os.replace(out / name, stale / name)
        _barrier(ctx)
        ck = None
    if ck is not None:
        model.load_state_dict(ck.model.state_dict())
        ex = ck.extra
        opt.load_state_dict(ex["optimizer"])
        sched.load_state_dict(ex["scheduler"])
        if ema is not None:
            ema.load_state_dict(ex["ema"])
        torch.set_rng_state(ex["rng"]["torch"])
        random.setstate(ex["rng"]["python"])
        rows, best, start = list(ex["history"]), dict(ex["best"]), int(ex["epoch"]) + 1
        logger.info("resuming from %s after epoch %d", latest, start - 1)
    n = len(train_items)
    bs = s.batch_size or n
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if s.mixed_precision and ctx.device.type == "cuda" else _null()
    )
    t_start = time.perf_counter()
    last_epoch_time = 0.0
    stop_reason = "max_epochs"
    show_bar = ctx.is_main and sys.stderr.isatty()
    for epoch in range(start, s.max_epochs + 1):
        over = sched.over_budget(last_epoch_time)
        if over is None:  # this process's time (plateau)
            over = s.time_budget_s is not None and time.perf_counter() - t_start + last_epoch_time > s.time_budget_s
        if any(all_gather(over, ctx)):  # every rank stops at the same epoch (the clocks differ)
            stop_reason = "time budget"
            break
        t0 = time.perf_counter()
        sched.before_epoch(epoch)
        order = np.random.default_rng((s.seed, epoch)).permutation(n)
        runner.set_training(True)
        runner.start_epoch()
        batches = [order[b : b + bs] for b in range(0, n, bs)]
        bar = _progress(len(batches), f"epoch {epoch}", show_bar)
        epoch_sums = ErrorSums(0.0, 0.0, 0, 0)
        train_acc = MetricsAccumulator()  # training MAE from the training passes (no second forward pass)
        for batch in batches:
            items = [train_items[k] for k in batch]
            mine = runner.share(items)
            opt.zero_grad(set_to_none=True)
            scale = ctx.world_size if runner.scale_by_world else 1
            weights = tuple(scale * w if mine else 0.0 for w in runner.counts(items).weights(spec))
            work = mine or items[:1]  # an idle rank still joins the gradient all-reduce (with zero weight)
            local = ErrorSums(0.0, 0.0, 0, 0)
            for k, it in enumerate(work):
                with runner.sync(k == len(work) - 1), autocast:
                    nodes, pairs = runner.forward(it, training=True)
                    e = squared_error(_wide(nodes), _wide(pairs), it.sample)
                    # one backward per sample: memory bounded by one sample
                    runner.backward(it, e.loss(spec, weights))
                if mine:
                    local = local + e.detached()
                    train_acc.add(it.targets, it.sample, nodes.detach(), pairs.detach())
            runner.reduce_gradients()
            batch = sum(all_gather(local, ctx), ErrorSums(0.0, 0.0, 0, 0))
            if not math.isfinite(batch.node_sq + batch.pair_sq):
                names = ", ".join(it.sample.name for it in items)
                raise TrainingError(
                    f"epoch {epoch}: non-finite loss on batch [{names}]; the last good checkpoint "
                    f"is {latest if latest.is_file() else 'not written yet'}"
                )
            opt.step()
            if ema is not None:
                ema.update()
            epoch_sums = epoch_sums + batch
            bar.update(1)
        bar.close()
        runner.set_training(False)
        train_loss = epoch_sums.loss(spec)
        train_m = _merge(all_gather(train_acc, ctx)).result()
        with ema.swapped() if ema is not None else _null():  # validation (and best.pt) with the averaged weights
            val_loss, val_m = evaluate(model, val_items, ctx, spec, runner) if val_items else (float("nan"), {})
        monitor = val_loss if val_items else train_loss
        lr = opt.param_groups[0]["lr"]
        last_epoch_time = time.perf_counter() - t0
        # every rank takes rank 0's epoch time: the schedule (and the stop) must not differ between ranks
        last_epoch_time = all_gather(last_epoch_time, ctx)[0]
        sched.after_epoch(monitor, last_epoch_time)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            **{f"train_{k}": train_m.get(k, float("nan")) for k in ("mae_node_meV", "mae_edge_meV", "mae_total_meV")},
            **{f"val_{k}": val_m.get(k, float("nan")) for k in ("mae_node_meV", "mae_edge_meV", "mae_total_meV")},
            "lr": lr,
            "epoch_time_s": last_epoch_time,
            "peak_rss_mb": _peak_rss_mb(),
        }
        rows.append(row)
        logger.info(
            "epoch %d: loss %.4g (val %.4g), MAE total %.3f meV (val %.3f), lr %.3g, %.1f s",
            epoch,
            train_loss,
            val_loss,
            row["train_mae_total_meV"],
            row["val_mae_total_meV"],
            lr,
            last_epoch_time,
        )
        if s.select_on == "mae":
            monitor = (val_m if val_items else train_m).get("mae_total_meV", math.inf)
        improved = monitor < best.get("monitor", math.inf)
        if improved:
            best = {"epoch": epoch, "monitor": monitor, **row, "val_metrics": val_m, "train_metrics": train_m}
        finished = sched.finished(epoch)
        done = finished is not None or epoch == s.max_epochs
        if ctx.is_main and (improved or done or epoch % s.checkpoint_every == 0):
            extra = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": _rng_states((s.seed, epoch)),
                "epoch": epoch,
                "history": rows,
                "best": best,
                "settings": s.to_dict(),
                "world_size": ctx.world_size,
                "data": data,
                "loss_spec": dataclasses.asdict(spec),
            }
            if ema is not None:
                extra["ema"] = ema.state_dict()
            if improved:
                with ema.swapped() if ema is not None else _null():
                    save_checkpoint(out / "best.pt", model, extra)
            save_checkpoint(latest, model, extra)
            _write_csv(out / "metrics.csv", rows)
            plot_learning_curve(rows, out / "learning_curve.png")
        _barrier(ctx)
        # checkpoints and plots count against the budget too: the next epoch is judged on the whole iteration
        full = all_gather(time.perf_counter() - t0, ctx)[0]
        sched.charge(max(full - last_epoch_time, 0.0))
        last_epoch_time = max(full, last_epoch_time)
        if finished is not None:
            stop_reason = finished
            break
    runner.finish(out)
    logger.info("training stopped (%s) after %d epochs; best epoch %s", stop_reason, len(rows), best.get("epoch"))
    return {**best, "stop_reason": stop_reason, "epochs": len(rows)}


def _wide(x: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs (mixed precision) are compared with the targets in float32."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _barrier(ctx):
    if ctx.backend is not None:
        import torch.distributed as dist

        dist.barrier()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled)


# Settings a resumed run may change: how long it runs and what it writes, not the trajectory it follows.
_RESUMABLE_CHANGES = frozenset({"max_epochs", "time_budget_s", "checkpoint_every", "halo_report"})


class _Unreadable:
    """A checkpoint that cannot be resumed (its reading failed): only moved aside."""

    def __init__(self, exc):
        self.extra, self.error = {}, exc


def _free_name(path: Path) -> Path:
    k, out = 1, path
    while out.exists():
        k, out = k + 1, path.with_name(f"{path.name}-{k}")
    return out


def _structures(items) -> list[str]:
    """Structure names of the items (sample names "<structure>/part<p>" or "<structure>/rank<r>" stripped)."""
    return sorted({re.sub(r"/(part|rank)\d+$", "", it.sample.name) for it in items})


def _resume_conflicts(ck, model: HamiltonianModel, s: TrainSettings, data: dict) -> list[str]:
    """Names of what differs between a checkpoint's training and this one (model config, settings that shape
    the trajectory, training and validation structures): a checkpoint of another training is not resumed.
    Checkpoints older than the ``data`` record are compared on the rest."""
    changed = []
    old_model, new_model = ck.model.config.to_dict(), model.config.to_dict()
    changed += [f"model.{k}" for k in sorted(set(old_model) | set(new_model)) if old_model.get(k) != new_model.get(k)]
    if "settings" in ck.extra:  # keys added since the checkpoint was written take their defaults
        old, new = {**TrainSettings().to_dict(), **ck.extra["settings"]}, s.to_dict()
        changed += [
            f"train.{k}"
            for k in sorted(set(old) | set(new))
            if k not in _RESUMABLE_CHANGES and old.get(k) != new.get(k)
        ]
    if "data" in ck.extra:
        changed += [f"{k} structures" for k in ("train", "val") if list(ck.extra["data"].get(k, [])) != data[k]]
        changed += [
            f"{k} files' content"
            for k in ("train", "val")
            if f"{k}_content" in data
            and f"{k}_content" in ck.extra["data"]  # older checkpoints: names only
            and list(ck.extra["data"][f"{k}_content"]) != data[f"{k}_content"]
        ]
    return changed

"""How the training loop spreads samples and gradients over the ranks (``train.parallel``).

``partitions`` (:class:`DataParallel`): whole samples (full graphs or augmented partitions) are dealt to the ranks,
``items[rank::world]``; each rank backpropagates ``world_size`` x its share of the global loss and DDP averages
the gradients.

``halo`` (:class:`HaloParallel`): every structure is split into one part per rank (``hamforge.partition``) and
rank ``r`` holds part ``r`` of every structure (:func:`halo_item`: owned atoms, the edges into them, ghosts). All
ranks run the same structure together through :class:`hamforge.parallel.HaloModel` (one halo exchange per layer,
forward and backward); each backpropagates its share of the global loss with the weights of the *whole* batch
(entry counts summed over ranks) and the gradients are summed over ranks (``all_reduce_gradients``, no DDP), so
the step is the one of a single process on the full graphs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hamforge.model import EDGE_OUT, NODE_OUT
from hamforge.parallel import HaloModel, HaloPlan, all_reduce_gradients, build_halo_plan, write_halo_report
from hamforge.partition import partition_atoms
from hamforge.train._data import make_owned_sample
from hamforge.train._fold import fold
from hamforge.train._loss import ErrorSums, forward_fold

__all__ = ["DataParallel", "HaloItem", "HaloParallel", "all_gather", "halo_item", "make_runner"]


def all_gather(obj, ctx) -> list:
    """``obj`` of every rank (``[obj]`` without a process group)."""
    if ctx is None or ctx.backend is None:
        return [obj]
    import torch.distributed as dist

    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


@dataclass(frozen=True)
class HaloItem:
    """One rank's part of a training or validation structure (``train.parallel: halo``): the targets, the
    rank's :func:`hamforge.train.make_owned_sample` and its :class:`hamforge.parallel.HaloPlan`."""

    targets: object  # hamforge.io.Targets
    sample: object  # hamforge.train.Sample
    plan: HaloPlan
    structure: str


def halo_item(t, structure: str, positions, method: str, ctx, dtype=torch.float32) -> HaloItem:
    """Part ``ctx.rank`` of ``ctx.world_size`` of structure ``t`` (targets, positions ``(N, 3)`` Angstrom)
    partitioned by ``method`` (deterministic: every rank computes the same assignment)."""
    world = ctx.world_size
    if world > t.nl.n_atoms:
        raise ValueError(
            f"train.parallel: halo: {structure} has {t.nl.n_atoms} atoms, fewer than the {world} ranks (one part each)"
        )
    assignment = np.zeros(t.nl.n_atoms, np.int64) if world == 1 else partition_atoms(t.nl, positions, method, world)
    plan = build_halo_plan(t.nl.edge_index, assignment, ctx.rank)
    return HaloItem(t, make_owned_sample(t, f"{structure}/rank{ctx.rank}", plan, dtype), plan, structure)


def _mask_counts(it) -> tuple[int, int]:
    return int(it.sample.node_mask.sum()), int(it.sample.pair_mask.sum())


class DataParallel:
    """``train.parallel: partitions``: rank ``r`` takes ``items[r::world]`` of a batch; DDP averages."""

    scale_by_world = True

    def __init__(self, model, ctx, ddp: bool = True):
        self.model, self.ctx, self.net = model, ctx, model
        self.distributed = ctx is not None and ctx.backend is not None
        if ddp and self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(model, find_unused_parameters=model.config.predict_overlap)

    def share(self, items):
        return items[self.ctx.rank :: self.ctx.world_size] if self.distributed else items

    def counts(self, items) -> ErrorSums:
        """Entry counts of the whole batch ``items`` (every rank holds all of them)."""
        n = [_mask_counts(it) for it in items]
        return ErrorSums(0.0, 0.0, sum(a for a, _ in n), sum(b for _, b in n))

    def forward(self, it, training: bool = False):
        return forward_fold(self.net if training else self.model, it.sample)

    def sync(self, last: bool):
        """Context of one sample's forward/backward: DDP all-reduces after the last sample of a batch only."""
        return contextlib.nullcontext() if last or self.net is self.model else self.net.no_sync()

    def backward(self, it, loss) -> None:
        loss.backward()

    def reduce_gradients(self) -> None:
        """Done by DDP during the last backward."""

    def set_training(self, mode: bool) -> None:
        self.net.train(mode)

    def start_epoch(self) -> None:
        pass

    def finish(self, out_dir) -> None:
        pass


class HaloParallel:
    """``train.parallel: halo``: every rank holds its :class:`HaloItem` of every structure; all ranks process
    the same item at the same time (the exchanges are collective)."""

    scale_by_world = False

    def __init__(self, model, ctx, train_items, val_items, report: bool = False):
        items = list(train_items) + list(val_items)
        bad = [type(it).__name__ for it in items if not isinstance(it, HaloItem)]
        if bad:
            raise ValueError(f"train.parallel: halo needs the items of hamforge.train.halo_item, got {bad[0]}")
        if any(it.plan.world != ctx.world_size or it.plan.rank != ctx.rank for it in items):
            raise ValueError(f"train.parallel: halo: items are not of rank {ctx.rank} of {ctx.world_size}")
        self.model, self.ctx, self.report = model, ctx, report
        self.distributed = ctx.backend is not None
        if self.distributed:  # the same start on every rank (as DDP does), not only by the same seed
            import torch.distributed as dist

            for v in model.state_dict().values():
                dist.broadcast(v, 0)
        training = {id(it.plan) for it in train_items}
        self.halo = {id(it.plan): HaloModel(model, it.plan, stats=id(it.plan) in training) for it in items}
        self.train_items = list(train_items)
        # entry counts of every structure summed over its parts (one all-gather, then known to every rank)
        names = [it.structure for it in items]
        if len(set(names)) != len(names):
            raise ValueError(f"train.parallel: halo: structure names are not unique: {sorted(names)}")
        local = {it.structure: _mask_counts(it) for it in items}
        total: dict[str, tuple[int, int]] = {}
        for part in all_gather(local, ctx):
            if set(part) != set(local):
                raise ValueError("train.parallel: halo: the ranks hold different structures")
            for k, (a, b) in part.items():
                n0, p0 = total.get(k, (0, 0))
                total[k] = (n0 + a, p0 + b)
        self._counts = total
        self._epochs = 0

    def share(self, items):
        return items

    def counts(self, items) -> ErrorSums:
        """Entry counts of the whole batch: the structures' counts summed over the ranks."""
        n = [self._counts[it.structure] for it in items]
        return ErrorSums(0.0, 0.0, sum(a for a, _ in n), sum(b for _, b in n))

    def forward(self, it, training: bool = False):
        out = self.halo[id(it.plan)](it.sample.graph)
        return fold(out[NODE_OUT], out[EDGE_OUT], it.sample)

    def sync(self, last: bool):
        return contextlib.nullcontext()

    def backward(self, it, loss) -> None:
        self.halo[id(it.plan)].backward(loss)  # collective: ghost-row gradients go back to their owners

    def reduce_gradients(self) -> None:
        """Sum of the gradients over ranks; a parameter no rank reached keeps no gradient (as in one process:
        Adam then skips it instead of counting a zero step)."""
        if not self.distributed:
            return
        import torch.distributed as dist

        params = [p for p in self.model.parameters() if p.requires_grad]
        reached = torch.tensor([float(p.grad is not None) for p in params], device=self.ctx.device)
        dist.all_reduce(reached, op=dist.ReduceOp.MAX)
        all_reduce_gradients(self.model)
        for p, r in zip(params, reached.tolist()):
            if not r:
                p.grad = None

    def set_training(self, mode: bool) -> None:
        self.model.train(mode)

    def start_epoch(self) -> None:
        """New instrumentation records: the report holds the last epoch."""
        self._epochs += 1
        for it in self.train_items:
            self.halo[id(it.plan)].reset_stats()

    def finish(self, out_dir) -> None:
        """``train.halo_report``: the report of the last epoch of every training structure (collective), in
        ``out_dir/halo_report/<structure>/`` (``hamforge.parallel.REPORT_FILES``)."""
        if not self.report or not self._epochs:  # nothing ran (e.g. a resumed run that had already ended)
            return
        for it in self.train_items:
            safe = it.structure.replace("/", "_").replace("\\", "_")
            write_halo_report(self.halo[id(it.plan)].stats, it.plan, Path(out_dir) / "halo_report" / safe)


def make_runner(settings, model, ctx, train_items, val_items):
    """The :class:`DataParallel` or :class:`HaloParallel` runner of ``settings.parallel``."""
    if settings.parallel == "halo":
        return HaloParallel(model, ctx, train_items, val_items, settings.halo_report)
    return DataParallel(model, ctx)

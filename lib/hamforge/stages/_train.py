"""Training and evaluation stages: dataset index / targets files -> trained model, metrics, learning curve."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from hamforge.io import atomic_paths, read_partitions, read_targets_file, strict_json, write_text_atomic
from hamforge.model import HamiltonianModel, ModelConfig, read_checkpoint
from hamforge.train import (
    Item,
    TrainSettings,
    baseline_only,
    distributed,
    error_anatomy,
    evaluate,
    forward_fold,
    halo_item,
    make_samples,
    prepare_model,
    train,
)

__all__ = ["evaluate_model", "split_index", "train_model"]

logger = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def split_index(index_paths: Sequence[str | os.PathLike], n_validation: int) -> tuple[list[dict], list[dict]]:
    """(training, validation) structure entries of dataset indices (``index/q<k>.json``; paths inside are relative
    to the index). Structures of a ``validation`` quench (``validation_quench`` in the config) validate; without
    one, the last ``n_validation`` structures (sorted by name) of the training quenches are held aside (thermal
    siblings of training structures: an optimistic validation). Entries of the test quench are never returned."""
    entries, held = [], []
    for p in index_paths:
        idx = json.loads(Path(p).read_text())
        if idx.get("split") not in ("train", "validation"):
            continue
        for e in idx["structures"]:
            entry = {k: (str(Path(p).parent / v) if k != "structure" else v) for k, v in e.items()}
            (held if idx["split"] == "validation" else entries).append(entry)
    entries.sort(key=lambda e: e["structure"])
    if held:
        return entries, sorted(held, key=lambda e: e["structure"])
    if len(entries) - n_validation < 1:
        raise ValueError(
            f"train.validation_structures: {n_validation} of {len(entries)} training structures held "
            "aside leaves no structure to train on"
        )
    cut = len(entries) - n_validation
    return entries[:cut], entries[cut:]


def _items(entries, dtype, use_partitions: bool, halo: int, symmetrize: bool = False) -> list[Item]:
    items = []
    for e in entries:
        t = read_targets_file(e["targets"])
        part = None
        if use_partitions:
            part = read_partitions(e["partitions"], t.nl)
            if part.halo < halo:
                raise ValueError(
                    f"{e['partitions']}: halo {part.halo} is smaller than the model needs ({halo}); "
                    "set partition.halo to the model's n_layers (1 if strictly_local)"
                )
        items += [Item(t, s) for s in make_samples(t, e["structure"], part, dtype, symmetrize)]
    return items


def _halo_items(entries, method: str, dtype, ctx) -> list:
    """``train.parallel: halo``: part ``ctx.rank`` of every structure (positions from the targets file)."""
    items = []
    for e in entries:
        t = read_targets_file(e["targets"])
        positions = read_targets_file(e["targets"], graph_only=True).positions
        items.append(halo_item(t, e["structure"], positions, method, ctx, dtype))
    return items


def train_model(
    train_entries: Sequence[Mapping[str, str]],
    val_entries: Sequence[Mapping[str, str]],
    model_hyper: Mapping[str, Any],
    settings: TrainSettings,
    checkpoint_dir: str | os.PathLike,
    *,
    use_partitions: bool = False,
    outputs: Mapping[str, str] | None = None,
) -> dict:
    """Train on the targets (and optionally partitions) of ``train_entries``; validate on ``val_entries``.
    ``settings.parallel == "halo"``: every structure is split over the torchrun/srun ranks (``hamforge.train``).

    Checkpoints, metrics.csv and learning_curve.png live in ``checkpoint_dir`` (a rerun resumes there);
    ``outputs`` may name copies to write at the end: ``model``, ``metrics``, ``curve``, ``summary``.
    """
    dtype = _DTYPES[settings.dtype]
    halo = settings.parallel == "halo"
    if halo and use_partitions:
        raise ValueError(
            "train.use_partitions: the augmented partitions are not used with train.parallel: halo (every "
            "structure is split over the ranks); set use_partitions: false or parallel: partitions"
        )
    content = _check_inputs_apart(train_entries, val_entries)
    first = read_targets_file(train_entries[0]["targets"])
    config = ModelConfig.from_targets(first, **dict(model_hyper))
    with distributed() as ctx:
        if halo:
            make = lambda es: _halo_items(es, settings.halo_partition, dtype, ctx)  # noqa: E731
        else:
            make = lambda es: _items(es, dtype, use_partitions, config.halo, settings.symmetrize)  # noqa: E731
        train_items, val_items = make(train_entries), make(val_entries)
        for it in train_items + val_items:
            config.check_targets(it.targets, it.sample.name)
        model = HamiltonianModel(config, seed=settings.seed).to(dtype)
        fit_items = train_items
        if halo:  # each rank holds the whole targets of every structure: it fits on the full graphs, exactly as
            # one process does (sums of per-rank normal equations in another order differ by the fit's conditioning)
            fit_items = [Item(it.targets, make_samples(it.targets, it.structure, None, dtype)[0]) for it in train_items]
        spec, fit = prepare_model(model, fit_items, settings)
        logger.info(
            "baseline %s; its training MAE (coupled): on-site %s meV, pairs %s meV",
            "fitted" if settings.baseline else "off",
            fit.get("baseline_train_mae_node_coupled_meV"),
            fit.get("baseline_train_mae_edge_coupled_meV"),
        )
        logger.info(
            "training on %d samples (%d structures), validating on %d; %d parameters; parallel: %s over %d rank(s)",
            len(train_items),
            len(train_entries),
            len(val_items),
            sum(p.numel() for p in model.parameters()),
            settings.parallel,
            ctx.world_size,
        )
        model.to(ctx.device)
        train_items = [dataclasses.replace(it, sample=it.sample.to(ctx.device)) for it in train_items]
        val_items = [dataclasses.replace(it, sample=it.sample.to(ctx.device)) for it in val_items]
        with _output_lock(checkpoint_dir) if ctx.is_main else contextlib.nullcontext():
            summary = train(
                model, train_items, val_items, settings, checkpoint_dir, ctx, loss_spec=spec, content=content
            )
        if settings.baseline and val_items:  # what the network adds: the baselines alone on the validation set
            base = evaluate(baseline_only(model), val_items, ctx, spec)[1]
            summary["baseline_val_metrics"] = base
            logger.info(
                "validation MAE total: model %.3f meV, baselines alone %.3f meV (edges %.3f vs %.3f)",
                summary.get("val_metrics", {}).get("mae_total_meV", float("nan")),
                base.get("mae_total_meV", float("nan")),
                summary.get("val_metrics", {}).get("mae_edge_meV", float("nan")),
                base.get("mae_edge_meV", float("nan")),
            )
        summary["baseline_fit"] = fit
        if ctx.is_main and outputs:
            _copy_outputs(Path(checkpoint_dir), outputs, summary, train_entries, val_entries)
    return summary


def _check_inputs_apart(train_entries, val_entries) -> dict:
    """Digests of the training and validation targets files; a file twice among them (by content, whatever its
    name: a copy is the same data) is refused, as validating on training data would report a flattering MAE."""
    from hamforge._hashing import file_digest
    from hamforge.train import TrainingError

    seen: dict[str, str] = {}
    content = {"train": [], "val": []}
    for split, entries in (("train", train_entries), ("val", val_entries)):
        for e in entries:
            path = e["targets"]
            d = file_digest(path)
            if d in seen:
                both = "training and validation" if split == "val" and seen[d][0] == "train" else f"{split}"
                raise TrainingError(
                    f"{path}: the same content as {seen[d][1]} (both in the {both} data); a structure counts once, "
                    "and validating on training data would report a flattering error"
                )
            seen[d] = (split, path)
            content[split].append(d)
    return content


@contextlib.contextmanager
def _output_lock(folder):
    """An exclusive lock on ``folder/.lock`` for the whole training: a second training into the same folder is
    refused at once instead of both writing the same checkpoints (the last one would win)."""
    import fcntl

    from hamforge.train import TrainingError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingError(
                f"{folder}: another training is writing there (locked); wait for it or choose another folder"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _copy_outputs(ck: Path, outputs, summary, train_entries, val_entries) -> None:
    """The final model, metrics, curve and summary: all of them or none (the checkpoints stay for a rerun)."""
    keys = [k for k in ("model", "metrics", "curve", "summary") if k in outputs]
    with atomic_paths(*(outputs[k] for k in keys)) as temps:
        tmp = dict(zip(keys, temps))
        for key, name in (("model", "best.pt"), ("metrics", "metrics.csv"), ("curve", "learning_curve.png")):
            if key in tmp:
                shutil.copyfile(ck / name, tmp[key])
        if "summary" in tmp:
            keep = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, dict))}
            keep["train_structures"] = [e["structure"] for e in train_entries]
            keep["validation_structures"] = [e["structure"] for e in val_entries]
            write_text_atomic(tmp["summary"], strict_json(keep, indent=2) + "\n")


def evaluate_model(
    model_path: str | os.PathLike,
    targets_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    partitions_path=None,
) -> dict[str, float]:
    """MAE of a trained model on one structure's targets (refused when the layout, kinds, basis or r_cut differ);
    written as JSON to ``output`` when given (keys ``mae_node_meV``, ``mae_edge_meV``, ``mae_total_meV`` and per
    element pair), the baselines' own MAE beside them (``baseline``) and the error anatomy
    (:func:`hamforge.train.error_anatomy`: by distance and slot, shift-aligned, mean signed on-site error). On the full
    graph the blocks compared are the symmetrized ones, ``(H_ij + H_ji^T) / 2``, which
    ``hamforge.predict`` delivers, whatever the model was trained on (``symmetrized: true`` in the output); with
    ``partitions_path`` (reverse pairs in other parts) each direction's raw output."""
    ck = read_checkpoint(model_path)
    t = read_targets_file(targets_path)
    ck.config.check_targets(t, str(targets_path))
    part = read_partitions(partitions_path, t.nl) if partitions_path else None
    symmetric = part is None
    items = [Item(t, s) for s in make_samples(t, Path(targets_path).stem, part, ck.model.dtype, symmetric)]
    loss, metrics = evaluate(ck.model, items)
    base = baseline_only(ck.model)
    out = {
        "structure": Path(targets_path).stem,
        "model": str(model_path),
        "symmetrized": symmetric,
        "mse_coupled": loss,
        **metrics,
        "baseline_fitted": ck.model.baseline.is_fitted,
        "baseline": {k: v for k, v in evaluate(base, items)[1].items() if k.startswith("mae_")},
        **error_anatomy(ck.model, base, items, lambda m, it: forward_fold(m, it.sample)),
    }
    if output is not None:
        write_text_atomic(output, strict_json(out, indent=2) + "\n")
    return out

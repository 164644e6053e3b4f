"""Model checkpoints: the config dict and the state dict, nothing else (no pickled classes).

File content (``torch.save`` of a plain dict, loadable with ``torch.load(weights_only=True)``)::

    format      "hamforge.model"
    version     2 (1: models before the physics baselines and per-slot scaling, 2026-12; refused)
    config      ModelConfig.to_dict()
    dtype       "float32" | "float64" (parameter dtype at save time)
    state_dict  model.state_dict()
    extra       caller's dict (plain types / tensors only) or None
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import torch

from hamforge.io import atomic_path
from hamforge.model._config import ModelConfig
from hamforge.model._model import HamiltonianModel

CHECKPOINT_FORMAT = "hamforge.model"
CHECKPOINT_VERSION = 2
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Checkpoint(NamedTuple):
    """What :func:`read_checkpoint` returns."""

    model: HamiltonianModel
    config: ModelConfig
    extra: Any


def save_checkpoint(path: str | os.PathLike, model: HamiltonianModel, extra: dict | None = None) -> None:
    """Write ``model`` (config + parameters, moved to CPU) and ``extra`` to ``path`` atomically.

    ``extra`` must hold only what ``torch.load(weights_only=True)`` accepts (dicts, lists, tuples, str,
    numbers, bool, None, tensors), e.g. epoch, optimiser-free metrics, target scaling.
    """
    if not isinstance(model, HamiltonianModel):
        raise ValueError(f"model must be a HamiltonianModel, got {type(model).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"extra must be a dict or None, got {type(extra).__name__}")
    dtype = {v: k for k, v in _DTYPES.items()}.get(model.dtype)
    if dtype is None:
        raise ValueError(f"model dtype must be float32 or float64, got {model.dtype}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": model.config.to_dict(),
        "dtype": dtype,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and rebuild the model from its config.

    The model is in eval mode, in the saved dtype, on ``map_location``. ValueError if the file is not a
    hamforge model checkpoint or the state dict does not fit the config.
    """
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # unpickling errors come in many types
        raise ValueError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    if payload.get("version") == 1:
        raise ValueError(
            f"{path}: a model of checkpoint version 1, trained by hamforge before its physics baselines and per-slot "
            "output scaling (2026-12); this version cannot run it. Retrain it (hamforge train, or the workflow's "
            "train rule) with this version"
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: checkpoint version {payload.get('version')!r} is not supported (expected {CHECKPOINT_VERSION})"
        )
    config = ModelConfig.from_dict(payload["config"])
    dtype = _DTYPES.get(payload.get("dtype"))
    if dtype is None:
        raise ValueError(f"{path}: unknown dtype {payload.get('dtype')!r}")
    model = HamiltonianModel(config).to(dtype=dtype, device=map_location)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: state dict does not match the config: {exc}") from None
    bad = [
        name for name, t in payload["state_dict"].items() if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise ValueError(
            f"{path}: state_dict: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} hold NaN or infinite values; "
            "this model would predict garbage (a diverged training?)"
        )
    model.eval()
    return Checkpoint(model=model, config=config, extra=payload.get("extra"))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> HamiltonianModel:
    """The model of :func:`read_checkpoint` (eval mode)."""
    return read_checkpoint(path, map_location).model

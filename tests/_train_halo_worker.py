"""Test helper (not a test): ``hamforge.stages.train_model`` on ``world`` real gloo processes.

``spawn(job, world)`` starts ``world`` processes (torch.multiprocessing, start method spawn); each sets the
torchrun environment variables by hand, so ``hamforge._dist.distributed`` inside ``train_model`` joins a gloo
group, and trains with ``job["settings"]`` (a ``TrainSettings`` dict) on ``job["train"]`` / ``job["val"]``
entries into ``job["checkpoints"]``.
"""

from __future__ import annotations

import os

import torch
from _launch import free_port
from _launch import spawn as launch
from hamforge.stages import train_model
from hamforge.train import TrainSettings


def _rank(rank: int, world: int, port: int, job: dict) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    settings = TrainSettings.from_dict(job["settings"])
    train_model(job["train"], job["val"], job["hyper"], settings, job["checkpoints"])


def spawn(job: dict, world: int) -> None:
    """Train on ``world`` gloo ranks; raises if any rank fails."""
    launch(_rank, (world, free_port(), job), world)

"""torch.distributed setup for torchrun and srun (gloo on CPU, NCCL on GPU), with explicit teardown.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. Under
``srun`` (one task per process) the same are derived from ``SLURM_PROCID``, ``SLURM_NTASKS``,
``SLURM_LOCALID`` and the first host of ``SLURM_JOB_NODELIST`` (``scontrol show hostnames``); the port
comes from ``MASTER_PORT`` or is derived from ``SLURM_JOB_ID``. One process without either is not
distributed (world size 1, no process group).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass

import torch

__all__ = ["DistContext", "distributed"]


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _slurm_env() -> dict[str, str]:
    env = {
        "RANK": os.environ["SLURM_PROCID"],
        "WORLD_SIZE": os.environ["SLURM_NTASKS"],
        "LOCAL_RANK": os.environ.get("SLURM_LOCALID", "0"),
    }
    if "MASTER_ADDR" not in os.environ:
        nodes = os.environ.get("SLURM_JOB_NODELIST", "localhost")
        try:
            hosts = subprocess.run(
                ["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True, timeout=30
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            hosts = [nodes.split(",")[0]]
        env["MASTER_ADDR"] = hosts[0] if hosts else "localhost"
    if "MASTER_PORT" not in os.environ:
        env["MASTER_PORT"] = str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000)
    return env


@contextlib.contextmanager
def distributed(backend: str | None = None, device: str | None = None):
    """Yield a :class:`DistContext`; initialise (and finally destroy) the process group when launched by
    torchrun or srun with more than one process. ``backend`` defaults to NCCL with CUDA, else gloo."""
    import torch.distributed as dist

    if "RANK" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        os.environ.update(_slurm_env())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world <= 1:
        yield DistContext(0, 1, 0, dev, None)
        return
    backend = backend or ("nccl" if use_cuda else "gloo")
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    try:
        yield DistContext(rank, world, local, dev, backend)
    finally:
        dist.destroy_process_group()

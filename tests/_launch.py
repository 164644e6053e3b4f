"""Test helper (not a test): the one way tests start several processes: a free port, a time limit, and either
``torch.distributed.run`` (torchrun, as users launch) or ``torch.multiprocessing.spawn`` (a function per rank).

A hung process group (a rank waiting forever in a collective) fails the test after ``timeout`` seconds with the
processes killed, instead of holding CI until its own limit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import torch.multiprocessing as mp

__all__ = ["free_port", "spawn", "torchrun"]


def free_port() -> int:
    """A TCP port free on this machine now (the OS picks it; never derived from a pid, which can collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(argv: list[str], nproc: int, timeout: float = 600, module: bool = False) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc-per-node=nproc [-m] argv`` on a free port, one thread per rank."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={nproc}",
        "--master-port",
        str(free_port()),
    ]
    cmd += (["-m"] if module else []) + [str(a) for a in argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def spawn(fn, args: tuple, nprocs: int, timeout: float = 600) -> None:
    """``fn(rank, *args)`` in ``nprocs`` processes (start method spawn); raises if a rank fails or time runs out."""
    ctx = mp.spawn(fn, args=args, nprocs=nprocs, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=max(0.1, min(5.0, deadline - time.monotonic()))):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            raise TimeoutError(f"{nprocs} processes still running after {timeout:.0f} s (a hung process group?)")

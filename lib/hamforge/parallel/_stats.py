"""Per-rank instrumentation of the halo exchange: wall time of packing, exchanging, unpacking and computing,
bytes sent per destination rank; one row per rank, step, layer and phase.

Timing (``time.perf_counter``, after ``torch.cuda.synchronize`` on a GPU so that queued kernels are counted
where they run): the exchange of layer ``t`` is split into *pack* (gather the rows each neighbour needs into
one contiguous buffer per neighbour), *exchange* (post all sends and receives, wait for them) and *unpack*
(the received buffers into the ghost rows). *Compute* is the wall time between exchanges: in the forward
row ``t`` holds layer ``t`` (row 0 also the embeddings, the last row also the read-out heads); in the
backward row ``t`` holds the backward of layer ``t`` (the last row also the heads', row 0 the embeddings').
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

__all__ = ["HaloStats", "LAYER_COLUMNS"]

LAYER_COLUMNS = (
    "rank",
    "step",
    "phase",
    "layer",
    "t_pack",
    "t_exchange",
    "t_unpack",
    "t_compute",
    "bytes_sent",
    "n_neighbours",
)


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class HaloStats:
    """Records of one rank. ``start(phase)`` before a forward or backward, ``stop()`` after it; the
    exchange calls ``exchanged`` once per layer in between. ``bytes_to[q]`` accumulates over all steps."""

    rank: int
    n_neighbours: int
    device: torch.device | None = None
    rows: list[dict] = field(default_factory=list)
    bytes_to: dict[int, int] = field(default_factory=dict)
    step: int = -1  # index of the current forward (its backward shares it)
    _phase: str | None = None
    _mark: float = 0.0
    _carry: float = 0.0
    _open: list[dict] = field(default_factory=list)

    def start(self, phase: str) -> None:
        if phase not in ("forward", "backward"):
            raise ValueError(f"phase must be 'forward' or 'backward', got {phase!r}")
        if self._phase is not None:
            raise RuntimeError(f"HaloStats.start({phase!r}) while the {self._phase} of step {self.step} is open")
        if phase == "forward":
            self.step += 1
        _sync(self.device)
        self._phase, self._open, self._carry, self._mark = phase, [], 0.0, time.perf_counter()

    def clock(self) -> float:
        _sync(self.device)
        return time.perf_counter()

    def exchanged(self, layer: int, t0: float, t1: float, t2: float, t3: float, sent: dict[int, int]) -> None:
        """One exchange of ``layer``: pack from t0 to t1, exchange to t2, unpack to t3; ``sent[q]`` bytes."""
        if self._phase is None:  # an exchange outside start/stop (e.g. a bare model call): bytes only
            for q, b in sent.items():
                self.bytes_to[q] = self.bytes_to.get(q, 0) + b
            return
        compute = t0 - self._mark
        row = {
            "rank": self.rank,
            "step": self.step,
            "phase": self._phase,
            "layer": int(layer),
            "t_pack": t1 - t0,
            "t_exchange": t2 - t1,
            "t_unpack": t3 - t2,
            "t_compute": 0.0,
            "bytes_sent": int(sum(sent.values())),
            "n_neighbours": self.n_neighbours,
        }
        if self._phase == "forward":  # compute before exchange t belongs to layer t - 1 (embeddings: row 0)
            if self._open:
                self._open[-1]["t_compute"] += compute
            else:
                self._carry += compute
        else:  # backward of layer t runs before the backward exchange of layer t
            row["t_compute"] += compute
        self._open.append(row)
        for q, b in sent.items():
            self.bytes_to[q] = self.bytes_to.get(q, 0) + b
        self._mark = t3

    def stop(self) -> None:
        """Close the phase: the remaining compute goes to the last row (forward) or row 0 (backward)."""
        if self._phase is None:
            raise RuntimeError("HaloStats.stop() without start()")
        rest = self.clock() - self._mark
        if self._open:
            rows = sorted(self._open, key=lambda r: r["layer"])
            rows[0]["t_compute"] += self._carry
            (rows[-1] if self._phase == "forward" else rows[0])["t_compute"] += rest
            self.rows.extend(rows)
        self._phase, self._open = None, []

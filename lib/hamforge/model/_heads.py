"""Output heads: per-L linear maps from embeddings to the columns of an e3nn Irreps string."""

from __future__ import annotations

import math

import torch
from torch import nn


class IrrepsLayout:
    """Column bookkeeping of an output described by ``terms = ((mul, L), ...)`` (parsed Irreps string).

    Heads compute a *grouped* layout: L ascending, inside an L all its copies ("slots") from every term in
    string order, each copy the 2L+1 components M = -L..L. ``perm`` (D,) maps it to the string's (e3nn)
    layout: ``out = grouped[:, perm]``.

    Attributes: ``ls`` (distinct L, ascending), ``mul[L]`` (copies of L), ``dim`` (D), ``perm``.
    """

    def __init__(self, terms):
        self.terms = tuple((int(mul), int(l)) for mul, l in terms)
        self.ls = sorted({l for _, l in self.terms})
        self.mul = {L: sum(m for m, l in self.terms if l == L) for L in self.ls}
        start, off = {}, 0
        for L in self.ls:
            start[L] = off
            off += self.mul[L] * (2 * L + 1)
        self.dim = off
        seen = {L: 0 for L in self.ls}
        perm = []
        for mul, L in self.terms:
            for _ in range(mul):
                base = start[L] + seen[L] * (2 * L + 1)
                perm.extend(range(base, base + 2 * L + 1))
                seen[L] += 1
        self.perm = torch.tensor(perm, dtype=torch.int64)

    @property
    def n_slots(self) -> int:
        """Number of (L, copy) slots, grouped order."""
        return sum(self.mul.values())


class IrrepsHead(nn.Module):
    """Per-L linear map (no mixing of L, no mixing of M): x (B, K, C) -> (B, D) in Irreps-string layout.

    ``out_L[b, u, M] = sum_c x[b, (L, M), c] W_L[c, u]`` (+ bias_u for L = 0). Equivariant: each output
    copy of L transforms with D^L like the embedding's L block.
    """

    def __init__(self, l_max: int, channels: int, terms):
        super().__init__()
        self.layout = IrrepsLayout(terms)
        if self.layout.ls[-1] > l_max:
            raise ValueError(f"output contains L={self.layout.ls[-1]} > l_max={l_max}")
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.zeros(channels, self.layout.mul[L], dtype=torch.float32)) for L in self.layout.ls]
        )
        self.bias = nn.Parameter(torch.zeros(self.layout.mul[0], dtype=torch.float32)) if 0 in self.layout.mul else None
        self.register_buffer("_perm", self.layout.perm.clone(), persistent=False)

    def _reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            for w in self.weights:
                w.copy_(torch.randn(w.shape, generator=gen, dtype=torch.float32) / math.sqrt(w.shape[0]))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        parts = []
        for L, w in zip(self.layout.ls, self.weights):
            y = torch.einsum("bmc,cu->bum", x[:, L * L : (L + 1) ** 2], w)  # (B, mul_L, 2L+1)
            if L == 0 and self.bias is not None:
                y = y + self.bias[None, :, None]
            parts.append(y.reshape(b, self.layout.mul[L] * (2 * L + 1)))
        return torch.cat(parts, dim=1).index_select(1, self._perm)

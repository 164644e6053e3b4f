"""Distance features: Gaussian expansion, smooth cutoff envelopes, radial MLP."""

from __future__ import annotations

import math

import torch
from torch import nn

from hamforge.model._nn import Linear


class GaussianBasis(nn.Module):
    """``exp(-(r - mu_k)^2 / (2 sigma^2))`` with ``n`` centres ``mu_k`` evenly on ``[0, r_cut]`` and
    ``sigma`` = their spacing. No parameters. ``r`` (E,) -> (E, n)."""

    def __init__(self, r_cut: float, n: int):
        super().__init__()
        self.r_cut, self.n = float(r_cut), int(n)
        self.sigma = self.r_cut / (self.n - 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        mu = torch.linspace(0.0, self.r_cut, self.n, dtype=r.dtype, device=r.device)
        return torch.exp(-0.5 * ((r[:, None] - mu) / self.sigma) ** 2)


class Envelope(nn.Module):
    """Smooth cutoff ``u(r)``: 1 at r = 0, 0 for r >= r_cut.

    ``polynomial`` (DimeNet): with d = r / r_cut,
    ``u = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1) - p(p+1)/2 d^(p+2)``: value, first and second derivative
    vanish at d = 1 (u ~ (1-d)^3 there). ``cosine``: ``(1 + cos(pi d)) / 2``, value and first derivative
    vanish (u ~ (1-d)^2). ``r`` (E,) -> (E,).
    """

    def __init__(self, r_cut: float, kind: str = "polynomial", p: int = 6):
        super().__init__()
        if kind not in ("polynomial", "cosine"):
            raise ValueError(f"envelope must be 'polynomial' or 'cosine', got {kind!r}")
        self.r_cut, self.kind, self.p = float(r_cut), kind, int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        d = (r / self.r_cut).clamp(max=1.0)
        if self.kind == "cosine":
            u = 0.5 * (1.0 + torch.cos(math.pi * d))
        else:
            p = self.p
            dp = d**p
            u = 1.0 - 0.5 * (p + 1) * (p + 2) * dp + p * (p + 2) * dp * d - 0.5 * p * (p + 1) * dp * d * d
        return torch.where(r < self.r_cut, u, torch.zeros_like(u))


class RadialMLP(nn.Module):
    """Two-layer MLP of the distance features: (E, n_in) -> SiLU hidden -> (E, n_out)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.lin1 = Linear(n_in, n_hidden, bias=True)
        self.lin2 = Linear(n_hidden, n_out, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(torch.nn.functional.silu(self.lin1(x)))

"""Small equivariant building blocks on features ``x (B, K, C)``, ``K = (l_max+1)^2`` components (l, m) at
position ``l^2 + l + m`` (``m = -l..l``, project order), ``C`` channels.

Every module with parameters has ``_reset(generator)``: the model initialises all of them from one seeded
``torch.Generator`` (no global RNG state). Parameters are created in float32; ``model.to(dtype)`` converts.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def l_of_components(l_max: int) -> torch.Tensor:
    """(K,) int64: the degree l of each component position."""
    return torch.cat([torch.full((2 * l + 1,), l, dtype=torch.int64) for l in range(l_max + 1)])


def _normal_(p: torch.Tensor, std: float, gen: torch.Generator) -> None:
    with torch.no_grad():
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)


class Linear(nn.Module):
    """``y = x @ W + b`` on the last axis; W (n_in, n_out) ~ N(0, 1/n_in), b = 0."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(n_out, dtype=torch.float32)) if bias else None

    def _reset(self, gen: torch.Generator) -> None:
        _normal_(self.weight, 1.0 / math.sqrt(self.weight.shape[0]), gen)
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight
        return y + self.bias if self.bias is not None else y


class PerLLinear(nn.Module):
    """Equivariant linear map: channels mixed with one matrix per degree l (no l or m mixing).

    x (B, K', c_in) -> (B, K', c_out) with the components of l = l_min..l_max (K' = (l_max+1)^2 - l_min^2);
    optional bias on the l = 0 (invariant) component only (requires l_min = 0).
    """

    def __init__(self, l_max: int, c_in: int, c_out: int, bias: bool = True, l_min: int = 0):
        super().__init__()
        if not 0 <= l_min <= l_max:
            raise ValueError(f"l_min must be in 0..l_max={l_max}, got {l_min}")
        self.l_min, self.l_max = l_min, l_max
        self.weight = nn.Parameter(torch.zeros(l_max + 1 - l_min, c_in, c_out, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(c_out, dtype=torch.float32)) if bias and l_min == 0 else None

    def _reset(self, gen: torch.Generator) -> None:
        _normal_(self.weight, 1.0 / math.sqrt(self.weight.shape[1]), gen)
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.l_min**2
        parts = [
            x[:, l * l - o : (l + 1) ** 2 - o] @ self.weight[l - self.l_min] for l in range(self.l_min, self.l_max + 1)
        ]
        if self.bias is not None:
            parts[0] = parts[0] + self.bias
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


class EquivariantLayerNorm(nn.Module):
    """Layer norm that commutes with rotations; x (B, K, C) -> (B, K, C).

    The scalars (l = 0) are centred over channels. Mean squares per degree, ``ms_l = mean over (m, channels)
    of x_l^2``, then each l block is divided by

    * ``mode="joint"`` (default): ``sqrt(mean_l ms_l + eps)``, one degree-balanced RMS for the whole feature
      (EquiformerV2's RMS norm over all degrees). Small l > 0 content stays small: a block that vanishes
      (an edge leaving the cutoff, a symmetric site) changes the output smoothly, with slope O(1).
    * ``mode="per_l"``: ``sqrt(ms_l + eps)``, every block normalised by its own RMS. Blocks with
      ``ms_l << eps`` are amplified by up to ``1/sqrt(eps)``: continuous but very steep when a block passes
      through zero (``docs/model.md``); kept for comparison.

    Then a learnable per-(l, channel) ``scale`` and, for l = 0 only, a ``bias`` (a bias or centring on
    l > 0 would break equivariance). ``sqrt(. + eps)`` keeps it smooth; all-zero blocks stay zero.
    """

    MODES = ("joint", "per_l")

    def __init__(self, l_max: int, channels: int, eps: float = 1e-6, mode: str = "joint"):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"layer norm mode must be one of {self.MODES}, got {mode!r}")
        self.l_max, self.eps, self.joint = l_max, float(eps), mode == "joint"
        self.scale = nn.Parameter(torch.ones(l_max + 1, channels, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(channels, dtype=torch.float32))
        lc = l_of_components(l_max)
        avg = torch.zeros(lc.numel(), l_max + 1)
        avg[torch.arange(lc.numel()), lc] = 1.0 / (2 * lc + 1).to(torch.float32)
        self.register_buffer("_lc", lc, persistent=False)
        self.register_buffer("_avg", avg, persistent=False)  # (K, l_max+1): mean over m of each l

    def _reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            self.scale.fill_(1.0)
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self._avg[:, :1]  # (K, 1): 1 at the l = 0 component, 0 elsewhere
        x = x - x[:, :1].mean(dim=-1, keepdim=True) * first  # centre the scalars only
        ms = x.pow(2).mean(dim=-1) @ self._avg  # (B, l_max+1): mean square per l over (m, channels)
        if self.joint:
            inv = torch.rsqrt(ms.mean(dim=1) + self.eps)[:, None, None]  # (B, 1, 1)
            factor = inv * self.scale[self._lc]
        else:
            factor = torch.rsqrt(ms + self.eps).index_select(1, self._lc)[:, :, None] * self.scale[self._lc]
        return torch.addcmul(first * self.bias, x, factor)


class Gate(nn.Module):
    """Gate nonlinearity: l = 0 through SiLU; each (l > 0, channel) block times sigmoid of one extra scalar.

    forward(y (B, K, C), gates (B, l_max * C)) -> (B, K, C); gates ordered (l = 1..l_max, channel).
    """

    def __init__(self, l_max: int, channels: int):
        super().__init__()
        self.l_max, self.channels = l_max, channels
        self.register_buffer("_lc", l_of_components(l_max), persistent=False)

    @property
    def n_gates(self) -> int:
        return self.l_max * self.channels

    def forward(self, y: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        # silu(y0) = y0 sigmoid(y0): one multiplier per (l, channel), expanded over the components
        g = torch.cat([y[:, :1], gates.view(-1, self.l_max, self.channels)], dim=1)
        return y * torch.sigmoid(g).index_select(1, self._lc)


class GatedFeedForward(nn.Module):
    """Equivariant FFN: per-l linear C -> F, gate (scalars SiLU, l > 0 gated by sigmoid of scalars), per-l linear
    F -> C. x (B, K, C) -> (B, K, C).

    The hidden scalars and gates are a linear map of the l = 0 input and, with ``invariants`` (default), of the
    rotation invariants of the l > 0 input, ``mean_m x_{l,m,c}^2`` per (l, channel). Without them the scalar path
    of a one-layer node is a sum of two-body terms; the norms of its aggregated l > 0 messages carry the angles
    between neighbours (three-body and beyond)."""

    def __init__(self, l_max: int, channels: int, hidden: int, invariants: bool = True):
        super().__init__()
        self.l_max = l_max
        self.invariants = invariants and l_max > 0
        n_in = channels * (1 + l_max) if self.invariants else channels
        self.scalars = Linear(n_in, hidden + l_max * hidden)  # hidden scalars + gates
        self.up = PerLLinear(l_max, channels, hidden, bias=False, l_min=1) if l_max > 0 else None
        self.gate = Gate(l_max, hidden)
        self.down = PerLLinear(l_max, hidden, channels, bias=True)
        self.hidden = hidden
        if self.invariants:
            lc = l_of_components(l_max)[1:]
            avg = torch.zeros(lc.numel(), l_max)
            avg[torch.arange(lc.numel()), lc - 1] = 1.0 / (2 * lc + 1).to(torch.float32)
            self.register_buffer("_avg", avg, persistent=False)  # (K-1, l_max): mean over m of each l > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s_in = x[:, 0]
        if self.invariants:
            ms = torch.einsum("bkc,kl->blc", x[:, 1:].pow(2), self._avg.to(x.dtype))  # (B, l_max, C)
            s_in = torch.cat([s_in, ms.flatten(1)], dim=1)
        s = self.scalars(s_in)  # (B, F + l_max F)
        h0 = s[:, None, : self.hidden]
        h = torch.cat([h0, self.up(x[:, 1:])], dim=1) if self.up is not None else h0
        return self.down(self.gate(h, s[:, self.hidden :]))


def scatter_softmax_weighted(logits: torch.Tensor, weight: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """``a_e = w_e exp(z_e) / sum_{e': index[e'] = index[e]} w_e' exp(z_e')`` per group and head.

    logits (E, H), weight (E,) >= 0 (the cutoff envelope: an edge entering at r_cut with w = 0 changes
    nothing), index (E,) int64 group (receiving node) of each edge, n number of groups. Stabilised by the
    per-group max (detached: the result does not depend on it). Groups whose weights are all 0 give 0.
    """
    h = logits.shape[1]
    idx = index[:, None].expand(-1, h)
    zmax = torch.full((n, h), -torch.inf, dtype=logits.dtype, device=logits.device)
    zmax = zmax.scatter_reduce(0, idx, logits.detach(), reduce="amax", include_self=True)
    num = weight[:, None] * torch.exp(logits - zmax.index_select(0, index))
    den = torch.zeros((n, h), dtype=logits.dtype, device=logits.device).index_add_(0, index, num)
    den = den.index_select(0, index)
    return num / torch.where(den > 0, den, torch.ones_like(den))

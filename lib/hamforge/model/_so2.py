"""SO(2) convolution in edge frames (eSCN, Passaro & Zitnick 2023), deterministic frames (no random roll).

Features ``x (E, K, C)``, ``K = (l_max+1)^2``, component (l, m) at ``l^2 + l + m`` (project order). For
each edge, ``D(R_e)`` (block diagonal over l, ``so3.wigner_D``; ``R_e`` = ``so3.edge_rotation``, taking the
edge direction to +z) rotates x into the edge frame. There a rotation about z by phi leaves every m = 0
component invariant and turns each pair ``(x_{l,+m}, x_{l,-m})`` by the angle ``m phi``. So the most
general linear map commuting with those rotations is, per order m, one matrix mixing all degrees l >= m
and channels:

    m = 0:  y_0 = x_0 W_0                                     (x_0 = x[:, (l, 0) for l = 0..l_max] flattened)
    m > 0:  y_+ = x_+ W_r - x_- W_i,   y_- = x_+ W_i + x_- W_r     (complex multiplication by W_r + i W_i)

Orders |m| > m_max are dropped (zero). Before the maps, an optional per-edge radial weight multiplies
each (l, channel) of order m (the same number for +m and -m, so the symmetry is kept). The result is
rotated back with ``D^T``: the whole operation is SO(3) equivariant, and it creates l > 0 output from
l = 0 input (m = 0 rows of W_0), which is how the first layer builds directional features.

m = 0 can also emit ``n_extra`` rotation-invariant scalars (in the edge frame m = 0 components of every
l are invariant), used for gates and attention logits.

Two implementations share the parameters: :class:`SO2Convolution` (index tables + one GEMM per m) and
:func:`so2_convolution_reference` (dense block-diagonal D and explicit loops over m, l_in, l_out).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from hamforge import so3


def m_major_order(l_max: int, m_max: int) -> np.ndarray:
    """(K',) positions (l^2 + l + m) of the components kept by an SO(2) convolution, m-major:
    m = 0 (l = 0..l_max), then for m = 1..m_max the +m components (l = m..l_max) and the -m ones."""
    tables = so3.m_index_tables(l_max, m_max)
    order = [tables.plus[0]]
    for m in range(1, m_max + 1):
        order += [tables.plus[m], tables.minus[m]]
    return np.concatenate(order)


@functools.lru_cache(maxsize=None)
def _dense_source(l_max: int, m_max: int) -> np.ndarray:
    """(K' K,) int64: for each entry of the m-major dense matrix ``to_m`` its position in the flat
    concatenation ``[0, D^0.ravel(), D^1.ravel(), ...]`` (0 = the zero). Read-only, cached."""
    k = (l_max + 1) ** 2
    order = m_major_order(l_max, m_max)
    src = np.zeros((order.size, k), dtype=np.int64)
    row_of = np.full(k, -1)
    row_of[order] = np.arange(order.size)
    offset = 1
    for l in range(l_max + 1):
        n = 2 * l + 1
        cols = np.arange(l * l, (l + 1) ** 2)
        for a in range(n):  # row m = a - l of D^l
            if row_of[cols[a]] >= 0:  # kept order
                src[row_of[cols[a]], cols] = offset + a * n + np.arange(n)
        offset += n * n
    src = src.ravel()
    src.setflags(write=False)
    return src


class EdgeWigner:
    """Edge-frame rotations of one graph, computed once and shared by every convolution and head.

    ``to_m`` (E, K', K): the rows of the block-diagonal ``D(R_e) = diag_l D^l(R_e)`` (``R_e @ v_hat = e_z``,
    ``so3.edge_rotation``) for the kept components in m-major order (:func:`m_major_order`), so that
    ``to_m @ x`` is x (E, K, C) in the edge frame, m-major, and ``to_m^T @ y`` rotates m-major edge-frame
    features back (dropped orders |m| > m_max count as zero). Dense: one batched GEMM each way instead of
    per-l products, gathers and concatenations (~4x the multiply-adds, far fewer memory passes).
    Row ``L`` of ``to_m`` is ``D^L(R_e)[M=0, :]`` on the columns of block L.
    """

    def __init__(self, rotations: torch.Tensor, l_max: int, m_max: int | None = None):
        self.l_max = int(l_max)
        self.m_max = self.l_max if m_max is None else int(m_max)
        self.rotations = rotations  # (E, 3, 3)
        e, k = rotations.shape[0], (self.l_max + 1) ** 2
        src = torch.tensor(_dense_source(self.l_max, self.m_max), device=rotations.device)
        blocks = [so3.wigner_D(l, rotations).reshape(e, (2 * l + 1) ** 2) for l in range(self.l_max + 1)]
        flat = torch.cat([rotations.new_zeros(e, 1)] + blocks, dim=1)  # (E, 1 + sum (2l+1)^2), D^l row-major
        self.to_m = flat.index_select(1, src).view(e, src.numel() // k, k)  # (E, K', K), one gather

    @classmethod
    def from_vectors(cls, vec: torch.Tensor, l_max: int, m_max: int | None = None) -> "EdgeWigner":
        """From edge vectors (E, 3) (nonzero; see ``so3.edge_rotation``)."""
        return cls(so3.edge_rotation(vec), l_max, m_max)

    def select(self, index: torch.Tensor) -> "EdgeWigner":
        """The rotations of the edges ``index`` (a subset of this graph's), without recomputing them."""
        out = EdgeWigner.__new__(EdgeWigner)
        out.l_max, out.m_max = self.l_max, self.m_max
        out.rotations, out.to_m = self.rotations.index_select(0, index), self.to_m.index_select(0, index)
        return out

    def wigner_row0(self, L: int) -> torch.Tensor:
        """(E, 2L+1): ``D^L(R_e)[M=0, :]``; rotating ``f e_{M=0}`` back gives ``f`` times this row."""
        return self.to_m[:, L, L * L : (L + 1) ** 2]


class SO2Convolution(nn.Module):
    """Edge-frame SO(2) linear layer: x (E, K, c_in) -> (y (E, K, c_out), extra (E, n_extra)).

    Parameters: ``w0`` (n_0 c_in, n_0 c_out + n_extra); ``wr[m-1]``, ``wi[m-1]`` (n_m c_in, n_m c_out) for
    m = 1..m_max, with n_m = l_max - m + 1 and rows/columns ordered (l ascending, channel). ``radial``
    (E, radial_size) multiplies the inputs of order m at (l, channel), rows ordered (m, l, channel).

    ``scalar_input=True``: the input is only l = 0, x (E, 1, c_in) (the first layer's node messages, built
    from species and distance features). In the edge frame it is then pure m = 0 and needs no rotation;
    only the l_in = 0 rows of ``w0`` exist (c_in, n_0 c_out + n_extra), no m > 0 weights (they would
    multiply zeros), and the output (still all l) comes from rotating the m = 0 result back.
    """

    def __init__(self, l_max: int, m_max: int, c_in: int, c_out: int, n_extra: int = 0, scalar_input: bool = False):
        super().__init__()
        tables = so3.m_index_tables(l_max, m_max)
        self.l_max, self.m_max, self.c_in, self.c_out, self.n_extra = l_max, m_max, c_in, c_out, n_extra
        self.scalar_input = bool(scalar_input)
        self.n_l = [len(tables.l[m]) for m in range(m_max + 1)]
        n0, n_in0 = self.n_l[0], 1 if scalar_input else self.n_l[0]
        self.w0 = nn.Parameter(torch.zeros(n_in0 * c_in, n0 * c_out + n_extra, dtype=torch.float32))
        n_in = [] if scalar_input else self.n_l[1:]
        self.wr = nn.ParameterList([nn.Parameter(torch.zeros(n * c_in, n * c_out, dtype=torch.float32)) for n in n_in])
        self.wi = nn.ParameterList([nn.Parameter(torch.zeros(n * c_in, n * c_out, dtype=torch.float32)) for n in n_in])

    @property
    def radial_size(self) -> int:
        """Length of the per-edge radial weight vector: ``sum_m n_m * c_in`` (``c_in`` for scalar input)."""
        return (1 if self.scalar_input else sum(self.n_l)) * self.c_in

    def _reset(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            std0 = 1.0 / math.sqrt(self.w0.shape[0])
            self.w0.copy_(torch.randn(self.w0.shape, generator=gen, dtype=torch.float32) * std0)
            for wr, wi in zip(self.wr, self.wi):
                std = 1.0 / math.sqrt(2 * wr.shape[0])
                wr.copy_(torch.randn(wr.shape, generator=gen, dtype=torch.float32) * std)
                wi.copy_(torch.randn(wi.shape, generator=gen, dtype=torch.float32) * std)

    def forward(self, x: torch.Tensor, wigner: EdgeWigner, radial: torch.Tensor | None = None):
        """x (E, K, c_in), wigner of the same E edges (same l_max, m_max), radial (E, radial_size) or None.

        Returns y (E, K, c_out) in the global frame and the invariant scalars extra (E, n_extra).
        """
        if (wigner.l_max, wigner.m_max) != (self.l_max, self.m_max):
            raise ValueError(
                f"wigner has (l_max, m_max) = {(wigner.l_max, wigner.m_max)}, the convolution "
                f"{(self.l_max, self.m_max)}"
            )
        e, ci, co = x.shape[0], self.c_in, self.c_out
        n0 = self.n_l[0]
        if self.scalar_input:  # l = 0 is rotation invariant: no rotation in, m = 0 out only
            x0 = x[:, 0] if radial is None else x[:, 0] * radial
            y0 = x0 @ self.w0
            y = wigner.to_m[:, :n0].transpose(1, 2) @ y0[:, : n0 * co].reshape(e, n0, co)
            return y, y0[:, n0 * co :]
        xm = wigner.to_m @ x  # (E, K', c_in): edge frame, m-major
        x0 = xm[:, :n0].reshape(e, n0 * ci)
        if radial is not None:
            x0 = x0 * radial[:, : n0 * ci]
        y0 = x0 @ self.w0
        extra = y0[:, n0 * co :]
        outs, start, rstart = [y0[:, : n0 * co].reshape(e, n0, co)], n0, n0 * ci
        for m in range(1, self.m_max + 1):
            n = self.n_l[m]
            xpm = xm[:, start : start + 2 * n].reshape(e, 2, n * ci)  # [x_+ ; x_-]
            if radial is not None:  # the same weight for +m and -m
                xpm = xpm * radial[:, None, rstart : rstart + n * ci]
            wr, wi = self.wr[m - 1], self.wi[m - 1]
            w = torch.cat([torch.cat([wr, wi], dim=1), torch.cat([-wi, wr], dim=1)], dim=0)
            ym = xpm.reshape(e, 2 * n * ci) @ w  # [y_+ | y_-] = [x_+ Wr - x_- Wi | x_+ Wi + x_- Wr]
            outs.append(ym.view(e, 2 * n, co))
            start, rstart = start + 2 * n, rstart + n * ci
        ym = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]  # (E, K', c_out), edge frame
        return wigner.to_m.transpose(1, 2) @ ym, extra


def so2_convolution_reference(
    conv: SO2Convolution, x: torch.Tensor, rotations: torch.Tensor, radial: torch.Tensor | None = None
):
    """Straightforward version of ``conv(x, EdgeWigner(rotations, l_max, m_max), radial)`` for testing.

    Dense block-diagonal D (E, K, K) assembled l by l, explicit loops over m, l_out, l_in with the weight
    blocks sliced out of the parameters. Slow; same return values as :meth:`SO2Convolution.forward`.
    """
    l_max, m_max, ci, co = conv.l_max, conv.m_max, conv.c_in, conv.c_out
    e, k = x.shape[0], (l_max + 1) ** 2
    if conv.scalar_input:  # x (E, 1, c_in): zero-pad to all l, only the l_in = 0 weights exist
        x = torch.cat([x, x.new_zeros(e, k - 1, ci)], dim=1)
        l_in_max, m_in_max = 0, 0
    else:
        l_in_max, m_in_max = l_max, m_max
    dense = x.new_zeros(e, k, k)
    for l in range(l_max + 1):
        dense[:, l * l : (l + 1) ** 2, l * l : (l + 1) ** 2] = so3.wigner_D(l, rotations)
    xr = dense @ x  # edge frame
    pos = lambda l, m: l * l + l + m  # noqa: E731

    # radial weights: rows (m, l, channel)
    rad = {}
    row = 0
    for m in range(m_in_max + 1):
        for l in range(m, l_in_max + 1):
            rad[m, l] = radial[:, row * ci : (row + 1) * ci] if radial is not None else 1.0
            row += 1
    out = x.new_zeros(e, k, co)
    extra = x.new_zeros(e, conv.n_extra)
    n0 = conv.n_l[0]
    for a, lin in enumerate(range(0, l_in_max + 1)):  # m = 0
        xin = xr[:, pos(lin, 0)] * rad[0, lin]
        for b, lout in enumerate(range(0, l_max + 1)):
            out[:, pos(lout, 0)] += xin @ conv.w0[a * ci : (a + 1) * ci, b * co : (b + 1) * co]
        extra += xin @ conv.w0[a * ci : (a + 1) * ci, n0 * co :]
    for m in range(1, m_in_max + 1):
        wr, wi = conv.wr[m - 1], conv.wi[m - 1]
        for a, lin in enumerate(range(m, l_max + 1)):
            xp = xr[:, pos(lin, m)] * rad[m, lin]
            xn = xr[:, pos(lin, -m)] * rad[m, lin]
            for b, lout in enumerate(range(m, l_max + 1)):
                br = wr[a * ci : (a + 1) * ci, b * co : (b + 1) * co]
                bi = wi[a * ci : (a + 1) * ci, b * co : (b + 1) * co]
                out[:, pos(lout, m)] += xp @ br - xn @ bi
                out[:, pos(lout, -m)] += xp @ bi + xn @ br
    return dense.transpose(1, 2) @ out, extra

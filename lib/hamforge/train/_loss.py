"""Loss (masked MSE, optionally plus masked L1, on the padded coupled targets, labelled items only) and metrics (MAE
in the uncoupled basis, unpadded, in meV: nodes, edges (folded pairs), total and per element pair).

The loss (:class:`LossSpec`) is ``node_weight * MSE(nodes) / sn^2 + MSE(pairs) / sp^2`` plus ``l1_weight`` times
``node_weight * MAE(nodes) / sn + MAE(pairs) / sp``, each mean over its own masked entries of the whole batch; ``sn``,
``sp`` are the RMS of the training residual (target minus baseline) of each block kind, so every term starts near 1
and the L1 and squared terms weigh alike. One MSE pooled over both (the papers' form) lets the pairs, ~99% of the
entries at a 9 Angstrom cutoff, decide alone: on-site blocks then stay near their mean. The L1 term weighs every
entry's error alike, as the MAE users read does; the squared term keeps the large elements (what spectra feel) first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hamforge.graph import coupled_to_blocks
from hamforge.io.units import HARTREE_TO_MEV
from hamforge.model import EDGE_OUT, NODE_OUT
from hamforge.train._fold import fold

__all__ = ["ErrorSums", "LossSpec", "MetricsAccumulator", "forward_fold", "squared_error"]


def forward_fold(model, s):
    """Model outputs on sample ``s`` folded onto its labelled nodes and pairs: ``(nodes, pairs)``."""
    out = model(s.graph)
    return fold(out[NODE_OUT], out[EDGE_OUT], s)


@dataclass(frozen=True)
class LossSpec:
    """The loss terms and their weights: ``node_weight`` (on-site vs pairs), ``l1_weight`` (L1 vs squared) and the
    normalisers ``node_norm``, ``pair_norm`` (Hartree; 1 = raw errors)."""

    node_weight: float = 1.0
    l1_weight: float = 0.0
    node_norm: float = 1.0
    pair_norm: float = 1.0


def _spec(spec) -> LossSpec:
    return spec if isinstance(spec, LossSpec) else LossSpec(node_weight=float(spec))


@dataclass(frozen=True)
class ErrorSums:
    """Sums of squared and absolute errors and entry counts of nodes and pairs (tensors or floats); added with
    ``+``."""

    node_sq: Any
    pair_sq: Any
    n_node: int
    n_pair: int
    node_abs: Any = 0.0
    pair_abs: Any = 0.0

    def __add__(self, other: "ErrorSums") -> "ErrorSums":
        return ErrorSums(
            self.node_sq + other.node_sq,
            self.pair_sq + other.pair_sq,
            self.n_node + other.n_node,
            self.n_pair + other.n_pair,
            self.node_abs + other.node_abs,
            self.pair_abs + other.pair_abs,
        )

    def detached(self) -> "ErrorSums":
        """Plain floats (for logging and all-gathering)."""
        value = lambda x: float(x.detach()) if isinstance(x, torch.Tensor) else float(x)  # noqa: E731
        return ErrorSums(
            value(self.node_sq),
            value(self.pair_sq),
            self.n_node,
            self.n_pair,
            value(self.node_abs),
            value(self.pair_abs),
        )

    def weights(self, spec) -> tuple[float, float, float, float]:
        """``(w_node_sq, w_pair_sq, w_node_abs, w_pair_abs)``: ``loss = sum w * sums`` for these counts. ``spec``
        is a :class:`LossSpec` or a node weight (raw squared errors only)."""
        sp = _spec(spec)
        wn = sp.node_weight / self.n_node if self.n_node else 0.0
        wp = 1.0 / self.n_pair if self.n_pair else 0.0
        return (
            wn / sp.node_norm**2,
            wp / sp.pair_norm**2,
            sp.l1_weight * wn / sp.node_norm,
            sp.l1_weight * wp / sp.pair_norm,
        )

    def loss(self, spec, weights: tuple | None = None):
        """The loss of these sums (a term without entries is left out); with ``weights`` (of the whole batch,
        :meth:`weights`) this sample's share of the batch loss."""
        w = self.weights(spec) if weights is None else weights
        out = w[0] * self.node_sq + w[1] * self.pair_sq
        if w[2] or w[3]:
            out = out + w[2] * self.node_abs + w[3] * self.pair_abs
        return out


def squared_error(nodes: torch.Tensor, pairs: torch.Tensor, s) -> ErrorSums:
    """Sums of squared and absolute errors over the masked columns of ``nodes`` and ``pairs`` and the entry
    counts."""
    dn = torch.where(s.node_mask, nodes - s.node_target, 0.0)
    dp = torch.where(s.pair_mask, pairs - s.pair_target, 0.0)
    return ErrorSums(
        (dn * dn).sum(),
        (dp * dp).sum(),
        int(s.node_mask.sum()),
        int(s.pair_mask.sum()),
        dn.abs().sum(),
        dp.abs().sum(),
    )


class MetricsAccumulator:
    """Sums of |error| of the uncoupled, unpadded blocks over samples; :meth:`result` gives MAEs in meV."""

    def __init__(self):
        self.sums = defaultdict(float)
        self.counts = defaultdict(int)

    def add(self, t, s, nodes: torch.Tensor, pairs: torch.Tensor) -> None:
        """Add the folded predictions ``nodes``/``pairs`` of sample ``s`` of targets ``t``."""
        ak = t.atom_kind
        atoms = s.node_atoms.cpu().numpy()
        pid = s.pair_ids.cpu().numpy()
        pi, pj = t.pair_index[0, pid], t.pair_index[1, pid]
        for what, pred, target, ka, kb, layout in (
            ("node", nodes, t.node_targets[atoms], ak[atoms], ak[atoms], t.node_layout),
            ("edge", pairs, t.pair_targets[pid], ak[pi], ak[pj], t.pair_layout),
        ):
            if len(ka) == 0:
                continue
            p = coupled_to_blocks(pred.detach().cpu().double().numpy(), ka, kb, layout, t.basis)
            r = coupled_to_blocks(target, ka, kb, layout, t.basis)
            err = np.abs(p.data - r.data)
            sizes = p.shape[:, 0] * p.shape[:, 1]
            block_err = np.add.reduceat(err, p.offsets[:-1]) if err.size else np.zeros(0)
            block_err = np.where(sizes > 0, block_err, 0.0)
            self.sums[what] += float(err.sum())
            self.counts[what] += int(err.size)
            names = np.asarray(t.kinds, dtype=object)
            label = names[ka] + "-" + names[kb]
            for lab in np.unique(label):
                sel = label == lab
                self.sums[f"{what}:{lab}"] += float(block_err[sel].sum())
                self.counts[f"{what}:{lab}"] += int(sizes[sel].sum())

    def result(self) -> dict[str, float]:
        """``mae_node_meV``, ``mae_edge_meV``, ``mae_total_meV`` and ``mae_<node|edge>_<A-B>_meV``."""
        mae = lambda k: self.sums[k] / self.counts[k] * HARTREE_TO_MEV if self.counts[k] else float("nan")  # noqa: E731
        out = {"mae_node_meV": mae("node"), "mae_edge_meV": mae("edge")}
        total = self.counts["node"] + self.counts["edge"]
        out["mae_total_meV"] = (
            (self.sums["node"] + self.sums["edge"]) / total * HARTREE_TO_MEV if total else float("nan")
        )
        for k in sorted(self.counts):
            if ":" in k:
                what, lab = k.split(":", 1)
                out[f"mae_{what}_{lab}_meV"] = mae(k)
        return out

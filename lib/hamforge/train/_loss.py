"""Loss (masked MSE on the padded coupled targets, labelled items only) and metrics (MAE in the uncoupled
basis, unpadded, in meV: nodes, edges (folded pairs), total and per element pair)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from hamforge.graph import coupled_to_blocks
from hamforge.io.units import HARTREE_TO_MEV
from hamforge.model import EDGE_OUT, NODE_OUT
from hamforge.train._fold import fold

__all__ = ["MetricsAccumulator", "forward_fold", "squared_error"]


def forward_fold(model, s):
    """Model outputs on sample ``s`` folded onto its labelled nodes and pairs: ``(nodes, pairs)``."""
    out = model(s.graph)
    return fold(out[NODE_OUT], out[EDGE_OUT], s)


def squared_error(nodes: torch.Tensor, pairs: torch.Tensor, s) -> tuple[torch.Tensor, int]:
    """``(sum of squared errors over the masked columns of nodes and pairs, number of those entries)``."""
    dn = torch.where(s.node_mask, nodes - s.node_target, 0.0)
    dp = torch.where(s.pair_mask, pairs - s.pair_target, 0.0)
    return (dn * dn).sum() + (dp * dp).sum(), int(s.node_mask.sum()) + int(s.pair_mask.sum())


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

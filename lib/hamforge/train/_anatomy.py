"""Error anatomy of a trained model on one structure (``hamforge evaluate``): the model beside its baselines, by pair
distance and by coupled slot, the potential-alignment freedom of DFT and the mean signed on-site error.

* **By distance**: MAE of the uncoupled pair blocks in bins of the pair's shortest image distance (Angstrom).
* **By slot**: MAE of the coupled components per (kind pair, shell a, shell b, L) of the layouts (meV).
* **Shift-aligned**: a DFT Hamiltonian is defined up to a constant potential, ``H -> H + mu S``. The ``mu`` that
  best aligns prediction and reference (least squares over every on-site and pair entry, in the coupled basis:
  ``mu = <S, H_ref - H_pred> / <S, S>``, an orthonormal change of basis per block keeps inner products) and the MAE
  after it; a model whose error is mostly such a shift has the right physics at a shifted energy zero.
* **Mean signed on-site error**: the mean of ``H_pred - H_ref`` over the diagonal of the on-site blocks (meV).
"""

from __future__ import annotations

import numpy as np
import torch

from hamforge.graph import coupled_to_blocks
from hamforge.io.units import HARTREE_TO_MEV
from hamforge.train._loss import MetricsAccumulator

__all__ = ["error_anatomy"]

_BIN = 1.0  # Angstrom


def _pair_distance(s) -> np.ndarray:
    d = torch.linalg.vector_norm(s.edge_vec.double(), dim=1).index_select(0, s.pair_edge)
    out = torch.full((s.pair_target.shape[0],), float("inf"), dtype=torch.float64)
    return out.scatter_reduce(0, s.pair_of_edge, d, reduce="amin").numpy()


def _by_distance(t, s, pairs: np.ndarray, dist: np.ndarray) -> dict[int, tuple[float, int]]:
    pid = s.pair_ids.cpu().numpy()
    ak = t.atom_kind
    ka, kb = ak[t.pair_index[0, pid]], ak[t.pair_index[1, pid]]
    p = coupled_to_blocks(pairs, ka, kb, t.pair_layout, t.basis)
    r = coupled_to_blocks(t.pair_targets[pid], ka, kb, t.pair_layout, t.basis)
    err = np.abs(p.data - r.data)
    sizes = p.shape[:, 0] * p.shape[:, 1]
    block = np.add.reduceat(err, p.offsets[:-1]) if err.size else np.zeros(0)
    block = np.where(sizes > 0, block, 0.0)
    bins = np.floor(dist / _BIN).astype(np.int64)
    out = {}
    for b in np.unique(bins):
        sel = bins == b
        out[int(b)] = (float(block[sel].sum()), int(sizes[sel].sum()))
    return out


def _by_slot(t, s, nodes: np.ndarray, pairs: np.ndarray) -> dict[str, tuple[float, int]]:
    out = {}
    for what, pred, target, kp, layout in (
        (
            "node",
            nodes,
            t.node_targets[s.node_atoms.cpu().numpy()],
            t.node_kind_pair[s.node_atoms.cpu().numpy()],
            t.node_layout,
        ),
        (
            "edge",
            pairs,
            t.pair_targets[s.pair_ids.cpu().numpy()],
            t.pair_kind_pair[s.pair_ids.cpu().numpy()],
            t.pair_layout,
        ),
    ):
        for slot in range(len(layout.slot_L)):
            sel = kp == layout.slot_kind_pair[slot]
            if not sel.any():
                continue
            a, b = layout.kind_pairs[layout.slot_kind_pair[slot]]
            la, lb, big_l = int(layout.slot_l_a[slot]), int(layout.slot_l_b[slot]), int(layout.slot_L[slot])
            name = (
                f"{what} {t.kinds[a]}-{t.kinds[b]} shells {int(layout.slot_shell_a[slot])}-"
                f"{int(layout.slot_shell_b[slot])} (l {la}-{lb}) L{big_l}"
            )
            c = slice(int(layout.slot_start[slot]), int(layout.slot_start[slot]) + 2 * big_l + 1)
            out[name] = (float(np.abs(pred[sel, c] - target[sel, c]).sum()), int(sel.sum()) * (2 * big_l + 1))
    return out


def _add(acc: dict, part: dict) -> None:
    for k, (e, n) in part.items():
        e0, n0 = acc.get(k, (0.0, 0))
        acc[k] = (e0 + e, n0 + n)


def error_anatomy(model, baseline, items, forward) -> dict:
    """The anatomy of ``model`` (and of ``baseline``, the same model with its network part zeroed) on ``items``
    (:class:`hamforge.train.Item` of one structure). ``forward(model, item) -> (nodes, pairs)`` gives the folded
    predictions the metrics compare."""
    dist_m, dist_b, slot_m, slot_b = {}, {}, {}, {}
    shifted, mu_num, mu_den = MetricsAccumulator(), 0.0, 0.0
    onsite_sum, onsite_n = 0.0, 0
    preds = []
    with torch.no_grad():
        for it in items:
            t, s = it.targets, it.sample
            (nm, pm), (nb, pb) = forward(model, it), forward(baseline, it)
            nm, pm = nm.detach().cpu().double().numpy(), pm.detach().cpu().double().numpy()
            nb, pb = nb.detach().cpu().double().numpy(), pb.detach().cpu().double().numpy()
            atoms, pid = s.node_atoms.cpu().numpy(), s.pair_ids.cpu().numpy()
            dist = _pair_distance(s)
            _add(dist_m, _by_distance(t, s, pm, dist))
            _add(dist_b, _by_distance(t, s, pb, dist))
            _add(slot_m, _by_slot(t, s, nm, pm))
            _add(slot_b, _by_slot(t, s, nb, pb))
            sn, sp = t.node_overlap[atoms], t.pair_overlap[pid]
            mu_num += float((sn * (t.node_targets[atoms] - nm)).sum() + (sp * (t.pair_targets[pid] - pm)).sum())
            mu_den += float((sn * sn).sum() + (sp * sp).sum())
            preds.append((it, nm, pm, sn, sp))
            ak = t.atom_kind[atoms]
            p = coupled_to_blocks(nm, ak, ak, t.node_layout, t.basis)
            r = coupled_to_blocks(t.node_targets[atoms], ak, ak, t.node_layout, t.basis)
            for k in range(len(atoms)):
                d = np.diagonal(p.block(k) - r.block(k))
                onsite_sum, onsite_n = onsite_sum + float(d.sum()), onsite_n + d.size
    mu = mu_num / mu_den if mu_den > 0 else 0.0
    for it, nm, pm, sn, sp in preds:
        shifted.add(it.targets, it.sample, torch.as_tensor(nm + mu * sn), torch.as_tensor(pm + mu * sp))
    aligned = shifted.result()
    mae = lambda d, k: d[k][0] / d[k][1] * HARTREE_TO_MEV if k in d and d[k][1] else None  # noqa: E731
    return {
        "potential_shift_meV": mu * HARTREE_TO_MEV,
        "shift_aligned": {k: aligned[k] for k in ("mae_node_meV", "mae_edge_meV", "mae_total_meV")},
        "mean_signed_onsite_error_meV": onsite_sum / onsite_n * HARTREE_TO_MEV if onsite_n else None,
        "by_distance": [
            {
                "r_min_A": b * _BIN,
                "r_max_A": (b + 1) * _BIN,
                "entries": dist_m[b][1],
                "model_mae_meV": mae(dist_m, b),
                "baseline_mae_meV": mae(dist_b, b),
            }
            for b in sorted(dist_m)
        ],
        "by_slot": [
            {"slot": k, "entries": slot_m[k][1], "model_mae_meV": mae(slot_m, k), "baseline_mae_meV": mae(slot_b, k)}
            for k in slot_m
        ],
    }

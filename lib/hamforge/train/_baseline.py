"""Fit of the model's physics baselines (``hamforge.model.PhysicsBaseline``) and of the scaling of what the network
adds, from the training samples, before training.

Both baselines are linear in their coefficients, so the fit is linear least squares through the same fold as the
loss (every image of a pair summed onto the Gamma-point target; self-images onto the on-site block). Per sample the
design of one output slot is small: for an edge slot of degree L, ``X[p, k, M] = sum_{e in pair p} g_k(d_e) u(d_e)
D^L(R_e)[0, M]``; the normal equations ``X^T X`` (K x K per kind pair and L) and ``X^T y`` (per slot) are summed
over samples (and ranks), so memory is one sample's and the solve takes milliseconds. Order: edges first; the
on-site fit takes what the edge baseline's self-images leave. A small ridge keeps the radial functions without data
(centres below the shortest bond) at zero.

Then the scaling: the network's output is multiplied by the RMS of the residual (target minus baseline) per
(kind, on-site slot) and per (kind pair, edge slot) (the per-species / per-bond irrep scaling of SLEM and DeePTB):
the network learns residuals of unit size in every slot, small or large.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from hamforge.model import HamiltonianModel
from hamforge.model._so2 import EdgeWigner
from hamforge.train._fold import fold
from hamforge.train._loss import LossSpec

__all__ = ["baseline_only", "fit_baseline", "fit_output_scaling", "prepare_model"]

_RIDGE = 1e-9  # relative to the mean diagonal of X^T X: far below the data's own scale, enough for empty Gaussians


def _features(model: HamiltonianModel, s):
    """Species, edge index, Wigner matrices and radial features ``g_k(d) u(d)`` of sample ``s`` (float64)."""
    vec = s.edge_vec.to(torch.float64)
    d = torch.linalg.vector_norm(vec, dim=1)
    cfg = model.config
    wigner = EdgeWigner.from_vectors(vec, cfg.l_max, cfg.m_max)
    radial = model.rbf(d) * model.envelope(d)[:, None]
    species = model.species_index(s.numbers.to(model.node_shift.device)).cpu()
    return species, s.edge_index.cpu(), wigner, radial


def _slot_columns(layout) -> list[tuple[int, int, np.ndarray]]:
    """(slot, L, Irreps-string columns of its 2L+1 components) per slot of an IrrepsLayout, grouped order."""
    inv = np.argsort(layout.perm.numpy())  # grouped column g sits at string column inv[g]
    out, slot, col = [], 0, 0
    for L in layout.ls:
        for _ in range(layout.mul[L]):
            out.append((slot, L, inv[col : col + 2 * L + 1]))
            slot, col = slot + 1, col + 2 * L + 1
    return out


class _Normal:
    """Summed normal equations ``A[key] x = b[key]`` (keys: tuples), added across samples."""

    def __init__(self):
        self.a, self.b = {}, {}

    def add(self, key, a, b_of_key: dict) -> None:
        """Add ``a`` to ``A[key]`` and each ``b`` to ``b[key_b]`` (the slots that share this design)."""
        if not b_of_key:
            return
        self.a[key] = self.a.get(key, 0.0) + a
        for kb, b in b_of_key.items():
            self.b[kb] = self.b.get(kb, 0.0) + b

    def add_groups(self, group: np.ndarray, L: int, x: np.ndarray, y: np.ndarray, mask: np.ndarray, slots) -> None:
        """Rows grouped by ``group`` (kind or kind pair): design ``x`` (rows, K, 2L+1) of degree ``L`` against the
        targets ``y`` (rows, D) of every slot of that degree the group uses (``mask``)."""
        for g in np.unique(group):
            sel = group == g
            xs = x[sel]
            bs = {
                (int(g), slot): np.einsum("pkm,pm->k", xs, y[sel][:, cols])
                for slot, ls, cols in slots
                if ls == L and mask[sel][:, cols].all()
            }
            self.add((int(g), L), np.einsum("pkm,pjm->kj", xs, xs), bs)

    def solve(self, key_a, key_b) -> np.ndarray | None:
        if key_a not in self.a or key_b not in self.b:
            return None
        a = np.asarray(self.a[key_a], np.float64)
        lam = _RIDGE * max(float(np.trace(a)) / a.shape[0], 1e-300)
        return np.linalg.solve(a + lam * np.eye(a.shape[0]), np.asarray(self.b[key_b], np.float64))


def _edge_normal(model, items) -> _Normal:
    eq = _Normal()
    layout, n_sp = model.baseline.edge_layout, model.baseline.n_species
    slots = _slot_columns(layout)
    for it in items:
        s = it.sample
        species, ei, wigner, radial = _features(model, s)
        pe, poe = s.pair_edge.cpu(), s.pair_of_edge.cpu()
        n_pairs = s.pair_target.shape[0]
        if n_pairs == 0:
            continue
        y = s.pair_target.cpu().double().numpy()
        mask = s.pair_mask.cpu().numpy()
        first = torch.zeros(n_pairs, dtype=torch.int64).scatter_(0, poe, pe)  # one edge of each pair
        ab = (species[ei[0, first]] * n_sp + species[ei[1, first]]).numpy()
        for L in layout.ls:
            row = wigner.wigner_row0(L).index_select(0, pe)  # (e_p, 2L+1)
            x = radial.index_select(0, pe)[:, :, None] * row[:, None, :]  # (e_p, K, 2L+1)
            x = torch.zeros((n_pairs,) + x.shape[1:], dtype=x.dtype).index_add_(0, poe, x).numpy()
            eq.add_groups(ab, L, x, y, mask, slots)
    return eq


def _node_normal(model, items) -> _Normal:
    eq = _Normal()
    layout, n_sp, k_rad = model.baseline.node_layout, model.baseline.n_species, model.config.n_radial
    slots = _slot_columns(layout)
    for it in items:
        s = it.sample
        species, ei, wigner, radial = _features(model, s)
        n_local, n_lab = s.numbers.shape[0], s.node_rows.shape[0]
        with torch.no_grad():  # what the fitted edge baseline's self-images put on the on-site blocks
            base_edge = _baseline64(model)(species, ei, wigner, radial)[1]
            bare = dataclasses.replace(s, symmetric=None)
            from_edges = fold(base_edge.new_zeros(n_local, layout.dim), base_edge, _cpu(bare))[0]
        y = (s.node_target.cpu().double() - from_edges).numpy()
        mask = s.node_mask.cpu().numpy()
        rows = s.node_rows.cpu()
        a_kind = species.index_select(0, rows).numpy()
        group = ei[0] * n_sp + species.index_select(0, ei[1])  # (centre, neighbour kind)
        for L in layout.ls:
            row = wigner.wigner_row0(L)
            x = radial[:, :, None] * row[:, None, :]  # (E, K, 2L+1)
            x = torch.zeros((n_local * n_sp,) + x.shape[1:], dtype=x.dtype).index_add_(0, group, x)
            x = x.view(n_local, n_sp * k_rad, 2 * L + 1).index_select(0, rows).numpy()
            if L == 0:
                x = np.concatenate([x, np.ones((n_lab, 1, 1))], axis=1)  # the constant of each kind
            eq.add_groups(a_kind, L, x, y, mask, slots)
    return eq


def _baseline64(model):
    return copy.deepcopy(model.baseline).to("cpu", torch.float64)


def _cpu(s):
    return s.to("cpu", torch.float64)


def fit_baseline(model: HamiltonianModel, items) -> None:
    """Least-squares fit of ``model.baseline`` on the training ``items`` (:class:`hamforge.train.Item`), in place.
    Halo-parallel training passes every rank the full-graph samples, so each rank fits exactly as one process."""
    bl = model.baseline
    n_sp, k_rad = bl.n_species, model.config.n_radial
    eq = _edge_normal(model, items)
    coef = np.zeros(tuple(bl.edge_coef.shape))
    for slot, L, _ in _slot_columns(bl.edge_layout):
        for ab in range(n_sp * n_sp):
            c = eq.solve((ab, L), (ab, slot))
            if c is not None:
                coef[ab // n_sp, ab % n_sp, slot] = c
    bl.edge_coef.copy_(torch.as_tensor(coef))
    eq = _node_normal(model, items)
    coef, const = np.zeros(tuple(bl.node_coef.shape)), np.zeros(tuple(bl.node_const.shape))
    for slot, L, _ in _slot_columns(bl.node_layout):
        for a in range(n_sp):
            c = eq.solve((a, L), (a, slot))
            if c is None:
                continue
            coef[a, :, slot] = c[: n_sp * k_rad].reshape(n_sp, k_rad)
            if L == 0:
                const[a, slot] = c[-1]
    bl.node_coef.copy_(torch.as_tensor(coef))
    bl.node_const.copy_(torch.as_tensor(const))


def fit_output_scaling(model: HamiltonianModel, items, per_slot: bool = True) -> dict:
    """Set ``model``'s output scaling from the residual ``target - baseline`` of the training ``items``: its RMS per
    (kind, on-site slot) and (kind pair, edge slot) (``per_slot``; one RMS per block kind otherwise). Without a
    fitted baseline the on-site residual is taken about the mean L = 0 block of each kind (``node_shift``).
    Returns the baseline's own MAE on the items (meV; nodes, edges) and the RMS values."""
    from hamforge.io.units import HARTREE_TO_MEV

    n_sp = model.baseline.n_species
    dn, de = model.config.node_dim, model.config.edge_dim
    fitted = model.baseline.is_fitted
    bl64 = _baseline64(model)
    acc = {
        k: np.zeros(shape)
        for k, shape in (
            ("nsq", (n_sp, dn)),
            ("ncnt", (n_sp, dn)),
            ("psq", (n_sp * n_sp, de)),
            ("pcnt", (n_sp * n_sp, de)),
            ("nsum", (n_sp, dn)),
            ("nabs", ()),
            ("pabs", ()),
        )
    }
    for it in items:
        s = _cpu(dataclasses.replace(it.sample, symmetric=None))
        species, ei, wigner, radial = _features(model, s)
        with torch.no_grad():
            base_node, base_edge = bl64(species, ei, wigner, radial)
            nodes, pairs = fold(base_node, base_edge, s)
        kind = species.index_select(0, s.node_rows).numpy()
        first = torch.zeros(s.pair_target.shape[0], dtype=torch.int64).scatter_(0, s.pair_of_edge, s.pair_edge)
        ab = (species[ei[0, first]] * n_sp + species[ei[1, first]]).numpy()
        rn = np.where(s.node_mask.numpy(), (s.node_target - nodes).numpy(), 0.0)
        rp = np.where(s.pair_mask.numpy(), (s.pair_target - pairs).numpy(), 0.0)
        np.add.at(acc["nsum"], kind, rn)
        np.add.at(acc["nsq"], kind, rn * rn)
        np.add.at(acc["ncnt"], kind, s.node_mask.numpy().astype(float))
        np.add.at(acc["psq"], ab, rp * rp)
        np.add.at(acc["pcnt"], ab, s.pair_mask.numpy().astype(float))
        acc["nabs"] = acc["nabs"] + np.abs(rn).sum()
        acc["pabs"] = acc["pabs"] + np.abs(rp).sum()
    l0 = np.concatenate([np.full(mul * (2 * L + 1), L == 0) for mul, L in model.config.node_terms])
    shift = np.zeros((n_sp, dn))
    if not fitted:  # the mean on-site L = 0 block of each kind; the network's part is the rest
        shift = np.where(l0[None, :], acc["nsum"] / np.maximum(acc["ncnt"], 1.0), 0.0)
        acc["nsq"] = acc["nsq"] - 2 * shift * acc["nsum"] + shift**2 * acc["ncnt"]
    node_scale = _scales(acc["nsq"], acc["ncnt"], model.config.node_terms, per_slot)
    edge_scale = _scales(acc["psq"], acc["pcnt"], model.config.edge_terms, per_slot).reshape(n_sp, n_sp, de)
    model.set_output_scaling(node_scale, edge_scale, shift)
    n_node, n_pair = acc["ncnt"].sum(), acc["pcnt"].sum()
    return {
        "node_rms": max(float(np.sqrt(acc["nsq"].sum() / max(n_node, 1))), 1e-12),
        "pair_rms": max(float(np.sqrt(acc["psq"].sum() / max(n_pair, 1))), 1e-12),
        "baseline_fitted": fitted,
        "baseline_train_mae_node_coupled_meV": float(acc["nabs"] / max(n_node, 1) * HARTREE_TO_MEV) if fitted else None,
        "baseline_train_mae_edge_coupled_meV": float(acc["pabs"] / max(n_pair, 1) * HARTREE_TO_MEV) if fitted else None,
    }


def _scales(sq: np.ndarray, cnt: np.ndarray, terms, per_slot: bool) -> np.ndarray:
    """RMS per (row, output copy), broadcast over the copy's 2L+1 columns; one RMS for all if not ``per_slot``.
    Floors: 1e-3 of the overall RMS (a slot that is ~0 by symmetry) and 1e-8 Hartree."""
    total = float(np.sqrt(sq.sum() / cnt.sum())) if cnt.sum() else 1.0
    floor = max(1e-3 * total, 1e-8)
    if not per_slot:
        return np.full(sq.shape, max(total, floor))
    out, col = np.full(sq.shape, max(total, floor)), 0
    for mul, L in terms:
        for _ in range(mul):
            w = slice(col, col + 2 * L + 1)
            c = cnt[:, w].sum(axis=1)
            rms = np.sqrt(sq[:, w].sum(axis=1) / np.maximum(c, 1.0))
            out[:, w] = np.where(c > 0, np.maximum(rms, floor), max(total, floor))[:, None]
            col += 2 * L + 1
    return out


def prepare_model(model: HamiltonianModel, items, settings) -> tuple[LossSpec, dict]:
    """Before training: fit the baselines (``settings.baseline``) and the output scaling on the training ``items``;
    returns the :class:`LossSpec` (normalisers: the residual's RMS per block kind) and what the fit reports."""
    if settings.baseline:
        fit_baseline(model, items)
    report = fit_output_scaling(model, items, per_slot=settings.scale_per_slot)
    node_rms, pair_rms = report.pop("node_rms"), report.pop("pair_rms")
    spec = LossSpec(
        node_weight=settings.node_weight,
        l1_weight=settings.l1_weight,
        node_norm=node_rms if settings.loss_norm else 1.0,
        pair_norm=pair_rms if settings.loss_norm else 1.0,
    )
    return spec, report


def baseline_only(model: HamiltonianModel) -> HamiltonianModel:
    """A copy of ``model`` whose network part is zero (output heads zeroed): its outputs are the baselines (and the
    on-site shift), for reporting what the network adds."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for head in (out.node_head, out.edge_head):
            for p in head.parameters():
                p.zero_()
    return out

"""Physics baselines inside the model (issue 19): the least-squares fit recovers a two-centre / crystal-field
Hamiltonian exactly, on full graphs and partitions; per-slot scaling; what evaluate reports (baselines beside the
model, error anatomy, potential shift); old checkpoints refused; the schedule ends with its budget."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from _systems import system
from hamforge.graph import build_targets
from hamforge.io import read_partitions, write_targets_file
from hamforge.io.units import HARTREE_TO_MEV
from hamforge.model import EDGE_OUT, NODE_OUT, HamiltonianModel, ModelConfig, read_checkpoint, save_checkpoint
from hamforge.partition import run_partition
from hamforge.stages import evaluate_model, write_partition_outputs
from hamforge.train import (
    Item,
    TrainSettings,
    baseline_only,
    error_anatomy,
    evaluate,
    fold,
    make_samples,
    prepare_model,
)
from test_train import synthetic


def _tiny(t, seed=0, **kw):
    cfg = ModelConfig.from_targets(
        t, **{**dict(l_max=2, embed_dim=4, n_heads=1, ffn_dim=8, n_layers=1, n_radial=8, radial_hidden=8), **kw}
    )
    return HamiltonianModel(cfg, seed=seed).double()


def _random_baseline(model, seed=3, scale=0.1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in (model.baseline.edge_coef, model.baseline.node_coef, model.baseline.node_const):
            b.copy_(torch.randn(b.shape, generator=g, dtype=b.dtype) * scale)
    return model


def _two_centre_targets(t, gen):
    """Targets ``t`` whose H is exactly the folded output of ``gen``'s baselines (a two-centre + crystal-field
    Hamiltonian the fit can represent)."""
    s = make_samples(t, "x", None, torch.float64)[0]
    with torch.no_grad():
        out = baseline_only(gen)(s.graph)
        nodes, pairs = fold(out[NODE_OUT], out[EDGE_OUT], s)
    pair_targets = np.zeros_like(t.pair_targets)
    pair_targets[s.pair_ids.numpy()] = np.where(s.pair_mask.numpy(), pairs.numpy(), 0.0)
    node_targets = np.where(s.node_mask.numpy(), nodes.numpy(), 0.0)
    return dataclasses.replace(t, node_targets=node_targets, pair_targets=pair_targets)


@pytest.mark.parametrize("partitioned", [False, True])
def test_fit_recovers_a_two_centre_hamiltonian(tmp_path, partitioned):
    data, *_ = synthetic(n=8, cell_len=4.5)  # kinds (s, s, s) and (p): several slots per L, self-images
    t0 = build_targets(data, 4.0)
    t = _two_centre_targets(t0, _random_baseline(_tiny(t0)))
    part = None
    if partitioned:
        res = run_partition(t.nl, data.positions, "slices", 2, 1)
        write_partition_outputs(res, t.nl, data.positions, tmp_path / "p.h5")
        part = read_partitions(tmp_path / "p.h5")
    items = [Item(t, s) for s in make_samples(t, "x", part, torch.float64)]
    model = _tiny(t, seed=1)
    _, report = prepare_model(model, items, TrainSettings())
    _, m = evaluate(baseline_only(model), [Item(t, s) for s in make_samples(t, "x", None, torch.float64)])
    # targets of O(100-1000) meV; the fit's ridge (1e-9 of the normal matrix) leaves ~1e-2 meV: 0.1 meV is 1e-4
    # of the signal, while a baseline missing any slot, kind pair or the self-images is off by 10-1000 meV
    assert m["mae_edge_meV"] < 0.1 and m["mae_node_meV"] < 0.1, m
    assert report["baseline_train_mae_edge_coupled_meV"] < 0.1
    # an unfitted model (heads zeroed) is far from it: the test can fail
    _, m0 = evaluate(baseline_only(_tiny(t, seed=1)), [Item(t, s) for s in make_samples(t, "x", None, torch.float64)])
    assert m0["mae_edge_meV"] > 10


def test_per_slot_scaling_is_constant_per_copy_and_refuses_otherwise():
    data, *_ = synthetic(n=8, cell_len=4.5)
    t = build_targets(data, 4.0)
    model = _tiny(t)
    items = [Item(t, s) for s in make_samples(t, "x", None, torch.float64)]
    spec, _ = prepare_model(model, items, TrainSettings())
    assert spec.node_norm > 0 and spec.pair_norm > 0
    es = model.edge_scale
    assert torch.isfinite(es).all() and (es > 0).all()
    assert len(torch.unique(es)) > 1  # per slot, not one number
    bad = model.node_scale.clone()
    bad[0, -1] *= 2  # one component of the last (L > 0) copy differs from its siblings
    with pytest.raises(ValueError, match="same for the 2L\\+1 columns"):
        model.set_output_scaling(bad, 1.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        model.set_output_scaling(0.0, 1.0)


def test_error_anatomy_finds_a_potential_shift_exactly():
    data, *_ = synthetic(n=8, cell_len=4.5)
    t = build_targets(data, 4.0)
    # an overlap that is not the identity (the synthetic one is): the shift must be found through S
    t = dataclasses.replace(t, node_overlap=t.node_targets * 0.5 + 0.01, pair_overlap=t.pair_targets * 0.3)
    items = [Item(t, s) for s in make_samples(t, "x", None, torch.float64)]
    mu = 0.0123  # Hartree

    def shifted(_model, it):  # the exact H minus mu S: a model right up to the potential alignment
        s = it.sample
        a = torch.as_tensor(t.node_overlap[s.node_atoms.numpy()])
        b = torch.as_tensor(t.pair_overlap[s.pair_ids.numpy()])
        return s.node_target - mu * a, s.pair_target - mu * b

    res = error_anatomy(None, None, items, shifted)
    assert res["potential_shift_meV"] == pytest.approx(mu * HARTREE_TO_MEV, rel=1e-9)
    assert res["shift_aligned"]["mae_total_meV"] < 1e-9  # float64 sums of O(1) numbers
    assert sum(r["entries"] for r in res["by_distance"]) > 0
    assert all(r["model_mae_meV"] > 0 for r in res["by_distance"])  # unaligned, every distance is off


def test_evaluate_reports_baselines_and_anatomy(tmp_path):
    data, *_ = synthetic(n=8, cell_len=4.5)
    t = build_targets(data, 4.0)
    write_targets_file(tmp_path / "t.h5", t, data)
    model = _tiny(t)
    prepare_model(model, [Item(t, s) for s in make_samples(t, "x", None, torch.float64)], TrainSettings())
    save_checkpoint(tmp_path / "m.pt", model)
    out = evaluate_model(tmp_path / "m.pt", tmp_path / "t.h5", tmp_path / "e.json")
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["baseline_fitted"] is True and set(saved["baseline"]) >= {"mae_edge_meV", "mae_node_meV"}
    n_entries = sum(r["entries"] for r in saved["by_distance"])
    # every pair entry of the uncoupled blocks is in one distance bin: (s,s,s) x (p) kinds, 3 or 1 orbitals
    n_orb = np.where(t.atom_kind == t.kinds.index("A"), 3, 3)  # both kinds have 3 orbitals
    assert n_entries == int(sum(n_orb[i] * n_orb[j] for i, j in t.pair_index.T))
    assert {"potential_shift_meV", "shift_aligned", "mean_signed_onsite_error_meV", "by_slot"} <= set(out)


def test_checkpoint_of_version_1_is_refused_with_a_message(tmp_path):
    data, *_ = synthetic()
    model = _tiny(build_targets(data, 4.0))
    save_checkpoint(tmp_path / "m.pt", model)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["version"] = 1
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt: a model of checkpoint version 1.*Retrain it"):
        read_checkpoint(tmp_path / "old.pt")


def test_cosine_schedule_warms_up_decays_to_min_lr_and_follows_the_budget(tmp_path):
    import csv

    from hamforge._dist import distributed
    from hamforge.train import train
    from hamforge.train._schedule import LRSchedule

    data, *_ = synthetic()
    t = build_targets(data, 4.0)
    items = [Item(t, s) for s in make_samples(t, "x", None, torch.float64)]
    model = _tiny(t)
    s = TrainSettings(lr=1e-2, min_lr=1e-4, schedule="cosine", warmup_epochs=2, max_epochs=12, dtype="float64")
    spec, _ = prepare_model(model, items, s)
    with distributed(device="cpu") as ctx:
        summary = train(model, items, [], s, tmp_path, ctx, loss_spec=spec)
    lrs = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "metrics.csv"))]
    assert summary["stop_reason"] == "schedule complete" and len(lrs) == 12
    cos = lambda p: 1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + np.cos(np.pi * p))  # noqa: E731
    assert lrs[0] == pytest.approx(cos(0) / 3) and lrs[1] == pytest.approx(cos(1 / 12) * 2 / 3)  # warm-up
    assert lrs[2] == pytest.approx(cos(2 / 12)) and lrs[0] < lrs[1] < lrs[2]
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:])) and lrs[-1] < 0.05 * 1e-2  # decays towards min_lr
    # with a wall-time budget the progress is the training time used (summed over resumed runs; no clock here)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = LRSchedule(opt, TrainSettings(lr=1e-2, min_lr=1e-4, schedule="cosine", time_budget_s=100.0))
    sched.after_epoch(0.0, 50.0)  # half the budget used
    sched.before_epoch(10)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 + (1e-2 - 1e-4) * 0.5)  # cos(pi / 2) = 0
    assert not sched.over_budget(49.0) and sched.over_budget(51.0)
    resumed = LRSchedule(opt, TrainSettings(lr=1e-2, min_lr=1e-4, schedule="cosine", time_budget_s=100.0))
    resumed.load_state_dict(sched.state_dict())
    assert resumed.progress(10) == 0.5


def test_edge_reads_updated_needs_one_more_hop():
    x, nl = system(40, np.diag([7.0, 7.0, 9.0]), seed=2, r_cut=3.0)
    kw = dict(species=(14,), node_irreps="1x0e+1x2e", edge_irreps="1x0e+1x1o+1x2e", r_cut=3.0, l_max=2)
    assert ModelConfig(**kw, n_layers=1, edge_reads_updated=True).halo == 2
    assert ModelConfig(**kw, n_layers=1).halo == 1
    with pytest.raises(ValueError, match="strictly_local"):
        ModelConfig(**kw, strictly_local=True, edge_reads_updated=True)

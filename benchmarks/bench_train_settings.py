"""Training settings compared side by side on a material's real targets at equal wall time.

    python benchmarks/bench_train_settings.py results/a-Si/targets --train q0_f01197 q0_f01314 q1_f01207 \
        q1_f01319 --val q3_f01355 q3_f01379 --config config.yaml [--minutes 12] [--variants before all ...] \
        [--seeds 0 1]

Every variant is the --config material's model and train blocks with a few keys changed (VARIANTS below); all
variants train at the same time, one process and one thread each, for the same wall-time budget, so the machine's
noise hits them alike. Printed: epochs reached, the held-out (--val) MAE of the last epoch (nodes / edges / total,
meV) of the model each run delivers (its best epoch; EMA weights where used) and of its baselines alone. Used to
choose the demo's settings (docs/training.md, "Demo settings"). Never the test quench: validate on the validation
quench.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# name -> (model overrides, train overrides) on top of the config's blocks. BEFORE is the training as it was up to
# 2026-12-02 (no baselines, one scale per block kind, raw MSE, plateau schedule, best epoch by the loss, feed-forward
# scalars from l = 0 only); the "+" variants add one item each, "all" everything, the "all-" variants remove one
# item from "all" (issue 19's ablation).
BEFORE_MODEL = {"ffn_invariants": False}
BEFORE_TRAIN = {
    "baseline": False,
    "scale_per_slot": False,
    "loss_norm": False,
    "l1_weight": 0.0,
    "schedule": "plateau",
    "lr": 5e-3,
    "patience": 20,
    "threshold": 1e-4,
    "ema_decay": 0.0,
    "select_on": "loss",
    "warmup_epochs": 0,
}
ALL_MODEL = {"ffn_invariants": True, "edge_reads_updated": True}
ALL_TRAIN = {
    "baseline": True,
    "scale_per_slot": True,
    "loss_norm": True,
    "l1_weight": 1.0,
    "schedule": "cosine",
    "warmup_epochs": 3,
    "lr": 5e-3,
    "min_lr": 1e-5,
    "ema_decay": 0.99,
    "select_on": "mae",
}
VARIANTS = {
    "before": (BEFORE_MODEL, BEFORE_TRAIN),
    "+baseline": (BEFORE_MODEL, {**BEFORE_TRAIN, "baseline": True, "scale_per_slot": True}),
    "+loss-norm": (BEFORE_MODEL, {**BEFORE_TRAIN, "loss_norm": True}),
    "+l1": (BEFORE_MODEL, {**BEFORE_TRAIN, "loss_norm": True, "l1_weight": 1.0}),
    "+cosine-ema": (
        BEFORE_MODEL,
        {**BEFORE_TRAIN, **{k: ALL_TRAIN[k] for k in ("schedule", "warmup_epochs", "ema_decay", "select_on")}},
    ),
    "+invariants": ({"ffn_invariants": True}, BEFORE_TRAIN),
    "all": (ALL_MODEL, ALL_TRAIN),
    "all-baseline": (ALL_MODEL, {**ALL_TRAIN, "baseline": False, "scale_per_slot": False}),
    "all-l1": (ALL_MODEL, {**ALL_TRAIN, "l1_weight": 0.0}),
    "all-cosine-ema": (
        ALL_MODEL,
        {**ALL_TRAIN, "schedule": "plateau", "patience": 20, "threshold": 1e-4, "ema_decay": 0.0},
    ),
    "all-invariants": ({**ALL_MODEL, "ffn_invariants": False}, ALL_TRAIN),
    "all-edge-reads-updated": ({**ALL_MODEL, "edge_reads_updated": False}, ALL_TRAIN),
    "all-edge-out-norm": ({**ALL_MODEL, "edge_out_norm": False}, ALL_TRAIN),
    "all-2layers": ({**ALL_MODEL, "n_layers": 2}, ALL_TRAIN),
    "all-node-weight-0.3": (ALL_MODEL, {**ALL_TRAIN, "node_weight": 0.3}),
}


def run_one(spec_path: str) -> None:
    """Child process: train one variant (the spec is a JSON file written by the parent)."""
    import torch

    torch.set_num_threads(1)
    from hamforge.stages import train_model
    from hamforge.train import TrainSettings

    spec = json.loads(Path(spec_path).read_text())
    entry = lambda s: {"structure": s, "targets": str(Path(spec["targets_dir"]) / f"{s}.h5")}  # noqa: E731
    summary = train_model(
        [entry(s) for s in spec["train"]],
        [entry(s) for s in spec["val"]],
        spec["model"],
        TrainSettings.from_dict(spec["settings"]),
        spec["out"],
    )
    keep = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, dict))}
    Path(spec["out"], "summary.json").write_text(json.dumps(keep, indent=2, default=float))


def _rows(out: Path) -> list[dict]:
    with open(out / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets_dir")
    ap.add_argument("--train", nargs="+", required=True, help="structure names (targets_dir/<name>.h5)")
    ap.add_argument("--val", nargs="+", required=True, help="held-out training-quench structures")
    ap.add_argument("--config", nargs="+", default=["config.yaml"], help="config file(s) of the material")
    ap.add_argument("--material", default=None)
    ap.add_argument("--minutes", type=float, default=12.0, help="wall-time budget of every variant")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="one run per variant and seed")
    args = ap.parse_args()

    from hamforge.config import load_config

    cfg = load_config(args.config)
    mats = cfg["materials"]
    mat = mats[args.material or next(iter(mats))]
    base_train = {k: v for k, v in mat["train"].items() if k not in ("validation_structures", "use_partitions")}
    base_train.pop("time_budget_min")
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_train_settings-"))
    procs = {}
    for name in args.variants:
        for seed in args.seeds:
            model_over, train_over = VARIANTS[name]
            run = f"{name}@{seed}"
            spec = {
                "targets_dir": args.targets_dir,
                "train": args.train,
                "val": args.val,
                "model": {**mat["model"], **model_over},
                "settings": {**base_train, **train_over, "seed": seed, "time_budget_s": 60.0 * args.minutes},
                "out": str(work / run),
            }
            shutil.rmtree(work / run, ignore_errors=True)  # a rerun with the same --out compares afresh
            (work / run).mkdir(parents=True)
            (work / f"{run}.json").write_text(json.dumps(spec))
            log = open(work / f"{run}.log", "w")
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            cmd = [sys.executable, __file__, "--child", str(work / f"{run}.json")]
            procs[run] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    print(f"{len(procs)} runs, {args.minutes} min each, side by side (one thread each); runs in {work}")
    for name, p in procs.items():
        if p.wait() != 0:
            sys.exit(f"run {name} failed: see {work / name}.log")
    print("\nvalidation MAE (meV) of the model each run delivers (its best epoch), and of the baselines alone")
    print("| run | epochs | stop | nodes | edges | total | baseline edges | baseline total |")
    print("|---|---|---|---|---|---|---|---|")
    for name in procs:
        r = _rows(work / name)
        sm = json.loads((work / name / "summary.json").read_text())
        vm, bm = sm.get("val_metrics", {}), sm.get("baseline_val_metrics", {})
        f = lambda d, k: f"{d[k]:.2f}" if k in d else "-"  # noqa: E731
        print(
            f"| {name} | {len(r)} | {sm.get('stop_reason')} | {f(vm, 'mae_node_meV')} | {f(vm, 'mae_edge_meV')} "
            f"| {f(vm, 'mae_total_meV')} | {f(bm, 'mae_edge_meV')} | {f(bm, 'mae_total_meV')} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_one(sys.argv[2])
    else:
        main()

"""Training settings compared side by side on a material's real targets at equal wall time.

    python benchmarks/bench_train_settings.py results/a-Si/targets --train q0_f01218 q0_f01324 q1_f01209 \
        --val q1_f01321 --config config.yaml [--minutes 12] [--variants base batch1 ...]

Every variant is the --config material's model and train blocks with a few keys changed (VARIANTS below); all
variants train at the same time, one process and one thread each, for the same wall-time budget, so the machine's
noise hits them alike. Printed: epochs reached, the held-out (--val) MAE of the last epoch (nodes / edges / total,
meV) and the total at the largest epoch every variant reached. Used to choose the demo's settings
(docs/training.md, "Demo settings"). Never the test quench: pass training-quench structures only.
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

# name -> (model overrides, train overrides) on top of the config's blocks
VARIANTS = {
    "full-batch": ({}, {"batch_size": 0, "lr": 2e-3, "patience": 10, "threshold": 1e-3}),
    "batch1": ({}, {"batch_size": 1, "lr": 2e-3, "patience": 10, "threshold": 1e-3}),
    "batch1-lr5e-3": ({}, {"batch_size": 1, "lr": 5e-3, "patience": 10, "threshold": 1e-3}),
    "batch1-lr5e-3-p20": ({}, {"batch_size": 1, "lr": 5e-3, "patience": 20, "threshold": 1e-4}),
    "batch1-E32": ({"embed_dim": 32}, {"batch_size": 1, "lr": 2e-3, "patience": 10, "threshold": 1e-3}),
    "batch1-2layers": ({"n_layers": 2}, {"batch_size": 1, "lr": 5e-3, "patience": 10, "threshold": 1e-3}),
    "batch1-lr5e-3-p20-2layers": ({"n_layers": 2}, {"batch_size": 1, "lr": 5e-3, "patience": 20, "threshold": 1e-4}),
}


def run_one(spec_path: str) -> None:
    """Child process: train one variant (the spec is a JSON file written by the parent)."""
    import torch

    torch.set_num_threads(1)
    from hamforge.stages import train_model
    from hamforge.train import TrainSettings

    spec = json.loads(Path(spec_path).read_text())
    entry = lambda s: {"structure": s, "targets": str(Path(spec["targets_dir"]) / f"{s}.h5")}  # noqa: E731
    train_model(
        [entry(s) for s in spec["train"]],
        [entry(s) for s in spec["val"]],
        spec["model"],
        TrainSettings.from_dict(spec["settings"]),
        spec["out"],
    )


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
        model_over, train_over = VARIANTS[name]
        spec = {
            "targets_dir": args.targets_dir,
            "train": args.train,
            "val": args.val,
            "model": {**mat["model"], **model_over},
            "settings": {**base_train, **train_over, "time_budget_s": 60.0 * args.minutes},
            "out": str(work / name),
        }
        shutil.rmtree(work / name, ignore_errors=True)  # a rerun with the same --out compares afresh
        (work / name).mkdir(parents=True)
        (work / f"{name}.json").write_text(json.dumps(spec))
        log = open(work / f"{name}.log", "w")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, __file__, "--child", str(work / f"{name}.json")]
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    print(f"{len(procs)} variants, {args.minutes} min each, side by side (one thread each); runs in {work}")
    for name, p in procs.items():
        if p.wait() != 0:
            sys.exit(f"variant {name} failed: see {work / name}.log")
    rows = {name: _rows(work / name) for name in procs}
    common = min(len(r) for r in rows.values())
    print(f"\n| variant | epochs | val MAE nodes | edges | total (meV) | total at epoch {common} |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        last = r[-1]
        print(
            f"| {name} | {len(r)} | {float(last['val_mae_node_meV']):.2f} | {float(last['val_mae_edge_meV']):.2f} "
            f"| {float(last['val_mae_total_meV']):.2f} | {float(r[common - 1]['val_mae_total_meV']):.2f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_one(sys.argv[2])
    else:
        main()

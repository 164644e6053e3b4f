"""GPU checks in one run: NCCL halo exchange, a short training of the GPU configuration, mixed precision.

    python benchmarks/gpu_check.py TARGETS_DIR [--config config.yaml --config config/a-si-gpu.yaml] [--minutes 3]
        [--device cuda|cpu] [--out DIR]

1. **Halo exchange**: one graph (a training structure) split over 2 ranks (NCCL on 2+ GPUs, one GPU per rank;
   gloo on CPU with --device cpu); the outputs of the owned atoms and edges are compared with one process (float64,
   asserted <= 1e-10). With a single GPU NCCL cannot run two ranks on it: the check says so and runs one NCCL rank.
2. **Training**: the configuration's model and train blocks on the targets in TARGETS_DIR (validation: the
   configured validation quench's structures, else the last one), for --minutes; printed: epochs, optimizer steps,
   steps/s, peak device memory, the validation MAE.
3. **Mixed precision**: one forward + backward of that model on a structure in float32 and under bfloat16 autocast
   (CUDA only; on CPU it says it is skipped): time of each, and the largest output difference relative to the
   output scale.

Prints one JSON line per check and writes them to OUT/gpu_check.json. ``benchmarks/gpu_check.sh`` runs it with the
GPU configuration; tests/test_gpu_check.py runs the CPU path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _halo_rank(rank, world, port, job, out):
    import torch
    from hamforge.model import HamiltonianModel, ModelConfig
    from hamforge.parallel import HaloModel, build_halo_plan, distributed

    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    with distributed(device=job["device"]) as ctx:
        model = HamiltonianModel(ModelConfig.from_dict(job["config"]), seed=0).to(torch.float64).to(ctx.device)
        plan = build_halo_plan(job["edge_index"], job["assignment"], rank)
        graph = {k: v.to(ctx.device) for k, v in plan.local_graph(job["numbers"], job["edge_vec"]).items()}
        with torch.no_grad():
            res = HaloModel(model, plan, stats=False)(graph)
        torch.save(
            {"plan": plan, "out": {k: v.cpu() for k, v in res.items()}, "backend": ctx.backend}, f"{out}/r{rank}.pt"
        )


def check_halo(path, model_cfg: dict, device: str) -> dict:
    import numpy as np
    import torch
    import torch.multiprocessing as mp
    from hamforge.io import read_targets_file
    from hamforge.model import EDGE_OUT, NODE_OUT, HamiltonianModel, ModelConfig
    from hamforge.partition import partition_atoms

    t = read_targets_file(path)
    cfg = ModelConfig.from_targets(t, **model_cfg)
    n_gpu = torch.cuda.device_count() if device == "cuda" else 0
    world = 2 if device == "cpu" or n_gpu >= 2 else 1
    positions = read_targets_file(path, graph_only=True).positions
    assignment = partition_atoms(t.nl, positions, "lownn", world) if world > 1 else np.zeros(t.nl.n_atoms, int)
    job = {
        "config": cfg.to_dict(),
        "device": device,
        "numbers": torch.as_tensor(t.atom_kind),
        "edge_index": t.nl.edge_index,
        "edge_vec": torch.as_tensor(np.array(t.nl.vec)),
        "assignment": assignment,
    }
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_halo_rank, args=(world, _free_port(), job, out), nprocs=world, join=True)
        recs = [torch.load(f"{out}/r{r}.pt", weights_only=False) for r in range(world)]
    model = HamiltonianModel(cfg, seed=0).to(torch.float64)
    graph = {"numbers": job["numbers"], "edge_index": torch.as_tensor(t.nl.edge_index), "edge_vec": job["edge_vec"]}
    with torch.no_grad():
        ref = model(graph)
    err = 0.0
    for rec in recs:
        plan = rec["plan"]
        err = max(err, float((rec["out"][NODE_OUT] - ref[NODE_OUT][torch.as_tensor(plan.owned)]).abs().max()))
        err = max(err, float((rec["out"][EDGE_OUT] - ref[EDGE_OUT][torch.as_tensor(plan.edges)]).abs().max()))
    note = "" if world > 1 else "one GPU: NCCL cannot run two ranks on one device; one NCCL rank run"
    return {
        "check": "halo",
        "backend": recs[0]["backend"],
        "ranks": world,
        "max_abs_diff": err,
        "ok": err <= 1e-10,
        "note": note,
    }


def check_training(paths, val_paths, model_cfg, train_cfg, minutes, device, out) -> dict:
    import torch
    from hamforge.stages import train_model
    from hamforge.train import TrainSettings

    train_cfg = {k: v for k, v in train_cfg.items() if k not in ("validation_structures", "use_partitions")}
    train_cfg.pop("time_budget_min", None)
    settings = TrainSettings.from_dict({**train_cfg, "time_budget_s": 60.0 * minutes})
    entry = lambda p: {"structure": Path(p).stem, "targets": str(p)}  # noqa: E731
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    summary = train_model([entry(p) for p in paths], [entry(p) for p in val_paths], model_cfg, settings, out)
    wall = time.perf_counter() - t0
    epochs = int(summary.get("epochs", 0))
    steps = epochs * len(paths) // max(1, settings.batch_size or len(paths)) if settings.batch_size else epochs
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    vm = summary.get("val_metrics", {})
    return {
        "check": "training",
        "device": device,
        "wall_s": wall,
        "epochs": epochs,
        "steps": steps,
        "steps_per_s": steps / wall,
        "peak_gpu_GiB": peak,
        "val_mae_total_meV": vm.get("mae_total_meV"),
        "val_mae_edge_meV": vm.get("mae_edge_meV"),
        "stop_reason": summary.get("stop_reason"),
    }


def check_mixed_precision(t, model_cfg, device) -> dict:
    import torch
    from hamforge.model import EDGE_OUT, HamiltonianModel, ModelConfig
    from hamforge.train import make_samples

    if device != "cuda":
        return {"check": "mixed_precision", "skipped": "bfloat16 autocast runs on CUDA only"}
    cfg = ModelConfig.from_targets(t, **model_cfg)
    model = HamiltonianModel(cfg, seed=0).to(device)
    s = make_samples(t, "x", None, torch.float32)[0].to(device)
    res = {}
    for name, ctx in (
        ("float32", torch.autocast("cuda", enabled=False)),
        ("bfloat16", torch.autocast("cuda", dtype=torch.bfloat16)),
    ):
        for rep in range(3):  # the first is warm-up
            model.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with ctx:
                out = model(s.graph)
            out[EDGE_OUT].float().pow(2).sum().backward()
            torch.cuda.synchronize()
            res[name] = (time.perf_counter() - t0, out[EDGE_OUT].detach().float())
    scale = float(res["float32"][1].abs().max())
    diff = float((res["bfloat16"][1] - res["float32"][1]).abs().max()) / scale
    return {
        "check": "mixed_precision",
        "float32_s": res["float32"][0],
        "bfloat16_s": res["bfloat16"][0],
        "speedup": res["float32"][0] / res["bfloat16"][0],
        "max_rel_diff": diff,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets_dir")
    ap.add_argument("--config", action="append", default=None, help="config file(s), merged in order")
    ap.add_argument("--material", default=None)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    import torch
    from hamforge.config import load_config
    from hamforge.io import read_targets_file

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: --device cuda but torch sees no CUDA device (use --device cpu for the CPU path)")
    cfg = load_config(args.config or ["config.yaml", "config/a-si-gpu.yaml"])
    name = args.material or next(iter(cfg["materials"]))
    mat = cfg["materials"][name]
    files = sorted(Path(args.targets_dir).glob("q*_f*.h5"))
    quench = lambda p: int(re.match(r"q(\d+)_", p.name).group(1))  # noqa: E731
    files = [p for p in files if quench(p) != mat.get("test_quench")]
    val = [p for p in files if quench(p) == mat.get("validation_quench")] or files[-1:]
    train = [p for p in files if p not in val]
    if not train:
        sys.exit(f"gpu_check: {args.targets_dir} has no training structures besides the validation ones")
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_check-"))
    out.mkdir(parents=True, exist_ok=True)
    t = read_targets_file(train[0])
    small = {**mat["model"], "embed_dim": 8, "n_layers": 2}  # the exactness check needs no large model
    results = [check_halo(train[0], small, args.device)]
    print(json.dumps(results[-1]), flush=True)
    results.append(check_training(train, val, mat["model"], mat["train"], args.minutes, args.device, out / "train"))
    print(json.dumps(results[-1]), flush=True)
    results.append(check_mixed_precision(t, mat["model"], args.device))
    print(json.dumps(results[-1]), flush=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out / 'gpu_check.json'}")
    return 0 if results[0]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

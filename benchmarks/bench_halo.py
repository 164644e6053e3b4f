"""Strong and weak scaling of one graph over 1/2/4 gloo CPU processes with halo exchange (hamforge.parallel).

    python benchmarks/bench_halo.py [--atoms 1200] [--per-rank 400] [--ranks 1 2 4] [--steps 3]

Each configuration is a fresh set of processes (torch.multiprocessing spawn, one thread each, gloo), so the
peak RSS of a rank is its own. A step = forward + backward + all-reduce of the parameter gradients of a
2-layer float32 model (l_max 2, 8 channels) on amorphous-like Si (0.05 atoms/A^3, r_cut 4 A). Printed: time
per step (slowest rank, median of the steps after one warm-up), speed-up / efficiency vs 1 rank,
communication fraction ((pack + exchange + unpack) / step, mean over ranks; on an oversubscribed machine the
exchange wait also holds the other ranks' compute), bytes sent and neighbour ranks per rank, peak RSS per
rank (max over ranks) and its growth over the RSS after imports, for Low-NN vs METIS vs brick.
More processes than cores oversubscribe: times are then not a parallel speed-up, the memory column still is.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import tempfile
import time
from pathlib import Path

METHODS = ("lownn", "metis", "brick")


def _config():
    from hamforge.model import ModelConfig

    return ModelConfig(
        species=(14,),
        node_irreps="1x0e+1x1o+1x2e",
        edge_irreps="1x0e+1x1o+1x2e",
        r_cut=4.0,
        l_max=2,
        embed_dim=8,
        n_heads=2,
        ffn_dim=16,
        n_layers=2,
        n_radial=8,
        radial_hidden=16,
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _rank(rank: int, world: int, port: int, n_atoms: int, method: str, steps: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import numpy as np
    import torch
    from _structures import amorphous_like_si  # benchmarks/ is sys.path[0] when this script runs
    from hamforge.graph import neighbor_list
    from hamforge.model import EDGE_OUT, NODE_OUT, HamiltonianModel
    from hamforge.parallel import HaloModel, all_reduce_gradients, build_halo_plan, distributed
    from hamforge.partition import partition_atoms

    torch.set_num_threads(1)
    rss0 = _rss_mb()
    atoms = amorphous_like_si(n_atoms, seed=0)
    nl = neighbor_list(atoms.positions, atoms.cell[:], True, 4.0)
    assignment = np.zeros(n_atoms, np.int64) if world == 1 else partition_atoms(nl, atoms.positions, method, world)
    with distributed(device="cpu") as ctx:
        plan = build_halo_plan(nl.edge_index, assignment, rank)
        graph = plan.local_graph(torch.as_tensor(atoms.numbers), torch.as_tensor(np.array(nl.vec)))
        del nl, atoms
        model = HamiltonianModel(_config(), seed=0)
        halo = HaloModel(model, plan)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            model.zero_grad(set_to_none=True)
            pred = halo(graph)
            halo.backward(pred[NODE_OUT].square().sum() + pred[EDGE_OUT].square().sum())
            if ctx.world_size > 1:
                all_reduce_gradients(model)
            times.append(time.perf_counter() - t0)
        rows = [r for r in halo.stats.rows if r["step"] > 0]  # after the warm-up
        comm = sum(r["t_pack"] + r["t_exchange"] + r["t_unpack"] for r in rows)
        rec = {
            "times": times[1:],
            "comm": comm / max(sum(times[1:]), 1e-12),
            "bytes": sum(r["bytes_sent"] for r in rows) / steps,
            "neighbours": len(plan.neighbours),
            "owned": plan.n_owned,
            "ghost": plan.n_ghost,
            "edges": int(plan.edges.shape[0]),
            "rss": _rss_mb(),
            "rss0": rss0,
        }
        import torch.distributed as dist

        gathered = [None] * world
        if world > 1:
            dist.all_gather_object(gathered, rec)
        else:
            gathered = [rec]
        if rank == 0:
            torch.save(gathered, out)


def run(world: int, n_atoms: int, method: str, steps: int) -> dict:
    import numpy as np
    import torch
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        out = str(Path(d) / "r.pt")
        mp.spawn(_rank, args=(world, port, n_atoms, method, steps, out), nprocs=world, join=True)
        recs = torch.load(out, weights_only=False)
    step = np.max([r["times"] for r in recs], axis=0)  # a step ends when the slowest rank ends
    return {
        "ranks": world,
        "atoms": n_atoms,
        "method": method if world > 1 else "-",
        "t_step": float(np.median(step)),
        "comm": float(np.mean([r["comm"] for r in recs])),
        "kB/rank": float(np.mean([r["bytes"] for r in recs])) / 1e3,
        "edges/rank": float(np.mean([r["edges"] for r in recs])),
        "nbrs": float(np.mean([r["neighbours"] for r in recs])),
        "ghost/own": float(np.mean([r["ghost"] / r["owned"] for r in recs])),
        "rss_MB": float(max(r["rss"] for r in recs)),
        "d_rss_MB": float(max(r["rss"] - r["rss0"] for r in recs)),
    }


def _table(rows, strong: bool) -> str:
    """Side-by-side table; speed-up against the 1-rank row, efficiency per rank (strong) or t1 / tP (weak)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    speedup = float(df[df["ranks"] == 1]["t_step"].iloc[0]) / df["t_step"]
    df.insert(4, "speedup", speedup)
    df.insert(5, "eff", speedup / df["ranks"] if strong else speedup)
    return df.to_string(index=False, float_format=lambda v: f"{v:.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=1200, help="strong scaling: atoms of the fixed structure")
    ap.add_argument("--per-rank", type=int, default=400, help="weak scaling: atoms per rank")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}; ranks {args.ranks} (more ranks than cores oversubscribe)")

    def sweep(atoms_of):
        rows = []
        for p in args.ranks:
            for m in METHODS if p > 1 else METHODS[:1]:
                rows.append(run(p, atoms_of(p), m, args.steps))
                print(
                    f"  done: {rows[-1]['ranks']} ranks, {rows[-1]['method']}, {rows[-1]['t_step']:.2f} s", flush=True
                )
        return rows

    strong = sweep(lambda p: args.atoms)
    weak = sweep(lambda p: args.per_rank * p)
    print(f"\nStrong scaling ({args.atoms} atoms fixed; eff = speedup / ranks):")
    print(_table(strong, strong=True))
    print(f"\nWeak scaling ({args.per_rank} atoms per rank; eff = t(1 rank) / t(P ranks)):")
    print(_table(weak, strong=False))


if __name__ == "__main__":
    main()

"""Parameter count, peak memory and time of one forward+backward of HamiltonianModel per 10^5 messages.

Configurations: the papers' hyperparameters (E = 16, l_max = m_max = 4, 2 heads, FFN 64; these are also
ModelConfig's defaults) with 1 layer (ICML 2025) and 3 layers (SC'25), each with and without the edge
feed-forward block, the strictly local variant with 3 layers, and l_max = 2 for contrast. Outputs: padded
coupled targets of an HfO2 / SZV-MOLOPT-like basis (Hf: s s p d, O: s p), irreps from the shell lists.

Each configuration runs in a fresh subprocess on a random graph with --messages edges (N = E / 40 atoms,
random directions, distances in [1, r_cut)): peak memory is the subprocess' high-water RSS minus its RSS
just before the forward pass (activations kept for backward, gradients, temporaries; on CUDA
``max_memory_allocated``). Memory and time are linear in E and printed per 10^5 messages; the default
measures at 2 x 10^4 messages because 10^5 messages of the 3-layer model need ~25 GB on CPU (more than
this shared machine has; use --messages 100000 where it fits). Time: best of --repeat.

    python benchmarks/bench_model_size.py            # measured at 2 x 10^4 messages
    python benchmarks/bench_model_size.py --quick    # measured at 5 x 10^3 messages
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SHELLS = {72: [0, 0, 1, 2], 8: [0, 1]}  # Hf: s s p d (10 orbitals), O: s p (4): SZV-MOLOPT-SR-GTH

CONFIGS = {
    "paper 1 layer (default)": dict(n_layers=1),
    "paper 1 layer, no edge FFN": dict(n_layers=1, edge_ffn=False),
    "paper 3 layers": dict(n_layers=3),
    "paper 3 layers, no edge FFN": dict(n_layers=3, edge_ffn=False),
    "strictly local 3 layers": dict(n_layers=3, strictly_local=True),
    "l_max = m_max = 2, 1 layer": dict(n_layers=1, l_max=2),
}


def padded_irreps(shells: dict, node: bool) -> str:
    """Irreps of the padded coupled targets: per L the largest count over species (pairs)."""
    from hamforge import so3

    def counts(la, lb):
        c = {}
        for a in la:
            for b in lb:
                for L in so3.irreps_of_pair(a, b):
                    c[L] = c.get(L, 0) + 1
        return c

    pairs = [(z, z) for z in shells] if node else [(a, b) for a in shells for b in shells]
    best = {}
    for a, b in pairs:
        for L, n in counts(shells[a], shells[b]).items():
            best[L] = max(best.get(L, 0), n)
    return "+".join(f"{best[L]}x{L}e" for L in sorted(best))


def make_config(overrides: dict):
    from hamforge.model import ModelConfig

    node, edge = padded_irreps(SHELLS, True), padded_irreps(SHELLS, False)
    l_max = overrides.get("l_max", 4)
    if l_max < 4:  # drop output L > l_max (only for the size contrast)
        node = "+".join(t for t in node.split("+") if int(t.split("x")[1][:-1]) <= l_max)
        edge = "+".join(t for t in edge.split("+") if int(t.split("x")[1][:-1]) <= l_max)
    return ModelConfig(species=(8, 72), node_irreps=node, edge_irreps=edge, r_cut=8.0, **overrides)


def worker(name: str, n_edges: int, repeat: int, device: str) -> dict:
    import psutil
    import torch
    from hamforge.model import EDGE_INDEX, EDGE_OUT, EDGE_VEC, NODE_OUT, NUMBERS, HamiltonianModel

    cfg = make_config(CONFIGS[name])
    model = HamiltonianModel(cfg, seed=0).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    n_atoms = max(2, n_edges // 40)
    gen = torch.Generator().manual_seed(0)
    vec = torch.randn(n_edges, 3, generator=gen)
    vec = vec / vec.norm(dim=1, keepdim=True) * (1.0 + (cfg.r_cut - 1.0) * torch.rand(n_edges, 1, generator=gen))
    graph = {
        NUMBERS: torch.tensor([8, 72], dtype=torch.int64)[torch.randint(0, 2, (n_atoms,), generator=gen)],
        EDGE_INDEX: torch.randint(0, n_atoms, (2, n_edges), generator=gen),
        EDGE_VEC: vec,
    }
    graph = {k: v.to(device) for k, v in graph.items()}

    def step():
        model.zero_grad(set_to_none=True)
        out = model(graph)
        (out[NODE_OUT].square().mean() + out[EDGE_OUT].square().mean()).backward()
        if device != "cpu":
            torch.cuda.synchronize()

    rss0 = psutil.Process().memory_info().rss
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    step()  # first call: its peak is the memory figure
    if device != "cpu":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "name": name,
        "params": n_params,
        "peak_bytes": peak,
        "time": min(times),
        "E": n_edges,
        "node_irreps": cfg.node_irreps,
        "edge_irreps": cfg.edge_irreps,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5,000 messages")
    ap.add_argument("--messages", type=int, default=None, help="edges of the test graph (default 20,000)")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    n_edges = args.messages or (5_000 if args.quick else 20_000)
    repeat = args.repeat or (1 if args.quick else 2)
    if args.worker:
        print(json.dumps(worker(args.worker, n_edges, repeat, args.device)))
        return

    import torch

    print(
        f"HamiltonianModel size and forward+backward cost: measured on {n_edges} messages, printed per "
        f"10^5; device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    cfg = make_config({})
    print(f"outputs: node {cfg.node_irreps} ({cfg.node_dim}), edge {cfg.edge_irreps} ({cfg.edge_dim})")
    print(f"{'configuration':<30} {'params':>9} {'peak GiB/1e5 msg':>17} {'s/1e5 msg':>10} {'msg/s':>9}")
    scale = 1e5 / n_edges
    for name in CONFIGS:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--messages",
            str(n_edges),
            "--repeat",
            str(repeat),
            "--device",
            args.device,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name:<30} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{name:<30} {r['params']:>9,} {r['peak_bytes'] * scale / 2**30:>17.2f} "
            f"{r['time'] * scale:>10.2f} {n_edges / r['time']:>9.3g}",
            flush=True,
        )
    print(
        "peak = memory above the state before the first forward (activations, gradients, temporaries); "
        "linear in the number of messages"
    )


if __name__ == "__main__":
    main()

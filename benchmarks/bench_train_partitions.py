"""Peak memory and time per epoch of full-graph vs partitioned training on one 1,000+-atom structure.

    python benchmarks/bench_train_partitions.py [--atoms 1000] [--parts 2 4 8] [--epochs 2] [--l-max 2]

Each configuration trains in a fresh subprocess (so its peak RSS is its own) on the same synthetic targets
(hamforge.graph.synthetic_hamiltonian on a random amorphous-like Si structure, SZV-like s+p basis, r_cut 8 A),
slices along the longest axis with the halo the model needs. Printed side by side with ratios to the full graph
(the ICML paper: 8 slices, 7.2x less memory per rank, 6.5x faster epochs on GPUs). Partitioned epochs here process
all parts sequentially on one process, so the time ratio measures the halo overhead, not a parallel speed-up;
the memory ratio is what one rank needs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(path: Path, n_atoms: int, r_cut: float) -> None:
    from _structures import amorphous_like_si  # benchmarks/ is sys.path[0] when this script runs
    from hamforge.basis import ElementBasis
    from hamforge.graph import build_targets, synthetic_hamiltonian
    from hamforge.io import write_targets_file

    atoms = amorphous_like_si(n_atoms, seed=0)
    basis = {"Si": ElementBasis(element="Si", name="SZV-like", shells=(0, 1))}
    data, *_ = synthetic_hamiltonian(
        atoms.numbers, atoms.positions, atoms.cell[:], True, ["Si"] * n_atoms, basis, r_cut, seed=0
    )
    write_targets_file(path, build_targets(data, r_cut), data)


def run_one(path: str, parts: int, epochs: int, l_max: int) -> dict:
    import torch
    from hamforge.io import read_targets_file
    from hamforge.model import HamiltonianModel, ModelConfig
    from hamforge.partition import run_partition
    from hamforge.train import DistContext, Item, TrainSettings, make_samples, train

    t = read_targets_file(path)
    cfg = ModelConfig.from_targets(t, l_max=l_max)
    part = None
    if parts > 1:
        from hamforge.io import read_partitions
        from hamforge.stages import write_partition_outputs

        positions = read_targets_file(path, graph_only=True).positions
        res = run_partition(t.nl, positions, "slices", parts, cfg.halo)
        ppath = Path(path).with_suffix(f".p{parts}.h5")
        write_partition_outputs(res, t.nl, positions, ppath)
        part = read_partitions(ppath, t.nl)
    items = [Item(t, s) for s in make_samples(t, "bench", part)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = HamiltonianModel(cfg)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        train(
            model,
            items,
            [],
            TrainSettings(lr=1e-3, max_epochs=epochs, batch_size=1),
            out,
            DistContext(0, 1, 0, torch.device("cpu"), None),
        )
        dt = (time.perf_counter() - t0) / epochs
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "parts": parts,
        "edges_max_part": max(int(it.sample.edge_index.shape[1]) for it in items),
        "epoch_s": dt,
        "peak_rss_mb": peak,
        "rss_before_training_mb": base,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=1000)
    ap.add_argument("--parts", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--l-max", type=int, default=2)
    ap.add_argument("--rcut", type=float, default=8.0)
    ap.add_argument("--worker", nargs=4, metavar=("PATH", "PARTS", "EPOCHS", "LMAX"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(run_one(a.worker[0], int(a.worker[1]), int(a.worker[2]), int(a.worker[3]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.h5"
        prepare(path, a.atoms, a.rcut)
        rows = []
        for p in [1, *a.parts]:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", str(path), str(p), str(a.epochs), str(a.l_max)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    full = rows[0]
    print(f"{a.atoms} atoms, r_cut {a.rcut} A, l_max {a.l_max}, {a.epochs} epochs per configuration")
    print(
        f"{'parts':>5} {'max edges/part':>15} {'epoch (s)':>10} {'peak RSS (MB)':>14} {'memory ratio':>13} "
        f"{'time ratio':>11}"
    )
    for r in rows:
        print(
            f"{r['parts']:>5} {r['edges_max_part']:>15} {r['epoch_s']:>10.2f} {r['peak_rss_mb']:>14.0f} "
            f"{full['peak_rss_mb'] / r['peak_rss_mb']:>13.2f} {full['epoch_s'] / r['epoch_s']:>11.2f}"
        )


if __name__ == "__main__":
    main()

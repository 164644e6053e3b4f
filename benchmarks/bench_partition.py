"""Low-NN recursive bisection vs METIS (pymetis), plus slices, on one large graph; memory per part.

Part 1 (side by side, one process, same neighbour list; a cubic cell and an elongated 4:1:1 cell with the
same number of atoms): wall time of each partitioner including its
own graph preparation (node degrees for Low-NN, the CSR adjacency for METIS), then for each result the
halo-1 augmented parts: neighbouring parts per part (mean / max), edge imbalance (max / mean of owned
edges), mean node halo ratio and total embeddings received; ratios METIS / Low-NN.
The SC'25 paper: 64 parts of a 24k-atom, 14.5 M-edge HfO2 graph, Low-NN 1.41 s vs METIS 8.54 s (6.1x),
with fewer neighbours per rank.

Part 2 (each structure in a fresh subprocess): peak memory of building the full graph (neighbour list)
vs building the largest augmented part (halo 1 and 2) from it, and the bytes each one holds (a part:
nodes, edge ids, local edge index, and the gathered shift/vec/dist of its edges). Peaks are tracemalloc
peaks (numpy buffers; the k-d tree's C++ memory is not counted, so the neighbour-list subprocess also
shows how much its RSS high-water mark grew during the call: a lower bound of the call's peak, 0 when
the import-time high-water mark was not exceeded). Structures: the default config's 216-atom a-Si at its r_cut
(a matrix file under results/a-Si/dft/ if there is one, else a LAMMPS melt-quench with the md settings of
config.yaml), and the 24,000-atom amorphous-like Si at r_cut = 12 A.

    python benchmarks/bench_partition.py            # 24,000 atoms, r_cut 12 A, 32/64/128 parts (~1-2 min)
    python benchmarks/bench_partition.py --quick    # 3,000 atoms, r_cut 8 A, 8/16/32 parts, no LAMMPS
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _structures import amorphous_like_si

FULL = dict(n_atoms=24_000, r_cut=12.0, parts=(32, 64, 128), mem_parts=64)
QUICK = dict(n_atoms=3_000, r_cut=8.0, parts=(8, 16, 32), mem_parts=8)
REPO = Path(__file__).resolve().parent.parent


def _best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def compare_partitioners(label, atoms, r_cut, parts, repeat, metis_repeat):
    from hamforge.graph import neighbor_list
    from hamforge.partition import augment_all, partition_lownn, partition_metis, partition_metrics, partition_slices

    x, cell = atoms.positions, np.array(atoms.cell[:])
    t0 = time.perf_counter()
    nl = neighbor_list(x, cell, atoms.pbc, r_cut)
    lengths = " x ".join(f"{v:.1f}" for v in np.linalg.norm(cell, axis=1))
    print(
        f"{label}: {nl.n_atoms} atoms, {nl.n_edges:,} edges, r_cut = {r_cut} A, cell {lengths} A "
        f"(neighbour list {time.perf_counter() - t0:.2f} s)\n"
    )
    methods = {
        "lownn": (lambda p: partition_lownn(nl, x, p), repeat),
        "metis": (lambda p: partition_metis(nl, p, seed=0), metis_repeat),
        "slices": (lambda p: partition_slices(nl, x, p), repeat),
    }
    rows = []
    head = (
        f"{'parts':>5} {'method':>7} {'time s':>8} {'neigh mean':>10} {'neigh max':>9} {'edge imb':>8} "
        f"{'node halo':>9} {'recv total':>11}"
    )
    print(head)
    print("-" * len(head))
    for p in parts:
        for name, (fn, rep) in methods.items():
            t, a = _best(lambda: fn(p), rep)
            table, s = partition_metrics(nl, a, augment_all(nl, a, 1), elapsed_s=t)
            rows.append(dict(parts=p, method=name, **s))
            print(
                f"{p:>5} {name:>7} {t:>8.3f} {s['neighbours_mean']:>10.1f} {s['neighbours_max']:>9d} "
                f"{s['edge_imbalance']:>8.3f} {s['node_halo_ratio_mean']:>9.2f} "
                f"{s['embeddings_received_total']:>11,d}"
            )
    print("\nratios METIS / Low-NN (> 1: Low-NN better)")
    print(f"{'parts':>5} {'time':>8} {'neigh mean':>10} {'neigh max':>9} {'edge imb':>8} {'recv total':>10}")
    for p in parts:
        lo = next(r for r in rows if r["parts"] == p and r["method"] == "lownn")
        me = next(r for r in rows if r["parts"] == p and r["method"] == "metis")
        print(
            f"{p:>5} {me['partition_time_s'] / lo['partition_time_s']:>8.1f} "
            f"{me['neighbours_mean'] / lo['neighbours_mean']:>10.2f} "
            f"{me['neighbours_max'] / lo['neighbours_max']:>9.2f} "
            f"{me['edge_imbalance'] / lo['edge_imbalance']:>8.3f} "
            f"{me['embeddings_received_total'] / lo['embeddings_received_total']:>10.2f}"
        )
    print(f"(Low-NN best of {repeat}, METIS best of {metis_repeat}; SC'25: 8.54 s / 1.41 s = 6.1x at 64 parts)\n")
    return rows


# ----------------------------------------------------------------------------------------------------
def memory_worker(path, r_cut, n_parts, halos):
    """Fresh subprocess: tracemalloc peaks of the full neighbour list and of the largest augmented part."""
    from hamforge.graph import neighbor_list
    from hamforge.partition import augment, partition_lownn

    d = np.load(path)
    x, cell, pbc = d["positions"], d["cell"], d["pbc"]
    neighbor_list(x[:4], cell, pbc, 1.0)  # imports and first-call work outside the measurement
    hw0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    nl = neighbor_list(x, cell, pbc, r_cut)
    full_peak = tracemalloc.get_traced_memory()[1]
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    full_bytes = sum(a.nbytes for a in (nl.edge_index, nl.shift, nl.vec, nl.dist))
    a = partition_lownn(nl, x, n_parts)
    out = dict(
        n_atoms=nl.n_atoms,
        n_edges=nl.n_edges,
        n_parts=n_parts,
        full_peak=full_peak,
        full_rss_growth=rss1 - hw0,
        full_bytes=full_bytes,
        parts={},
    )
    for halo in halos:
        big = max(range(n_parts), key=lambda q: augment(nl, a, q, halo).n_edges)  # one part alive at a time
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        p = augment(nl, a, big, halo)
        local = (nl.shift[p.edges], nl.vec[p.edges], nl.dist[p.edges])
        peak = tracemalloc.get_traced_memory()[1] - base
        held = sum(v.nbytes for v in (p.nodes, p.node_hop, p.edges, p.edge_index_local, p.edge_is_labelled, *local))
        out["parts"][str(halo)] = dict(part=big, nodes=p.n_nodes, edges=p.n_edges, peak=peak, bytes=held)
        del p, local
    tracemalloc.stop()
    print(json.dumps(out))


def default_structure(quick):
    """(atoms, r_cut, label) for the default config's training structure."""
    import yaml

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    mat = cfg["materials"]["a-Si"]
    r_cut = float(mat["targets"]["r_cut"])
    results = Path(cfg.get("results", "results"))
    files = sorted(glob.glob(str((results if results.is_absolute() else REPO / results) / "a-Si/dft/*.h5")))
    files = [f for f in files if not f.endswith(".index.json")]
    if files:
        from ase import Atoms
        from hamforge.io import read_matrix_file

        m = read_matrix_file(files[0])
        return Atoms(numbers=m.numbers, positions=m.positions, cell=m.cell, pbc=m.pbc), r_cut, files[0]
    if quick:
        return amorphous_like_si(216, seed=1), r_cut, "216-atom amorphous-like Si (--quick: no LAMMPS)"
    import ase.io
    from hamforge.structures import MeltQuenchSettings, run_melt_quench

    settings = MeltQuenchSettings.from_config(mat["elements"], mat["md"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_melt_quench(settings, Path(tmp) / "lammps", Path(tmp) / "traj.extxyz", Path(tmp) / "thermo.csv")
        atoms = ase.io.read(Path(tmp) / "traj.extxyz", index=-1)
    return atoms, r_cut, f"216-atom a-Si, LAMMPS melt-quench of config.yaml ({time.perf_counter() - t0:.0f} s)"


def run_memory_workers(structures, halos):
    """One fresh subprocess per structure. Run these before the parent grows: a child inherits its
    parent's RSS high-water mark across fork/exec on Linux."""
    out = []
    for label, atoms, r_cut, n_parts in structures:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.npz")
            np.savez(path, positions=atoms.positions, cell=np.array(atoms.cell[:]), pbc=atoms.pbc)
            res = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-worker",
                    path,
                    str(r_cut),
                    str(n_parts),
                    ",".join(map(str, halos)),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        out.append((label, n_parts, json.loads(res.stdout.strip().splitlines()[-1])))
    return out


def print_memory_table(results):
    print("memory: full graph vs the largest augmented part (Low-NN), fresh subprocess per structure")
    head = (
        f"{'structure':>10} {'edges':>11} {'parts':>5} {'what':>12} {'nodes':>7} {'edges':>11} "
        f"{'held MB':>9} {'peak MB':>9} {'full/part':>9}"
    )
    print(head)
    print("-" * len(head))
    mb = 2.0**-20
    for label, n_parts, r in results:
        print(
            f"{label:>10} {r['n_edges']:>11,d} {n_parts:>5} {'full graph':>12} {r['n_atoms']:>7} "
            f"{r['n_edges']:>11,d} {r['full_bytes'] * mb:>9.2f} {r['full_peak'] * mb:>9.2f} {'':>9}"
            f"   (RSS high-water growth {r['full_rss_growth'] * mb:.1f} MB)"
        )
        for halo, q in r["parts"].items():
            print(
                f"{'':>10} {'':>11} {'':>5} {'halo ' + halo:>12} {q['nodes']:>7} {q['edges']:>11,d} "
                f"{q['bytes'] * mb:>9.2f} {q['peak'] * mb:>9.2f} {r['full_bytes'] / q['bytes']:>9.1f}"
            )
    print("(held: the graph arrays kept; peak: tracemalloc peak while building; full/part: held bytes ratio)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats of Low-NN and slices (best of)")
    ap.add_argument("--metis-repeat", type=int, default=1, help="timing repeats of METIS (best of)")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_worker:
        path, r_cut, n_parts, halos = args.memory_worker
        memory_worker(path, float(r_cut), int(n_parts), [int(h) for h in halos.split(",")])
        return
    size = QUICK if args.quick else FULL
    big = amorphous_like_si(size["n_atoms"], seed=0)
    memory = None
    if not args.skip_memory:
        small, r_small, label = default_structure(args.quick)
        memory = run_memory_workers(
            [(f"{len(small)} at", small, r_small, 4), (f"{len(big)} at", big, size["r_cut"], size["mem_parts"])],
            halos=(1, 2),
        )
    compare_partitioners("cubic cell", big, size["r_cut"], size["parts"], args.repeat, args.metis_repeat)
    long = amorphous_like_si(size["n_atoms"] // 4, seed=0).repeat((4, 1, 1))
    compare_partitioners(
        "elongated cell (a quarter of the atoms tiled 4 x 1 x 1)",
        long,
        size["r_cut"],
        size["parts"],
        args.repeat,
        args.metis_repeat,
    )
    if memory is not None:
        print(f"default training structure: {label}, r_cut = {r_small} A")
        print_memory_table(memory)


if __name__ == "__main__":
    main()

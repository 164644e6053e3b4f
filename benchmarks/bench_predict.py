"""Prediction on tiled supercells: wall time per atom, peak RSS and where the time goes, side by side.

Default structure: a 216-atom a-Si-like cell (diamond Si 3 x 3 x 3 with 0.1 Angstrom random displacements), an
untrained model of the demo's size (config.yaml: r_cut 9, l_max 2, embed 16, 2 heads, FFN 64, 1 layer; seeded
weights, the cost does not depend on the values), Si SZV-MOLOPT-SR-GTH (s, p); S on the basis's overlap range
(default eps 1e-8: 11.45 Angstrom), so it has ~2x the edges of H.
Each tiling and mode runs in its own process so that its peak RSS is its own: ``stream`` is what ``hamforge
predict`` does (``hamforge.predict._stream``: parts through a row store on disk, memory of one part), ``memory``
the in-memory ``predict_structure`` + ``write_prediction`` (every block held until written; the API for small
structures and ``--parallel halo``). Prints one row per tiling and mode, the time per atom relative to the first
row of the same mode, and the file size per atom.

    python benchmarks/bench_predict.py                          # tilings 1 2 3 5, streamed, r_cut 9 Angstrom
    python benchmarks/bench_predict.py --tilings 3 8 12 --edge-reads-updated   # issue 20's must-show
    python benchmarks/bench_predict.py --tilings 3 8 --modes stream memory     # side by side
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

import numpy as np

SI = {"Si": ("Si", "SZV-MOLOPT-SR-GTH", (0, 1))}


def unit_cell(seed: int = 0):
    from hamforge.io import Structure

    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    frac = np.concatenate([base, base + 0.25])
    grid = np.indices((3, 3, 3)).reshape(3, -1).T
    a = 5.43
    x = ((grid[:, None, :] + frac[None]).reshape(-1, 3)) * a + rng.normal(0, 0.1, (216, 3))
    kinds = np.array(["Si"] * 216, dtype=object)
    return Structure(
        numbers=np.full(216, 14),
        positions=x,
        cell=np.eye(3) * 3 * a,
        pbc=np.ones(3, bool),
        kinds=kinds,
        source="a-Si-like 216",
    )


def small_model(unit, r_cut: float, layers: int, embed: int = 16, reads_updated: bool = False, net_r_cut=None):
    import scipy.sparse as sp
    import torch
    from hamforge.basis import ElementBasis, orbital_table
    from hamforge.graph import build_targets
    from hamforge.io import MatrixData
    from hamforge.model import HamiltonianModel, ModelConfig

    basis = {k: ElementBasis(*v) for k, v in SI.items()}
    eye = sp.identity(orbital_table(unit.kinds, basis).n_orbitals, format="csr")
    d = MatrixData(
        numbers=unit.numbers,
        positions=unit.positions,
        cell=unit.cell,
        pbc=unit.pbc,
        kinds=unit.kinds,
        basis=basis,
        H=eye,
        S=eye,
    )
    cfg = ModelConfig.from_targets(
        build_targets(d, r_cut),
        l_max=2,
        embed_dim=embed,
        n_heads=2,
        ffn_dim=64,
        n_layers=layers,
        edge_reads_updated=reads_updated,
        net_r_cut=net_r_cut,
    )
    return HamiltonianModel(cfg, seed=0).to(torch.float32)


def one(reps, r_cut, layers, atoms_per_part, embed, reads_updated=False, mode="stream", check=50_000, net_r_cut=None):
    import torch
    from hamforge.basis import ElementBasis, overlap_range
    from hamforge.predict import predict_structure, structure_kinds, write_prediction
    from hamforge.predict._stream import stream_prediction

    torch.set_num_threads(2)
    unit = unit_cell()
    model = small_model(unit, r_cut, layers, embed, reads_updated, net_r_cut)
    t0 = time.perf_counter()
    big = unit.tile((reps, reps, reps))
    with tempfile.TemporaryDirectory(dir=".") as d:
        out = Path(d) / "p.h5"
        if mode == "stream":
            s_range = overlap_range({k: ElementBasis(*v) for k, v in SI.items()}, eps=1e-8)
            kinds = structure_kinds(big, model.config)
            prov = stream_prediction(
                model, big, kinds, out, s_range=s_range, atoms_per_part=atoms_per_part, overlap_check_orbitals=check
            )
            n_edges = prov["n_edges"]
        else:
            pred = predict_structure(model, big, atoms_per_part=atoms_per_part, progress=False)
            prov = write_prediction(pred, out, {}, overlap_check_orbitals=check)
            n_edges = pred.nl.n_edges
        size = out.stat().st_size
        wall = time.perf_counter() - t0
        t_row = time.perf_counter()
        from hamforge.io import read_matrix_rows

        row_a = (big.positions.shape[0] // 2) * 4  # one block row (4 orbitals) in the middle of the file
        rows = read_matrix_rows(out, "H", slice(row_a, row_a + 4), image="all")
        row_ms = (time.perf_counter() - t_row) * 1e3
    return {
        "reps": reps,
        "mode": mode,
        "n_atoms": int(big.positions.shape[0]),
        "n_edges": int(n_edges),
        "n_edges_S": prov["n_edges_S"],
        "n_parts": prov["n_parts"],
        "wall_s": wall,
        "timings": prov["timings_s"],
        "file_MB": size / 1e6,
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "s_min_eig": prov.get("min_eigenvalue_S"),
        "row_ms": row_ms,
        "row_nnz": int(rows.nnz),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tilings", nargs="+", type=int, default=[1, 2, 3, 5])
    ap.add_argument("--rcut", type=float, default=9.0)
    ap.add_argument("--embed", type=int, default=16)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--atoms-per-part", type=int, default=2048)
    ap.add_argument(
        "--edge-reads-updated", action="store_true", help="model.edge_reads_updated (halo n_layers + 1, no pruning)"
    )
    ap.add_argument("--net-r-cut", type=float, default=None, help="model.net_r_cut (the demo: 6.5)")
    ap.add_argument("--modes", nargs="+", default=["stream"], choices=["stream", "memory"])
    ap.add_argument("--check-orbitals", type=int, default=50_000, help="S positivity check up to this size")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        r = one(
            args.one,
            args.rcut,
            args.layers,
            args.atoms_per_part,
            args.embed,
            args.edge_reads_updated,
            args.mode,
            args.check_orbitals,
            args.net_r_cut,
        )
        print(json.dumps(r))
        return 0
    rows = []
    for n, mode in [(n, m) for n in args.tilings for m in args.modes]:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(n),
            "--rcut",
            str(args.rcut),
            "--layers",
            str(args.layers),
            "--atoms-per-part",
            str(args.atoms_per_part),
            "--embed",
            str(args.embed),
            "--mode",
            mode,
            "--check-orbitals",
            str(args.check_orbitals),
        ]
        cmd += ["--edge-reads-updated"] if args.edge_reads_updated else []
        cmd += ["--net-r-cut", str(args.net_r_cut)] if args.net_r_cut else []
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            print(f"{n}^3: failed\n{res.stderr[-2000:]}")
            break
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"  done {n}^3 {mode}: {r['n_atoms']} atoms in {r['wall_s']:.1f} s", flush=True)
    steps = ["graph_s", "partition_s", "model_s", "uncouple_s", "symmetrize_s", "overlap_s", "write_s"]
    print(
        f"\nr_cut {args.rcut} A, {args.layers} layer(s), edge_reads_updated {args.edge_reads_updated}, l_max 2, "
        f"embed {args.embed}, float32, 2 threads, "
        f"{args.atoms_per_part} atoms per part"
    )
    head = (
        f"{'tiling':>7} {'mode':>6} {'atoms':>8} {'edges':>10} {'S edges':>10} {'parts':>5} {'wall s':>8} "
        f"{'ms/atom':>8} {'x first':>7} {'RSS MB':>7} {'file MB':>8} {'kB/atom':>7} {'row ms':>6} "
        + " ".join(f"{s[:-2]:>10}" for s in steps)
    )
    print(head)
    base = {}
    for r in rows:
        per = r["wall_s"] / r["n_atoms"]
        base.setdefault(r["mode"], per)
        print(
            f"{r['reps']:>5}^3 {r['mode']:>6} {r['n_atoms']:>8} {r['n_edges']:>10} {r['n_edges_S']:>10} "
            f"{r['n_parts']:>5} {r['wall_s']:>8.1f} {per * 1e3:>8.3f} {per / base[r['mode']]:>7.2f} "
            f"{r['peak_rss_MB']:>7.0f} {r['file_MB']:>8.1f} {r['file_MB'] * 1e3 / r['n_atoms']:>7.1f} "
            f"{r['row_ms']:>6.1f} " + " ".join(f"{r['timings'].get(s, 0.0):>10.2f}" for s in steps)
        )
    print("row ms: reading one block row (all images) of H back from the file (hamforge.io.read_matrix_rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

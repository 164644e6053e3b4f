"""Exact overlaps of a tiled diamond-Si cell: hamforge's streamed per-image blocks vs PySCF's dense pbc_intor.

For every tiling n^3 of the 8-atom diamond cell (n = 3 gives the 216-atom cell of the a-Si demo) with
SZV-MOLOPT-SR-GTH, each method runs in a fresh subprocess; the script prints wall time, peak memory
(high-water RSS of the subprocess minus its RSS just before the call) and, to show the scaling, the time per
atom, then the ratios pbc_intor / streamed side by side, and checks that the Gamma S agree. Times are CPU
seconds of the subprocess (all threads; wall time in parentheses): on a shared machine wall time mostly
measures the neighbours' load. Run with OMP_NUM_THREADS=1 for a like-for-like comparison.

- ``streamed``: ``hamforge.graph.neighbor_list`` at the overlap range (1e-12) plus
  ``hamforge.basis.iter_overlap_blocks``, every chunk's per-image blocks consumed and dropped (what a writer
  of S(R) to disk does): memory is the edge list plus one chunk.
- ``matrix``: ``hamforge.basis.overlap_matrix``, the sparse Gamma S (CSR, kept).
- ``pbc_intor``: ``pyscf.pbc.gto.Cell.pbc_intor('int1e_ovlp')``, the dense Gamma S (precision 1e-12).

    python benchmarks/bench_overlap.py              # n = 3, 4, 6 (216, 512, 1,728 atoms)
    python benchmarks/bench_overlap.py --quick      # n = 2, 3
    python benchmarks/bench_overlap.py --tilings 3 4 6 8 --max-pbc-atoms 1728
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

BASIS = {"Si": ("Si", "SZV-MOLOPT-SR-GTH")}


def _rss_bytes():
    import psutil

    return psutil.Process().memory_info().rss


def structure(n):
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((n, n, n))
    atoms.rattle(stdev=0.05, seed=1)
    return atoms


def _pyscf_cell(positions, cell):
    from hamforge.basis import resolve_cp2k_data_file
    from pyscf.gto.basis import parse_cp2k
    from pyscf.pbc import gto as pgto

    lines = resolve_cp2k_data_file("BASIS_MOLOPT").read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.split()[:2] == list(BASIS["Si"]))
    nexp = int(lines[k + 2].split()[3])
    c = pgto.Cell()
    c.atom = [("Si", p) for p in positions]
    c.a = cell
    c.unit = "A"
    c.basis = {"Si": parse_cp2k.parse("\n".join(lines[k : k + 3 + nexp]))}
    c.precision = 1e-12
    c.build()
    return c


def worker(method, path, chunk_atoms):
    """Runs in a fresh subprocess: load the structure, warm up, time the call, report JSON (and save S)."""
    data = np.load(path)
    x, cell = data["positions"], data["cell"]
    kinds = np.array(["Si"] * len(x))
    pbc = np.array([True, True, True])
    from hamforge.basis import iter_overlap_blocks, overlap_matrix, overlap_range
    from hamforge.graph import neighbor_list

    r_cut = overlap_range(BASIS)
    extra = {}
    if method == "streamed":

        def run():
            nl = neighbor_list(x, cell, pbc, r_cut)
            total, n_blocks = 0.0, 0
            for ch in iter_overlap_blocks(x, cell, kinds, BASIS, nl.edge_index, nl.shift, chunk_atoms=chunk_atoms):
                total += float(ch.edge_data.sum()) + float(ch.node_data.sum())
                n_blocks += ch.edges.shape[0]
            extra.update(n_edges=nl.n_edges, checksum=total)

        def warm():
            return overlap_matrix(x[:8], cell, pbc, kinds[:8], BASIS, r_cut=4.0)
    elif method == "matrix":

        def run():
            S = overlap_matrix(x, cell, pbc, kinds, BASIS, r_cut=r_cut, chunk_atoms=chunk_atoms)
            extra.update(nnz=int(S.nnz), checksum=float(S.sum()))
            return S

        def warm():
            return overlap_matrix(x[:8], cell, pbc, kinds[:8], BASIS, r_cut=4.0)
    else:

        def run():
            c = _pyscf_cell(x, cell)
            S = c.pbc_intor("int1e_ovlp", hermi=1)
            extra.update(checksum=float(S.sum()))
            return S

        def warm():
            return _pyscf_cell(x[:2], np.eye(3) * 30.0)

    warm()  # imports and first-call work outside the measurement
    before = _rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    out = run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    if method in ("matrix", "pbc_intor") and out.shape[0] <= 8000:  # dense copy for the comparison
        np.save(path + f".{method}.npy", out.toarray() if method == "matrix" else out)
    print(
        json.dumps(dict(method=method, seconds=seconds, cpu=cpu, peak_mb=(peak - before) / 2**20, r_cut=r_cut, **extra))
    )


def measure(method, atoms, tmp, chunk_atoms):
    path = os.path.join(tmp, f"structure_{len(atoms)}.npz")
    np.savez(path, positions=atoms.positions, cell=np.asarray(atoms.cell))
    cmd = [sys.executable, __file__, "--worker", method, "--input", path, "--chunk-atoms", str(chunk_atoms)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{method} worker failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1]), path


def _t(r):
    return f"{r['cpu']:.2f} ({r['seconds']:.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tilings 2 and 3 only")
    ap.add_argument("--tilings", type=int, nargs="*", default=None)
    ap.add_argument("--max-pbc-atoms", type=int, default=1728, help="largest cell given to pbc_intor (dense S)")
    ap.add_argument("--chunk-atoms", type=int, default=None)
    ap.add_argument("--worker", choices=["streamed", "matrix", "pbc_intor"], help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from hamforge.basis._overlap import DEFAULT_CHUNK_ATOMS

    chunk = args.chunk_atoms or DEFAULT_CHUNK_ATOMS
    if args.worker:
        worker(args.worker, args.input, chunk)
        return
    tilings = args.tilings or ([2, 3] if args.quick else [3, 4, 6])
    print(
        f"diamond Si n^3 tilings, {BASIS['Si'][1]}, chunk_atoms = {chunk}, threads: "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    head = (
        f"{'atoms':>6s} {'orbitals':>8s} {'edges':>10s} | {'streamed s (wall)':>17s} {'MB':>6s} {'ms/atom':>7s} | "
        f"{'matrix s (wall)':>15s} {'MB':>6s} | {'pbc_intor s (wall)':>18s} {'MB':>6s} {'ms/atom':>7s} | "
        f"{'time ratio':>10s} {'mem ratio':>9s} | {'max |dS|':>8s}"
    )
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for n in tilings:
            atoms = structure(n)
            na = len(atoms)
            st, _ = measure("streamed", atoms, tmp, chunk)
            mx, path = measure("matrix", atoms, tmp, chunk)
            if na <= args.max_pbc_atoms:
                pb, _ = measure("pbc_intor", atoms, tmp, chunk)
                ours = np.load(path + ".matrix.npy")
                ref = np.load(path + ".pbc_intor.npy")
                k = np.arange(ref.shape[0]).reshape(-1, 4)  # per atom: s, p_x, p_y, p_z in PySCF
                perm = k[:, [0, 2, 3, 1]].reshape(-1)  # CP2K: s, p_y, p_z, p_x
                diff = float(np.abs(ref[np.ix_(perm, perm)] - ours).max())
                pb_cols = (
                    f"{_t(pb):>18s} {pb['peak_mb']:6.0f} {1e3 * pb['cpu'] / na:7.2f} | "
                    f"{pb['cpu'] / st['cpu']:9.1f}x {pb['peak_mb'] / max(st['peak_mb'], 1):8.1f}x | "
                    f"{diff:8.1e}"
                )
                del ours, ref
            else:
                pb_cols = f"{'(skipped)':>18s} {'':>6s} {'':>7s} | {'':>10s} {'':>9s} | {'':>8s}"
            print(
                f"{na:6d} {4 * na:8d} {st['n_edges']:10,d} | {_t(st):>17s} {st['peak_mb']:6.0f} "
                f"{1e3 * st['cpu'] / na:7.2f} | {_t(mx):>15s} {mx['peak_mb']:6.0f} | {pb_cols}",
                flush=True,
            )
    print(
        "ratios: pbc_intor / streamed. Linear scaling shows as a constant ms/atom (the overlap range "
        f"{st['r_cut']:.1f} A fixes the work per atom)."
    )


if __name__ == "__main__":
    main()

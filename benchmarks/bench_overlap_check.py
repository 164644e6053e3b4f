"""Positive-definiteness check of S: Lanczos (hamforge.dft.check_overlap) vs a dense eigvalsh, side by side.

The overlap matrix is a model one with the sparsity of a real S: s-type Gaussians (width 1.2 Angstrom) on a
jittered diamond-Si supercell, cut off at 6 Angstrom (the Gaussian kernel is positive definite; the cut-off
keeps it so at this width). Dense eigvalsh runs only where it fits in time and memory.

    .venv/bin/python benchmarks/bench_overlap_check.py [--sizes 3 5 8 12] [--dense-max 4000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp


def model_overlap(repeat: int, seed: int = 0) -> sp.csr_matrix:
    from ase.build import bulk
    from ase.neighborlist import neighbor_list

    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((repeat,) * 3)
    rng = np.random.default_rng(seed)
    atoms.positions += rng.normal(scale=0.2, size=atoms.positions.shape)
    i, j, d = neighbor_list("ijd", atoms, 6.0)
    n = len(atoms)
    vals = np.exp(-(d**2) / (4 * 1.2**2))
    s = sp.csr_matrix((vals, (i, j)), shape=(n, n)) + sp.identity(n, format="csr")
    return s.tocsr()


def main() -> None:
    from hamforge.dft import check_overlap

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 8, 12], help="supercell repeats (8 n^3 atoms)")
    ap.add_argument("--dense-max", type=int, default=4000, help="largest n for the dense reference")
    args = ap.parse_args()
    print(f"{'n':>8} {'nnz':>10} {'lanczos_s':>10} {'dense_s':>9} {'ratio':>7} {'lam_lanczos':>12} {'lam_dense':>12}")
    for r in args.sizes:
        s = model_overlap(r)
        n = s.shape[0]
        t0 = time.perf_counter()
        lam = check_overlap(s, "model S")
        t_l = time.perf_counter() - t0
        t_d, lam_d = float("nan"), float("nan")
        if n <= args.dense_max:
            d = 1 / np.sqrt(s.diagonal())
            t0 = time.perf_counter()
            lam_d = float(np.linalg.eigvalsh((s.multiply(d[:, None]).multiply(d[None, :])).toarray())[0])
            t_d = time.perf_counter() - t0
        print(f"{n:>8} {s.nnz:>10} {t_l:>10.3f} {t_d:>9.3f} {t_d / t_l:>7.1f} {lam:>12.6g} {lam_d:>12.6g}")


if __name__ == "__main__":
    main()

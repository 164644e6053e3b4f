"""Dense generalized eigh vs shift-invert Lanczos (k states around an energy) against the number of orbitals.

Matrices: an amorphous-like Si cell (``_structures.amorphous_like_si``) with 4 orbitals per atom (SZV-like),
atoms within 6 A coupled by random 4x4 blocks decaying with distance; S is made diagonally dominant (so
positive definite) and H symmetric. Dense: ``scipy.linalg.eigh(H, S)`` (all states); shift-invert:
``hamforge.validate.generalized_spectrum`` with ``k`` states around sigma = 0 (one sparse LU + two Lanczos
runs). Prints both times side by side with their ratio and the largest difference on the shared states.

    python benchmarks/bench_eigen.py                  # 864 .. 6912 orbitals (dense up to 3456)
    python benchmarks/bench_eigen.py --sizes 216 432  # atoms
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from _structures import amorphous_like_si
from scipy.spatial import cKDTree


def matrices(n_atoms: int, seed: int = 0, r_cut: float = 6.0, n_orb: int = 4):
    atoms = amorphous_like_si(n_atoms, seed=seed)
    pos, length = atoms.positions, atoms.cell[0, 0]
    tree = cKDTree(np.mod(pos, length), boxsize=length)
    pairs = tree.query_pairs(r_cut, output_type="ndarray")
    d = pos[pairs[:, 1]] - pos[pairs[:, 0]]
    d -= length * np.round(d / length)
    dist = np.linalg.norm(d, axis=1)
    rng = np.random.default_rng(seed)
    blocks_h = rng.normal(size=(len(pairs), n_orb, n_orb)) * np.exp(-dist / 1.5)[:, None, None]
    blocks_s = rng.normal(size=(len(pairs), n_orb, n_orb)) * 0.3 * np.exp(-dist / 1.0)[:, None, None]
    o = np.arange(n_orb)
    rows = (pairs[:, 0, None, None] * n_orb + o[None, :, None]).repeat(n_orb, axis=2)
    cols = (pairs[:, 1, None, None] * n_orb + o[None, None, :]).repeat(n_orb, axis=1)
    n = n_atoms * n_orb
    up_h = sp.coo_matrix((blocks_h.ravel(), (rows.ravel(), cols.ravel())), shape=(n, n))
    up_s = sp.coo_matrix((blocks_s.ravel(), (rows.ravel(), cols.ravel())), shape=(n, n))
    s_off = (up_s + up_s.T).tocsr()
    s = s_off + sp.diags(1.0 + np.asarray(abs(s_off).sum(axis=1)).ravel())  # diagonally dominant: PD
    onsite = np.tile(np.array([-0.4, 0.1, 0.1, 0.1]), n_atoms) + 0.05 * rng.normal(size=n)
    h = (up_h + up_h.T + sp.diags(onsite)).tocsr()
    return h, s.tocsr()


def main() -> None:
    from hamforge.validate import generalized_spectrum

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[216, 432, 864, 1728], help="atoms (x4 orbitals)")
    ap.add_argument("--dense-max", type=int, default=3456, help="largest orbital count solved densely")
    ap.add_argument("--k", type=int, default=50)
    args = ap.parse_args()
    print(f"{'orbitals':>9} {'nnz(H)':>10} {'dense s':>9} {'shift-inv s':>12} {'dense/si':>9} {'max |diff| Ha':>14}")
    for n_atoms in args.sizes:
        h, s = matrices(n_atoms)
        n = h.shape[0]
        t0 = time.perf_counter()
        win = generalized_spectrum(h, s, dense_limit=0, k=args.k, sigma=0.0)
        t_si = time.perf_counter() - t0
        if n <= args.dense_max:
            t0 = time.perf_counter()
            dense = generalized_spectrum(h, s, dense_limit=n)
            t_d = time.perf_counter() - t0
            diff = float(np.max(np.abs(dense.energies[win.index] - win.energies)))
            print(f"{n:9d} {h.nnz:10d} {t_d:9.2f} {t_si:12.2f} {t_d / t_si:9.1f} {diff:14.2e}")
        else:
            print(f"{n:9d} {h.nnz:10d} {'-':>9} {t_si:12.2f} {'-':>9} {'-':>14}")


if __name__ == "__main__":
    main()

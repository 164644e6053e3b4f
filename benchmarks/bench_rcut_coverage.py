"""How much of H each graph cutoff leaves out, and what it costs: choosing r_cut by measurement.

    python benchmarks/bench_rcut_coverage.py results/a-Si/dft/*.h5 [--rcut 6 7 8 9 10 12]

For each cutoff: edges per atom (the cost of training and prediction grows with it), the fraction of sum |H| of
off-site blocks beyond the cutoff, and the largest |H| element left out (meV), over all given matrix files,
printed side by side (the coverage report of the targets stage, for several cutoffs at once).
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np


def main() -> None:
    from hamforge.graph import coverage_report, fold_map, neighbor_list
    from hamforge.io import read_matrix_file
    from hamforge.io.units import HARTREE_TO_MEV

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("matrices", nargs="+")
    ap.add_argument("--rcut", type=float, nargs="+", default=[6.0, 7.0, 8.0, 9.0, 10.0, 12.0])
    a = ap.parse_args()
    data = [read_matrix_file(p) for p in a.matrices]
    print(f"{len(data)} structures, {data[0].n_atoms} atoms each")
    print(f"{'r_cut (A)':>9} {'edges/atom':>11} {'|H| beyond (fraction)':>22} {'max |H| beyond (meV)':>21}")
    for r in a.rcut:
        edges, beyond, total, worst = 0, 0.0, 0.0, 0.0
        for d in data:
            nl = neighbor_list(d.positions, d.cell, d.pbc, r)
            _, blocks = coverage_report(d, SimpleNamespace(pair_index=fold_map(nl)[0]))
            out = ~blocks["covered"].to_numpy()
            edges += nl.n_edges
            beyond += float(blocks["sum_abs"].to_numpy()[out].sum())
            total += float(blocks["sum_abs"].sum())
            worst = max(worst, float(blocks["max_abs"].to_numpy()[out].max()) if out.any() else 0.0)
        n = sum(d.n_atoms for d in data)
        print(f"{r:>9.1f} {edges / n:>11.1f} {beyond / total:>22.3e} {worst * HARTREE_TO_MEV:>21.3f}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

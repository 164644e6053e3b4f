"""RGF time per energy point against device length: should grow linearly with the number of principal layers.

Device: a random non-orthogonal multi-orbital chain of L principal layers of n orbitals (block-tridiagonal),
leads repeating its end layers. Times ``hamforge.validate.transmission`` (Sancho-Rubio leads + RGF, batched
over energies) and the lead self-energies alone; prints per energy point the total, the leads' part (fixed)
and the RGF part (total - leads), the RGF part per layer, and its ratio to the shortest device next to the
ratio of lengths; also a dense inversion of the whole device for comparison (cubic in L) up to --dense-max.

    python benchmarks/bench_rgf.py                       # n = 40 orbitals per layer, L = 8 .. 128
    python benchmarks/bench_rgf.py --n 20 --layers 4 8 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp


def device(n: int, n_layers: int, seed: int = 0):
    from hamforge.validate import layered_device

    rng = np.random.default_rng(seed)

    def sym(a):
        return 0.5 * (a + a.T)

    diag_h = [sym(rng.normal(size=(n, n))) for _ in range(n_layers)]
    diag_s = [np.eye(n) + 0.02 * sym(rng.normal(size=(n, n))) for _ in range(n_layers)]
    up_h = [0.3 * rng.normal(size=(n, n)) for _ in range(n_layers - 1)]
    up_s = [0.01 * rng.normal(size=(n, n)) for _ in range(n_layers - 1)]
    h = sp.block_diag(diag_h, format="lil")
    s = sp.block_diag(diag_s, format="lil")
    for i in range(n_layers - 1):
        a, b = slice(i * n, (i + 1) * n), slice((i + 1) * n, (i + 2) * n)
        h[a, b], h[b, a] = up_h[i], up_h[i].T
        s[a, b], s[b, a] = up_s[i], up_s[i].T
    coord = np.repeat(np.arange(n_layers, dtype=float), n)
    return layered_device(h.tocsr(), s.tocsr(), coord, np.arange(n * n_layers), thickness=1.0), h.toarray(), s.toarray()


def main() -> None:
    from hamforge.validate import leads_from_device, self_energies, transmission

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="orbitals per layer")
    ap.add_argument("--layers", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--ne", type=int, default=32, help="energy points")
    ap.add_argument("--dense-max", type=int, default=32, help="largest L also inverted densely")
    args = ap.parse_args()
    energies = np.linspace(-1.0, 1.0, args.ne)
    eta = 1e-6
    print(f"n = {args.n} orbitals per layer, {args.ne} energies, eta = {eta:g} Ha")
    print(f"{'layers':>7} {'total ms/E':>10} {'leads ms/E':>10} {'RGF ms/E':>9} {'RGF/layer':>10} {'RGF ratio':>10}"
          f" {'length ratio':>13} {'dense ms/E':>11} {'max |dT|':>9}")  # fmt: skip
    base = None
    for nl in args.layers:
        dev, h, s = device(args.n, nl)
        left, right = leads_from_device(dev)
        transmission(dev, energies[:2], eta, left, right)  # warm-up
        t0 = time.perf_counter()
        t = transmission(dev, energies, eta, left, right).transmission
        per_e = (time.perf_counter() - t0) / args.ne * 1e3
        t0 = time.perf_counter()
        self_energies(dev, energies, eta, left, right)
        lead_e = (time.perf_counter() - t0) / args.ne * 1e3
        rgf_e = per_e - lead_e
        base = base or (rgf_e, nl)
        dense_txt, diff_txt = "-", "-"
        if nl <= args.dense_max:
            sl, sr = self_energies(dev, energies, eta, left, right)
            t0 = time.perf_counter()
            td = []
            for k, e in enumerate(energies):
                a = (e + 1j * eta) * s - h
                a[: args.n, : args.n] -= sl[k]
                a[-args.n :, -args.n :] -= sr[k]
                g = np.linalg.inv(a)[: args.n, -args.n :]
                gl, gr = 1j * (sl[k] - sl[k].conj().T), 1j * (sr[k] - sr[k].conj().T)
                td.append(np.trace(gl @ g @ gr @ g.conj().T).real)
            dense_txt = f"{(time.perf_counter() - t0) / args.ne * 1e3:.2f}"
            diff_txt = f"{np.max(np.abs(np.array(td) - t)):.1e}"
        print(f"{nl:7d} {per_e:10.2f} {lead_e:10.2f} {rgf_e:9.2f} {rgf_e / nl:10.3f} {rgf_e / base[0]:10.2f}"
              f" {nl / base[1]:13.2f} {dense_txt:>11} {diff_txt:>9}")  # fmt: skip


if __name__ == "__main__":
    main()

"""SO(2) convolution (hamforge.model.SO2Convolution) vs e3nn's FullyConnectedTensorProduct, same messages.

Both map per-edge features with (l_max+1)^2 components x C channels to the same irreps:

* ours: rotate into the edge frame (Wigner-D of the edge rotation), one linear map per order m
  (|m| <= m_max = l_max) mixing all l >= |m| with per-edge radial weights, rotate back;
* e3nn: ``o3.FullyConnectedTensorProduct(C x (0e+1o+2e+...), sh(0e+1o+...), C x (0e+1o+2e+...))`` of the
  features with the spherical harmonics of the edge direction (all allowed paths, shared weights: cheaper
  than the per-edge weights a real e3nn message layer would use, so the ratio is conservative).

Times are best of --repeat (after one warm-up); "ours" includes building the edge-frame Wigner matrices,
"ours (conv)" reuses them (a model builds them once per graph and shares them between all layers),
"e3nn" includes the spherical harmonics. Forward and forward+backward, messages per second.

    python benchmarks/bench_so2_conv.py            # E = 20,000 messages, C = 16
    python benchmarks/bench_so2_conv.py --quick    # E = 2,000, C = 8
"""

from __future__ import annotations

import argparse
import time

import torch


def _best(fn, repeat: int) -> float:
    fn()  # warm-up (e3nn compiles its code on the first call)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _bench(l_max: int, n_edges: int, channels: int, repeat: int) -> dict:
    from e3nn import o3
    from hamforge.model import EdgeWigner, SO2Convolution

    gen = torch.Generator().manual_seed(l_max)
    k = (l_max + 1) ** 2
    x = torch.randn(n_edges, k, channels, generator=gen)
    vec = torch.randn(n_edges, 3, generator=gen)

    conv = SO2Convolution(l_max, l_max, channels, channels)
    conv._reset(gen)
    radial = torch.randn(n_edges, conv.radial_size, generator=gen)
    wigner = EdgeWigner.from_vectors(vec, l_max, l_max)

    irreps = o3.Irreps("+".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(l_max + 1)))
    sh_irreps = o3.Irreps.spherical_harmonics(l_max)
    tp = o3.FullyConnectedTensorProduct(irreps, sh_irreps, irreps, shared_weights=True)
    # same numbers in e3nn's layout: per l, channel-major blocks of 2l+1 components
    x_e3nn = torch.cat(
        [x[:, l * l : (l + 1) ** 2].transpose(1, 2).reshape(n_edges, -1) for l in range(l_max + 1)], dim=1
    )

    def ours():
        return conv(x, EdgeWigner.from_vectors(vec, l_max, l_max), radial)[0]

    def ours_conv():
        return conv(x, wigner, radial)[0]

    def e3nn():
        return tp(x_e3nn, o3.spherical_harmonics(sh_irreps, vec, normalize=True))

    def backward(fn, inputs):
        def run():
            for t in inputs:
                t.grad = None
            fn().square().sum().backward()

        return run

    res = {
        "l_max": l_max,
        "E": n_edges,
        "C": channels,
        "params_ours": sum(p.numel() for p in conv.parameters()),
        "params_e3nn": tp.weight_numel,
        "paths_e3nn": len(tp.instructions),
    }
    with torch.no_grad():
        res["fwd"] = {
            name: _best(fn, repeat) for name, fn in (("ours", ours), ("ours_conv", ours_conv), ("e3nn", e3nn))
        }
    x.requires_grad_(True)
    x_e3nn.requires_grad_(True)
    res["fwd_bwd"] = {
        "ours": _best(backward(ours, [x, *conv.parameters()]), repeat),
        "e3nn": _best(backward(e3nn, [x_e3nn, *tp.parameters()]), repeat),
    }
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="E = 2,000 messages, C = 8")
    ap.add_argument("--edges", type=int, default=None, help="messages per call (default 20,000)")
    ap.add_argument("--channels", type=int, default=None, help="channels C (default 16)")
    ap.add_argument("--repeat", type=int, default=None, help="timed repetitions (best is kept)")
    ap.add_argument("--lmax", type=int, nargs="+", default=[2, 4, 6])
    args = ap.parse_args(argv)
    n_edges = args.edges or (2_000 if args.quick else 20_000)
    channels = args.channels or (8 if args.quick else 16)
    repeat = args.repeat or (2 if args.quick else 3)

    print(
        f"SO(2) convolution vs e3nn FullyConnectedTensorProduct: E = {n_edges} messages, C = {channels} "
        f"channels, torch {torch.__version__}, {torch.get_num_threads()} threads, best of {repeat}"
    )
    print(
        f"{'l_max':>5} {'paths':>6} {'w ours':>8} {'w e3nn':>8} | forward msg/s: "
        f"{'ours':>9} {'ours conv':>9} {'e3nn':>9} {'ratio':>6} {'conv':>6} | fwd+bwd msg/s: "
        f"{'ours':>9} {'e3nn':>9} {'ratio':>6}"
    )
    for l_max in args.lmax:
        r = _bench(l_max, n_edges, channels, repeat)
        f, b = r["fwd"], r["fwd_bwd"]
        rate = lambda t: n_edges / t  # noqa: E731
        print(
            f"{l_max:>5} {r['paths_e3nn']:>6} {r['params_ours']:>8} {r['params_e3nn']:>8} | {'':>14}"
            f"{rate(f['ours']):>9.3g} {rate(f['ours_conv']):>9.3g} {rate(f['e3nn']):>9.3g} "
            f"{f['e3nn'] / f['ours']:>5.1f}x {f['e3nn'] / f['ours_conv']:>5.1f}x | {'':>14}"
            f"{rate(b['ours']):>9.3g} {rate(b['e3nn']):>9.3g} {b['e3nn'] / b['ours']:>5.1f}x",
            flush=True,
        )
    print(
        "ratio = e3nn time / ours time, ours including the Wigner-D matrices of the edge frames; conv = "
        "without them (a model builds them once per graph for all layers); > 1: ours faster"
    )


if __name__ == "__main__":
    main()

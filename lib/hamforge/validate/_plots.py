"""Validation figures (matplotlib Agg, PNG, written atomically): parity, |error| vs distance, spectra + DOS, T(E)."""

from __future__ import annotations

import os

import numpy as np

from hamforge.io import atomic_path
from hamforge.io.units import HARTREE_TO_EV, HARTREE_TO_MEV
from hamforge.validate._eigmetrics import DOS_WIDTH, gaussian_dos
from hamforge.validate._elements import ElementComparison
from hamforge.validate._spectrum import Spectrum

__all__ = ["plot_error_vs_distance", "plot_parity", "plot_spectra", "plot_transmission"]

_MAX_POINTS = 20000  # points drawn per panel (random subsample, seeded): enough to see the cloud


def _figure(*args, **kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(*args, **kw)


def _save(plt, fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _subsample(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, _MAX_POINTS, replace=False)) if n > _MAX_POINTS else np.arange(n)


def plot_parity(cmp: ElementComparison, symbols: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """Predicted vs reference matrix elements (eV), one panel per element pair (e.g. Hf-O), y = x drawn."""
    si, sj = np.asarray(symbols)[cmp.atom_i], np.asarray(symbols)[cmp.atom_j]
    lo = np.where(si <= sj, si, sj)
    hi = np.where(si <= sj, sj, si)
    label = np.char.add(np.char.add(lo.astype(str), "-"), hi.astype(str))
    pairs = sorted(set(label.tolist()))
    ncol = min(3, len(pairs))
    nrow = -(-len(pairs) // ncol)
    plt, fig, axes = _figure(nrow, ncol, figsize=(4 * ncol, 4 * nrow), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, p in zip(axes.flat, pairs):
        sel = np.flatnonzero(label == p)
        sel = sel[_subsample(sel.size, rng)]
        r, q = cmp.ref[sel] * HARTREE_TO_EV, cmp.pred[sel] * HARTREE_TO_EV
        lim = [min(r.min(), q.min()), max(r.max(), q.max())]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.scatter(r, q, s=3, alpha=0.5)
        ax.set_title(f"{p} ({np.count_nonzero(label == p)} elements)")
        ax.set_xlabel("reference H (eV)")
        ax.set_ylabel("predicted H (eV)")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    _save(plt, fig, path)


def plot_error_vs_distance(
    cmp: ElementComparison, path: str | os.PathLike, title: str = "", distance_mae: list | None = None
) -> None:
    """|H_pred - H_ref| (meV, log scale) against the atoms' minimum-image distance, with binned mean and max;
    with ``distance_mae`` (``hamforge evaluate``'s ``by_distance`` rows) also the per-bin MAE of the model and of its
    physics baselines alone on the learning targets, as steps."""
    err = np.abs(cmp.error) * HARTREE_TO_MEV
    plt, fig, ax = _figure(figsize=(6, 4))
    sel = _subsample(err.size, np.random.default_rng(0))
    floor = 1e-9
    ax.scatter(cmp.distance[sel], np.maximum(err[sel], floor), s=2, alpha=0.3, label="elements")
    if err.size:
        edges = np.linspace(0.0, cmp.distance.max() + 1e-9, 30)
        b = np.clip(np.digitize(cmp.distance, edges) - 1, 0, len(edges) - 2)
        cnt = np.bincount(b, minlength=len(edges) - 1)
        mean = np.bincount(b, weights=err, minlength=len(edges) - 1) / np.maximum(cnt, 1)
        mx = np.zeros(len(edges) - 1)
        np.maximum.at(mx, b, err)
        c = 0.5 * (edges[1:] + edges[:-1])
        ok = cnt > 0
        ax.plot(c[ok], np.maximum(mean[ok], floor), "k-", label="bin mean")
        ax.plot(c[ok], np.maximum(mx[ok], floor), "r--", label="bin max")
    for key, style, label in (("model_mae_meV", "b-", "model MAE"), ("baseline_mae_meV", "g-", "baselines alone")):
        rows = [r for r in distance_mae or [] if r.get(key) is not None]
        if rows:
            xs = [r["r_min_A"] for r in rows] + [rows[-1]["r_max_A"]]
            ys = [max(r[key], floor) for r in rows]
            ax.stairs(ys, xs, baseline=None, color=style[0], lw=1.5, label=f"{label} (targets)")
    ax.set_yscale("log")
    ax.set_xlabel("interatomic distance (A, minimum image)")
    ax.set_ylabel("|H_pred - H_ref| (meV)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save(plt, fig, path)


def plot_spectra(
    pred: Spectrum,
    ref: Spectrum,
    path: str | os.PathLike,
    *,
    fermi: float | None = None,
    width: float = DOS_WIDTH,
    title: str = "",
) -> None:
    """Left: eigenvalue vs state index; right: Gaussian-broadened DOS of both (eV); Fermi level dashed."""
    plt, fig, (a1, a2) = _figure(1, 2, figsize=(11, 4))
    for spec, name, style in ((ref, "reference", "k-"), (pred, "prediction", "r--")):
        a1.plot(spec.index, spec.energies * HARTREE_TO_EV, style, lw=1, label=name)
    lo = min(pred.energies.min(), ref.energies.min()) - 5 * width
    hi = max(pred.energies.max(), ref.energies.max()) + 5 * width
    grid = np.linspace(lo, hi, 2000)
    for spec, name, style in ((ref, "reference", "k-"), (pred, "prediction", "r--")):
        a2.plot(grid * HARTREE_TO_EV, gaussian_dos(spec.energies, grid, width) / HARTREE_TO_EV, style, lw=1, label=name)
    if fermi is not None:
        for ax, vertical in ((a1, False), (a2, True)):
            (ax.axvline if vertical else ax.axhline)(fermi * HARTREE_TO_EV, color="grey", ls=":", lw=1)
    a1.set_xlabel("state index")
    a1.set_ylabel("energy (eV)")
    a2.set_xlabel("energy (eV)")
    a2.set_ylabel(f"DOS (states/eV, Gaussian sigma {width * HARTREE_TO_EV:.3g} eV)")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.suptitle(title)
    _save(plt, fig, path)


def plot_transmission(
    energies: np.ndarray,
    curves: dict,
    path: str | os.PathLike,
    *,
    mu: float | None = None,
    window: tuple[float, float] | None = None,
    title: str = "",
) -> None:
    """T(E) of one or more devices on a log scale; ``curves`` maps a label to T on ``energies`` (Hartree);
    ``mu`` is drawn as a dotted line, ``window`` (Hartree) shaded."""
    plt, fig, ax = _figure(figsize=(6, 4))
    e = np.asarray(energies) * HARTREE_TO_EV
    if window is not None:
        ax.axvspan(window[0] * HARTREE_TO_EV, window[1] * HARTREE_TO_EV, color="0.92", lw=0, label="compared window")
    for (name, t), style in zip(curves.items(), ("k-", "r--", "b:", "g-.")):
        ax.plot(e, np.maximum(np.asarray(t), 1e-30), style, lw=1, label=name)
    if mu is not None:
        ax.axvline(mu * HARTREE_TO_EV, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("energy (eV)")
    ax.set_ylabel("transmission T(E)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save(plt, fig, path)

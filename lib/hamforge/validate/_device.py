"""Transport predicted vs DFT of one structure along an axis: the energy grid around the band edges, the metrics.

Definitions (docs/validation.md). Both devices are cut open along the axis (``cut_open``) and layered with one
thickness (the larger interaction range); T(E) is computed on one grid. With E_HOMO, E_LUMO the reference's
band edges (its periodic cell's Gamma-point spectrum) and w the configured window::

    transport_log10_max_abs_error = max_{E in [E_HOMO - w, E_LUMO + w]} |log10 T_pred(E) - log10 T_ref(E)|

with T floored at ``T_FLOOR``. Conductance and current are taken at each Hamiltonian's own Fermi level (midgap of
its own spectrum, as a device simulation with that Hamiltonian would): G = G0 T(E_F) (zero-temperature linear
response), I at the configured bias (Landauer, ``landauer_current``) and ``current_ratio = I_pred / I_ref``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hamforge.io import write_csv_atomic
from hamforge.io.units import HARTREE_TO_EV
from hamforge.validate._current import G0_SIEMENS, KB_HARTREE_PER_K
from hamforge.validate._layers import TransportError

__all__ = ["T_FLOOR", "compare_transport", "transport_grid", "validate_device"]

logger = logging.getLogger(__name__)

# Transmissions below this are compared as this (log10 of 0 is -inf; T < 1e-30 is numerical noise here).
T_FLOOR = 1e-30
# The current integral needs the Fermi window (``_current._WINDOW_KT`` = 40 kT) on the grid: 41 kT leaves a margin.
_GRID_KT = 41.0


def transport_grid(window: tuple[float, float], fermi_levels, *, step: float, bias: float, temperature: float):
    """Ascending energies (Hartree) with spacing ``<= step`` covering ``window`` and, around every Fermi level,
    the bias window widened by 41 kT (so the Landauer integral is complete); the Fermi levels are grid points."""
    if not step > 0:
        raise TransportError(f"energy step must be > 0, got {step} Ha")
    fermi_levels = np.asarray(fermi_levels, dtype=np.float64)
    half = 0.5 * abs(float(bias)) / HARTREE_TO_EV + _GRID_KT * KB_HARTREE_PER_K * float(temperature)
    lo = min(float(window[0]), float(fermi_levels.min()) - half)
    hi = max(float(window[1]), float(fermi_levels.max()) + half)
    n = int(np.ceil((hi - lo) / step)) + 1
    grid = np.linspace(lo, hi, n)
    # insert the Fermi levels, dropping grid points closer than step / 100 to one (no near-duplicate energies)
    near = np.min(np.abs(grid[:, None] - fermi_levels[None, :]), axis=1) < 1e-2 * step
    return np.unique(np.concatenate([grid[~near], fermi_levels]))


def compare_transport(
    pred_path: str | os.PathLike,
    ref_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    axis,
    homo_ref: float,
    lumo_ref: float,
    fermi_pred: float,
    fermi_ref: float,
    window: float,
    step: float,
    eta: float,
    bias: float,
    temperature: float = 300.0,
    wide_band: float | None = None,
    thickness: float | None = None,
    plots: bool = True,
) -> dict:
    """T(E) of predicted and reference devices, the metrics of the module docstring; writes ``transmission.csv``
    (``E_Ha,E_eV,T_pred,T_ref,in_window``) and ``transmission.png`` in ``out_dir``. Energies Hartree, bias V."""
    from hamforge.validate._pipeline import device_cuts
    from hamforge.validate._transport import run_transport, transport_setup

    files = {"pred": pred_path, "ref": ref_path}
    cuts, thickness = device_cuts(files, axis, thickness)
    lo, hi = homo_ref - window, lumo_ref + window
    energies = transport_grid((lo, hi), [fermi_pred, fermi_ref], step=step, bias=bias, temperature=temperature)
    runs, setups = {}, {}
    for name, mu in (("pred", fermi_pred), ("ref", fermi_ref)):
        data, cut = cuts[name]
        src = str(files[name])
        setups[name] = transport_setup(data, axis, thickness=thickness, wide_band=wide_band, source=src, cut=cut)
        runs[name] = run_transport(setups[name], energies, eta=eta, biases=[bias], mu=mu, temperature=temperature)
        logger.info(
            "%s: device cut by %s, %d principal layers (%s orbitals), T(E) at %d energies",
            src,
            cut.route,
            setups[name].device.n_layers,
            setups[name].device.layer_sizes.tolist(),
            energies.size,
        )
    tp, tr = (np.maximum(runs[n].transmission, T_FLOOR) for n in ("pred", "ref"))
    inside = (energies >= lo) & (energies <= hi)
    dlog = np.abs(np.log10(tp) - np.log10(tr))
    solved = inside & np.isfinite(dlog)  # energies a lead could not be solved at are NaN and reported, not compared
    if not solved.any():
        raise TransportError(f"no energy of the window [{lo:.6g}, {hi:.6g}] Ha solved for both files")

    def at(name, e0):
        t = runs[name].transmission
        ok = np.isfinite(t)
        return float(np.interp(e0, energies[ok], t[ok]))

    g = {n: at(n, mu) for n, mu in (("pred", fermi_pred), ("ref", fermi_ref))}
    i_pred, i_ref = float(runs["pred"].current[0]), float(runs["ref"].current[0])
    ref_cut = cuts["ref"][1]
    m = {
        "transport_axis": str(axis),
        "transport_routes": {n: cuts[n][1].route for n in cuts},
        "transport_cell_length_A": ref_cut.length,
        "transport_range_ref_A": ref_cut.range,
        "transport_thickness_A": setups["ref"].device.thickness,
        "transport_layers": int(setups["ref"].device.n_layers),
        "transport_window_eV": [lo * HARTREE_TO_EV, hi * HARTREE_TO_EV],
        "transport_n_energies": int(energies.size),
        "transport_energy_step_eV": step * HARTREE_TO_EV,
        "transport_eta_eV": eta * HARTREE_TO_EV,
        "transport_temperature_K": float(temperature),
        "transport_wide_band_eV": None if wide_band is None else wide_band * HARTREE_TO_EV,
        "transport_log10_max_abs_error": float(dlog[solved].max()),
        "transport_log10_mae": float(dlog[solved].mean()),
        "transport_fermi_pred_eV": fermi_pred * HARTREE_TO_EV,
        "transport_fermi_ref_eV": fermi_ref * HARTREE_TO_EV,
        "conductance_pred_G0": g["pred"],
        "conductance_ref_G0": g["ref"],
        "conductance_pred_S": g["pred"] * G0_SIEMENS,
        "conductance_ref_S": g["ref"] * G0_SIEMENS,
        "transport_bias_V": float(bias),
        "current_pred_A": i_pred,
        "current_ref_A": i_ref,
        "current_ratio": i_pred / i_ref if i_ref != 0 else None,
        "transport_convergence_pred": runs["pred"].convergence,
        "transport_convergence_ref": runs["ref"].convergence,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(
        out / "transmission.csv",
        [energies, energies * HARTREE_TO_EV, runs["pred"].transmission, runs["ref"].transmission, inside],
        "E_Ha,E_eV,T_pred,T_ref,in_window",
        fmt=["%.12g", "%.12g", "%.12g", "%.12g", "%d"],
    )
    if plots:
        from hamforge.validate._plots import plot_transmission

        plot_transmission(
            energies,
            {"predicted": runs["pred"].transmission, "DFT (reference)": runs["ref"].transmission},
            out / "transmission.png",
            mu=fermi_ref,
            window=(lo, hi),
            title=f"{Path(pred_path).name}: max |dlog10 T| {m['transport_log10_max_abs_error']:.3g} in window",
        )
    return m


def validate_device(
    pred_path: str | os.PathLike,
    ref_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    axis,
    window: float,
    step: float,
    eta: float,
    bias: float,
    temperature: float = 300.0,
    wide_band: float | None = None,
    thickness: float | None = None,
    plots: bool = True,
    **eigen,
) -> dict:
    """Eigenvalue validation (``validate_pair``, written to ``out_dir/spectrum.json``) and transport
    (``compare_transport``, ``out_dir/transport.json``) of a structure along ``axis``; returns both merged.

    The band edges and Fermi levels of the transport come from the spectra; ``eigen`` goes to ``validate_pair``.
    """
    from hamforge.validate._pipeline import validate_pair, write_json

    out = Path(out_dir)
    spec = validate_pair(pred_path, ref_path, out, metrics_path=out / "spectrum.json", plots=plots, **eigen)
    levels = {k: spec.get(f"{k}_eV") for k in ("homo_ref", "lumo_ref", "fermi_pred", "fermi_ref")}
    missing = [k for k, v in levels.items() if v is None]
    if missing:
        raise TransportError(
            f"{ref_path}: the eigenvalue window holds no {', '.join(missing)} state(s): transport needs the band "
            "edges and Fermi levels (raise dense_limit or k)"
        )
    lv = {k: v / HARTREE_TO_EV for k, v in levels.items()}
    tm = compare_transport(
        pred_path,
        ref_path,
        out,
        axis=axis,
        homo_ref=lv["homo_ref"],
        lumo_ref=lv["lumo_ref"],
        fermi_pred=lv["fermi_pred"],
        fermi_ref=lv["fermi_ref"],
        window=window,
        step=step,
        eta=eta,
        bias=bias,
        temperature=temperature,
        wide_band=wide_band,
        thickness=thickness,
        plots=plots,
    )
    write_json(out / "transport.json", tm)
    logger.info(
        "%s vs %s along %s: max |dlog10 T| %.3g in [%.3f, %.3f] eV, G/G0 %.3g vs %.3g, I ratio %s at %g V",
        pred_path,
        ref_path,
        axis,
        tm["transport_log10_max_abs_error"],
        *tm["transport_window_eV"],
        tm["conductance_pred_G0"],
        tm["conductance_ref_G0"],
        tm["current_ratio"],
        bias,
    )
    return {**spec, **tm}

"""File-level validation (what the Snakemake rule and the CLI call): metrics.json, CSVs and plots."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hamforge.io import strict_json, write_csv_atomic, write_text_atomic
from hamforge.io.units import HARTREE_TO_EV, HARTREE_TO_MEV
from hamforge.validate._checks import DENSE_LIMIT, ValidationError, check_same_structure, load_checked
from hamforge.validate._eigmetrics import DOS_WIDTH, spectrum_metrics
from hamforge.validate._spectrum import Spectrum, find_gap_energy, generalized_spectrum

__all__ = ["compare_spectra", "device_cuts", "resolve_n_occupied", "validate_pair", "validate_transport", "write_json"]

logger = logging.getLogger(__name__)


def write_json(path: str | os.PathLike, obj: Mapping[str, Any]) -> None:
    """Write ``obj`` as sorted, indented JSON atomically (NaN/inf become null, which JSON can hold)."""
    write_text_atomic(path, strict_json(dict(obj), indent=2, sort_keys=True) + "\n")


def resolve_n_occupied(n_occupied: int | None, provenance: Mapping[str, Any], source: str) -> int:
    """``n_occupied`` if given, else the provenance's ``n_occupied`` or ``n_electrons / 2`` (closed shell)."""
    if n_occupied is not None:
        return int(n_occupied)
    if "n_occupied" in provenance:
        return int(provenance["n_occupied"])
    ne = provenance.get("n_electrons")
    if ne is not None and float(ne) % 2 == 0:
        return int(float(ne) // 2)
    raise ValidationError(
        f"{source}: n_occupied: the file's provenance records neither n_occupied nor an even n_electrons; "
        "pass the number of doubly occupied states (CP2K prints it as 'Number of occupied orbitals')"
    )


def compare_spectra(
    h_pred,
    s_pred,
    h_ref,
    s_ref,
    n_occupied: int,
    *,
    s_min_ref: float,
    dense_limit: int = DENSE_LIMIT,
    k: int = 100,
    sigma: float | None = None,
    ref_source: str = "ref",
    pred_source: str = "pred",
) -> tuple[dict, Spectrum, Spectrum, float | None]:
    """Spectra of both pairs (each with its own S) and their metrics; returns (metrics, pred, ref, E_F ref).

    Dense: all states, E_F = reference midgap. Shift-invert: ``k`` states around ``sigma`` for both, ``sigma``
    defaulting to an energy in the reference's gap found by inertia bisection (see ``find_gap_energy``).
    """
    n = h_ref.shape[0]
    if n > dense_limit and sigma is None:
        sigma = find_gap_energy(h_ref, s_ref, n_occupied, s_min_ref, source=ref_source)
    ref = generalized_spectrum(h_ref, s_ref, dense_limit=dense_limit, k=k, sigma=sigma, source=ref_source)
    pred = generalized_spectrum(h_pred, s_pred, dense_limit=dense_limit, k=k, sigma=sigma, source=pred_source)
    m = spectrum_metrics(pred, ref, n_occupied)
    fermi = m["fermi_ref_eV"] / HARTREE_TO_EV if m.get("fermi_ref_eV") is not None else sigma
    if sigma is not None:
        m["eig_sigma_eV"] = sigma * HARTREE_TO_EV
    return m, pred, ref, fermi


def _write_eigen_csv(path: Path, pred: Spectrum, ref: Spectrum, n_occupied: int) -> None:
    from hamforge.validate._eigmetrics import match_states

    idx, ep, er = match_states(pred, ref)
    write_csv_atomic(
        path,
        [idx, er, ep, (ep - er) * HARTREE_TO_MEV, idx < n_occupied],
        "index,e_ref_Ha,e_pred_Ha,error_meV,occupied",
        fmt=["%d", "%.12f", "%.12f", "%.6f", "%d"],
    )


def validate_pair(
    pred_path: str | os.PathLike,
    ref_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    n_occupied: int | None = None,
    dense_limit: int = DENSE_LIMIT,
    k: int = 100,
    sigma: float | None = None,
    dos_width: float = DOS_WIDTH,
    plots_dir: str | os.PathLike | None = None,
    plots: bool = True,
    metrics_path: str | os.PathLike | None = None,
    distance_mae: list | None = None,
) -> dict:
    """Compare a predicted matrix file with its reference; write ``out_dir/metrics.json`` and more.
    ``distance_mae``: the ``by_distance`` rows of ``hamforge evaluate`` (model and baselines, learning targets),
    drawn into ``error_vs_distance.png``.

    Writes ``metrics.json`` (keys in docs/validation.md: ``eig_rel_l1``, ``eig_rel_l1_occupied``,
    ``mae_*_meV``, HOMO/LUMO/gap/Fermi shifts, ...), ``eigenvalues.csv`` and, with ``plots``, ``parity.png``,
    ``error_vs_distance.png`` and ``spectra.png`` in ``plots_dir`` (default ``out_dir``). ``n_occupied``
    defaults to what the reference's provenance records. ``sigma`` (Hartree) is the shift-invert centre used
    beyond ``dense_limit`` orbitals; ``metrics_path`` overrides ``out_dir/metrics.json``. Returns the metrics.
    """
    from hamforge.validate._elements import compare_elements, element_mae

    pred_data, pred_m = load_checked(pred_path, dense_limit=dense_limit)
    ref_data, ref_m = load_checked(ref_path, dense_limit=dense_limit)
    check_same_structure(pred_data, ref_data, str(pred_path), str(ref_path))
    n_occ = resolve_n_occupied(n_occupied, ref_data.provenance, str(ref_path))
    metrics, pred, ref, fermi = compare_spectra(
        pred_m.H,
        pred_m.S,
        ref_m.H,
        ref_m.S,
        n_occ,
        s_min_ref=ref_m.s_min,
        dense_limit=dense_limit,
        k=k,
        sigma=sigma,
        ref_source=str(ref_path),
        pred_source=str(pred_path),
    )
    tab = ref_data.orbitals()
    cmp = compare_elements(pred_m.H, ref_m.H, tab.atom, ref_data.positions, ref_data.cell, ref_data.pbc)
    metrics.update(element_mae(cmp))
    metrics.update(
        pred=str(pred_path),
        ref=str(ref_path),
        n_atoms=int(ref_data.n_atoms),
        s_min_pred=pred_m.s_min,
        s_min_ref=ref_m.s_min,
        dos_width_eV=dos_width * HARTREE_TO_EV,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_eigen_csv(out / "eigenvalues.csv", pred, ref, n_occ)
    if plots:
        from ase.data import chemical_symbols

        from hamforge.validate._plots import plot_error_vs_distance, plot_parity, plot_spectra

        pdir = Path(plots_dir) if plots_dir is not None else out
        pdir.mkdir(parents=True, exist_ok=True)
        symbols = np.array([chemical_symbols[z] if z > 0 else "X" for z in ref_data.numbers])
        name = Path(pred_path).name
        plot_parity(cmp, symbols, pdir / "parity.png", title=f"{name} vs {Path(ref_path).name}")
        plot_error_vs_distance(cmp, pdir / "error_vs_distance.png", title=name, distance_mae=distance_mae)
        plot_spectra(
            pred,
            ref,
            pdir / "spectra.png",
            fermi=fermi,
            width=dos_width,
            title=f"{name}: eig rel L1 {metrics['eig_rel_l1']:.3g}",
        )
    metrics_path = Path(metrics_path) if metrics_path is not None else out / "metrics.json"
    write_json(metrics_path, metrics)
    logger.info(
        "%s vs %s: eig_rel_l1 %.4g (occupied %.4g), gap error %s meV, mae_total %.4g meV -> %s",
        pred_path,
        ref_path,
        metrics["eig_rel_l1"],
        metrics["eig_rel_l1_occupied"],
        metrics.get("gap_error_meV"),
        metrics["mae_total_meV"],
        metrics_path,
    )
    return metrics


def device_cuts(files: Mapping[str, Any], axis, thickness: float | None = None) -> tuple[dict, float | None]:
    """Read each matrix file of ``files`` (name -> path) and cut it open along ``axis``; returns
    ``({name: (MatrixData, DeviceCut)}, thickness)`` with one layer thickness for all: ``thickness`` if given,
    else the largest interaction range of the devices (so that every device gets the same principal layers)."""
    from hamforge.io import read_matrix_file
    from hamforge.validate._cut import cut_open
    from hamforge.validate._transport import axis_index, device_range

    ax = axis_index(axis)
    cuts = {}
    for name, p in files.items():
        data = read_matrix_file(p)
        cuts[name] = (data, cut_open(data, ax, source=str(p)))
    if "pred" in cuts and "ref" in cuts:  # a comparison of different structures would report meaningless numbers
        check_same_structure(cuts["pred"][0], cuts["ref"][0], str(files["pred"]), str(files["ref"]))
    if thickness is None and len(files) > 1:
        thickness = max(device_range(d, ax, source=str(files[n]), cut=c) for n, (d, c) in cuts.items())
    return cuts, thickness


def validate_transport(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    axis,
    energies,
    eta: float,
    biases=(),
    temperature: float = 300.0,
    mu: float | None = None,
    thickness: float | None = None,
    wide_band: float | None = None,
    ref_path: str | os.PathLike | None = None,
    plots: bool = True,
) -> dict:
    """T(E) and I(V) of a matrix file (and of a reference with the same settings); write CSVs, JSON, plot.

    Writes ``transmission.csv`` (E in Ha and eV, T, T_ref), ``current.csv`` (V, I in A, I_ref),
    ``transport.json`` (settings, convergence in eta and energy step, and against a reference the largest
    relative current error and the mean |log10 T - log10 T_ref|) and ``transmission.png``. Energies Hartree.
    Structures periodic along the axis are cut open (``cut_open``); without ``thickness`` both devices get the
    layers of the larger of their interaction ranges.
    """
    from hamforge.validate._transport import run_transport, transport_setup

    files = {name: p for name, p in (("pred", path), ("ref", ref_path)) if p is not None}
    cuts, thickness = device_cuts(files, axis, thickness)
    runs = {}
    for name, p in files.items():
        data, cut = cuts[name]
        setup = transport_setup(data, axis, thickness=thickness, wide_band=wide_band, source=str(p), cut=cut)
        runs[name] = run_transport(setup, energies, eta=eta, biases=biases, mu=mu, temperature=temperature)
        logger.info(
            "%s: %d principal layers (%s orbitals), T(E) at %d energies",
            p,
            setup.device.n_layers,
            setup.device.layer_sizes.tolist(),
            len(runs[name].energies),
        )
    res = runs["pred"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e = res.energies
    cols = [e, e * HARTREE_TO_EV, res.transmission] + ([runs["ref"].transmission] if "ref" in runs else [])
    hdr = "E_Ha,E_eV,T" + (",T_ref" if "ref" in runs else "")
    write_csv_atomic(out / "transmission.csv", cols, hdr)
    ccols = [res.biases, res.current] + ([runs["ref"].current] if "ref" in runs else [])
    write_csv_atomic(out / "current.csv", ccols, "bias_V,I_A" + (",I_ref_A" if "ref" in runs else ""))
    metrics: dict = {
        "file": str(path),
        "axis": str(axis),
        "eta_Ha": res.eta,
        "mu_Ha": res.mu,
        "temperature_K": res.temperature,
        "n_energies": int(e.size),
        "emin_Ha": float(e[0]),
        "emax_Ha": float(e[-1]),
        "wide_band_Ha": wide_band,
        "biases_V": res.biases.tolist(),
        "current_A": res.current.tolist(),
        "convergence": res.convergence,
    }
    if "ref" in runs:
        r = runs["ref"]
        both = (res.transmission > 1e-30) & (r.transmission > 1e-30)
        metrics["ref"] = str(ref_path)
        metrics["current_ref_A"] = r.current.tolist()
        metrics["convergence_ref"] = r.convergence
        metrics["transmission_log10_mae"] = (
            float(np.mean(np.abs(np.log10(res.transmission[both]) - np.log10(r.transmission[both]))))
            if both.any()
            else None
        )
        nz = np.abs(r.current) > 0
        metrics["current_rel_error_max"] = (
            float(np.max(np.abs(res.current[nz] - r.current[nz]) / np.abs(r.current[nz]))) if nz.any() else None
        )
    if plots:
        from hamforge.validate._plots import plot_transmission

        curves = {Path(path).name: res.transmission}
        if "ref" in runs:
            curves[f"{Path(ref_path).name} (reference)"] = runs["ref"].transmission
        plot_transmission(e, curves, out / "transmission.png", mu=res.mu, title=f"eta {eta:.3g} Ha")
    write_json(out / "transport.json", metrics)
    return metrics

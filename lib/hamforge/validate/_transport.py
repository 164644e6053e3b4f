"""NEGF transport of one matrix file: layering, leads, T(E) on a grid, I(V), and convergence in eta and dE."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from hamforge.validate._checks import check_symmetric
from hamforge.validate._current import landauer_current
from hamforge.validate._cut import DeviceCut, cut_open
from hamforge.validate._layers import (
    LayeredDevice,
    LeadBlocks,
    TransportError,
    interaction_range,
    layered_device,
    leads_from_device,
)
from hamforge.validate._rgf import transmission

logger = logging.getLogger(__name__)

__all__ = [
    "AXES",
    "TransportResult",
    "TransportSetup",
    "axis_index",
    "device_range",
    "run_transport",
    "transport_setup",
]

AXES = {"x": 0, "y": 1, "z": 2}


def axis_index(axis) -> int:
    if isinstance(axis, str) and axis.lower() in AXES:
        return AXES[axis.lower()]
    if axis in (0, 1, 2):
        return int(axis)
    raise TransportError(f"axis must be x, y, z (or 0, 1, 2), got {axis!r}")


@dataclass(frozen=True)
class TransportSetup:
    """A device split into principal layers with its two leads (``None`` for both in the wide-band limit)."""

    device: LayeredDevice
    left: LeadBlocks | None
    right: LeadBlocks | None
    axis: int
    wide_band: float | None = None
    route: str = "open"  # how the device matrices were made (DeviceCut.route)


def transport_setup(
    data,
    axis,
    *,
    thickness: float | None = None,
    leads: tuple[LeadBlocks, LeadBlocks] | None = None,
    wide_band: float | None = None,
    source: str = "<memory>",
    cut: DeviceCut | None = None,
) -> TransportSetup:
    """Principal layers of a :class:`~hamforge.io.MatrixData` along ``axis`` and its leads.

    A structure periodic along the axis is first cut open there (:func:`hamforge.validate.cut_open`: from the
    per-image blocks, or from Gamma-folded matrices when the cell is longer than twice the interaction range);
    ``cut`` passes one already made. Leads repeat the device's end layers unless ``leads`` gives (left, right)
    explicitly or ``wide_band`` (Hartree) selects the wide-band limit.
    """
    ax = axis_index(axis)
    cut = cut_open(data, ax, source=source) if cut is None else cut
    h = check_symmetric(cut.H, source, "H")
    s = check_symmetric(cut.S, source, "S")
    tab = data.orbitals()
    dev = layered_device(h, s, np.asarray(data.positions)[:, ax], tab.atom, thickness=thickness, source=source)
    if wide_band is not None:
        return TransportSetup(dev, None, None, ax, float(wide_band), cut.route)
    left, right = leads if leads is not None else leads_from_device(dev, source)
    for side, lead, n in (("left", left, dev.layer_sizes[0]), ("right", right, dev.layer_sizes[-1])):
        if lead.n != n:
            raise TransportError(
                f"{source}: {side} lead has {lead.n} orbitals per cell but the device's end layer has {n}"
            )
    return TransportSetup(dev, left, right, ax, None, cut.route)


def device_range(data, axis, *, source: str = "<memory>", cut: DeviceCut | None = None) -> float:
    """Interaction range along ``axis`` (Angstrom) of the device made from ``data`` (the default thickness)."""
    ax = axis_index(axis)
    cut = cut_open(data, ax, source=source) if cut is None else cut
    return interaction_range(cut.H, cut.S, np.asarray(data.positions)[:, ax], data.orbitals().atom)


@dataclass(frozen=True)
class TransportResult:
    """T(E) and I(V) of one device, with the same at 10 eta and on the grid with half the energy step."""

    energies: np.ndarray  # (nE,) Hartree
    transmission: np.ndarray  # (nE,)
    biases: np.ndarray  # (nV,) V
    current: np.ndarray  # (nV,) A
    eta: float  # Hartree
    mu: float  # Hartree
    temperature: float  # K
    convergence: dict = field(default_factory=dict)


def _spectral_solver(setup: TransportSetup):
    """The one-eigendecomposition solver of a small device with wide-band contacts, else None."""
    from hamforge.validate._spectral import SPECTRAL_LIMIT, SpectralSolver
    from hamforge.validate._surface import wide_band_self_energy

    dev = setup.device
    if setup.wide_band is None or int(dev.bounds[-1]) > SPECTRAL_LIMIT:
        return None
    sl = wide_band_self_energy(1, dev.S_diag[0], setup.wide_band)[0]
    sr = wide_band_self_energy(1, dev.S_diag[-1], setup.wide_band)[0]
    try:
        return SpectralSolver(dev, sl, sr)
    except np.linalg.LinAlgError as exc:
        logger.warning("spectral transmission unavailable (%s): RGF", exc)
        return None


def _rel_change(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.max(np.abs(b)) if b.size else 0.0
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else 0.0


def run_transport(
    setup: TransportSetup,
    energies,
    *,
    eta: float,
    biases=(),
    mu: float | None = None,
    temperature: float = 300.0,
    convergence: bool = True,
    **kw,
) -> TransportResult:
    """T(E) on ``energies`` (Hartree), I at ``biases`` (V) around ``mu`` (default: the grid's centre).

    With ``convergence`` the same quantities are recomputed at 10 eta and on the grid with every interval
    halved (new midpoints only); ``convergence`` then holds the largest changes: ``current_rel_change_half_step``,
    ``current_rel_change_eta_x10`` (max |dI| / max |I|) and ``transmission_max_change_*``.
    """
    e = np.asarray(energies, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise TransportError("energies must be an ascending grid of at least 2 points (Hartree)")
    mu = float(0.5 * (e[0] + e[-1])) if mu is None else float(mu)
    biases = np.atleast_1d(np.asarray(biases, dtype=np.float64))

    skipped: dict = {}
    solver, methods = _spectral_solver(setup), set()

    def run(grid, eta_):
        t = transmission(
            setup.device, grid, eta_, setup.left, setup.right, wide_band=setup.wide_band, solver=solver, **kw
        )
        skipped.update({f"{k:.10g} Ha, eta {eta_:g}": v for k, v in t.failures.items()})
        methods.add(t.method)
        return t.transmission

    t = run(e, eta)
    ok = np.isfinite(t)
    if ok.sum() < 2:
        raise TransportError(f"T(E) could be solved at {int(ok.sum())} of {e.size} energies: {skipped}")
    cur = landauer_current(e[ok], t[ok], biases, mu=mu, temperature=temperature) if biases.size else np.zeros(0)
    conv: dict = {}
    if convergence:
        mid = 0.5 * (e[1:] + e[:-1])
        t_mid = run(mid, eta)
        fine = np.empty(2 * e.size - 1)
        fine[0::2], fine[1::2] = e, mid
        t_fine = np.empty_like(fine)
        t_fine[0::2], t_fine[1::2] = t, t_mid
        t_eta = run(e, 10.0 * eta)
        conv["energy_step_Ha"] = float(np.max(np.diff(e)))
        conv["transmission_max_change_half_step"] = float(np.nanmax(np.abs(np.interp(mid, e[ok], t[ok]) - t_mid)))
        conv["transmission_max_change_eta_x10"] = float(np.nanmax(np.abs(t_eta - t)))
        if biases.size:
            fok, eok = np.isfinite(t_fine), np.isfinite(t_eta)
            c_fine = landauer_current(fine[fok], t_fine[fok], biases, mu=mu, temperature=temperature)
            c_eta = landauer_current(e[eok], t_eta[eok], biases, mu=mu, temperature=temperature)
            conv["current_rel_change_half_step"] = _rel_change(cur, c_fine)
            conv["current_rel_change_eta_x10"] = _rel_change(cur, c_eta)
    conv["transmission_method"] = "+".join(sorted(methods))
    if skipped:
        # reported, never silently interpolated over: the grid point stays NaN in T(E)
        logger.warning("%d energies left out (lead Green's function not solved): %s", len(skipped), skipped)
        conv["skipped_energies"] = skipped
    return TransportResult(e, t, biases, cur, float(eta), mu, float(temperature), conv)

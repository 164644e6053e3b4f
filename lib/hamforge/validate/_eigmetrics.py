"""Comparing two spectra: relative L1/L2 errors, HOMO/LUMO/gap/Fermi-level shifts, Gaussian DOS.

Definitions (also in docs/validation.md). States are matched by their global index in each spectrum's
ascending order (state i of the prediction against state i of the reference), over the set M of indices
both spectra contain (all states when dense; the overlap of the two windows for shift-invert)::

    eig_rel_l1 = sum_{i in M} |e_pred_i - e_ref_i| / sum_{i in M} |e_ref_i|
    eig_rel_l2 = sqrt(sum_{i in M} (e_pred_i - e_ref_i)^2) / sqrt(sum_{i in M} e_ref_i^2)

``*_occupied`` restricts M to i < n_occupied. Energies are absolute (the zero of the DFT code), so the relative
errors are meaningful for one code and one pseudopotential family, as in the papers. HOMO = state
n_occupied - 1, LUMO = state n_occupied, gap = LUMO - HOMO, Fermi level = midgap (HOMO + LUMO) / 2; shifts
are pred - ref.
"""

from __future__ import annotations

import numpy as np

from hamforge.io.units import HARTREE_TO_EV, HARTREE_TO_MEV
from hamforge.validate._checks import ValidationError
from hamforge.validate._spectrum import Spectrum

__all__ = ["DOS_WIDTH", "gaussian_dos", "match_states", "spectrum_metrics"]

# Gaussian broadening of the DOS (standard deviation): 0.1 eV, about a thermal smearing at 1000 K.
DOS_WIDTH = 0.1 / HARTREE_TO_EV


def match_states(pred: Spectrum, ref: Spectrum) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(index, e_pred, e_ref)`` of the states both spectra contain, by global index."""
    if pred.n_total != ref.n_total:
        raise ValidationError(f"spectra of different sizes: {pred.n_total} vs {ref.n_total} states")
    idx, ip, ir = np.intersect1d(pred.index, ref.index, assume_unique=True, return_indices=True)
    if idx.size == 0:
        raise ValidationError("the predicted and reference eigenvalue windows share no states")
    return idx, pred.energies[ip], ref.energies[ir]


def _rel(diff: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    if diff.size == 0:
        return float("nan"), float("nan")
    l1 = float(np.sum(np.abs(diff)) / np.sum(np.abs(ref)))
    l2 = float(np.linalg.norm(diff) / np.linalg.norm(ref))
    return l1, l2


def _state(idx: np.ndarray, e: np.ndarray, i: int) -> float | None:
    pos = np.searchsorted(idx, i)
    return float(e[pos]) if pos < idx.size and idx[pos] == i else None


def spectrum_metrics(pred: Spectrum, ref: Spectrum, n_occupied: int | None = None) -> dict:
    """Metrics of ``pred`` against ``ref`` (see the module docstring); energies reported in eV / meV."""
    idx, ep, er = match_states(pred, ref)
    diff = ep - er
    out: dict = {
        "eig_method": ref.method,
        "n_orbitals": int(ref.n_total),
        "n_states_compared": int(idx.size),
        "eig_index_min": int(idx[0]),
        "eig_index_max": int(idx[-1]),
    }
    out["eig_rel_l1"], out["eig_rel_l2"] = _rel(diff, er)
    out["eig_mae_meV"] = float(np.mean(np.abs(diff)) * HARTREE_TO_MEV)
    out["eig_max_abs_error_meV"] = float(np.max(np.abs(diff)) * HARTREE_TO_MEV)
    if n_occupied is None:
        return out
    if not 0 < n_occupied < ref.n_total:
        raise ValidationError(f"n_occupied must be in 1..{ref.n_total - 1}, got {n_occupied}")
    occ = idx < n_occupied
    out["n_occupied"] = int(n_occupied)
    out["n_occupied_compared"] = int(np.count_nonzero(occ))
    out["eig_rel_l1_occupied"], out["eig_rel_l2_occupied"] = _rel(diff[occ], er[occ])
    out["eig_mae_occupied_meV"] = float(np.mean(np.abs(diff[occ])) * HARTREE_TO_MEV) if occ.any() else float("nan")
    levels = {}
    for name, spec_e in (("pred", ep), ("ref", er)):
        homo, lumo = _state(idx, spec_e, n_occupied - 1), _state(idx, spec_e, n_occupied)
        levels[name] = (homo, lumo)
        out[f"homo_{name}_eV"] = homo * HARTREE_TO_EV if homo is not None else None
        out[f"lumo_{name}_eV"] = lumo * HARTREE_TO_EV if lumo is not None else None
        both = homo is not None and lumo is not None
        out[f"gap_{name}_eV"] = (lumo - homo) * HARTREE_TO_EV if both else None
        out[f"fermi_{name}_eV"] = 0.5 * (lumo + homo) * HARTREE_TO_EV if both else None
    (hp, lp), (hr, lr) = levels["pred"], levels["ref"]
    ok = None not in (hp, lp, hr, lr)
    out["homo_shift_meV"] = (hp - hr) * HARTREE_TO_MEV if hp is not None and hr is not None else None
    out["lumo_shift_meV"] = (lp - lr) * HARTREE_TO_MEV if lp is not None and lr is not None else None
    out["gap_error_meV"] = ((lp - hp) - (lr - hr)) * HARTREE_TO_MEV if ok else None
    out["fermi_shift_meV"] = 0.5 * ((lp + hp) - (lr + hr)) * HARTREE_TO_MEV if ok else None
    return out


def gaussian_dos(energies: np.ndarray, grid: np.ndarray, width: float = DOS_WIDTH, chunk: int = 4096) -> np.ndarray:
    """DOS on ``grid`` (states per Hartree): sum_i exp(-(E - e_i)^2 / 2 w^2) / (sqrt(2 pi) w).

    Integrates to the number of states; evaluated in chunks of states so memory stays O(chunk x len(grid)).
    """
    if width <= 0:
        raise ValidationError(f"DOS width must be > 0, got {width}")
    energies = np.asarray(energies, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    dos = np.zeros_like(grid)
    norm = 1.0 / (np.sqrt(2.0 * np.pi) * width)
    for start in range(0, energies.size, chunk):
        d = (grid[None, :] - energies[start : start + chunk, None]) / width
        dos += norm * np.exp(-0.5 * d * d).sum(axis=0)
    return dos

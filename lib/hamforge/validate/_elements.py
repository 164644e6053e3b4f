"""Matrix elements of a predicted vs a reference H: aligned on the union of both sparsity patterns.

MAE definitions (metrics.json, meV): over every element stored in either matrix (absent = 0), split into
on-site blocks (both orbitals on one atom, ``mae_node_meV``) and off-site blocks (``mae_edge_meV``);
``mae_total_meV`` over all of them. Distances are minimum-image distances between the two atoms (ASE's
``find_mic``), the natural label of a Gamma-point element that sums all images of a pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hamforge.io.units import HARTREE_TO_MEV

__all__ = ["ElementComparison", "compare_elements", "element_mae"]


@dataclass(frozen=True)
class ElementComparison:
    """One row per stored element of the union pattern."""

    row: np.ndarray  # (nnz,) int64 | orbital
    col: np.ndarray  # (nnz,) int64
    atom_i: np.ndarray  # (nnz,) int64 | atom of row
    atom_j: np.ndarray  # (nnz,) int64
    pred: np.ndarray  # (nnz,) float64 | Hartree
    ref: np.ndarray  # (nnz,) float64 | Hartree
    distance: np.ndarray  # (nnz,) float64 | Angstrom, minimum image

    @property
    def error(self) -> np.ndarray:
        return self.pred - self.ref


def _keyed(m: sp.spmatrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    c = sp.coo_matrix(m)
    key = c.row.astype(np.int64) * n + c.col.astype(np.int64)
    o = np.argsort(key, kind="stable")
    return key[o], c.data[o]


def _lookup(keys: np.ndarray, mkeys: np.ndarray, mvals: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(mkeys, keys)
    pos_c = np.minimum(pos, max(mkeys.size - 1, 0))
    hit = (pos < mkeys.size) & (mkeys[pos_c] == keys) if mkeys.size else np.zeros(keys.size, bool)
    return np.where(hit, mvals[pos_c] if mkeys.size else 0.0, 0.0)


def compare_elements(
    h_pred: sp.spmatrix,
    h_ref: sp.spmatrix,
    orbital_atom: np.ndarray,
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
) -> ElementComparison:
    """Align two sparse matrices element by element (vectorized: sorted int64 keys row * N + col)."""
    from ase.geometry import find_mic

    n = h_ref.shape[0]
    kp, vp = _keyed(sp.csr_matrix(h_pred), n)
    kr, vr = _keyed(sp.csr_matrix(h_ref), n)
    keys = np.union1d(kp, kr)
    row, col = keys // n, keys % n
    ai, aj = orbital_atom[row], orbital_atom[col]
    n_atoms = len(positions)
    pair = np.unique(ai * n_atoms + aj, return_inverse=True)
    pi, pj = pair[0] // n_atoms, pair[0] % n_atoms
    d = positions[pj] - positions[pi]
    if np.any(pbc):
        _, dist = find_mic(d, cell, pbc)
    else:
        dist = np.linalg.norm(d, axis=1)
    return ElementComparison(
        row, col, ai, aj, _lookup(keys, kp, vp), _lookup(keys, kr, vr), np.asarray(dist)[pair[1].reshape(-1)]
    )


def element_mae(cmp: ElementComparison) -> dict:
    """``mae_node_meV``, ``mae_edge_meV``, ``mae_total_meV``, ``max_abs_error_meV`` (see module docstring)."""
    err = np.abs(cmp.error) * HARTREE_TO_MEV
    node = cmp.atom_i == cmp.atom_j

    def mean(x):
        return float(np.mean(x)) if x.size else float("nan")

    return {
        "mae_node_meV": mean(err[node]),
        "mae_edge_meV": mean(err[~node]),
        "mae_total_meV": mean(err),
        "max_abs_error_meV": float(err.max()) if err.size else 0.0,
        "n_elements_compared": int(err.size),
    }

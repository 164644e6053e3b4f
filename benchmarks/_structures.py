"""Cheap benchmark structures (importable by the benchmark scripts: ``from _structures import ...``).

A stand-in for a melt-quenched amorphous structure: what benchmarks of neighbour search, partitioning
and graph handling need is the right density and no unphysically close atoms, not the right bonding.
A LAMMPS melt-quench structure (``hamforge.structures``) may replace it later.
"""

from __future__ import annotations

import numpy as np

SI_DENSITY = 0.05  # atoms / Angstrom^3 (crystalline Si: 0.0499; amorphous Si is within a few %)


def amorphous_like_si(n_atoms: int, seed: int = 0, density: float = SI_DENSITY, min_distance: float = 2.0):
    """Random close-packing-like Si: ``n_atoms`` in a periodic cubic cell at ``density`` atoms/A^3.

    Random sequential addition in batches: uniform random candidates, rejected when closer than
    ``min_distance`` (minimum image) to an accepted atom or to an earlier candidate of the same batch.
    Deterministic for a given ``seed``. Returns an ``ase.Atoms`` (symbols Si, pbc True).
    """
    from ase import Atoms
    from scipy.spatial import cKDTree

    if n_atoms < 1:
        raise ValueError(f"n_atoms: must be >= 1, got {n_atoms}")
    if not density > 0 or not min_distance >= 0:
        raise ValueError("density must be > 0 and min_distance >= 0")
    length = (n_atoms / density) ** (1.0 / 3.0)
    if 4.0 / 3.0 * np.pi * (min_distance / 2) ** 3 * density > 0.3:
        raise ValueError("min_distance: too large for this density (random packing would jam)")
    rng = np.random.default_rng(seed)
    accepted = np.zeros((0, 3))
    for _ in range(10_000):
        need = n_atoms - len(accepted)
        if need == 0:
            break
        cand = rng.random((max(3 * need, 16), 3)) * length
        if len(accepted):
            d, _ = cKDTree(accepted, boxsize=length).query(cand, distance_upper_bound=min_distance)
            cand = cand[~np.isfinite(d)]
        close = cKDTree(cand, boxsize=length).query_pairs(min_distance, output_type="ndarray")
        keep = np.ones(len(cand), bool)
        keep[close[:, 1]] = False  # drop the later candidate of every close pair
        accepted = np.concatenate([accepted, cand[keep][:need]])
    else:
        raise RuntimeError("amorphous_like_si: random sequential addition did not converge")
    return Atoms(f"Si{n_atoms}", positions=accepted, cell=np.eye(3) * length, pbc=True)

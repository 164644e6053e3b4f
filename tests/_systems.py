"""Random test structures shared by the partition tests (a helper module, not a test file)."""

from __future__ import annotations

import numpy as np
from hamforge.graph import neighbor_list

# Skewed cell: |a1| = 16 is the longest lattice vector but the largest perpendicular height is along a3
# (heights 6.30, 6.0, 11.0 Angstrom).
TRICLINIC = np.array([[16.0, 0.0, 0.0], [14.0, 6.0, 0.0], [0.0, 0.0, 11.0]])


def system(n, cell, pbc=(True, True, True), seed=0, r_cut=4.0, frac=None):
    """Random atoms (uniform fractional coordinates unless ``frac`` is given) and their neighbour list."""
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, float)
    f = rng.random((n, 3)) if frac is None else frac
    x = f @ cell
    return x, neighbor_list(x, cell, pbc, r_cut)

"""Fractional coordinates along lattice directions and perpendicular heights (shared by the partitioners).

Cuts are planes of constant fractional coordinate ``f_k`` (lattice planes), so that in a triclinic cell
a slab between two cuts is bounded by planes parallel to the other two lattice vectors. Lengths along
axis ``k`` are measured perpendicular to those planes: ``h_k = 1 / |column k of cell^-1|`` is the
spacing of the lattice planes (the height of the cell along ``k``), and the extent of a set of atoms
along ``k`` is ``h_k * (max f_k - min f_k)``; along a periodic axis that is not cut the extent is
``h_k`` (the whole period).

The cell is completed and coordinates are wrapped by the one rule of ``hamforge.geometry``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hamforge.geometry import NeighborList, lattice
from hamforge.geometry import check_positions as _check_positions


@dataclass(frozen=True)
class Frame:
    """Fractional coordinates of the atoms and the heights of the (completed) cell."""

    frac: np.ndarray  # (N, 3) float64 | fractional coordinates, periodic axes wrapped into [0, 1)
    heights: np.ndarray  # (3,) float64 | spacing of the lattice planes per axis, Angstrom
    pbc: np.ndarray  # (3,) bool

    def extent(self, idx: np.ndarray, axis: int, whole_period: bool) -> float:
        """Extent (Angstrom, perpendicular to the lattice planes) of atoms ``idx`` along ``axis``."""
        if whole_period:
            return float(self.heights[axis])
        f = self.frac[idx, axis]
        return float((f.max() - f.min()) * self.heights[axis]) if f.size else 0.0


def frame(nl: NeighborList, positions) -> Frame:
    """:class:`Frame` of ``positions`` (N, 3) in the cell and periodicity of ``nl``."""
    lat = lattice(nl.cell, nl.pbc)
    return Frame(
        frac=lat.fractional(check_positions(nl, positions)), heights=np.array(lat.heights), pbc=np.array(lat.pbc)
    )


def check_positions(nl: NeighborList, positions) -> np.ndarray:
    """(N, 3) float64 positions of the atoms of ``nl`` or ValueError naming ``positions``."""
    return _check_positions(positions, "positions", n_atoms=nl.n_atoms)

"""Fractional coordinates along lattice directions and perpendicular heights (shared by the partitioners).

Cuts are planes of constant fractional coordinate ``f_k`` (lattice planes), so that in a triclinic cell
a slab between two cuts is bounded by planes parallel to the other two lattice vectors. Lengths along
axis ``k`` are measured perpendicular to those planes: ``h_k = 1 / |column k of cell^-1|`` is the
spacing of the lattice planes (the height of the cell along ``k``), and the extent of a set of atoms
along ``k`` is ``h_k * (max f_k - min f_k)``; along a periodic axis that is not cut the extent is
``h_k`` (the whole period).

Non-periodic axes: the given cell row is used when the full cell is non-singular; otherwise (a zero or
dependent row) the non-periodic rows are replaced by an orthonormal complement of the periodic rows,
and with no periodic axis at all by the Cartesian axes. Coordinates along periodic axes are wrapped
into ``[0, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hamforge.graph import NeighborList


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


def completed_cell(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """A non-singular (3, 3) cell whose periodic rows are those of ``cell`` (see module docstring)."""
    cell = np.asarray(cell, dtype=np.float64)
    s = np.linalg.svd(cell, compute_uv=False)
    if s[0] > 0.0 and s[-1] > 1e-10 * s[0]:
        return cell.copy()
    k = int(np.count_nonzero(pbc))
    if k == 0:
        return np.eye(3)
    _, _, vt = np.linalg.svd(cell[pbc])
    full = cell.copy()
    full[~pbc] = vt[k:]
    return full


def frame(nl: NeighborList, positions) -> Frame:
    """:class:`Frame` of ``positions`` (N, 3) in the cell and periodicity of ``nl``."""
    x = check_positions(nl, positions)
    pbc = np.asarray(nl.pbc, dtype=bool)
    full = completed_cell(nl.cell, pbc)
    inv = np.linalg.inv(full)
    heights = 1.0 / np.linalg.norm(inv, axis=0)
    frac = x @ inv
    frac[:, pbc] -= np.floor(frac[:, pbc])
    frac[:, pbc] = np.where(frac[:, pbc] >= 1.0, 0.0, frac[:, pbc])  # -1e-17 wraps to 1.0 in float64
    return Frame(frac=frac, heights=heights, pbc=pbc)


def check_positions(nl: NeighborList, positions) -> np.ndarray:
    x = np.asarray(positions)
    if x.shape != (nl.n_atoms, 3):
        raise ValueError(f"positions: expected shape ({nl.n_atoms}, 3) (the atoms of nl), got {x.shape}")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("positions: contains non-finite values")
    return x

"""Periodic geometry: the one completed-cell rule, fractional coordinates, wrapping, exact minimum image.

Conventions (``docs/conventions.md``): the rows of ``cell`` are lattice vectors (Angstrom), ``pbc`` is a
(3,) bool array, and the image of atom ``j`` in lattice translation ``R`` (integers, 0 along non-periodic
axes) sits at ``x_j + R @ cell``.

Completed cell (one rule for every room). Fractional coordinates need an invertible (3, 3) basis even when
some axes are not periodic and their rows are zero or arbitrary (ASE's cell of a molecule, wire or slab):
the given cell is used as is when it is well conditioned (smallest singular value > 1e-10 of the largest);
otherwise its non-periodic rows are replaced by an orthonormal basis of the orthogonal complement of the
periodic rows (the Cartesian axes when nothing is periodic). The periodic rows themselves must be linearly
independent (:func:`check_cell`). Fractional coordinates along periodic axes are wrapped into ``[0, 1)``;
along non-periodic axes they are never wrapped.

Heights: ``h_k = 1 / |column k of basis^-1|`` is the spacing of the lattice planes spanned by the other two
rows, the thickness of the cell along axis ``k``; a point within distance ``d`` of another differs from it
by at most ``d / h_k`` in fractional coordinate ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Lattice",
    "check_cell",
    "check_positions",
    "completed_cell",
    "lattice",
    "minimum_image",
]

# Relative singular-value threshold for "linearly dependent" lattice vectors.
_RANK_TOL = 1e-10
# Rows of difference vectors per minimum-image chunk (bounds the 27 x chunk x 3 temporaries).
_MIC_CHUNK = 1 << 16


def check_positions(positions, name: str = "positions", n_atoms: int | None = None) -> np.ndarray:
    """``(N, 3)`` finite float64 copy of ``positions`` or ValueError naming ``name``."""
    a = np.asarray(positions)
    if a.ndim != 2 or a.shape[1] != 3 or (n_atoms is not None and a.shape[0] != n_atoms):
        want = f"({n_atoms}, 3)" if n_atoms is not None else "(N, 3)"
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name}: expected a real array, got dtype {a.dtype}")
    a = np.array(a, dtype=np.float64, order="C")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains non-finite values")
    return a


def check_cell(cell, pbc, name: str = "cell") -> tuple[np.ndarray, np.ndarray]:
    """``(cell (3, 3) float64, pbc (3,) bool)`` checked; ValueError naming ``name`` / ``pbc`` otherwise.

    A scalar ``pbc`` is broadcast; integer 0/1 flags are accepted. The rows of periodic axes must be
    finite and linearly independent (a zero cell along a periodic axis is refused).
    """
    c = np.asarray(cell)
    if c.shape != (3, 3):
        raise ValueError(f"{name}: expected shape (3, 3) with lattice vectors as rows, got {c.shape}")
    if not (np.issubdtype(c.dtype, np.floating) or np.issubdtype(c.dtype, np.integer)):
        raise ValueError(f"{name}: expected a real array, got dtype {c.dtype}")
    c = np.array(c, dtype=np.float64, order="C")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name}: contains non-finite values")
    p = np.asarray(pbc)
    if p.shape == ():
        p = np.broadcast_to(p, (3,))
    if p.shape != (3,):
        raise ValueError(f"pbc: expected shape (3,), got {p.shape}")
    if p.dtype != np.bool_ and not (np.issubdtype(p.dtype, np.integer) and np.all((p == 0) | (p == 1))):
        raise ValueError(f"pbc: expected booleans, got {p!r}")
    p = np.array(p, dtype=bool)
    if p.any():
        s = np.linalg.svd(c[p], compute_uv=False)
        if s[0] == 0.0 or s[-1] <= _RANK_TOL * s[0]:
            raise ValueError(
                f"{name}: lattice vectors of the periodic axes {np.flatnonzero(p).tolist()} are zero or "
                "linearly dependent"
            )
    return c, p


def completed_cell(cell, pbc) -> np.ndarray:
    """A non-singular (3, 3) basis whose periodic rows are those of ``cell`` (module docstring)."""
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    s = np.linalg.svd(cell, compute_uv=False)
    if s[0] > 0.0 and s[-1] > _RANK_TOL * s[0]:
        return cell.copy()
    k = int(np.count_nonzero(pbc))
    if k == 0:
        return np.eye(3)
    _, _, vt = np.linalg.svd(cell[pbc])
    full = cell.copy()
    full[~pbc] = vt[k:]
    return full


@dataclass(frozen=True, eq=False)
class Lattice:
    """A cell with its completed basis (module docstring). Fields::

    cell     # (3, 3) float64 | as given (rows = lattice vectors)
    basis    # (3, 3) float64 | completed cell: periodic rows of `cell` + completion
    inverse  # (3, 3) float64 | frac = x @ inverse
    heights  # (3,)   float64 | lattice-plane spacing per axis, Angstrom
    pbc      # (3,)   bool
    volume   # float          | |det basis| (Angstrom^3; with a completion: per unit length/area)
    """

    cell: np.ndarray
    basis: np.ndarray
    inverse: np.ndarray
    heights: np.ndarray
    pbc: np.ndarray
    volume: float

    @property
    def is_full(self) -> bool:
        """True when the given cell itself is a non-singular 3D cell (no completion was needed)."""
        return bool(np.array_equal(self.basis, self.cell))

    def fractional(self, positions, wrap: bool = True) -> np.ndarray:
        """(N, 3) fractional coordinates; periodic axes wrapped into ``[0, 1)`` when ``wrap``."""
        frac = np.asarray(positions, dtype=np.float64) @ self.inverse
        if wrap and self.pbc.any():
            p = self.pbc
            frac[:, p] -= np.floor(frac[:, p])
            frac[:, p] = np.where(frac[:, p] >= 1.0, 0.0, frac[:, p])  # -1e-17 wraps to 1.0 in float64
        return frac

    def wrap(self, positions) -> np.ndarray:
        """Positions moved by lattice vectors into the cell along periodic axes (Cartesian, (N, 3))."""
        return self.fractional(positions) @ self.basis

    def images_within(self, frac: np.ndarray, margin: float, max_points: int | None = None) -> np.ndarray:
        """(M, 3) Cartesian positions of every image ``frac + R`` whose fractional coordinates lie within
        ``margin`` (Angstrom) of the cell; ``frac`` (N, 3) are wrapped fractional coordinates.

        Along periodic axis k an image is kept when its coordinate is in ``[-margin / h_k, 1 + margin / h_k]``:
        every point within ``margin`` of a point inside the cell satisfies this, so a neighbour query from
        inside the cell that finds a neighbour closer than ``margin`` is exact. ValueError when more than
        ``max_points`` images would be made.
        """
        if not self.pbc.any():
            return frac @ self.basis
        lim = np.full(3, np.inf)
        lim[self.pbc] = margin / self.heights[self.pbc]
        n_img = np.zeros(3, dtype=np.int64)
        n_img[self.pbc] = np.ceil(lim[self.pbc]).astype(np.int64)
        growth = float(np.prod(1.0 + 2.0 * lim[self.pbc]))
        if max_points is not None and len(frac) * growth > max_points:
            raise ValueError(
                f"neighbour search to {margin:.3g} Å needs ~{len(frac) * growth:.3g} periodic images for a cell "
                f"with plane spacings {np.round(self.heights, 3).tolist()} Å; lower the range"
            )
        axes = [np.arange(-k, k + 1, dtype=float) for k in n_img]
        shifts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)  # (S, 3)
        per_block = max(1, 2_000_000 // max(len(frac), 1))  # bound the (s, N, 3) temporaries
        blocks = []
        for start in range(0, len(shifts), per_block):
            shifted = frac[None, :, :] + shifts[start : start + per_block, None, :]  # (s, N, 3)
            keep = np.all((shifted >= -lim) & (shifted <= 1.0 + lim), axis=-1)
            blocks.append(shifted[keep])
        return np.concatenate(blocks) @ self.basis


def lattice(cell, pbc) -> Lattice:
    """:class:`Lattice` of a checked cell (:func:`check_cell`, :func:`completed_cell`)."""
    cell, pbc = check_cell(cell, pbc)
    basis = completed_cell(cell, pbc)
    inverse = np.linalg.inv(basis)
    heights = 1.0 / np.linalg.norm(inverse, axis=0)
    for a in (cell, basis, inverse, heights, pbc):
        a.setflags(write=False)
    return Lattice(
        cell=cell, basis=basis, inverse=inverse, heights=heights, pbc=pbc, volume=abs(float(np.linalg.det(basis)))
    )


def minimum_image(vectors, cell, pbc) -> np.ndarray:
    """(M, 3) shortest representatives ``v + R @ cell`` of difference vectors ``v`` (M, 3); exact for any
    triclinic cell.

    ASE's ``find_mic`` does exactly this (Minkowski reduction of the periodic lattice, then the 27
    neighbouring translations of the rounded reduced coordinates); it is applied in chunks so memory stays
    bounded. The rounded-fractional-coordinate shortcut is *not* exact for skewed cells.
    """
    from ase.geometry import find_mic

    v = check_positions(vectors, "vectors")
    cell, pbc = check_cell(cell, pbc)
    if not pbc.any() or v.shape[0] == 0:
        return v
    out = np.empty_like(v)
    for start in range(0, v.shape[0], _MIC_CHUNK):
        out[start : start + _MIC_CHUNK] = find_mic(v[start : start + _MIC_CHUNK], cell, pbc)[0]
    return out

"""A structure periodic along the transport axis, cut open there: the device matrices without wrap-around.

The cut plane is spanned by the transverse lattice vectors, so exactly one periodic lattice vector ``a_k`` may
have a component along the axis (the others must be perpendicular to it); the cell length along the axis is
the plane spacing ``L = h_k``. Couplings inside the cut cell are kept, couplings to the cell's images along
``a_k`` are dropped; images along the transverse vectors are summed (the Gamma point of the transverse k).

- **Per-image matrices** (matrix file v2, ``MatrixData.images``): ``M_cut = sum_{R : R_k = 0} M(R)``. Exact.
- **Gamma-folded matrices** (v1, e.g. CP2K's): a folded block ``M_ab = sum_R M_ab(R)`` keeps its image only
  when at most one ``R_k`` contributes, which holds for every pair when ``L > 2 r`` (``r`` the interaction
  range: two images of one pair differ by ``L`` along the axis, so both within ``r`` needs ``L <= 2 r``).
  The contributing image is then the minimum image, and the block is kept when the minimum-image shift of
  the pair along ``a_k`` is zero, dropped otherwise. ``r`` is measured on the matrix itself: the largest
  minimum-image distance between two different atoms with a stored nonzero of H or S. A folded matrix can
  show distances only up to its largest minimum-image distance; a true range beyond ``L / 2`` shows up as
  couplings at axial distances near ``L / 2``, so ``2 r`` reaches ``L`` and the file is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hamforge.geometry import lattice, minimum_image
from hamforge.validate._layers import TransportError

__all__ = ["DeviceCut", "axial_lattice_vector", "cut_from_gamma", "cut_from_images", "cut_open"]

# A lattice vector is perpendicular to the axis when its axial component is below this fraction of its length.
_PERP_RTOL = 1e-8


@dataclass(frozen=True)
class DeviceCut:
    """Device (H, S) of a structure along an axis; ``route`` says how it was made.

    H, S            # (Norb, Norb) csr | Hartree; symmetric
    route           # "open" (no periodicity along the axis), "images" (per-image), "gamma" (folded matrices)
    lattice_vector  # k of the lattice vector cut (None when open)
    length          # cell length along the axis L = h_k, Angstrom (None when open)
    range           # gamma route: largest minimum-image distance of a coupled pair, Angstrom (else None)
    """

    H: sp.csr_matrix
    S: sp.csr_matrix
    route: str
    lattice_vector: int | None = None
    length: float | None = None
    range: float | None = None


def axial_lattice_vector(cell, pbc, ax: int, source: str = "<memory>") -> int | None:
    """Index of the one periodic lattice vector with a component along axis ``ax`` (None: open along it).

    TransportError when several periodic lattice vectors have one (the cut plane must be spanned by lattice
    vectors perpendicular to the axis)."""
    cell, pbc = np.asarray(cell, dtype=np.float64), np.asarray(pbc, dtype=bool)
    along = [i for i in range(3) if pbc[i] and abs(cell[i, ax]) > _PERP_RTOL * max(np.linalg.norm(cell[i]), 1e-300)]
    if len(along) > 1:
        raise TransportError(
            f"{source}: lattice vectors {along} all have components along the transport axis {'xyz'[ax]}: the cell "
            "cannot be cut open along it (the transverse lattice vectors must be perpendicular to the axis)"
        )
    return along[0] if along else None


def cut_from_images(images, k: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(H, S)`` = sums of the per-image blocks ``M(R)`` with ``R_k = 0`` (:class:`hamforge.io.ImageMatrices`)."""
    n = images.n_orbitals
    keep_image = np.asarray(images.shifts)[:, k] == 0
    out = []
    for m in (images.H, images.S):
        m = m.tocoo()
        sel = keep_image[m.col // n]
        c = sp.csr_matrix((m.data[sel], (m.row[sel], m.col[sel] % n)), shape=(n, n))
        c.sort_indices()
        out.append(c)
    return out[0], out[1]


def _pair_table(h, s, orbital_atom, n_atoms):
    """Sorted unique atom-pair keys ``a N + b`` of the stored nonzeros of H or S, and the pairs (a, b)."""
    keys = []
    for m in (h, s):
        m = m.tocoo()
        nz = m.data != 0
        keys.append(orbital_atom[m.row[nz]].astype(np.int64) * n_atoms + orbital_atom[m.col[nz]])
    key = np.unique(np.concatenate(keys))
    return key, key // n_atoms, key % n_atoms


def cut_from_gamma(
    h, s, positions, cell, pbc, orbital_atom, k: int, *, source: str = "<memory>"
) -> tuple[sp.csr_matrix, sp.csr_matrix, float]:
    """``(H, S, r)``: the folded ``h``, ``s`` cut open along lattice vector ``k`` (module docstring).

    ``orbital_atom`` (Norb,) is the atom of each orbital. TransportError naming ``source`` when the cell length
    along the axis does not exceed twice the interaction range ``r`` measured on the matrices."""
    h, s = sp.csr_matrix(h), sp.csr_matrix(s)
    x = np.asarray(positions, dtype=np.float64)
    orbital_atom = np.asarray(orbital_atom, dtype=np.int64)
    lat = lattice(cell, pbc)
    length = float(lat.heights[k])
    key, a, b = _pair_table(h, s, orbital_atom, x.shape[0])
    d = x[b] - x[a]
    v = minimum_image(d, lat.cell, lat.pbc)
    shift = np.rint((v - d) @ lat.inverse).astype(np.int64)  # v = d + R @ cell
    dist = np.linalg.norm(v, axis=1)
    off = a != b
    rng = float(dist[off].max()) if off.any() else 0.0
    if not length > 2.0 * rng:
        i = int(np.flatnonzero(off)[np.argmax(dist[off])])
        raise TransportError(
            f"{source}: cannot cut the Gamma-point matrices open along lattice vector {k}: the cell is {length:.3f} A "
            f"long there but H or S couple atoms {a[i]} and {b[i]} at {rng:.3f} A (minimum image), so a pair may "
            f"couple through more than one image along the axis (needs length > 2 x range = {2 * rng:.3f} A); "
            "use a longer cell (tile it along the axis) or per-image matrices (matrix file version 2)"
        )
    keep_pair = shift[:, k] == 0
    out = []
    for m in (h, s):
        m = m.tocoo()
        nz = m.data != 0
        row, col = m.row[nz], m.col[nz]
        sel = keep_pair[np.searchsorted(key, orbital_atom[row].astype(np.int64) * x.shape[0] + orbital_atom[col])]
        c = sp.csr_matrix((m.data[nz][sel], (row[sel], col[sel])), shape=m.shape)
        c.sort_indices()
        out.append(c)
    return out[0], out[1], rng


def cut_open(data, axis: int, *, source: str = "<memory>", use_images: bool = True) -> DeviceCut:
    """The device matrices of a :class:`hamforge.io.MatrixData` along ``axis`` (0, 1, 2).

    Open along the axis: ``data.H``, ``data.S`` as they are. Periodic: cut open from the per-image blocks when
    the file has them (and ``use_images``), else from the Gamma-folded matrices with the validity check."""
    k = axial_lattice_vector(data.cell, data.pbc, axis, source)
    if k is None:
        return DeviceCut(sp.csr_matrix(data.H), sp.csr_matrix(data.S), "open")
    length = float(lattice(data.cell, data.pbc).heights[k])
    if use_images and data.images is not None:
        h, s = cut_from_images(data.images, k)
        return DeviceCut(h, s, "images", k, length)
    tab = data.orbitals()
    h, s, rng = cut_from_gamma(data.H, data.S, data.positions, data.cell, data.pbc, tab.atom, k, source=source)
    return DeviceCut(h, s, "gamma", k, length, rng)

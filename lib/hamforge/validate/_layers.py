"""Principal layers along a transport axis: the block-tridiagonal form of (H, S) that NEGF needs.

Orbitals are ordered by the coordinate of their atom along the axis (ties: atom index, then orbital order
inside the atom) and grouped into slabs of ``thickness`` Angstrom; by default the thickness is the interaction
range along the axis (the largest axial distance between two atoms that H or S couple), which guarantees that
every coupling joins the same or neighbouring layers. That is checked for any thickness: a coupling that skips
a layer is an error.

Lead blocks use one convention for both leads: ``H01``/``S01`` couple a cell to the next cell in the direction
of increasing coordinate. The left lead is cells ..., -2, -1 before device layer 0 (``H_{-1,0} = H01``), the
right lead cells N, N+1, ... after layer N-1 (``H_{N-1,N} = H01``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hamforge.validate._checks import ValidationError

__all__ = ["LayeredDevice", "LeadBlocks", "TransportError", "interaction_range", "layered_device", "leads_from_device"]


class TransportError(ValidationError):
    """A structure or matrix set that NEGF transport cannot use (too short, periodic, mismatched leads)."""


@dataclass(frozen=True)
class LeadBlocks:
    """One principal layer of a semi-infinite lead: onsite ``H00``, ``S00`` and coupling to the next cell."""

    H00: np.ndarray  # (n, n) Hartree
    S00: np.ndarray  # (n, n)
    H01: np.ndarray  # (n, n) Hartree | block [cell c, cell c+1] along increasing coordinate
    S01: np.ndarray  # (n, n)

    def __post_init__(self):
        n = self.H00.shape[0]
        for name in ("H00", "S00", "H01", "S01"):
            a = getattr(self, name)
            if a.shape != (n, n):
                raise TransportError(f"lead block {name} has shape {a.shape}, expected ({n}, {n})")

    @property
    def n(self) -> int:
        return self.H00.shape[0]


@dataclass(frozen=True)
class LayeredDevice:
    """(H, S) of a finite device as block-tridiagonal dense blocks, layer by layer along the axis."""

    order: np.ndarray  # (Norb,) int64 | orbital permutation: position p holds original orbital order[p]
    bounds: np.ndarray  # (L+1,) int64 | layer l occupies permuted orbitals bounds[l]:bounds[l+1]
    thickness: float  # Angstrom
    H_diag: tuple  # L x (n_l, n_l)
    S_diag: tuple
    H_up: tuple  # L-1 x (n_l, n_{l+1}) | block [layer l, layer l+1]
    S_up: tuple

    @property
    def n_layers(self) -> int:
        return len(self.H_diag)

    @property
    def layer_sizes(self) -> np.ndarray:
        return np.diff(self.bounds)


def _coupled_atom_pairs(h: sp.spmatrix, s: sp.spmatrix, orbital_atom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique (atom a, atom b) pairs with a stored nonzero of H or S between them (a != b)."""
    pattern = (abs(sp.csr_matrix(h)) + abs(sp.csr_matrix(s))).tocoo()
    keep = pattern.data != 0
    a, b = orbital_atom[pattern.row[keep]], orbital_atom[pattern.col[keep]]
    off = a != b
    n_atoms = int(orbital_atom.max()) + 1 if orbital_atom.size else 0
    key = np.unique(a[off].astype(np.int64) * n_atoms + b[off])
    return key // max(n_atoms, 1), key % max(n_atoms, 1)


def interaction_range(h, s, coord: np.ndarray, orbital_atom: np.ndarray) -> float:
    """Largest axial distance |x_a - x_b| (Angstrom) between two atoms coupled by H or S."""
    a, b = _coupled_atom_pairs(h, s, orbital_atom)
    return float(np.max(np.abs(coord[a] - coord[b]))) if a.size else 0.0


def layered_device(
    h: sp.spmatrix,
    s: sp.spmatrix,
    coord: np.ndarray,
    orbital_atom: np.ndarray,
    *,
    thickness: float | None = None,
    source: str = "<memory>",
) -> LayeredDevice:
    """Split (H, S) into principal layers along one axis.

    ``coord`` (N,) is each atom's coordinate along the transport axis (Angstrom), ``orbital_atom`` (Norb,) the
    atom of each orbital. ``thickness`` defaults to the interaction range (see module docstring); layer l holds
    atoms with ``floor((x - x_min) / thickness) = l`` (empty slabs are dropped). Raises :class:`TransportError`
    when a coupling joins layers that are not neighbours.
    """
    coord = np.asarray(coord, dtype=np.float64)
    orbital_atom = np.asarray(orbital_atom, dtype=np.int64)
    h, s = sp.csr_matrix(h), sp.csr_matrix(s)
    a, b = _coupled_atom_pairs(h, s, orbital_atom)
    rng = float(np.max(np.abs(coord[a] - coord[b]))) if a.size else 0.0
    length = float(coord.max() - coord.min())
    if thickness is None:
        thickness = rng if rng > 0 else max(length, 1.0)
    if not thickness > 0:
        raise TransportError(f"{source}: layer thickness must be > 0 Angstrom, got {thickness}")
    # 1e-9 A slack: atoms that sit exactly on a slab boundary up to round-off go to the upper slab
    raw = np.floor((coord - coord.min()) / thickness + 1e-9).astype(np.int64)
    _, layer = np.unique(raw, return_inverse=True)
    layer = layer.reshape(-1)
    if a.size:
        skip = np.abs(layer[a] - layer[b]) > 1
        if np.any(skip):
            i = int(np.argmax(np.abs(coord[a] - coord[b]) * skip))
            raise TransportError(
                f"{source}: atoms {a[i]} and {b[i]} are coupled across {abs(layer[a[i]] - layer[b[i]]) - 1} "
                f"principal layer(s) (axial distance {abs(coord[a[i]] - coord[b[i]]):.3f} A, layer thickness "
                f"{thickness:.3f} A): the layers are thinner than the interaction range {rng:.3f} A, or the structure "
                "couples across a periodic boundary along the axis"
            )
    n_orb = orbital_atom.size
    order = np.lexsort((np.arange(n_orb), orbital_atom, coord[orbital_atom], layer[orbital_atom]))
    counts = np.bincount(layer[orbital_atom], minlength=int(layer.max()) + 1)
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    hp = h[order][:, order].tocsr()
    sp_ = s[order][:, order].tocsr()
    sl = [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(len(counts))]
    return LayeredDevice(
        order=order.astype(np.int64),
        bounds=bounds,
        thickness=float(thickness),
        H_diag=tuple(hp[x, x].toarray() for x in sl),
        S_diag=tuple(sp_[x, x].toarray() for x in sl),
        H_up=tuple(hp[x, y].toarray() for x, y in itertools.pairwise(sl)),
        S_up=tuple(sp_[x, y].toarray() for x, y in itertools.pairwise(sl)),
    )


def leads_from_device(dev: LayeredDevice, source: str = "<memory>") -> tuple[LeadBlocks, LeadBlocks]:
    """Left and right leads repeating the device's end layers: (layer 0, coupling 0-1), (layer N-1, N-2-(N-1))."""
    sizes = dev.layer_sizes
    if dev.n_layers < 2:
        raise TransportError(
            f"{source}: structure too short along the transport axis: {dev.n_layers} principal layer of "
            f"{dev.thickness:.3f} A; leads taken from the end layers need at least 2"
        )
    for side, (i, j) in (("left", (0, 1)), ("right", (-2, -1))):
        if sizes[i] != sizes[j]:
            raise TransportError(
                f"{source}: the {side} end layers have {sizes[i]} and {sizes[j]} orbitals: they are not one "
                f"periodic lead (layer thickness {dev.thickness:.3f} A); choose a thickness equal to the lead "
                "period or give the lead blocks explicitly"
            )
    left = LeadBlocks(dev.H_diag[0], dev.S_diag[0], dev.H_up[0], dev.S_up[0])
    right = LeadBlocks(dev.H_diag[-1], dev.S_diag[-1], dev.H_up[-1], dev.S_up[-1])
    return left, right

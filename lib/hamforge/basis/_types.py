"""Basis data types: shells of one element or kind, and the orbital table of a structure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hamforge._errors import HamforgeError

__all__ = ["BasisError", "ElementBasis", "OrbitalTable", "orbital_table"]


class BasisError(ValueError, HamforgeError):
    """A basis file, basis name or orbital layout is missing or inconsistent."""


@dataclass(frozen=True)
class ElementBasis:
    """Contracted shells of one atomic kind, in CP2K's order.

    ``shells`` holds the angular momentum of each contracted shell (e.g. ``(0, 1)`` for Si SZV,
    ``(0, 0, 1, 2)`` for Hf SZV). A shell of angular momentum l holds 2l+1 orbitals, m = -l..l.
    """

    element: str
    name: str
    shells: tuple[int, ...]

    def __post_init__(self):
        if not self.shells:
            raise BasisError(f"basis {self.name!r} of {self.element!r} has no shells")
        if any((not isinstance(l, (int, np.integer))) or l < 0 for l in self.shells):
            raise BasisError(f"basis {self.name!r} of {self.element!r}: invalid shell l values {self.shells}")

    @property
    def n_orbitals(self) -> int:
        return int(sum(2 * l + 1 for l in self.shells))

    @property
    def l_max(self) -> int:
        return max(self.shells)


@dataclass(frozen=True)
class OrbitalTable:
    """Per-orbital and per-atom index arrays of a structure (the project's single index authority).

    Orbitals are ordered atom by atom (input order), shell by shell (basis order), m = -l..l.
    """

    atom: np.ndarray  # (Norb,) int64 | atom of each orbital
    shell: np.ndarray  # (Norb,) int64 | shell index inside its atom
    l: np.ndarray  # (Norb,) int64 | angular momentum
    m: np.ndarray  # (Norb,) int64 | order, -l..l
    n_orb: np.ndarray  # (N,) int64 | orbitals per atom
    offset: np.ndarray  # (N+1,) int64 | first orbital of each atom; offset[-1] = Norb

    @property
    def n_orbitals(self) -> int:
        return int(self.offset[-1])


def orbital_table(kinds, basis: dict[str, ElementBasis]) -> OrbitalTable:
    """Orbital table for atoms of the given kinds (sequence of kind labels) with ``basis[kind]``.

    Vectorized over atoms: built per kind and scattered, no per-atom Python loop.
    """
    kinds = np.asarray(kinds)
    if kinds.ndim != 1:
        raise BasisError("kinds must be a 1-D sequence of kind labels")
    missing = sorted(set(kinds.tolist()) - set(basis))
    if missing:
        raise BasisError(f"no basis set given for kind(s) {missing}; known: {sorted(basis)}")
    uniq, inv = np.unique(kinds, return_inverse=True)
    per_kind_norb = np.array([basis[k].n_orbitals for k in uniq.tolist()], dtype=np.int64)
    n_orb = per_kind_norb[inv]
    offset = np.zeros(len(kinds) + 1, dtype=np.int64)
    np.cumsum(n_orb, out=offset[1:])
    norb = int(offset[-1])
    # per-kind templates of (shell, l, m) for one atom
    templ = []
    for k in uniq.tolist():
        sh = basis[k].shells
        s_idx = np.repeat(np.arange(len(sh)), [2 * l + 1 for l in sh])
        l_arr = np.repeat(np.asarray(sh), [2 * l + 1 for l in sh])
        m_arr = np.concatenate([np.arange(-l, l + 1) for l in sh])
        templ.append((s_idx, l_arr, m_arr))
    atom = np.repeat(np.arange(len(kinds), dtype=np.int64), n_orb)
    local = np.arange(norb, dtype=np.int64) - offset[atom]
    kind_of_orb = inv[atom]
    shell = np.empty(norb, dtype=np.int64)
    l = np.empty(norb, dtype=np.int64)
    m = np.empty(norb, dtype=np.int64)
    for ki, (s_idx, l_arr, m_arr) in enumerate(templ):
        sel = kind_of_orb == ki
        shell[sel] = s_idx[local[sel]]
        l[sel] = l_arr[local[sel]]
        m[sel] = m_arr[local[sel]]
    return OrbitalTable(atom=atom, shell=shell, l=l, m=m, n_orb=n_orb, offset=offset)


class RaggedBlocks(NamedTuple):
    """Dense blocks of different shapes in one flat array (atom blocks of H or S; one record for every room).

    Fields::

        data     # (sum_p rows_p * cols_p,) float64 | blocks row-major, one after the other
        offsets  # (P + 1,) int64                   | block p is data[offsets[p]:offsets[p + 1]]
        shape    # (P, 2) int64                     | (rows, cols) of block p
    """

    data: np.ndarray
    offsets: np.ndarray
    shape: np.ndarray

    def block(self, p: int) -> np.ndarray:
        """Block ``p`` as a ``(rows, cols)`` view of ``data``."""
        r, c = (int(v) for v in self.shape[p])
        return self.data[self.offsets[p] : self.offsets[p + 1]].reshape(r, c)

    @property
    def n_blocks(self) -> int:
        """Number of blocks P."""
        return int(self.shape.shape[0])

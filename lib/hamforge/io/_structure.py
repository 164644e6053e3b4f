"""The ``/structure`` and ``/basis`` groups shared by the matrix and targets files, and reading a structure
from any file (hamforge HDF5 files or anything ASE reads).

Layout::

    /structure/numbers   (N,)   int64    atomic numbers (0 for ghost atoms)
    /structure/positions (N, 3) float64  Angstrom
    /structure/cell      (3, 3) float64  rows are lattice vectors, Angstrom
    /structure/pbc       (3,)   bool
    /structure/kinds     (N,)   str      CP2K kind label of each atom (basis key)
    /basis/<kind>        (nshell,) int64 shell angular momenta; attrs element, name
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from hamforge.basis import ElementBasis
from hamforge.geometry import check_cell, check_reps, tile_positions
from hamforge.io._h5 import FileFormatError, H5Reader, open_h5

__all__ = [
    "Structure",
    "StructureFileError",
    "read_structure",
    "read_structure_basis",
    "read_structure_group",
    "write_structure_groups",
    "read_basis_group",
]


class StructureFileError(FileFormatError):
    """A structure file cannot be read or describes no valid structure (message names the file)."""


@dataclass(frozen=True, eq=False)
class Structure:
    """Atoms of one structure (Angstrom; ``cell`` rows are lattice vectors; ``kinds`` default to symbols)."""

    numbers: np.ndarray  # (N,) int64
    positions: np.ndarray  # (N, 3) float64
    cell: np.ndarray  # (3, 3) float64
    pbc: np.ndarray  # (3,) bool
    kinds: np.ndarray  # (N,) str (object)
    source: str = "<memory>"

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    def tile(self, reps) -> "Structure":
        """This structure repeated ``reps = (n0, n1, n2)`` times along its lattice vectors (periodic axes only).

        Copy-major order (:func:`hamforge.geometry.tile_positions`): copy ``c`` of atom ``a`` is atom
        ``flat(c) * N + a``. ``source`` gets the suffix ``[n0xn1xn2]``; (1, 1, 1) returns ``self``."""
        reps = check_reps(reps, self.pbc, name=f"{self.source}: tiling")
        if np.all(reps == 1):
            return self
        xs, cs, copies = tile_positions(self.positions, self.cell, reps)
        nc = copies.shape[0]
        return Structure(
            numbers=np.tile(self.numbers, nc),
            positions=xs,
            cell=cs,
            pbc=self.pbc.copy(),
            kinds=np.tile(np.asarray(self.kinds, dtype=object), nc),
            source=f"{self.source}[{'x'.join(str(int(r)) for r in reps)}]",
        )


def write_structure_groups(f, structure, basis: Mapping[str, ElementBasis]) -> None:
    """Write ``/structure`` (numbers, positions, cell, pbc, kinds) and ``/basis/<kind>`` into open HDF5 file ``f``."""
    import h5py

    g = f.create_group("structure")
    g.create_dataset("numbers", data=np.asarray(structure.numbers, dtype=np.int64))
    g.create_dataset("positions", data=np.asarray(structure.positions, dtype=np.float64))
    g.create_dataset("cell", data=np.asarray(structure.cell, dtype=np.float64))
    g.create_dataset("pbc", data=np.asarray(structure.pbc, dtype=bool))
    g.create_dataset("kinds", data=np.asarray(structure.kinds, dtype=object), dtype=h5py.string_dtype())
    b = f.create_group("basis")
    for kind, eb in sorted(basis.items()):
        d = b.create_dataset(kind, data=np.asarray(eb.shells, dtype=np.int64))
        d.attrs["element"] = eb.element
        d.attrs["name"] = eb.name


def read_structure_group(r: H5Reader, kinds_required: bool = True) -> Structure:
    """``/structure`` of an open file, checked (shapes, finiteness, a valid cell, coincident atoms are left to
    the neighbour search); errors are ``r``'s error class naming the file and field."""
    numbers = r.array("structure/numbers", dtype="i", shape=(-1,))
    n = numbers.shape[0]
    positions = r.array("structure/positions", dtype="f", shape=(n, 3), finite=True)
    cell = r.array("structure/cell", dtype="f", shape=(3, 3), finite=True)
    pbc = r.array("structure/pbc", dtype="b", shape=(3,))
    try:
        cell, pbc = check_cell(cell, pbc)
    except ValueError as exc:
        r.fail("/structure/cell", str(exc))
    if "structure/kinds" in r.f or kinds_required:
        kinds = r.array("structure/kinds", dtype="U", shape=(n,))
    else:
        kinds = np.array([str(z) for z in numbers], dtype=object)
    return Structure(numbers=numbers, positions=positions, cell=cell, pbc=pbc, kinds=kinds, source=r.source)


def read_basis_group(r: H5Reader) -> dict[str, ElementBasis]:
    """``/basis/<kind>`` of an open file as ElementBasis objects."""
    out = {}
    for k, d in r.group("basis").items():
        where = f"/basis/{k}"
        shells = r.array(f"basis/{k}", dtype="i", shape=(-1,))
        try:
            out[k] = ElementBasis(
                element=r.attr("element", str, d, where),
                name=r.attr("name", str, d, where),
                shells=tuple(int(x) for x in shells),
            )
        except ValueError as exc:
            if isinstance(exc, r.error):
                raise
            r.fail(where, str(exc))
    return out


def read_structure(path: str | os.PathLike, index: int | str = -1) -> Structure:
    """The structure of any file: a hamforge matrix or targets file (``/structure``), or anything
    ``ase.io.read`` reads (frame ``index``, default the last; extxyz, CIF, POSCAR, LAMMPS data, ...).

    Raises :class:`StructureFileError` naming the file (missing, unreadable, no atoms, bad cell).
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise StructureFileError(f"{src}: no such structure file")
    if path.suffix.lower() in (".h5", ".hdf5"):
        with open_h5(path, "structure file", StructureFileError) as f:
            return read_structure_group(H5Reader(f, src, StructureFileError), kinds_required=False)
    import ase.io

    try:
        atoms = ase.io.read(path, index=index)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise StructureFileError(f"{src}: ASE cannot read this structure file ({type(exc).__name__}: {exc})") from exc
    if len(atoms) == 0:
        raise StructureFileError(f"{src}: the structure has no atoms")
    positions = np.array(atoms.positions, dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise StructureFileError(f"{src}: positions: non-finite values")
    try:
        cell, pbc = check_cell(np.array(atoms.cell[:], dtype=np.float64), np.array(atoms.pbc, dtype=bool))
    except ValueError as exc:
        raise StructureFileError(f"{src}: {exc}") from exc
    # kind labels: the per-atom array 'kinds' when the file has one (post-quench ghosts and dopants,
    # hamforge.structures.KINDS_ARRAY), else the chemical symbols
    kinds = np.array(atoms.arrays["kinds"] if "kinds" in atoms.arrays else atoms.get_chemical_symbols(), dtype=object)
    kinds = np.array([str(k) for k in kinds], dtype=object)
    return Structure(
        numbers=atoms.numbers.astype(np.int64), positions=positions, cell=cell, pbc=pbc, kinds=kinds, source=src
    )


def read_structure_basis(path: str | os.PathLike) -> dict[str, ElementBasis] | None:
    """The ``/basis`` group (kind -> ElementBasis) of a hamforge HDF5 file; None for any other structure file."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return None
    with open_h5(path, "structure file", StructureFileError) as f:
        if "basis" not in f:
            return None
        return read_basis_group(H5Reader(f, str(path), StructureFileError))

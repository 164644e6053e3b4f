"""The matrix file: structure, basis, and Gamma-point H and S of one structure (HDF5).

Layout (format ``hamforge.matrices``, version 1; read by other tools, keep stable)::

    attrs: format, version, energy_unit="Hartree", length_unit="Angstrom", provenance (JSON string)
    /structure/numbers   (N,)   int64    atomic numbers (0 for ghost atoms)
    /structure/positions (N, 3) float64  Angstrom
    /structure/cell      (3, 3) float64  rows are lattice vectors, Angstrom
    /structure/pbc       (3,)   bool
    /structure/kinds     (N,)   str      CP2K kind label of each atom (basis key)
    /basis/<kind>        (nshell,) int64 shell angular momenta; attrs element, name
    /orbitals/atom, /orbitals/l, /orbitals/m   (Norb,) int64
    /H, /S               CSR groups: data (nnz,) float64, indices (nnz,) int64, indptr (Norb+1,) int64,
                         shape (2,) int64; full symmetric matrices in Hartree (S dimensionless)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from hamforge._structure_checks import check_structure
from hamforge.basis import ElementBasis, OrbitalTable, orbital_table
from hamforge.io._atomic import atomic_path
from hamforge.io._h5 import FileFormatError, H5Reader, open_h5
from hamforge.io._structure import read_basis_group, read_structure_group, write_structure_groups

__all__ = ["MatrixFileError", "MatrixData", "write_matrix_file", "read_matrix_file", "MATRIX_FORMAT"]

MATRIX_FORMAT = "hamforge.matrices"
MATRIX_VERSION = 1


class MatrixFileError(FileFormatError):
    """A matrix file is missing a field or its fields are inconsistent (message names file and field)."""


@dataclass(frozen=True)
class MatrixData:
    """In-memory content of a matrix file (see module docstring for units and shapes)."""

    numbers: np.ndarray  # (N,) int64
    positions: np.ndarray  # (N, 3) float64, Angstrom
    cell: np.ndarray  # (3, 3) float64, rows = lattice vectors
    pbc: np.ndarray  # (3,) bool
    kinds: np.ndarray  # (N,) str
    basis: Mapping[str, ElementBasis]
    H: sp.csr_matrix  # (Norb, Norb) Hartree
    S: sp.csr_matrix  # (Norb, Norb)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    def orbitals(self) -> OrbitalTable:
        return orbital_table(self.kinds, dict(self.basis))

    def validate(self, source: str = "<memory>") -> None:
        """Raise :class:`MatrixFileError` naming ``source`` and the field when anything is inconsistent."""
        n = len(self.numbers)

        def bad(fieldname: str, msg: str):
            raise MatrixFileError(f"{source}: {fieldname}: {msg}")

        if self.positions.shape != (n, 3):
            bad("/structure/positions", f"shape {self.positions.shape}, expected ({n}, 3)")
        if not np.all(np.isfinite(self.positions)):
            bad("/structure/positions", "non-finite values")
        if self.cell.shape != (3, 3):
            bad("/structure/cell", f"shape {self.cell.shape}, expected (3, 3)")
        if self.pbc.shape != (3,):
            bad("/structure/pbc", f"shape {self.pbc.shape}, expected (3,)")
        if self.kinds.shape != (n,):
            bad("/structure/kinds", f"shape {self.kinds.shape}, expected ({n},)")
        missing = sorted(set(self.kinds.tolist()) - set(self.basis))
        if missing:
            bad("/basis", f"no basis for kind(s) {missing}")
        norb = self.orbitals().n_orbitals
        for name, m in (("/H", self.H), ("/S", self.S)):
            if m.shape != (norb, norb):
                bad(name, f"shape {m.shape} but the basis gives {norb} orbitals for {n} atoms")
            if not np.all(np.isfinite(m.data)):
                bad(name, "non-finite values")


def _write_csr(group, m: sp.csr_matrix) -> None:
    m = sp.csr_matrix(m)
    m.sort_indices()
    group.create_dataset("data", data=m.data.astype(np.float64))
    group.create_dataset("indices", data=m.indices.astype(np.int64))
    group.create_dataset("indptr", data=m.indptr.astype(np.int64))
    group.create_dataset("shape", data=np.asarray(m.shape, dtype=np.int64))


def write_matrix_file(path: str | os.PathLike, data: MatrixData) -> None:
    """Validate ``data`` and write it to ``path`` atomically (temp file + rename)."""
    import h5py

    data.validate(str(path))
    tab = data.orbitals()
    prov = {"program": "hamforge", **dict(data.provenance)}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = MATRIX_FORMAT
            f.attrs["version"] = MATRIX_VERSION
            f.attrs["energy_unit"] = "Hartree"
            f.attrs["length_unit"] = "Angstrom"
            f.attrs["provenance"] = json.dumps(prov, sort_keys=True, default=str)
            write_structure_groups(f, data, data.basis)
            o = f.create_group("orbitals")
            o.create_dataset("atom", data=tab.atom)
            o.create_dataset("l", data=tab.l)
            o.create_dataset("m", data=tab.m)
            _write_csr(f.create_group("H"), data.H)
            _write_csr(f.create_group("S"), data.S)


def read_matrix_file(path: str | os.PathLike) -> MatrixData:
    """Read and validate a matrix file; errors name the file and the missing or bad field."""
    path = Path(path)
    with open_h5(path, "matrix file", MatrixFileError) as f:
        r = H5Reader(f, str(path), MatrixFileError)
        r.check_header(MATRIX_FORMAT, (MATRIX_VERSION,))

        def csr(name: str) -> sp.csr_matrix:
            shape = tuple(int(x) for x in r.array(f"{name}/shape", dtype="i", shape=(2,)))
            data = r.array(f"{name}/data", dtype="f", shape=(-1,))
            indices = r.array(f"{name}/indices", dtype="i", shape=(data.shape[0],))
            indptr = r.array(f"{name}/indptr", dtype="i", shape=(shape[0] + 1,))
            if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
                r.fail(f"/{name}/indices", f"column indices outside 0..{shape[1] - 1}")
            if indptr[0] != 0 or indptr[-1] != data.shape[0] or np.any(np.diff(indptr) < 0):
                r.fail(f"/{name}/indptr", "not non-decreasing from 0 to nnz")
            return sp.csr_matrix((data, indices, indptr), shape=shape)

        s = read_structure_group(r)
        data = MatrixData(
            numbers=s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc, kinds=s.kinds,
            basis=read_basis_group(r), H=csr("H"), S=csr("S"), provenance=r.json_attr("provenance", default={}),
        )
    data.validate(str(path))
    # a zero cell or coincident atoms make every downstream matrix meaningless: refuse them naming the file
    check_structure(data.positions, data.cell, data.pbc, str(path), error=MatrixFileError)
    return data

"""The matrix file: structure, basis, and Gamma-point H and S of one structure (HDF5).

Layout (format ``hamforge.matrices``, version 1, 2 or 3; read by other tools, keep stable)::

    attrs: format, version, energy_unit="Hartree", length_unit="Angstrom", provenance (JSON string)
    /structure/numbers   (N,)   int64    atomic numbers (0 for ghost atoms)
    /structure/positions (N, 3) float64  Angstrom
    /structure/cell      (3, 3) float64  rows are lattice vectors, Angstrom
    /structure/pbc       (3,)   bool
    /structure/kinds     (N,)   str      CP2K kind label of each atom (basis key)
    /basis/<kind>        (nshell,) int64 shell angular momenta; attrs element, name
    /orbitals/atom, /orbitals/l, /orbitals/m   (Norb,) int64
    /H, /S               CSR groups: data (nnz,) float64 (float32 allowed for H), indices (nnz,) int32 or
                         int64, indptr (Norb+1,) int64, shape (2,) int64; full symmetric Gamma-point
                         matrices in Hartree (S dimensionless); data and indices chunked, shuffle + deflate

Version 3 (written when per-image matrices are present, e.g. by prediction) adds ``/images``: the lattice
images ``/images/shifts (K, 3)`` and per-image ``/images/H``, ``/images/S`` of shape (Norb, K Norb)
(``hamforge.io._images``), the primary data. ``/H`` and ``/S`` are then written only when the Gamma matrices
are not the plain image sums, i.e. when some atom pair (or an atom and its own image) is coupled through two
images; otherwise every Gamma element is exactly one image element and readers derive it (bit for bit).
Version 2 files (always both, int64 indices) and version 1 files (the DFT stage's; no ``/images``,
``MatrixData.images`` is then None) still read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from hamforge._structure_checks import check_structure
from hamforge.basis import ElementBasis, OrbitalTable, orbital_table
from hamforge.io._atomic import atomic_path, check_output_path, strict_json
from hamforge.io._h5 import FileFormatError, H5Reader, open_h5
from hamforge.io._images import (
    CSRWriter,
    ImageMatrices,
    NonFiniteError,
    read_csr_group,
    write_csr_group,
    write_csr_virtual,
)
from hamforge.io._structure import (
    read_basis_group,
    read_structure_group,
    write_structure_groups,
)

__all__ = [
    "MATRIX_FORMAT",
    "MATRIX_VERSION",
    "MATRIX_VERSIONS",
    "MatrixData",
    "MatrixFileError",
    "MatrixFileWriter",
    "matrix_file_writer",
    "read_matrix_file",
    "read_matrix_rows",
    "write_matrix_file",
]

MATRIX_FORMAT = "hamforge.matrices"
MATRIX_VERSION = 3  # the newest version this hamforge writes (1 when a file has no per-image matrices)
MATRIX_VERSIONS = (1, 2, 3)


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
    images: ImageMatrices | None = None  # per-image H(R), S(R) (version 2 files)

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
        if self.images is not None:
            self.images.validate(norb, bad)


class MatrixFileWriter:
    """An open matrix file being written (from :func:`matrix_file_writer`): the structure, basis and orbitals
    are written; add ``/H``, ``/S`` (and ``/images``) whole (:meth:`write_csr`) or row slab by row slab
    (:meth:`csr_writer`); :attr:`provenance` may be updated until the file is closed."""

    def __init__(self, f, n_orbitals: int, provenance: dict):
        self.f, self.n_orbitals, self.provenance = f, int(n_orbitals), provenance
        self._open: list[CSRWriter] = []

    def csr_writer(self, name: str, shape, dtype=np.float64) -> CSRWriter:
        """A :class:`hamforge.io._images.CSRWriter` for CSR group ``name`` ("H", "S", "images/H", "images/S")."""
        w = CSRWriter(self.f.create_group(name), shape, dtype)
        self._open.append(w)
        return w

    def write_csr_virtual(self, name: str, shape, parts, dtype, index_dtype) -> None:
        """CSR group ``name`` as virtual datasets over part files beside this one
        (:func:`hamforge.io._images.write_csr_virtual`)."""
        write_csr_virtual(self.f.create_group(name), shape, parts, dtype, index_dtype)

    def write_csr(self, name: str, m) -> None:
        write_csr_group(self.f.create_group(name), m)

    def write_shifts(self, shifts) -> None:
        self.f.require_group("images").create_dataset("shifts", data=np.asarray(shifts, np.int64).reshape(-1, 3))


@contextlib.contextmanager
def matrix_file_writer(
    path: str | os.PathLike,
    structure,
    basis: Mapping[str, ElementBasis],
    provenance: Mapping[str, Any] | None = None,
    inputs=(),
):
    """Write a matrix file atomically in pieces: ``with matrix_file_writer(path, structure, basis) as w: ...``.

    ``structure`` has ``numbers``, ``positions``, ``cell``, ``pbc``, ``kinds``. On leaving the block the CSR
    writers must be complete; the version is 2 when ``/images`` was written, else 1; the file appears only then
    (and not at all on an exception). With ``/images`` (version 3) ``/H`` and ``/S`` may be left out when they
    are the plain image sums (module docstring). ``inputs``: files the output must not overwrite."""
    import h5py

    tab = orbital_table(structure.kinds, dict(basis))
    prov = {"program": "hamforge", **dict(provenance or {})}
    check_output_path(path, inputs)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = MATRIX_FORMAT
        f.attrs["energy_unit"] = "Hartree"
        f.attrs["length_unit"] = "Angstrom"
        write_structure_groups(f, structure, basis)
        o = f.create_group("orbitals")
        o.create_dataset("atom", data=tab.atom)
        o.create_dataset("l", data=tab.l)
        o.create_dataset("m", data=tab.m)
        w = MatrixFileWriter(f, tab.n_orbitals, prov)
        try:
            yield w
        except NonFiniteError as exc:
            raise MatrixFileError(f"{path}: {exc}; nothing written") from None
        for c in w._open:
            c.close()
        need = ("images/shifts", "images/H", "images/S") if "images" in f else ("H", "S")
        missing = [g for g in need if g not in f]
        if missing:
            raise MatrixFileError(f"{path}: {', '.join('/' + g for g in missing)}: not written")
        f.attrs["version"] = 3 if "images" in f else 1
        f.attrs["provenance"] = strict_json(w.provenance, sort_keys=True)


def write_matrix_file(path: str | os.PathLike, data: MatrixData) -> None:
    """Validate ``data`` and write it to ``path`` atomically (temp file + rename); version 3 (with the Gamma
    matrices) when ``data.images`` is set, else version 1."""
    data.validate(str(path))
    with matrix_file_writer(path, data, data.basis, data.provenance) as w:
        w.write_csr("H", data.H)
        w.write_csr("S", data.S)
        if data.images is not None:
            w.write_shifts(data.images.shifts)
            w.write_csr("images/H", data.images.H)
            w.write_csr("images/S", data.images.S)


def read_matrix_file(path: str | os.PathLike, images: bool = True) -> MatrixData:
    """Read and validate a matrix file (version 1, 2 or 3); errors name the file and the missing or bad field.

    ``images=False`` leaves out the per-image matrices (``MatrixData.images`` is None; a version 3 file without
    stored Gamma matrices still reads them once to derive H and S)."""
    path = Path(path)
    with open_h5(path, "matrix file", MatrixFileError) as f:
        r = H5Reader(f, str(path), MatrixFileError)
        version = r.check_header(MATRIX_FORMAT, MATRIX_VERSIONS)

        def csr(name):
            return read_csr_group(r, name)

        image_mats = None
        derive = version >= 3 and not ("H" in f and "S" in f)
        if version >= 2 and (images or derive):
            r.group("images")
            image_mats = ImageMatrices(
                shifts=r.array("images/shifts", dtype="i", shape=(-1, 3)), H=csr("images/H"), S=csr("images/S")
            )
        if derive:
            image_mats.validate(image_mats.n_orbitals, lambda fld, msg: r.fail(fld, msg))
            gamma_h, gamma_s = image_mats.gamma("H"), image_mats.gamma("S")
        else:
            gamma_h, gamma_s = csr("H"), csr("S")
        s = read_structure_group(r)
        data = MatrixData(
            numbers=s.numbers,
            positions=s.positions,
            cell=s.cell,
            pbc=s.pbc,
            kinds=s.kinds,
            basis=read_basis_group(r),
            H=gamma_h,
            S=gamma_s,
            provenance=r.json_attr("provenance", default={}),
            images=image_mats if images else None,
        )
    data.validate(str(path))
    # a zero cell or coincident atoms make every downstream matrix meaningless: refuse them naming the file
    check_structure(data.positions, data.cell, data.pbc, str(path), error=MatrixFileError)
    return data


def read_matrix_rows(path: str | os.PathLike, which: str = "H", rows=slice(None), image=None) -> sp.csr_matrix:
    """Rows ``rows`` (a slice, or a block row's ``OrbitalTable`` range) of one matrix of a matrix file, reading
    only the chunks that hold them (a block row of a 10^5-atom file in milliseconds).

    ``which``: "H" or "S". ``image``: None gives the Gamma-point rows (Norb columns; stored, or summed from the
    images of a version 3 file that does not store them), ``"all"`` the per-image rows (K Norb columns, version 2
    and 3), or a lattice shift (3 ints) the rows of that image ``M(R)`` (Norb columns)."""
    from hamforge.io._images import read_csr_rows

    if which not in ("H", "S"):
        raise MatrixFileError(f"{path}: which: expected 'H' or 'S', got {which!r}")
    with open_h5(Path(path), "matrix file", MatrixFileError) as f:
        r = H5Reader(f, str(path), MatrixFileError)
        version = r.check_header(MATRIX_FORMAT, MATRIX_VERSIONS)
        if image is None and which in f:
            return read_csr_rows(r, which, rows)
        if version < 2:
            r.fail("/images", f"a version {version} file has no per-image matrices")
        m = read_csr_rows(r, f"images/{which}", rows)
        shifts = r.array("images/shifts", dtype="i", shape=(-1, 3))
    norb = m.shape[1] // shifts.shape[0]
    if isinstance(image, str) and image == "all":
        return m
    coo = m.tocoo()
    if image is None:
        out = sp.csr_matrix((coo.data, (coo.row, coo.col % norb)), shape=(m.shape[0], norb))
    else:
        hit = np.flatnonzero(np.all(shifts == np.asarray(image, np.int64).reshape(1, 3), axis=1))
        if not hit.size:
            raise MatrixFileError(f"{path}: /images/shifts: image {list(np.asarray(image).tolist())} not stored")
        keep = coo.col // norb == int(hit[0])
        out = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep] % norb)), shape=(m.shape[0], norb))
    out.sort_indices()
    return out

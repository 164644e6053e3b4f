"""Per-image matrices H(R), S(R) of matrix files version 2, and CSR groups written row slab by row slab.

Layout (``docs/data-formats.md``)::

    /images/shifts (K, 3) int64   distinct lattice images R_k (rows sorted lexicographically, R = 0 included)
    /images/H, /images/S          CSR groups of shape (Norb, K Norb): column k Norb + b of row a holds
                                  M_ab(R_k) = <a in cell 0 | M | b in cell R_k>

the supercell layout sisl uses (``Hamiltonian.tocsr()``), so ``M(k) = sum_k M(R_k) exp(2 pi i k . R_k)`` (k in
fractional reciprocal coordinates) and ``M(Gamma) = sum_k M(R_k)``; transport codes take a lead's coupling
blocks from single images without wrap-around. Open axes have R = 0 only.

A CSR group (``data``, ``indices``, ``indptr``, ``shape``) is appended row slab by row slab through
:class:`CSRWriter` into resizable datasets, so a matrix is never held whole while it is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hamforge._errors import HamforgeError

__all__ = [
    "COMPRESSION",
    "CSRWriter",
    "ImageMatrices",
    "NonFiniteError",
    "read_csr_group",
    "read_csr_rows",
    "write_csr_group",
    "write_csr_virtual",
]

# Elements per HDF5 chunk of the resizable CSR datasets (1 MiB of float64): a block row of an atom is a few
# thousand elements, so reading one row touches one or two chunks.
_CHUNK = 1 << 17
# Byte shuffle + deflate level 1 for data and indices: both filters ship with every HDF5 build (h5py, HDFView,
# h5dump, C and Fortran readers need no plugin, unlike LZF or Blosc), level 1 is the fast end of deflate, and
# the shuffle puts the near-constant high bytes of sorted column indices (and of float exponents) together,
# which is where the gain is (benchmarks/bench_predict.py prints the file size per atom).
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
_INDPTR_KW = {"chunks": True, **COMPRESSION}


@dataclass(frozen=True, eq=False)
class ImageMatrices:
    """Per-image blocks of H and S. Fields::

    shifts  # (K, 3) int64          | lattice images R_k, distinct, sorted lexicographically
    H       # (Norb, K Norb) csr    | H[a, k Norb + b] = H_ab(R_k), Hartree
    S       # (Norb, K Norb) csr    | S_ab(R_k)
    """

    shifts: np.ndarray
    H: sp.csr_matrix
    S: sp.csr_matrix

    @property
    def n_images(self) -> int:
        return int(self.shifts.shape[0])

    @property
    def n_orbitals(self) -> int:
        return int(self.H.shape[0])

    def image_index(self, shift) -> int:
        """Row of ``shift`` (3 ints) in :attr:`shifts`; ValueError when it is not stored."""
        hit = np.flatnonzero(np.all(self.shifts == np.asarray(shift, np.int64).reshape(1, 3), axis=1))
        if not hit.size:
            raise ValueError(f"image {list(np.asarray(shift).tolist())}: not among the stored images")
        return int(hit[0])

    def image(self, which: str, shift) -> sp.csr_matrix:
        """``M(R)`` (Norb x Norb) of ``which`` in ("H", "S") for image ``shift``."""
        k, n = self.image_index(shift), self.n_orbitals
        return self._matrix(which)[:, k * n : (k + 1) * n].tocsr()

    def at_k(self, which: str, k_frac) -> sp.csr_matrix:
        """``M(k) = sum_R M(R) exp(2 pi i k . R)`` (complex CSR) at ``k_frac`` in fractional reciprocal units."""
        m, n = self._matrix(which).tocoo(), self.n_orbitals
        img = m.col // n
        phase = np.exp(2j * np.pi * (self.shifts @ np.asarray(k_frac, np.float64).reshape(3)))
        return sp.csr_matrix((m.data * phase[img], (m.row, m.col % n)), shape=(n, n))

    def gamma(self, which: str) -> sp.csr_matrix:
        """``M(Gamma) = sum_R M(R)`` (real CSR)."""
        m, n = self._matrix(which).tocoo(), self.n_orbitals
        out = sp.csr_matrix((m.data, (m.row, m.col % n)), shape=(n, n))
        out.sort_indices()
        return out

    def _matrix(self, which: str) -> sp.csr_matrix:
        if which not in ("H", "S"):
            raise ValueError(f"which: expected 'H' or 'S', got {which!r}")
        return self.H if which == "H" else self.S

    def validate(self, n_orbitals: int, fail) -> None:
        """Call ``fail(field, message)`` on the first inconsistency."""
        s = np.asarray(self.shifts)
        if s.ndim != 2 or s.shape[1] != 3 or s.shape[0] < 1 or not np.issubdtype(s.dtype, np.integer):
            fail("/images/shifts", f"expected a (K, 3) integer array with K >= 1, got shape {s.shape} {s.dtype}")
        if np.unique(s, axis=0).shape[0] != s.shape[0]:
            fail("/images/shifts", "images are not distinct")
        want = (n_orbitals, s.shape[0] * n_orbitals)
        for name in ("H", "S"):
            m = self._matrix(name)
            if m.shape != want:
                fail(f"/images/{name}", f"shape {m.shape}, expected {want} (Norb, K Norb)")
            if not np.all(np.isfinite(m.data)):
                fail(f"/images/{name}", "non-finite values")


class NonFiniteError(ValueError, HamforgeError):
    """A matrix about to be written holds NaN or infinite values (nothing is written)."""


class CSRWriter:
    """Append a CSR matrix of known ``shape`` to HDF5 group ``group`` row slab by row slab.

    ``append(indptr, indices, data)`` takes the next ``len(indptr) - 1`` rows (``indptr`` local, from 0);
    ``close()`` checks that every row was written. Column indices are stored as int32 when the column count
    fits (else int64), values as ``dtype`` (float64, or float32 for a compact H: the rounding is the caller's
    choice); data and indices are chunked and compressed (``COMPRESSION``).
    """

    def __init__(self, group, shape, dtype=np.float64):
        self.shape = (int(shape[0]), int(shape[1]))
        self.group = group
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"CSR values: expected float64 or float32, got {self.dtype}")
        self.index_dtype = np.int32 if self.shape[1] <= np.iinfo(np.int32).max else np.int64
        kw = {"maxshape": (None,), "chunks": (_CHUNK,), **COMPRESSION}
        self._data = group.create_dataset("data", shape=(0,), dtype=self.dtype, **kw)
        self._indices = group.create_dataset("indices", shape=(0,), dtype=self.index_dtype, **kw)
        self._indptr = group.create_dataset("indptr", shape=(self.shape[0] + 1,), dtype=np.int64, **_INDPTR_KW)
        group.create_dataset("shape", data=np.asarray(self.shape, np.int64))
        self._row = 0
        self._nnz = 0

    def append(self, indptr, indices, data) -> None:
        indptr = np.asarray(indptr, np.int64)
        rows = indptr.shape[0] - 1
        if rows < 0 or indptr[0] != 0 or indptr[-1] != len(data) or len(indices) != len(data):
            raise ValueError("CSR slab: indptr must run from 0 to nnz of the slab")
        if self._row + rows > self.shape[0]:
            raise ValueError(f"CSR slab: {self._row + rows} rows exceed the matrix's {self.shape[0]}")
        n = len(data)
        if n and not np.all(np.isfinite(data)):
            raise NonFiniteError(
                f"/{self.group.name.lstrip('/')}: non-finite values in rows {self._row}..{self._row + rows - 1}"
            )
        if n:
            self._data.resize((self._nnz + n,))
            self._indices.resize((self._nnz + n,))
            self._data[self._nnz :] = np.asarray(data, self.dtype)
            self._indices[self._nnz :] = np.asarray(indices, self.index_dtype)
        self._indptr[self._row + 1 : self._row + rows + 1] = indptr[1:] + self._nnz
        self._row += rows
        self._nnz += n

    def append_csr(self, m: sp.csr_matrix) -> None:
        """Append the rows of ``m`` (its columns must fit ``shape``; indices are sorted first)."""
        m = sp.csr_matrix(m)
        if m.shape[1] != self.shape[1]:
            raise ValueError(f"CSR slab: {m.shape[1]} columns, the matrix has {self.shape[1]}")
        m.sort_indices()
        self.append(m.indptr, m.indices, m.data)

    def close(self) -> None:
        if self._row != self.shape[0]:
            raise ValueError(f"CSR group {self.group.name}: {self._row} of {self.shape[0]} rows written")
        self._indptr[0] = 0


def write_csr_group(group, m: sp.csr_matrix, rows_per_slab: int = 1 << 16, dtype=np.float64) -> None:
    """Write ``m`` into ``group`` (``data``, ``indices``, ``indptr``, ``shape``), sorted indices."""
    m = sp.csr_matrix(m)
    w = CSRWriter(group, m.shape, dtype)
    for a in range(0, m.shape[0], rows_per_slab):
        w.append_csr(m[a : a + rows_per_slab])
    w.close()


def write_csr_virtual(group, shape, parts, dtype, index_dtype) -> None:
    """A CSR group whose ``data`` and ``indices`` are HDF5 virtual datasets over the same CSR groups of part files
    holding consecutive row ranges: ``parts`` = ``[(file name relative to this file, group path, local indptr)]``
    in row order. ``indptr`` (the only O(rows) array) is stored here, offset by the parts' nnz."""
    import h5py

    nnz = [int(ptr[-1]) for _, _, ptr in parts]
    total = int(sum(nnz))
    for ds, dt in (("data", dtype), ("indices", index_dtype)):
        layout = h5py.VirtualLayout(shape=(total,), dtype=dt, maxshape=(total,))
        off = 0
        for (fname, gpath, _), k in zip(parts, nnz):
            if k:
                layout[off : off + k] = h5py.VirtualSource(fname, f"{gpath}/{ds}", shape=(k,))
            off += k
        group.create_virtual_dataset(ds, layout, fillvalue=0)
    pieces, off = [np.zeros(1, np.int64)], 0
    for (_, _, ptr), k in zip(parts, nnz):
        pieces.append(np.asarray(ptr[1:], np.int64) + off)
        off += k
    indptr = np.concatenate(pieces)
    if indptr.shape[0] != int(shape[0]) + 1:
        raise ValueError(f"CSR parts: {indptr.shape[0] - 1} rows, the matrix has {shape[0]}")
    group.create_dataset("indptr", data=indptr, **_INDPTR_KW)
    group.create_dataset("shape", data=np.asarray(shape, np.int64))


def read_csr_group(r, name: str) -> sp.csr_matrix:
    """CSR group ``name`` of an open file (an :class:`hamforge.io.H5Reader`), checked."""
    shape = tuple(int(x) for x in r.array(f"{name}/shape", dtype="i", shape=(2,)))
    data = r.array(f"{name}/data", dtype="f", shape=(-1,)).astype(np.float64, copy=False)
    indices = r.array(f"{name}/indices", dtype="i", shape=(data.shape[0],))
    indptr = r.array(f"{name}/indptr", dtype="i", shape=(shape[0] + 1,))
    if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
        r.fail(f"/{name}/indices", f"column indices outside 0..{shape[1] - 1}")
    if indptr[0] != 0 or indptr[-1] != data.shape[0] or np.any(np.diff(indptr) < 0):
        r.fail(f"/{name}/indptr", "not non-decreasing from 0 to nnz")
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def read_csr_rows(r, name: str, rows: slice) -> sp.csr_matrix:
    """Rows ``rows`` (a slice with step 1) of CSR group ``name`` of an open file, reading only their chunks."""
    shape = tuple(int(x) for x in r.array(f"{name}/shape", dtype="i", shape=(2,)))
    a, b, step = rows.indices(shape[0])
    if step != 1:
        raise ValueError(f"rows: expected a slice with step 1, got {rows}")
    b = max(a, b)
    ptr = np.asarray(r.f[f"{name}/indptr"][a : b + 1], np.int64)
    lo, hi = int(ptr[0]), int(ptr[-1])
    data = np.asarray(r.f[f"{name}/data"][lo:hi], np.float64)
    indices = np.asarray(r.f[f"{name}/indices"][lo:hi])
    if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
        r.fail(f"/{name}/indices", f"column indices outside 0..{shape[1] - 1}")
    if np.any(np.diff(ptr) < 0):
        r.fail(f"/{name}/indptr", "not non-decreasing")
    return sp.csr_matrix((data, indices, ptr - lo), shape=(b - a, shape[1]))

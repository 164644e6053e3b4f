"""Exports of a matrix file for other codes: Matrix Market, CP2K-style CSR text, sisl/TBtrans TSHS.

* ``mm``: ``<prefix>.H.mtx`` and ``<prefix>.S.mtx``, the Gamma-point matrices (``scipy.io.mmwrite``, general
  real coordinate format, 17 significant digits: read back by ``scipy.io.mmread`` they are bit-identical).
* ``csr``: ``<prefix>.KS.csr`` and ``<prefix>.S.csr``, one ``row col value`` line per stored element, 1-based,
  Hartree, rows in order and columns ascending, as CP2K's ``&KS_CSR_WRITE`` writes them (values in Fortran
  ``ES`` style with 16 decimals, enough to round-trip float64); ``hamforge parse-cp2k``'s reader reads them.
* ``tshs``: ``<prefix>.TSHS`` through sisl (``sisl.Hamiltonian.fromsp(geometry, H, S=S).write``), the
  format TBtrans and sisl read. Energies are converted to eV (sisl's unit). With the per-image matrices of a
  version 2 file each image ``R`` goes into sisl's supercell column block ``lattice.sc_index(R)`` (``nsc`` =
  2 max|R| + 1 per axis), so lead couplings come without wrap-around; a version 1 file has only the Gamma
  matrices and is written with ``nsc = (1, 1, 1)``. Orbitals are ``sisl.AtomicOrbital(n, l, m)`` per shell in
  basis-file order, m = -l..l (CP2K's order, which is sisl's), tagged with the kind label.

Every file is written atomically. :func:`export_file` streams ``mm`` and ``csr`` from a matrix file row slab
by row slab (memory of one slab, whatever the size); ``tshs`` needs the whole matrices in memory (sisl builds
its sparse Hamiltonian at once), which it says with the estimate before it starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hamforge._errors import HamforgeError
from hamforge.io._atomic import atomic_path, check_output_path
from hamforge.io.units import HARTREE_TO_EV

__all__ = ["EXPORT_FORMATS", "ExportError", "export_file", "export_matrices", "sisl_geometry", "sisl_hamiltonian"]

EXPORT_FORMATS = ("mm", "csr", "tshs")
# Matrix elements written per text chunk of the CSR export (bounds the formatted strings to ~100 MB).
_LINES_PER_CHUNK = 1 << 21


class ExportError(ValueError, HamforgeError):
    """An export cannot be written (unknown format, missing per-image data, a basis sisl cannot represent)."""


def export_matrices(data, fmt: str, prefix: str | os.PathLike, source: str = "<memory>") -> list[Path]:
    """Write ``data`` (a :class:`hamforge.io.MatrixData`) in format ``fmt`` (``EXPORT_FORMATS``) next to
    ``prefix``; returns the paths written (module docstring for names and conventions)."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"--format: expected one of {EXPORT_FORMATS}, got {fmt!r}")
    prefix = Path(prefix)
    if fmt == "mm":
        outs = [prefix.with_name(prefix.name + ".H.mtx"), prefix.with_name(prefix.name + ".S.mtx")]
        for path, m in zip(outs, (data.H, data.S)):
            _write_mm(path, m, source)
        return outs
    if fmt == "csr":
        outs = [prefix.with_name(prefix.name + ".KS.csr"), prefix.with_name(prefix.name + ".S.csr")]
        for path, m in zip(outs, (data.H, data.S)):
            _write_cp2k_csr(path, m, source)
        return outs
    out = prefix.with_name(prefix.name + ".TSHS")
    _write_tshs(out, data, source)
    return [out]


# Rows per slab of a streamed export (a-Si SZV: ~2,500 elements per row of H, so ~40 MB of values per slab).
_ROWS_PER_SLAB = 1 << 14


def export_file(path: str | os.PathLike, fmt: str, prefix: str | os.PathLike) -> list[Path]:
    """Export the matrix file ``path`` (module docstring); ``mm`` and ``csr`` stream row slabs of the Gamma
    matrices (:func:`hamforge.io.read_matrix_rows`), ``tshs`` reads the whole file."""
    import logging

    import h5py

    from hamforge.io._matrices import read_matrix_file, read_matrix_rows

    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"--format: expected one of {EXPORT_FORMATS}, got {fmt!r}")
    prefix, source = Path(prefix), str(path)
    if fmt == "tshs":
        with h5py.File(path, "r") as f:
            size = sum(f[g]["data"].size * 12 for g in ("images/H", "images/S", "H", "S") if g in f)
        logging.getLogger(__name__).info(
            "%s: TSHS is written by sisl from the whole matrices in memory (~%.2g GB here)", path, 2 * size / 1e9
        )
        return export_matrices(read_matrix_file(path, images=True), fmt, prefix, source)
    data = read_matrix_file(path, images=False) if _small(path) else None
    if data is not None:  # small: the whole-matrix writers (scipy's mmwrite)
        return export_matrices(data, fmt, prefix, source)
    names = (".H.mtx", ".S.mtx") if fmt == "mm" else (".KS.csr", ".S.csr")
    outs = [prefix.with_name(prefix.name + n) for n in names]
    for out, which in zip(outs, ("H", "S")):
        n = read_matrix_rows(path, which, slice(0, 0)).shape[1]
        slabs = (read_matrix_rows(path, which, slice(a, a + _ROWS_PER_SLAB)) for a in range(0, n, _ROWS_PER_SLAB))
        _stream_text(out, fmt, slabs, n, _nnz(path, which), source)
    return outs


def _small(path) -> bool:
    """True when the whole Gamma matrices take less than ~1 GB (then they are read at once)."""
    return _nnz(path, "H") + _nnz(path, "S") < (1 << 26)


def _nnz(path, which: str) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f[which]["data"].shape[0]) if which in f else int(f[f"images/{which}"]["data"].shape[0])


def _stream_text(path: Path, fmt: str, slabs, n: int, nnz: int, source: str) -> None:
    """Matrix Market (coordinate real general, 17 significant digits) or CP2K CSR text, slab by slab."""
    import pandas as pd

    check_output_path(path, [source])
    row0 = 0
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        if fmt == "mm":  # nnz of a Gamma matrix derived from images = the images' nnz (one term per element)
            fh.write(f"%%MatrixMarket matrix coordinate real general\n%\n% hamforge export of {source}\n")
            fh.write(f"{n} {n} {nnz}\n")
        for m in slabs:
            m.sort_indices()
            rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) + row0 + 1
            frame = pd.DataFrame({"r": rows, "c": m.indices.astype(np.int64) + 1, "v": m.data})
            fmt_v = "%.16e" if fmt == "mm" else "%.16E"
            frame.to_csv(fh, sep=" ", header=False, index=False, float_format=fmt_v, lineterminator="\n")
            row0 += m.shape[0]


def _write_mm(path: Path, m, source: str) -> None:
    import scipy.io

    check_output_path(path, [source] if source != "<memory>" else [])
    # a file object: mmwrite would otherwise append ".mtx" to the temporary name
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        scipy.io.mmwrite(
            fh,
            sp.csr_matrix(m).tocoo(),
            comment=f"hamforge export of {source}",
            field="real",
            precision=17,
            symmetry="general",
        )


def _write_cp2k_csr(path: Path, m, source: str) -> None:
    check_output_path(path, [source] if source != "<memory>" else [])
    m = sp.csr_matrix(m)
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    import pandas as pd

    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for a in range(0, m.nnz, _LINES_PER_CHUNK):  # pandas' C writer formats a chunk at a time
            b = min(a + _LINES_PER_CHUNK, m.nnz)
            pd.DataFrame({"r": rows[a:b] + 1, "c": m.indices[a:b].astype(np.int64) + 1, "v": m.data[a:b]}).to_csv(
                fh, sep=" ", header=False, index=False, float_format="%.16E", lineterminator="\n"
            )


def sisl_geometry(data, nsc=(1, 1, 1)):
    """``sisl.Geometry`` of a matrix file's structure: one ``sisl.Atom`` per kind (tag = kind label) with an
    ``AtomicOrbital`` per basis function (shells in basis-file order, m = -l..l), the cell and ``nsc``."""
    import sisl

    atoms, index = {}, {}
    for kind in sorted(set(np.asarray(data.kinds).tolist())):
        eb = data.basis[kind]
        orbs, seen = [], {}
        for l in eb.shells:
            seen[l] = seen.get(l, 0) + 1
            orbs += [sisl.AtomicOrbital(n=l + seen[l], l=int(l), m=m, R=-1.0) for m in range(-l, l + 1)]
        z = next(int(z) for z, k in zip(data.numbers, data.kinds) if k == kind)
        index[kind] = len(atoms)
        atoms[kind] = sisl.Atom(z if z > 0 else -1, orbitals=orbs, tag=str(kind))
    species = np.array([index[k] for k in np.asarray(data.kinds).tolist()], np.int64)
    lattice = sisl.Lattice(np.asarray(data.cell, np.float64), nsc=np.asarray(nsc, np.int64))
    return sisl.Geometry(
        np.asarray(data.positions, np.float64), atoms=sisl.Atoms(list(atoms.values()))[species], lattice=lattice
    )


def sisl_hamiltonian(data):
    """``sisl.Hamiltonian`` (eV) with overlap of ``data``: per image when ``data.images`` is set, else Gamma."""
    import sisl

    img = getattr(data, "images", None)
    if img is None:
        import logging

        if np.any(np.asarray(data.pbc, bool)):
            logging.getLogger(__name__).warning(
                "%s: Gamma-point matrices only (a version 1 file): the TSHS has nsc = (1, 1, 1), right at Gamma and "
                "wrong at any other k (images folded into the cell); per-image matrices (a prediction) avoid this",
                getattr(data, "provenance", {}).get("input", "this file"),
            )
        geom = sisl_geometry(data)
        return sisl.Hamiltonian.fromsp(geom, sp.csr_matrix(data.H) * HARTREE_TO_EV, S=sp.csr_matrix(data.S))
    nsc = np.where(np.asarray(data.pbc, bool), 2 * np.abs(img.shifts).max(axis=0) + 1, 1)
    geom = sisl_geometry(data, nsc)
    n = img.n_orbitals
    isc = np.asarray(geom.lattice.sc_index(img.shifts), np.int64).reshape(-1)
    mats = []
    for m in (img.H, img.S):
        coo = m.tocoo()
        col = isc[coo.col // n] * n + coo.col % n
        mats.append(sp.csr_matrix((coo.data, (coo.row, col)), shape=(n, n * geom.n_s)))
    return sisl.Hamiltonian.fromsp(geom, mats[0] * HARTREE_TO_EV, S=mats[1])


def _write_tshs(path: Path, data, source: str) -> None:
    import sisl

    check_output_path(path, [source] if source != "<memory>" else [])
    h = sisl_hamiltonian(data)
    with atomic_path(path) as tmp:
        # sisl's Fortran writer takes ASCII file names only: write under an ASCII name in the same folder
        # (or the system temporary folder when the folder's own path is not ASCII), then move it into place
        folder = tmp.parent if str(tmp.parent).isascii() else Path(tempfile.gettempdir())
        fd, ascii_name = tempfile.mkstemp(prefix=".hamforge-", suffix=".TSHS", dir=folder)
        os.close(fd)
        try:
            sisl.io.siesta.tshsSileSiesta(ascii_name, "w").write_hamiltonian(h)
            shutil.move(ascii_name, tmp)
        finally:
            if os.path.exists(ascii_name):
                os.unlink(ascii_name)

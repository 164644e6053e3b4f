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

Every file is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hamforge.io._atomic import atomic_path, check_output_path
from hamforge.io.units import HARTREE_TO_EV

__all__ = ["EXPORT_FORMATS", "ExportError", "export_matrices", "sisl_geometry", "sisl_hamiltonian"]

EXPORT_FORMATS = ("mm", "csr", "tshs")
# Matrix elements written per text chunk of the CSR export (bounds the formatted strings to ~100 MB).
_LINES_PER_CHUNK = 1 << 21


class ExportError(ValueError):
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
        sisl.io.siesta.tshsSileSiesta(str(tmp), "w").write_hamiltonian(h)

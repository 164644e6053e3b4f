"""Reading structure, cell, kinds and basis from a CP2K input, for matrices made outside the workflow."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hamforge.basis import BasisError, ElementBasis, read_cp2k_basis, resolve_cp2k_data_file
from hamforge.dft._checks import check_structure
from hamforge.dft._settings import DFTError
from hamforge.io.units import BOHR_TO_ANGSTROM

__all__ = ["CP2KInputInfo", "read_cp2k_input", "locate_csr_file"]


@dataclass(frozen=True)
class CP2KInputInfo:
    """What a CP2K input says about the matrices it writes (lengths in Angstrom)."""

    path: Path
    project: str
    kinds: np.ndarray  # (N,) object | kind label of each atom
    numbers: np.ndarray  # (N,) int64 | atomic number, 0 for ghosts
    positions: np.ndarray  # (N, 3)
    cell: np.ndarray  # (3, 3) rows = lattice vectors
    pbc: np.ndarray  # (3,) bool
    basis: Mapping[str, ElementBasis]
    ks_filename: str | None  # FILENAME of &KS_CSR_WRITE, as written
    s_filename: str | None


def _schema_path() -> Path | None:
    from hamforge.dft._input import cp2k_input_schema

    try:
        return cp2k_input_schema()
    except DFTError:
        return None  # no CP2K here: fall back to cp2k-input-tools' bundled schema


def _parse_tree(path: Path) -> dict[str, Any]:
    from cp2k_input_tools.parser import CP2KInputParser

    schema = _schema_path()
    parser = CP2KInputParser(xmlspec=str(schema)) if schema else CP2KInputParser()
    try:
        with open(path) as fh:
            return parser.parse(fh, dict(os.environ))
    except Exception as exc:  # the parser raises several exception types
        raise DFTError(f"{path}: cannot parse CP2K input: {type(exc).__name__}: {exc}") from exc


def _element_of(kind_name: str, kind_sec: Mapping[str, Any] | None, path: Path) -> str:
    """Element of a &KIND: its ELEMENT keyword, else the kind label's leading letters; both must be a real symbol."""
    from hamforge._elements import chemical_symbol, element_of_kind

    explicit = (kind_sec or {}).get("element")
    try:
        if explicit is not None:
            return chemical_symbol(str(explicit))
        return element_of_kind(kind_name)
    except ValueError as exc:
        what = f"ELEMENT {explicit}" if explicit is not None else "no ELEMENT keyword"
        raise DFTError(f"{path}: &KIND {kind_name} ({what}): {exc}") from None


def _length_factor(unit: str | None, path: Path, where: str) -> float:
    u = (unit or "angstrom").lower()
    if u in ("angstrom", "a"):
        return 1.0
    if u == "bohr":
        return BOHR_TO_ANGSTROM
    raise DFTError(f"{path}: {where}: unsupported length unit {unit!r} (use angstrom or bohr)")


def _cell(sec: Mapping[str, Any], path: Path) -> tuple[np.ndarray, np.ndarray]:
    if "cell_file_name" in sec:
        raise DFTError(f"{path}: &CELL CELL_FILE_NAME is not supported; give A, B, C or ABC in the input")
    if "multiple_unit_cell" in sec and list(sec["multiple_unit_cell"]) != [1, 1, 1]:
        raise DFTError(f"{path}: &CELL MULTIPLE_UNIT_CELL is not supported")
    f = _length_factor(sec.get("unit"), path, "&CELL UNIT")
    if all(k in sec for k in ("a", "b", "c")):
        cell = np.array([sec["a"], sec["b"], sec["c"]], dtype=float) * f
    elif "abc" in sec:
        from ase.geometry import cellpar_to_cell

        angles = sec.get("alpha_beta_gamma", [90.0, 90.0, 90.0])
        cell = cellpar_to_cell(list(np.asarray(sec["abc"], dtype=float) * f) + list(angles))
    else:
        raise DFTError(f"{path}: &CELL needs A, B and C (or ABC)")
    periodic = str(sec.get("periodic", "xyz")).lower()
    if periodic == "none":
        periodic = ""
    pbc = np.array([ax in periodic for ax in "xyz"])
    return cell, pbc


def _coord_lines(subsys: Mapping[str, Any], path: Path) -> tuple[list[str], bool, float]:
    if "+coord" in subsys:
        coord = subsys["+coord"]
        lines = [ln for ln in coord.get("*", []) if ln.strip()]
        return lines, bool(coord.get("scaled", False)), _length_factor(coord.get("unit"), path, "&COORD UNIT")
    topo = subsys.get("+topology", {})
    fname = topo.get("coord_file_name")
    if not fname:
        raise DFTError(f"{path}: no &COORD section and no &TOPOLOGY COORD_FILE_NAME")
    fmt = str(topo.get("coord_file_format", "xyz")).lower()
    if fmt != "xyz":
        raise DFTError(f"{path}: &TOPOLOGY COORD_FILE_FORMAT {fmt.upper()} is not supported (use XYZ)")
    cpath = (path.parent / fname) if not Path(fname).is_absolute() else Path(fname)
    if not cpath.is_file():
        raise DFTError(f"{path}: coordinate file {cpath} named by COORD_FILE_NAME not found")
    raw = cpath.read_text().splitlines()
    try:
        n = int(raw[0].split()[0])
    except (IndexError, ValueError):
        raise DFTError(f"{cpath}: first line must be the number of atoms") from None
    lines = [ln for ln in raw[2 : 2 + n]]
    if len(lines) != n:
        raise DFTError(f"{cpath}: announces {n} atoms but has {len(lines)} coordinate lines")
    return lines, False, 1.0


def read_cp2k_input(path: str | os.PathLike) -> CP2KInputInfo:
    """Structure, cell, kinds, basis shells and CSR file names of a CP2K input file.

    Coordinates come from &COORD (Angstrom or bohr, ``SCALED`` fractional supported) or from the XYZ file named by
    &TOPOLOGY COORD_FILE_NAME; the basis shells from the files named by BASIS_SET_FILE_NAME, found as CP2K
    finds them (relative to the input, or in CP2K's data directory).
    """
    path = Path(path)
    if not path.is_file():
        raise DFTError(f"{path}: CP2K input not found")
    tree = _parse_tree(path)
    fevals = tree.get("+force_eval", [])
    if len(fevals) != 1:
        raise DFTError(f"{path}: expected exactly one &FORCE_EVAL, found {len(fevals)}")
    fe = fevals[0]
    dft = fe.get("+dft", {})
    subsys = fe.get("+subsys")
    if subsys is None:
        raise DFTError(f"{path}: no &SUBSYS section")
    if "+cell" not in subsys:
        raise DFTError(f"{path}: no &CELL section")
    cell, pbc = _cell(subsys["+cell"], path)
    lines, scaled, factor = _coord_lines(subsys, path)
    try:
        kinds = np.array([ln.split()[0] for ln in lines], dtype=object)
        xyz = np.array([[float(v) for v in ln.split()[1:4]] for ln in lines], dtype=float)
    except (IndexError, ValueError) as exc:
        raise DFTError(f"{path}: bad coordinate line ({exc}); expected 'KIND x y z'") from exc
    if xyz.shape != (len(lines), 3):
        raise DFTError(f"{path}: every coordinate line needs 'KIND x y z'")
    positions = xyz @ cell if scaled else xyz * factor
    check_structure(positions, cell, pbc, f"{path}")

    kind_secs = {k["_"]: k for k in fe["+subsys"].get("+kind", [])}
    basis_files = dft.get("basis_set_file_name", ["BASIS_SET"])
    if isinstance(basis_files, str):
        basis_files = [basis_files]
    resolved = []
    for bf in basis_files:
        try:
            resolved.append(resolve_cp2k_data_file(bf, relative_to=path.parent))
        except BasisError as exc:
            raise DFTError(f"{path}: BASIS_SET_FILE_NAME {bf}: {exc}") from exc
    from ase.data import atomic_numbers

    basis: dict[str, ElementBasis] = {}
    numbers_of: dict[str, int] = {}
    for kind in sorted(set(kinds.tolist())):
        sec = kind_secs.get(kind)
        if sec is None:
            raise DFTError(f"{path}: kind {kind!r} used in the coordinates has no &KIND section (basis unknown)")
        element = _element_of(kind, sec, path)
        bs = sec.get("basis_set")
        if not bs:
            raise DFTError(f"{path}: &KIND {kind}: no BASIS_SET")
        if isinstance(bs, str):
            bs = [bs]
        name = str(bs[-1]).split()[-1]  # "ORB DZVP-..." or "DZVP-..."
        errors = []
        for bf in resolved:
            try:
                basis[kind] = read_cp2k_basis(bf, element, name)
                break
            except BasisError as exc:
                errors.append(str(exc))
        else:
            raise DFTError(f"{path}: &KIND {kind}: basis {name} for {element} not found: {'; '.join(errors)}")
        numbers_of[kind] = 0 if sec.get("ghost", False) else atomic_numbers[element]
    numbers = np.array([numbers_of[k] for k in kinds.tolist()], dtype=np.int64)
    prn = dft.get("+print", {})
    project = str(tree.get("+global", {}).get("project_name", "PROJECT"))
    if "+ks_csr_write" not in prn or "+s_csr_write" not in prn:
        raise DFTError(f"{path}: the input does not print the matrices (&DFT/&PRINT/&KS_CSR_WRITE and &S_CSR_WRITE)")
    return CP2KInputInfo(
        path=path,
        project=project,
        kinds=kinds,
        numbers=numbers,
        positions=positions,
        cell=cell,
        pbc=pbc,
        basis=basis,
        ks_filename=prn["+ks_csr_write"].get("filename"),
        s_filename=prn["+s_csr_write"].get("filename"),
    )


def locate_csr_file(run_dir: str | os.PathLike, info: CP2KInputInfo, which: str) -> Path:
    """The CSR file CP2K wrote for ``which`` ('KS' or 'S'), following CP2K's naming of FILENAME.

    ``FILENAME =name`` is used literally; otherwise CP2K writes ``<project>-<name>-KS_SPIN_1-1_0.csr``
    (``<project>-KS_SPIN_1-1_0.csr`` without FILENAME). Spin-polarized runs (SPIN_2) are rejected.
    """
    run_dir = Path(run_dir)
    fname = info.ks_filename if which == "KS" else info.s_filename
    if fname and fname.startswith("="):
        p = run_dir / fname[1:]
        if not p.is_file():
            raise DFTError(f"{run_dir}: {which} matrix file {p.name} (FILENAME {fname}) not found; did CP2K finish?")
        return p
    stem = f"{info.project}-{fname}-" if fname else f"{info.project}-"
    hits = sorted(run_dir.glob(f"{stem}{which}_SPIN_*.csr"))
    if any("SPIN_2" in h.name for h in hits):
        raise DFTError(f"{run_dir}: spin-polarized {which} matrices ({[h.name for h in hits]}) are not supported")
    if len(hits) != 1:
        raise DFTError(
            f"{run_dir}: expected one {which} CSR file matching '{stem}{which}_SPIN_*.csr', "
            f"found {[h.name for h in hits]}"
        )
    return hits[0]

"""The partition file (HDF5), and reading the structure + graph a partition refers to.

Partition file layout (format ``hamforge.partitions``, version 1; read by the training stage)::

    attrs: format, version, method, n_parts, halo, r_cut (Angstrom), n_atoms, n_edges,
           graph_digest (see graph_digest), metrics (JSON summary), options (JSON), provenance (JSON)
    /assignment                     (N,) int64        part id of every atom
    /parts/<p>/nodes                (n_local,) int64  global atom ids, labelled first   attrs: n_labelled,
    /parts/<p>/node_hop             (n_local,) int64  0 labelled, 1..halo virtual              halo, part
    /parts/<p>/edges                (e_local,) int64  indices into the graph's edge arrays
    /parts/<p>/edge_index_local     (2, e_local) int64 [local centre; local source]
    /parts/<p>/edge_is_labelled     (e_local,) bool
    /metrics_table/<column>         (n_parts,)  one dataset per column; attr columns (JSON list, order)

``edges`` index the edge arrays of the graph the partition was made from (the targets file's
``/graph``, sorted by ``(i, j, R)``); ``graph_digest`` identifies that graph.

Input graph (targets file, written by the targets stage)::

    /structure/numbers (N,), positions (N, 3), cell (3, 3), pbc (3,)     as in the matrix file
    /graph/edge_index (2, E) int64, /graph/shift (E, 3) int64; attr r_cut on /graph
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hamforge.graph import NeighborList
from hamforge.io import atomic_path
from hamforge.io._h5 import open_h5
from hamforge.partition._augment import AugmentedPartition
from hamforge.partition._checks import check_assignment, check_nl

__all__ = ["PARTITION_FORMAT", "PartitionFileError", "PartitionFile", "write_partitions", "read_partitions",
           "graph_digest", "StructureGraph", "read_targets_graph", "load_structure_graph"]

PARTITION_FORMAT = "hamforge.partitions"
PARTITION_VERSION = 1
_PART_FIELDS = ("nodes", "node_hop", "edges", "edge_index_local", "edge_is_labelled")


class PartitionFileError(ValueError):
    """A partition file or an input structure/graph file is missing a field or is inconsistent.

    The message names the file and the field.
    """


def graph_digest(nl: NeighborList) -> str:
    """Short SHA-256 of ``(n_atoms, edge_index, shift)``: identifies the edge numbering a partition uses."""
    h = hashlib.sha256()
    h.update(np.int64(nl.n_atoms).tobytes())
    h.update(np.ascontiguousarray(nl.edge_index, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(nl.shift, dtype=np.int64).tobytes())
    return h.hexdigest()[:24]


def write_partitions(path: str | os.PathLike, nl: NeighborList, assignment, parts: list[AugmentedPartition],
                     metrics_summary: Mapping[str, Any], metrics_table, *, method: str = "unspecified",
                     options: Mapping[str, Any] | None = None,
                     provenance: Mapping[str, Any] | None = None) -> None:
    """Write the partition file (module docstring) atomically (temp file + rename).

    ``metrics_table`` is the per-part ``pandas.DataFrame`` of :func:`partition_metrics` (numeric columns).
    """
    import h5py

    nl = check_nl(nl)
    a, n_parts = check_assignment(assignment, nl.n_atoms)
    if len(parts) != n_parts or any(p.part != k for k, p in enumerate(parts)):
        raise ValueError(f"parts: expected the {n_parts} parts of the assignment in order 0..{n_parts - 1}")
    halos = {p.halo for p in parts}
    if len(halos) > 1:
        raise ValueError(f"parts: all parts must have the same halo, got {sorted(halos)}")
    halo = halos.pop() if halos else 0
    cols = [str(c) for c in metrics_table.columns]
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = PARTITION_FORMAT
            f.attrs["version"] = PARTITION_VERSION
            f.attrs["method"] = str(method)
            f.attrs["n_parts"] = n_parts
            f.attrs["halo"] = halo
            f.attrs["r_cut"] = float(nl.r_cut)
            f.attrs["n_atoms"] = nl.n_atoms
            f.attrs["n_edges"] = nl.n_edges
            f.attrs["graph_digest"] = graph_digest(nl)
            # wall-clock timings (partition_time_s, augment_time_s) are logged, not stored: the same inputs
            # must give a byte-identical file (release checksums)
            stored = {k: v for k, v in dict(metrics_summary).items() if not k.endswith("_time_s")}
            f.attrs["metrics"] = json.dumps(_jsonable(stored), sort_keys=True)
            f.attrs["options"] = json.dumps(_jsonable(dict(options or {})), sort_keys=True)
            f.attrs["provenance"] = json.dumps(_jsonable({"program": "hamforge", **dict(provenance or {})}),
                                               sort_keys=True)
            f.create_dataset("assignment", data=a)
            g = f.create_group("parts")
            for p in parts:
                pg = g.create_group(str(p.part))
                pg.attrs["n_labelled"] = p.n_labelled
                pg.attrs["halo"] = p.halo
                pg.attrs["part"] = p.part
                for name in _PART_FIELDS:
                    pg.create_dataset(name, data=getattr(p, name))
            t = f.create_group("metrics_table")
            t.attrs["columns"] = json.dumps(cols)
            for c in cols:
                t.create_dataset(c, data=np.asarray(metrics_table[c].to_numpy()))


@dataclass(frozen=True, eq=False)
class PartitionFile:
    """Content of a partition file (module docstring)."""

    path: str
    method: str
    n_parts: int
    halo: int
    r_cut: float
    n_atoms: int
    n_edges: int
    graph_digest: str
    assignment: np.ndarray  # (N,) int64
    parts: list[AugmentedPartition]
    summary: dict[str, Any]
    table: Any  # pandas.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def check_graph(self, nl: NeighborList) -> None:
        """Raise :class:`PartitionFileError` unless ``nl`` is the graph this partition was made from."""
        if nl.n_atoms != self.n_atoms or nl.n_edges != self.n_edges or graph_digest(nl) != self.graph_digest:
            raise PartitionFileError(
                f"{self.path}: graph_digest: the partition was made for a graph with {self.n_atoms} atoms and "
                f"{self.n_edges} edges (digest {self.graph_digest}), not this one ({nl.n_atoms} atoms, "
                f"{nl.n_edges} edges, digest {graph_digest(nl)}); rerun the partition stage")


def read_partitions(path: str | os.PathLike, nl: NeighborList | None = None) -> PartitionFile:
    """Read and check a partition file; with ``nl`` also check it refers to that graph.

    Errors (:class:`PartitionFileError`) name the file and the missing or inconsistent field.
    """
    import pandas as pd

    path = Path(path)
    src = str(path)
    f = open_h5(path, "partition file", PartitionFileError)

    def bad(name, msg):
        raise PartitionFileError(f"{src}: {name}: {msg}")

    with f:
        fmt = f.attrs.get("format")
        if fmt != PARTITION_FORMAT:
            bad("format", f"attribute is {fmt!r}, expected {PARTITION_FORMAT!r}")
        version = int(f.attrs.get("version", -1))
        if version != PARTITION_VERSION:
            bad("version", f"unsupported partition file version {version} (this is {PARTITION_VERSION})")

        def attr(name, kind):
            if name not in f.attrs:
                bad(name, "missing root attribute")
            try:
                return kind(f.attrs[name])
            except (TypeError, ValueError) as exc:
                bad(name, f"bad value {f.attrs[name]!r} ({exc})")

        def get(obj, name, where):
            if name not in obj:
                bad(where, "missing")
            return obj[name][()]

        def jattr(name):
            try:
                return json.loads(attr(name, str))
            except json.JSONDecodeError as exc:
                bad(name, f"not valid JSON ({exc})")

        n_parts, halo, n_atoms = attr("n_parts", int), attr("halo", int), attr("n_atoms", int)
        n_edges = attr("n_edges", int)
        a = np.asarray(get(f, "assignment", "/assignment"))
        if a.shape != (n_atoms,) or not np.issubdtype(a.dtype, np.integer):
            bad("/assignment", f"expected ({n_atoms},) integers, got {a.shape} {a.dtype}")
        if n_atoms and (a.min() < 0 or a.max() >= n_parts):
            bad("/assignment", f"part ids outside 0..{n_parts - 1}")
        if "parts" not in f:
            bad("/parts", "missing group")
        parts = []
        for p in range(n_parts):
            where = f"/parts/{p}"
            if str(p) not in f["parts"]:
                bad(where, f"missing (n_parts = {n_parts})")
            g = f["parts"][str(p)]
            if "n_labelled" not in g.attrs:
                bad(f"{where}@n_labelled", "missing attribute")
            d = {name: np.asarray(get(g, name, f"{where}/{name}")) for name in _PART_FIELDS}
            n_lab = int(g.attrs["n_labelled"])
            n_loc, e_loc = d["nodes"].shape[0], d["edges"].shape[0]
            shapes = dict(nodes=(n_loc,), node_hop=(n_loc,), edges=(e_loc,), edge_index_local=(2, e_loc),
                          edge_is_labelled=(e_loc,))
            for name, shape in shapes.items():
                if d[name].shape != shape:
                    bad(f"{where}/{name}", f"shape {d[name].shape}, expected {shape}")
            if not 0 < n_lab <= n_loc:
                bad(f"{where}@n_labelled", f"{n_lab} not in 1..{n_loc}")
            if n_loc and (d["nodes"].min() < 0 or d["nodes"].max() >= n_atoms):
                bad(f"{where}/nodes", f"atom ids outside 0..{n_atoms - 1}")
            if e_loc and (d["edges"].min() < 0 or d["edges"].max() >= n_edges):
                bad(f"{where}/edges", f"edge ids outside 0..{n_edges - 1}")
            if e_loc and (d["edge_index_local"].min() < 0 or d["edge_index_local"].max() >= n_loc):
                bad(f"{where}/edge_index_local", f"local ids outside 0..{n_loc - 1}")
            if not np.array_equal(np.flatnonzero(a == p), np.sort(d["nodes"][:n_lab])):
                bad(f"{where}/nodes", "labelled nodes differ from the atoms /assignment gives this part")
            arrays = dict(nodes=d["nodes"].astype(np.int64), node_hop=d["node_hop"].astype(np.int64),
                          edges=d["edges"].astype(np.int64),
                          edge_index_local=d["edge_index_local"].astype(np.int64),
                          edge_is_labelled=d["edge_is_labelled"].astype(bool))
            for v in arrays.values():
                v.setflags(write=False)
            parts.append(AugmentedPartition(part=p, halo=int(g.attrs.get("halo", halo)), n_labelled=n_lab,
                                            **arrays))
        if "metrics_table" not in f:
            bad("/metrics_table", "missing group")
        t = f["metrics_table"]
        try:
            cols = json.loads(t.attrs.get("columns", "[]"))
        except json.JSONDecodeError as exc:
            bad("/metrics_table@columns", f"not valid JSON ({exc})")
        table = pd.DataFrame({c: get(t, c, f"/metrics_table/{c}") for c in cols}, columns=cols)
        out = PartitionFile(
            path=src, method=attr("method", str), n_parts=n_parts, halo=halo, r_cut=attr("r_cut", float),
            n_atoms=n_atoms, n_edges=n_edges, graph_digest=attr("graph_digest", str),
            assignment=a.astype(np.int64), parts=parts, summary=jattr("metrics"), table=table,
            options=jattr("options"), provenance=jattr("provenance"))
    if nl is not None:
        out.check_graph(check_nl(nl))
    return out


# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StructureGraph:
    """A structure and its neighbour list (as read from a targets file or built from a structure file)."""

    numbers: np.ndarray  # (N,) int64 atomic numbers
    positions: np.ndarray  # (N, 3) float64, Angstrom
    nl: NeighborList
    source: str = "<memory>"


def read_targets_graph(path: str | os.PathLike) -> StructureGraph:
    """Structure and graph of a targets file (module docstring); ``vec``/``dist`` recomputed.

    ``vec = x_j + R @ cell - x_i`` from the stored positions, cell and shifts. Checks shapes, index
    ranges, the sort by centre atom, and ``0 < dist <= r_cut`` (relative tolerance 1e-9, far above the
    rounding of the recomputation but far below any real change of geometry).
    """

    path = Path(path)
    src = str(path)
    f = open_h5(path, "targets file", PartitionFileError)
    with f:
        numbers, positions, cell, pbc = _read_structure(f, src)
        if "graph" not in f:
            raise PartitionFileError(f"{src}: /graph: missing group")
        g = f["graph"]
        for name in ("edge_index", "shift"):
            if name not in g:
                raise PartitionFileError(f"{src}: /graph/{name}: missing")
        if "r_cut" not in g.attrs:
            raise PartitionFileError(f"{src}: /graph@r_cut: missing attribute")
        ei = np.asarray(g["edge_index"][()])
        shift = np.asarray(g["shift"][()])
        r_cut = float(g.attrs["r_cut"])
    return StructureGraph(numbers=numbers, positions=positions, source=src,
                          nl=graph_from_arrays(positions, cell, pbc, ei, shift, r_cut, src))


def graph_from_arrays(positions, cell, pbc, edge_index, shift, r_cut: float, source: str = "<memory>"):
    """:class:`NeighborList` from stored ``edge_index (2, E)`` and ``shift (E, 3)`` (vec, dist recomputed)."""
    n = positions.shape[0]
    ei, shift = np.asarray(edge_index), np.asarray(shift)
    if ei.ndim != 2 or ei.shape[0] != 2 or not np.issubdtype(ei.dtype, np.integer):
        raise PartitionFileError(f"{source}: /graph/edge_index: expected (2, E) integers, got {ei.shape} {ei.dtype}")
    e = ei.shape[1]
    if shift.shape != (e, 3) or not np.issubdtype(shift.dtype, np.integer):
        raise PartitionFileError(f"{source}: /graph/shift: expected ({e}, 3) integers, got {shift.shape} {shift.dtype}")
    if not np.isfinite(r_cut) or r_cut <= 0:
        raise PartitionFileError(f"{source}: /graph@r_cut: must be > 0, got {r_cut}")
    ei = np.ascontiguousarray(ei, dtype=np.int64)
    shift = np.ascontiguousarray(shift, dtype=np.int64)
    if e and (ei.min() < 0 or ei.max() >= n):
        raise PartitionFileError(f"{source}: /graph/edge_index: atom ids outside 0..{n - 1}")
    if e and np.any(ei[0, 1:] < ei[0, :-1]):
        raise PartitionFileError(f"{source}: /graph/edge_index: edges are not sorted by centre atom i")
    if np.any(shift[:, ~pbc] != 0):
        raise PartitionFileError(f"{source}: /graph/shift: non-zero image along a non-periodic axis")
    vec = positions[ei[1]] + shift.astype(np.float64) @ cell - positions[ei[0]]
    dist = np.sqrt(np.einsum("ij,ij->i", vec, vec))
    if e and (dist.min() <= 0.0 or dist.max() > r_cut * (1 + 1e-9)):
        raise PartitionFileError(
            f"{source}: /graph: edge lengths {dist.min():.6g}..{dist.max():.6g} A are not within (0, r_cut = "
            f"{r_cut}] for the stored positions and cell (graph and structure do not match)")
    for a in (ei, shift, vec, dist, cell, pbc):
        a.setflags(write=False)
    return NeighborList(edge_index=ei, shift=shift, vec=vec, dist=dist, n_atoms=n, r_cut=r_cut, cell=cell,
                        pbc=pbc)


def _read_structure(f, src: str):
    if "structure" not in f:
        raise PartitionFileError(f"{src}: /structure: missing group")
    s = f["structure"]
    out = {}
    for name in ("numbers", "positions", "cell", "pbc"):
        if name not in s:
            raise PartitionFileError(f"{src}: /structure/{name}: missing")
        out[name] = np.asarray(s[name][()])
    n = out["numbers"].shape[0] if out["numbers"].ndim == 1 else -1
    expect = dict(numbers=(n,), positions=(n, 3), cell=(3, 3), pbc=(3,))
    for name, shape in expect.items():
        if out[name].shape != shape:
            raise PartitionFileError(f"{src}: /structure/{name}: shape {out[name].shape}, expected {shape}")
    positions = np.array(out["positions"], dtype=np.float64)
    cell = np.array(out["cell"], dtype=np.float64)
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(cell))):
        raise PartitionFileError(f"{src}: /structure: non-finite positions or cell")
    return out["numbers"].astype(np.int64), positions, cell, np.array(out["pbc"], dtype=bool)


def load_structure_graph(path: str | os.PathLike, r_cut: float | None = None) -> StructureGraph:
    """Structure + neighbour list from any file: a targets file (its stored graph), a matrix file
    (``/structure``), or anything ``ase.io.read`` reads (last frame).

    ``r_cut`` is required unless the file stores a graph; for a stored graph it must match its r_cut
    (a partition indexes the edges of that very graph).
    """
    from hamforge.graph import neighbor_list

    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise PartitionFileError(f"{src}: no such structure file")
    if r_cut is not None:
        try:
            r_cut = float(r_cut)
        except (TypeError, ValueError):
            raise ValueError(f"r_cut: expected a number (Angstrom), got {r_cut!r}") from None
        if not np.isfinite(r_cut) or r_cut <= 0:
            raise ValueError(f"r_cut: must be finite and > 0, got {r_cut}")
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                has_graph = "graph" in f
                numbers, positions, cell, pbc = _read_structure(f, src)
        except OSError as exc:
            raise PartitionFileError(f"{src}: not a readable HDF5 file ({exc})") from exc
        if has_graph:
            sg = read_targets_graph(path)
            if r_cut is not None and abs(r_cut - sg.nl.r_cut) > 1e-12 * sg.nl.r_cut:
                raise ValueError(f"r_cut: {r_cut} differs from the r_cut {sg.nl.r_cut} of the graph stored in "
                                 f"{src}; omit it to use the stored graph")
            return sg
    else:
        import ase.io

        try:
            atoms = ase.io.read(path)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise PartitionFileError(
                f"{src}: ASE cannot read this structure file ({type(exc).__name__}: {exc})") from exc
        numbers = atoms.numbers.astype(np.int64)
        positions = atoms.positions.astype(np.float64)
        cell, pbc = np.array(atoms.cell[:], dtype=np.float64), np.array(atoms.pbc, dtype=bool)
    if r_cut is None:
        raise ValueError(f"r_cut: required for {src} (the file stores no graph)")
    if pbc.any() and np.linalg.matrix_rank(cell[pbc]) < int(pbc.sum()):
        raise PartitionFileError(f"{src}: cell: periodic along axes {np.flatnonzero(pbc).tolist()} but the cell "
                                 "vectors of those axes are missing or linearly dependent")
    try:
        nl = neighbor_list(positions, cell, pbc, r_cut)
    except ValueError as exc:
        raise PartitionFileError(f"{src}: {exc}") from exc
    return StructureGraph(numbers=numbers, positions=positions, nl=nl, source=src)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else str(obj)
    return obj

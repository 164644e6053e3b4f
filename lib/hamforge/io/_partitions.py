"""The partition file (HDF5): one writer, one reader, and the augmented-partition record it stores.

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
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hamforge.geometry import NeighborList
from hamforge.io._atomic import atomic_path
from hamforge.io._h5 import FileFormatError, H5Reader, open_h5

__all__ = [
    "PARTITION_FORMAT",
    "PARTITION_VERSION",
    "AugmentedPartition",
    "PartitionFileError",
    "PartitionFile",
    "check_assignment",
    "graph_digest",
    "read_partitions",
    "write_partitions",
]

PARTITION_FORMAT = "hamforge.partitions"
PARTITION_VERSION = 1
_PART_FIELDS = ("nodes", "node_hop", "edges", "edge_index_local", "edge_is_labelled")


class PartitionFileError(FileFormatError):
    """A partition file is missing a field or is inconsistent, or refers to another graph.

    The message names the file and the field.
    """


@dataclass(frozen=True, eq=False)
class AugmentedPartition:
    """One part with its halo (module docstring). Arrays are read-only. Fields::

    part              # int            | part id p
    halo              # int            | halo depth k
    nodes             # (n_local,) int64 | global atom ids: labelled (increasing), then virtual by
                      #                    (hop, id)
    n_labelled        # int            | number of labelled atoms (the first n_labelled nodes)
    node_hop          # (n_local,) int64 | hop distance (0 for labelled, 1..k for virtual)
    edges             # (e_local,) int64 | indices into the edge arrays of nl, increasing (so grouped by
                      #                    centre, in nl's (i, j, R) order)
    edge_index_local  # (2, e_local) int64 | [local centre; local source] in the numbering of nodes
    edge_is_labelled  # (e_local,) bool  | centre is labelled (the part owns the edge)
    """

    part: int
    halo: int
    nodes: np.ndarray
    n_labelled: int
    node_hop: np.ndarray
    edges: np.ndarray
    edge_index_local: np.ndarray
    edge_is_labelled: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    @property
    def n_virtual_nodes(self) -> int:
        return self.n_nodes - self.n_labelled

    @property
    def n_labelled_edges(self) -> int:
        return int(np.count_nonzero(self.edge_is_labelled))

    @property
    def n_virtual_edges(self) -> int:
        return self.n_edges - self.n_labelled_edges

    @property
    def labelled_nodes(self) -> np.ndarray:
        """``(n_labelled,)`` global ids of the labelled atoms (increasing)."""
        return self.nodes[: self.n_labelled]

    @property
    def virtual_nodes(self) -> np.ndarray:
        """``(n_local - n_labelled,)`` global ids of the virtual nodes."""
        return self.nodes[self.n_labelled :]


def check_assignment(assignment, n_atoms: int) -> tuple[np.ndarray, int]:
    """``(N,)`` int64 part ids; returns them and the number of parts ``max + 1`` (every part non-empty)."""
    a = np.asarray(assignment)
    if a.shape != (n_atoms,):
        raise ValueError(f"assignment: expected shape ({n_atoms},) (one part id per atom), got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"assignment: expected integer part ids, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size == 0:
        return a, 0
    if a.min() < 0:
        raise ValueError(f"assignment: part ids must be >= 0, found {int(a.min())}")
    n_parts = int(a.max()) + 1
    counts = np.bincount(a, minlength=n_parts)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"assignment: parts must be numbered 0..{n_parts - 1} without gaps; "
            f"part(s) {empty[:10].tolist()} have no atom"
        )
    return a, n_parts


def graph_digest(nl: NeighborList) -> str:
    """Short SHA-256 of ``(n_atoms, edge_index, shift)``: identifies the edge numbering a partition uses."""
    h = hashlib.sha256()
    h.update(np.int64(nl.n_atoms).tobytes())
    h.update(np.ascontiguousarray(nl.edge_index, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(nl.shift, dtype=np.int64).tobytes())
    return h.hexdigest()[:24]


def write_partitions(
    path: str | os.PathLike,
    nl: NeighborList,
    assignment,
    parts: list[AugmentedPartition],
    metrics_summary: Mapping[str, Any],
    metrics_table,
    *,
    method: str = "unspecified",
    options: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write the partition file (module docstring) atomically (temp file + rename).

    ``metrics_table`` is the per-part ``pandas.DataFrame`` of :func:`partition_metrics` (numeric columns).
    """
    import h5py

    nl = _check_nl(nl)
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
            f.attrs["provenance"] = json.dumps(
                _jsonable({"program": "hamforge", **dict(provenance or {})}), sort_keys=True
            )
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
                f"{nl.n_edges} edges, digest {graph_digest(nl)}); rerun the partition stage"
            )


def read_partitions(path: str | os.PathLike, nl: NeighborList | None = None) -> PartitionFile:
    """Read and check a partition file; with ``nl`` also check it refers to that graph.

    Errors (:class:`PartitionFileError`) name the file and the missing or inconsistent field.
    """
    import pandas as pd

    path = Path(path)
    src = str(path)
    f = open_h5(path, "partition file", PartitionFileError)

    with f:
        r = H5Reader(f, src, PartitionFileError)
        bad = r.fail
        r.check_header(PARTITION_FORMAT, (PARTITION_VERSION,))

        def attr(name, kind):
            return r.attr(name, kind)

        def get(obj, name, where):
            if name not in obj:
                bad(where, "missing")
            return obj[name][()]

        def jattr(name):
            return r.json_attr(name)

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
            shapes = dict(
                nodes=(n_loc,),
                node_hop=(n_loc,),
                edges=(e_loc,),
                edge_index_local=(2, e_loc),
                edge_is_labelled=(e_loc,),
            )
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
            arrays = dict(
                nodes=d["nodes"].astype(np.int64),
                node_hop=d["node_hop"].astype(np.int64),
                edges=d["edges"].astype(np.int64),
                edge_index_local=d["edge_index_local"].astype(np.int64),
                edge_is_labelled=d["edge_is_labelled"].astype(bool),
            )
            for v in arrays.values():
                v.setflags(write=False)
            parts.append(AugmentedPartition(part=p, halo=int(g.attrs.get("halo", halo)), n_labelled=n_lab, **arrays))
        if "metrics_table" not in f:
            bad("/metrics_table", "missing group")
        t = f["metrics_table"]
        try:
            cols = json.loads(t.attrs.get("columns", "[]"))
        except json.JSONDecodeError as exc:
            bad("/metrics_table@columns", f"not valid JSON ({exc})")
        table = pd.DataFrame({c: get(t, c, f"/metrics_table/{c}") for c in cols}, columns=cols)
        out = PartitionFile(
            path=src,
            method=attr("method", str),
            n_parts=n_parts,
            halo=halo,
            r_cut=attr("r_cut", float),
            n_atoms=n_atoms,
            n_edges=n_edges,
            graph_digest=attr("graph_digest", str),
            assignment=a.astype(np.int64),
            parts=parts,
            summary=jattr("metrics"),
            table=table,
            options=jattr("options"),
            provenance=jattr("provenance"),
        )
    if nl is not None:
        out.check_graph(_check_nl(nl))
    return out


def _check_nl(nl) -> NeighborList:
    if not isinstance(nl, NeighborList):
        raise ValueError(f"nl: expected a hamforge NeighborList, got {type(nl).__name__}")
    return nl


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

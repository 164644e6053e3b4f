"""The targets file: graph + padded coupled-basis targets of one structure (HDF5, format hamforge.targets).

Layout (version 1)::

    attrs: format, version, energy_unit="Hartree", length_unit="Angstrom", r_cut, kinds (JSON list),
           node_irreps, pair_irreps (e3nn Irreps strings of the columns, padding included), provenance (JSON)
    /structure/numbers, positions, cell, pbc, kinds     as in the matrix file
    /structure/kind_id (N,) int64                      index into attrs['kinds'] (the model's species)
    /basis/<kind>                                      shell l values (attrs element, name)
    /graph/edge_index (2, E) int64, /graph/shift (E, 3) int64; attrs r_cut
                                                       edges sorted by centre atom i, 0 < |vec| <= r_cut
    /graph/edge_to_pair (E,) int64                     pair row of each edge; -1 - i for self-images of atom i
    /nodes/targets (N, Dn) float64                     coupled folded on-site blocks of H (Hartree)
    /nodes/overlap (N, Dn) float64                     the same for S
    /nodes/kind_pair (N,) int64                        row of /slots/node/kind_pairs
    /pairs/index (2, P) int64                          atom pairs (i != j) with at least one edge
    /pairs/targets (P, Dp), /pairs/overlap (P, Dp), /pairs/kind_pair (P,)
    /slots/<node|pair>/kind_pairs (K, 2)               kind ids (a, b)
    /slots/<node|pair>/mask (K, D) bool                columns that exist for each kind pair
    /slots/<node|pair>/{kind_pair, shell_a, shell_b, l_a, l_b, L, start} (S,) int64   the slot table

Reading: :func:`read_targets_file` checks the header (format and version), every shape and index range, the
sort of the edges by centre atom and ``0 < |vec| <= r_cut`` of the vectors recomputed from the stored
positions, cell and shifts (relative tolerance 1e-9, far above the rounding of the recomputation and far
below any real change of geometry), and that the stored slot tables match the layout of the stored basis.
``graph_only=True`` skips the target arrays (what partitioning needs). Errors are :class:`TargetsFileError`
naming the file and the field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hamforge.basis import ElementBasis, TargetLayout, build_layout
from hamforge.geometry import NeighborList, edge_vectors, frozen_neighbor_list
from hamforge.io._atomic import atomic_path, strict_json
from hamforge.io._h5 import FileFormatError, H5Reader, open_h5
from hamforge.io._structure import Structure, read_basis_group, read_structure_group, write_structure_groups

__all__ = [
    "TARGETS_FORMAT",
    "TARGETS_VERSION",
    "Targets",
    "TargetsFileError",
    "StructureGraph",
    "read_targets_file",
    "write_targets_file",
]

TARGETS_FORMAT = "hamforge.targets"
TARGETS_VERSION = 1
# Relative tolerance on recomputed edge lengths against r_cut (see the module docstring).
_DIST_RTOL = 1e-9


class TargetsFileError(FileFormatError):
    """A targets file is missing a field or its fields are inconsistent (message names file and field)."""


@dataclass(frozen=True, eq=False)
class Targets:
    """Learning targets of one structure (see docs/data-formats.md for the file)."""

    nl: NeighborList
    kinds: tuple[str, ...]  # layout kinds (model species), index = kind id
    atom_kind: np.ndarray  # (N,) int64 | kind id of each atom
    numbers: np.ndarray  # (N,) int64
    basis: Mapping[str, ElementBasis]
    node_layout: TargetLayout
    pair_layout: TargetLayout
    node_targets: np.ndarray  # (N, Dn) | coupled folded on-site blocks of H (Hartree)
    node_overlap: np.ndarray  # (N, Dn) | same for S
    pair_index: np.ndarray  # (2, P) | atom pairs (i != j) with at least one edge
    edge_to_pair: np.ndarray  # (E,) | pair of each edge, -1 - i for self-images of atom i
    pair_targets: np.ndarray  # (P, Dp) | coupled Gamma blocks of H
    pair_overlap: np.ndarray  # (P, Dp) | same for S
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def node_kind_pair(self) -> np.ndarray:
        return self.node_layout.kind_pair_index(self.atom_kind, self.atom_kind)

    @property
    def pair_kind_pair(self) -> np.ndarray:
        return self.pair_layout.kind_pair_index(self.atom_kind[self.pair_index[0]], self.atom_kind[self.pair_index[1]])


@dataclass(frozen=True, eq=False)
class StructureGraph:
    """A structure and its neighbour list: the graph of a targets file (``read_targets_file(path,
    graph_only=True)``) or one built from any structure file (``hamforge.graph.load_structure_graph``)."""

    structure: Structure
    nl: NeighborList
    kinds: tuple[str, ...]
    atom_kind: np.ndarray  # (N,) int64
    source: str

    @property
    def numbers(self) -> np.ndarray:
        return self.structure.numbers

    @property
    def positions(self) -> np.ndarray:
        return self.structure.positions


def _write_layout(g, layout: TargetLayout) -> None:
    g.attrs["irreps"] = layout.irreps
    g.create_dataset("kind_pairs", data=layout.kind_pairs)
    g.create_dataset("mask", data=layout.mask)
    for name in ("kind_pair", "shell_a", "shell_b", "l_a", "l_b", "L", "start"):
        g.create_dataset(name, data=getattr(layout, f"slot_{name}"))


def write_targets_file(path: str | os.PathLike, t: Targets, structure) -> None:
    """Write targets ``t`` with the structure of ``structure`` (a MatrixData or Structure) atomically."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = TARGETS_FORMAT
            f.attrs["version"] = TARGETS_VERSION
            f.attrs["energy_unit"] = "Hartree"
            f.attrs["length_unit"] = "Angstrom"
            f.attrs["r_cut"] = float(t.nl.r_cut)
            f.attrs["kinds"] = json.dumps(list(t.kinds))
            f.attrs["node_irreps"] = t.node_layout.irreps
            f.attrs["pair_irreps"] = t.pair_layout.irreps
            f.attrs["provenance"] = strict_json(dict(t.provenance), sort_keys=True)
            write_structure_groups(f, structure, t.basis)
            f["structure"].create_dataset("kind_id", data=t.atom_kind)
            g = f.create_group("graph")
            g.attrs["r_cut"] = float(t.nl.r_cut)
            g.create_dataset("edge_index", data=t.nl.edge_index)
            g.create_dataset("shift", data=t.nl.shift)
            g.create_dataset("edge_to_pair", data=t.edge_to_pair)
            n = f.create_group("nodes")
            n.create_dataset("targets", data=t.node_targets)
            n.create_dataset("overlap", data=t.node_overlap)
            n.create_dataset("kind_pair", data=t.node_kind_pair)
            p = f.create_group("pairs")
            p.create_dataset("index", data=t.pair_index)
            p.create_dataset("targets", data=t.pair_targets)
            p.create_dataset("overlap", data=t.pair_overlap)
            p.create_dataset("kind_pair", data=t.pair_kind_pair)
            _write_layout(f.create_group("slots/node"), t.node_layout)
            _write_layout(f.create_group("slots/pair"), t.pair_layout)


def _read_graph(r: H5Reader, s: Structure) -> NeighborList:
    n = s.n_atoms
    g = r.group("graph")
    r_cut = r.attr("r_cut", float, g, "/graph")
    if not (np.isfinite(r_cut) and r_cut > 0):
        r.fail("/graph@r_cut", f"must be finite and > 0, got {r_cut}")
    ei = r.array("graph/edge_index", dtype="i", shape=(2, -1))
    e = ei.shape[1]
    shift = r.array("graph/shift", dtype="i", shape=(e, 3))
    if e and (ei.min() < 0 or ei.max() >= n):
        r.fail("/graph/edge_index", f"atom ids outside 0..{n - 1}")
    if e and np.any(ei[0, 1:] < ei[0, :-1]):
        r.fail("/graph/edge_index", "edges are not sorted by centre atom")
    if np.any(shift[:, ~s.pbc] != 0):
        r.fail("/graph/shift", "non-zero image shift along a non-periodic axis")
    ei, shift = np.ascontiguousarray(ei), np.ascontiguousarray(shift)
    vec, dist = edge_vectors(s.positions, s.cell, ei, shift)
    if e and (dist.min() <= 0.0 or dist.max() > r_cut * (1.0 + _DIST_RTOL)):
        r.fail(
            "/graph",
            f"edge lengths in [{dist.min():.6g}, {dist.max():.6g}] Å are not within (0, r_cut = "
            f"{r_cut:g}] for the stored positions and cell (graph and structure do not match)",
        )
    return frozen_neighbor_list(ei, shift, vec, dist, n, r_cut, s.cell.copy(), s.pbc.copy())


def read_targets_file(path: str | os.PathLike, graph_only: bool = False) -> Targets | StructureGraph:
    """Read and check a targets file (module docstring): :class:`Targets`, or with ``graph_only`` the structure
    and graph alone (:class:`StructureGraph`)."""
    path = Path(path)
    with open_h5(path, "targets file", TargetsFileError) as f:
        r = H5Reader(f, str(path), TargetsFileError)
        r.check_header(TARGETS_FORMAT, (TARGETS_VERSION,))
        kinds = r.json_attr("kinds")
        if not (isinstance(kinds, list) and kinds and all(isinstance(k, str) for k in kinds)):
            r.fail("kinds", f"expected a non-empty JSON list of kind labels, got {kinds!r}")
        kinds = tuple(kinds)
        s = read_structure_group(r)
        n = s.n_atoms
        atom_kind = r.array("structure/kind_id", dtype="i", shape=(n,))
        if n and (atom_kind.min() < 0 or atom_kind.max() >= len(kinds)):
            r.fail("/structure/kind_id", f"kind ids outside 0..{len(kinds) - 1}")
        if not np.array_equal(np.asarray(kinds, dtype=object)[atom_kind], s.kinds):
            r.fail("/structure/kind_id", "kind ids do not match /structure/kinds")
        nl = _read_graph(r, s)
        if graph_only:
            return StructureGraph(structure=s, nl=nl, kinds=kinds, atom_kind=atom_kind, source=str(path))
        basis = read_basis_group(r)
        missing = sorted(set(kinds) - set(basis))
        if missing:
            r.fail("/basis", f"no basis for kind(s) {missing}")
        node_layout, pair_layout = build_layout(basis, kinds, "node"), build_layout(basis, kinds, "pair")
        for name, lay in (("node", node_layout), ("pair", pair_layout)):
            g = r.group(f"slots/{name}")
            if r.attr("irreps", str, g, f"/slots/{name}") != lay.irreps or not np.array_equal(
                r.array(f"slots/{name}/mask", dtype="b"), lay.mask
            ):
                r.fail(f"/slots/{name}", "does not match the layout of its basis (written by another version?)")
        e = nl.n_edges
        pair_index = r.array("pairs/index", dtype="i", shape=(2, -1))
        p = pair_index.shape[1]
        if p and (pair_index.min() < 0 or pair_index.max() >= n):
            r.fail("/pairs/index", f"atom ids outside 0..{n - 1}")
        edge_to_pair = r.array("graph/edge_to_pair", dtype="i", shape=(e,))
        if e and (edge_to_pair.min() < -n or edge_to_pair.max() >= p):
            r.fail("/graph/edge_to_pair", f"values outside -{n}..{p - 1}")
        dn, dp = node_layout.width, pair_layout.width
        t = Targets(
            nl=nl,
            kinds=kinds,
            atom_kind=atom_kind,
            numbers=s.numbers,
            basis=basis,
            node_layout=node_layout,
            pair_layout=pair_layout,
            node_targets=r.array("nodes/targets", dtype="f", shape=(n, dn), finite=True),
            node_overlap=r.array("nodes/overlap", dtype="f", shape=(n, dn), finite=True),
            pair_index=pair_index,
            edge_to_pair=edge_to_pair,
            pair_targets=r.array("pairs/targets", dtype="f", shape=(p, dp), finite=True),
            pair_overlap=r.array("pairs/overlap", dtype="f", shape=(p, dp), finite=True),
            provenance=r.json_attr("provenance", default={}),
        )
    return t

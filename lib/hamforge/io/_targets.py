"""The targets file: graph + padded coupled-basis targets of one structure (HDF5, format hamforge.targets).

Layout (version 1)::

    attrs: format, version, energy_unit="Hartree", length_unit="Angstrom", r_cut, kinds (JSON list),
           node_irreps, pair_irreps (e3nn Irreps strings of the columns, padding included), provenance (JSON)
    /structure/numbers, positions, cell, pbc, kinds     as in the matrix file
    /structure/kind_id (N,) int64                      index into attrs['kinds'] (the model's species)
    /basis/<kind>                                      shell l values (attrs element, name)
    /graph/edge_index (2, E) int64, /graph/shift (E, 3) int64; attrs r_cut
    /graph/edge_to_pair (E,) int64                     pair row of each edge; -1 - i for self-images of atom i
    /nodes/targets (N, Dn) float64                     coupled folded on-site blocks of H (Hartree)
    /nodes/overlap (N, Dn) float64                     the same for S
    /nodes/kind_pair (N,) int64                        row of /slots/node/kind_pairs
    /pairs/index (2, P) int64                          atom pairs (i != j) with at least one edge
    /pairs/targets (P, Dp), /pairs/overlap (P, Dp), /pairs/kind_pair (P,)
    /slots/<node|pair>/kind_pairs (K, 2)               kind ids (a, b)
    /slots/<node|pair>/mask (K, D) bool                columns that exist for each kind pair
    /slots/<node|pair>/{kind_pair, shell_a, shell_b, l_a, l_b, L, start} (S,) int64   the slot table
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hamforge.basis import TargetLayout
from hamforge.io._atomic import atomic_path
from hamforge.io._h5 import open_h5
from hamforge.io._matrices import MatrixFileError, read_basis_group, write_structure_groups

__all__ = ["TARGETS_FORMAT", "write_targets_file", "read_targets_file"]

TARGETS_FORMAT = "hamforge.targets"
TARGETS_VERSION = 1


def _write_layout(g, layout: TargetLayout) -> None:
    g.attrs["irreps"] = layout.irreps
    g.create_dataset("kind_pairs", data=layout.kind_pairs)
    g.create_dataset("mask", data=layout.mask)
    for name in ("kind_pair", "shell_a", "shell_b", "l_a", "l_b", "L", "start"):
        g.create_dataset(name, data=getattr(layout, f"slot_{name}"))


def write_targets_file(path: str | os.PathLike, t, structure) -> None:
    """Write :class:`hamforge.graph.Targets` ``t`` with the structure of ``structure`` (a MatrixData) atomically."""
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
            f.attrs["provenance"] = json.dumps(dict(t.provenance), sort_keys=True, default=str)
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


def read_targets_file(path: str | os.PathLike):
    """Read a targets file back into :class:`hamforge.graph.Targets` (graph vectors recomputed from positions)."""

    from hamforge.basis import build_layout
    from hamforge.graph._neighbors import NeighborList
    from hamforge.graph._targets import Targets

    path = Path(path)
    with open_h5(path, "targets file", MatrixFileError) as f:
        if f.attrs.get("format") != TARGETS_FORMAT:
            raise MatrixFileError(f"{path}: attribute 'format' is {f.attrs.get('format')!r}, expected {TARGETS_FORMAT!r}")

        def get(name):
            if name not in f:
                raise MatrixFileError(f"{path}: missing field {name}")
            return f[name][()]

        kinds = tuple(json.loads(f.attrs["kinds"]))
        basis = read_basis_group(f)
        positions, cell, pbc = get("structure/positions"), get("structure/cell"), get("structure/pbc")
        edge_index, shift = get("graph/edge_index"), get("graph/shift")
        r_cut = float(f["graph"].attrs["r_cut"])
        vec = positions[edge_index[1]] + shift @ cell - positions[edge_index[0]]
        nl = NeighborList(
            edge_index=edge_index, shift=shift, vec=vec, dist=np.linalg.norm(vec, axis=1),
            n_atoms=len(positions), r_cut=r_cut, cell=cell, pbc=pbc,
        )
        node_layout, pair_layout = build_layout(basis, kinds, "node"), build_layout(basis, kinds, "pair")
        for name, lay in (("node", node_layout), ("pair", pair_layout)):
            if f[f"slots/{name}"].attrs["irreps"] != lay.irreps or not np.array_equal(get(f"slots/{name}/mask"), lay.mask):
                raise MatrixFileError(f"{path}: /slots/{name} does not match the layout of its basis (written by another version?)")
        t = Targets(
            nl=nl,
            kinds=kinds,
            atom_kind=get("structure/kind_id"),
            numbers=get("structure/numbers"),
            basis=basis,
            node_layout=node_layout,
            pair_layout=pair_layout,
            node_targets=get("nodes/targets"),
            node_overlap=get("nodes/overlap"),
            pair_index=get("pairs/index"),
            edge_to_pair=get("graph/edge_to_pair"),
            pair_targets=get("pairs/targets"),
            pair_overlap=get("pairs/overlap"),
            provenance=json.loads(f.attrs.get("provenance", "{}")),
        )
    n, p, e = len(t.atom_kind), t.pair_index.shape[1], edge_index.shape[1]
    checks = [
        ("nodes/targets", t.node_targets.shape == (n, node_layout.width)),
        ("pairs/targets", t.pair_targets.shape == (p, pair_layout.width)),
        ("graph/edge_to_pair", t.edge_to_pair.shape == (e,)),
        ("graph/shift", shift.shape == (e, 3)),
    ]
    for field_name, ok in checks:
        if not ok:
            raise MatrixFileError(f"{path}: {field_name} has an inconsistent shape")
    return t

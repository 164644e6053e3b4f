"""Structure + neighbour list from any file: a targets file's stored graph, or a graph built at ``r_cut`` from a
matrix file or anything ASE reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hamforge.graph._neighbors import neighbor_list
from hamforge.io import StructureFileError, StructureGraph, open_h5, read_structure, read_targets_file

__all__ = ["load_structure_graph", "structure_graph"]


def structure_graph(structure, r_cut: float) -> StructureGraph:
    """:class:`hamforge.io.StructureGraph` of a :class:`hamforge.io.Structure` at cutoff ``r_cut`` (Angstrom).

    Species (``kinds``) are the structure's kind labels, sorted. Errors of the neighbour search (coincident
    atoms, ...) name the structure's source file.
    """
    try:
        nl = neighbor_list(structure.positions, structure.cell, structure.pbc, r_cut)
    except ValueError as exc:
        raise StructureFileError(f"{structure.source}: {exc}") from exc
    kinds = tuple(sorted(set(structure.kinds.tolist())))
    atom_kind = np.searchsorted(np.asarray(kinds, dtype=object), structure.kinds).astype(np.int64)
    return StructureGraph(structure=structure, nl=nl, kinds=kinds, atom_kind=atom_kind, source=structure.source)


def load_structure_graph(path: str | os.PathLike, r_cut: float | None = None) -> StructureGraph:
    """Structure + neighbour list of ``path``: a targets file (its stored graph), a matrix file (``/structure``),
    or anything ``ase.io.read`` reads (last frame).

    ``r_cut`` is required unless the file stores a graph; for a stored graph it must match its r_cut (a
    partition indexes the edges of that very graph).
    """
    path = Path(path)
    src = str(path)
    if r_cut is not None:
        try:
            r_cut = float(r_cut)
        except (TypeError, ValueError):
            raise ValueError(f"r_cut: expected a number (Angstrom), got {r_cut!r}") from None
        if not np.isfinite(r_cut) or r_cut <= 0:
            raise ValueError(f"r_cut: must be finite and > 0, got {r_cut}")
    if path.suffix.lower() in (".h5", ".hdf5") and path.is_file():
        with open_h5(path, "structure file", StructureFileError) as f:
            has_graph = "graph" in f
        if has_graph:
            sg = read_targets_file(path, graph_only=True)
            if r_cut is not None and abs(r_cut - sg.nl.r_cut) > 1e-12 * sg.nl.r_cut:
                raise ValueError(
                    f"r_cut: {r_cut} differs from the r_cut {sg.nl.r_cut} of the graph stored in "
                    f"{src}; omit it to use the stored graph"
                )
            return sg
    structure = read_structure(path)
    if r_cut is None:
        raise ValueError(f"r_cut: required for {src} (the file stores no graph)")
    return structure_graph(structure, r_cut)

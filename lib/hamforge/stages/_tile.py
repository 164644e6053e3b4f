"""Tiling a snapshot for the transport device: the structure repeated, kinds kept (ghosts stay ghosts)."""

from __future__ import annotations

import os

import numpy as np

from hamforge.io import atomic_path, check_output_path, read_structure

__all__ = ["tile_snapshot_file"]


def tile_snapshot_file(snapshot: str | os.PathLike, reps, output: str | os.PathLike):
    """Write ``snapshot`` tiled ``reps`` times (``hamforge.io.Structure.tile``: copy-major order, the order the
    predict rule tiles in) to ``output`` as extxyz with the per-atom ``kinds`` array, so a ghost-vacancy kind
    (atomic number 0, kind e.g. ``Ge_vac``) or a dopant kind comes back as itself. Returns the tiled structure."""
    import ase
    import ase.io

    check_output_path(output, [snapshot])
    s = read_structure(snapshot).tile(reps)
    atoms = ase.Atoms(numbers=s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc)
    atoms.new_array("kinds", np.asarray(s.kinds, dtype=str))
    with atomic_path(output) as tmp:
        ase.io.write(tmp, atoms, format="extxyz")
    return s

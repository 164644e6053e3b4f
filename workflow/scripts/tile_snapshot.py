"""Snakemake adapter: a snapshot repeated along its lattice vectors (hamforge.io.Structure.tile), as extxyz."""

import ase
import ase.io
import numpy as np
from hamforge._logging import configure_logging, log_failure
from hamforge.io import atomic_path, read_structure

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    s = read_structure(sm.input.snapshot).tile(sm.params.tile)  # copy-major order, as the predict rule tiles
    atoms = ase.Atoms(numbers=s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc)
    with atomic_path(sm.output.structure) as tmp:
        ase.io.write(tmp, atoms, format="extxyz")
log.info(
    "%s tiled %s: %d atoms, cell lengths %s A",
    sm.input.snapshot,
    sm.params.tile,
    len(atoms),
    np.linalg.norm(s.cell, axis=1),
)

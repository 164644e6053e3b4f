"""Geometry sanity checks shared by every reader of structures (CP2K inputs, matrix files, trajectories).

Kept below every room (numpy and ASE only) so that io, dft, graph and structures can all use the same rules.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_ATOM_DISTANCE", "check_structure"]

# Closer than this, two atoms are the same atom twice (a bad structure file), not chemistry: the shortest
# bond there is (H2) is 0.74 Angstrom.
MIN_ATOM_DISTANCE = 0.5


def check_structure(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, where: str, *, error: type[Exception] = ValueError
) -> None:
    """Refuse a zero or singular cell, non-finite coordinates, and atoms closer than 0.5 Angstrom.

    ``where`` names the source (a file) in the messages; ``error`` is the exception class raised (each room
    passes its own subclass, e.g. DFTError, MatrixFileError). The distance check uses ASE's binned neighbour
    list (O(N), minimum image through ``pbc``), not an N x N distance matrix.
    """
    positions = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    if not np.all(np.isfinite(cell)):
        raise error(f"{where}: cell has non-finite entries")
    vol = abs(float(np.linalg.det(cell)))
    if vol < 1e-6:
        raise error(f"{where}: cell {cell.tolist()} has zero volume (missing or zero lattice vectors?)")
    if not np.all(np.isfinite(positions)):
        k = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
        raise error(f"{where}: atom {k + 1} has non-finite coordinates")
    if len(positions) < 2 and not np.any(pbc):
        return
    from ase.neighborlist import primitive_neighbor_list

    i, j, dist = primitive_neighbor_list(
        "ijd", np.asarray(pbc, dtype=bool), cell, positions, MIN_ATOM_DISTANCE, self_interaction=False
    )
    if len(i):
        k = int(np.argmin(dist))
        a, b = sorted((int(i[k]), int(j[k])))
        what = f"atoms {a + 1} and {b + 1}" if a != b else f"atom {a + 1} and its own periodic image"
        raise error(
            f"{where}: {what} are {dist[k]:.3g} Angstrom apart (< {MIN_ATOM_DISTANCE}): coincident or duplicated atoms"
        )

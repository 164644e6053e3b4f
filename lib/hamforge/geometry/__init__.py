"""hamforge.geometry: periodic geometry shared by every room (stateless, numpy only).

One completed-cell rule, fractional coordinates and wrapping, exact minimum image for triclinic cells, and
the neighbour-list record with the one edge-vector formula, and supercell tiling (copy-major atom order,
``_tile.py``). See ``_cell.py`` for the conventions.
"""

from hamforge.geometry._cell import (
    Lattice,
    check_cell,
    check_positions,
    completed_cell,
    lattice,
    minimum_image,
)
from hamforge.geometry._edges import NeighborList, edge_vectors, frozen_neighbor_list
from hamforge.geometry._tile import check_reps, tile_copies, tile_positions

__all__ = [
    "Lattice",
    "NeighborList",
    "check_cell",
    "check_positions",
    "check_reps",
    "completed_cell",
    "edge_vectors",
    "frozen_neighbor_list",
    "lattice",
    "minimum_image",
    "tile_copies",
    "tile_positions",
]

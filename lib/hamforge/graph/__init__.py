"""hamforge.graph: periodic neighbour search with image shifts, atom blocks, Gamma-point folding, targets.

Conventions (``docs/conventions.md``): edge ``(i, j, R)``, centre ``i`` = block row = message receiver,
neighbour ``j`` in image ``R`` = block column = message source, ``vec = x_j + R @ cell - x_i``; edges
sorted by ``(i, j, R)``; self-images ``(i, i, R != 0)`` are edges, ``(i, i, 0)`` is the node.
The neighbour-list record itself lives in ``hamforge.geometry`` and the targets record in ``hamforge.io``
(so file readers need not import this room); both are re-exported here.
"""

from hamforge.geometry import NeighborList
from hamforge.graph._blocks import (
    RaggedBlocks,
    assemble_gamma,
    extract_blocks,
    extract_gamma_blocks,
    fold_blocks,
    fold_map,
    folding_is_identity,
    ragged_blocks,
)
from hamforge.graph._load import load_structure_graph, structure_graph
from hamforge.graph._neighbors import neighbor_list, reverse_edge_index
from hamforge.graph._synthetic import synthetic_hamiltonian
from hamforge.graph._targets import (
    blocks_to_coupled,
    build_targets,
    coupled_to_blocks,
    coverage_report,
    targets_to_blocks,
    targets_to_matrix,
)
from hamforge.graph._transpose import pair_transpose_map
from hamforge.io import StructureGraph, Targets

__all__ = [
    "NeighborList",
    "RaggedBlocks",
    "StructureGraph",
    "Targets",
    "assemble_gamma",
    "blocks_to_coupled",
    "build_targets",
    "coupled_to_blocks",
    "coverage_report",
    "extract_blocks",
    "extract_gamma_blocks",
    "fold_blocks",
    "fold_map",
    "folding_is_identity",
    "load_structure_graph",
    "neighbor_list",
    "pair_transpose_map",
    "ragged_blocks",
    "reverse_edge_index",
    "structure_graph",
    "synthetic_hamiltonian",
    "targets_to_blocks",
    "targets_to_matrix",
]

"""hamforge.graph: periodic neighbour search with image shifts, atom blocks, Gamma-point folding.

Conventions (``docs/conventions.md``): edge ``(i, j, R)``, centre ``i`` = block row = message receiver,
neighbour ``j`` in image ``R`` = block column = message source, ``vec = x_j + R @ cell - x_i``; edges
sorted by ``(i, j, R)``; self-images ``(i, i, R != 0)`` are edges, ``(i, i, 0)`` is the node.
"""

from ._blocks import (
    RaggedBlocks,
    assemble_gamma,
    extract_blocks,
    extract_gamma_blocks,
    fold_blocks,
    fold_map,
    folding_is_identity,
    ragged_blocks,
)
from ._neighbors import NeighborList, neighbor_list, reverse_edge_index

__all__ = [
    "NeighborList",
    "neighbor_list",
    "reverse_edge_index",
    "RaggedBlocks",
    "ragged_blocks",
    "extract_blocks",
    "extract_gamma_blocks",
    "fold_map",
    "folding_is_identity",
    "fold_blocks",
    "assemble_gamma",
]

from ._make import make_targets_file, plot_coverage  # noqa: E402
from ._targets import (  # noqa: E402
    Targets,
    blocks_to_coupled,
    build_targets,
    coupled_to_blocks,
    coverage_report,
    targets_to_blocks,
    targets_to_matrix,
)

__all__ += [
    "Targets",
    "blocks_to_coupled",
    "build_targets",
    "coupled_to_blocks",
    "coverage_report",
    "make_targets_file",
    "plot_coverage",
    "targets_to_blocks",
    "targets_to_matrix",
]

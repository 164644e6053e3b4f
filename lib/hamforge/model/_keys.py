"""Names of the graph-dict entries the model reads and writes (NequIP style: one constant per key).

Edge convention (``docs/conventions.md``): edge ``e = (i, j, R)``, centre ``i`` = block row = message
receiver, neighbour ``j`` = block column = message source, ``vec = x_j + R @ cell - x_i`` (Angstrom).
"""

from __future__ import annotations

# ---- inputs
NUMBERS = "numbers"  # (N,) int64 | atomic numbers (0 = ghost atom: basis functions, no nucleus)
EDGE_INDEX = "edge_index"  # (2, E) int64 | [centre i (receiver, block row); neighbour j (source, block column)]
EDGE_VEC = "edge_vec"  # (E, 3) float | x_j + R @ cell - x_i, Angstrom

# ---- outputs
NODE_OUT = "node_out"  # (N, Dn) | padded coupled-basis on-site blocks, columns = config.node_irreps
EDGE_OUT = "edge_out"  # (E, De) | padded coupled-basis edge blocks H_ij(R), columns = config.edge_irreps
NODE_OVERLAP = "node_overlap"  # (N, Dn) | on-site overlap (only with predict_overlap), node_irreps columns
EDGE_OVERLAP = "edge_overlap"  # (E, De) | two-centre overlap (only with predict_overlap), edge_irreps columns

INPUT_KEYS = (NUMBERS, EDGE_INDEX, EDGE_VEC)

"""hamforge.model: SO(2)-equivariant graph network for coupled-basis Hamiltonian blocks (``docs/model.md``).

Input: a plain dict of tensors (``NUMBERS``, ``EDGE_INDEX``, ``EDGE_VEC``; edge (i <- j) with centre i =
block row = receiver, ``vec = x_j + R @ cell - x_i``). Output: ``NODE_OUT (N, Dn)``, ``EDGE_OUT (E, De)`` in
the column layout of the config's e3nn Irreps strings (+ ``NODE_OVERLAP``, ``EDGE_OVERLAP`` optionally).
A partition with a halo of ``config.halo`` hops (n_layers, or 1 if strictly_local) reproduces the
full-graph outputs of its labelled nodes and of the edges into them exactly.
"""

from hamforge.model._checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from hamforge.model._config import ModelConfig, irreps_dim, parse_irreps
from hamforge.model._heads import IrrepsHead, IrrepsLayout
from hamforge.model._keys import (
    EDGE_INDEX,
    EDGE_OUT,
    EDGE_OVERLAP,
    EDGE_VEC,
    INPUT_KEYS,
    NODE_OUT,
    NODE_OVERLAP,
    NUMBERS,
)
from hamforge.model._model import HamiltonianModel
from hamforge.model._radial import Envelope, GaussianBasis
from hamforge.model._so2 import EdgeWigner, SO2Convolution, so2_convolution_reference

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "EDGE_INDEX",
    "EDGE_OUT",
    "EDGE_OVERLAP",
    "EDGE_VEC",
    "EdgeWigner",
    "Envelope",
    "GaussianBasis",
    "HamiltonianModel",
    "INPUT_KEYS",
    "IrrepsHead",
    "IrrepsLayout",
    "ModelConfig",
    "NODE_OUT",
    "NODE_OVERLAP",
    "NUMBERS",
    "SO2Convolution",
    "irreps_dim",
    "load_checkpoint",
    "parse_irreps",
    "read_checkpoint",
    "save_checkpoint",
    "so2_convolution_reference",
]

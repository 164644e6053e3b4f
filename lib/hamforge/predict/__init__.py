"""hamforge.predict: Hamiltonians of structures far larger than any training cell (``docs/predict.md``).

Any structure (an ASE-readable file or a matrix file), tiled ``NX x NY x NZ``; the graph is split into augmented
partitions (halo of ``model.config.halo`` hops) that run through the model one at a time under ``no_grad``;
per-image blocks are symmetrized explicitly (the asymmetry removed is reported); the exact S comes from
``hamforge.basis`` within the basis's own overlap range; the Gamma and per-image H and S are written row slab by
row slab as a matrix file version 2.
"""

from hamforge.predict._assemble import image_table, iter_row_slabs
from hamforge.predict._cli import add_predict_parsers
from hamforge.predict._infer import DEFAULT_ATOMS_PER_PART, predict_blocks
from hamforge.predict._inputs import (
    MIN_ATOM_DISTANCE,
    PredictError,
    load_structure,
    model_basis,
    structure_kinds,
)
from hamforge.predict._predict import (
    DEFAULT_OVERLAP_CHECK_ORBITALS,
    DEFAULT_OVERLAP_EPS,
    Prediction,
    predict_file,
    predict_structure,
    write_prediction,
)
from hamforge.predict._symmetry import symmetrize_blocks

__all__ = [
    "DEFAULT_ATOMS_PER_PART",
    "DEFAULT_OVERLAP_CHECK_ORBITALS",
    "DEFAULT_OVERLAP_EPS",
    "MIN_ATOM_DISTANCE",
    "PredictError",
    "Prediction",
    "add_predict_parsers",
    "image_table",
    "iter_row_slabs",
    "load_structure",
    "model_basis",
    "predict_blocks",
    "predict_file",
    "predict_structure",
    "structure_kinds",
    "symmetrize_blocks",
    "write_prediction",
]

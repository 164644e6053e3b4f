"""hamforge.predict: Hamiltonians of structures far larger than any training cell (``docs/predict.md``).

Any structure (an ASE-readable file or a matrix file), tiled ``NX x NY x NZ``, streamed with the memory of one part
(``_stream``): parts with a halo of ``model.config.halo`` hops run through the model one at a time under
``no_grad`` into a row store on disk; row slabs in atom order are symmetrized explicitly (the asymmetry removed is
reported), get their exact S from ``hamforge.basis`` within the basis's own overlap range, and are written as a
matrix file version 3 (optionally shared over torch.distributed ranks, ``parallel="ranks"``). The in-memory
``predict_structure`` / ``write_prediction`` remain the API for small structures.
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
    PREDICT_PARALLEL,
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
    "PREDICT_PARALLEL",
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

"""File formats (HDF5 matrix files, ...) and atomic output helpers."""

from hamforge.io._atomic import OutputPathError, atomic_path, atomic_paths, check_output_path, write_text_atomic
from hamforge.io._matrices import MATRIX_FORMAT, MatrixData, MatrixFileError, read_matrix_file, write_matrix_file
from hamforge.io._targets import TARGETS_FORMAT, read_targets_file, write_targets_file

__all__ = [
    "MATRIX_FORMAT",
    "MatrixData",
    "MatrixFileError",
    "OutputPathError",
    "TARGETS_FORMAT",
    "atomic_path",
    "atomic_paths",
    "check_output_path",
    "read_matrix_file",
    "read_targets_file",
    "write_matrix_file",
    "write_targets_file",
    "write_text_atomic",
]

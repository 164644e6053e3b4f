"""File formats (HDF5 matrix files, ...), atomic output helpers and dataset releases."""

from hamforge.io._atomic import atomic_path, write_text_atomic
from hamforge.io._cli import add_release_parsers
from hamforge.io._matrices import MATRIX_FORMAT, MatrixData, MatrixFileError, read_matrix_file, write_matrix_file
from hamforge.io._release import (
    RELEASE_FORMAT,
    ReleaseCheck,
    ReleaseError,
    file_sha256,
    make_release,
    release_settings,
    verify_release,
)
from hamforge.io._targets import TARGETS_FORMAT, read_targets_file, write_targets_file

__all__ = [
    "MATRIX_FORMAT",
    "RELEASE_FORMAT",
    "TARGETS_FORMAT",
    "MatrixData",
    "MatrixFileError",
    "ReleaseCheck",
    "ReleaseError",
    "add_release_parsers",
    "atomic_path",
    "file_sha256",
    "make_release",
    "read_matrix_file",
    "read_targets_file",
    "release_settings",
    "verify_release",
    "write_matrix_file",
    "write_targets_file",
    "write_text_atomic",
]

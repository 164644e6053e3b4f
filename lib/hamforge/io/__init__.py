"""hamforge.io: every file format (matrix, targets, partition), one writer and one reader each, atomic writes,
and dataset releases (manifest, verify).

Every reader opens its file with the one HDF5 opener, checks ``format`` and ``version`` and raises the
format's own error class (all subclasses of :class:`FileFormatError`, a ValueError) naming the file and the
field. Layouts and versions: ``docs/data-formats.md``.
"""

from hamforge.io._atomic import (
    OutputPathError,
    atomic_path,
    atomic_paths,
    check_apart,
    check_output_path,
    staged_directory,
    write_csv_atomic,
    write_text_atomic,
)
from hamforge.io._export import (
    EXPORT_FORMATS,
    ExportError,
    export_file,
    export_matrices,
    sisl_geometry,
    sisl_hamiltonian,
)
from hamforge.io._h5 import FileFormatError, H5Reader, open_h5
from hamforge.io._images import CSRWriter, ImageMatrices
from hamforge.io._matrices import (
    MATRIX_FORMAT,
    MATRIX_VERSION,
    MATRIX_VERSIONS,
    MatrixData,
    MatrixFileError,
    MatrixFileWriter,
    matrix_file_writer,
    read_matrix_file,
    read_matrix_rows,
    write_matrix_file,
)
from hamforge.io._partitions import (
    PARTITION_FORMAT,
    PARTITION_VERSION,
    AugmentedPartition,
    PartitionFile,
    PartitionFileError,
    check_assignment,
    graph_digest,
    read_partitions,
    write_partitions,
)
from hamforge.io._release import (
    RELEASE_FORMAT,
    ReleaseCheck,
    ReleaseError,
    file_sha256,
    make_release,
    release_settings,
    verify_release,
)
from hamforge.io._structure import (
    Structure,
    StructureFileError,
    read_structure,
    read_structure_basis,
)
from hamforge.io._targets import (
    TARGETS_FORMAT,
    TARGETS_VERSION,
    StructureGraph,
    Targets,
    TargetsFileError,
    read_targets_file,
    write_targets_file,
)

__all__ = [
    "EXPORT_FORMATS",
    "MATRIX_FORMAT",
    "MATRIX_VERSION",
    "MATRIX_VERSIONS",
    "PARTITION_FORMAT",
    "PARTITION_VERSION",
    "RELEASE_FORMAT",
    "TARGETS_FORMAT",
    "TARGETS_VERSION",
    "AugmentedPartition",
    "CSRWriter",
    "ExportError",
    "FileFormatError",
    "H5Reader",
    "ImageMatrices",
    "MatrixData",
    "MatrixFileError",
    "MatrixFileWriter",
    "OutputPathError",
    "PartitionFile",
    "PartitionFileError",
    "ReleaseCheck",
    "ReleaseError",
    "Structure",
    "StructureFileError",
    "StructureGraph",
    "Targets",
    "TargetsFileError",
    "atomic_path",
    "atomic_paths",
    "staged_directory",
    "write_csv_atomic",
    "check_assignment",
    "check_apart",
    "check_output_path",
    "export_file",
    "export_matrices",
    "file_sha256",
    "graph_digest",
    "make_release",
    "matrix_file_writer",
    "open_h5",
    "read_matrix_file",
    "read_matrix_rows",
    "read_partitions",
    "read_structure",
    "read_structure_basis",
    "read_targets_file",
    "release_settings",
    "sisl_geometry",
    "sisl_hamiltonian",
    "verify_release",
    "write_matrix_file",
    "write_partitions",
    "write_targets_file",
    "write_text_atomic",
]

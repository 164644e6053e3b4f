"""Orbital basis registry: shells per element/kind from CP2K basis files, orbital indexing, exact overlaps.

Convention (single source, see docs/conventions.md): atoms in input order, shells in basis-file order,
real spherical harmonics m = -l..l inside a shell (CP2K's order, p = (p_y, p_z, p_x)).
Overlaps S(R) of the basis for any structure (PySCF/libcint, no DFT run): docs/overlap.md.
"""

from hamforge.basis._cp2k_file import (
    cp2k_data_dirs,
    cp2k_data_names,
    read_cp2k_basis,
    read_cp2k_gaussians,
    resolve_cp2k_data_file,
)
from hamforge.basis._gaussians import VERIFIED_L_MAX, GaussianBasis, ShellGroup
from hamforge.basis._images import ImageSearch
from hamforge.basis._layout import TargetLayout, build_layout
from hamforge.basis._overlap import (
    DEFAULT_EPS,
    Blocks,
    OverlapChunk,
    OverlapError,
    iter_overlap_blocks,
    overlap_blocks,
    overlap_matrix,
    overlap_range,
    resolve_basis_sets,
)
from hamforge.basis._overlap_calc import OverlapCalculator
from hamforge.basis._overlap_check import check_overlap_positive, overlap_min_eigenvalue
from hamforge.basis._types import BasisError, ElementBasis, OrbitalTable, RaggedBlocks, orbital_table

__all__ = [
    "DEFAULT_EPS",
    "VERIFIED_L_MAX",
    "BasisError",
    "Blocks",
    "ElementBasis",
    "GaussianBasis",
    "ImageSearch",
    "OverlapCalculator",
    "OrbitalTable",
    "RaggedBlocks",
    "OverlapChunk",
    "OverlapError",
    "ShellGroup",
    "TargetLayout",
    "build_layout",
    "check_overlap_positive",
    "cp2k_data_dirs",
    "iter_overlap_blocks",
    "cp2k_data_names",
    "orbital_table",
    "overlap_blocks",
    "overlap_matrix",
    "overlap_min_eigenvalue",
    "overlap_range",
    "read_cp2k_basis",
    "read_cp2k_gaussians",
    "resolve_basis_sets",
    "resolve_cp2k_data_file",
]

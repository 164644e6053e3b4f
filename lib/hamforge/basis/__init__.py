"""Orbital basis registry: shells per element/kind from CP2K basis files, orbital indexing.

Convention (single source, see docs/conventions.md): atoms in input order, shells in basis-file order,
real spherical harmonics m = -l..l inside a shell (CP2K's order, p = (p_y, p_z, p_x)).
"""

from hamforge.basis._cp2k_file import cp2k_data_dirs, cp2k_data_names, read_cp2k_basis, resolve_cp2k_data_file
from hamforge.basis._layout import TargetLayout, build_layout
from hamforge.basis._types import BasisError, ElementBasis, OrbitalTable, orbital_table

__all__ = [
    "BasisError",
    "ElementBasis",
    "OrbitalTable",
    "TargetLayout",
    "build_layout",
    "cp2k_data_dirs",
    "cp2k_data_names",
    "orbital_table",
    "read_cp2k_basis",
    "resolve_cp2k_data_file",
]

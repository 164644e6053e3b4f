"""hamforge.so3: rotation math in the project's (CP2K) real-spherical-harmonics convention.

Stateless, cached in float64, built on e3nn. Orbital order inside a shell is m = -l..l with the polar axis
z: p = (p_y, p_z, p_x), d = (d_xy, d_yz, d_z2, d_xz, d_x2-y2), ... (CP2K's ``orbtramat``); see
``docs/so3.md`` for the polynomial table, the change of basis from e3nn and usage.
"""

from hamforge.so3._conventions import (
    L_MAX_SUPPORTED,
    change_of_basis,
    cp2k_solid_harmonics,
    real_spherical_harmonics,
)
from hamforge.so3._coupling import (
    clebsch_gordan,
    couple,
    coupling_matrix,
    irreps_of_pair,
    irreps_string,
    pair_irreps,
    uncouple,
)
from hamforge.so3._wigner import MIndexTables, edge_rotation, m_index_tables, wigner_D

__all__ = [
    "L_MAX_SUPPORTED",
    "MIndexTables",
    "change_of_basis",
    "clebsch_gordan",
    "couple",
    "coupling_matrix",
    "cp2k_solid_harmonics",
    "edge_rotation",
    "irreps_of_pair",
    "irreps_string",
    "m_index_tables",
    "pair_irreps",
    "real_spherical_harmonics",
    "uncouple",
    "wigner_D",
]

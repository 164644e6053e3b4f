"""Atomic structures: melt-quench generation, post-quench substitution and ghost vacancies, decorrelation."""

from hamforge.structures._decorrelate import (
    decorrelate,
    equilibration_signal,
    find_equilibration,
    moving_average,
    rdf,
    snapshot_distance,
)
from hamforge.structures._decorrelate_settings import DecorrelationError, DecorrelationResult, DecorrelationSettings
from hamforge.structures._melt_quench import (
    MDError,
    MeltQuenchSettings,
    Stage,
    initial_structure,
    lammps_executable,
    lammps_input,
    lammps_potential_dir,
    quench_seed,
    read_thermo_log,
    resolve_potential,
    run_melt_quench,
)
from hamforge.structures._substitute import (
    KINDS_ARRAY,
    GhostVacancies,
    PostQuench,
    Substitution,
    apply_post_quench,
    post_quench_sites,
)
from hamforge.structures._trajectory import decorrelate_trajectory

__all__ = [
    "DecorrelationError",
    "DecorrelationResult",
    "DecorrelationSettings",
    "decorrelate",
    "decorrelate_trajectory",
    "equilibration_signal",
    "find_equilibration",
    "moving_average",
    "rdf",
    "snapshot_distance",
]

__all__ += [  # melt-quench
    "MDError",
    "MeltQuenchSettings",
    "Stage",
    "initial_structure",
    "lammps_executable",
    "lammps_input",
    "lammps_potential_dir",
    "quench_seed",
    "read_thermo_log",
    "resolve_potential",
    "run_melt_quench",
]

__all__ += [  # post-quench decoration
    "KINDS_ARRAY",
    "GhostVacancies",
    "PostQuench",
    "Substitution",
    "apply_post_quench",
    "post_quench_sites",
]

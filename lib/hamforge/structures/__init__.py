"""Atomic structures: trajectory decorrelation (melt-quench generation lives here too)."""

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

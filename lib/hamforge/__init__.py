"""hamforge: machine-learned, transport-ready Hamiltonians of large disordered materials.

Units everywhere inside files and code: Hartree for energies, Angstrom for lengths.
See ``docs/conventions.md`` for orbital ordering, rotation and periodic-image conventions.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

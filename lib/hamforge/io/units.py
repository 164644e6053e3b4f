"""Unit constants. Internally energies are Hartree and lengths Angstrom."""

HARTREE_TO_EV = 27.211386245988
HARTREE_TO_MEV = HARTREE_TO_EV * 1000.0
BOHR_TO_ANGSTROM = 0.529177210903

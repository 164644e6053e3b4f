"""CP2K single points: input generation (validated against the installed CP2K), running, parsing."""

from hamforge.dft._checks import MIN_ATOM_DISTANCE, check_hamiltonian, check_overlap, check_structure
from hamforge.dft._csr import CSRReport, assemble_symmetric, check_tolerance, read_csr_triplets
from hamforge.dft._input import (
    KS_FILENAME,
    PROJECT_NAME,
    S_FILENAME,
    cp2k_input_schema,
    cp2k_input_tree,
    render_cp2k_input,
)
from hamforge.dft._output import SCFSummary, read_cp2k_abort, read_mo_eigenvalues, read_scf_summary
from hamforge.dft._read_input import CP2KInputInfo, locate_csr_file, read_cp2k_input
from hamforge.dft._run import find_cp2k_output, launcher_command, parse_cp2k_run, run_cp2k
from hamforge.dft._settings import CP2KSettings, DFTError, KindSettings

__all__ = [
    "CP2KInputInfo",
    "CP2KSettings",
    "CSRReport",
    "DFTError",
    "KS_FILENAME",
    "KindSettings",
    "MIN_ATOM_DISTANCE",
    "PROJECT_NAME",
    "SCFSummary",
    "S_FILENAME",
    "assemble_symmetric",
    "check_hamiltonian",
    "check_overlap",
    "check_structure",
    "check_tolerance",
    "cp2k_input_schema",
    "cp2k_input_tree",
    "launcher_command",
    "locate_csr_file",
    "find_cp2k_output",
    "parse_cp2k_run",
    "read_cp2k_abort",
    "read_cp2k_input",
    "read_csr_triplets",
    "read_mo_eigenvalues",
    "read_scf_summary",
    "render_cp2k_input",
    "run_cp2k",
]

"""Validation of Hamiltonians: generalized eigenvalues and NEGF transport against a reference, plots.

Definitions, units and conventions: docs/validation.md. Energies are Hartree internally; reports use eV/meV,
currents Amperes.
"""

from hamforge.validate._checks import (
    DENSE_LIMIT,
    SYMMETRY_RTOL,
    CheckedMatrices,
    ValidationError,
    check_matrices,
    check_positive_definite,
    check_same_structure,
    check_symmetric,
    load_checked,
    symmetric_lu,
)
from hamforge.validate._cli import add_validate_parsers
from hamforge.validate._current import G0_SIEMENS, KB_HARTREE_PER_K, fermi, landauer_current
from hamforge.validate._cut import DeviceCut, axial_lattice_vector, cut_from_gamma, cut_from_images, cut_open
from hamforge.validate._device import T_FLOOR, compare_transport, transport_grid, validate_device
from hamforge.validate._eigmetrics import DOS_WIDTH, gaussian_dos, match_states, spectrum_metrics
from hamforge.validate._elements import ElementComparison, compare_elements, element_mae
from hamforge.validate._layers import (
    LayeredDevice,
    LeadBlocks,
    TransportError,
    interaction_range,
    layered_device,
    leads_from_device,
)
from hamforge.validate._pipeline import (
    compare_spectra,
    device_cuts,
    resolve_n_occupied,
    validate_pair,
    validate_transport,
)
from hamforge.validate._rgf import TransmissionResult, rgf_transmission, self_energies, transmission
from hamforge.validate._spectrum import Spectrum, count_below, find_gap_energy, generalized_spectrum
from hamforge.validate._surface import SurfaceGreenError, lead_self_energy, surface_green, wide_band_self_energy
from hamforge.validate._transport import (
    AXES,
    TransportResult,
    TransportSetup,
    axis_index,
    device_range,
    run_transport,
    transport_setup,
)

__all__ = [
    "AXES",
    "DENSE_LIMIT",
    "DOS_WIDTH",
    "G0_SIEMENS",
    "KB_HARTREE_PER_K",
    "SYMMETRY_RTOL",
    "T_FLOOR",
    "CheckedMatrices",
    "DeviceCut",
    "ElementComparison",
    "LayeredDevice",
    "LeadBlocks",
    "Spectrum",
    "SurfaceGreenError",
    "TransmissionResult",
    "TransportError",
    "TransportResult",
    "TransportSetup",
    "ValidationError",
    "add_validate_parsers",
    "axial_lattice_vector",
    "axis_index",
    "check_matrices",
    "check_positive_definite",
    "check_same_structure",
    "check_symmetric",
    "compare_elements",
    "compare_spectra",
    "compare_transport",
    "count_below",
    "cut_from_gamma",
    "cut_from_images",
    "cut_open",
    "device_cuts",
    "device_range",
    "element_mae",
    "fermi",
    "find_gap_energy",
    "gaussian_dos",
    "generalized_spectrum",
    "interaction_range",
    "landauer_current",
    "layered_device",
    "lead_self_energy",
    "leads_from_device",
    "load_checked",
    "match_states",
    "resolve_n_occupied",
    "rgf_transmission",
    "run_transport",
    "self_energies",
    "spectrum_metrics",
    "surface_green",
    "symmetric_lu",
    "transmission",
    "transport_grid",
    "transport_setup",
    "validate_device",
    "validate_pair",
    "validate_transport",
    "wide_band_self_energy",
]

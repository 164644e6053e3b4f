"""Settings of a CP2K single point that writes the Kohn-Sham and overlap matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from hamforge._errors import HamforgeError

__all__ = ["DFTError", "KindSettings", "CP2KSettings"]


class DFTError(RuntimeError, HamforgeError):
    """A CP2K input, run or output is invalid (unconverged SCF, missing or inconsistent matrices)."""


@dataclass(frozen=True)
class KindSettings:
    """One CP2K &KIND: basis set and pseudopotential of a chemical element, or a ghost.

    A ghost kind (``ghost=True``) carries the basis of ``element`` but no nucleus and no electrons
    (CP2K ``GHOST T``); it is used for vacancies and has atomic number 0 in matrix files.
    """

    element: str
    basis_set: str
    potential: str
    ghost: bool = False

    def __post_init__(self):
        from hamforge._elements import chemical_symbol

        try:
            object.__setattr__(self, "element", chemical_symbol(self.element))
        except ValueError as exc:
            raise DFTError(f"CP2K kind element: {exc}") from None


@dataclass(frozen=True)
class CP2KSettings:
    """Quickstep (GPW) single point; defaults are the project's a-Si defaults.

    Energies in Hartree, cutoffs in Rydberg (CP2K's unit for MGRID), electronic temperature in K.
    The tight screening thresholds (EPS_DEFAULT 1e-12, EPS_PPL 1e-10, EPS_PPNL 1e-14) make the KS
    matrix symmetric to ~1e-14 and rigid rotations reproducible to ~1e-9 Ha (measured, see
    ENVIRONMENT notes); CP2K's defaults leave ~1e-8 Ha of asymmetry in on-site blocks.
    """

    kinds: Mapping[str, KindSettings]
    basis_file: str = "BASIS_MOLOPT"
    potential_file: str = "GTH_POTENTIALS"
    xc_functional: str = "PBE"
    cutoff_ry: float = 200.0
    rel_cutoff_ry: float = 30.0
    ngrids: int = 4
    eps_scf: float = 1e-7
    max_scf: int = 100
    smearing_temperature_k: float | None = 300.0
    added_mos: int = 20
    mixing_alpha: float = 0.2
    eps_default: float = 1e-12
    eps_ppl: float = 1e-10
    eps_ppnl: float = 1e-14
    charge: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "CP2KSettings":
        """Build from a material's ``dft`` config mapping (see lib/hamforge/schemas/config.schema.yaml)."""
        cfg = dict(cfg)
        kinds_cfg = cfg.pop("kinds")
        kinds = {
            name: KindSettings(
                element=k.get("element", name),
                basis_set=k["basis_set"],
                potential=k["potential"],
                ghost=bool(k.get("ghost", False)),
            )
            for name, k in kinds_cfg.items()
        }
        known = {f for f in cls.__dataclass_fields__}  # type: ignore[attr-defined]
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DFTError(f"unknown dft setting(s) {unknown}; known: {sorted(known - {'kinds'})}")
        return cls(kinds=kinds, **cfg)

    def kind_basis(self, relative_to: str | None = None) -> dict:
        """The basis registry of the material: kind label -> :class:`hamforge.basis.ElementBasis` of *every*
        configured kind (ghosts included, whether or not a given structure has atoms of it), read from
        ``basis_file`` as CP2K finds it (relative to ``relative_to``, else CP2K's data directory).

        All structures of a material share this layout, so a kind absent from one structure is no error.
        """
        from hamforge.basis import BasisError, read_cp2k_basis, resolve_cp2k_data_file

        try:
            path = resolve_cp2k_data_file(self.basis_file, relative_to=relative_to)
            return {name: read_cp2k_basis(path, k.element, k.basis_set) for name, k in sorted(self.kinds.items())}
        except BasisError as exc:
            raise DFTError(f"basis of the configured kinds: {exc}") from exc

"""What a prediction refuses: kinds or elements the model was not trained on, a basis other than the model's,
atoms closer than a physical minimum, a bad tiling. Every error is a :class:`PredictError` naming the file or
the option.

Kinds: a plain structure file (extxyz, CIF, POSCAR, LAMMPS data, anything ASE reads) gives every atom the kind
of its chemical symbol; a hamforge matrix or targets file gives its stored kind labels, and its ``/basis`` must
be the model's for every kind it uses. The model's ``config.basis`` (``"kind:element:name:l,l"``) gives the
basis per kind; the model input ``numbers`` are the kind ids (positions in ``config.kinds``).
"""

from __future__ import annotations

import numpy as np

from hamforge._errors import HamforgeError
from hamforge._structure_checks import MIN_ATOM_DISTANCE, check_structure
from hamforge.basis import ElementBasis
from hamforge.io import Structure, read_structure, read_structure_basis

__all__ = ["MIN_ATOM_DISTANCE", "PredictError", "load_structure", "model_basis", "structure_kinds"]


class PredictError(ValueError, HamforgeError):
    """Bad input of a prediction (the message names the file or the option)."""


def model_basis(config, source: str = "model") -> dict[str, ElementBasis]:
    """kind -> ElementBasis from ``config.basis`` strings ``"kind:element:name:l,l,..."`` (in ``config.kinds``)."""
    if not config.kinds or len(config.basis) != len(config.kinds):
        raise PredictError(
            f"{source}: the model records no kinds/basis (built without ModelConfig.from_targets); "
            "prediction needs them to map a structure's atoms to the model's species"
        )
    out = {}
    for kind, text in zip(config.kinds, config.basis):
        try:
            label, element, rest = text.split(":", 2)
            name, shells = rest.rsplit(":", 1)
            out[kind] = ElementBasis(element=element, name=name, shells=tuple(int(x) for x in shells.split(",")))
        except ValueError as exc:
            raise PredictError(f"{source}: basis entry {text!r} is not 'kind:element:name:l,l' ({exc})") from None
        if label != kind:
            raise PredictError(f"{source}: basis entry {text!r} is for kind {label!r}, expected {kind!r}")
    return out


def structure_kinds(structure: Structure, config, file_basis=None, source_model: str = "model") -> np.ndarray:
    """(N,) int64 kind ids (positions in ``config.kinds``) of the atoms; :class:`PredictError` for a kind the
    model does not know, an atom whose element is not its kind's element, or a ``file_basis`` (the structure
    file's own ``/basis``) that differs from the model's."""
    from ase.data import chemical_symbols

    basis = model_basis(config, source_model)
    kinds = np.asarray(structure.kinds, dtype=object)
    labels = sorted(set(kinds.tolist()))
    unknown = [k for k in labels if k not in config.kinds]
    if unknown:
        raise PredictError(
            f"{structure.source}: kind(s) {unknown} not known to {source_model} (trained on kinds "
            f"{list(config.kinds)}); a model predicts only the kinds and elements it was trained on"
        )
    if file_basis is not None:
        for k in labels:
            got, want = file_basis.get(k), basis[k]
            if got is None or (got.element, got.name, tuple(got.shells)) != (
                want.element,
                want.name,
                tuple(want.shells),
            ):
                show = None if got is None else f"{got.element}:{got.name}:{','.join(map(str, got.shells))}"
                raise PredictError(
                    f"{structure.source}: /basis/{k}: {show} differs from the basis of {source_model} "
                    f"({want.element}:{want.name}:{','.join(map(str, want.shells))})"
                )
    kid = {k: n for n, k in enumerate(config.kinds)}
    atom_kind = np.array([kid[k] for k in kinds.tolist()], dtype=np.int64)
    numbers = np.asarray(structure.numbers, np.int64)
    element_of_kind = np.array([basis[k].element for k in config.kinds], dtype=object)
    symbol = np.array(chemical_symbols, dtype=object)[np.clip(numbers, 0, len(chemical_symbols) - 1)]
    wrong = (numbers > 0) & (symbol != element_of_kind[atom_kind])
    if wrong.any():
        a = int(np.flatnonzero(wrong)[0])
        raise PredictError(
            f"{structure.source}: atom {a + 1} is {symbol[a]} but its kind {kinds[a]!r} is "
            f"{element_of_kind[atom_kind[a]]} in {source_model} ({int(wrong.sum())} such atoms)"
        )
    return atom_kind


def load_structure(path, config, tile=(1, 1, 1), source_model: str = "model") -> tuple[Structure, np.ndarray]:
    """Read ``path`` (any ASE file or a hamforge HDF5 file), map its kinds (:func:`structure_kinds`), check the
    unit cell's geometry (atoms closer than ``MIN_ATOM_DISTANCE``, zero cell) and tile it ``tile`` times.
    Returns ``(structure, atom_kind)`` of the tiled structure."""
    structure = read_structure(path)
    atom_kind = structure_kinds(structure, config, read_structure_basis(path), source_model)
    # The unit cell is checked (O(N) with ASE's binned list); copies of a valid periodic cell are valid too.
    check_structure(
        structure.positions,
        structure.cell if np.any(structure.pbc) else _box(structure),
        structure.pbc,
        str(path),
        error=PredictError,
    )
    try:
        tiled = structure.tile(tile)
    except ValueError as exc:
        raise PredictError(str(exc).replace(f"{structure.source}: tiling", f"--tile (for {path})")) from None
    reps = int(np.prod(np.asarray(tile, np.int64)))
    return tiled, np.tile(atom_kind, reps)


def _box(structure: Structure) -> np.ndarray:
    """A cell holding a non-periodic structure (check_structure needs a volume; open axes are not wrapped)."""
    span = np.ptp(structure.positions, axis=0) + 10.0
    cell = np.array(structure.cell, np.float64)
    for k in range(3):
        if np.linalg.norm(cell[k]) == 0:
            cell[k, k] = span[k]
    return cell

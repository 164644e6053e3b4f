"""CP2K input generation, validated against the installed CP2K's own input schema.

cp2k-input-tools ships the schema of CP2K 2024.1, which accepts keywords older CP2K versions
reject (e.g. IGNORE_CONVERGENCE_FAILURE is unknown to 2023.1). We therefore always validate against
``cp2k --xml`` of the executable that will run the input (:func:`cp2k_input_schema`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hamforge.dft._settings import CP2KSettings, DFTError

__all__ = [
    "cp2k_input_schema",
    "cp2k_input_tree",
    "render_cp2k_input",
    "KS_FILENAME",
    "S_FILENAME",
    "PROJECT_NAME",
]

PROJECT_NAME = "hamforge"
KS_FILENAME = "KS.csr"
S_FILENAME = "S.csr"


def cp2k_input_schema(cp2k: str | Sequence[str] = "cp2k", cache_dir: str | os.PathLike | None = None) -> Path:
    """Path to the input schema (XML) of the given CP2K executable, generated with ``cp2k --xml``.

    The file is cached under ``cache_dir`` (default: ``$XDG_CACHE_HOME/hamforge`` or ``~/.cache/hamforge``)
    keyed by the executable's version banner, so it is generated once per CP2K installation (~1 s).
    """
    cmd = [cp2k] if isinstance(cp2k, str) else list(cp2k)
    exe = shutil.which(cmd[0])
    if exe is None:
        raise DFTError(f"CP2K executable {cmd[0]!r} not found on PATH (install Debian's 'cp2k')")
    try:
        banner = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise DFTError(f"'{' '.join(cmd)} --version' failed: {exc}") from exc
    key = hashlib.sha256((os.path.realpath(exe) + banner).encode()).hexdigest()[:16]
    if cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache_dir = Path(base) / "hamforge"
    cache_dir = Path(cache_dir)
    target = cache_dir / f"cp2k_input_{key}.xml"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        res = subprocess.run(cmd + ["--xml"], cwd=tmp, capture_output=True, text=True, timeout=300)
        produced = Path(tmp) / "cp2k_input.xml"
        if res.returncode != 0 or not produced.is_file():
            raise DFTError(f"'{' '.join(cmd)} --xml' did not write cp2k_input.xml: {res.stderr[-2000:]}")
        os.replace(produced, target)
    return target


def _fmt(x: float) -> str:
    return repr(float(x))


def cp2k_input_tree(
    symbols: Sequence[str],
    positions: np.ndarray,
    cell: np.ndarray,
    settings: CP2KSettings,
    *,
    kinds: Sequence[str] | None = None,
    project: str = PROJECT_NAME,
) -> dict[str, Any]:
    """cp2k-input-tools canonical tree of a GPW single point that prints KS, S and MO eigenvalues.

    ``positions`` (N, 3) and ``cell`` (3, 3, rows = lattice vectors) in Angstrom; fully periodic.
    ``kinds`` gives each atom's kind label (default: its chemical symbol); every label must be a key
    of ``settings.kinds``.
    """
    positions = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    n = len(symbols)
    if positions.shape != (n, 3):
        raise DFTError(f"positions must have shape ({n}, 3), got {positions.shape}")
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-6:
        raise DFTError("cell must be a non-singular (3, 3) array (rows = lattice vectors)")
    from hamforge.dft._checks import check_structure

    check_structure(positions, cell, np.ones(3, dtype=bool), "structure for the CP2K input")
    kinds = list(symbols) if kinds is None else list(kinds)
    if len(kinds) != n:
        raise DFTError(f"kinds has {len(kinds)} entries for {n} atoms")
    unknown = sorted(set(kinds) - set(settings.kinds))
    if unknown:
        raise DFTError(f"no CP2K kind settings for {unknown}; configured kinds: {sorted(settings.kinds)}")

    coords = [f"{k} {_fmt(x)} {_fmt(y)} {_fmt(z)}" for k, (x, y, z) in zip(kinds, positions)]
    kind_sections = []
    for name in sorted(set(kinds)):
        ks = settings.kinds[name]
        sec: dict[str, Any] = {
            "_": name,
            "element": ks.element,
            "basis_set": [ks.basis_set],
            "potential": ks.potential,
        }
        if ks.ghost:
            sec["ghost"] = True
        kind_sections.append(sec)

    scf: dict[str, Any] = {
        "eps_scf": settings.eps_scf,
        "max_scf": settings.max_scf,
        "scf_guess": "atomic",
        "+mixing": {"method": "broyden_mixing", "alpha": settings.mixing_alpha},
    }
    if settings.smearing_temperature_k is not None:
        scf["added_mos"] = [settings.added_mos]
        scf["+smear"] = {
            "_": True,
            "method": "fermi_dirac",
            "electronic_temperature": settings.smearing_temperature_k,
        }
        scf["+diagonalization"] = {"_": True, "algorithm": "standard"}

    # Binary CSR (Fortran records of int32, int32, float64): ~3x smaller than text and parsed without text
    # conversion; full (not upper-triangular) matrices so that the parser can measure their asymmetry.
    csr_common = {"upper_triangular": False, "binary": True, "real_space": False}
    dft: dict[str, Any] = {
        "basis_set_file_name": [settings.basis_file],
        "potential_file_name": settings.potential_file,
        "charge": settings.charge,
        "+mgrid": {
            "cutoff": settings.cutoff_ry,
            "rel_cutoff": settings.rel_cutoff_ry,
            "ngrids": settings.ngrids,
        },
        "+qs": {
            "eps_default": settings.eps_default,
            "eps_ppl": settings.eps_ppl,
            "eps_ppnl": settings.eps_ppnl,
        },
        "+scf": scf,
        "+xc": {"+xc_functional": {"_": settings.xc_functional}},
        "+print": {
            "+ks_csr_write": {"filename": f"={KS_FILENAME}", **csr_common},
            "+s_csr_write": {"filename": f"={S_FILENAME}", **csr_common},
            "+mo": {
                "eigenvalues": True,
                "occupation_numbers": True,
                "ndigits": 12,
                "+each": {"qs_scf": 0},
            },
        },
    }
    for key, val in settings.extra.items():
        dft[key] = val
    return {
        "+global": {"project_name": project, "run_type": "energy", "print_level": "medium"},
        "+force_eval": [
            {
                "method": "quickstep",
                "+dft": dft,
                "+subsys": {
                    "+cell": {
                        "a": [float(v) for v in cell[0]],
                        "b": [float(v) for v in cell[1]],
                        "c": [float(v) for v in cell[2]],
                        "periodic": "xyz",
                    },
                    "+coord": {"*": coords},
                    "+kind": kind_sections,
                },
            }
        ],
    }


def render_cp2k_input(tree: dict[str, Any], schema: str | os.PathLike) -> str:
    """Render a canonical tree to CP2K input text, validating every section/keyword against ``schema``."""
    from cp2k_input_tools.generator import CP2KInputGenerator

    gen = CP2KInputGenerator(xmlspec=Path(schema))
    try:
        return "\n".join(gen.line_iter(tree)) + "\n"
    except Exception as exc:  # cp2k-input-tools raises several unrelated exception types
        raise DFTError(f"CP2K input rejected by schema {schema}: {type(exc).__name__}: {exc}") from exc

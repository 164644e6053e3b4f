"""Dataset releases: copy a material's results into one folder with a checksummed manifest, and verify it.

A release folder holds the data files under their paths relative to ``results/<material>/`` (so the
dataset index's relative links keep working), ``config.yaml`` (the validated workflow config), a data card
``README.md`` and ``manifest.json``::

    {"format": "hamforge.release", "version": 1, "title": ..., "license": ..., "material": ...,
     "config": {"file": "config.yaml", "hash": <hamforge.config.config_hash of the whole config>,
                "material_hash": <config_hash of the material's entry, as in the data files' provenance>},
     "seeds": {...}, "software": {...},
     "files": {"<relative path>": {"sha256": ..., "bytes": ..., "deterministic": true}
               | {..., "deterministic": false, "reason": "..."}}}

Nothing in the manifest depends on the date or the machine's paths: the same inputs give the same
release, byte for byte, except the files marked ``deterministic: false``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hamforge._errors import HamforgeError
from hamforge.io._atomic import strict_json

__all__ = [
    "RELEASE_FORMAT",
    "ReleaseCheck",
    "ReleaseError",
    "file_sha256",
    "make_release",
    "release_settings",
    "verify_release",
]

RELEASE_FORMAT = "hamforge.release"
RELEASE_VERSION = 1
MANIFEST = "manifest.json"

# Defaults of the config's optional `release:` entry (the schema holds the same ones; this lets the CLI
# work on configs validated by an older schema too).
DEFAULT_RELEASE = {
    "title": "hamforge dataset",
    "license": "CC-BY-4.0",
    "description": "",
    "include": [
        "snapshots/q*/f*.extxyz",
        "dft/q*_f*.h5",
        "targets/q*_f*.h5",
        "partitions/q*_f*.h5",
        "index/q*.json",
        "model/*",  # model.pt, metrics.csv, learning_curve.png, summary.json (not the resume checkpoints)
        "validation/**/metrics.json",
    ],
    "require": ["snapshots/q*/f*.extxyz", "dft/q*_f*.h5", "targets/q*_f*.h5", "index/q*.json"],
    "non_deterministic": {
        "model/**": "training is bitwise reproducible only for the same process count and thread count "
        "(reduction order), "
        "and metrics.csv holds wall times and peak memory",
    },
}


class ReleaseError(ValueError, HamforgeError):
    """A release cannot be made or its manifest is unreadable (message names the file and the field)."""


@dataclass(frozen=True)
class ReleaseCheck:
    """Result of :func:`verify_release`: the files whose content changed, that are missing, or unlisted."""

    release_dir: Path
    n_files: int
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # paths that leave the release (absolute, "..", symlinks)
    inconsistent: list[str] = field(default_factory=list)  # manifest fields the released files contradict

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.unsafe or self.inconsistent)

    def report(self) -> str:
        if self.ok:
            return f"{self.release_dir}: OK, {self.n_files} files match {MANIFEST}"
        lines = [f"{self.release_dir}: FAILED against {MANIFEST}"]
        lines += [f"  changed: {p}" for p in self.changed]
        lines += [f"  missing: {p}" for p in self.missing]
        lines += [f"  extra:   {p}" for p in self.extra]
        lines += [f"  unsafe:  {p}" for p in self.unsafe]
        lines += [f"  inconsistent: {p}" for p in self.inconsistent]
        return "\n".join(lines)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in chunks (files may be GBs)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def release_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``release:`` entry with defaults filled in."""
    given = dict(config.get("release") or {})
    unknown = sorted(set(given) - set(DEFAULT_RELEASE))
    if unknown:
        raise ReleaseError(f"config: release: unknown key(s) {unknown}")
    return {**DEFAULT_RELEASE, **given}


def _glob(base: Path, pattern: str) -> list[Path]:
    return sorted(p for p in base.glob(pattern) if p.is_file())


def _collect(material_dir: Path, settings: Mapping[str, Any]) -> dict[str, Path]:
    """Relative path -> source file for every file an ``include`` pattern matches (``require``d ones must)."""
    files: dict[str, Path] = {}
    for pattern in settings["include"]:
        for p in _glob(material_dir, pattern):
            files[p.relative_to(material_dir).as_posix()] = p
    for pattern in settings["require"]:
        if not any(fnmatch.fnmatchcase(rel, pattern) for rel in files):
            raise ReleaseError(
                f"{material_dir}: no file matches the required pattern {pattern!r} (config release.require); "
                "has the workflow run for this material?"
            )
    return files


def _check_sources(material_dir: Path, sources: Mapping[str, Path], material_hash: str) -> None:
    """Refuse a release whose files contradict it: an HDF5 file whose provenance records another config (the
    config given is not the one the files were made with), or an index entry naming a file the release lacks."""
    import h5py

    for rel, src in sorted(sources.items()):
        if src.suffix == ".h5":
            try:
                with h5py.File(src, "r") as f:
                    prov = json.loads(f.attrs.get("provenance", "{}"))
            except (OSError, ValueError):
                continue  # unreadable files are the verify's and the reader's business, not the config's
            got = prov.get("config_hash") if isinstance(prov, dict) else None
            if got is not None and got != material_hash:
                raise ReleaseError(
                    f"{src}: provenance config_hash {got} is not the config's ({material_hash}): these files were "
                    "made with another configuration; release with that one (--config)"
                )
        if rel.startswith("index/") and rel.endswith(".json"):
            try:
                index = json.loads(src.read_text())
            except (OSError, ValueError) as exc:
                raise ReleaseError(f"{src}: not readable JSON ({exc})") from None
            base = Path(rel).parent
            for entry in index.get("structures", []):
                for key, path in entry.items():
                    if key == "structure":
                        continue
                    target = (base / path).as_posix()
                    target = os.path.normpath(target)
                    if target not in sources:
                        raise ReleaseError(
                            f"{src}: structures.{entry.get('structure')}.{key}: {path} is not in the release (missing "
                            "in the results, or not matched by release.include)"
                        )


def _reason(rel: str, patterns: Mapping[str, str]) -> str | None:
    for pattern, why in patterns.items():
        if fnmatch.fnmatchcase(rel, pattern):
            return why
    return None


def _seeds(material: Mapping[str, Any], material_dir: Path) -> dict[str, Any]:
    """Every ``seed`` key of the material's config (dotted path) plus the LAMMPS seed each quench used."""
    seeds: dict[str, Any] = {}

    def walk(obj, prefix):
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif prefix.endswith("seed"):
            seeds[prefix] = obj

    walk(material, "")
    for summary in sorted(material_dir.glob("md/q*/summary.json")):
        try:
            seeds[f"md.quench_seeds.{summary.parent.name}"] = json.loads(summary.read_text())["seed"]
        except (OSError, ValueError, KeyError) as exc:
            raise ReleaseError(f"{summary}: cannot read field 'seed' ({exc})") from exc
    return dict(sorted(seeds.items()))


def _prepare_out_dir(out_dir: Path, force: bool) -> None:
    """An existing ``out_dir`` may be replaced when empty or a release; ``force`` also takes a release whose
    manifest is unreadable, never a folder without a manifest (it would delete what is not a release)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ReleaseError(f"{out_dir}: exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    manifest = out_dir / MANIFEST
    try:
        fmt = json.loads(manifest.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    if fmt == RELEASE_FORMAT or (force and _previous_release(out_dir)):
        return
    raise ReleaseError(
        f"{out_dir}: not empty and not a hamforge release; refusing to replace it"
        + (
            " (--force only replaces a previous release: one with a manifest.json, damaged or removed, beside its "
            "README.md and config.yaml)"
            if force
            else ""
        )
    )


def _previous_release(out_dir: Path) -> bool:
    """A release whose manifest is damaged or gone (Snakemake deletes a rule's declared output before rerunning
    it): its manifest, or the data card and config every release holds, and nothing that is not a regular file
    or folder."""
    names = {p.name for p in out_dir.iterdir()}
    marks = (out_dir / MANIFEST).is_file() or {"README.md", "config.yaml"} <= names
    return marks and not any(p.is_symlink() for p in out_dir.iterdir())


def make_release(
    material_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: Mapping[str, Any],
    material: str | None = None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Build the release of ``material_dir`` (``results/<material>``) in ``out_dir``; return the manifest.

    ``config`` is the validated workflow config. The release is assembled in a temporary folder next to
    ``out_dir`` and moved into place at the end, so an interrupted run never leaves a half release. An
    existing ``out_dir`` is replaced if it is empty or a release (or ``force``), never otherwise.
    """
    import yaml

    from hamforge import __version__
    from hamforge._hashing import config_hash
    from hamforge.io._datacard import render_data_card, software_versions

    material_dir = Path(material_dir)
    out_dir = Path(out_dir)
    material = material or material_dir.name
    if material not in config.get("materials", {}):
        raise ReleaseError(f"config: materials: no entry {material!r} (has {sorted(config.get('materials', {}))})")
    if not material_dir.is_dir():
        raise ReleaseError(f"{material_dir}: no such results directory")
    settings = release_settings(config)
    mat = config["materials"][material]
    sources = _collect(material_dir, settings)
    sources.pop(MANIFEST, None)
    _check_sources(material_dir, sources, config_hash(mat))
    _prepare_out_dir(out_dir, force)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for rel, src in sources.items():
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        clean_config = json.loads(json.dumps(dict(config), default=str))  # plain types for YAML
        (tmp / "config.yaml").write_text(yaml.safe_dump(clean_config, sort_keys=True))
        manifest: dict[str, Any] = {
            "format": RELEASE_FORMAT,
            "version": RELEASE_VERSION,
            "title": settings["title"],
            "license": settings["license"],
            "material": material,
            "created_by": f"hamforge {__version__}",
            "config": {"file": "config.yaml", "hash": config_hash(clean_config), "material_hash": config_hash(mat)},
            "seeds": _seeds(mat, material_dir),
            "software": software_versions(tmp),
        }
        (tmp / "README.md").write_text(render_data_card(manifest, mat, settings, tmp, sorted(sources)))
        files = {}
        for p in sorted(q for q in tmp.rglob("*") if q.is_file()):
            rel = p.relative_to(tmp).as_posix()
            entry: dict[str, Any] = {"sha256": file_sha256(p), "bytes": p.stat().st_size, "deterministic": True}
            why = _reason(rel, settings["non_deterministic"])
            if why:
                entry.update(deterministic=False, reason=why)
            files[rel] = entry
        manifest["files"] = files
        (tmp / MANIFEST).write_text(strict_json(manifest, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            out_dir.rename(trash / out_dir.name)
            tmp.rename(out_dir)
            shutil.rmtree(trash)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_manifest(release_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a release folder, checked for its format and its ``files`` table."""
    path = Path(release_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ReleaseError(f"{path}: no such manifest (is {release_dir} a hamforge release?)") from exc
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != RELEASE_FORMAT:
        raise ReleaseError(f"{path}: field 'format' is not {RELEASE_FORMAT!r}")
    if manifest.get("version") != RELEASE_VERSION:
        raise ReleaseError(f"{path}: unsupported release version {manifest.get('version')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) and "sha256" in v for v in files.values()):
        raise ReleaseError(f"{path}: field 'files' must map every path to an entry with 'sha256'")
    return manifest


def verify_release(release_dir: str | os.PathLike) -> ReleaseCheck:
    """Check every file of a release against its manifest: content and byte count, missing and unlisted files;
    every path confined to the release (no absolute path, no ``..``, no symbolic link, the manifest included);
    the config hashes and seeds the manifest records against the released ``config.yaml``."""
    release_dir = Path(release_dir)
    root = Path(os.path.realpath(release_dir))
    unsafe = [MANIFEST] if (release_dir / MANIFEST).is_symlink() else []
    manifest = read_manifest(release_dir)
    files: Mapping[str, Any] = manifest["files"]
    changed, missing = [], []
    for rel, entry in sorted(files.items()):
        p = release_dir / rel
        if _escapes(release_dir, root, rel):
            unsafe.append(rel)
        elif not p.is_file():
            missing.append(rel)
        elif p.stat().st_size != entry.get("bytes", p.stat().st_size) or file_sha256(p) != entry["sha256"]:
            changed.append(rel)
    present = {p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file() or p.is_symlink()}
    unsafe += sorted(rel for rel in present if (release_dir / rel).is_symlink() and rel not in unsafe)
    extra = sorted(present - set(files) - {MANIFEST} - set(unsafe))
    inconsistent = [] if unsafe or changed or missing else _check_config(release_dir, manifest)
    return ReleaseCheck(release_dir, len(files), changed, missing, extra, unsafe, inconsistent)


def _escapes(release_dir: Path, root: Path, rel: str) -> bool:
    """True when ``rel`` is absolute, climbs out with ``..``, or resolves (through links) outside the release."""
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        return True
    p = release_dir / rel
    if any(q.is_symlink() for q in [p, *p.parents] if q != release_dir and release_dir in q.parents):
        return True
    return not Path(os.path.realpath(p)).is_relative_to(root)


def _check_config(release_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Manifest fields that the released config.yaml contradicts (its hashes, the seeds it sets)."""
    import yaml

    from hamforge._hashing import config_hash

    out = []
    cfg_info = manifest.get("config", {})
    try:
        config = yaml.safe_load((release_dir / cfg_info.get("file", "config.yaml")).read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [f"config.file: the released config cannot be read ({exc})"]
    if config_hash(config) != cfg_info.get("hash"):
        out.append("config.hash: does not match the released config.yaml")
    mat = (config.get("materials") or {}).get(manifest.get("material"))
    if mat is None:
        return out + [f"material: {manifest.get('material')!r} is not in the released config.yaml"]
    if config_hash(mat) != cfg_info.get("material_hash"):
        out.append("config.material_hash: does not match the material's block of the released config.yaml")
    seeds = _seeds(mat, release_dir)
    for key, value in (manifest.get("seeds") or {}).items():
        if key.startswith("md.quench_seeds.") and key not in seeds:
            continue  # the quenches' own summaries are released only when the release settings include them
        if seeds.get(key) != value:
            out.append(f"seeds.{key}: {value!r} in the manifest, {seeds.get(key)!r} in the released files")
    return out

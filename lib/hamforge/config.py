"""Workflow configuration: JSON-schema validation with defaults, and cross-field checks.

Errors name the offending key as a dotted path (``materials.a-Si.md.stages[2].duration_ps``) so a user
can find it in their YAML.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from hamforge._errors import HamforgeError
from hamforge._hashing import config_hash

__all__ = ["ConfigError", "config_hash", "default_schema_path", "load_config", "validate_config"]


class ConfigError(ValueError, HamforgeError):
    """The workflow configuration is invalid; the message names the key."""


def default_schema_path() -> Path:
    """The config schema shipped inside the package (``hamforge/schemas/config.schema.yaml``, package data), so a
    non-editable install validates configs too; the workflow reads the same file."""
    from importlib.resources import files

    return Path(str(files("hamforge").joinpath("schemas", "config.schema.yaml")))


def _key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _fill_defaults(validator_cls):
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    import jsonschema

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


def validate_config(config: Mapping[str, Any], schema: str | os.PathLike | None = None, source: str = "config") -> dict:
    """Validate ``config`` against the schema, fill defaults, run cross-field checks; return the filled copy."""
    import jsonschema
    import yaml

    schema_path = Path(schema) if schema else default_schema_path()
    with open(schema_path) as fh:
        sch = yaml.safe_load(fh)
    cfg = copy.deepcopy(dict(config))
    cls = _fill_defaults(jsonschema.validators.validator_for(sch))
    errors = sorted(cls(sch).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors[:10]:
            where = _key_path(list(e.absolute_path))
            msg = e.message
            if e.validator == "additionalProperties":
                msg = f"unknown key(s): {msg.split('(')[-1].rstrip(')')}" if "(" in msg else msg
            lines.append(f"  {where}: {msg}")
        raise ConfigError(f"{source}: invalid configuration ({len(errors)} problem(s)):\n" + "\n".join(lines))
    for name, mat in cfg["materials"].items():
        base = f"materials.{name}"
        tq = mat.get("test_quench")
        nq = mat["md"]["quenches"]
        if tq is not None and tq >= nq:
            raise ConfigError(f"{source}: {base}.test_quench: {tq} but only {nq} quenches (0..{nq - 1})")
        vq = mat.get("validation_quench")
        if vq is not None and vq >= nq:
            raise ConfigError(f"{source}: {base}.validation_quench: {vq} but only {nq} quenches (0..{nq - 1})")
        if vq is not None and vq == tq:
            raise ConfigError(f"{source}: {base}.validation_quench: {vq} is also the test_quench")
        if not any(s.get("sample") for s in mat["md"]["stages"]):
            raise ConfigError(f"{source}: {base}.md.stages: no stage has 'sample: true' (which frames to decorrelate?)")
        names = [s["name"] for s in mat["md"]["stages"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: {base}.md.stages: stage names must be unique, got {names}")
        init = mat["md"]["initial"]
        if "file" not in init and not {"crystal", "a"} <= set(init):
            raise ConfigError(f"{source}: {base}.md.initial: give 'file', or 'crystal' and 'a' (and 'repeat')")
        _check_elements(mat, base, source)
        kind_elements = {k.get("element", label) for label, k in mat["dft"]["kinds"].items() if not k.get("ghost")}
        missing = sorted(set(mat["elements"]) - kind_elements)
        if missing:
            raise ConfigError(f"{source}: {base}.dft.kinds: no kind for element(s) {missing}")
        dec = mat["decorrelate"]
        if (dec.get("temperature") is None) != (dec.get("temperature_tolerance") is None):
            raise ConfigError(
                f"{source}: {base}.decorrelate: set both temperature and temperature_tolerance, or neither"
            )
        _check_sampling(mat, base, source)
        _check_dft_data(mat, base, source)
        _check_md_inputs(mat, base, source)
        _check_post_quench(mat, base, source)
        _check_training(mat, base, source)
        _check_model_basis(mat, base, source)
        _check_transport(mat, base, source)
        _check_predict_size(mat, cfg.get("results", "results"), base, source)
    for rule in ("cp2k", "melt_quench"):
        _check_launcher(cfg["resources"][rule], f"resources.{rule}.launcher", source)
    return cfg


def _check_training(mat: Mapping[str, Any], base: str, source: str) -> None:
    """Training keys that the schema alone cannot check (refused before anything runs)."""
    tr = mat["train"]
    if tr["min_lr"] > tr["lr"]:
        raise ConfigError(f"{source}: {base}.train.min_lr: {tr['min_lr']} is larger than train.lr = {tr['lr']}")
    held = sum(mat.get(k) is not None for k in ("test_quench", "validation_quench"))
    n_train = (mat["md"]["quenches"] - held) * mat["decorrelate"]["n_snapshots"]
    if n_train < 1:
        raise ConfigError(
            f"{source}: {base}.md.quenches: {mat['md']['quenches']} quenches leave none to train on besides the "
            "test and validation quenches"
        )
    n_val = 0 if mat.get("validation_quench") is not None else tr["validation_structures"]
    if n_train - n_val < 1:
        raise ConfigError(
            f"{source}: {base}.train.validation_structures: {tr['validation_structures']} of the {n_train} structures "
            "of the training quenches held aside leaves nothing to train on (the test quench is never trained on)"
        )
    m = mat["model"]
    if m["embed_dim"] % m["n_heads"]:
        raise ConfigError(
            f"{source}: {base}.model.n_heads: {m['n_heads']} does not divide model.embed_dim = {m['embed_dim']}"
        )
    if tr["use_partitions"] and tr["parallel"] == "halo":
        raise ConfigError(
            f"{source}: {base}.train.use_partitions: true with train.parallel: halo (which splits every structure "
            "over the ranks itself); set use_partitions: false or parallel: partitions"
        )
    if tr["symmetrize"] and (tr["use_partitions"] or tr["parallel"] == "halo"):
        raise ConfigError(
            f"{source}: {base}.train.symmetrize: true needs the reverse of every pair in the same sample, so full "
            "graphs: not with train.use_partitions: true or train.parallel: halo"
        )
    if m["strictly_local"] and m["edge_reads_updated"]:
        raise ConfigError(
            f"{source}: {base}.model.edge_reads_updated: true reads the neighbour's node features, which "
            "strictly_local: true never does"
        )
    halo = 1 if m["strictly_local"] else m["n_layers"] + (1 if m["edge_reads_updated"] else 0)
    if tr["use_partitions"] and mat["partition"]["halo"] < halo:
        raise ConfigError(
            f"{source}: {base}.partition.halo: {mat['partition']['halo']} is smaller than the {halo} "
            "hop(s) the model needs for exact partitioned training (model.n_layers, + 1 with edge_reads_updated, "
            "1 if strictly_local)"
        )


def _check_elements(mat: Mapping[str, Any], base: str, source: str) -> None:
    """Every element symbol and kind is a real element (``Sx`` is not sulfur, ``Xx`` not a dummy atom)."""
    from hamforge._elements import chemical_symbol

    for i, el in enumerate(mat["elements"]):
        try:
            chemical_symbol(el)
        except ValueError as exc:
            raise ConfigError(f"{source}: {base}.elements[{i}]: {exc}") from None
    for label, kind in mat["dft"]["kinds"].items():
        key = f"{base}.dft.kinds.{label}" + (".element" if "element" in kind else "")
        try:
            chemical_symbol(kind.get("element", label))
        except ValueError as exc:
            hint = "" if "element" in kind else " (a kind label that is not an element symbol needs 'element')"
            raise ConfigError(f"{source}: {key}: {exc}{hint}") from None


def _stage_frames(md: Mapping[str, Any]) -> tuple[int, int]:
    """(total MD steps, dumped frames that fall into sampled stages), as hamforge.structures assigns them."""
    import numpy as np

    steps = [max(1, round(st["duration_ps"] * 1000.0 / md["timestep_fs"])) for st in md["stages"]]
    bounds = np.cumsum([0] + steps)
    dump_steps = np.arange(0, bounds[-1] + 1, md["dump_every"])
    stage_idx = np.clip(np.searchsorted(bounds, dump_steps, side="left") - 1, 0, len(steps) - 1)
    sampled = np.array([bool(st.get("sample")) for st in md["stages"]])
    return int(bounds[-1]), int(sampled[stage_idx].sum())


def _check_sampling(mat: Mapping[str, Any], base: str, source: str) -> None:
    """The sampled stages dump enough frames for decorrelation (else it fails after the whole MD has run)."""
    md, dec = mat["md"], mat["decorrelate"]
    total, frames = _stage_frames(md)
    if md["dump_every"] > total:
        raise ConfigError(
            f"{source}: {base}.md.dump_every: {md['dump_every']} steps is longer than the whole run ({total} steps)"
        )
    sampled = [st["name"] for st in md["stages"] if st.get("sample")]
    need = {
        "n_snapshots": dec["n_snapshots"],
        "window": dec["window"],
        "patience": dec["patience"],
        "centre_frames": dec["centre_frames"] + 1,
    }
    key, want = max(need.items(), key=lambda kv: kv[1])
    if frames < want:
        raise ConfigError(
            f"{source}: {base}.decorrelate.{key}: needs at least {want} frames, but the sampled stage(s) {sampled} "
            f"dump only {frames} (md.dump_every {md['dump_every']} steps of {md['timestep_fs']} fs): "
            "sample more often (lower md.dump_every), run the sampled stages longer, or lower it"
        )


def _check_dft_data(mat: Mapping[str, Any], base: str, source: str) -> None:
    """Basis sets and potentials exist in the CP2K data files named (CP2K would abort after MD and decorrelation)."""
    import difflib

    from hamforge._elements import chemical_symbol
    from hamforge.basis import BasisError, cp2k_data_names, resolve_cp2k_data_file

    dft = mat["dft"]
    names: dict[tuple[str, str], list[str]] = {}
    for file_key, what in (("basis_file", "basis_set"), ("potential_file", "potential")):
        try:
            path = resolve_cp2k_data_file(dft[file_key])
        except BasisError as exc:
            raise ConfigError(f"{source}: {base}.dft.{file_key}: {exc}") from None
        for label, kind in dft["kinds"].items():
            element = chemical_symbol(kind.get("element", label))
            if (str(path), element) not in names:
                names[(str(path), element)] = cp2k_data_names(path, element)
            have = names[(str(path), element)]
            if kind[what] not in have:
                close = difflib.get_close_matches(kind[what], have, n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else f"; {path} has {len(have)} for {element}"
                raise ConfigError(
                    f"{source}: {base}.dft.kinds.{label}.{what}: {kind[what]!r} for {element} not found in {path}{hint}"
                )


def _check_model_basis(mat: Mapping[str, Any], base: str, source: str) -> None:
    """model.l_max covers the basis: a block of shells l_a, l_b holds L up to l_a + l_b (refused otherwise only
    after MD, DFT and targets)."""
    from hamforge._elements import chemical_symbol
    from hamforge.basis import BasisError, read_cp2k_basis, resolve_cp2k_data_file

    dft, l_max = mat["dft"], mat["model"]["l_max"]
    try:
        path = resolve_cp2k_data_file(dft["basis_file"])
    except BasisError:
        return  # reported by _check_dft_data
    need, worst = 0, None
    for label, kind in dft["kinds"].items():
        try:
            shells = read_cp2k_basis(path, chemical_symbol(kind.get("element", label)), kind["basis_set"]).shells
        except (BasisError, ValueError):
            continue
        if shells and 2 * max(shells) > need:
            need, worst = 2 * max(shells), f"{label} ({kind['basis_set']}: l up to {max(shells)})"
    if l_max < need:
        raise ConfigError(
            f"{source}: {base}.model.l_max: {l_max}, but the basis of kind {worst} makes blocks with L up to {need}; "
            f"set l_max >= {need}"
        )


def _check_transport(mat: Mapping[str, Any], base: str, source: str) -> None:
    """The transport device: tiled along its axis; no more devices than test structures."""
    tr = mat.get("transport")
    if not tr:
        return
    axis = "xyz".index(tr["axis"])
    tiling = list(tr["tiling"])
    if tiling[axis] == 1 and max(tiling) > 1:
        raise ConfigError(
            f"{source}: {base}.transport.axis: {tr['axis']}, but transport.tiling {tiling} repeats another axis; "
            "the device is elongated along the tiled axis"
        )
    _check_device_length(mat, tr, axis, base, source)
    n = mat["decorrelate"]["n_snapshots"]
    if tr.get("structures", 1) > n:
        raise ConfigError(
            f"{source}: {base}.transport.structures: {tr['structures']}, but the test quench has {n} structures "
            "(decorrelate.n_snapshots)"
        )


# S blocks of this size always appear in CP2K's matrices, so the DFT interaction range is at least the basis's
# overlap range at it (Si SZV: 10.0 A; the demo's CP2K matrices reach 12.1 A): a device shorter than twice it is
# refused for sure by the validate_device rule after its CP2K run.
_SURE_RANGE_EPS = 1e-6


def _check_device_length(mat, tr, axis: int, base: str, source: str) -> None:
    """The tiled device must exceed twice the interaction range along the axis (its Gamma-point matrices are cut
    open there); checked on the MD's initial cell, which NVT stages keep."""
    import numpy as np

    from hamforge._elements import chemical_symbol
    from hamforge.basis import BasisError, ElementBasis, overlap_range, read_cp2k_basis, resolve_cp2k_data_file
    from hamforge.structures import MDError, initial_structure

    try:
        cell = initial_structure(mat["elements"], mat["md"]["initial"]).cell.array
        path = resolve_cp2k_data_file(mat["dft"]["basis_file"])
        basis = {}
        for label, kind in mat["dft"]["kinds"].items():
            if kind.get("ghost"):
                continue
            eb = read_cp2k_basis(path, chemical_symbol(kind.get("element", label)), kind["basis_set"])
            basis[label] = ElementBasis(eb.element, kind["basis_set"], tuple(eb.shells))
        reach = float(overlap_range(basis, eps=_SURE_RANGE_EPS, basis_file=path))
    except (MDError, BasisError, ValueError, OSError):
        return  # reported by the other checks or by the MD rule
    height = 1.0 / np.linalg.norm(np.linalg.inv(cell)[:, axis])  # lattice-plane spacing along the axis
    length = height * tr["tiling"][axis]
    if length <= 2 * reach:
        raise ConfigError(
            f"{source}: {base}.transport.tiling: {tr['tiling']} gives a device {length:.1f} A long along "
            f"{tr['axis']}, but its DFT matrices couple atoms at least {reach:.1f} A apart; cutting them open needs "
            f"more than {2 * reach:.1f} A: tile more along {tr['axis']}"
        )


# Bytes per predicted atom (file + temporary row store) measured for Si SZV (4 orbitals) at r_cut 9 A with S to
# 11.45 A: 43.5 kB of file (docs/predict.md) and ~20 kB of row store; scaled by orbitals^2 and r_cut^3 below.
_PREDICT_BYTES_PER_ATOM = 64e3


def _check_predict_size(mat, results: str, base: str, source: str) -> None:
    """A tiling whose prediction cannot fit on the results disk is refused now, not after MD, DFT and training."""
    import math
    import shutil

    from hamforge._elements import chemical_symbol
    from hamforge.basis import BasisError, read_cp2k_basis, resolve_cp2k_data_file
    from hamforge.structures import MDError, initial_structure

    try:
        n_cell = len(initial_structure(mat["elements"], mat["md"]["initial"]))
        path = resolve_cp2k_data_file(mat["dft"]["basis_file"])
        orbs = [
            sum(2 * l + 1 for l in read_cp2k_basis(path, chemical_symbol(k.get("element", lab)), k["basis_set"]).shells)
            for lab, k in mat["dft"]["kinds"].items()
        ]
    except (MDError, BasisError, ValueError, OSError):
        return  # reported elsewhere
    per_atom = _PREDICT_BYTES_PER_ATOM * (max(orbs) / 4.0) ** 2 * (mat["targets"]["r_cut"] / 9.0) ** 3
    folder = Path(results).resolve()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    for tiling in mat["predict"]["tilings"]:
        need = n_cell * math.prod(tiling) * per_atom
        if need > free:
            raise ConfigError(
                f"{source}: {base}.predict.tilings: {tiling} makes {n_cell * math.prod(tiling):.3g} atoms, ~"
                f"{need / 1e9:.3g} GB of prediction output, but {folder} has {free / 1e9:.3g} GB free"
            )


def _check_md_inputs(mat: Mapping[str, Any], base: str, source: str) -> None:
    """The LAMMPS potential file exists and the initial structure can be built; warn on an r_cut without edges."""
    import logging

    from hamforge.structures import MDError, initial_structure, resolve_potential

    md = mat["md"]
    try:
        resolve_potential(md["potential"]["file"])
    except MDError as exc:
        raise ConfigError(f"{source}: {base}.md.potential.file: {exc}") from None
    init = md["initial"]
    key = "file" if "file" in init else "crystal"
    try:
        atoms = initial_structure(mat["elements"], init)
    except (MDError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"{source}: {base}.md.initial.{key}: cannot build the initial structure: {exc}") from None
    from ase.neighborlist import neighbor_list

    r_cut = mat["targets"]["r_cut"]
    if len(atoms) and len(neighbor_list("i", atoms, r_cut)) == 0:
        logging.getLogger("hamforge.config").warning(
            "%s: %s.targets.r_cut: %g Angstrom gives no edges in the initial structure: the graph would be empty",
            source,
            base,
            r_cut,
        )


def _check_post_quench(mat: Mapping[str, Any], base: str, source: str) -> None:
    """Substituted and vacated elements are MD elements, dopants have a dft kind, the vacancy kind is a ghost."""
    from hamforge._elements import chemical_symbol

    pq = mat["md"].get("post_quench") or {}
    kinds = mat["dft"]["kinds"]
    real = {chemical_symbol(k.get("element", label)) for label, k in kinds.items() if not k.get("ghost")}
    species = {chemical_symbol(e) for e in mat["elements"]}
    entries = [(f"substitute[{i}]", s) for i, s in enumerate(pq.get("substitute", []))]
    entries += [("vacancies", pq["vacancies"])] if pq.get("vacancies") else []
    for where, e in entries:
        key = f"{source}: {base}.md.post_quench.{where}"
        if ("count" in e) == ("fraction" in e):
            raise ConfigError(f"{key}: give exactly one of count and fraction")
        for field in ("from", "to") if "to" in e else ("from",):
            try:
                chemical_symbol(e[field])
            except ValueError as exc:
                raise ConfigError(f"{key}.{field}: {exc}") from None
        if chemical_symbol(e["from"]) not in species:
            raise ConfigError(
                f"{key}.from: {e['from']} is neither in {base}.elements nor put there by an earlier substitution"
            )
        if "to" in e:
            if chemical_symbol(e["to"]) not in real:
                raise ConfigError(f"{key}.to: no (non-ghost) kind of element {e['to']} in {base}.dft.kinds")
            species.add(chemical_symbol(e["to"]))
        elif not kinds.get(e["kind"], {}).get("ghost"):
            raise ConfigError(f"{key}.kind: {e['kind']!r} is not a ghost kind of {base}.dft.kinds (set ghost: true)")


def _check_launcher(res: Mapping[str, Any], key: str, source: str) -> None:
    """Only the ``{tasks}`` and ``{threads}`` placeholders may appear in a launcher template (hamforge._launcher)."""
    launcher = res.get("launcher", "")
    try:
        launcher.format(tasks=1, threads=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{source}: {key}: {launcher!r} is invalid ({type(exc).__name__}: {exc}); only {{tasks}} and "
            f"{{threads}} may be used"
        ) from None


def _merge(base: dict, over: Mapping[str, Any]) -> dict:
    """Recursive update of ``base`` by ``over`` (mappings merged key by key, anything else replaced): the
    merge Snakemake applies to several ``--configfile`` files."""
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_config(path: str | os.PathLike | Sequence[str | os.PathLike], schema: str | os.PathLike | None = None) -> dict:
    """Read one YAML config file, or several merged in order like ``snakemake --configfile A B`` (a later file
    overrides, mapping by mapping), and validate the result (errors name the file(s) and the key)."""
    import yaml

    paths = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(p) for p in path]
    if not paths:
        raise ConfigError("no config file given")
    merged: dict = {}
    for p in paths:
        try:
            with open(p) as fh:
                raw = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{p}: cannot read YAML ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        _merge(merged, raw)
    return validate_config(merged, schema, source=" + ".join(str(p) for p in paths))

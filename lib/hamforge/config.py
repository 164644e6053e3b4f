"""Workflow configuration: JSON-schema validation with defaults, and cross-field checks.

Errors name the offending key as a dotted path (``materials.a-Si.md.stages[2].duration_ps``) so a user
can find it in their YAML.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping

from hamforge._hashing import config_hash

__all__ = ["ConfigError", "config_hash", "default_schema_path", "load_config", "validate_config"]


class ConfigError(ValueError):
    """The workflow configuration is invalid; the message names the key."""


def default_schema_path() -> Path:
    """``workflow/schemas/config.schema.yaml`` of the repository this package was installed from."""
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


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
        if not any(s.get("sample") for s in mat["md"]["stages"]):
            raise ConfigError(f"{source}: {base}.md.stages: no stage has 'sample: true' (which frames to decorrelate?)")
        names = [s["name"] for s in mat["md"]["stages"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: {base}.md.stages: stage names must be unique, got {names}")
        init = mat["md"]["initial"]
        if "file" not in init and not {"crystal", "a"} <= set(init):
            raise ConfigError(f"{source}: {base}.md.initial: give 'file', or 'crystal' and 'a' (and 'repeat')")
        kind_elements = {k.get("element", label) for label, k in mat["dft"]["kinds"].items() if not k.get("ghost")}
        missing = sorted(set(mat["elements"]) - kind_elements)
        if missing:
            raise ConfigError(f"{source}: {base}.dft.kinds: no kind for element(s) {missing}")
        dec = mat["decorrelate"]
        if (dec.get("temperature") is None) != (dec.get("temperature_tolerance") is None):
            raise ConfigError(f"{source}: {base}.decorrelate: set both temperature and temperature_tolerance, or neither")
        _check_training(mat, base, source)
    return cfg


def _check_training(mat: Mapping[str, Any], base: str, source: str) -> None:
    """Training keys that the schema alone cannot check (refused before anything runs)."""
    tr = mat["train"]
    if tr["min_lr"] > tr["lr"]:
        raise ConfigError(f"{source}: {base}.train.min_lr: {tr['min_lr']} is larger than train.lr = {tr['lr']}")
    n_train = (mat["md"]["quenches"] - (1 if mat.get("test_quench") is not None else 0)) * mat["decorrelate"]["n_snapshots"]
    if n_train - tr["validation_structures"] < 1:
        raise ConfigError(
            f"{source}: {base}.train.validation_structures: {tr['validation_structures']} of the {n_train} structures "
            "of the training quenches held aside leaves nothing to train on (the test quench is never trained on)")
    m = mat["model"]
    if m["embed_dim"] % m["n_heads"]:
        raise ConfigError(f"{source}: {base}.model.n_heads: {m['n_heads']} does not divide model.embed_dim = {m['embed_dim']}")
    halo = 1 if m["strictly_local"] else m["n_layers"]
    if tr["use_partitions"] and mat["partition"]["halo"] < halo:
        raise ConfigError(f"{source}: {base}.partition.halo: {mat['partition']['halo']} is smaller than the {halo} "
                          "hop(s) the model needs for exact partitioned training (model.n_layers, 1 if strictly_local)")


def load_config(path: str | os.PathLike, schema: str | os.PathLike | None = None) -> dict:
    """Read a YAML config file and validate it (errors name the file and the key)."""
    import yaml

    path = Path(path)
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return validate_config(raw, schema, source=str(path))

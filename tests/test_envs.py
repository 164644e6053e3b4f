"""Every workflow rule names a conda environment of workflow/envs/ that installs hamforge and the programs it runs.

The environments are for clusters running ``--sdm conda``; they are not built on the development and CI machines
(README), so this checks what can be checked without conda: coverage and content.
"""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "workflow" / "envs"
# rules that run no code of their own (aggregation targets)
NO_ENV = {"all"}
# programs a rule runs outside Python, and the env entry that provides them
PROGRAMS = {"cp2k": "cp2k", "cp2k_input": "cp2k", "melt_quench": "lammps"}


def _rules() -> dict[str, str]:
    """rule name -> its block of text, over every rule file and the Snakefile."""
    out = {}
    for path in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        text = path.read_text()
        heads = list(re.finditer(r"^(?:rule|checkpoint) (\w+):", text, flags=re.M))
        for k, m in enumerate(heads):
            end = heads[k + 1].start() if k + 1 < len(heads) else len(text)
            out[m.group(1)] = text[m.start() : end]
    return out


def _env_entries(env: dict) -> list[str]:
    entries = []
    for dep in env["dependencies"]:
        entries += dep["pip"] if isinstance(dep, dict) else [dep]
    return [str(e) for e in entries]


def test_every_rule_has_an_existing_env():
    rules = _rules()
    assert {"melt_quench", "decorrelate", "cp2k", "targets", "train", "predict", "validate", "release"} <= set(rules)
    used = set()
    for name, block in rules.items():
        m = re.search(r"conda:\s*\n\s*\"\.\./envs/([\w.-]+\.yaml)\"", block)
        if name in NO_ENV:
            assert m is None and "script:" not in block, name
            continue
        assert m, f"rule {name} has no conda: directive"
        assert (ENVS / m.group(1)).is_file(), f"rule {name}: {m.group(1)} does not exist"
        used.add(m.group(1))
        env = yaml.safe_load((ENVS / m.group(1)).read_text())
        entries = _env_entries(env)
        assert "-e ../.." in entries, f"{m.group(1)} (rule {name}) does not install hamforge"
        if name in PROGRAMS:
            assert any(e.split(">")[0].split("[")[0] == PROGRAMS[name] for e in entries), (name, entries)
    assert used == {p.name for p in ENVS.glob("*.yaml")}  # no env file that no rule uses

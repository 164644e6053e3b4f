"""Post-quench decoration (hamforge.structures): seeded Ge -> Pt substitution and ghost vacancies, and its config."""

from pathlib import Path

import ase.build
import ase.io
import numpy as np
import pytest
from hamforge.config import ConfigError, load_config, validate_config
from hamforge.io import read_structure
from hamforge.structures import (
    KINDS_ARRAY,
    GhostVacancies,
    MDError,
    MeltQuenchSettings,
    PostQuench,
    Substitution,
    apply_post_quench,
    post_quench_sites,
    run_melt_quench,
)

GE16 = ["Ge"] * 16
GEPT = PostQuench(
    substitutions=(Substitution("Ge", "Pt", count=2),), vacancies=GhostVacancies("Ge", "Ge_vac", 1), seed=3
)


def test_counts_elements_and_kinds():
    symbols, kinds = post_quench_sites(GE16, GEPT, quench=0)
    assert sorted(set(symbols)) == ["Ge", "Pt"] and list(symbols).count("Pt") == 2
    assert list(kinds).count("Ge_vac") == 1 and list(kinds).count("Pt") == 2 and list(kinds).count("Ge") == 13
    ghost = np.flatnonzero(kinds == "Ge_vac")
    assert symbols[ghost[0]] == "Ge"  # a ghost keeps its host element (whose basis it carries), never a Pt site
    assert np.all(kinds[symbols == "Pt"] == "Pt")


def test_fraction_rounds_to_a_site_count():
    pq = PostQuench(substitutions=(Substitution("Ge", "Pt", fraction=0.125),), seed=1)
    symbols, kinds = post_quench_sites(["Ge"] * 64, pq)
    assert list(symbols).count("Pt") == 8 and np.array_equal(symbols, kinds)


def test_same_seed_and_quench_same_sites_and_quenches_differ():
    a = post_quench_sites(GE16, GEPT, quench=0)
    b = post_quench_sites(GE16, GEPT, quench=0)
    assert np.array_equal(a[1], b[1])
    # the sites are drawn from a generator seeded by (seed, quench): quenches and seeds give other sites
    per_quench = {tuple(post_quench_sites(GE16, GEPT, quench=q)[1]) for q in range(6)}
    assert len(per_quench) > 1
    other_seed = PostQuench(GEPT.substitutions, GEPT.vacancies, seed=4)
    per_seed = {tuple(post_quench_sites(GE16, other_seed, quench=q)[1]) for q in range(6)}
    assert per_seed != per_quench


def test_only_atoms_of_the_source_element_are_taken():
    mixed = ["Si"] * 8 + ["Ge"] * 8
    symbols, kinds = post_quench_sites(mixed, GEPT)
    assert list(symbols[:8]) == ["Si"] * 8 and list(kinds[:8]) == ["Si"] * 8


@pytest.mark.parametrize(
    "pq, match",
    [
        (PostQuench(substitutions=(Substitution("Ge", "Pt", count=17),)), "only 16 such atoms"),
        (PostQuench(substitutions=(Substitution("Ge", "Pt", fraction=0.01),)), "rounds to 0 sites"),
        (PostQuench(substitutions=(Substitution("Ge", "Pt", count=1, fraction=0.1),)), "exactly one of"),
        (PostQuench(vacancies=GhostVacancies("Si", "Si_vac", 1)), "only 0 such atoms"),
    ],
)
def test_impossible_decorations_are_refused(pq, match):
    with pytest.raises(MDError, match=match):
        post_quench_sites(GE16, pq)


def test_bad_element_is_refused_naming_the_key():
    with pytest.raises(MDError, match=r"substitute.target: 'Xx' is not a chemical element"):
        PostQuench(substitutions=(Substitution("Ge", "Xx", count=1),))


def test_frames_get_the_same_sites_and_extxyz_keeps_the_kinds(tmp_path):
    base = ase.build.bulk("Ge", "diamond", a=5.658, cubic=True).repeat((2, 1, 1))
    frames = [base.copy() for _ in range(3)]
    for k, f in enumerate(frames):
        f.rattle(0.05, seed=k)
    apply_post_quench(frames, GEPT, quench=1)
    assert all(np.array_equal(f.arrays[KINDS_ARRAY], frames[0].arrays[KINDS_ARRAY]) for f in frames)
    ase.io.write(tmp_path / "t.extxyz", frames, format="extxyz")
    s = read_structure(tmp_path / "t.extxyz")  # the last frame, kinds from the per-atom array
    assert list(s.kinds) == list(frames[-1].arrays[KINDS_ARRAY])
    assert sorted(set(s.kinds)) == ["Ge", "Ge_vac", "Pt"] and s.numbers.tolist().count(78) == 2


@pytest.mark.lammps
def test_melt_quench_with_tersoff_ge_writes_the_decorated_trajectory(tmp_path):
    """Real LAMMPS (Ge.tersoff, 16 atoms, 0.3 ps: well under a second)."""
    md = {
        "potential": {"pair_style": "tersoff", "file": "Ge.tersoff"},
        "initial": {"crystal": "diamond", "a": 5.658, "repeat": [2, 1, 1]},
        "dump_every": 50,
        "seed": 5,
        "stages": [{"name": "hot", "duration_ps": 0.3, "t_start": 3000, "t_end": 300, "sample": True}],
        "post_quench": {"seed": 3, "substitute": [{"from": "Ge", "to": "Pt", "count": 2}]},
    }
    settings = MeltQuenchSettings.from_config(["Ge"], md)
    summary = run_melt_quench(settings, tmp_path / "w", tmp_path / "t.extxyz", tmp_path / "th.csv", quench=0)
    frames = ase.io.read(tmp_path / "t.extxyz", ":")
    assert len(frames) == 7 and summary["kinds"] == {"Ge": 14, "Pt": 2}
    expect = post_quench_sites(GE16, PostQuench.from_config(md["post_quench"]), 0)[0]
    assert all(f.get_chemical_symbols() == list(expect) for f in frames)


def _gept_config(**post_quench):
    cfg = load_config(Path(__file__).parents[1] / "config" / "gept-ci.yaml")
    cfg["materials"]["a-GePt"]["md"]["post_quench"] = post_quench
    return cfg


@pytest.mark.parametrize(
    "post_quench, match",
    [
        ({"vacancies": {"from": "Ge", "kind": "Ge", "count": 1}}, r"vacancies.kind: 'Ge' is not a ghost kind"),
        ({"substitute": [{"from": "Ge", "to": "Au", "count": 1}]}, r"substitute\[0\].to: no \(non-ghost\) kind"),
        ({"substitute": [{"from": "Si", "to": "Pt", "count": 1}]}, r"substitute\[0\].from: Si is neither"),
        ({"substitute": [{"from": "Ge", "to": "Pt", "count": 1, "fraction": 0.1}]}, "exactly one of count"),
    ],
)
def test_config_refuses_inconsistent_post_quench(post_quench, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(_gept_config(**post_quench), source="gept")

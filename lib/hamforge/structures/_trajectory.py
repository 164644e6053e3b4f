"""Trajectory files: reading an extxyz trajectory, writing the selected snapshots, the table and the plot."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from hamforge.io import atomic_path
from hamforge.structures._decorrelate import decorrelate
from hamforge.structures._decorrelate_settings import DecorrelationError, DecorrelationResult, DecorrelationSettings

logger = logging.getLogger(__name__)

__all__ = ["decorrelate_trajectory"]


# ----------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------


def _read_trajectory(path: Path, stage: str | Sequence[str] | None):
    """Arrays of the frames to consider: (ids, positions, cells, pbc, temperatures, extra columns)."""
    import ase.io

    ids, positions, cells, temps, steps, times, stages = [], [], [], [], [], [], []
    wanted = None if stage is None else ({stage} if isinstance(stage, str) else {str(x) for x in stage})
    numbers0 = pbc0 = None
    all_stages: set[str] = set()
    for index, atoms in enumerate(ase.io.iread(str(path), index=":", format="extxyz")):
        if numbers0 is None:
            numbers0, pbc0 = atoms.numbers.copy(), atoms.pbc.copy()
        elif len(atoms) != len(numbers0):
            raise DecorrelationError(
                f"{path}: frame {index} has {len(atoms)} atoms but frame 0 has {len(numbers0)}: a trajectory must keep "
                "its atoms; split the file or select one run"
            )
        elif not np.array_equal(atoms.numbers, numbers0):
            raise DecorrelationError(f"{path}: frame {index} has different species (or atom order) than frame 0")
        elif not np.array_equal(atoms.pbc, pbc0):
            raise DecorrelationError(
                f"{path}: frame {index} has pbc {atoms.pbc.tolist()} but frame 0 has {pbc0.tolist()}"
            )
        frame_stage = atoms.info.get("stage")
        if frame_stage is not None:
            all_stages.add(str(frame_stage))
        if wanted is not None and str(frame_stage) not in wanted:
            continue
        ids.append(index)
        positions.append(atoms.positions.copy())
        cells.append(atoms.cell.array.copy())
        temps.append(float(atoms.info.get("temperature", np.nan)))
        steps.append(atoms.info.get("step", np.nan))
        times.append(float(atoms.info.get("time_ps", np.nan)))
        stages.append("" if frame_stage is None else str(frame_stage))
        if (index + 1) % 1000 == 0:
            logger.info("%s: read %d frames", path, index + 1)
    if numbers0 is None:
        raise DecorrelationError(f"{path}: no frames in the trajectory file")
    if not ids:
        raise DecorrelationError(
            f"{path}: no frame has stage={stage!r} (stages in the file: {sorted(all_stages) or 'none'}); "
            "pick one of them or pass stage=None"
        )
    extra = {"step": steps, "time_ps": times, "stage": stages}
    return (
        np.array(ids, dtype=np.int64),
        np.array(positions),
        np.array(cells),
        pbc0,
        np.array(temps),
        extra,
    )


def _plot(result: DecorrelationResult, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = result.table
    frames = table["frame"].to_numpy()
    fig = Figure(figsize=(8, 6))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.97, bottom=0.08, hspace=0.08)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(frames, result.signal, color="0.7", lw=0.8, label="1 - cos(RDF_t, RDF_last)")
    ax1.plot(frames, result.smoothed, color="C0", lw=1.5, label="moving average")
    ax1.axhline(result.threshold, color="C3", ls="--", lw=1, label=f"threshold {result.threshold:.3g}")
    ax1.axvline(
        result.equilibrated_from, color="k", ls=":", lw=1, label=f"equilibrated from {result.equilibrated_from}"
    )
    ax1.set_ylabel("RDF distance to last frame")
    ax1.legend(fontsize="small")
    dist = table["distance_to_last_accepted"].to_numpy()
    ok = np.isfinite(dist)
    ax2.plot(frames[ok], dist[ok], ".", ms=3, color="0.5", label="distance to last candidate")
    ax2.axhline(result.cutoff, color="C3", ls="--", lw=1, label=f"cutoff {result.cutoff:.3g} Å")
    cand = table["candidate"].to_numpy() & ~table["accepted"].to_numpy()
    acc = table["accepted"].to_numpy()
    y = np.where(np.isfinite(dist), dist, result.cutoff)
    ax2.plot(frames[cand], y[cand], "o", mfc="none", color="C1", ms=5, label="candidate, not drawn")
    ax2.plot(frames[acc], y[acc], "o", color="C2", ms=5, label="selected")
    ax2.axvline(result.equilibrated_from, color="k", ls=":", lw=1)
    ax2.set_xlabel("frame")
    ax2.set_ylabel("D (Å)")
    ax2.legend(fontsize="small")
    fig.savefig(path, format="png", dpi=120)


def decorrelate_trajectory(
    trajectory_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: DecorrelationSettings,
    *,
    stage: str | Sequence[str] | None = None,
    prefix: str = "",
) -> DecorrelationResult:
    """Decorrelate an extxyz trajectory and write the selected snapshots.

    Per-frame ``atoms.info`` may hold ``temperature`` (K), ``step``, ``time_ps`` and ``stage``. With
    ``stage`` given (a name or several) only frames whose ``info['stage']`` is one of them are considered;
    frame numbers everywhere
    are indices in the whole file. All frames must have the same atoms (species, order) and pbc.

    Writes (atomically, via :func:`hamforge.io.atomic_path`):
    - ``out_dir / f"{prefix}f{frame:05d}.extxyz"``: each selected frame (species, cell, pbc, info kept);
    - ``out_dir / "selection.csv"``: the result table plus ``step``, ``time_ps``, ``stage``;
    - ``out_dir / "selection.png"``: signal with threshold and equilibration frame, distances with cutoff.
    Errors name the trajectory file.
    """
    import ase.io

    path = Path(trajectory_path)
    out = Path(out_dir)
    if not isinstance(settings, DecorrelationSettings):
        raise ValueError(f"settings must be a DecorrelationSettings, got {type(settings).__name__}")
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file not found: {path}")
    if any(sep in prefix for sep in ("/", os.sep)):
        raise ValueError(f"prefix must be a file-name prefix without directory separators, got {prefix!r}")
    logger.info("reading %s", path)
    try:
        ids, positions, cells, pbc, temps, extra = _read_trajectory(path, stage)
    except DecorrelationError:
        raise
    except Exception as exc:  # ASE parse errors come in many types
        raise DecorrelationError(f"{path}: cannot read the trajectory as extxyz: {exc}") from exc
    if settings.temperature is not None and np.isnan(temps).all():
        raise DecorrelationError(
            f"{path}: a temperature filter is set but no frame has info['temperature']; unset `temperature` "
            "or write temperatures into the trajectory"
        )
    try:
        result = decorrelate(positions, cells, pbc, None if np.isnan(temps).all() else temps, settings, frame_ids=ids)
    except ValueError as exc:
        scope = f" (stage {stage!r})" if stage is not None else ""
        raise DecorrelationError(f"{path}{scope}: {exc}") from exc

    table = result.table.copy()
    for name, values in extra.items():
        table[name] = values
    result = DecorrelationResult(
        selected=result.selected,
        equilibrated_from=result.equilibrated_from,
        cutoff=result.cutoff,
        threshold=result.threshold,
        table=table,
        signal=result.signal,
        smoothed=result.smoothed,
    )

    out.mkdir(parents=True, exist_ok=True)
    wanted = set(int(f) for f in result.selected)
    last_wanted = max(wanted)
    for index, atoms in enumerate(ase.io.iread(str(path), index=":", format="extxyz")):
        if index in wanted:
            with atomic_path(out / f"{prefix}f{index:05d}.extxyz") as tmp:
                ase.io.write(tmp, atoms, format="extxyz")
        if index >= last_wanted:
            break
    with atomic_path(out / "selection.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "selection.png") as tmp:
        _plot(result, tmp)
    logger.info("%s: wrote %d snapshots to %s", path, len(wanted), out)
    return result

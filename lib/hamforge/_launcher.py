"""MPI launcher templates shared by every stage that starts an MPI program (CP2K, LAMMPS).

A template is the Snakemake ``mpi`` resource of a rule (config ``resources.<rule>.launcher``, or the SLURM
profile's ``set-resources``): ``"/usr/bin/mpirun --allow-run-as-root -np {tasks}"``, ``"srun -c {threads}"``,
``"srun"`` or ``""`` (no launcher). ``{tasks}`` is the MPI task count and ``{threads}`` the OpenMP threads per
task, both from config ``resources``, so the counts have a single source.
"""

from __future__ import annotations

import shlex

__all__ = ["launcher_command"]


def launcher_command(template: str, tasks: int, threads: int = 1, error: type[Exception] = ValueError) -> list[str]:
    """Split ``template`` into argv with ``{tasks}`` and ``{threads}`` filled in; ``""`` gives ``[]``.

    Raises ``error`` (a ValueError subclass of the calling stage) for counts below 1 or unknown placeholders.
    """
    if tasks < 1 or threads < 1:
        raise error(f"launcher: mpi tasks and threads must be >= 1, got tasks={tasks}, threads={threads}")
    try:
        return shlex.split(template.format(tasks=tasks, threads=threads))
    except (KeyError, IndexError, ValueError) as exc:
        raise error(
            f"launcher template {template!r} is invalid ({exc}); only {{tasks}} and {{threads}} may be used"
        ) from exc

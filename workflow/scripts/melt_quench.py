"""Snakemake adapter: one seeded LAMMPS melt-quench (hamforge.structures.run_melt_quench)."""

import json
import os

from hamforge._logging import configure_logging, log_failure
from hamforge.io import write_text_atomic
from hamforge.structures import MeltQuenchSettings, run_melt_quench

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    settings = MeltQuenchSettings.from_config(sm.params.elements, sm.params.md)
    summary = run_melt_quench(
        settings,
        work_dir=os.path.join(os.path.dirname(sm.output.trajectory), "lammps"),
        trajectory=sm.output.trajectory,
        thermo_csv=sm.output.thermo,
        quench=int(sm.wildcards.quench),
        launcher=sm.resources.mpi,
        tasks=sm.resources.tasks,
        threads=sm.resources.cpus_per_task,
    )
    write_text_atomic(sm.output.summary, json.dumps(summary, indent=2) + "\n")

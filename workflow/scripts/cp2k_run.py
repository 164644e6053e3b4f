"""Snakemake adapter: run CP2K, fail clearly on an unconverged SCF (outputs stay for inspection)."""

import dataclasses
import json

from hamforge._logging import configure_logging
from hamforge.dft import run_cp2k
from hamforge.io import write_text_atomic

sm = snakemake  # noqa: F821 (injected by Snakemake)
configure_logging(sm.log[0])
summary = run_cp2k(
    sm.input.inp,
    executable=sm.params.executable,
    launcher=sm.resources.mpi,
    tasks=sm.resources.tasks,
    threads=sm.resources.cpus_per_task,
)
write_text_atomic(sm.output.summary, json.dumps(dataclasses.asdict(summary), indent=2) + "\n")

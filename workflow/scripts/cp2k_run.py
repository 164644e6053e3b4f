"""Snakemake adapter: run CP2K, fail clearly on an unconverged SCF (outputs stay for inspection)."""

import dataclasses
import json

from hamforge._logging import configure_logging, log_failure
from hamforge.dft import run_cp2k
from hamforge.io import write_text_atomic

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):  # CP2K's ABORT message (or the signal that stopped it) ends up in the rule's log
    summary = run_cp2k(
        sm.input.inp,
        executable=sm.params.executable,
        launcher=sm.resources.mpi,
        tasks=sm.resources.tasks,
        threads=sm.resources.cpus_per_task,
    )
    write_text_atomic(sm.output.summary, json.dumps(dataclasses.asdict(summary), indent=2) + "\n")

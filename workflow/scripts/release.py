"""Snakemake adapter: release folder of one material (hamforge.io.make_release); files found by config globs."""

import os

from hamforge._logging import configure_logging, log_failure
from hamforge.io import make_release

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    out_dir = os.path.dirname(sm.output.manifest)
    # force: results/<material>/release/ belongs to this rule (Snakemake removed the old manifest.json already)
    manifest = make_release(sm.params.material_dir, out_dir, sm.config, material=sm.wildcards.material, force=True)

log.info(
    "release %s: %d files, %d marked non-deterministic, config hash %s",
    out_dir,
    len(manifest["files"]),
    sum(not f["deterministic"] for f in manifest["files"].values()),
    manifest["config"]["hash"],
)

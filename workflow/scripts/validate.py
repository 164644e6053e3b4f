"""Snakemake adapter: predicted vs DFT matrix file -> metrics.json (spectra + the model's MAE), CSV and plots."""

import json
import os

from hamforge._logging import configure_logging
from hamforge.io import write_text_atomic
from hamforge.validate import validate_pair

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
out_dir = os.path.dirname(sm.output.metrics)
spectrum = validate_pair(sm.input.pred, sm.input.ref, out_dir, metrics_path=sm.output.spectrum)
mae = json.loads(open(sm.input.mae).read())
# the model's MAE on the learning targets (mae_*) is the canonical one; the matrix-level MAE of the spectrum
# comparison (over the union of both sparsity patterns) is kept as matrix_mae_*
merged = {**{(f"matrix_{k}" if k.startswith("mae_") else k): v for k, v in spectrum.items()}, **mae}
write_text_atomic(sm.output.metrics, json.dumps(merged, indent=2) + "\n")
log.info(
    "%s: eig_rel_l1 %.4g, occupied %.4g, MAE total %.3f meV",
    sm.wildcards.structure,
    merged["eig_rel_l1"],
    merged["eig_rel_l1_occupied"],
    merged["mae_total_meV"],
)

"""Snakemake adapter: predicted vs DFT matrix file -> metrics.json (spectra + the model's MAE), CSV and plots;
for an elongated transport device (rule validate_device) spectra + NEGF transport instead of the model's MAE."""

import json
import os

from hamforge._logging import configure_logging, log_failure
from hamforge.io import staged_directory, write_text_atomic
from hamforge.io.units import HARTREE_TO_EV
from hamforge.validate import validate_device, validate_pair

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
out_dir = os.path.dirname(sm.output.metrics)


def matrix_level(metrics):
    # the model's MAE on the learning targets (mae_*) is the canonical one; the matrix-level MAE of the spectrum
    # comparison (over the union of both sparsity patterns) is kept as matrix_mae_*
    return {(f"matrix_{k}" if k.startswith("mae_") else k): v for k, v in metrics.items()}


# every file of the folder is written into a staging folder and moved in at the end: all of them or none
with log_failure(log), staged_directory(out_dir) as stage:
    if hasattr(sm.params, "transport"):
        t = sm.params.transport
        merged = matrix_level(
            validate_device(
                sm.input.pred,
                sm.input.ref,
                stage,
                axis=t["axis"],
                window=t["window_eV"] / HARTREE_TO_EV,
                step=t["energy_step_eV"] / HARTREE_TO_EV,
                eta=t["eta_eV"] / HARTREE_TO_EV,
                bias=t["bias_V"],
                temperature=t["temperature_K"],
                wide_band=None if t["wide_band_eV"] is None else t["wide_band_eV"] / HARTREE_TO_EV,
                thickness=t["thickness_A"],
            )
        )
    else:
        mae = json.loads(open(sm.input.mae).read())
        spectrum = validate_pair(
            sm.input.pred,
            sm.input.ref,
            stage,
            metrics_path=stage / os.path.basename(sm.output.spectrum),
            distance_mae=mae.get("by_distance"),
        )
        merged = {**matrix_level(spectrum), **mae}
    write_text_atomic(stage / os.path.basename(sm.output.metrics), json.dumps(merged, indent=2) + "\n")
log.info(  # the lines above name the hidden staging folder the files were written to before the move
    "%s: eig_rel_l1 %.4g, occupied %.4g, MAE %s meV, transport max |dlog10 T| %s, current ratio %s (files in %s)",
    os.path.basename(out_dir),
    merged["eig_rel_l1"],
    merged["eig_rel_l1_occupied"],
    merged.get("mae_total_meV", merged.get("matrix_mae_total_meV")),
    merged.get("transport_log10_max_abs_error"),
    merged.get("current_ratio"),
    out_dir,
)

"""Snakemake adapter: trained model + one structure's matrix file -> predicted matrix file at one tiling
(hamforge.predict.predict_file)."""

import torch
from hamforge._logging import configure_logging, log_failure
from hamforge.predict import predict_file

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
torch.set_num_threads(sm.threads)
opts = sm.params.predict
with log_failure(log):
    prov = predict_file(
        sm.input.model,
        sm.input.structure,
        sm.output.matrices,
        tuple(sm.params.tile),
        provenance={"material": sm.wildcards.material, "structure_id": sm.wildcards.structure},
        atoms_per_part=opts["atoms_per_part"],
        method=opts["method"],
        basis_file=sm.params.basis_file,
        progress=False,
    )

log.info(
    "%s %s: %d atoms, %d edges, %d parts; asymmetry removed max %.3g Ha; S min eigenvalue %s; peak memory %.0f MB; "
    "timings %s",
    sm.wildcards.structure,
    sm.wildcards.tiling,
    prov["n_atoms"],
    prov["n_edges"],
    prov["n_parts"],
    prov["asymmetry_before_symmetrization_hartree"]["edge_asymmetry_max"],
    prov.get("min_eigenvalue_S"),
    prov.get("peak_rss_mb", float("nan")),
    prov["timings_s"],
)

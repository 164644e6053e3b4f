"""Snakemake adapter: CP2K run directory -> matrix file (hamforge.dft.parse_cp2k_run)."""

import os

from hamforge._logging import configure_logging, log_failure
from hamforge.config import config_hash
from hamforge.dft import parse_cp2k_run
from hamforge.io import write_matrix_file

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
mat = sm.config["materials"][sm.wildcards.material]
with log_failure(log):
    data = parse_cp2k_run(
        os.path.dirname(sm.input.summary),
        input_name="cp2k.inp",
        provenance={
            "material": sm.wildcards.material,
            "structure": sm.wildcards.structure,
            "config_hash": config_hash(mat),
        },
    )
    write_matrix_file(sm.output.matrices, data)
log.info("wrote %s: %d atoms, %d orbitals, nnz(H) = %d", sm.output.matrices, data.n_atoms, data.H.shape[0], data.H.nnz)

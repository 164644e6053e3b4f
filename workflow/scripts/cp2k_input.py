"""Snakemake adapter: CP2K input of one snapshot, validated against the installed CP2K's schema."""

from hamforge._logging import configure_logging, log_failure
from hamforge.dft import CP2KSettings, cp2k_input_schema, cp2k_input_tree, render_cp2k_input
from hamforge.io import read_structure, write_text_atomic

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = configure_logging(sm.log[0])
with log_failure(log):
    # kind labels from the snapshot's per-atom 'kinds' array (ghost vacancies, dopants), else the symbols
    s = read_structure(sm.input.snapshot)
    settings = CP2KSettings.from_config(sm.params.dft)
    schema = cp2k_input_schema(sm.params.executable)
    tree = cp2k_input_tree(list(s.kinds), s.positions, s.cell, settings, kinds=list(s.kinds))
    write_text_atomic(sm.output.inp, render_cp2k_input(tree, schema))
log.info("wrote %s (%d atoms), validated against %s", sm.output.inp, s.n_atoms, schema)

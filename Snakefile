# hamforge: atomic structures -> DFT Hamiltonians -> learning targets -> equivariant GNN.
# Run:  snakemake --cores 2                      (embedded default: config.yaml, amorphous Si)
#       snakemake --cores 2 --configfile X.yaml  (a --configfile replaces config.yaml entirely)
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/decorrelate.smk"
include: "workflow/rules/dft.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/partition.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/release.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_quench_indices,
        all_evaluations,
        all_predictions,

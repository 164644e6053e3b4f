# Stage 8: dataset release of one material (hamforge.io.make_release): structures, matrix files, targets,
# partitions, index, and model/metrics when present, with a checksummed manifest and a data card.
# Not part of `rule all`: ask for it, e.g. `snakemake results/a-Si/release/manifest.json`.


# copying and hashing files: no reason to queue a cluster job
localrules:
    release,


rule release:
    input:
        indices=material_quench_indices,
    output:
        manifest=f"{RESULTS}/{{material}}/release/manifest.json",
    log:
        f"{RESULTS}/logs/{{material}}/release.log",
    params:
        material_dir=lambda wc: f"{RESULTS}/{wc.material}",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/release.py"

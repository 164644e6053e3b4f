# Stage 4: coupled-basis learning targets on the fold-aware periodic graph, and the per-quench dataset index.

# the index is a few lines of JSON: never worth a cluster job
localrules:
    index,


rule targets:
    input:
        matrices=f"{RESULTS}/{{material}}/dft/{{structure}}.h5",
    output:
        targets=f"{RESULTS}/{{material}}/targets/{{structure}}.h5",
        coverage=f"{RESULTS}/{{material}}/targets/{{structure}}.coverage.csv",
        coverage_json=f"{RESULTS}/{{material}}/targets/{{structure}}.coverage.json",
        coverage_plot=f"{RESULTS}/{{material}}/targets/{{structure}}.coverage.png",
    log:
        f"{RESULTS}/logs/{{material}}/targets/{{structure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/targets/{{structure}}.tsv"
    params:
        r_cut=lambda wc: config["materials"][wc.material]["targets"]["r_cut"],
        # the basis registry is the material's dft.kinds (all of them: a kind absent from a structure is fine)
        dft=lambda wc: config["materials"][wc.material]["dft"],
    threads: res("targets", "threads")
    resources:
        mem_mb=res("targets", "mem_mb"),
        runtime=res("targets", "runtime_min"),
    conda:
        "../envs/dft.yaml"  # reads CP2K's basis files for the registry
    script:
        "../scripts/targets.py"


rule index:
    """Dataset index of one quench: its structures, their files, and the train/test split."""
    input:
        matrices=quench_files("dft", "h5"),
        targets=quench_files("targets", "h5"),
        partitions=quench_files("partitions", "h5"),
    output:
        index=f"{RESULTS}/{{material}}/index/q{{quench}}.json",
    log:
        f"{RESULTS}/logs/{{material}}/index/q{{quench}}.log",
    params:
        split=lambda wc: quench_split(wc.material, int(wc.quench)),
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/index.py"

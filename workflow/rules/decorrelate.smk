# Stage 2: equilibration detection and distance-based snapshot selection (checkpoint: the number of
# snapshots is known only after it ran).


checkpoint decorrelate:
    input:
        trajectory=f"{RESULTS}/{{material}}/md/q{{quench}}/trajectory.extxyz",
    output:
        snapshots=directory(f"{RESULTS}/{{material}}/snapshots/q{{quench}}"),
    log:
        f"{RESULTS}/logs/{{material}}/decorrelate/q{{quench}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/decorrelate/q{{quench}}.tsv"
    params:
        settings=lambda wc: config["materials"][wc.material]["decorrelate"],
        sample_stages=lambda wc: [
            s["name"] for s in config["materials"][wc.material]["md"]["stages"] if s["sample"]
        ],
    threads: res("decorrelate", "threads")
    resources:
        mem_mb=res("decorrelate", "mem_mb"),
        runtime=res("decorrelate", "runtime_min"),
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/decorrelate.py"

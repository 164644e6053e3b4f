# Stage 5: partition the atom graph of one structure and add k-hop halos (hamforge.partition).


rule partition:
    input:
        targets=f"{RESULTS}/{{material}}/targets/{{structure}}.h5",
    output:
        partitions=f"{RESULTS}/{{material}}/partitions/{{structure}}.h5",
        plot=f"{RESULTS}/{{material}}/partitions/{{structure}}.png",
        metrics=f"{RESULTS}/{{material}}/partitions/{{structure}}.metrics.csv",
    log:
        f"{RESULTS}/logs/{{material}}/partition/{{structure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/partition/{{structure}}.tsv"
    params:
        settings=lambda wc: config["materials"][wc.material]["partition"],
    threads: res("partition", "threads")
    resources:
        mem_mb=res("partition", "mem_mb"),
        runtime=res("partition", "runtime_min"),
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/partition.py"

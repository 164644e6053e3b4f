# Stage 1: melt-quench molecular dynamics with LAMMPS.


rule melt_quench:
    output:
        trajectory=f"{RESULTS}/{{material}}/md/q{{quench}}/trajectory.extxyz",
        thermo=f"{RESULTS}/{{material}}/md/q{{quench}}/thermo.csv",
        summary=f"{RESULTS}/{{material}}/md/q{{quench}}/summary.json",
    log:
        f"{RESULTS}/logs/{{material}}/melt_quench/q{{quench}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/melt_quench/q{{quench}}.tsv"
    params:
        elements=lambda wc: config["materials"][wc.material]["elements"],
        md=lambda wc: config["materials"][wc.material]["md"],
    threads: res("melt_quench", "threads") * res("melt_quench", "mpi_tasks")
    resources:
        mem_mb=res("melt_quench", "mem_mb"),
        runtime=res("melt_quench", "runtime_min"),
        # MPI rule when the launcher is set ("" = serial LAMMPS, one task); counts come from config only
        mpi=res("melt_quench", "launcher"),
        tasks=res("melt_quench", "mpi_tasks"),
        cpus_per_task=res("melt_quench", "threads"),
    conda:
        "../envs/md.yaml"
    script:
        "../scripts/melt_quench.py"

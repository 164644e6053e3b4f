# Stage 3: CP2K single points writing the Kohn-Sham and overlap matrices, parsed into matrix files.

# writing a CP2K input or tiling a snapshot takes about a second: never worth a cluster job
localrules:
    cp2k_input,
    tile_snapshot,


# The elongated transport device (materials.<m>.transport): a test snapshot tiled, in the atom order the predict
# rule tiles in (hamforge.io.Structure.tile), so that prediction and DFT describe the same atoms.
rule tile_snapshot:
    input:
        snapshot=snapshot_file,
    output:
        structure=f"{RESULTS}/{{material}}/tiled/{{structure}}_{{tiling}}.extxyz",
    log:
        f"{RESULTS}/logs/{{material}}/tile_snapshot/{{structure}}_{{tiling}}.log",
    params:
        tile=lambda wc: [int(x) for x in wc.tiling.split("x")],
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/tile_snapshot.py"


rule cp2k_input:
    wildcard_constraints:
        structure=DFT_STRUCTURE,
    input:
        snapshot=snapshot_file,
    output:
        inp=f"{RESULTS}/{{material}}/dft/{{structure}}/cp2k.inp",
    log:
        f"{RESULTS}/logs/{{material}}/cp2k_input/{{structure}}.log",
    params:
        dft=lambda wc: config["materials"][wc.material]["dft"],
        executable=res("cp2k", "executable"),
    conda:
        "../envs/dft.yaml"
    script:
        "../scripts/cp2k_input.py"


# CP2K runs inside dft/<structure>/. The binary KS and S CSR files are declared temp() outputs: bulky
# (hundreds of MB for 1,000 atoms), deleted once parse_cp2k has written the matrix file, and seen by
# --delete-all-output. When the SCF does not converge the rule fails and cp2k.out stays for inspection.
rule cp2k:
    wildcard_constraints:
        structure=DFT_STRUCTURE,
    input:
        inp=f"{RESULTS}/{{material}}/dft/{{structure}}/cp2k.inp",
    output:
        summary=f"{RESULTS}/{{material}}/dft/{{structure}}/cp2k.summary.json",
        ks=temp(f"{RESULTS}/{{material}}/dft/{{structure}}/KS.csr"),
        s=temp(f"{RESULTS}/{{material}}/dft/{{structure}}/S.csr"),
    log:
        f"{RESULTS}/logs/{{material}}/cp2k/{{structure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/cp2k/{{structure}}.tsv"
    params:
        executable=res("cp2k", "executable"),
    threads: cp2k_cores()
    resources:
        mem_mb=res("cp2k", "mem_mb"),
        runtime=res("cp2k", "runtime_min"),
        # MPI rule: the launcher template (config resources.cp2k.launcher; the SLURM profile sets "srun ...")
        # and the task/thread counts come from config only; the script fills {tasks} and {threads}.
        mpi=res("cp2k", "launcher"),
        tasks=res("cp2k", "mpi_tasks"),
        cpus_per_task=res("cp2k", "threads"),
    conda:
        "../envs/dft.yaml"
    script:
        "../scripts/cp2k_run.py"


rule parse_cp2k:
    wildcard_constraints:
        structure=DFT_STRUCTURE,
    input:
        summary=f"{RESULTS}/{{material}}/dft/{{structure}}/cp2k.summary.json",
        ks=f"{RESULTS}/{{material}}/dft/{{structure}}/KS.csr",
        s=f"{RESULTS}/{{material}}/dft/{{structure}}/S.csr",
    output:
        matrices=f"{RESULTS}/{{material}}/dft/{{structure}}.h5",
    log:
        f"{RESULTS}/logs/{{material}}/parse_cp2k/{{structure}}.log",
    conda:
        "../envs/dft.yaml"
    script:
        "../scripts/parse_cp2k.py"


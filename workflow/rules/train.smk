# Stage 6: train the SO(2)-equivariant network on the training quenches, evaluate it on the test quench.


# train.parallel (docs/training.md) selects whole samples per rank (partitions, DDP) or every structure split over
# the ranks (halo); the ranks are those of the job (torchrun/srun), one process when the job is not launched so.
# Checkpoints live in model/checkpoints/ (not declared outputs), so that a killed training rerun by
# Snakemake resumes there; the declared outputs are written when training ends.
rule train:
    input:
        indices=material_indices,
    output:
        model=f"{RESULTS}/{{material}}/model/model.pt",
        metrics=f"{RESULTS}/{{material}}/model/metrics.csv",
        curve=report(
            f"{RESULTS}/{{material}}/model/learning_curve.png",
            category="Training",
            caption="../report/learning_curve.rst",
        ),
        summary=f"{RESULTS}/{{material}}/model/summary.json",
    log:
        f"{RESULTS}/logs/{{material}}/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/train.tsv"
    params:
        model=lambda wc: config["materials"][wc.material]["model"],
        train=lambda wc: config["materials"][wc.material]["train"],
        checkpoints=lambda wc: f"{RESULTS}/{wc.material}/model/checkpoints",
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime_min"),
        **gpu_resources("train"),  # gpu=N, cpus_per_gpu (+ gpu_model) from resources.train; {} when gpus is 0
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        model=f"{RESULTS}/{{material}}/model/model.pt",
        targets=f"{RESULTS}/{{material}}/targets/{{structure}}.h5",
    output:
        mae=f"{RESULTS}/{{material}}/validation/{{structure}}/mae.json",
    log:
        f"{RESULTS}/logs/{{material}}/evaluate/{{structure}}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/evaluate.py"

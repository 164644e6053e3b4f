# Stage 7: predict H (and the exact S) of every test-quench structure at each configured tiling (matrix file v3, streamed: memory of one part).


rule predict:
    input:
        model=f"{RESULTS}/{{material}}/model/model.pt",
        structure=f"{RESULTS}/{{material}}/dft/{{structure}}.h5",
    output:
        matrices=f"{RESULTS}/{{material}}/predict/{{structure}}_{{tiling}}.h5",
    log:
        f"{RESULTS}/logs/{{material}}/predict/{{structure}}_{{tiling}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/predict/{{structure}}_{{tiling}}.tsv"
    params:
        tile=lambda wc: [int(x) for x in wc.tiling.split("x")],
        predict=lambda wc: config["materials"][wc.material]["predict"],
        basis_file=lambda wc: config["materials"][wc.material]["dft"]["basis_file"],
    threads: res("predict", "threads")
    resources:
        mem_mb=res("predict", "mem_mb"),
        runtime=res("predict", "runtime_min"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/predict.py"

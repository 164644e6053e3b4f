# Stage 8: validation of the predicted H of each held-out DFT structure against its DFT reference: eigenvalue
# spectra (hamforge.validate) merged with the model's MAE on the learning targets (rule evaluate).


rule validate:
    input:
        pred=f"{RESULTS}/{{material}}/predict/{{structure}}_1x1x1.h5",
        ref=f"{RESULTS}/{{material}}/dft/{{structure}}.h5",
        mae=f"{RESULTS}/{{material}}/validation/{{structure}}/mae.json",
    output:
        metrics=f"{RESULTS}/{{material}}/validation/{{structure}}/metrics.json",
        spectrum=f"{RESULTS}/{{material}}/validation/{{structure}}/spectrum.json",
        eigenvalues=f"{RESULTS}/{{material}}/validation/{{structure}}/eigenvalues.csv",
        spectra=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}/spectra.png",
            category="Validation",
            subcategory="{structure}",
            caption="../report/spectra.rst",
        ),
        parity=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}/parity.png",
            category="Validation",
            subcategory="{structure}",
            caption="../report/parity.rst",
        ),
        error_vs_distance=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}/error_vs_distance.png",
            category="Validation",
            subcategory="{structure}",
            caption="../report/error_vs_distance.rst",
        ),
    log:
        f"{RESULTS}/logs/{{material}}/validate/{{structure}}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/validate.py"

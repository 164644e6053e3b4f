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


# The elongated transport device <structure>_<tiling> (materials.<m>.transport): the test structure tiled along
# the transport axis, predicted by the predict rule at that tiling and computed by CP2K as a structure of its own
# (rule tile_snapshot): spectra as above plus NEGF transport of both, each cut open along the axis
# (docs/validation.md). No model MAE here: the learning targets are those of the untiled structure.
rule validate_device:
    input:
        pred=f"{RESULTS}/{{material}}/predict/{{structure}}_{{tiling}}.h5",
        ref=f"{RESULTS}/{{material}}/dft/{{structure}}_{{tiling}}.h5",
    output:
        metrics=f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/metrics.json",
        spectrum=f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/spectrum.json",
        transport=f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/transport.json",
        eigenvalues=f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/eigenvalues.csv",
        transmission_csv=f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/transmission.csv",
        transmission=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/transmission.png",
            category="Validation",
            subcategory="{structure}_{tiling}",
            caption="../report/transmission.rst",
        ),
        spectra=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/spectra.png",
            category="Validation",
            subcategory="{structure}_{tiling}",
            caption="../report/spectra.rst",
        ),
        parity=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/parity.png",
            category="Validation",
            subcategory="{structure}_{tiling}",
            caption="../report/parity.rst",
        ),
        error_vs_distance=report(
            f"{RESULTS}/{{material}}/validation/{{structure}}_{{tiling}}/error_vs_distance.png",
            category="Validation",
            subcategory="{structure}_{tiling}",
            caption="../report/error_vs_distance.rst",
        ),
    log:
        f"{RESULTS}/logs/{{material}}/validate/{{structure}}_{{tiling}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{material}}/validate/{{structure}}_{{tiling}}.tsv"
    params:
        transport=lambda wc: config["materials"][wc.material]["transport"],
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/validate.py"

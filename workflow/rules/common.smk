# Config validation, paths, wildcard constraints and input functions shared by all stages.
import glob
import os
import re

from hamforge.config import validate_config

config.update(
    validate_config(  # against the schema shipped in the package (hamforge/schemas/config.schema.yaml)
        config,
        source=", ".join(str(f) for f in (workflow.overwrite_configfiles or workflow.configfiles)) or "workflow config",
    )
)

RESULTS = config["results"]


wildcard_constraints:
    material=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    quench=r"\d+",
    structure=r"q\d+_f\d+",
    tiling=r"\d+x\d+x\d+",

# A DFT structure is a snapshot q<quench>_f<frame> or a snapshot tiled, q<quench>_f<frame>_<NX>x<NY>x<NZ> (the
# elongated transport device, materials.<m>.transport); only the DFT rules take the tiled form (their own
# constraint), everywhere else a structure is a snapshot.
DFT_STRUCTURE = r"q\d+_f\d+(?:_\d+x\d+x\d+)?"


def res(rule_name, key):
    """Per-rule resource setting from config['resources'] (threads, mem_mb, mpi_tasks, ...)."""
    return config["resources"][rule_name][key]


def cp2k_cores(wildcards=None):
    r = config["resources"]["cp2k"]
    return r["mpi_tasks"] * r["threads"]


def structures_of_quench(material, quench):
    """Structure ids (q<quench>_f<frame>) of one quench, known once its decorrelation has run."""
    snap_dir = checkpoints.decorrelate.get(material=material, quench=quench).output.snapshots
    frames = sorted(glob.glob(os.path.join(snap_dir, "f*.extxyz")))
    return [f"q{quench}_{os.path.basename(f)[: -len('.extxyz')]}" for f in frames]


def quench_files(stage, ext):
    """Input function: the per-structure files of one stage for all structures of a quench."""

    def files(wildcards):
        return [
            f"{RESULTS}/{wildcards.material}/{stage}/{s}.{ext}"
            for s in structures_of_quench(wildcards.material, wildcards.quench)
        ]

    return files


def all_quench_indices(wildcards=None):
    """One index per (material, quench): each depends only on its own checkpoint, so all run in parallel."""
    return [
        f"{RESULTS}/{m}/index/q{q}.json"
        for m, mat in config["materials"].items()
        for q in range(mat["md"]["quenches"])
    ]


def material_quench_indices(wildcards):
    """The per-quench indices of one material: they depend on every matrix, targets and partition file."""
    nq = config["materials"][wildcards.material]["md"]["quenches"]
    return [f"{RESULTS}/{wildcards.material}/index/q{q}.json" for q in range(nq)]


def snapshot_file(wildcards):
    """The structure file of a DFT structure: the decorrelated snapshot, or its tiled copy (rule tile_snapshot)."""
    if re.fullmatch(r"q\d+_f\d+_\d+x\d+x\d+", wildcards.structure):
        return f"{RESULTS}/{wildcards.material}/tiled/{wildcards.structure}.extxyz"
    q, f = wildcards.structure[1:].split("_f")
    snap_dir = checkpoints.decorrelate.get(material=wildcards.material, quench=q).output.snapshots
    return os.path.join(snap_dir, f"f{f}.extxyz")


def material_indices(wildcards):
    mat = config["materials"][wildcards.material]
    return [f"{RESULTS}/{wildcards.material}/index/q{q}.json" for q in range(mat["md"]["quenches"])]


def quench_split(material, quench):
    """The dataset split of a quench: "test" (never trained on, evaluated), "validation" (drives the lr schedule and
    the best epoch, never trained on) or "train"."""
    mat = config["materials"][material]
    if mat.get("test_quench") == quench:
        return "test"
    if mat.get("validation_quench") == quench:
        return "validation"
    return "train"


def test_structures(material):
    return structures_of_quench(material, config["materials"][material]["test_quench"])


def all_evaluations(wildcards=None):
    """Validation of every test structure, and of every elongated transport device (``transport_structures``)."""
    return [
        f"{RESULTS}/{m}/validation/{s}/metrics.json"
        for m in config["materials"]
        for s in test_structures(m) + transport_structures(m)
    ]


def tiling_name(reps):
    return "x".join(str(int(r)) for r in reps)


def transport_structures(material):
    """The elongated transport devices of a material: its first ``transport.structures`` test structures, tiled
    by ``transport.tiling`` (none without a ``transport`` section)."""
    t = config["materials"][material].get("transport")
    if not t:
        return []
    return [f"{s}_{tiling_name(t['tiling'])}" for s in test_structures(material)[: t["structures"]]]


def all_predictions(wildcards=None):
    """Every test-quench structure of every material, predicted at each configured tiling."""
    return [
        f"{RESULTS}/{m}/predict/{s}_{tiling_name(t)}.h5"
        for m, mat in config["materials"].items()
        for s in test_structures(m)
        for t in mat["predict"]["tilings"]
    ]


def gpu_resources(rule_name):
    """GPU request of a rule from config['resources'][rule_name] (gpus, gpu_model, cpus_per_gpu).

    Use as ``resources: mem_mb=..., runtime=..., **gpu_resources("train")``. The SLURM plugin turns ``gpu`` into
    ``sbatch --gpus=N`` (``--gpus=<model>:N`` with ``gpu_model``) and ``cpus_per_gpu`` into ``--cpus-per-gpu``;
    with gpus 0 nothing is requested and the rule runs on CPUs (``threads``).
    """
    r = config["resources"][rule_name]
    if not r["gpus"]:
        return {}
    out = {"gpu": r["gpus"], "cpus_per_gpu": r["cpus_per_gpu"]}
    if r.get("gpu_model"):
        out["gpu_model"] = r["gpu_model"]
    return out

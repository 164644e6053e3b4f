"""benchmarks/gpu_check.py, its CPU path: the halo-exchange check on two gloo ranks, a short training of the GPU
configuration's settings and the mixed-precision check (skipped on CPU, saying why). The CUDA path is the same code
with NCCL and a CUDA device; it runs where a GPU is lent (docs/training.md, "GPU configuration")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hamforge.graph import build_targets
from hamforge.io import MatrixData, write_targets_file
from test_train import synthetic

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_path(tmp_path):
    data, *_ = synthetic(n=8, cell_len=5.0, r_cut=3.5, seed=5)
    targets = tmp_path / "targets"
    targets.mkdir()
    for q, f in ((0, 1), (0, 2), (1, 1), (3, 1)):  # quench 3 is config.yaml's validation quench
        # distinct structures: training refuses the same data twice (content identity)
        d = MatrixData(**{**data.__dict__, "positions": data.positions + 0.03 * (3 * q + f)})
        write_targets_file(targets / f"q{q}_f{f:05d}.h5", build_targets(d, 3.5), d)
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            str(targets),
            "--device",
            "cpu",
            "--minutes",
            "0.1",
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(ROOT / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    res = {x["check"]: x for x in json.loads((tmp_path / "out" / "gpu_check.json").read_text())}
    assert res["halo"]["backend"] == "gloo" and res["halo"]["ranks"] == 2
    assert res["halo"]["max_abs_diff"] <= 1e-10  # float64 halo exchange == one process
    assert res["training"]["epochs"] >= 1 and res["training"]["val_mae_total_meV"] > 0
    assert "CUDA only" in res["mixed_precision"]["skipped"]

"""The smoke workflow end to end with the real programs: LAMMPS -> decorrelation -> CP2K -> matrix files.

Slow (~2-3 min on 2 cores); runs in CI too. It is the test path that proves the chain works as a user runs it.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl
from _workflow import copy_workflow  # tests/_workflow.py
from hamforge.dft import read_mo_eigenvalues
from hamforge.io import read_matrix_file

pytestmark = [pytest.mark.snakemake, pytest.mark.cp2k, pytest.mark.lammps]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("smoke") / "wf")
    exe = Path(sys.executable).parent / "snakemake"
    res = subprocess.run(
        [str(exe), "--cores", "2", "--configfile", "config/smoke.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return work / "results-smoke" / "a-Si"


@pytest.mark.slow
def test_smoke_workflow_produces_matrices_that_reproduce_cp2k(smoke_run):
    indices = sorted((smoke_run / "index").glob("q*.json"))
    assert [p.name for p in indices] == ["q0.json", "q1.json"]
    index = [json.loads(p.read_text()) for p in indices]
    assert {i["split"] for i in index} == {"train", "test"}  # test_quench: 1 is held out
    for i in index:
        for entry in i["structures"]:
            assert (smoke_run / "index" / entry["targets"]).is_file()
    h5s = sorted((smoke_run / "dft").glob("q*_f*.h5"))
    # n_snapshots: 1 per quench, and the transport device: the test snapshot tiled 3x1x1
    assert len(h5s) == 3 and h5s[2].name == h5s[1].stem + "_3x1x1.h5" and h5s[1].name.startswith("q1_")
    for h5 in h5s:
        data = read_matrix_file(h5)
        n = 192 if h5.stem.endswith("3x1x1") else 64
        assert data.n_atoms == n and data.H.shape == (4 * n, 4 * n)
        assert data.provenance["scf_converged"] and data.provenance["config_hash"]
        mo = read_mo_eigenvalues(h5.with_suffix("") / "cp2k.out")
        eig = sl.eigh(data.H.toarray(), data.S.toarray(), eigvals_only=True)
        # the bound: exactly what CP2K diagonalized, within 1e-8 Ha
        np.testing.assert_allclose(eig[: len(mo)], mo, atol=1e-8, rtol=0)


@pytest.mark.slow
def test_smoke_workflow_logs_benchmarks_and_selection_table(smoke_run):
    results = smoke_run.parent
    for q in (0, 1):
        table = pd.read_csv(smoke_run / "snapshots" / f"q{q}" / "selection.csv")
        assert table["accepted"].sum() == 1
        assert (smoke_run / "snapshots" / f"q{q}" / "selection.png").stat().st_size > 0
        assert (results / "logs" / "a-Si" / "melt_quench" / f"q{q}.log").is_file()
    bench = list((results / "benchmarks" / "a-Si" / "cp2k").glob("*.tsv"))
    assert len(bench) == 3  # two snapshots and the tiled transport device


@pytest.mark.slow
def test_smoke_workflow_targets_rebuild_the_matrices(smoke_run):
    from hamforge.graph import targets_to_matrix
    from hamforge.io import read_targets_file

    for h5 in sorted((smoke_run / "targets").glob("q*_f*.h5")):
        t = read_targets_file(h5)
        data = read_matrix_file(smoke_run / "dft" / h5.name)
        assert t.nl.r_cut == 8.0
        rebuilt = targets_to_matrix(t).tocoo()
        # every block the graph covers comes back exactly (orthogonal coupling, float64)
        assert np.abs(rebuilt.data - data.H.toarray()[rebuilt.row, rebuilt.col]).max() < 1e-12
        # what is missing are the blocks of pairs farther than r_cut, as the coverage report says
        missing = data.H.toarray().copy()
        missing[rebuilt.row, rebuilt.col] = 0.0
        cov = pd.read_csv(h5.with_suffix(".coverage.csv"))
        offsite = data.H.toarray() * (1 - np.kron(np.eye(64), np.ones((4, 4))))
        frac = np.abs(missing).sum() / np.abs(offsite).sum()
        assert np.isclose(frac, cov.fraction_abs_beyond.iloc[0], rtol=1e-9)
        assert 0 < frac < 0.05  # beyond 8 A little of H remains (SZV a-Si)


@pytest.mark.slow
def test_smoke_workflow_trains_and_evaluates_on_the_test_quench(smoke_run):
    from hamforge.model import read_checkpoint

    model_dir = smoke_run / "model"
    ck = read_checkpoint(model_dir / "model.pt")
    assert ck.config.kinds == ("Si",) and ck.config.r_cut == 8.0
    curve = pd.read_csv(model_dir / "metrics.csv")
    assert len(curve) >= 1 and np.isfinite(curve["train_loss"]).all()
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["train_structures"] and all(s.startswith("q0_") for s in summary["train_structures"])
    # the test quench, never trained on (q1_f<frame>_3x1x1 is the transport device, tested below)
    metrics = sorted(p for p in (smoke_run / "validation").glob("q1_*/metrics.json") if "x" not in p.parent.name)
    assert len(metrics) == 1
    m = json.loads(metrics[0].read_text())
    for key in (
        "mae_node_meV",
        "mae_edge_meV",
        "mae_total_meV",
        "mae_edge_Si-Si_meV",
        "eig_rel_l1",
        "eig_rel_l1_occupied",
    ):
        assert np.isfinite(m[key]) and m[key] > 0
    for plot in ("spectra.png", "parity.png", "error_vs_distance.png"):
        assert (metrics[0].parent / plot).read_bytes()[:4] == b"\x89PNG"
    assert (model_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_smoke_workflow_predicts_the_test_structure_and_a_supercell(smoke_run):
    preds = sorted((smoke_run / "predict").glob("q1_*.h5"))
    # predict.tilings, and 3x1x1 for the transport device
    assert [p.name.rsplit("_", 1)[1] for p in preds] == ["1x1x1.h5", "2x1x1.h5", "3x1x1.h5"]
    small, big, device = (read_matrix_file(p, images=True) for p in preds)
    assert small.n_atoms == 64 and big.n_atoms == 128 and device.n_atoms == 192
    for d in (small, big, device):
        assert abs(d.H - d.H.T).max() == 0.0  # symmetrized exactly
        assert d.provenance["min_eigenvalue_S"] > 0


@pytest.mark.slow
def test_smoke_workflow_measures_transport_on_the_elongated_device(smoke_run):
    """The test structure tiled 3x1x1, predicted and computed by CP2K, both cut open along x: T(E), G, I."""
    (out,) = (smoke_run / "validation").glob("q1_f*_3x1x1")
    m = json.loads((out / "metrics.json").read_text())
    # the prediction is cut from its per-image blocks, the CP2K reference from its Gamma-point matrices, which the
    # 32.6 A cell allows (CP2K's SZV matrices couple atoms up to ~12.7 A)
    assert m["transport_routes"] == {"pred": "images", "ref": "gamma"}
    assert m["transport_cell_length_A"] == pytest.approx(3 * 10.862, abs=1e-6)
    assert 2 * m["transport_range_ref_A"] < m["transport_cell_length_A"]
    assert m["transport_layers"] >= 2
    lo, hi = m["transport_window_eV"]
    assert lo == pytest.approx(m["homo_ref_eV"] - 0.5) and hi == pytest.approx(m["lumo_ref_eV"] + 0.5)
    assert np.isfinite(m["transport_log10_max_abs_error"]) and m["transport_log10_max_abs_error"] >= 0
    for k in ("conductance_pred_G0", "conductance_ref_G0", "current_pred_A", "current_ref_A", "current_ratio"):
        assert np.isfinite(m[k]) and m[k] > 0, k
    assert m["conductance_ref_S"] == pytest.approx(m["conductance_ref_G0"] * 7.748091729e-5, rel=1e-9)
    assert m["current_ratio"] == pytest.approx(m["current_pred_A"] / m["current_ref_A"], rel=1e-12)
    assert np.isfinite(m["eig_rel_l1"]) and m["eig_rel_l1"] > 0
    t = pd.read_csv(out / "transmission.csv")
    assert list(t.columns) == ["E_Ha", "E_eV", "T_pred", "T_ref", "in_window"]
    assert (t["T_ref"] > 0).all() and t["in_window"].sum() >= 2
    inside = t[t["in_window"] == 1]
    dlog = np.abs(np.log10(np.maximum(inside["T_pred"], 1e-30)) - np.log10(np.maximum(inside["T_ref"], 1e-30)))
    assert dlog.max() == pytest.approx(m["transport_log10_max_abs_error"], rel=1e-6)
    assert (out / "transmission.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_smoke_workflow_report_builds(smoke_run):
    """Every registered plot (learning curve, spectra, parity, error vs distance) lands in the HTML report."""
    work = smoke_run.parents[1]
    exe = Path(sys.executable).parent / "snakemake"
    res = subprocess.run(
        [str(exe), "--configfile", "config/smoke.yaml", "--report", "report.html"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    for name in ("learning_curve.png", "spectra.png", "parity.png", "transmission.png"):
        assert name in html

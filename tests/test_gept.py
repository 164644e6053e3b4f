"""a-Ge(Pt) with a vacancy as a ghost atom, CI size (config/gept-ci.yaml), with the real LAMMPS and CP2K: through
DFT, targets and training; and every command of docs/howto.md's tested sections, run as written on its results.

Slow: ~2-3 min on 2 cores for the workflow (CP2K ~10 s CPU per 16-atom cell with Pt d shells), ~1 min for the
how-to commands after it. Runs in CI.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sl
from _workflow import copy_workflow  # tests/_workflow.py
from hamforge.dft import read_mo_eigenvalues
from hamforge.io import read_matrix_file, read_targets_file

ROOT = Path(__file__).resolve().parents[1]
HOWTO = ROOT / "docs" / "howto.md"
BIN = Path(sys.executable).parent
MATERIAL = "results-gept-ci/a-GePt"


def howto_commands(text: str) -> list[str]:
    """The indented command lines of the how-to's sections marked ``<!-- tested: tests/test_gept.py ...``, in order."""
    out = []
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        if "<!-- tested: tests/test_gept.py" not in section:
            continue
        out += [ln.strip() for ln in section.splitlines() if ln.startswith("    ") and not ln.startswith("     ")]
    return [c for c in out if c and not c.startswith("<!--")]


def _run(cmd: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    shell = cmd.replace(".venv/bin/", f"{BIN}/")  # the how-to's venv is this test's environment
    return subprocess.run(["bash", "-c", shell], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def gept_run(tmp_path_factory):
    """A copy of the workflow, run with the how-to's first command (the chain up to the trained model)."""
    work = copy_workflow(tmp_path_factory.mktemp("gept") / "wf", keep_docs=True)
    first = howto_commands(HOWTO.read_text())[0]
    assert "config/gept-ci.yaml" in first and first.endswith("model/model.pt")
    res = _run(first, work)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return work


def test_full_size_gept_entry_is_a_valid_config():
    """The full-size a-Ge(Pt) entry of docs/configuration.md passes the workflow's validation (it is not run)."""
    import yaml
    from hamforge.config import validate_config

    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split("## A second material", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = validate_config(yaml.safe_load(block), source="docs/configuration.md")
    mat = cfg["materials"]["a-GePt"]
    assert sorted(mat["dft"]["kinds"]) == ["Ge", "Ge_vac", "Pt"] and mat["md"]["post_quench"]["vacancies"]["count"] == 2


def test_howto_sections_are_found():
    cmds = howto_commands(HOWTO.read_text())
    assert any("--forcerun" in c for c in cmds) and any("--until" in c for c in cmds)
    assert {"parse-cp2k", "targets", "train"} <= {c.split()[1] for c in cmds if c.startswith(".venv/bin/hamforge")}


@pytest.mark.slow
def test_gept_targets_have_pt_d_shells_and_the_ghost(gept_run):
    mat = gept_run / MATERIAL
    targets = sorted((mat / "targets").glob("q*_f*.h5"))
    assert len(targets) == 2  # one snapshot per quench, two quenches
    for path in targets:
        t = read_targets_file(path)
        assert t.kinds == ("Ge", "Ge_vac", "Pt")
        assert t.basis["Pt"].shells == (0, 0, 1, 2) and t.basis["Ge_vac"].shells == t.basis["Ge"].shells == (0, 1)
        assert "4e" in t.pair_layout.irreps  # d x d pair blocks couple up to L = 4
        numbers = dict(zip(t.kinds, [set(t.numbers[t.atom_kind == k].tolist()) for k in range(3)]))
        assert numbers == {"Ge": {32}, "Ge_vac": {0}, "Pt": {78}}  # the ghost: atomic number 0
        assert np.bincount(t.atom_kind).tolist() == [13, 1, 2]  # 16 sites: 2 Pt, 1 vacancy (md.post_quench)


@pytest.mark.slow
def test_gept_parsed_matrices_give_cp2ks_eigenvalues(gept_run):
    for h5 in sorted((gept_run / MATERIAL / "dft").glob("q*_f*.h5")):
        data = read_matrix_file(h5)
        assert data.H.shape == (13 * 4 + 1 * 4 + 2 * 10,) * 2  # Ge, ghost: s+p; Pt: 2s+p+d
        assert data.provenance["scf_converged"] and data.provenance["n_electrons"] == 13 * 4 + 2 * 18
        mo = read_mo_eigenvalues(h5.with_suffix("") / "cp2k.out")
        eig = sl.eigh(data.H.toarray(), data.S.toarray(), eigvals_only=True)
        # the bound: exactly what CP2K diagonalized, within 1e-8 Ha (measured ~5e-13)
        np.testing.assert_allclose(eig[: len(mo)], mo, atol=1e-8, rtol=0)


@pytest.mark.slow
def test_gept_training_wrote_a_model_of_the_three_kinds(gept_run):
    from hamforge.model import read_checkpoint

    model = gept_run / MATERIAL / "model"
    ck = read_checkpoint(model / "model.pt")
    assert ck.config.kinds == ("Ge", "Ge_vac", "Pt") and ck.config.species == (0, 1, 2)
    summary = json.loads((model / "summary.json").read_text())
    assert summary["train_structures"] and all(s.startswith("q0_") for s in summary["train_structures"])
    assert (model / "metrics.csv").read_text().count("\n") >= 2  # header + at least one epoch


@pytest.mark.slow
def test_howto_commands(gept_run):
    """Every command after the first (which the fixture ran) of the how-to's tested sections, in order."""
    targets = sorted((gept_run / MATERIAL / "targets").glob("q*_f*.h5"))
    for cmd in howto_commands(HOWTO.read_text())[1:]:
        before = [p.stat().st_mtime_ns for p in targets]
        res = _run(cmd, gept_run)
        assert res.returncode == 0, f"{cmd}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        rebuilt = all(p.stat().st_mtime_ns > t for p, t in zip(targets, before))
        assert rebuilt == ("--forcerun targets" in cmd), cmd  # only that command rewrites the targets
        out = re.search(r"-o (\S+)", cmd)
        if out:
            assert (gept_run / out.group(1)).exists(), cmd
        if "-n" in cmd.split() and "--forcerun cp2k_input" in cmd:
            assert re.search(r"cp2k\s+2", res.stdout) and re.search(r"train\s+1", res.stdout), res.stdout[-3000:]
        if "-n" in cmd.split() and "--forcerun" not in cmd:  # after --forcerun targets --until targets
            # nothing upstream of the targets is out of date (byte-identical targets: nothing at all, measured)
            assert not re.search(r"^(cp2k|parse_cp2k|targets)\s+\d", res.stdout, flags=re.M), res.stdout[-3000:]
    t = read_targets_file(gept_run / "my_targets.h5")
    assert t.kinds == ("Ge", "Ge_vac", "Pt")
    metrics = json.loads((gept_run / "my_metrics.json").read_text())
    assert np.isfinite(metrics["mae_total_meV"])

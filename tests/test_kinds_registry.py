"""Ghost and absent kinds end to end below the workflow: the material's basis registry (its dft.kinds) fixes the
targets layout, so a structure without atoms of a configured kind still gets targets of the material's layout,
and two ghost kinds (both atomic number 0) stay distinct species of the model."""

from pathlib import Path

import ase.build
import pytest
from hamforge.basis import ElementBasis
from hamforge.cli import main as cli_main
from hamforge.config import load_config
from hamforge.dft import CP2KSettings
from hamforge.graph import build_targets, synthetic_hamiltonian, targets_to_matrix
from hamforge.io import read_targets_file, write_matrix_file
from hamforge.model import ModelConfig
from hamforge.train import make_samples

ROOT = Path(__file__).resolve().parents[1]
GEPT_CI = ROOT / "config" / "gept-ci.yaml"
GE = ElementBasis("Ge", "SZV-MOLOPT-SR-GTH", (0, 1))
PT = ElementBasis("Pt", "SZV-MOLOPT-SR-GTH", (0, 0, 1, 2))
REGISTRY = {"Ge": GE, "Ge_vac": GE, "Pt": PT}


def _matrix_data(kinds, numbers, basis, seed=0):
    at = ase.build.bulk("Ge", "diamond", a=5.658, cubic=True)
    at.rattle(0.05, seed=seed)
    data, *_ = synthetic_hamiltonian(numbers, at.positions, at.cell.array, True, kinds, basis, 4.0, seed=seed)
    return data


@pytest.fixture(scope="module")
def ge_only():
    """An 8-atom structure of Ge only: its matrix file records only the Ge basis (as CP2K's input has)."""
    return _matrix_data(["Ge"] * 8, [32] * 8, {"Ge": GE})


def test_configured_registry_has_every_kind_with_d_shells_and_the_ghost():
    cfg = load_config(GEPT_CI)
    reg = CP2KSettings.from_config(cfg["materials"]["a-GePt"]["dft"]).kind_basis()  # Debian's BASIS_MOLOPT
    assert reg == REGISTRY  # Pt SZV-MOLOPT-SR-GTH: s, s, p, d; the ghost carries Ge's basis


def test_structure_without_a_configured_kind_gets_the_materials_layout(ge_only):
    with pytest.raises(ValueError, match=r"no basis for kind\(s\) \['Ge_vac', 'Pt'\]"):
        build_targets(ge_only, 4.0, kinds=sorted(REGISTRY))  # the old targets rule: kinds without their basis
    t = build_targets(ge_only, 4.0, basis=REGISTRY)
    assert t.kinds == ("Ge", "Ge_vac", "Pt") and set(t.atom_kind.tolist()) == {0}
    assert "2e" in t.pair_layout.irreps and "4e" in t.pair_layout.irreps  # Pt d x d slots exist, unused here
    # the blocks of the kinds present come back exactly (float64 orthogonal coupling)
    assert abs(targets_to_matrix(t) - ge_only.H).max() < 1e-12
    ref = build_targets(_matrix_data(["Ge", "Pt", "Ge_vac"] + ["Ge"] * 5, [32, 78, 0] + [32] * 5, REGISTRY), 4.0)
    assert ModelConfig.from_targets(t) == ModelConfig.from_targets(ref)  # one model for both structures


def test_a_matrix_file_basis_other_than_the_materials_is_refused(ge_only):
    other = {**REGISTRY, "Ge": ElementBasis("Ge", "DZVP-MOLOPT-SR-GTH", (0, 0, 1, 1, 2))}
    with pytest.raises(ValueError, match="kind Ge: the matrix file's basis .* differs from the material's"):
        build_targets(ge_only, 4.0, basis=other)


def test_two_ghost_kinds_stay_distinct_species():
    basis = {**REGISTRY, "Pt_vac": ElementBasis("Pt", "SZV-MOLOPT-SR-GTH", (0, 0, 1, 2))}
    kinds = ["Ge", "Ge_vac", "Pt_vac", "Pt"] + ["Ge"] * 4
    t = build_targets(_matrix_data(kinds, [32, 0, 0, 78] + [32] * 4, basis), 4.0)
    assert t.numbers[1] == t.numbers[2] == 0  # both ghosts have atomic number 0 ...
    cfg = ModelConfig.from_targets(t, l_max=4)
    assert cfg.kinds == ("Ge", "Ge_vac", "Pt", "Pt_vac") and cfg.species == (0, 1, 2, 3)
    sample = make_samples(t, "s")[0]
    assert sample.numbers[1].item() == 1 and sample.numbers[2].item() == 3  # ... but the model sees two species


def test_cli_targets_takes_the_registry_from_a_config(ge_only, tmp_path):
    write_matrix_file(tmp_path / "ge.h5", ge_only)
    out = tmp_path / "ge_targets.h5"
    assert cli_main(["targets", str(tmp_path / "ge.h5"), "--rcut", "4", "--config", str(GEPT_CI), "-o", str(out)]) == 0
    t = read_targets_file(out)
    assert t.kinds == ("Ge", "Ge_vac", "Pt") and dict(t.basis) == REGISTRY
    assert cli_main(["targets", str(tmp_path / "ge.h5"), "--rcut", "4", "-o", str(out)]) == 0  # without: this file's
    assert read_targets_file(out).kinds == ("Ge",)
    bad = ["targets", str(tmp_path / "ge.h5"), "--rcut", "4", "--config", str(GEPT_CI), "--material", "x", "-o", "o"]
    assert cli_main(bad) == 2

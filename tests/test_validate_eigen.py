"""Eigenvalue validation: known spectra, shift-invert vs dense, bad input, real CP2K matrices, CLI."""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.dft import parse_cp2k_run
from hamforge.io import write_matrix_file
from hamforge.io.units import HARTREE_TO_EV
from hamforge.validate import (
    ValidationError,
    add_validate_parsers,
    check_matrices,
    check_positive_definite,
    count_below,
    find_gap_energy,
    gaussian_dos,
    generalized_spectrum,
    spectrum_metrics,
    validate_pair,
)

DATA = Path(__file__).parent / "data" / "cp2k"
N_OCC_HFO2 = 48  # cp2k.out: "Number of occupied orbitals: 48" (96 valence electrons)


def known_pair(n, seed=0, gap_at=None):
    """Sparse (H, S) with prescribed generalized eigenvalues: S = X^T X, H = X^T diag(lam) X, X banded."""
    rng = np.random.default_rng(seed)
    lam = np.sort(rng.uniform(-1.0, 1.0, n))
    if gap_at is not None:
        lam[gap_at:] += 0.5  # a 0.5 Ha gap above state gap_at - 1
    x = sp.eye(n) + sp.diags([0.2 * rng.uniform(-1, 1, n - 1), 0.1 * rng.uniform(-1, 1, n - 2)], [1, 2])
    x = sp.csr_matrix(x)
    s = (x.T @ x).tocsr()
    h = (x.T @ sp.diags(lam) @ x).tocsr()
    return h, s, lam


def test_dense_spectrum_is_the_known_one():
    h, s, lam = known_pair(300)
    spec = generalized_spectrum(h, s)
    assert spec.method == "dense" and spec.is_complete
    # X is well conditioned (cond ~ 2): eigh reproduces prescribed eigenvalues to ~1e-14
    np.testing.assert_allclose(spec.energies, lam, rtol=0, atol=1e-12)


def test_shift_invert_equals_dense_on_shared_states():
    n, n_occ = 800, 400
    h, s, lam = known_pair(n, seed=1, gap_at=n_occ)
    chk = check_matrices(h, s, "pair", dense_limit=100)  # sparse-LU positive-definiteness path
    sigma = find_gap_energy(h, s, n_occ, chk.s_min)
    assert lam[n_occ - 1] < sigma < lam[n_occ] and count_below(h, s, sigma) == n_occ
    win = generalized_spectrum(h, s, dense_limit=100, k=40, sigma=sigma)
    dense = generalized_spectrum(h, s, dense_limit=n)
    assert win.method == "shift-invert" and len(win.energies) == 40
    # indices from the inertia of H - sigma S select exactly these dense states; Lanczos converges to ~1e-12
    np.testing.assert_allclose(win.energies, dense.energies[win.index], rtol=0, atol=1e-10)
    assert win.index[0] < n_occ <= win.index[-1]
    m = spectrum_metrics(win, dense, n_occ)
    assert m["n_states_compared"] == 40 and m["eig_rel_l1"] < 1e-10
    assert m["gap_ref_eV"] == pytest.approx((lam[n_occ] - lam[n_occ - 1]) * HARTREE_TO_EV, abs=1e-8)


def test_metrics_definitions_on_a_rigid_shift():
    h, s, lam = known_pair(200, seed=2, gap_at=100)
    c = 1e-3
    ref = generalized_spectrum(h, s)
    pred = generalized_spectrum((h + c * s).tocsr(), s)  # H + c S shifts every eigenvalue by exactly c
    m = spectrum_metrics(pred, ref, 100)
    np.testing.assert_allclose(m["eig_rel_l1"], 200 * c / np.sum(np.abs(lam)), rtol=1e-9)
    np.testing.assert_allclose(m["eig_rel_l2"], np.sqrt(200) * c / np.linalg.norm(lam), rtol=1e-9)
    np.testing.assert_allclose(m["eig_rel_l1_occupied"], 100 * c / np.sum(np.abs(lam[:100])), rtol=1e-9)
    for key in ("homo_shift_meV", "lumo_shift_meV", "fermi_shift_meV", "eig_mae_meV"):
        assert m[key] == pytest.approx(c * HARTREE_TO_EV * 1000, rel=1e-8)
    assert abs(m["gap_error_meV"]) < 1e-8


def test_dos_integrates_to_the_number_of_states():
    e = np.array([-0.1, 0.0, 0.0, 0.2])
    grid = np.linspace(-1, 1, 20001)
    assert np.trapezoid(gaussian_dos(e, grid, 0.01), grid) == pytest.approx(4.0, rel=1e-9)


def test_bad_input_gives_clear_errors():
    h, s, _ = known_pair(50)
    bad_h = h.tolil()
    bad_h[0, 1] += 1e-3
    with pytest.raises(ValidationError, match=r"pred\.h5: H is not symmetric"):
        check_matrices(bad_h, s, "pred.h5")
    lam_min = np.linalg.eigvalsh(s.toarray())[0]
    indefinite = (s - (lam_min + 1e-3) * sp.eye(50)).tocsr()
    for limit in (5000, 10):  # the dense path and the Lanczos path
        with pytest.raises(ValidationError, match=r"ref\.h5: S is not positive definite"):
            check_positive_definite(indefinite, "ref.h5", dense_limit=limit)
    assert check_positive_definite(s, "ok", dense_limit=10) == pytest.approx(lam_min, rel=1e-10)
    with pytest.raises(ValidationError, match="not square"):
        check_matrices(np.ones((2, 3)), np.eye(2), "x.h5")
    with pytest.raises(ValidationError, match="shift-invert needs a shift"):
        generalized_spectrum(h, s, dense_limit=10)


@pytest.fixture(scope="module")
def hfo2():
    return parse_cp2k_run(DATA / "hfo2_szv")


def _perturbed(data, delta, seed=0):
    """Same structure, H + delta * (symmetric random matrix on H's sparsity pattern)."""
    rng = np.random.default_rng(seed)
    noise = data.H.copy()
    noise.data = rng.uniform(-1, 1, noise.nnz)
    noise = (0.5 * (noise + noise.T)).tocsr()
    return dataclasses.replace(data, H=(data.H + delta * noise).tocsr()), noise


def test_cp2k_identical_and_perturbed(tmp_path, hfo2):
    ref = tmp_path / "ref.h5"
    write_matrix_file(ref, hfo2)
    same = validate_pair(ref, ref, tmp_path / "same", n_occupied=N_OCC_HFO2, plots=False)
    assert same["eig_rel_l1"] == 0.0 and same["eig_rel_l1_occupied"] == 0.0 and same["mae_total_meV"] == 0.0
    delta = 1e-4  # Ha
    pert, noise = _perturbed(hfo2, delta)
    pred = tmp_path / "pred.h5"
    write_matrix_file(pred, pert)
    m = validate_pair(pred, ref, tmp_path / "out", n_occupied=N_OCC_HFO2)
    # Weyl-type bound for H x = e S x: |de_i| <= ||dH||_2 / lambda_min(S)
    bound = delta * np.linalg.norm(noise.toarray(), 2) / m["s_min_ref"]
    assert 0 < m["eig_max_abs_error_meV"] <= bound * HARTREE_TO_EV * 1000
    e_ref = np.loadtxt(tmp_path / "out" / "eigenvalues.csv", delimiter=",", skiprows=1)[:, 1]
    assert 0 < m["eig_rel_l1"] <= bound * e_ref.size / np.sum(np.abs(e_ref))
    # uniform noise on the stored elements: mean |dH| = delta / 2 on the diagonal, less after symmetrizing off it
    assert 0.2 * delta * 27211.386 < m["mae_total_meV"] < 0.5 * delta * 27211.386
    assert m["n_states_compared"] == hfo2.H.shape[0] and m["gap_ref_eV"] > 1.0  # HfO2: a wide-gap insulator
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"eig_rel_l1", "eig_rel_l1_occupied", "mae_node_meV", "mae_edge_meV", "mae_total_meV"} <= set(written)
    for png in ("parity.png", "error_vs_distance.png", "spectra.png"):
        assert (tmp_path / "out" / png).stat().st_size > 1000


def test_cp2k_shift_invert_window_matches_dense(hfo2):
    h, s = hfo2.H, hfo2.S
    chk = check_matrices(h, s, "hfo2", dense_limit=10)
    win = generalized_spectrum(h, s, dense_limit=10, k=12, sigma=find_gap_energy(h, s, N_OCC_HFO2, chk.s_min))
    dense = generalized_spectrum(h, s)
    np.testing.assert_allclose(win.energies, dense.energies[win.index], rtol=0, atol=1e-10)
    assert win.index[0] < N_OCC_HFO2 <= win.index[-1]


def test_eigen_cli_and_file_errors(tmp_path, hfo2):
    import dataclasses

    ref, other = tmp_path / "ref.h5", tmp_path / "other.h5"
    assert hfo2.provenance["n_electrons"] == 96  # the parser records CP2K's "Number of electrons"
    no_count = {k: v for k, v in hfo2.provenance.items() if k != "n_electrons"}
    write_matrix_file(ref, dataclasses.replace(hfo2, provenance=no_count))
    ap = argparse.ArgumentParser()
    add_validate_parsers(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["eigen", str(ref), str(ref), "-o", str(tmp_path / "m" / "x.json"), "--no-plots"])
    with pytest.raises(ValidationError, match=r"ref\.h5: n_occupied"):
        args.func(args)  # without the electron count in the provenance, --n-occupied is required
    args = ap.parse_args(["eigen", str(ref), str(ref), "-o", str(tmp_path / "m" / "x.json"), "--n-occupied", "48"])
    assert args.func(args) == 0
    assert json.loads((tmp_path / "m" / "x.json").read_text())["eig_rel_l1"] == 0.0
    assert (tmp_path / "m" / "spectra.png").is_file()
    moved = hfo2.positions.copy()
    moved[0, 0] += 0.1
    write_matrix_file(other, dataclasses.replace(hfo2, positions=moved))
    with pytest.raises(ValidationError, match="positions differ by up to 0.1 A"):
        validate_pair(other, ref, tmp_path / "x", n_occupied=48)
    lil = hfo2.H.tolil()
    lil[0, 5] += 0.01
    write_matrix_file(other, dataclasses.replace(hfo2, H=lil.tocsr()))
    with pytest.raises(ValidationError, match=r"other\.h5: H is not symmetric"):
        validate_pair(other, ref, tmp_path / "x", n_occupied=48)


@pytest.mark.parametrize("guess", [None, -50.0, 50.0])
def test_gap_search_takes_few_factorizations(monkeypatch, guess):
    """The targeted search reads the states around each shift from the same LU: at most 4 factorizations from
    the default guess (bisection from the Rayleigh bound: 12 on this spectrum, whose "gap" is an ordinary level
    spacing of ~2.5 mHa), and it still lands in the gap from a guess far outside the spectrum."""
    from hamforge.validate import _spectrum

    n, n_occ = 800, 300
    h, s, lam = known_pair(n, seed=4)
    chk = check_matrices(h, s, "pair", dense_limit=100)
    calls = []
    real = _spectrum._factorize
    monkeypatch.setattr(_spectrum, "_factorize", lambda *a: calls.append(a[2]) or real(*a))
    sigma = find_gap_energy(h, s, n_occ, chk.s_min, guess=guess)
    assert lam[n_occ - 1] < sigma < lam[n_occ]
    assert len(calls) <= (4 if guess is None else 12), calls

"""NEGF transport: RGF against dense inversion, perfect wires, Landauer current, layering errors, CLI.

The independent solver (kwant) is in test_validate_kwant.py; here the references are a dense inversion of the
same finite device with the same self-energies, the band structure of perfect wires and G0 * V.
"""

import argparse
import itertools
import json

import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.basis import ElementBasis
from hamforge.io import MatrixData, write_matrix_file
from hamforge.io.units import HARTREE_TO_EV
from hamforge.validate import (
    G0_SIEMENS,
    LeadBlocks,
    SurfaceGreenError,
    TransportError,
    TransportSetup,
    add_validate_parsers,
    landauer_current,
    layered_device,
    leads_from_device,
    run_transport,
    self_energies,
    surface_green,
    transmission,
    transport_setup,
)


def sym(a):
    return 0.5 * (a + a.T)


def random_lead(rng, n, overlap=True, hop=0.6):
    h00 = sym(rng.normal(size=(n, n)))
    h01 = hop * rng.normal(size=(n, n))
    if overlap:
        s00 = np.eye(n) + 0.1 * sym(rng.normal(size=(n, n)))
        s01 = 0.05 * rng.normal(size=(n, n))
    else:
        s00, s01 = np.eye(n), np.zeros((n, n))
    return LeadBlocks(h00, s00, h01, s01)


def tridiagonal(diag_h, diag_s, up_h, up_s):
    """Dense block-tridiagonal H, S from lists of blocks."""
    sizes = [d.shape[0] for d in diag_h]
    off = np.concatenate([[0], np.cumsum(sizes)])
    n = off[-1]
    h, s = np.zeros((n, n)), np.zeros((n, n))
    for i, (dh, ds) in enumerate(zip(diag_h, diag_s)):
        h[off[i] : off[i + 1], off[i] : off[i + 1]] = dh
        s[off[i] : off[i + 1], off[i] : off[i + 1]] = ds
    for i, (uh, us) in enumerate(zip(up_h, up_s)):
        h[off[i] : off[i + 1], off[i + 1] : off[i + 2]] = uh
        h[off[i + 1] : off[i + 2], off[i] : off[i + 1]] = uh.T
        s[off[i] : off[i + 1], off[i + 1] : off[i + 2]] = us
        s[off[i + 1] : off[i + 2], off[i] : off[i + 1]] = us.T
    return h, s, off


def random_device(rng, sizes, overlap=True):
    diag_h = [sym(rng.normal(size=(m, m))) for m in sizes]
    diag_s = [np.eye(m) + (0.1 * sym(rng.normal(size=(m, m))) if overlap else 0) for m in sizes]
    up_h = [0.6 * rng.normal(size=(a, b)) for a, b in itertools.pairwise(sizes)]
    up_s = [(0.05 * rng.normal(size=(a, b)) if overlap else np.zeros((a, b))) for a, b in itertools.pairwise(sizes)]
    return tridiagonal(diag_h, diag_s, up_h, up_s)


def wire(lead: LeadBlocks, n_cells: int):
    """Dense H, S of n_cells copies of a lead cell; atom coordinates (one atom per cell at x = cell index)."""
    c = n_cells
    h, s, _off = tridiagonal([lead.H00] * c, [lead.S00] * c, [lead.H01] * (c - 1), [lead.S01] * (c - 1))
    return h, s, np.arange(c, dtype=float), np.repeat(np.arange(c), lead.n)


def band_channels(lead: LeadBlocks, energies, nk=4001):
    """Right-moving channels at each energy from the band structure (half the number of E(k) = E solutions),
    and the distance of each energy from the nearest band extremum or kink."""
    import scipy.linalg as sl

    k = np.linspace(-np.pi, np.pi, nk, endpoint=False)
    bands = np.array(
        [
            sl.eigh(
                lead.H00 + lead.H01 * np.exp(1j * q) + lead.H01.T * np.exp(-1j * q),
                lead.S00 + lead.S01 * np.exp(1j * q) + lead.S01.T * np.exp(-1j * q),
                eigvals_only=True,
            )
            for q in k
        ]
    )  # (nk, n)
    nxt = np.roll(bands, -1, axis=0)
    prv = np.roll(bands, 1, axis=0)
    ext = bands[((bands - nxt) * (bands - prv)) >= 0]  # local extrema of each sorted band
    e = np.asarray(energies)[:, None, None]
    crossings = np.count_nonzero((bands[None] - e) * (nxt[None] - e) < 0, axis=(1, 2))
    dist = np.min(np.abs(np.asarray(energies)[:, None] - ext[None, :]), axis=1)
    return crossings / 2.0, dist


def dense_transmission(h, s, order, bounds, energies, eta, sig_l, sig_r):
    """T by inverting the whole device matrix (in the caller's orbital order) with the same self-energies."""
    n0 = bounds[1] - bounds[0]
    first, last = order[:n0], order[bounds[-2] :]
    out = []
    for k, e in enumerate(energies):
        a = (e + 1j * eta) * s - h
        a[np.ix_(first, first)] -= sig_l[k]
        a[np.ix_(last, last)] -= sig_r[k]
        g = np.linalg.inv(a)
        gl = 1j * (sig_l[k] - sig_l[k].conj().T)
        gr = 1j * (sig_r[k] - sig_r[k].conj().T)
        g1n = g[np.ix_(first, last)]
        out.append(np.trace(gl @ g1n @ gr @ g1n.conj().T).real)
    return np.array(out)


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("wide_band", [None, 0.3])
def test_rgf_equals_dense_inversion(overlap, wide_band):
    rng = np.random.default_rng(3)
    sizes = [3, 4, 2, 5, 3]
    h, s, off = random_device(rng, sizes, overlap)
    # one orbital per "atom"; coordinates inside each layer's slab [l, l+1) of thickness 1 A (slabs start at
    # the smallest coordinate, so put one atom at 0)
    coord = np.repeat(np.arange(len(sizes)), sizes) + rng.uniform(0, 0.9, off[-1])
    coord[0] = 0.0
    perm = rng.permutation(off[-1])  # hand the matrices over in a scrambled orbital order
    hs, ss, cs = h[np.ix_(perm, perm)], s[np.ix_(perm, perm)], coord[perm]
    dev = layered_device(sp.csr_matrix(hs), sp.csr_matrix(ss), cs, np.arange(off[-1]), thickness=1.0)
    assert dev.layer_sizes.tolist() == sizes
    left, right = random_lead(rng, 3, overlap), random_lead(rng, 3, overlap)
    energies = np.linspace(-2.5, 2.5, 23)
    eta = 1e-7
    res = transmission(dev, energies, eta, left, right, wide_band=wide_band)
    sig_l, sig_r = self_energies(dev, energies, eta, left, right, wide_band)
    ref = dense_transmission(hs, ss, dev.order, dev.bounds, energies, eta, sig_l, sig_r)
    # same self-energies, same finite matrix: only round-off differs (T = O(1), cond(A) <~ 1e4)
    np.testing.assert_allclose(res.transmission, ref, rtol=0, atol=1e-10)
    assert np.all(res.transmission > -1e-12) and np.ptp(res.transmission) > 0.1


def test_single_layer_device_and_batch_chunking_agree():
    rng = np.random.default_rng(5)
    lead = random_lead(rng, 2)
    h, s, coord, atom = wire(lead, 3)
    dev = layered_device(sp.csr_matrix(h), sp.csr_matrix(s), coord, atom, thickness=1.0)
    e = np.linspace(-2, 2, 9)
    full = transmission(dev, e, 1e-8, lead, lead).transmission
    one_by_one = np.array([transmission(dev, [x], 1e-8, lead, lead).transmission[0] for x in e])
    np.testing.assert_allclose(full, one_by_one, rtol=0, atol=1e-12)  # batching must not change results


@pytest.mark.parametrize("overlap", [False, True])
def test_perfect_wire_has_integer_transmission_in_its_bands(overlap):
    rng = np.random.default_rng(11)
    lead = random_lead(rng, 3, overlap)
    h, s, coord, atom = wire(lead, 6)
    dev = layered_device(sp.csr_matrix(h), sp.csr_matrix(s), coord, atom)
    assert dev.n_layers == 6 and dev.thickness == pytest.approx(1.0)
    left, right = leads_from_device(dev)
    energies = np.linspace(-4, 4, 161)
    channels, dist = band_channels(lead, energies)
    ok = dist > 0.02  # away from band extrema, where the group velocity (and the error O(eta / v)) is fine
    res = transmission(dev, energies[ok], 1e-11, left, right)
    # T = number of right-moving bands; eta acts as an absorption, error ~ 2 eta L / v: 1e-8 at eta = 1e-10 Ha
    # for the slowest modes here (v ~ 0.1 Ha per cell, L = 6 cells), so eta = 1e-11
    np.testing.assert_allclose(res.transmission, channels[ok], rtol=0, atol=1e-8)
    assert set(np.round(channels[ok]).astype(int)) >= {0, 1, 2}  # several channel counts exercised


def test_surface_green_falls_back_and_fails_loudly():
    rng = np.random.default_rng(2)
    lead = random_lead(rng, 2)
    e = np.linspace(-1, 1, 5)
    g = surface_green(e, lead, "right", 1e-6)
    assert np.all(np.isfinite(g))
    # decimation cut short: mode matching solves every energy, the same g
    np.testing.assert_allclose(surface_green(e, lead, "right", 1e-6, max_iter=3), g, rtol=0, atol=1e-8 * abs(g).max())
    # an equation nothing can meet: an error naming the energy and both methods, or NaN + the reason
    with pytest.raises(SurfaceGreenError, match="not solved at 5 energies.*decimation.*mode matching"):
        surface_green(e, lead, "right", 1e-6, residual_tol=0.0)
    why = {}
    g_bad = surface_green(e, lead, "left", 1e-6, residual_tol=0.0, failures=why)
    assert np.isnan(g_bad).all() and sorted(why) == pytest.approx(e.tolist()) and "left lead" in why[e[0]]
    with pytest.raises(TransportError, match="eta must be > 0"):
        surface_green(e, lead, "left", 0.0)


def test_landauer_current_of_one_open_channel_is_g0_v():
    e = np.linspace(-0.2, 0.2, 41)
    t = np.ones_like(e)
    biases = [0.0, 0.1, 0.5, -0.5]
    i = landauer_current(e, t, biases, mu=0.0, temperature=300.0)
    # exact: integral of f_L - f_R over all E is V (in eV); the grid holds the window to exp(-40)
    np.testing.assert_allclose(i, G0_SIEMENS * np.array(biases), rtol=1e-9, atol=0)
    assert G0_SIEMENS == pytest.approx(7.748091729e-5, rel=1e-9)
    with pytest.raises(TransportError, match="does not cover the bias window"):
        landauer_current(e, t, [20.0], mu=0.0)


def test_current_converged_in_energy_step():
    rng = np.random.default_rng(7)
    lead = random_lead(rng, 2)
    h, s, _off = random_device(rng, [2, 2, 2, 2, 2, 2])
    h[:2, :2], s[:2, :2], h[-2:, -2:], s[-2:, -2:] = lead.H00, lead.S00, lead.H00, lead.S00
    coord = np.repeat(np.arange(6), 2).astype(float)
    dev = layered_device(sp.csr_matrix(h), sp.csr_matrix(s), coord, np.arange(12), thickness=1.0)
    st = TransportSetup(dev, lead, lead, axis=0)
    mu = -1.5  # inside the lead's lowest band (one channel from -2.7 to -0.7 Ha), device T ~ 0.02
    energies = np.linspace(mu - 0.06, mu + 0.06, 121)  # step 1e-3 Ha = 27 meV
    res = run_transport(st, energies, eta=1e-7, biases=[0.2, 0.5, 1.0], mu=mu, temperature=300.0)
    assert np.all(np.abs(res.current) > 0)
    # halving the energy step changes I by < 1% (the criterion); eta x10 changes it far less
    assert res.convergence["current_rel_change_half_step"] < 0.01
    assert res.convergence["current_rel_change_eta_x10"] < 1e-4


def _chain_file(path, n_atoms, *, pbc=False, seed=0, spacing=2.0, second=False):
    """Matrix file of a linear chain of 'H' atoms (s + p shells, 4 orbitals) along x, nearest neighbours coupled."""
    rng = np.random.default_rng(seed)
    lead = random_lead(rng, 4)
    c = n_atoms
    h, s, _ = tridiagonal([lead.H00] * c, [lead.S00] * c, [lead.H01] * (c - 1), [lead.S01] * (c - 1))
    if pbc:  # wrap-around coupling, as a Gamma-point matrix of a periodic chain would have
        h[:4, -4:], h[-4:, :4] = lead.H01.T, lead.H01
    if second:  # weak second-neighbour coupling: interaction range 2 spacings
        for i in range(c - 2):
            h[4 * i : 4 * i + 4, 4 * i + 8 : 4 * i + 12] = 0.01
            h[4 * i + 8 : 4 * i + 12, 4 * i : 4 * i + 4] = 0.01
    pos = np.zeros((c, 3))
    pos[:, 0] = spacing * np.arange(c)
    data = MatrixData(
        numbers=np.ones(c, dtype=np.int64),
        positions=pos,
        cell=np.diag([spacing * c, 10.0, 10.0]),
        pbc=np.array([pbc, False, False]),
        kinds=np.array(["H"] * c, dtype=object),
        basis={"H": ElementBasis("H", "test-sp", (0, 1))},
        H=sp.csr_matrix(h),
        S=sp.csr_matrix(s),
        provenance={"source": "test"},
    )
    write_matrix_file(path, data)
    return data, lead


def test_transport_setup_errors(tmp_path):
    data, lead = _chain_file(tmp_path / "p.h5", 5, pbc=True)
    open_chain, _ = _chain_file(tmp_path / "o.h5", 5)
    # periodic along x: the Gamma-point matrix is cut open (cell 10 A > 2 x range 2 A); the wrap-around coupling
    # goes and the device is the open chain, with leads as given
    st = transport_setup(data, "x", leads=(lead, lead), thickness=2.0, source="p.h5")
    ref = transport_setup(open_chain, "x", leads=(lead, lead), thickness=2.0, source="o.h5")
    assert st.route == "gamma" and ref.route == "open"
    for a, b in zip(st.device.H_diag + st.device.H_up, ref.device.H_diag + ref.device.H_up):
        np.testing.assert_array_equal(a, b)
    # 4 atoms with second neighbours: range 4 A = half the 8 A cell, a pair may couple through two images
    short_ring, _ = _chain_file(tmp_path / "r.h5", 4, pbc=True, second=True)
    with pytest.raises(TransportError, match="r.h5: cannot cut the Gamma-point matrices open .* 4.000 A"):
        transport_setup(short_ring, "x", source="r.h5")
    # 8 A slabs [0, 8) and [8, ..): 4 atoms (16 orbitals) and 1; the 4-orbital leads do not fit
    with pytest.raises(TransportError, match="left lead has 4 orbitals per cell but the device's end layer has 16"):
        transport_setup(open_chain, "x", leads=(lead, lead), thickness=8.0, source="o.h5")
    short, _ = _chain_file(tmp_path / "s.h5", 1)
    with pytest.raises(TransportError, match="structure too short"):
        transport_setup(short, "x", source="s.h5")
    ok, _ = _chain_file(tmp_path / "ok.h5", 6, second=True)
    with pytest.raises(TransportError, match="thinner than the interaction range 4.000 A"):
        transport_setup(ok, "x", thickness=2.0, source="ok.h5")
    assert transport_setup(ok, "x").device.layer_sizes.tolist() == [8, 8, 8]  # default: thickness = range
    with pytest.raises(TransportError, match="axis must be"):
        transport_setup(ok, "w")


def test_transport_cli_writes_outputs(tmp_path):
    _chain_file(tmp_path / "chain.h5", 6)
    _chain_file(tmp_path / "ref.h5", 6)
    ap = argparse.ArgumentParser()
    add_validate_parsers(ap.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = ap.parse_args(
        ["transport", str(tmp_path / "chain.h5"), str(tmp_path / "ref.h5"), "--axis", "x", "--emin", "-30",
         "--emax", "30", "--ne", "61", "--eta", "1e-5", "--bias", "0.5", "1.0", "--out-dir", str(out)]
    )  # fmt: skip
    assert args.func(args) == 0
    m = json.loads((out / "transport.json").read_text())
    assert m["current_rel_error_max"] == 0.0 and m["transmission_log10_mae"] == 0.0  # same file twice
    t = np.loadtxt(out / "transmission.csv", delimiter=",", skiprows=1)
    assert t.shape == (61, 4)
    np.testing.assert_allclose(t[:, 1], t[:, 0] * HARTREE_TO_EV)
    assert (out / "current.csv").is_file() and (out / "transmission.png").stat().st_size > 1000
    assert len(m["current_A"]) == 2 and m["current_A"][1] > m["current_A"][0] > 0


def test_wide_band_transmission_from_one_eigendecomposition_equals_the_rgf(monkeypatch):
    """Wide-band contacts: run_transport takes T(E) at every energy (grid, half step, 10 eta) from one
    eigendecomposition (hamforge.validate._spectral); it equals the RGF to 1e-10 (measured ~1e-13), the transport
    metrics say which method ran, and a spectral result that misses the RGF at the check energies is replaced."""
    from hamforge.validate import _spectral
    from hamforge.validate._transport import TransportSetup

    rng = np.random.default_rng(5)
    h, s, _ = random_device(rng, [5, 7, 6, 5])
    coord = np.repeat(np.arange(4, dtype=float), [5, 7, 6, 5])
    dev = layered_device(sp.csr_matrix(h), sp.csr_matrix(s), coord, np.arange(23))
    setup = TransportSetup(dev, None, None, 0, wide_band=0.3)
    e = np.linspace(-3, 3, 41)
    res = run_transport(setup, e, eta=1e-6, biases=[0.5], mu=0.0)
    rgf = transmission(dev, e, 1e-6, wide_band=0.3).transmission
    assert res.convergence["transmission_method"] == "spectral"
    np.testing.assert_allclose(res.transmission, rgf, rtol=0, atol=1e-10)
    monkeypatch.setattr(_spectral, "CHECK_TOL", -1.0)  # nothing passes the check: the RGF everywhere
    again = run_transport(setup, e, eta=1e-6, biases=[0.5], mu=0.0)
    assert again.convergence["transmission_method"] == "rgf"
    np.testing.assert_allclose(again.transmission, rgf, rtol=0, atol=1e-12)

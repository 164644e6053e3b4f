"""Semi-infinite leads at every energy of a band (hamforge.validate._surface): analytic T(E) of chains
(orthogonal and with overlap), a two-leg ladder and a chain with one impurity, with end-layer leads, on uniform
grids centred on the band, which hit the energies where decimation divides by a (nearly) singular block (the band
centre, E(k = pi/2) of an orthogonal chain). Every energy must be solved; |T - T_exact| < 1e-3 away from the band
edges (within 2% of the bandwidth of an edge the error O(eta / v) of the vanishing group velocity v is larger).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hamforge.validate import layered_device, leads_from_device, transmission

EPS, T_HOP = -0.1, -0.05  # Hartree
ETA = 1e-9


def _device(h_cell, s_cell, h_hop, s_hop, n_cells, impurity=None):
    """Dense-built sparse H, S of ``n_cells`` cells in a row (atoms of a cell share the coordinate)."""
    m = h_cell.shape[0]
    h = (
        sp.kron(sp.identity(n_cells), h_cell)
        + sp.kron(sp.eye(n_cells, k=1), h_hop)
        + sp.kron(sp.eye(n_cells, k=-1), h_hop.T)
    )
    s = (
        sp.kron(sp.identity(n_cells), s_cell)
        + sp.kron(sp.eye(n_cells, k=1), s_hop)
        + sp.kron(sp.eye(n_cells, k=-1), s_hop.T)
    )
    h = sp.lil_matrix(h)
    if impurity is not None:
        c = n_cells // 2
        h[c * m, c * m] += impurity
    coord = np.repeat(np.arange(n_cells, dtype=float), m)
    atom = np.arange(n_cells * m)
    return layered_device(sp.csr_matrix(h), sp.csr_matrix(s), coord, atom)


def _solve(dev, energies):
    left, right = leads_from_device(dev)
    res = transmission(dev, energies, ETA, left, right)
    assert not res.failures and np.all(np.isfinite(res.transmission)), res.failures  # every energy solved
    return res.transmission


def _grid(lo, hi):
    """401 points centred on the band [lo, hi], 20% wider; the centre and the quarter points are on it."""
    c, w = 0.5 * (lo + hi), 0.6 * (hi - lo)
    return np.linspace(c - w, c + w, 401)


def _away(e, edges, width):
    return np.min(np.abs(e[:, None] - np.asarray(edges)[None]), axis=1) > 0.02 * width


@pytest.mark.parametrize("s_hop", [0.0, 0.1])
def test_chain_transmits_one_channel_inside_its_band(s_hop):
    one = np.ones((1, 1))
    dev = _device(EPS * one, one, T_HOP * one, s_hop * one, 8)
    # E(k) = (eps + 2 t cos k) / (1 + 2 s cos k): band edges at k = 0 and pi
    edges = sorted([(EPS + 2 * T_HOP) / (1 + 2 * s_hop), (EPS - 2 * T_HOP) / (1 - 2 * s_hop)])
    e = np.union1d(_grid(*edges), [EPS])  # E = eps: M00 = z S00 - H00 = i eta, singular to decimation
    t = _solve(dev, e)
    exact = ((e > edges[0]) & (e < edges[1])).astype(float)
    ok = _away(e, edges, edges[1] - edges[0])
    assert np.max(np.abs(t - exact)[ok]) < 1e-3


def test_two_leg_ladder_counts_its_open_bands():
    t_perp = -0.03
    h_cell = np.array([[EPS, t_perp], [t_perp, EPS]])
    dev = _device(h_cell, np.eye(2), T_HOP * np.eye(2), np.zeros((2, 2)), 6)
    bands = [(EPS + sgn * t_perp - 2 * abs(T_HOP), EPS + sgn * t_perp + 2 * abs(T_HOP)) for sgn in (-1, 1)]
    lo, hi = min(b[0] for b in bands), max(b[1] for b in bands)
    e = _grid(lo, hi)
    t = _solve(dev, e)
    exact = sum(((e > a) & (e < b)).astype(float) for a, b in bands)
    ok = _away(e, [x for b in bands for x in b], hi - lo)
    assert set(np.unique(exact[ok])) == {0.0, 1.0, 2.0}
    assert np.max(np.abs(t - exact)[ok]) < 1e-3


def test_chain_with_one_impurity_matches_the_analytic_transmission():
    one, delta = np.ones((1, 1)), 0.02
    dev = _device(EPS * one, one, T_HOP * one, 0 * one, 9, impurity=delta)
    edges = [EPS - 2 * abs(T_HOP), EPS + 2 * abs(T_HOP)]
    e = _grid(*edges)
    assert np.any(e == EPS)  # the band centre, where the lead's on-site block is i eta
    t = _solve(dev, e)
    inside = (e > edges[0]) & (e < edges[1])
    cos_k = np.clip((e - EPS) / (2 * T_HOP), -1, 1)
    sin2 = 1 - cos_k**2
    exact = np.where(inside, 4 * T_HOP**2 * sin2 / (4 * T_HOP**2 * sin2 + delta**2), 0.0)
    ok = _away(e, edges, edges[1] - edges[0])
    assert np.max(np.abs(t - exact)[ok]) < 1e-3


def test_an_unsolved_energy_is_reported_and_the_others_go_on(monkeypatch):
    from hamforge.validate import _surface
    from hamforge.validate._transport import TransportSetup, run_transport

    one = np.ones((1, 1))
    dev = _device(EPS * one, one, T_HOP * one, 0 * one, 6)
    left, right = leads_from_device(dev)
    e = np.linspace(EPS - 0.05, EPS + 0.05, 11)
    decimate, modes = _surface._decimate, _surface.surface_green_modes

    def broken_decimate(m00, m01, m10, side, max_iter):
        g, ok = decimate(m00, m01, m10, side, max_iter)
        return g, ok & ~np.isclose(m00[:, 0, 0].real, 0.0)  # "not converged" at E = eps

    def broken_modes(m00, m01, m10, side):
        if np.isclose(m00[0, 0].real, 0.0):
            raise np.linalg.LinAlgError("singular matrix")
        return modes(m00, m01, m10, side)

    monkeypatch.setattr(_surface, "_decimate", broken_decimate)
    monkeypatch.setattr(_surface, "surface_green_modes", broken_modes)
    setup = TransportSetup(dev, left, right, 0)
    res = run_transport(setup, e, eta=ETA, biases=[0.5], mu=EPS, temperature=300.0)
    bad = np.isclose(e, EPS)
    assert np.isnan(res.transmission[bad]).all() and np.allclose(res.transmission[~bad], 1.0, atol=1e-3)
    skipped = res.convergence["skipped_energies"]
    assert len(skipped) == 2 and all("singular matrix" in v for v in skipped.values())  # eta and 10 eta runs
    assert np.isfinite(res.current).all() and res.current[0] > 0

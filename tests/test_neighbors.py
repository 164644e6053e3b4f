"""hamforge.graph.neighbor_list against a brute-force loop over explicit lattice images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hamforge.graph import NeighborList, _neighbors, neighbor_list, reverse_edge_index

# Distances and vectors are O(10 Angstrom) sums of a few float64 terms: 1e-12 is ~100 ulps.
TOL = 1e-12


def _heights(cell, pbc):
    """Perpendicular heights of a full-rank cell built from ``cell`` (zero rows of open axes replaced)."""
    full = np.array(cell, float)
    for k in np.flatnonzero(~np.asarray(pbc)):
        if np.linalg.norm(full[k]) == 0.0:
            a, b = full[(k + 1) % 3], full[(k + 2) % 3]
            n = np.cross(a, b)
            full[k] = n if np.linalg.norm(n) > 0 else np.eye(3)[k]
    vol = abs(np.linalg.det(full))
    faces = [np.linalg.norm(np.cross(full[(k + 1) % 3], full[(k + 2) % 3])) for k in range(3)]
    return vol / np.array(faces), full


def brute_force(x, cell, pbc, r_cut):
    """Every (i, j, R) with 0 < |x_j + R @ cell - x_i| <= r_cut, looping over a generous image box."""
    x = np.asarray(x, float)
    pbc = np.asarray(pbc, bool)
    h, full = _heights(cell, pbc)
    frac = np.linalg.solve(full.T, x.T).T
    spread = frac.max(axis=0) - frac.min(axis=0) if len(x) else np.zeros(3)
    nmax = np.where(pbc, np.ceil(r_cut / h + spread).astype(int) + 1, 0)
    rows = []
    for R in itertools.product(*[range(-m, m + 1) for m in nmax]):
        R = np.array(R)
        vec = x[None, :, :] + R @ cell - x[:, None, :]  # (i, j, 3)
        d = np.sqrt((vec**2).sum(-1))
        ii, jj = np.nonzero((d > 0) & (d <= r_cut))
        for i, j in zip(ii, jj):
            rows.append((i, j, *R, *vec[i, j], d[i, j]))
    if not rows:
        return np.zeros((0, 2), int), np.zeros((0, 3), int), np.zeros((0, 3)), np.zeros(0)
    a = np.array(rows, dtype=object)
    order = np.lexsort([a[:, k].astype(int) for k in (4, 3, 2, 1, 0)])
    a = a[order]
    return (a[:, :2].astype(np.int64), a[:, 2:5].astype(np.int64), a[:, 5:8].astype(float), a[:, 8].astype(float))


def _random_system(seed, n, cell, pbc, outside=True):
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, float)
    pbc = np.asarray(pbc, bool)
    frac = rng.random((n, 3))
    x = frac @ np.where(pbc[:, None], cell, np.eye(3) * 6.0)
    if outside:  # move atoms by lattice vectors and a little more: must not change the edge geometry
        jump = rng.integers(-3, 4, (n, 3)) * pbc
        x = x + jump @ cell + rng.normal(scale=0.3, size=(n, 3))
    return x, cell, pbc


SYSTEMS = {
    "cubic": (0, 12, np.eye(3) * 6.0, (True, True, True), 3.5),
    "triclinic": (1, 10, [[5.0, 0.0, 0.0], [2.1, 4.6, 0.0], [-1.3, 1.7, 5.2]], (True, True, True), 4.0),
    "thin_cubic": (2, 3, np.eye(3) * 2.2, (True, True, True), 5.0),
    # heights 0.75, 0.74, 3.0 Angstrom while |a_k| ~ 3 Angstrom: images from heights, not lengths
    "very_thin_triclinic": (3, 2, [[3.0, 0.0, 0.0], [2.9, 0.75, 0.0], [0.5, 0.4, 3.0]], (True,) * 3, 3.1),
    "slab_2d_zero_vector": (4, 8, [[4.0, 0.0, 0.0], [1.0, 3.5, 0.0], [0.0] * 3], (True, True, False), 4.5),
    "slab_2d_oblique": (5, 8, [[4.0, 0.0, 0.0], [1.0, 3.5, 0.0], [0.7, 0.2, 9.0]], (True, False, True), 4.5),
    "wire_1d": (6, 6, [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.3, 0.2, 2.5]], (False, False, True), 4.0),
    "molecule": (7, 15, np.zeros((3, 3)), (False, False, False), 3.0),
}


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_matches_brute_force(name):
    seed, n, cell, pbc, r_cut = SYSTEMS[name]
    x, cell, pbc = _random_system(seed, n, cell, pbc)
    nl = neighbor_list(x, cell, pbc, r_cut)
    ij, shift, vec, dist = brute_force(x, cell, pbc, r_cut)
    assert nl.n_edges == len(dist) > 0
    # identical edge sets in identical (i, j, R) order
    np.testing.assert_array_equal(nl.edge_index.T, ij)
    np.testing.assert_array_equal(nl.shift, shift)
    np.testing.assert_allclose(nl.vec, vec, rtol=0, atol=TOL)
    np.testing.assert_allclose(nl.dist, dist, rtol=0, atol=TOL)
    assert not np.any(shift[:, ~pbc]), "R must be 0 along non-periodic axes"


@pytest.mark.parametrize("name", ["triclinic", "very_thin_triclinic", "slab_2d_oblique"])
def test_edge_invariants(name):
    seed, n, cell, pbc, r_cut = SYSTEMS[name]
    x, cell, pbc = _random_system(seed, n, cell, pbc)
    nl = neighbor_list(x, cell, pbc, r_cut)
    i, j = nl.edge_index
    assert nl.edge_index.dtype == np.int64 and nl.shift.dtype == np.int64
    assert nl.vec.dtype == np.float64 and nl.dist.dtype == np.float64
    assert nl.edge_index.shape == (2, nl.n_edges) and nl.shift.shape == (nl.n_edges, 3)
    np.testing.assert_allclose(nl.vec, x[j] + nl.shift @ cell - x[i], rtol=0, atol=TOL)
    np.testing.assert_allclose(nl.dist, np.linalg.norm(nl.vec, axis=1), rtol=0, atol=TOL)
    assert np.all(nl.dist > 0) and np.all(nl.dist <= r_cut)
    keys = np.stack([i, j, *nl.shift.T])
    assert np.all(np.lexsort(keys[::-1]) == np.arange(nl.n_edges)), "not sorted by (i, j, R)"
    assert not np.any((i == j) & ~nl.shift.any(axis=1)), "(i, i, 0) must not be an edge"
    assert nl.n_atoms == n and nl.r_cut == r_cut
    assert not nl.vec.flags.writeable


def test_positions_outside_cell_change_only_shifts():
    seed, n, cell, pbc, r_cut = SYSTEMS["triclinic"]
    x, cell, pbc = _random_system(seed, n, cell, pbc, outside=False)
    jump = np.random.default_rng(9).integers(-5, 6, (n, 3))
    a = neighbor_list(x, cell, pbc, r_cut)
    b = neighbor_list(x + jump @ cell, cell, pbc, r_cut)
    # The same physical edges: (i, j) and vec agree (rows re-sorted by the new R), R -> R + jump_i - jump_j.
    ka = np.lexsort((a.vec[:, 2], a.vec[:, 1], a.vec[:, 0], a.edge_index[1], a.edge_index[0]))
    kb = np.lexsort((b.vec[:, 2], b.vec[:, 1], b.vec[:, 0], b.edge_index[1], b.edge_index[0]))
    np.testing.assert_array_equal(a.edge_index[:, ka], b.edge_index[:, kb])
    # vec changes only by rounding of the larger coordinates: 1e-11 for |x| ~ 30 Angstrom
    np.testing.assert_allclose(a.vec[ka], b.vec[kb], rtol=0, atol=1e-11)
    i, j = a.edge_index[:, ka]
    np.testing.assert_array_equal(b.shift[kb], a.shift[ka] + jump[i] - jump[j])


def test_reverse_edges():
    seed, n, cell, pbc, r_cut = SYSTEMS["very_thin_triclinic"]
    x, cell, pbc = _random_system(seed, n, cell, pbc)
    nl = neighbor_list(x, cell, pbc, r_cut)
    rev = reverse_edge_index(nl)
    assert rev.dtype == np.int64 and rev.shape == (nl.n_edges,)
    np.testing.assert_array_equal(rev[rev], np.arange(nl.n_edges))
    np.testing.assert_array_equal(nl.edge_index[:, rev], nl.edge_index[::-1])
    np.testing.assert_array_equal(nl.shift[rev], -nl.shift)
    np.testing.assert_allclose(nl.vec[rev], -nl.vec, rtol=0, atol=TOL)
    # self-images pair up as (i, i, R) <-> (i, i, -R), never with themselves
    assert np.all(rev != np.arange(nl.n_edges))
    # the fallbacks (for keys that would overflow int64 when packed) give the same permutation
    for method in ("packed", "argsort", "lexsort"):
        again = _neighbors._reverse_permutation(*nl.edge_index, nl.shift, nl.n_atoms, method=method)
        np.testing.assert_array_equal(again, rev)


@pytest.mark.parametrize("method", ["packed", "argsort", "lexsort"])
def test_reverse_rejects_asymmetric_edges(method):
    i = np.array([0, 0])
    j = np.array([1, 1])
    shift = np.array([[0, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="nl: edge set is not closed"):
        _neighbors._reverse_permutation(i, j, shift, 2, method=method)
    # a symmetric edge set in the wrong order is rejected too
    i, j = np.array([1, 0]), np.array([0, 1])
    with pytest.raises(ValueError, match="nl: edge"):
        _neighbors._reverse_permutation(i, j, np.zeros((2, 3), int), 2, method=method)


def test_single_atom_self_images_inclusive_cutoff():
    x = np.zeros((1, 3))
    cell = np.eye(3) * 2.5
    # r_cut exactly the lattice constant: the 6 nearest images are included (dist == r_cut exactly)
    nl = neighbor_list(x, cell, True, 2.5)
    assert nl.n_edges == 6
    np.testing.assert_array_equal(nl.edge_index, 0)
    expected = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [0, 0, 1], [0, 1, 0], [1, 0, 0]]  # sorted (i, j, R)
    np.testing.assert_array_equal(nl.shift, expected)
    np.testing.assert_array_equal(nl.dist, 2.5)
    assert neighbor_list(x, cell, True, np.nextafter(2.5, 0)).n_edges == 0
    assert neighbor_list(x, cell, True, 2.5 * np.sqrt(2)).n_edges == 18
    # an open axis removes its images
    assert neighbor_list(x, cell, (True, True, False), 2.5).n_edges == 4
    # big cutoff: all lattice points within the sphere (count checked by brute force)
    assert neighbor_list(x, cell, True, 9.0).n_edges == len(brute_force(x, cell, [True] * 3, 9.0)[3])


def test_inputs_of_other_types_and_empty():
    nl = neighbor_list([[0, 0, 0], [1, 0, 0]], [[3, 0, 0], [0, 3, 0], [0, 0, 3]], [1, 1, 0], 1)
    np.testing.assert_array_equal(nl.edge_index, [[0, 1], [1, 0]])
    np.testing.assert_array_equal(nl.pbc, [True, True, False])
    empty = neighbor_list(np.zeros((0, 3)), np.eye(3), True, 3.0)
    assert isinstance(empty, NeighborList) and empty.n_edges == 0 and empty.edge_index.shape == (2, 0)
    assert neighbor_list(np.zeros((1, 3)), np.zeros((3, 3)), False, 3.0).n_edges == 0


def test_many_chunks_give_the_same_result(monkeypatch):
    seed, n, cell, pbc, r_cut = SYSTEMS["cubic"]
    x, cell, pbc = _random_system(seed, 60, cell, pbc)
    ref = neighbor_list(x, cell, pbc, r_cut)
    monkeypatch.setattr(_neighbors, "_PAIRS_PER_CHUNK", 37)
    monkeypatch.setattr(_neighbors, "_FIRST_CHUNK_ATOMS", 3)
    small = neighbor_list(x, cell, pbc, r_cut)
    np.testing.assert_array_equal(small.edge_index, ref.edge_index)
    np.testing.assert_array_equal(small.shift, ref.shift)
    np.testing.assert_array_equal(small.dist, ref.dist)  # bit-identical: same element-wise arithmetic


def test_agrees_with_ase():
    from ase import Atoms
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    x, cell, pbc = _random_system(11, 150, [[9.0, 0.0, 0.0], [3.0, 8.0, 0.0], [1.0, -2.0, 7.5]], (1, 1, 1))
    atoms = Atoms("Si150", positions=x, cell=cell, pbc=True)
    i, j, S = ase_neighbor_list("ijS", atoms, 4.2)
    nl = neighbor_list(x, cell, pbc, 4.2)
    theirs = np.stack([i, j, *S.T])
    theirs = theirs[:, np.lexsort(theirs[::-1])]
    np.testing.assert_array_equal(np.concatenate([nl.edge_index, nl.shift.T]), theirs)


BAD = [
    (dict(positions=np.zeros((3, 2))), "positions"),
    (dict(positions=np.zeros(3)), "positions"),
    (dict(positions=np.array([[0.0, np.nan, 0.0]])), "positions"),
    (dict(positions=np.array([["a", "b", "c"]])), "positions"),
    (dict(cell=np.eye(2)), "cell"),
    (dict(cell=np.diag([1.0, np.inf, 1.0])), "cell"),
    (dict(cell=np.diag([3.0, 3.0, 0.0])), "cell"),  # zero vector on a periodic axis
    (dict(cell=[[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]]), "cell"),  # linearly dependent periodic vectors
    (dict(pbc=[True, False]), "pbc"),
    (dict(pbc=[2, 0, 1]), "pbc"),
    (dict(r_cut=0.0), "r_cut"),
    (dict(r_cut=-1.0), "r_cut"),
    (dict(r_cut=np.nan), "r_cut"),
    (dict(r_cut="x"), "r_cut"),
    (dict(positions=np.array([[0.0, 0, 0], [1.0, 1, 1], [0.0, 0, 0]])), "coincide"),
    (dict(positions=np.array([[0.0, 0, 0], [3.0, 0, 0]])), "coincide"),  # atom 1 sits on an image of 0
]


@pytest.mark.parametrize("override, match", BAD)
def test_errors(override, match):
    args = dict(positions=np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), cell=np.eye(3) * 3.0, pbc=True, r_cut=2.0)
    args.update(override)
    with pytest.raises(ValueError, match=match):
        neighbor_list(**args)


def test_suspicious_cutoffs_are_warned_about_and_budgets_refuse(caplog, monkeypatch):
    """An r_cut that gives no edge (e.g. a cutoff given in nm or bohr by mistake) is logged as a warning, naming
    r_cut; one whose expected edge list exceeds the memory budget ($HAMFORGE_MEMORY_BUDGET_GB) is refused before
    anything is allocated (issue 22: a warning let the run go on until memory ran out)."""
    import logging

    from hamforge.graph import neighbor_list
    from hamforge.graph._neighbors import MemoryBudgetError

    x = np.array([[0.0, 0.0, 0.0], [2.35, 0.0, 0.0]])
    cell = np.eye(3) * 20.0
    with caplog.at_level(logging.WARNING, logger="hamforge.graph"):
        nl = neighbor_list(x, cell, True, 0.9)
    assert nl.n_edges == 0 and "r_cut 0.9 Angstrom gives no edges for 2 atoms" in caplog.text
    caplog.clear()
    monkeypatch.setenv("HAMFORGE_MEMORY_BUDGET_GB", "1e-6")  # 1 kB: 2 edges of 72 B each are fine
    with caplog.at_level(logging.WARNING, logger="hamforge.graph"):
        neighbor_list(x, cell, True, 3.0)
    assert caplog.text == ""
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 10, (200, 3))
    with pytest.raises(MemoryBudgetError, match=r"r_cut 4 Angstrom: .* above the memory budget of 0\.0 GB; refused"):
        neighbor_list(y, np.eye(3) * 10, True, 4.0)  # ~54 neighbours per atom: ~0.8 MB > 1 kB
    monkeypatch.setenv("HAMFORGE_MEMORY_BUDGET_GB", "lots")
    with pytest.raises(ValueError, match="HAMFORGE_MEMORY_BUDGET_GB: expected a number of GB"):
        neighbor_list(y, np.eye(3) * 10, True, 4.0)

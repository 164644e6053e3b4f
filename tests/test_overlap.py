"""Exact overlaps from the basis (hamforge.basis.overlap_*) against CP2K's printed S and independent PySCF paths.

Fixtures are real CP2K runs written by tests/data/make_cp2k_fixtures.py: 8-atom diamond Si with SZV (s, p) and
DZVP (s, s, p, p, d), 12-atom monoclinic HfO2 with SZV (Hf s, s, p, d) and DZVP (Hf up to f), the latter also
rigidly rotated. All cells are far smaller than the overlap range (14-19 A), so CP2K's S sums many images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hamforge.basis import (
    ElementBasis,
    OverlapError,
    check_overlap_positive,
    iter_overlap_blocks,
    orbital_table,
    overlap_blocks,
    overlap_matrix,
    overlap_min_eigenvalue,
    overlap_range,
    read_cp2k_gaussians,
    resolve_cp2k_data_file,
)
from hamforge.graph import assemble_gamma, extract_blocks, fold_blocks, fold_map, folding_is_identity, neighbor_list

DATA = Path(__file__).parent / "data" / "cp2k"
RUNS = ["si_szv", "si_dzvp", "hfo2_szv", "hfo2_dzvp_rot0", "hfo2_dzvp_rot1"]
# CP2K's S differs from the exact integrals by what its screening drops: pairs of primitives beyond radii set
# by EPS_PGF_ORB (1e-6 for EPS_DEFAULT 1e-12). Measured here: 4e-9 (Si SZV) .. 2e-8 (HfO2 SZV); 1e-7 leaves
# a margin and is still far below any basis-order or normalization error (those are O(0.01-1)).
CP2K_TOL = 1e-7
# Same integrals summed in a different order (CSR fold vs graph fold of ~1e3 terms of size <= 1).
SUM_TOL = 1e-12

_runs: dict = {}


def run(name):
    """Parsed CP2K run (structure, basis, S), cached per session (parsing the binary CSR takes ~1 s)."""
    if name not in _runs:
        from hamforge.dft import parse_cp2k_run

        _runs[name] = parse_cp2k_run(DATA / name)
    return _runs[name]


def gamma_from_blocks(md, r_cut, **kw):
    """Gamma S folded from per-image blocks on hamforge.graph's neighbour list (an independent edge search)."""
    nl = neighbor_list(md.positions, md.cell, md.pbc, r_cut)
    nodes, edges = overlap_blocks(md.positions, md.cell, md.kinds, dict(md.basis), nl.edge_index, nl.shift, **kw)
    node_f, pair_f = fold_blocks(edges, nl, nodes)
    tab = md.orbitals()
    return assemble_gamma(node_f, pair_f, fold_map(nl)[0], tab.n_orb, tab.offset), nl, nodes, edges


@pytest.mark.parametrize("name", RUNS)
def test_gamma_overlap_matches_cp2k(name):
    md = run(name)
    S = overlap_matrix(md.positions, md.cell, md.pbc, md.kinds, dict(md.basis))
    assert S.shape == md.S.shape
    assert abs(S - md.S).max() < CP2K_TOL
    assert abs(S - S.T).max() < 1e-13  # (i, j, R) and (j, i, -R) computed separately by libcint


@pytest.mark.parametrize("name", RUNS)
def test_per_image_blocks_fold_to_cp2k(name):
    md = run(name)
    r_cut = overlap_range(dict(md.basis))
    S_fold, nl, _, _ = gamma_from_blocks(md, r_cut, chunk_atoms=5)  # several chunks even for 8 atoms
    assert not folding_is_identity(nl)  # the cells are small: many images per pair, self-images included
    assert abs(S_fold - md.S).max() < CP2K_TOL
    S = overlap_matrix(md.positions, md.cell, md.pbc, md.kinds, dict(md.basis), r_cut=r_cut)
    assert abs(S_fold - S).max() < SUM_TOL


def test_rotated_cell_matches_its_own_cp2k_run():
    # S depends on orientation through the p/d/f blocks; both runs match CP2K, and they really differ.
    s0, s1 = run("hfo2_dzvp_rot0"), run("hfo2_dzvp_rot1")
    S1 = overlap_matrix(s1.positions, s1.cell, s1.pbc, s1.kinds, dict(s1.basis))
    assert abs(S1 - s1.S).max() < CP2K_TOL
    assert abs(s1.S - s0.S).max() > 0.1


def _pyscf_block_text(path, element, name):
    lines = Path(path).read_text().splitlines()
    start = next(k for k, ln in enumerate(lines) if ln.split()[:1] == [element] and name in ln.split()[1:])
    end = start + 1
    while end < len(lines) and not (
        lines[end].split()[:1] and lines[end].split()[0][0].isalpha() | (lines[end].split()[0][0] == "#")
    ):
        end += 1
    return "\n".join(lines[start:end])


def _pyscf_molecule_block(md, i, j, xj):
    """S_ij from a 2-atom PySCF molecule built with PySCF's own CP2K-basis parser; p reordered by ao_labels."""
    from pyscf import gto
    from pyscf.data.elements import charge
    from pyscf.gto.basis import parse_cp2k

    path = resolve_cp2k_data_file("BASIS_MOLOPT")
    bi, bj = md.basis[md.kinds[i]], md.basis[md.kinds[j]]
    atoms = [(f"{bi.element}1", md.positions[i]), (f"{bj.element}2", xj)]
    basis = {
        f"{b.element}{k}": parse_cp2k.parse(_pyscf_block_text(path, b.element, b.name)) for k, b in ((1, bi), (2, bj))
    }
    nelec = charge(bi.element) + charge(bj.element)
    mol = gto.M(atom=atoms, basis=basis, unit="A", spin=nelec % 2)
    labels = mol.ao_labels(fmt=False)
    perm = np.arange(len(labels))
    k = 0
    while k < len(labels):  # PySCF p = (x, y, z), CP2K p = (y, z, x)
        if labels[k][2].endswith("p"):
            perm[k : k + 3] = [k + 1, k + 2, k]
            k += 3
        else:
            k += 1
    s = mol.intor("int1e_ovlp")[np.ix_(perm, perm)]
    ni = bi.n_orbitals
    return s[:ni, ni:], s[:ni, :ni]


@pytest.mark.parametrize("name", ["si_dzvp", "hfo2_dzvp_rot1"])
def test_per_image_blocks_equal_two_atom_molecules(name):
    # Per-image blocks one by one against an independent path: PySCF's own basis parser and Mole, two atoms.
    md = run(name)
    nl = neighbor_list(md.positions, md.cell, md.pbc, 9.0)
    nodes, edges = overlap_blocks(md.positions, md.cell, md.kinds, dict(md.basis), nl.edge_index, nl.shift)
    rng = np.random.default_rng(0)
    picks = rng.choice(nl.n_edges, size=12, replace=False)
    picks = np.concatenate([picks, np.flatnonzero(nl.edge_index[0] == nl.edge_index[1])[:3]])  # self-images
    for e in picks.tolist():
        i, j = (int(v) for v in nl.edge_index[:, e])
        xj = md.positions[j] + nl.shift[e] @ md.cell
        ref, ref_node = _pyscf_molecule_block(md, i, j, xj)
        # 1e-12: the same libcint integrals; only the basis conversion path differs
        np.testing.assert_allclose(edges.block(e), ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(nodes.block(i), ref_node, rtol=0, atol=1e-12)


def _tiled_small_cell_case(r_cut, n):
    """Si SZV fixture cell and its n^3 tiling, with edges of both and the map supercell edge -> small edge."""
    from ase import Atoms

    md = run("si_szv")
    small = Atoms(positions=md.positions, cell=md.cell, pbc=True)
    big = small.repeat((n, n, n))  # ASE order: tile (t0, t1, t2) major, atoms of the small cell inside
    n0 = len(small)
    tiles = np.array([(a, b, c) for a in range(n) for b in range(n) for c in range(n)], np.int64)
    kinds_big = np.repeat(md.kinds[None, :], n**3, axis=0).reshape(-1)
    nl_s = neighbor_list(md.positions, md.cell, md.pbc, r_cut)
    nl_b = neighbor_list(big.positions, big.cell.array, big.pbc, r_cut)
    I, J = nl_b.edge_index
    r_small = tiles[J // n0] - tiles[I // n0] + n * nl_b.shift

    def key(i, j, r):
        return ((i * n0 + j) * 4096 + (r[:, 0] + 2048)) * 4096**2 + (r[:, 1] + 2048) * 4096 + r[:, 2] + 2048

    ks = key(nl_s.edge_index[0], nl_s.edge_index[1], nl_s.shift)
    kb = key(I % n0, J % n0, r_small)
    to_small = np.searchsorted(ks, kb, sorter=np.argsort(ks))
    to_small = np.argsort(ks)[to_small]
    assert np.array_equal(ks[to_small], kb)  # every supercell edge is an image of a small-cell edge
    return md, big, kinds_big, nl_s, nl_b, to_small


@pytest.mark.parametrize("r_cut, n", [(6.0, 3), pytest.param(None, 6, marks=pytest.mark.slow)])
def test_large_cell_per_image_blocks_are_gamma_blocks(r_cut, n):
    # A cell wider than 2 r_cut has one image per pair: folding is the identity, the Gamma blocks of its S are
    # the per-image blocks, and (translation invariance) they equal the small cell's per-image blocks.
    md = run("si_szv")
    basis = dict(md.basis)
    r_cut = overlap_range(basis) if r_cut is None else r_cut
    md, big, kinds_big, nl_s, nl_b, to_small = _tiled_small_cell_case(r_cut, n)
    assert folding_is_identity(nl_b)
    _, e_small = overlap_blocks(md.positions, md.cell, md.kinds, basis, nl_s.edge_index, nl_s.shift)
    n_big, e_big = overlap_blocks(big.positions, big.cell.array, kinds_big, basis, nl_b.edge_index, nl_b.shift)
    S_big = overlap_matrix(big.positions, big.cell.array, big.pbc, kinds_big, basis, r_cut=r_cut)
    tab = orbital_table(kinds_big, basis)
    g = extract_blocks(S_big, nl_b.edge_index[0], nl_b.edge_index[1], tab.n_orb, tab.offset)
    atoms = np.arange(len(big))
    g_nodes = extract_blocks(S_big, atoms, atoms, tab.n_orb, tab.offset)
    assert abs(g.data - e_big.data).max() < 1e-15  # identical numbers: same integrals, nothing summed
    assert abs(g_nodes.data - n_big.data).max() < 1e-15
    sizes = e_small.offsets[1:] - e_small.offsets[:-1]
    from hamforge.basis._overlap import _ranges

    small_data = e_small.data[_ranges(e_small.offsets[to_small], sizes[to_small])]
    # 1e-13: the same pair geometry from differently rounded coordinates (tiled positions, larger cell)
    assert abs(small_data - e_big.data).max() < 1e-13
    assert S_big.nnz == (nl_b.n_edges + len(big)) * 16  # SZV Si: 4 x 4 blocks, each stored whole


@pytest.mark.parametrize("pbc", [(True, True, True), (True, True, False), (False, False, False)])
def test_gamma_pair_search_equals_graph_neighbour_list(pbc):
    # overlap_matrix finds pairs chunk by chunk itself; with a short r_cut (blocks O(0.1)) a missed or extra
    # pair would show: compare with the fold over hamforge.graph.neighbor_list, pattern included.
    md = run("hfo2_szv")
    pbc = np.array(pbc)
    S = overlap_matrix(md.positions, md.cell, pbc, md.kinds, dict(md.basis), r_cut=4.0, chunk_atoms=3)
    nl = neighbor_list(md.positions, md.cell, pbc, 4.0)
    nodes, edges = overlap_blocks(md.positions, md.cell, md.kinds, dict(md.basis), nl.edge_index, nl.shift)
    node_f, pair_f = fold_blocks(edges, nl, nodes)
    tab = md.orbitals()
    ref = assemble_gamma(node_f, pair_f, fold_map(nl)[0], tab.n_orb, tab.offset)
    assert S.nnz == ref.nnz and abs(S - ref).max() < SUM_TOL
    assert np.array_equal(S.indptr, ref.indptr) and np.array_equal(S.indices, ref.indices)


def test_chunks_cover_every_block_once():
    md = run("hfo2_szv")
    nl = neighbor_list(md.positions, md.cell, md.pbc, 6.0)
    chunks = list(
        iter_overlap_blocks(md.positions, md.cell, md.kinds, dict(md.basis), nl.edge_index, nl.shift, chunk_atoms=5)
    )
    assert len(chunks) == 3
    assert np.array_equal(np.sort(np.concatenate([c.atoms for c in chunks])), np.arange(12))
    assert np.array_equal(np.sort(np.concatenate([c.edges for c in chunks])), np.arange(nl.n_edges))


def test_overlap_range_bounds_the_omitted_blocks():
    md = run("hfo2_szv")
    basis = dict(md.basis)
    r = overlap_range(basis, eps=1e-12)
    assert 10.0 < r < 25.0
    r8 = overlap_range(basis, eps=1e-8)
    assert r8 < r
    # S with the default range vs a much longer one: the extra blocks are each below 1e-12
    S = overlap_matrix(md.positions, md.cell, md.pbc, md.kinds, basis)
    S_long = overlap_matrix(md.positions, md.cell, md.pbc, md.kinds, basis, r_cut=r + 4.0)
    # folding sums ~O(100) omitted images of one pair, each below 1e-12
    assert abs(S_long - S).max() < 1e-10


def test_positive_definite_check():
    md = run("si_dzvp")
    S = overlap_matrix(md.positions, md.cell, md.pbc, md.kinds, dict(md.basis))
    lam_dense = np.linalg.eigvalsh(S.toarray())[0]
    assert abs(overlap_min_eigenvalue(S)[0] - lam_dense) < 1e-12  # dense path for small S
    # iterative path (what large S use), forced here: agrees to its tolerance
    lam_it, converged = overlap_min_eigenvalue(S, dense_max=0, tol=1e-8)
    assert converged and abs(lam_it - lam_dense) < 1e-6 * max(1.0, abs(lam_dense))
    assert check_overlap_positive(S) == pytest.approx(lam_dense, abs=1e-12)


def test_truncated_overlap_can_lose_positive_definiteness():
    # Cutting S at a short r_cut keeps the bonds but drops the compensating tails: S stops being a Gram matrix.
    md = run("si_dzvp")
    S_cut = overlap_matrix(md.positions, md.cell, md.pbc, md.kinds, dict(md.basis), r_cut=2.6)
    lam = np.linalg.eigvalsh(S_cut.toarray())[0]
    assert lam < 0
    with pytest.raises(OverlapError, match="not positive definite"):
        check_overlap_positive(S_cut)


# ---------------------------------------------------------------------------------------------- bad input
def _si8():
    md = run("si_szv")
    return md.positions, md.cell, md.pbc, md.kinds


def test_unknown_basis_name_names_kind_and_name():
    x, cell, pbc, kinds = _si8()
    with pytest.raises(OverlapError, match=r"kind 'Si'.*no basis set 'NO-SUCH-BASIS' for element 'Si'"):
        overlap_matrix(x, cell, pbc, kinds, {"Si": ("Si", "NO-SUCH-BASIS")})


def test_unknown_element_names_it():
    x, cell, pbc, _ = _si8()
    with pytest.raises(OverlapError, match=r"kind 'Xq'.*no set for 'Xq'"):
        overlap_matrix(x, cell, pbc, np.array(["Xq"] * len(x)), {"Xq": ("Xq", "SZV-MOLOPT-SR-GTH")})


def test_kind_without_basis_names_it():
    x, cell, pbc, kinds = _si8()
    kinds = kinds.copy()
    kinds[3] = "Ge"
    with pytest.raises(OverlapError, match=r"no basis set given for kind\(s\) \['Ge'\]"):
        overlap_matrix(x, cell, pbc, kinds, {"Si": ("Si", "SZV-MOLOPT-SR-GTH")})


def test_element_basis_shells_must_match_the_file():
    x, cell, pbc, kinds = _si8()
    wrong = ElementBasis("Si", "SZV-MOLOPT-SR-GTH", (0, 1, 2))
    with pytest.raises(OverlapError, match=r"kind 'Si'.*shells \(0, 1\)"):
        overlap_matrix(x, cell, pbc, kinds, {"Si": wrong})


def test_missing_basis_file_names_it():
    x, cell, pbc, kinds = _si8()
    with pytest.raises(OverlapError, match="NO_SUCH_BASIS_FILE"):
        overlap_matrix(x, cell, pbc, kinds, {"Si": ("Si", "SZV-MOLOPT-SR-GTH", "NO_SUCH_BASIS_FILE")})


def test_g_shells_are_refused(tmp_path):
    f = tmp_path / "BASIS_G"
    f.write_text("Si TEST-G\n 1\n 4 0 4 1 1 0 0 0 1\n 0.5 1.0 1.0\n")
    assert read_cp2k_gaussians(f, "Si", "TEST-G").shells == (0, 4)
    x, cell, pbc, kinds = _si8()
    with pytest.raises(OverlapError, match=r"kind 'Si'.*l = \[4\].*l <= 3"):
        overlap_matrix(x, cell, pbc, kinds, {"Si": ("Si", "TEST-G", str(f))})


def test_bad_edges_and_shapes():
    x, cell, _, kinds = _si8()
    basis = {"Si": ("Si", "SZV-MOLOPT-SR-GTH")}
    with pytest.raises(OverlapError, match=r"edge_index: atom indices must lie in \[0, 8\)"):
        overlap_blocks(x, cell, kinds, basis, np.array([[0], [8]]), np.zeros((1, 3), int))
    with pytest.raises(OverlapError, match=r"shift: expected shape \(1, 3\)"):
        overlap_blocks(x, cell, kinds, basis, np.array([[0], [1]]), np.zeros((2, 3), int))
    with pytest.raises(OverlapError, match="shift: expected integers"):
        overlap_blocks(x, cell, kinds, basis, np.array([[0], [1]]), np.zeros((1, 3)))
    with pytest.raises(OverlapError, match=r"positions: expected shape \(N, 3\)"):
        overlap_blocks(x[:, :2], cell, kinds, basis, np.array([[0], [1]]), np.zeros((1, 3), int))
    with pytest.raises(OverlapError, match="kinds: expected 8 labels"):
        overlap_blocks(x, cell, kinds[:3], basis, np.array([[0], [1]]), np.zeros((1, 3), int))
    with pytest.raises(OverlapError, match="r_cut"):
        overlap_matrix(x, cell, True, kinds, basis, r_cut=-1.0)

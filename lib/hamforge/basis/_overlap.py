"""Exact two-centre overlaps S(R) of a structure's contracted Gaussians, per lattice image, streamed.

S depends only on the geometry and the basis, so no DFT run is needed: the integrals come from libcint
(through PySCF), with the basis read from a CP2K basis file and the orbitals in CP2K's order and
normalization (``hamforge.basis._gaussians``). Conventions as in ``docs/conventions.md``: an edge
``(i, j, R)`` has the block ``S_ij(R) = <phi_i(0)|phi_j(R)>``, shape ``(n_orb(i), n_orb(j))``, with atom ``j``
at ``x_j + R @ cell``; the on-site block is ``(i, i, 0)``.

Streaming: centre atoms are split into spatially compact chunks (leaves of a k-d tree). For a chunk, the
image copies ``(j, R)`` its edges need are collected and one libcint call gives the dense overlap of the
chunk's centres with those copies; every edge block is then gathered from it by vectorized indexing (a
loop over chunks and kind pairs only). Working memory is one chunk: ``chunk orbitals x copy orbitals``
float64, bounded by the chunk size and the interaction range, not by the structure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

from hamforge.basis._cp2k_file import read_cp2k_gaussians, resolve_cp2k_data_file
from hamforge.basis._gaussians import GaussianBasis, LibcintSites, angstrom_to_bohr, libcint_kind
from hamforge.basis._images import ImageSearch
from hamforge.basis._types import BasisError, ElementBasis, RaggedBlocks

__all__ = [
    "DEFAULT_EPS",
    "Blocks",
    "OverlapChunk",
    "OverlapError",
    "iter_overlap_blocks",
    "overlap_blocks",
    "overlap_matrix",
    "overlap_range",
    "resolve_basis_sets",
]

# Overlap magnitude treated as zero when choosing the image range (``overlap_range``).
DEFAULT_EPS = 1e-12
DEFAULT_BASIS_FILE = "BASIS_MOLOPT"
# Centre atoms per chunk. The dense buffer is (chunk orbitals) x (orbitals of the copies within range of the
# chunk); measured peak memory above the start of a streamed run (HfO2 DZVP, 96 atoms, range 18.75 A):
# 8 atoms per chunk 31 MB buffer / 159 MB peak / 3.8 s CPU, 32 atoms 145 MB / 558 MB / 5.6 s. CPU time barely
# depends on it otherwise (libcint skips far primitive pairs cheaply; 216 Si atoms SZV: 1.4 s for 8..128).
DEFAULT_CHUNK_ATOMS = 8


class OverlapError(BasisError):
    """Bad input for the overlap integrals (shapes, indices, basis specification) or an invalid S."""


# Per-edge overlap blocks use the project's one ragged-block record (hamforge.graph re-exports it).
Blocks = RaggedBlocks


class OverlapChunk(NamedTuple):
    """Blocks of one chunk of centre atoms (what :func:`iter_overlap_blocks` yields).

    Fields::

        atoms      # (C,) int64   | centre atoms of the chunk
        node_data  # (sum n_i^2,) | on-site blocks (i, i, 0) of ``atoms``, in that order, row-major
        edges      # (Ec,) int64  | ids (into the input edge list) of all edges whose centre is in ``atoms``
        edge_data  # (sum n_i n_j,) | their blocks, in the order of ``edges``, row-major
    """

    atoms: np.ndarray
    node_data: np.ndarray
    edges: np.ndarray
    edge_data: np.ndarray


# ---------------------------------------------------------------------------------------------- basis specs
def resolve_basis_sets(basis_sets: Mapping[str, object], kinds=None, basis_file=None) -> dict[str, GaussianBasis]:
    """Gaussian basis of every kind label.

    ``basis_sets`` maps a kind label to a :class:`GaussianBasis`, an :class:`ElementBasis` (read by element and
    name from ``basis_file``; its shells must match the file), or a tuple ``(element, name)`` /
    ``(element, name, basis_file)``. ``basis_file`` defaults to CP2K's ``BASIS_MOLOPT``
    (:func:`resolve_cp2k_data_file`). With ``kinds`` given, only those labels are resolved and a label
    without a basis is an error naming it.
    """
    if not isinstance(basis_sets, Mapping):
        raise OverlapError(f"basis_sets: expected a mapping kind -> basis, got {type(basis_sets).__name__}")
    labels = sorted(basis_sets) if kinds is None else sorted({str(k) for k in kinds})
    missing = [k for k in labels if k not in basis_sets]
    if missing:
        raise OverlapError(f"no basis set given for kind(s) {missing}; basis_sets has {sorted(basis_sets)}")
    default_file = basis_file if basis_file is not None else DEFAULT_BASIS_FILE
    out = {}
    for label in labels:
        spec = basis_sets[label]
        try:
            out[label] = _resolve_one(spec, default_file)
        except BasisError as exc:
            raise OverlapError(f"kind {label!r}: {exc}") from None
    return out


def _resolve_one(spec, default_file) -> GaussianBasis:
    if isinstance(spec, GaussianBasis):
        return spec
    if isinstance(spec, ElementBasis):
        gb = read_cp2k_gaussians(resolve_cp2k_data_file(default_file), spec.element, spec.name)
        if gb.shells != tuple(spec.shells):
            raise BasisError(
                f"basis {spec.name!r} of {spec.element!r} in {gb.source} has shells {gb.shells}, "
                f"but the given ElementBasis says {tuple(spec.shells)}"
            )
        return gb
    if isinstance(spec, (tuple, list)) and len(spec) in (2, 3) and all(isinstance(s, (str, os.PathLike)) for s in spec):
        element, name = str(spec[0]), str(spec[1])
        path = spec[2] if len(spec) == 3 else default_file
        return read_cp2k_gaussians(resolve_cp2k_data_file(path), element, name)
    raise BasisError(f"expected a GaussianBasis, an ElementBasis or (element, name[, basis_file]), got {spec!r}")


class _Prepared(NamedTuple):
    x: np.ndarray  # (N, 3)
    cell: np.ndarray  # (3, 3)
    kind: np.ndarray  # (N,) int64 index into sites.kinds
    labels: list
    sites: LibcintSites
    n_orb: np.ndarray  # (N,) orbitals per atom


def _prepare(positions, cell, kinds, basis_sets, basis_file) -> _Prepared:
    x = _float_array(positions, "positions", (-1, 3))
    cell = _float_array(cell, "cell", (3, 3))
    kinds = np.asarray(kinds)
    if kinds.shape != (x.shape[0],):
        raise OverlapError(f"kinds: expected {x.shape[0]} labels (one per atom), got shape {kinds.shape}")
    labels, kind = np.unique(kinds.astype(str), return_inverse=True)
    labels = labels.tolist()
    bases = resolve_basis_sets(basis_sets, labels, basis_file)
    sites = _libcint_sites(labels, bases)
    kind = kind.astype(np.int64).reshape(-1)
    return _Prepared(x, cell, kind, labels, sites, sites.n_orb[kind])


def _libcint_sites(labels, bases) -> LibcintSites:
    try:
        return LibcintSites([libcint_kind(k, bases[k]) for k in labels])
    except BasisError as exc:
        raise OverlapError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- per-image blocks
def iter_overlap_blocks(
    positions, cell, kinds, basis_sets, edge_index, shift, *, basis_file=None, chunk_atoms: int = DEFAULT_CHUNK_ATOMS
) -> Iterator[OverlapChunk]:
    """Overlap blocks chunk by chunk of centre atoms (bounded memory; see :class:`OverlapChunk`).

    Args:
        positions: ``(N, 3)`` Angstrom, as given (not wrapped: ``shift`` refers to them).
        cell: ``(3, 3)``, rows are lattice vectors (only used through ``shift``; zero rows are fine where
            ``shift`` is 0).
        kinds: ``(N,)`` kind labels, keys of ``basis_sets``.
        basis_sets: kind -> basis, see :func:`resolve_basis_sets`; ``basis_file`` its default file.
        edge_index: ``(2, E)`` int ``[centre i; neighbour j]``; any order, any subset of pairs.
        shift: ``(E, 3)`` int lattice image ``R`` of ``j``.
        chunk_atoms: centre atoms per chunk.

    Every atom appears in exactly one chunk (with its on-site block) and every edge in the chunk of its
    centre, so the chunks cover all blocks once.
    """
    prep = _prepare(positions, cell, kinds, basis_sets, basis_file)
    ei, ej, shift = _check_edges(edge_index, shift, prep.x.shape[0])
    if not isinstance(chunk_atoms, (int, np.integer)) or chunk_atoms < 1:
        raise OverlapError(f"chunk_atoms: expected a positive integer, got {chunk_atoms!r}")
    return _iter_chunks(prep, ei, ej, shift, int(chunk_atoms))  # inputs checked now, blocks computed lazily


def _iter_chunks(prep: _Prepared, ei, ej, shift, chunk_atoms) -> Iterator[OverlapChunk]:
    n = prep.x.shape[0]
    edge_order = np.arange(ei.shape[0]) if np.all(ei[1:] >= ei[:-1]) else np.argsort(ei, kind="stable")
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(ei, minlength=n), out=ptr[1:])
    for centres in _chunks(prep.x, chunk_atoms):
        eid = edge_order[_ranges(ptr[centres], ptr[centres + 1] - ptr[centres])]
        node_data, edge_data = _chunk_blocks(prep, centres, ei[eid], ej[eid], shift[eid])
        yield OverlapChunk(centres, node_data, eid, edge_data)


def _chunks(x: np.ndarray, chunk_atoms: int) -> Iterator[np.ndarray]:
    order = _spatial_order(x, chunk_atoms)
    for a in range(0, x.shape[0], chunk_atoms):
        yield order[a : a + chunk_atoms]


def _chunk_blocks(prep: _Prepared, centres, i, j, r) -> tuple[np.ndarray, np.ndarray]:
    """Flat on-site blocks of ``centres`` and flat blocks of the pairs ``(i, j, r)`` (all ``i`` in ``centres``)."""
    # distinct image copies (atom, R) the chunk needs: its neighbours and the centres themselves
    rmax = int(np.abs(r).max()) if r.size else 0
    base = 2 * rmax + 1
    if prep.x.shape[0] * base**3 >= 2**62:
        raise OverlapError(f"shift: image indices up to {rmax} are too large for {prep.x.shape[0]} atoms")
    zero = np.zeros((centres.shape[0], 3), np.int64)
    keys = np.concatenate([_encode(j, r, rmax, base), _encode(centres, zero, rmax, base)])
    uniq, inv = np.unique(keys, return_inverse=True)
    inv = inv.reshape(-1)
    c_atom, c_shift = _decode(uniq, rmax, base)
    c_xyz = prep.x[c_atom] + c_shift.astype(np.float64) @ prep.cell
    dense = prep.sites.overlap(prep.kind[centres], prep.x[centres], prep.kind[c_atom], c_xyz)
    row0 = prep.sites.ao_offsets(prep.kind[centres])[:-1]
    col0 = prep.sites.ao_offsets(prep.kind[c_atom])[:-1]
    by_atom = np.argsort(centres)
    local = by_atom[np.searchsorted(centres, i, sorter=by_atom)]  # position of each pair's centre in centres
    ne = i.shape[0]
    edge_data = _gather(dense, row0[local], col0[inv[:ne]], prep.kind[i], prep.kind[j], prep.sites)
    node_data = _gather(dense, row0, col0[inv[ne:]], prep.kind[centres], prep.kind[centres], prep.sites)
    return node_data, edge_data


def overlap_blocks(
    positions, cell, kinds, basis_sets, edge_index, shift, *, basis_file=None, chunk_atoms: int = DEFAULT_CHUNK_ATOMS
) -> tuple[Blocks, Blocks]:
    """On-site blocks ``(i, i, 0)`` of all atoms and one block ``S_ij(R)`` per edge, CP2K orbital order.

    Arguments as :func:`iter_overlap_blocks`. Returns ``(node_blocks, edge_blocks)`` as :class:`Blocks`
    (``hamforge.graph.RaggedBlocks``-compatible): N blocks ``(n_i, n_i)`` in atom order and E blocks
    ``(n_i, n_j)`` in the order of ``edge_index``. Folded onto the Gamma point
    (``hamforge.graph.fold_blocks``) they give the Gamma-point S of the edges' range.
    """
    prep_n = _prepare_sizes(positions, kinds, basis_sets, basis_file)
    ei, ej, shift = _check_edges(edge_index, shift, prep_n.shape[0])
    node_shape = np.stack([prep_n, prep_n], axis=1)
    edge_shape = np.stack([prep_n[ei], prep_n[ej]], axis=1)
    node_off, edge_off = _offsets(prep_n * prep_n), _offsets(edge_shape[:, 0] * edge_shape[:, 1])
    node_data = np.empty(node_off[-1], np.float64)
    edge_data = np.empty(edge_off[-1], np.float64)
    for ch in iter_overlap_blocks(
        positions, cell, kinds, basis_sets, (ei, ej), shift, basis_file=basis_file, chunk_atoms=chunk_atoms
    ):
        node_data[_ranges(node_off[ch.atoms], prep_n[ch.atoms] ** 2)] = ch.node_data
        sizes = edge_off[ch.edges + 1] - edge_off[ch.edges]
        edge_data[_ranges(edge_off[ch.edges], sizes)] = ch.edge_data
    return Blocks(node_data, node_off, node_shape), Blocks(edge_data, edge_off, edge_shape)


def _prepare_sizes(positions, kinds, basis_sets, basis_file) -> np.ndarray:
    """Orbitals per atom (reads the shells only)."""
    x = _float_array(positions, "positions", (-1, 3))
    kinds = np.asarray(kinds)
    if kinds.shape != (x.shape[0],):
        raise OverlapError(f"kinds: expected {x.shape[0]} labels (one per atom), got shape {kinds.shape}")
    labels, kind = np.unique(kinds.astype(str), return_inverse=True)
    bases = resolve_basis_sets(basis_sets, labels.tolist(), basis_file)
    per_kind = np.array([bases[k].n_orbitals for k in labels.tolist()], np.int64)
    return per_kind[kind.reshape(-1)]


def _gather(dense, row0, col0, ka, kb, sites: LibcintSites) -> np.ndarray:
    """Blocks ``dense[row0[p] + perm[ka[p]], col0[p] + perm[kb[p]]]`` (CP2K order), flat row-major."""
    n_orb = sites.n_orb
    sizes = n_orb[ka] * n_orb[kb]
    off = _offsets(sizes)
    out = np.empty(off[-1], np.float64)
    nk = n_orb.shape[0]
    pair = ka * nk + kb
    flat = dense.reshape(-1)
    ncol = dense.shape[1]
    for key in np.unique(pair).tolist():
        a, b = divmod(key, nk)
        na, nb = int(n_orb[a]), int(n_orb[b])
        sel = np.flatnonzero(pair == key)
        rows = row0[sel, None] + sites.ao_perm[a, :na]  # (s, na)
        cols = col0[sel, None] + sites.ao_perm[b, :nb]  # (s, nb)
        vals = flat[rows[:, :, None] * ncol + cols[:, None, :]]
        out[off[sel, None] + np.arange(na * nb)] = vals.reshape(sel.shape[0], na * nb)
    return out


def _spatial_order(x: np.ndarray, chunk_atoms: int) -> np.ndarray:
    """Atoms ordered so that consecutive runs of ``chunk_atoms`` are spatially compact.

    scipy's k-d tree (median splits, leaves of at most ``chunk_atoms`` points) already stores its points
    leaf by leaf in ``tree.indices``; consecutive leaves are neighbours in space.
    """
    from scipy.spatial import cKDTree

    if x.shape[0] <= chunk_atoms:
        return np.arange(x.shape[0], dtype=np.int64)
    return np.asarray(cKDTree(x, leafsize=chunk_atoms, balanced_tree=True).indices, np.int64)


# ---------------------------------------------------------------------------------------------- range, Gamma S
def overlap_range(
    basis_sets: Mapping[str, object], *, eps: float = DEFAULT_EPS, basis_file=None, step: float = 0.05
) -> float:
    """Distance (Angstrom) beyond which every atom-pair block of the given kinds has ``||S_ij||_F < eps``.

    Computed, not estimated: for every pair of kinds the block of two atoms at distance ``r`` is evaluated on
    a grid of ``r`` (spacing ``step``) up to well past the analytic Gaussian tail of the most diffuse
    primitives, ``exp(-mu r^2)`` with ``mu = a b / (a + b)``. The Frobenius norm of a block is invariant under
    rotations (blocks transform as ``D^la S D^lb^T``), so one direction covers all. Returns the first grid
    point after the last one with norm ``>= eps`` (max over kind pairs). The Frobenius norm bounds every
    element, so elements beyond the range are below ``eps`` too.
    """
    if not (isinstance(eps, (float, int)) and 0 < eps < 1):
        raise OverlapError(f"eps: expected a number in (0, 1), got {eps!r}")
    bases = resolve_basis_sets(basis_sets, None, basis_file)
    labels = sorted(bases)
    sites = _libcint_sites(labels, bases)
    best = 0.0
    for a in range(len(labels)):
        for b in range(a, len(labels)):
            ea, eb = bases[labels[a]].min_exponent, bases[labels[b]].min_exponent
            mu = ea * eb / (ea + eb)  # bohr^-2; the slowest-decaying primitive pair
            r_hi = math.sqrt(math.log(1e6 / eps) / mu) / float(angstrom_to_bohr(1.0)) + 2.0
            while True:
                r = np.arange(1, int(r_hi / step) + 2) * step
                xyz = np.zeros((r.shape[0], 3))
                xyz[:, 2] = r
                m = sites.overlap(np.array([a]), np.zeros((1, 3)), np.full(r.shape[0], b), xyz)
                nb = int(sites.n_orb[b])
                norm = np.sqrt((m.reshape(m.shape[0], r.shape[0], nb) ** 2).sum(axis=(0, 2)))
                if norm[-1] < eps:
                    break
                r_hi *= 1.5
            above = np.flatnonzero(norm >= eps)
            best = max(best, float(r[above[-1]] + step) if above.size else step)
    return best


def overlap_matrix(
    positions,
    cell,
    pbc,
    kinds,
    basis_sets,
    r_cut: float | None = None,
    *,
    eps: float = DEFAULT_EPS,
    basis_file=None,
    chunk_atoms: int = DEFAULT_CHUNK_ATOMS,
):
    """Gamma-point overlap ``S = sum_R S(R)`` as ``scipy.sparse.csr_matrix`` (Norb x Norb), CP2K order.

    Atom pairs ``(i, j, R)`` with ``0 < |x_j + R @ cell - x_i| <= r_cut`` (default :func:`overlap_range` of the
    kinds present at ``eps``, so every omitted block has Frobenius norm below ``eps``) are found chunk by chunk
    of centre atoms (``hamforge.basis._images``), their blocks computed as in :func:`iter_overlap_blocks` and
    summed into the chunk's CSR rows, so working memory beyond the result is O(N) plus one chunk: no edge
    list of the whole structure is built. ``pbc``: ``(3,)`` bool (or one bool); open axes get ``R = 0``.
    Rows/columns follow
    ``hamforge.basis.orbital_table(kinds, ...)``: atoms in input order, shells in basis-file order, m = -l..l.
    Blocks within ``r_cut`` are stored whole (as CP2K does), symmetric to rounding (~1e-16).
    """
    import scipy.sparse as sp

    x = _float_array(positions, "positions", (-1, 3))
    cell_a = _float_array(cell, "cell", (3, 3))
    pbc_a = np.broadcast_to(np.asarray(pbc, bool), (3,)).copy()
    kinds = np.asarray(kinds)
    n_orb = _prepare_sizes(x, kinds, basis_sets, basis_file)
    if r_cut is None:
        present = {k: basis_sets[k] for k in np.unique(kinds.astype(str)).tolist()}
        r_cut = overlap_range(present, eps=eps, basis_file=basis_file)
    if not (isinstance(r_cut, (float, int)) and r_cut > 0):
        raise OverlapError(f"r_cut: expected a positive number of Angstrom, got {r_cut!r}")
    prep = _prepare(x, cell_a, kinds, basis_sets, basis_file)
    try:
        search = ImageSearch(x, cell_a, pbc_a, float(r_cut))
    except ValueError as exc:
        raise OverlapError(str(exc)) from None
    if not isinstance(chunk_atoms, (int, np.integer)) or chunk_atoms < 1:
        raise OverlapError(f"chunk_atoms: expected a positive integer, got {chunk_atoms!r}")
    orb_off = _offsets(n_orb)
    pieces, row_owner = [], []
    pos = np.empty(x.shape[0], np.int64)
    for ca in _chunks(x, int(chunk_atoms)):
        pi, pj, pr = search.pairs(ca)
        node_data, edge_data = _chunk_blocks(prep, ca, pi, pj, pr)
        local_row0 = _offsets(n_orb[ca])
        pos[ca] = np.arange(ca.shape[0])
        bi = np.concatenate([ca, pi])
        bj = np.concatenate([ca, pj])
        rows, cols = _block_coordinates(local_row0[pos[bi]], orb_off[bj], n_orb[bi], n_orb[bj])
        data = np.concatenate([node_data, edge_data])
        # duplicates (images of one atom pair) are summed here: the Gamma-point fold
        pieces.append(sp.csr_matrix((data, (rows, cols)), shape=(int(local_row0[-1]), int(orb_off[-1]))))
        row_owner.append(ca)
    if not pieces:
        return sp.csr_matrix((0, 0))
    stacked = sp.vstack(pieces, format="csr")
    owner = np.concatenate(row_owner)  # atom of each stacked row block, in stacking order
    stacked_off = _offsets(n_orb[owner])
    where = np.empty(x.shape[0], np.int64)
    where[owner] = stacked_off[:-1]
    out = stacked[_ranges(where, n_orb)]  # rows back into atom order
    out.sort_indices()
    return out


def _block_coordinates(row0, col0, nr, nc):
    """Row and column of every element of blocks ``(row0, col0, nr, nc)``, row-major, concatenated."""
    sizes = nr * nc
    blk = np.repeat(np.arange(sizes.shape[0]), sizes)
    t = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(_offsets(sizes)[:-1], sizes)
    width = nc[blk]
    return row0[blk] + t // width, col0[blk] + t % width


# ---------------------------------------------------------------------------------------------- helpers
def _encode(atom, r, rmax, base):
    r = r + rmax
    return ((atom * base + r[:, 0]) * base + r[:, 1]) * base + r[:, 2]


def _decode(key, rmax, base):
    r2 = key % base
    key = key // base
    r1 = key % base
    key = key // base
    r0 = key % base
    return key // base, np.stack([r0, r1, r2], axis=1) - rmax


def _offsets(sizes):
    out = np.zeros(sizes.shape[0] + 1, np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def _ranges(starts, lengths):
    """Concatenation of ``arange(s, s + n)`` for every (s, n), vectorized."""
    lengths = np.asarray(lengths, np.int64)
    before = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, np.int64) - before, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _float_array(a, name, shape):
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise OverlapError(f"{name}: expected a numeric array") from None
    ok = arr.ndim == len(shape) and all(s == -1 or s == t for s, t in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("N" if s == -1 else str(s) for s in shape) + ")"
        raise OverlapError(f"{name}: expected shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise OverlapError(f"{name}: non-finite values")
    return arr


def _check_edges(edge_index, shift, n):
    try:
        ei, ej = (np.asarray(a) for a in edge_index)
    except (TypeError, ValueError):
        raise OverlapError("edge_index: expected shape (2, E)") from None
    if ei.ndim != 1 or ei.shape != ej.shape:
        raise OverlapError(f"edge_index: expected shape (2, E), got rows of shapes {ei.shape} and {ej.shape}")
    sh = np.asarray(shift)
    for arr, name in ((ei, "edge_index"), (ej, "edge_index"), (sh, "shift")):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise OverlapError(f"{name}: expected integers, got dtype {arr.dtype}")
    ei, ej = ei.astype(np.int64), ej.astype(np.int64)
    if sh.shape != (ei.shape[0], 3):
        raise OverlapError(f"shift: expected shape ({ei.shape[0]}, 3), got {sh.shape}")
    if ei.size and (min(ei.min(), ej.min()) < 0 or max(ei.max(), ej.max()) >= n):
        raise OverlapError(f"edge_index: atom indices must lie in [0, {n})")
    return ei, ej, sh.astype(np.int64)

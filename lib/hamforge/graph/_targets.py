"""Coupled-basis learning targets of a structure: graph + folded node/pair blocks, and back.

Forward (:func:`build_targets`): matrix file -> periodic graph (edges (i, j, R) within r_cut) ->
Gamma blocks of nodes (on-site, self-images folded in) and of atom pairs that have at least one edge ->
padded coupled components (``hamforge.basis.TargetLayout``). Inverse (:func:`targets_to_blocks`,
:func:`targets_to_matrix`) rebuilds the blocks exactly (orthogonal coupling, float64).
Vectorized over atoms and pairs; Python loops only over kind pairs and shell pairs (a few dozen).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from hamforge.basis import ElementBasis, TargetLayout, build_layout, orbital_table
from hamforge.geometry import minimum_image
from hamforge.graph._blocks import RaggedBlocks, assemble_gamma, extract_gamma_blocks, fold_map, ragged_blocks
from hamforge.graph._neighbors import neighbor_list
from hamforge.io import Targets

__all__ = [
    "blocks_to_coupled",
    "coupled_to_blocks",
    "build_targets",
    "targets_to_blocks",
    "targets_to_matrix",
    "coverage_report",
]


def _shell_offsets(shells: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([2 * l + 1 for l in shells])]).astype(np.int64)


def _kind_pair_rows(layout: TargetLayout, kind_a: np.ndarray, kind_b: np.ndarray, what: str) -> np.ndarray:
    rows = layout.kind_pair_index(kind_a, kind_b)
    if np.any(rows < 0):
        k = int(np.flatnonzero(rows < 0)[0])
        raise ValueError(
            f"{what} {k}: kind pair ({layout.kinds[kind_a[k]]}, {layout.kinds[kind_b[k]]}) is not in the "
            f"{layout.block} layout"
        )
    return rows


def blocks_to_coupled(
    blocks: RaggedBlocks,
    kind_a: np.ndarray,
    kind_b: np.ndarray,
    layout: TargetLayout,
    basis: Mapping[str, ElementBasis],
) -> np.ndarray:
    """(P, D) padded coupled components of P atom blocks; ``kind_a``/``kind_b`` (P,) index ``layout.kinds``.

    Unused columns of a kind pair are 0. Float64.
    """
    from hamforge.so3 import couple

    kind_a, kind_b = np.asarray(kind_a, np.int64), np.asarray(kind_b, np.int64)
    rows = _kind_pair_rows(layout, kind_a, kind_b, "block")
    out = np.zeros((len(rows), layout.width), dtype=np.float64)
    for k in np.unique(rows).tolist():
        sel = np.flatnonzero(rows == k)
        a, b = layout.kind_pairs[k]
        sa, sb = basis[layout.kinds[a]].shells, basis[layout.kinds[b]].shells
        oa, ob = _shell_offsets(sa), _shell_offsets(sb)
        na, nb = int(oa[-1]), int(ob[-1])
        if not (np.all(blocks.shape[sel, 0] == na) and np.all(blocks.shape[sel, 1] == nb)):
            raise ValueError(f"blocks of kind pair {layout.kinds[a]}-{layout.kinds[b]} must be {na}x{nb}")
        dense = blocks.data[blocks.offsets[sel][:, None] + np.arange(na * nb)].reshape(-1, na, nb)
        slots = np.flatnonzero(layout.slot_kind_pair == k)
        for ia, la in enumerate(sa):
            for ib, lb in enumerate(sb):
                c = couple(dense[:, oa[ia] : oa[ia + 1], ob[ib] : ob[ib + 1]], la, lb)
                mine = slots[(layout.slot_shell_a[slots] == ia) & (layout.slot_shell_b[slots] == ib)]
                col = 0
                for s in mine[np.argsort(layout.slot_L[mine])].tolist():
                    w = 2 * int(layout.slot_L[s]) + 1
                    out[sel, layout.slot_start[s] : layout.slot_start[s] + w] = c[:, col : col + w]
                    col += w
    return out


def coupled_to_blocks(
    coupled: np.ndarray,
    kind_a: np.ndarray,
    kind_b: np.ndarray,
    layout: TargetLayout,
    basis: Mapping[str, ElementBasis],
) -> RaggedBlocks:
    """Exact inverse of :func:`blocks_to_coupled` (padding columns are ignored)."""
    from hamforge.so3 import uncouple

    coupled = np.asarray(coupled, dtype=np.float64)
    kind_a, kind_b = np.asarray(kind_a, np.int64), np.asarray(kind_b, np.int64)
    if coupled.shape != (len(kind_a), layout.width):
        raise ValueError(f"coupled: expected shape ({len(kind_a)}, {layout.width}), got {coupled.shape}")
    rows = _kind_pair_rows(layout, kind_a, kind_b, "block")
    norb = np.array([basis[k].n_orbitals for k in layout.kinds], dtype=np.int64)
    n_rows, n_cols = norb[kind_a], norb[kind_b]
    out = ragged_blocks(np.zeros(int(np.sum(n_rows * n_cols))), n_rows, n_cols)
    for k in np.unique(rows).tolist():
        sel = np.flatnonzero(rows == k)
        a, b = layout.kind_pairs[k]
        sa, sb = basis[layout.kinds[a]].shells, basis[layout.kinds[b]].shells
        oa, ob = _shell_offsets(sa), _shell_offsets(sb)
        na, nb = int(oa[-1]), int(ob[-1])
        dense = np.zeros((len(sel), na, nb))
        slots = np.flatnonzero(layout.slot_kind_pair == k)
        for ia, la in enumerate(sa):
            for ib, lb in enumerate(sb):
                mine = slots[(layout.slot_shell_a[slots] == ia) & (layout.slot_shell_b[slots] == ib)]
                parts = [
                    coupled[sel, layout.slot_start[s] : layout.slot_start[s] + 2 * layout.slot_L[s] + 1]
                    for s in mine[np.argsort(layout.slot_L[mine])].tolist()
                ]
                dense[:, oa[ia] : oa[ia + 1], ob[ib] : ob[ib + 1]] = uncouple(np.concatenate(parts, axis=1), la, lb)
        out.data[out.offsets[sel][:, None] + np.arange(na * nb)] = dense.reshape(len(sel), -1)
    return out


def build_targets(
    data, r_cut: float, kinds: Sequence[str] | None = None, basis: Mapping[str, ElementBasis] | None = None
) -> Targets:
    """Targets of a :class:`hamforge.io.MatrixData` for graph cutoff ``r_cut`` (Angstrom).

    ``kinds`` fixes the layout's species list (all structures of a material share it); default: the keys of
    ``basis`` when given, else the kinds of this structure, sorted. ``basis`` is the material's basis registry
    (kind -> ElementBasis, e.g. :meth:`hamforge.dft.CP2KSettings.kind_basis`): it supplies the basis of layout
    kinds that have no atom in this structure (a matrix file stores only the kinds present), and the basis the
    matrix file records for a kind present must be the registry's. Without it every layout kind must be
    present in the structure.
    """
    if not r_cut > 0:
        raise ValueError(f"r_cut must be > 0, got {r_cut}")
    if kinds is None:
        kinds = sorted(basis) if basis is not None else sorted(set(data.kinds.tolist()))
    kinds = tuple(kinds)
    missing = sorted(set(data.kinds.tolist()) - set(kinds))
    if missing:
        raise ValueError(f"structure has kind(s) {missing} that are not in the layout kinds {list(kinds)}")
    registry = dict(data.basis) if basis is None else dict(basis)
    for k in sorted(set(data.kinds.tolist()) & set(data.basis) & set(registry)):
        if data.basis[k] != registry[k]:
            raise ValueError(
                f"kind {k}: the matrix file's basis {data.basis[k]} differs from the material's {registry[k]}"
            )
    basis = {k: registry[k] for k in kinds if k in registry}
    if len(basis) != len(kinds):
        raise ValueError(f"no basis for kind(s) {sorted(set(kinds) - set(basis))}")
    kind_id = {k: n for n, k in enumerate(kinds)}
    atom_kind = np.array([kind_id[k] for k in data.kinds.tolist()], dtype=np.int64)
    nl = neighbor_list(data.positions, data.cell, data.pbc, r_cut)
    tab = orbital_table(data.kinds, dict(data.basis))
    node_layout = build_layout(basis, kinds, "node")
    pair_layout = build_layout(basis, kinds, "pair")
    _, edge_to_pair = fold_map(nl)
    out = {}
    for name, m in (("H", data.H), ("S", data.S)):
        nodes, pairs, pair_index = extract_gamma_blocks(m, nl, tab.n_orb, tab.offset)
        out[name] = (
            blocks_to_coupled(nodes, atom_kind, atom_kind, node_layout, basis),
            blocks_to_coupled(pairs, atom_kind[pair_index[0]], atom_kind[pair_index[1]], pair_layout, basis),
        )
    return Targets(
        nl=nl,
        kinds=kinds,
        atom_kind=atom_kind,
        numbers=np.asarray(data.numbers, np.int64),
        basis=basis,
        node_layout=node_layout,
        pair_layout=pair_layout,
        node_targets=out["H"][0],
        node_overlap=out["S"][0],
        pair_index=pair_index,
        edge_to_pair=edge_to_pair,
        pair_targets=out["H"][1],
        pair_overlap=out["S"][1],
        provenance=dict(data.provenance),
    )


def targets_to_blocks(t: Targets, which: str = "H") -> tuple[RaggedBlocks, RaggedBlocks]:
    """(node blocks, pair blocks) of H (``which='H'``) or S rebuilt from the coupled targets."""
    node_c, pair_c = (t.node_targets, t.pair_targets) if which == "H" else (t.node_overlap, t.pair_overlap)
    nodes = coupled_to_blocks(node_c, t.atom_kind, t.atom_kind, t.node_layout, t.basis)
    pairs = coupled_to_blocks(
        pair_c, t.atom_kind[t.pair_index[0]], t.atom_kind[t.pair_index[1]], t.pair_layout, t.basis
    )
    return nodes, pairs


def targets_to_matrix(t: Targets, which: str = "H"):
    """Gamma-point sparse matrix (CSR) holding the blocks the graph covers (on-site + pairs within r_cut)."""
    nodes, pairs = targets_to_blocks(t, which)
    norb = np.array([t.basis[k].n_orbitals for k in t.kinds], dtype=np.int64)[t.atom_kind]
    offset = np.concatenate([[0], np.cumsum(norb)]).astype(np.int64)
    return assemble_gamma(nodes, pairs, t.pair_index, norb, offset)


def coverage_report(data, t: Targets):
    """How much of H the graph captures, per element pair (a pandas DataFrame) and per block (for plots).

    A block of H(Gamma) between atoms i != j is *covered* when (i, j) has at least one edge within r_cut.
    For each (kind_i, kind_j) the table gives the number of non-zero blocks, the fraction beyond r_cut, the
    fraction of sum |H| beyond r_cut, and the largest |H| element beyond r_cut (Hartree). Returns
    ``(table, blocks)`` where ``blocks`` has one row per non-zero off-site block: atoms, kinds, exact
    minimum-image distance of the pair (Angstrom, :func:`hamforge.geometry.minimum_image`), max |H| element,
    covered flag.
    """
    import pandas as pd
    import scipy.sparse as sp

    tab = orbital_table(data.kinds, dict(data.basis))
    coo = sp.coo_matrix(data.H)
    ai, aj = tab.atom[coo.row], tab.atom[coo.col]
    off = ai != aj
    n = data.n_atoms
    key = ai[off] * n + aj[off]
    absval = np.abs(coo.data[off])
    ukey, inv = np.unique(key, return_inverse=True)
    blk_sum = np.bincount(inv, weights=absval)
    blk_max = np.zeros(len(ukey))
    np.maximum.at(blk_max, inv, absval)
    bi, bj = ukey // n, ukey % n
    covered_keys = t.pair_index[0] * n + t.pair_index[1]
    covered = np.isin(ukey, covered_keys)
    # exact minimum-image distance of each block's atom pair (periodic axes only; triclinic cells included)
    dist = np.linalg.norm(minimum_image(data.positions[bj] - data.positions[bi], data.cell, data.pbc), axis=1)
    ki = np.asarray(data.kinds, dtype=object)[bi]
    kj = np.asarray(data.kinds, dtype=object)[bj]
    blocks = pd.DataFrame(
        {
            "atom_i": bi,
            "atom_j": bj,
            "kind_i": ki,
            "kind_j": kj,
            "min_image_distance": dist,
            "max_abs": blk_max,
            "sum_abs": blk_sum,
            "covered": covered,
        }
    )
    rows = []
    for (a, b), g in blocks.groupby(["kind_i", "kind_j"], sort=True):
        beyond = ~g["covered"]
        rows.append(
            {
                "kind_i": a,
                "kind_j": b,
                "nonzero_blocks": len(g),
                "blocks_beyond_rcut": int(beyond.sum()),
                "fraction_blocks_beyond": float(beyond.mean()),
                "fraction_abs_beyond": float(g.loc[beyond, "sum_abs"].sum() / g["sum_abs"].sum()),
                "max_abs_beyond_hartree": float(g.loc[beyond, "max_abs"].max()) if beyond.any() else 0.0,
            }
        )
    return pd.DataFrame(rows), blocks

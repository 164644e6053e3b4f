"""Padded coupled-basis target layout: which columns belong to which kind pair, shell pair and L.

Every (shell a, shell b) sub-block of an atomic block, of angular momenta (l_a, l_b), is coupled into the
components |L, M>, L = |l_a - l_b| .. l_a + l_b (``hamforge.so3.couple``), each of parity (-1)^(l_a + l_b).
A model predicts one fixed-length vector per node (on-site block) and per pair/edge (off-site block), so the
columns are shared between kind pairs: they are grouped by (L, parity), in increasing L, even before odd,
and inside a group a kind pair's sub-blocks take consecutive slots in (shell a, shell b) order. A group has as
many slots as the kind pair that needs most; the others leave slots unused (``mask`` False, target 0).
The resulting column description is an e3nn Irreps string such as ``"3x0e+2x1o+1x1e+2x2e"``.

Nodes use the kind pairs (a, a); pairs/edges use all ordered kind pairs (a, b).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from hamforge.basis._types import BasisError, ElementBasis

__all__ = ["TargetLayout", "build_layout"]


@dataclass(frozen=True, eq=False)
class TargetLayout:
    """Column layout of padded coupled targets for one block kind ('node' or 'pair').

    ``kinds`` are the kind labels the layout covers (the model's species); ``kind_pairs`` (K, 2) indexes
    them. The slot table has one row per (kind pair, shell a, shell b, L):
    """

    block: str  # "node" | "pair"
    kinds: tuple[str, ...]
    kind_pairs: np.ndarray  # (K, 2) int64 | kind indices (a, b)
    irreps: str  # e3nn Irreps string of the columns, padding included
    groups: tuple[tuple[int, int, int], ...]  # (L, parity(+1/-1), multiplicity) in column order
    # slot table, one row per (kind pair, shell pair, L):
    slot_kind_pair: np.ndarray  # (S,) int64 | row of kind_pairs
    slot_shell_a: np.ndarray  # (S,) int64 | shell index inside atom a
    slot_shell_b: np.ndarray  # (S,) int64
    slot_l_a: np.ndarray  # (S,) int64
    slot_l_b: np.ndarray  # (S,) int64
    slot_L: np.ndarray  # (S,) int64
    slot_start: np.ndarray  # (S,) int64 | first column of the 2L+1 components
    mask: np.ndarray  # (K, D) bool | columns used by each kind pair

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def kind_pair_index(self, kind_a: np.ndarray, kind_b: np.ndarray) -> np.ndarray:
        """Row of ``kind_pairs`` for each (kind_a, kind_b) given as kind indices; -1 where not covered."""
        n = len(self.kinds)
        lut = np.full(n * n, -1, dtype=np.int64)
        lut[self.kind_pairs[:, 0] * n + self.kind_pairs[:, 1]] = np.arange(len(self.kind_pairs))
        return lut[np.asarray(kind_a) * n + np.asarray(kind_b)]


def _irreps_string(groups) -> str:
    return "+".join(f"{mul}x{L}{'e' if p == 1 else 'o'}" for L, p, mul in groups) or "0x0e"


def build_layout(basis: Mapping[str, ElementBasis], kinds: Sequence[str], block: str) -> TargetLayout:
    """Layout for the given kind labels (order defines kind indices) with shells from ``basis``."""
    if block not in ("node", "pair"):
        raise BasisError(f"block must be 'node' or 'pair', got {block!r}")
    kinds = tuple(kinds)
    if len(set(kinds)) != len(kinds) or not kinds:
        raise BasisError(f"kinds must be a non-empty list of distinct labels, got {list(kinds)}")
    missing = [k for k in kinds if k not in basis]
    if missing:
        raise BasisError(f"no basis for kind(s) {missing}")
    n = len(kinds)
    if block == "node":
        kp = np.array([(a, a) for a in range(n)], dtype=np.int64)
    else:
        kp = np.array([(a, b) for a in range(n) for b in range(n)], dtype=np.int64)
    # per kind pair: list of (shell_a, shell_b, l_a, l_b, L, parity) in (shell a, shell b, L) order
    entries = []
    for a, b in kp.tolist():
        sa, sb = basis[kinds[a]].shells, basis[kinds[b]].shells
        rows = []
        for ia, la in enumerate(sa):
            for ib, lb in enumerate(sb):
                p = 1 if (la + lb) % 2 == 0 else -1
                for L in range(abs(la - lb), la + lb + 1):
                    rows.append((ia, ib, la, lb, L, p))
        entries.append(rows)
    keys = sorted({(r[4], -r[5]) for rows in entries for r in rows})  # L ascending, even (+1) first
    mult = {key: max(sum(1 for r in rows if (r[4], -r[5]) == key) for rows in entries) for key in keys}
    group_start = {}
    col = 0
    groups = []
    for L, negp in keys:
        group_start[(L, negp)] = col
        groups.append((L, -negp, mult[(L, negp)]))
        col += mult[(L, negp)] * (2 * L + 1)
    width = col
    mask = np.zeros((len(kp), width), dtype=bool)
    table = []
    for k, rows in enumerate(entries):
        used = {key: 0 for key in keys}
        for ia, ib, la, lb, L, p in rows:
            key = (L, -p)
            start = group_start[key] + used[key] * (2 * L + 1)
            used[key] += 1
            mask[k, start : start + 2 * L + 1] = True
            table.append((k, ia, ib, la, lb, L, start))
    t = np.array(table, dtype=np.int64).reshape(-1, 7)
    return TargetLayout(
        block=block,
        kinds=kinds,
        kind_pairs=kp,
        irreps=_irreps_string(groups),
        groups=tuple(groups),
        slot_kind_pair=t[:, 0],
        slot_shell_a=t[:, 1],
        slot_shell_b=t[:, 2],
        slot_l_a=t[:, 3],
        slot_l_b=t[:, 4],
        slot_L=t[:, 5],
        slot_start=t[:, 6],
        mask=mask,
    )

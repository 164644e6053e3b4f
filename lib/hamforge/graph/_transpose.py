"""Transposition of pair blocks in coupled space: the coupled components of ``B^T`` (kind pair (b, a)) from those
of ``B`` (kind pair (a, b)).

A Hamiltonian is symmetric, ``H_ji(-R) = H_ij(R)^T``; predictions are symmetrized as ``(H_ij + H_ji^T) / 2``
(``hamforge.predict``). Training and evaluation on those symmetrized blocks need the transpose of a coupled
vector. Swapping the two shells of a coupled |L, M> component multiplies it by a sign (the exchange symmetry of
Clebsch-Gordan coefficients, (-1)^(l_a + l_b - L) for our real basis) and moves it to the slot of the swapped
shells; the map is derived here numerically from :func:`blocks_to_coupled` / :func:`coupled_to_blocks` (so it
follows whatever convention those use) and checked to be a signed permutation.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hamforge.basis import ElementBasis, TargetLayout
from hamforge.graph._targets import blocks_to_coupled, coupled_to_blocks

__all__ = ["pair_transpose_map"]


def pair_transpose_map(layout: TargetLayout, basis: Mapping[str, ElementBasis]) -> tuple[np.ndarray, np.ndarray]:
    """``(cols, sign)``, both ``(n_kind_pairs, D)`` and indexed by the kind pair ``k = (a, b)`` of the *result*:
    for the block ``B`` of a pair of kind pair ``(b, a)`` with coupled vector ``c``, the coupled vector of
    ``B^T`` (kind pair ``(a, b)``) is ``t[d] = sign[k, d] * c[cols[k, d]]`` (padding columns of ``k``: sign 0).
    So the reverse pair ``(j, i)`` of a pair ``(i, j)`` of kind pair ``k`` contributes
    ``sign[k] * c_ji[cols[k]]`` to it. ``layout`` must hold ``(b, a)`` whenever it holds ``(a, b)``."""
    width = layout.width
    n_kp = len(layout.kind_pairs)
    cols = np.zeros((n_kp, width), np.int64)
    sign = np.zeros((n_kp, width), np.float64)
    for k, (a, b) in enumerate(np.asarray(layout.kind_pairs).tolist()):
        kt = int(layout.kind_pair_index(np.array([b]), np.array([a]))[0])
        if kt < 0:
            raise ValueError(
                f"{layout.block} layout has kind pair ({layout.kinds[a]}, {layout.kinds[b]}) but not "
                f"({layout.kinds[b]}, {layout.kinds[a]})"
            )
        valid = np.flatnonzero(layout.mask[k])
        unit = np.zeros((len(valid), width))
        unit[np.arange(len(valid)), valid] = 1.0
        ka, kb = np.full(len(valid), a), np.full(len(valid), b)
        blocks = coupled_to_blocks(unit, ka, kb, layout, basis)
        na, nb = basis[layout.kinds[a]].n_orbitals, basis[layout.kinds[b]].n_orbitals
        dense = blocks.data.reshape(len(valid), na, nb).transpose(0, 2, 1).reshape(len(valid), -1)
        blocks_t = blocks._replace(data=np.ascontiguousarray(dense).ravel(), shape=blocks.shape[:, ::-1].copy())
        image = blocks_to_coupled(blocks_t, kb, ka, layout, basis)  # (n_valid, D): row = image of a unit column
        big = np.abs(image) > 1e-12
        if not (np.all(big.sum(axis=1) == 1) and np.allclose(np.abs(image[big]), 1.0, atol=1e-10)):
            raise ValueError(f"pair transpose of kind pair {k} is not a signed permutation (coupling convention?)")
        src, dst = np.nonzero(big)
        if not np.array_equal(np.sort(dst), np.flatnonzero(layout.mask[kt])):
            raise ValueError(f"pair transpose of kind pair {k} does not cover the columns of its reverse {kt}")
        cols[kt, dst] = valid[src]
        sign[kt, dst] = np.round(image[src, dst])
    return cols, sign

"""Streamed inference: augmented partitions through the model one at a time, per-image blocks out.

The atoms are split into parts (``hamforge.partition``; Low-NN bisection by default, compact boxes) and each
part is augmented with a halo of ``model.config.halo`` hops, which makes the outputs of its labelled atoms and
of the edges into them exactly the full-graph ones. A part owns its atoms and every edge into them
(incoming-edge ownership), hence complete block rows. Each part runs under ``torch.no_grad()``; its labelled
outputs are converted from the coupled to the uncoupled basis in chunks and scattered into the flat per-edge
block array (the output), so peak memory is one part's activations plus the outputs.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch

from hamforge.basis import build_layout
from hamforge.graph import RaggedBlocks, coupled_to_blocks, ragged_blocks
from hamforge.model import (
    EDGE_INDEX,
    EDGE_OUT,
    EDGE_VEC,
    NODE_OUT,
    NUMBERS,
    parse_irreps,
)
from hamforge.partition import iter_augment, partition_atoms
from hamforge.predict._inputs import PredictError

__all__ = ["DEFAULT_ATOMS_PER_PART", "PARALLEL", "predict_blocks", "ranges"]

PARALLEL = ("partitions", "halo")  # predict_blocks(parallel=...): augmented parts streamed here | halo ranks

# Labelled atoms per part: with ~100 edges per atom (a-Si at 8 Angstrom) and a 1-2 hop halo a part is
# ~0.5-1.5 M edges, a few GB of activations at l_max 2-4 under no_grad.
DEFAULT_ATOMS_PER_PART = 2048
# Edges per coupled -> uncoupled conversion chunk (bounds the dense temporaries).
_UNCOUPLE_CHUNK = 1 << 16


def ranges(starts, lengths) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n), vectorized."""
    lengths = np.asarray(lengths, np.int64)
    before = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, np.int64) - before, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _empty_blocks(n_rows, n_cols) -> RaggedBlocks:
    return ragged_blocks(np.zeros(int(np.sum(n_rows * n_cols))), n_rows, n_cols)


def predict_blocks(
    model,
    nl,
    atom_kind,
    basis,
    positions,
    *,
    n_parts: int | None = None,
    atoms_per_part: int = DEFAULT_ATOMS_PER_PART,
    method: str = "lownn",
    device=None,
    progress: bool | None = None,
    parallel: str = "partitions",
) -> tuple[RaggedBlocks, RaggedBlocks, dict] | None:
    """Per-image blocks of the model's H on graph ``nl``: ``(node_blocks (N), edge_blocks (E), timings)``.

    ``atom_kind``: (N,) kind ids (the model's species); ``basis``: kind -> ElementBasis of ``config.kinds``.
    ``n_parts`` (default ``ceil(N / atoms_per_part)``) parts of ``method`` ("lownn", "slices", "metis");
    1 part is the full graph. Blocks are raw model outputs (not symmetrized), float64, CP2K orbital order.
    ``parallel="halo"``: one part of ``method`` per rank of the torch.distributed group (torchrun/srun),
    halo-exchanged every layer (``hamforge.parallel``; ``n_parts`` and ``atoms_per_part`` are not used);
    collective, the blocks are returned on rank 0 and None on the other ranks.
    """
    if parallel not in PARALLEL:
        raise PredictError(f"parallel: expected one of {PARALLEL}, got {parallel!r}")
    cfg = model.config
    kinds = tuple(cfg.kinds)
    node_layout, pair_layout = build_layout(basis, kinds, "node"), build_layout(basis, kinds, "pair")
    for name, layout, terms in (("node", node_layout, cfg.node_terms), ("pair", pair_layout, cfg.edge_terms)):
        if parse_irreps(layout.irreps) != terms:
            raise PredictError(
                f"model: its {name} output irreps do not match the {name} layout of its own basis "
                f"({layout.irreps}); the checkpoint is inconsistent"
            )
    n = nl.n_atoms
    if n_parts is None:
        n_parts = max(1, math.ceil(n / int(atoms_per_part)))
    n_parts = min(int(n_parts), n)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    norb = np.array([basis[k].n_orbitals for k in kinds], np.int64)[atom_kind]
    i, j = nl.edge_index
    nodes, edges = _empty_blocks(norb, norb), _empty_blocks(norb[i], norb[j])
    t = {"partition_s": 0.0, "model_s": 0.0, "uncouple_s": 0.0}
    if parallel == "halo":
        layouts = (node_layout, pair_layout)
        return _predict_halo(model, nl, atom_kind, basis, positions, method, device, (nodes, edges), layouts, t)
    t0 = time.perf_counter()
    assignment = np.zeros(n, np.int64) if n_parts == 1 else partition_atoms(nl, positions, method, n_parts)
    t["partition_s"] += time.perf_counter() - t0
    halo = cfg.halo if n_parts > 1 else 0
    parts = iter_augment(nl, assignment, halo)
    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm import tqdm

    bar = tqdm(total=n_parts, desc="predict", unit="part", disable=not progress, leave=False)
    numbers_all = torch.as_tensor(np.asarray(atom_kind, np.int64))
    try:
        while True:
            t0 = time.perf_counter()
            part = next(parts, None)
            t["partition_s"] += time.perf_counter() - t0
            if part is None:
                break
            t0 = time.perf_counter()
            if n_parts == 1:
                node_ids, edge_ids, eil, n_lab = np.arange(n), np.arange(nl.n_edges), nl.edge_index, n
                lab_edges = np.arange(nl.n_edges)
            else:
                node_ids, edge_ids, eil, n_lab = part.nodes, part.edges, part.edge_index_local, part.n_labelled
                lab_edges = np.flatnonzero(part.edge_is_labelled)
                if cfg.n_layers == 1 and not cfg.edge_reads_updated:
                    # One layer: the outputs of a labelled atom and of the edges into it read only those edges and
                    # the neighbours' *initial* (species) embeddings, so the edges into halo atoms are dead work
                    # (~70% of a 2048-atom part at 9 Angstrom). The halo atoms stay as nodes.
                    edge_ids, eil = edge_ids[lab_edges], eil[:, lab_edges]
                    lab_edges = np.arange(lab_edges.shape[0])
            graph = {
                NUMBERS: numbers_all[torch.tensor(node_ids)].to(device),  # copies: part arrays are read-only
                EDGE_INDEX: torch.tensor(eil).to(device),
                EDGE_VEC: torch.as_tensor(nl.vec[edge_ids]).to(device=device, dtype=model.dtype),
            }
            with torch.no_grad():
                out = model(graph)
                node_c = out[NODE_OUT][:n_lab].to("cpu", torch.float64).numpy()
                edge_c = out[EDGE_OUT][torch.as_tensor(lab_edges, device=device)].to("cpu", torch.float64).numpy()
            del out, graph
            t["model_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            atoms, g = np.asarray(node_ids[:n_lab], np.int64), np.asarray(edge_ids[lab_edges], np.int64)
            _put((nodes, edges), (node_layout, pair_layout), nl, atom_kind, basis, (atoms, node_c), (g, edge_c))
            t["uncouple_s"] += time.perf_counter() - t0
            bar.update(1)
    finally:
        bar.close()
    return nodes, edges, {**t, "n_parts": n_parts, "halo": halo}


def _put(dest, layouts, nl, atom_kind, basis, node_part, edge_part) -> None:
    """Coupled-basis outputs ``(atom ids, node_c)`` and ``(edge ids, edge_c)`` into the blocks ``dest``
    (node, edge) via ``layouts`` (node, pair), uncoupled in chunks of edges."""
    (nodes, edges), (node_layout, pair_layout) = dest, layouts
    (atoms, node_c), (g, edge_c) = node_part, edge_part
    i, j = nl.edge_index
    _scatter(nodes, atoms, coupled_to_blocks(node_c, atom_kind[atoms], atom_kind[atoms], node_layout, basis))
    for a in range(0, g.shape[0], _UNCOUPLE_CHUNK):
        ge = g[a : a + _UNCOUPLE_CHUNK]
        blocks = coupled_to_blocks(
            edge_c[a : a + _UNCOUPLE_CHUNK], atom_kind[i[ge]], atom_kind[j[ge]], pair_layout, basis
        )
        _scatter(edges, ge, blocks)


def _predict_halo(model, nl, atom_kind, basis, positions, method, device, dest, layouts, t):
    """``parallel="halo"`` branch of :func:`predict_blocks` (rank 0: blocks, other ranks: None)."""
    from hamforge.predict._halo import halo_outputs, world_size

    t0 = time.perf_counter()
    try:
        got = halo_outputs(model, nl, atom_kind, positions, method, device)
    except ValueError as exc:
        raise PredictError(str(exc)) from None
    t["model_s"] += time.perf_counter() - t0
    if got is None:
        return None
    t0 = time.perf_counter()
    _put(dest, layouts, nl, atom_kind, basis, (np.arange(nl.n_atoms), got[0]), (np.arange(nl.n_edges), got[1]))
    t["uncouple_s"] += time.perf_counter() - t0
    return (*dest, {**t, "n_parts": world_size(), "halo": 1})


def _scatter(dest: RaggedBlocks, ids: np.ndarray, blocks: RaggedBlocks) -> None:
    """Write ``blocks`` (in the order of ``ids``) into blocks ``ids`` of ``dest``."""
    dest.data[ranges(dest.offsets[ids], dest.offsets[ids + 1] - dest.offsets[ids])] = blocks.data

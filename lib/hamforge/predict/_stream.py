"""Streamed prediction: memory of one part, whatever the structure's size (``docs/predict.md``).

Two sweeps, nothing of size O(edges of the structure) in memory (only positions and a few integers per atom):

1. **Parts** (spatially compact, Low-NN bisection of the positions, ``atoms_per_part`` each). Per part, the edges
   of its atoms and of its halo (``config.halo`` hops) come from a :class:`hamforge.graph.NeighborSearch` (the
   exact rows of the neighbour list, no global list), the model runs on that augmented graph, and the raw block
   rows of the part's atoms go to a :class:`RowStore` on disk next to the output. The lattice images met (by the
   H edges and by the S edges) are recorded.
2. **Row slabs** in atom order. Per slab: its H rows and their partners' blocks from the store, symmetrized
   exactly as the in-memory prediction does (``(H_ij(R) + H_ji(-R)^T) / 2``, bit for bit the same); its exact S
   blocks from the basis (each pair computed in one canonical orientation, ``i < j`` or ``R > 0`` for a self
   image, so S is exactly symmetric; within 1e-15 of the in-memory S, which averages the two orientations); then
   per-image CSR rows (and Gamma rows only when the cell is small enough for two images of one pair to be in
   range) appended to the matrix file.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hamforge.basis import build_layout, orbital_table
from hamforge.geometry import frozen_neighbor_list
from hamforge.graph import coupled_to_blocks
from hamforge.graph._search import NeighborSearch
from hamforge.model import EDGE_INDEX, EDGE_OUT, EDGE_VEC, NODE_OUT, NUMBERS
from hamforge.partition import partition_atoms
from hamforge.predict._infer import DEFAULT_ATOMS_PER_PART
from hamforge.predict._inputs import PredictError
from hamforge.predict._store import RowStore
from hamforge.predict._stream_write import WriteJob, peak_rss_mb, write_matrices

__all__ = ["ImageBox", "stream_prediction"]

logger = logging.getLogger(__name__)

_UNCOUPLE_CHUNK = 1 << 16


class ImageBox:
    """Every lattice image an edge of range ``r_max`` can have, numbered lexicographically: ``R_k`` in
    ``[-b_k, b_k]`` along periodic axes (from the plane spacings and how far the positions lie outside the cell),
    0 along open ones; the image ``-R`` of image ``k`` is ``K - 1 - k``. Built from the cell, not from the edges."""

    def __init__(self, positions, cell, pbc, r_max: float):
        pbc = np.asarray(pbc, bool)
        b = np.zeros(3, np.int64)
        periodic = np.flatnonzero(pbc)
        if periodic.size:
            dual = np.linalg.pinv(np.asarray(cell, np.float64)[periodic])  # (3, p)
            frac = np.asarray(positions, np.float64) @ dual
            wrap = np.floor(frac)
            span = (wrap.max(axis=0) - wrap.min(axis=0)) if frac.shape[0] else 0
            reach = r_max * np.linalg.norm(dual, axis=0) * (1 + 1e-6)
            b[periodic] = np.ceil(reach).astype(np.int64) + 1 + np.asarray(span, np.int64)
        self.bound = b
        self.span = 2 * b + 1
        self.n = int(np.prod(self.span))

    def index(self, shift) -> np.ndarray:
        s = np.asarray(shift, np.int64) + self.bound
        if s.size and (np.any(s < 0) or np.any(s >= self.span)):
            raise AssertionError("image outside the box")  # internal: the box bounds every edge's image
        return (s[:, 0] * self.span[1] + s[:, 1]) * self.span[2] + s[:, 2]

    def shifts(self, ids) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        s2 = ids % self.span[2]
        s1 = (ids // self.span[2]) % self.span[1]
        s0 = ids // (self.span[1] * self.span[2])
        return np.stack([s0, s1, s2], axis=1) - self.bound


def stream_prediction(
    model,
    structure,
    atom_kind,
    path,
    *,
    s_range: float,
    basis_file=None,
    atoms_per_part: int = DEFAULT_ATOMS_PER_PART,
    method: str = "lownn",
    h_dtype=np.float64,
    provenance: dict | None = None,
    inputs=(),
    progress: bool | None = None,
    overlap_check_orbitals: int = 50_000,
    device=None,
    parallel: str = "partitions",
):
    """Predict H (and compute the exact S to ``s_range``) of ``structure`` and write the matrix file ``path``
    (version 3) with bounded memory. Returns the provenance written (None on ranks other than 0).

    ``parallel="ranks"``: collective over the torch.distributed ranks (torchrun/srun): rank r predicts parts
    r, r + W, ... into its own row store, writes its contiguous share of the rows into ``path.part<r>of<W>.h5``,
    and rank 0 writes ``path``, whose CSR data are HDF5 virtual datasets over those files (keep them beside it).
    No rank gathers the matrices; each holds its parts, one row slab, and O(N) integers."""
    from hamforge.io import check_output_path
    from hamforge.predict._inputs import model_basis

    check_output_path(path, inputs)  # before any work: an output that would replace an input, a folder, ...
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    basis = model_basis(cfg)
    t_all = time.perf_counter()
    times = {"graph_s": 0.0, "partition_s": 0.0, "model_s": 0.0, "uncouple_s": 0.0, "overlap_s": 0.0, "write_s": 0.0}
    kinds_label = np.asarray(structure.kinds, dtype=object)
    tab = orbital_table(kinds_label, basis)
    n_orb = np.asarray(tab.n_orb, np.int64)
    n = n_orb.shape[0]
    s_cut = max(float(cfg.r_cut), float(s_range))
    search_h, search_s = _searches(structure, cfg.r_cut, s_cut)
    box = ImageBox(structure.positions, structure.cell, structure.pbc, s_cut)
    need = _check_disk(path, n_orb, search_h, search_s, np.dtype(h_dtype).itemsize)
    n_parts = max(1, min(n, math.ceil(n / int(atoms_per_part))))
    t0 = time.perf_counter()
    assignment = _parts(structure, cfg.r_cut, n_parts, method)
    times["partition_s"] += time.perf_counter() - t0
    if progress is None:
        progress = sys.stderr.isatty()
    used = np.zeros(box.n, bool)
    rank, world = _rank_world(parallel)
    folder = _shared_folder(path, rank, world)
    store = RowStore(Path(folder) / f"rank{rank}", n_orb, box.n)
    try:
        mine = [p for p in range(n_parts) if p % world == rank]
        searches = (search_h, search_s)
        _predict_parts(model, cfg, basis, atom_kind, structure, assignment, mine, searches, box, store, used, times,
                       progress, device)  # fmt: skip
        store.close_writing()
        if world > 1:
            used = _merge(store, used, rank)
        store.check_complete()
        halo = 1 if cfg.n_layers == 1 and not cfg.edge_reads_updated else int(cfg.halo)
        prov = {**(provenance or {}), "n_parts": int(n_parts), "halo": halo if n_parts > 1 else 0}
        if world > 1:
            prov["ranks"] = world
        job = WriteJob(store, structure, basis, tab, box, used, search_s, h_dtype, times, progress, basis_file)
        prov = write_matrices(job, path, prov, inputs, overlap_check_orbitals, float(cfg.r_cut), rank, world)
    finally:
        store.remove()
        if world > 1:
            import torch.distributed as dist

            dist.barrier()  # every rank has read every store
        if rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
    took = time.perf_counter() - t_all
    logger.info("%s: %d atoms in %.1f s, peak memory %.0f MB (disk estimate %.2g GB)", path, n, took, peak_rss_mb(),
                need / 1e9)  # fmt: skip
    return prov


def _searches(structure, r_cut: float, s_cut: float):
    """Neighbour searches of H (the model's r_cut) and of S (the overlap range, the same object when equal)."""
    try:
        search_h = NeighborSearch(structure.positions, structure.cell, structure.pbc, r_cut)
        if s_cut == r_cut:
            return search_h, search_h
        return search_h, NeighborSearch(structure.positions, structure.cell, structure.pbc, s_cut)
    except ValueError as exc:
        raise PredictError(f"{structure.source}: {exc}") from None


# Bytes per stored matrix element besides the value: the compressed int32 column index (measured ~1.5-2 B on
# a-Si with shuffle + deflate) and some margin; the estimate only has to be an upper bound of the right size.
_INDEX_BYTES = 2.5


def _check_disk(path, n_orb, search_h, search_s, h_bytes: int) -> float:
    """Refuse before any work when the file plus the temporary row store would not fit on the output's disk.
    Mean degrees from the exact edges of up to 64 sample atoms. Returns the estimate (bytes)."""
    import shutil

    n = n_orb.shape[0]
    sample = np.random.default_rng(0).choice(n, min(n, 64), replace=False)
    deg_h = search_h.edges(sample).n_edges / sample.shape[0]
    deg_s = search_s.edges(sample).n_edges / sample.shape[0] if search_s is not search_h else deg_h
    m = float(n_orb.mean())
    h_elems, s_elems = n * m * m * (1 + deg_h), n * m * m * (1 + deg_s)
    file_bytes = h_elems * (h_bytes + _INDEX_BYTES) + s_elems * (8 + _INDEX_BYTES)
    store_bytes = h_elems * 8 + n * deg_h * 8
    free = shutil.disk_usage(_parent(path)).free
    if file_bytes + store_bytes > free:
        raise PredictError(
            f"{path}: the matrix file needs ~{file_bytes / 1e9:.3g} GB and its temporary row store ~"
            f"{store_bytes / 1e9:.3g} GB ({n} atoms, ~{deg_h:.0f} H and ~{deg_s:.0f} S neighbours per atom), but "
            f"{_parent(path)} has {free / 1e9:.3g} GB free; write elsewhere, tile less, or store H in float32"
        )
    return file_bytes + store_bytes


def _rank_world(parallel: str) -> tuple[int, int]:
    if parallel == "partitions":
        return 0, 1
    import torch.distributed as dist

    if parallel != "ranks" or not dist.is_initialized():
        raise PredictError(f"parallel: {parallel!r} needs torch.distributed ranks (torchrun/srun) for 'ranks'")
    return dist.get_rank(), dist.get_world_size()


def _shared_folder(path, rank: int, world: int) -> str:
    """The row stores' folder beside the output (rank 0 makes it, every rank learns its name)."""
    name = [tempfile.mkdtemp(prefix=".hamforge-rows-", dir=str(_parent(path))) if rank == 0 else None]
    if world > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(name, src=0)
    Path(name[0], f"rank{rank}").mkdir()
    return name[0]


def _merge(store, used, rank):
    """Every rank's rows readable everywhere; the images met by any rank."""
    import torch
    import torch.distributed as dist

    store.merge(rank)
    u = torch.from_numpy(used.astype(np.uint8))
    dist.all_reduce(u, op=dist.ReduceOp.MAX)
    return u.numpy().astype(bool)


def _parent(path):
    from pathlib import Path

    return Path(path).resolve().parent


def _parts(structure, r_cut, n_parts, method) -> np.ndarray:
    """Part id of every atom: ``method`` ("lownn", "brick", "slices") on the positions with equal atom counts
    (no edges needed)."""
    n = structure.positions.shape[0]
    if n_parts == 1:
        return np.zeros(n, np.int64)
    z = np.zeros((2, 0), np.int64)
    nl0 = frozen_neighbor_list(
        z,
        np.zeros((0, 3), np.int64),
        np.zeros((0, 3)),
        np.zeros(0),
        n,
        r_cut,
        np.array(structure.cell, np.float64),
        np.array(structure.pbc, bool),
    )
    if method not in ("lownn", "brick", "slices"):
        raise PredictError(f"method: {method!r} needs the whole graph; streamed prediction takes lownn, brick, slices")
    weights = {} if method == "slices" else {"weights": np.ones(n)}
    try:
        return partition_atoms(nl0, structure.positions, method, n_parts, **weights)
    except ValueError as exc:
        raise PredictError(f"--parts / --atoms-per-part: {exc}") from None


def _predict_parts(
    model, cfg, basis, atom_kind, structure, assignment, mine, searches, box, store, used, times, progress, device
):
    from tqdm import tqdm

    search_h, search_s = searches
    kinds = tuple(cfg.kinds)
    node_layout, pair_layout = build_layout(basis, kinds, "node"), build_layout(basis, kinds, "pair")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    atom_kind = np.asarray(atom_kind, np.int64)
    numbers_all = torch.as_tensor(atom_kind)
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(int(assignment.max(initial=0)) + 2))
    prune = cfg.n_layers == 1 and not cfg.edge_reads_updated  # as in _infer: edges into halo atoms are dead work
    halo = 1 if prune else int(cfg.halo)
    search_net = search_h
    if cfg.net_r_cut is not None and cfg.net_r_cut < cfg.r_cut:
        # the network runs on the edges shorter than net_r_cut only (the model decides on its float32 distance):
        # the halo's own edges are needed only up to that range (a margin covers the float32 rounding)
        search_net = NeighborSearch(structure.positions, structure.cell, structure.pbc, cfg.net_r_cut * (1 + 1e-5))
    total = int(sum(bounds[p + 1] - bounds[p] for p in mine))
    bar = tqdm(total=total, desc="predict", unit="atom", disable=not progress, leave=False)
    t_start = time.perf_counter()
    try:
        done = 0
        for p in mine:
            labelled = order[bounds[p] : bounds[p + 1]]
            t0 = time.perf_counter()
            es, nodes, n_first = _augmented(search_h, search_net, labelled, halo, prune)
            if search_s is not search_h:
                used[box.index(search_s.edges(labelled).shift)] = True
            times["graph_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            lab = np.arange(n_first)  # the labelled atoms' edges come first
            sorter = np.argsort(nodes)
            rank = lambda ids: sorter[np.searchsorted(nodes, ids, sorter=sorter)]  # noqa: E731  (local node ids)
            graph = {
                NUMBERS: numbers_all[torch.as_tensor(nodes)].to(device),
                EDGE_INDEX: torch.as_tensor(np.stack([rank(es.i), rank(es.j)])).to(device),
                EDGE_VEC: torch.as_tensor(es.vec).to(device=device, dtype=model.dtype),
            }
            n_lab = labelled.shape[0]
            with torch.no_grad():
                out = model(graph)
                node_c = out[NODE_OUT][:n_lab].to("cpu", torch.float64).numpy()
                edge_c = out[EDGE_OUT][:n_first]
                edge_c = edge_c.to("cpu", torch.float64).numpy()
            del out, graph
            times["model_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            li, lj, lshift = es.i[lab], es.j[lab], es.shift[lab]
            layouts = (node_layout, pair_layout)
            node_data, edge_data = _uncouple(node_c, edge_c, atom_kind, nodes[:n_lab], li, lj, layouts, basis)
            img = box.index(lshift)
            used[img] = True
            # labelled atoms are nodes[:n_lab] in sorted order (see _augmented); their rows are li-sorted already
            store.append(nodes[:n_lab], node_data, li, lj, img, edge_data)
            times["uncouple_s"] += time.perf_counter() - t0
            bar.update(n_lab)
            done += n_lab
            bar.set_postfix(
                atoms_s=f"{done / max(time.perf_counter() - t_start, 1e-9):.0f}",
                peak_mb=f"{peak_rss_mb():.0f}",
                refresh=False,
            )
    finally:
        bar.close()


def _uncouple(node_c, edge_c, atom_kind, atoms, li, lj, layouts, basis):
    """Coupled-basis outputs of a part's labelled atoms and edges as flat uncoupled blocks (chunks of edges)."""
    node_layout, pair_layout = layouts
    node_data = coupled_to_blocks(node_c, atom_kind[atoms], atom_kind[atoms], node_layout, basis).data
    chunks = [np.zeros(0)]
    for a in range(0, li.shape[0], _UNCOUPLE_CHUNK):
        b = a + _UNCOUPLE_CHUNK
        chunks.append(coupled_to_blocks(edge_c[a:b], atom_kind[li[a:b]], atom_kind[lj[a:b]], pair_layout, basis).data)
    return node_data, np.concatenate(chunks)


def _augmented(search, search_net, labelled, halo: int, prune: bool):
    """``(edges, nodes, n_first)``: the part's graph. ``nodes``: the labelled atoms (sorted) first, then the halo
    atoms hop by hop (``halo`` hops); ``edges``: the incoming edges of the nodes at hop < ``halo`` (only the
    labelled atoms' with ``prune``), the labelled atoms' ``n_first`` first (sorted by ``(i, j, R)``, all within
    r_cut); the halo atoms' from ``search_net`` (the network's range: edges beyond it carry no messages)."""
    from hamforge.graph._search import EdgeSet

    labelled = np.sort(np.asarray(labelled, np.int64))
    sets = [search.edges(labelled)]
    layers, seen, frontier = [labelled], labelled, sets[0]
    for hop in range(1, halo + 1):
        new = np.setdiff1d(np.unique(frontier.j), seen)
        if not new.size:
            break
        layers.append(new)
        seen = np.union1d(seen, new)
        if hop < halo and not prune:
            frontier = search_net.edges(new)
            sets.append(frontier)
    if len(sets) == 1:
        return sets[0], np.concatenate(layers), sets[0].n_edges
    es = EdgeSet(*(np.concatenate([getattr(e, f) for e in sets]) for f in EdgeSet.__slots__))
    return es, np.concatenate(layers), sets[0].n_edges

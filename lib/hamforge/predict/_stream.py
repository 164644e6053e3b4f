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
import resource
import sys
import tempfile
import time

import numpy as np
import torch

from hamforge.basis import OverlapCalculator, build_layout, orbital_table
from hamforge.geometry import frozen_neighbor_list
from hamforge.graph import coupled_to_blocks
from hamforge.graph._search import NeighborSearch
from hamforge.io import matrix_file_writer
from hamforge.model import EDGE_INDEX, EDGE_OUT, EDGE_VEC, NODE_OUT, NUMBERS
from hamforge.partition import partition_atoms
from hamforge.predict._assemble import build_slab, slab_bounds
from hamforge.predict._infer import DEFAULT_ATOMS_PER_PART
from hamforge.predict._inputs import PredictError
from hamforge.predict._store import RowStore
from hamforge.predict._stream_blocks import Asymmetry, onsite, overlap_rows, pair_key, symmetrize

__all__ = ["ImageBox", "gamma_needed", "peak_rss_mb", "stream_prediction"]

logger = logging.getLogger(__name__)

_UNCOUPLE_CHUNK = 1 << 16


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
):
    """Predict H (and compute the exact S to ``s_range``) of ``structure`` and write the matrix file ``path``
    (version 3) with bounded memory. Returns the provenance written."""
    from hamforge.predict._inputs import model_basis

    cfg = model.config
    basis = model_basis(cfg)
    t_all = time.perf_counter()
    times = {"graph_s": 0.0, "partition_s": 0.0, "model_s": 0.0, "uncouple_s": 0.0, "overlap_s": 0.0, "write_s": 0.0}
    kinds_label = np.asarray(structure.kinds, dtype=object)
    tab = orbital_table(kinds_label, basis)
    n_orb = np.asarray(tab.n_orb, np.int64)
    n = n_orb.shape[0]
    s_cut = max(float(cfg.r_cut), float(s_range))
    try:
        search_h = NeighborSearch(structure.positions, structure.cell, structure.pbc, cfg.r_cut)
        search_s = (
            search_h
            if s_cut == cfg.r_cut
            else NeighborSearch(structure.positions, structure.cell, structure.pbc, s_cut)
        )
    except ValueError as exc:
        raise PredictError(f"{structure.source}: {exc}") from None
    box = ImageBox(structure.positions, structure.cell, structure.pbc, s_cut)
    need = _check_disk(path, n_orb, search_h, search_s, np.dtype(h_dtype).itemsize)
    n_parts = max(1, min(n, math.ceil(n / int(atoms_per_part))))
    t0 = time.perf_counter()
    assignment = _parts(structure, cfg.r_cut, n_parts, method)
    times["partition_s"] += time.perf_counter() - t0
    if progress is None:
        progress = sys.stderr.isatty()
    used = np.zeros(box.n, bool)
    folder = tempfile.mkdtemp(prefix=".hamforge-rows-", dir=str(_parent(path)))
    store = RowStore(folder, n_orb, box.n)
    try:
        _predict_parts(
            model,
            cfg,
            basis,
            atom_kind,
            structure,
            assignment,
            n_parts,
            (search_h, search_s),
            box,
            store,
            used,
            times,
            progress,
            device,
        )
        store.close_writing()
        halo = 1 if cfg.n_layers == 1 and not cfg.edge_reads_updated else int(cfg.halo)
        prov = {**(provenance or {}), "n_parts": int(n_parts), "halo": halo if n_parts > 1 else 0}
        prov = _assemble(
            store,
            structure,
            basis,
            tab,
            box,
            used,
            search_s,
            path,
            h_dtype,
            prov,
            inputs,
            overlap_check_orbitals,
            times,
            progress,
            basis_file,
            float(cfg.r_cut),
        )
    finally:
        store.remove()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    logger.info(
        "%s: %d atoms in %.1f s, peak memory %.0f MB (disk estimate was %.2g GB)",
        path,
        n,
        time.perf_counter() - t_all,
        peak_rss_mb(),
        need / 1e9,
    )
    return prov


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
    model, cfg, basis, atom_kind, structure, assignment, n_parts, searches, box, store, used, times, progress, device
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
    bounds = np.searchsorted(assignment[order], np.arange(n_parts + 1))
    prune = cfg.n_layers == 1 and not cfg.edge_reads_updated  # as in _infer: edges into halo atoms are dead work
    halo = 1 if prune else int(cfg.halo)
    search_net = search_h
    if cfg.net_r_cut is not None and cfg.net_r_cut < cfg.r_cut:
        # the network runs on the edges shorter than net_r_cut only (the model decides on its float32 distance):
        # the halo's own edges are needed only up to that range (a margin covers the float32 rounding)
        search_net = NeighborSearch(structure.positions, structure.cell, structure.pbc, cfg.net_r_cut * (1 + 1e-5))
    bar = tqdm(total=assignment.shape[0], desc="predict", unit="atom", disable=not progress, leave=False)
    t_start = time.perf_counter()
    try:
        for p in range(n_parts):
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
            node_data = coupled_to_blocks(
                node_c, atom_kind[nodes[:n_lab]], atom_kind[nodes[:n_lab]], node_layout, basis
            ).data
            edge_data = np.concatenate(
                [np.zeros(0)]
                + [
                    coupled_to_blocks(
                        edge_c[a : a + _UNCOUPLE_CHUNK],
                        atom_kind[li[a : a + _UNCOUPLE_CHUNK]],
                        atom_kind[lj[a : a + _UNCOUPLE_CHUNK]],
                        pair_layout,
                        basis,
                    ).data
                    for a in range(0, li.shape[0], _UNCOUPLE_CHUNK)
                ]
            )
            img = box.index(lshift)
            used[img] = True
            # labelled atoms are nodes[:n_lab] in sorted order (see _augmented); their rows are li-sorted already
            store.append(nodes[:n_lab], node_data, li, lj, img, edge_data)
            times["uncouple_s"] += time.perf_counter() - t0
            bar.update(n_lab)
            done = bounds[p + 1]
            bar.set_postfix(
                atoms_s=f"{done / max(time.perf_counter() - t_start, 1e-9):.0f}",
                peak_mb=f"{peak_rss_mb():.0f}",
                refresh=False,
            )
    finally:
        bar.close()


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


def gamma_needed(structure, r_max: float) -> bool:
    """True when two images of one atom pair (or an atom and its image) can both lie within ``r_max``: the
    Gamma matrices are then sums of several image blocks and the file stores them. Otherwise every Gamma element
    is one image element, which readers derive exactly."""
    pbc = np.asarray(structure.pbc, bool)
    if not pbc.any():
        return False
    periodic = np.flatnonzero(pbc)
    dual = np.linalg.pinv(np.asarray(structure.cell, np.float64)[periodic])
    heights = 1.0 / np.linalg.norm(dual, axis=0)  # lattice-plane spacings: no lattice vector is shorter
    return bool(heights.min() <= 2.0 * r_max * (1 + 1e-9))


def _assemble(
    store,
    structure,
    basis,
    tab,
    box,
    used,
    search_s,
    path,
    h_dtype,
    provenance,
    inputs,
    check_limit,
    times,
    progress,
    basis_file,
    r_cut,
):
    """Second sweep (module docstring): row slabs in atom order into the matrix file; returns the provenance."""
    import scipy.sparse as sp
    from tqdm import tqdm

    t_write = time.perf_counter()
    n_orb, offs, norb = np.asarray(tab.n_orb, np.int64), np.asarray(tab.offset, np.int64), int(tab.n_orbitals)
    n, kc = n_orb.shape[0], box.n
    zero_c = int(box.index(np.zeros((1, 3), np.int64))[0])
    used[zero_c] = True
    final = np.cumsum(used) - 1
    shifts = box.shifts(np.flatnonzero(used))
    k, zero = shifts.shape[0], int(final[zero_c])
    gamma = gamma_needed(structure, search_s.r_cut)
    kinds = np.asarray(structure.kinds).astype(str)
    used_basis = {kd: basis[kd] for kd in sorted(set(kinds.tolist()))}
    overlaps = OverlapCalculator(structure.positions, structure.cell, kinds, used_basis, basis_file=basis_file)
    asym, s_asym = Asymmetry(), Asymmetry()
    check = norb <= check_limit
    keep_s, n_edges_s = [], 0
    ptr = np.concatenate([[0], np.cumsum(store.degree)])
    grow = 1.0 + (search_s.r_cut / max(r_cut, 1e-9)) ** 3  # S rows are this much longer
    bar = tqdm(total=n, desc="write", unit="atom", disable=not progress, leave=False)
    with matrix_file_writer(path, structure, used_basis, dict(provenance or {}), inputs=inputs) as w:
        w.write_shifts(shifts)
        iw = {"H": w.csr_writer("images/H", (norb, k * norb), h_dtype), "S": w.csr_writer("images/S", (norb, k * norb))}
        gw = {"H": w.csr_writer("H", (norb, norb), h_dtype), "S": w.csr_writer("S", (norb, norb))} if gamma else {}
        for a, b in slab_bounds(n_orb, ptr, store.degree * float(n_orb.mean()) * grow):
            atoms = np.arange(a, b, dtype=np.int64)
            # H: raw rows and their partners' blocks from the store, symmetrized
            node_raw, i, j, img, edge_raw, rev_raw, _ = store.read_slab(a, b)
            key = pair_key(i, j, img, n, kc)
            first = i * (n * kc) + j * kc + img == key
            h_edges = symmetrize(edge_raw, rev_raw, n_orb[i], n_orb[j], asym, first)
            h_nodes = onsite(node_raw, n_orb[atoms], asym)
            # S: exact blocks, each pair in its canonical orientation
            t0 = time.perf_counter()
            es = search_s.edges(atoms)
            s_img = box.index(es.shift)
            s_key = pair_key(es.i, es.j, s_img, n, kc)
            s_edges = overlap_rows(overlaps, es, s_img, s_key, n, kc, n_orb)
            s_nodes = onsite(overlaps.node_blocks(atoms), n_orb[atoms], s_asym)
            n_edges_s += es.n_edges
            times["overlap_s"] += time.perf_counter() - t0
            for name, nodes_v, edges_t, vals in (
                ("H", h_nodes, (i, j, final[img], key), h_edges),
                ("S", s_nodes, (es.i, es.j, final[s_img], s_key), s_edges),
            ):
                want_gamma = gamma or (name == "S" and check)
                g, im = build_slab(a, b, n_orb, offs, nodes_v, edges_t, vals, zero, k, want_gamma)
                iw[name].append_csr(im)
                if gamma:
                    gw[name].append_csr(g)
                if name == "S" and check:
                    keep_s.append(g)
            bar.update(b - a)
            bar.set_postfix(peak_mb=f"{peak_rss_mb():.0f}", refresh=False)
        bar.close()
        prov = w.provenance
        prov.update(
            {
                "n_atoms": int(n),
                "n_edges": int(ptr[-1]),
                "r_cut": float(r_cut),
                "symmetrized": True,
                "asymmetry_before_symmetrization_hartree": asym.report(),
                "overlap_asymmetry_before_symmetrization": s_asym.report(),
                "n_edges_S": int(n_edges_s),
                "gamma_stored": bool(gamma),
                "h_dtype": np.dtype(h_dtype).name,
            }
        )
        if check:
            from hamforge.basis import OverlapError, check_overlap_positive

            try:
                lam = check_overlap_positive(sp.vstack(keep_s, format="csr"), where=str(path))
            except OverlapError as exc:
                raise PredictError(
                    f"{exc}; the overlap truncated at {search_s.r_cut} Angstrom is not positive definite "
                    "(a smaller --overlap-eps widens the range)"
                ) from None
            prov["min_eigenvalue_S"] = lam
        else:
            prov["min_eigenvalue_S"] = None
        times["write_s"] = time.perf_counter() - t_write - times["overlap_s"]
        prov["timings_s"] = dict(times)
        prov["peak_rss_mb"] = peak_rss_mb()
        out = dict(prov)
    return out

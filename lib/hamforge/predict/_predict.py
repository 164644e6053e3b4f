"""Prediction of H (and the exact S) for any structure, tiled or not, written as a matrix file version 2.

Pipeline (``docs/predict.md``): structure -> tiling -> neighbour list at the model's r_cut -> streamed
partitioned inference (``_infer``) -> explicit symmetrization (``_symmetry``) -> exact per-image overlaps
from ``hamforge.basis`` on the edges within the basis's overlap range (not the model's r_cut: S is a property of
the basis and the geometry, and a truncated S can stop being positive definite), streamed -> per-image and
Gamma CSR rows written slab by slab (``_assemble``) -> positive-definiteness check of S where affordable.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hamforge.basis import iter_overlap_blocks, orbital_table, overlap_range
from hamforge.graph import (
    RaggedBlocks,
    neighbor_list,
    ragged_blocks,
    reverse_edge_index,
)
from hamforge.io import Structure, matrix_file_writer
from hamforge.predict._assemble import image_table, iter_row_slabs
from hamforge.predict._infer import DEFAULT_ATOMS_PER_PART, predict_blocks, ranges
from hamforge.predict._inputs import (
    PredictError,
    load_structure,
    model_basis,
    structure_kinds,
)
from hamforge.predict._stream import stream_prediction
from hamforge.predict._stream_write import check_s_positive, gamma_needed
from hamforge.predict._symmetry import symmetrize_blocks

__all__ = [
    "PREDICT_PARALLEL",
    "DEFAULT_OVERLAP_CHECK_ORBITALS",
    "DEFAULT_OVERLAP_EPS",
    "Prediction",
    "predict_file",
    "predict_structure",
    "write_prediction",
]

logger = logging.getLogger(__name__)

# predict_file(parallel=...): streamed parts in this process | the same parts over torchrun/srun ranks, each writing
# its rows | one graph split over the ranks with a halo exchange every layer, gathered by rank 0 (in memory)
PREDICT_PARALLEL = ("partitions", "ranks", "halo")

# Largest Gamma S whose smallest eigenvalue is computed (Lanczos on the whole matrix; ~1 min at this size).
DEFAULT_OVERLAP_CHECK_ORBITALS = 50_000

# S blocks of atom pairs whose block norm ||S_ij||_F is below this are left out (hamforge.basis.overlap_range).
# CP2K's own screening (EPS_PGF_ORB) leaves ~1e-7 differences in the S it prints (docs/overlap.md), so 1e-8 keeps
# the predicted S at least as complete as the DFT one; Si SZV: 11.45 A (1e-12 would be 13.9 A, 1.9x the edges).
DEFAULT_OVERLAP_EPS = 1e-8


@dataclass(eq=False)
class Prediction:
    """Everything a prediction produced (in memory). Fields::

    structure   # Structure             | the (tiled) structure
    atom_kind   # (N,) int64            | kind ids (positions in basis_kinds)
    basis       # kind -> ElementBasis  | the model's basis
    nl          # NeighborList          | edges (i, j, R) within the model's r_cut: the edges of H
    H_nodes     # RaggedBlocks (N)      | on-site blocks H_ii(0), Hartree
    H_edges     # RaggedBlocks (E)      | per-image blocks H_ij(R)
    S_nodes     # RaggedBlocks (N) | None
    S_edges     # RaggedBlocks (E_S) | None | per-image blocks S_ij(R) on the edges of nl_S
    nl_S        # NeighborList | None   | edges of S: within max(r_cut, overlap range of the basis)
    report      # dict                  | asymmetry, sizes, timings (seconds per step)
    """

    structure: Structure
    atom_kind: np.ndarray
    basis: dict
    nl: Any
    H_nodes: RaggedBlocks
    H_edges: RaggedBlocks
    S_nodes: RaggedBlocks | None
    S_edges: RaggedBlocks | None
    nl_S: Any = None
    report: dict = field(default_factory=dict)


def predict_structure(
    model,
    structure: Structure,
    atom_kind=None,
    *,
    overlap: bool = True,
    overlap_eps: float = DEFAULT_OVERLAP_EPS,
    symmetrize: bool = True,
    basis_file=None,
    n_parts: int | None = None,
    atoms_per_part: int = DEFAULT_ATOMS_PER_PART,
    method: str = "lownn",
    device=None,
    progress: bool | None = None,
    parallel: str = "partitions",
) -> Prediction | None:
    """Predicted per-image H blocks (and exact S blocks) of ``structure`` (already tiled).

    ``atom_kind`` defaults to :func:`structure_kinds`. S is computed on the pairs within the basis's overlap
    range at ``overlap_eps`` (:func:`hamforge.basis.overlap_range`; at least the model's r_cut, so every H edge
    has its S block). ``symmetrize=False`` keeps the raw network outputs (the report still gives their
    asymmetry). Other options: :func:`hamforge.predict._infer.predict_blocks` (``parallel="halo"``: collective
    over the torch.distributed ranks; None on ranks other than 0).
    """
    cfg = model.config
    basis = model_basis(cfg)
    if atom_kind is None:
        atom_kind = structure_kinds(structure, cfg)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        nl = neighbor_list(structure.positions, structure.cell, structure.pbc, cfg.r_cut)
    except ValueError as exc:
        raise PredictError(f"{structure.source}: {exc}") from None
    rev = reverse_edge_index(nl)
    times["graph_s"] = time.perf_counter() - t0
    blocks = predict_blocks(
        model,
        nl,
        atom_kind,
        basis,
        structure.positions,
        n_parts=n_parts,
        atoms_per_part=atoms_per_part,
        method=method,
        device=device,
        progress=progress,
        parallel=parallel,
    )
    if blocks is None:  # a rank other than 0 of a halo-exchanged prediction
        return None
    h_nodes, h_edges, t_inf = blocks
    times.update({k: v for k, v in t_inf.items() if k.endswith("_s")})
    t0 = time.perf_counter()
    work = h_nodes, h_edges
    if not symmetrize:  # measure on copies, keep the raw blocks
        work = tuple(RaggedBlocks(b.data.copy(), b.offsets, b.shape) for b in work)
    asym = symmetrize_blocks(*work, rev)
    times["symmetrize_s"] = time.perf_counter() - t0
    s_nodes = s_edges = nl_s = None
    s_asym, s_info = {}, {}
    if overlap:
        t0 = time.perf_counter()
        nl_s, s_range = _overlap_edges(structure, nl, basis, basis_file, overlap_eps)
        s_nodes, s_edges = _overlap(structure, nl_s, basis, basis_file)
        s_asym = symmetrize_blocks(s_nodes, s_edges, reverse_edge_index(nl_s) if nl_s is not nl else rev)
        times["overlap_s"] = time.perf_counter() - t0
        s_info = {"overlap_eps": float(overlap_eps), "overlap_range_angstrom": s_range, "n_edges_S": int(nl_s.n_edges)}
    report = {
        "n_atoms": int(nl.n_atoms),
        "n_edges": int(nl.n_edges),
        "r_cut": float(cfg.r_cut),
        "n_parts": int(t_inf["n_parts"]),
        "halo": int(t_inf["halo"]),
        "symmetrized": bool(symmetrize),
        "asymmetry_before_symmetrization_hartree": asym,
        "timings_s": times,
        **s_info,
    }
    if s_asym:
        report["overlap_asymmetry_before_symmetrization"] = s_asym
    logger.info(
        "%s: predicted %d atoms, %d edges in %d part(s); asymmetry removed: max %.3g Ha per-image, "
        "%.3g Ha on-site (max |H| %.3g Ha)",
        structure.source,
        nl.n_atoms,
        nl.n_edges,
        t_inf["n_parts"],
        asym["edge_asymmetry_max"],
        asym["onsite_asymmetry_max"],
        asym["max_abs"],
    )
    kinds = np.asarray(atom_kind, np.int64)
    return Prediction(structure, kinds, basis, nl, h_nodes, h_edges, s_nodes, s_edges, nl_s, report)


def _overlap_range(structure, basis, basis_file, eps) -> float:
    """Overlap range (Angstrom) of the kinds of ``structure`` at ``eps`` (:func:`hamforge.basis.overlap_range`)."""
    from hamforge.basis import BasisError, OverlapError

    used = {k: basis[k] for k in sorted(set(np.asarray(structure.kinds).tolist()))}
    try:
        return float(overlap_range(used, eps=eps, basis_file=basis_file))
    except (BasisError, OverlapError) as exc:
        raise PredictError(
            f"overlap_eps / basis of the model: {exc} (the exact S needs the model's basis sets: --basis-file FILE)"
        ) from None


def _overlap_edges(structure, nl, basis, basis_file, eps) -> tuple[Any, float]:
    """(neighbour list of the S blocks, overlap range in Angstrom): the model's ``nl`` itself when the basis's
    range at ``eps`` is within r_cut, else a neighbour list at that range (a superset of ``nl``)."""
    s_range = _overlap_range(structure, basis, basis_file, eps)
    if s_range <= nl.r_cut:
        return nl, s_range
    try:
        return neighbor_list(structure.positions, structure.cell, structure.pbc, s_range), s_range
    except ValueError as exc:
        raise PredictError(f"{structure.source}: overlap range {s_range} Angstrom: {exc}") from None


def _overlap(structure, nl, basis, basis_file) -> tuple[RaggedBlocks, RaggedBlocks]:
    """Exact S blocks on the edges of ``nl`` (hamforge.basis, chunk by chunk of centre atoms)."""
    from hamforge.basis import BasisError

    kinds = np.asarray(structure.kinds, dtype=object)
    n_orb = orbital_table(kinds, basis).n_orb
    i, j = nl.edge_index
    nodes = ragged_blocks(np.zeros(int((n_orb * n_orb).sum())), n_orb, n_orb)
    edges = ragged_blocks(np.zeros(int((n_orb[i] * n_orb[j]).sum())), n_orb[i], n_orb[j])
    used = {k: basis[k] for k in sorted(set(kinds.tolist()))}
    try:
        for ch in iter_overlap_blocks(
            structure.positions, structure.cell, kinds.astype(str), used, nl.edge_index, nl.shift, basis_file=basis_file
        ):
            nodes.data[ranges(nodes.offsets[ch.atoms], n_orb[ch.atoms] ** 2)] = ch.node_data
            edges.data[ranges(edges.offsets[ch.edges], edges.offsets[ch.edges + 1] - edges.offsets[ch.edges])] = (
                ch.edge_data
            )
    except BasisError as exc:
        raise PredictError(
            f"exact overlaps of the model's basis: {exc} (the exact S needs the model's basis sets: --basis-file FILE)"
        ) from None
    return nodes, edges


def write_prediction(
    pred: Prediction,
    path: str | os.PathLike,
    provenance: dict | None = None,
    *,
    inputs=(),
    overlap_check_orbitals: int = DEFAULT_OVERLAP_CHECK_ORBITALS,
    h_dtype=np.float64,
) -> dict:
    """Write ``pred`` as a matrix file version 3 (per-image ``/images``, Gamma H and S when they are not the plain
    image sums) row slab by row slab, atomically; H in ``h_dtype`` (float64 or float32); S's smallest scaled
    eigenvalue is computed when Norb <= ``overlap_check_orbitals`` and must be positive. Returns the provenance
    written."""

    if pred.S_nodes is None:
        raise PredictError(f"{path}: a matrix file needs S; predict with overlap=True")
    t0 = time.perf_counter()
    s = pred.structure
    tab = orbital_table(np.asarray(s.kinds, dtype=object), pred.basis)
    nl_s = pred.nl if pred.nl_S is None else pred.nl_S
    shifts, (image_h, image_s) = image_table(pred.nl, nl_s)
    zero = int(np.flatnonzero(np.all(shifts == 0, axis=1))[0])
    norb, k = tab.n_orbitals, shifts.shape[0]
    used = {kd: pred.basis[kd] for kd in sorted(set(np.asarray(s.kinds).tolist()))}
    prov = {**(provenance or {}), **{kk: v for kk, v in pred.report.items() if kk != "timings_s"}}
    check = norb <= overlap_check_orbitals
    keep_s = [] if check else None
    gamma = gamma_needed(s, nl_s.r_cut)
    with matrix_file_writer(path, s, used, prov, inputs=inputs) as w:
        w.write_shifts(shifts)
        for name, nodes, edges, nl, image_of in (
            ("H", pred.H_nodes, pred.H_edges, pred.nl, image_h),
            ("S", pred.S_nodes, pred.S_edges, nl_s, image_s),
        ):
            dtype = h_dtype if name == "H" else np.float64
            gw = w.csr_writer(name, (norb, norb), dtype) if gamma else None
            iw = w.csr_writer(f"images/{name}", (norb, k * norb), dtype)
            rev = reverse_edge_index(nl)
            want = gamma or (name == "S" and check)
            slabs = iter_row_slabs(nodes, edges, nl, rev, tab.n_orb, tab.offset, image_of, zero, k, want)
            for g, image in slabs:
                iw.append_csr(image)
                if gw is not None:
                    gw.append_csr(g)
                if name == "S" and keep_s is not None:
                    keep_s.append(g)
        w.provenance["gamma_stored"] = bool(gamma)
        w.provenance["h_dtype"] = np.dtype(h_dtype).name
        if check:
            lam = check_s_positive(keep_s, path, nl_s.r_cut)
            w.provenance["min_eigenvalue_S"] = lam
            logger.info("%s: smallest eigenvalue of S: %.4g", path, lam)
        else:
            w.provenance["min_eigenvalue_S"] = None
            logger.info(
                "%s: %d orbitals > %d: positive-definiteness of S not checked", path, norb, overlap_check_orbitals
            )
        pred.report.setdefault("timings_s", {})["write_s"] = time.perf_counter() - t0
        w.provenance["timings_s"] = pred.report["timings_s"]
        out = dict(w.provenance)
    return out


def predict_file(
    model_path: str | os.PathLike,
    structure_path: str | os.PathLike,
    output: str | os.PathLike,
    tile=(1, 1, 1),
    *,
    provenance: dict | None = None,
    **options,
) -> dict | None:
    """``hamforge predict``: read the model and the structure, tile, predict, write ``output``; returns the
    provenance written (asymmetry, S check, timings; None on ranks other than 0 with ``parallel="halo"``).
    ``options``: :func:`predict_structure`."""
    from hamforge.model import read_checkpoint

    ck = read_checkpoint(model_path)
    model = ck.model
    structure, atom_kind = load_structure(structure_path, ck.config, tile, source_model=str(model_path))
    check = options.pop("overlap_check_orbitals", DEFAULT_OVERLAP_CHECK_ORBITALS)
    h_dtype = np.dtype(options.pop("h_dtype", np.float64))
    reps = [int(x) for x in np.asarray(tile).tolist()]
    prov = {"model": str(model_path), "structure": str(structure_path), "tiling": reps, **(provenance or {})}
    inputs = [model_path, structure_path]
    parallel = options.get("parallel", "partitions")
    streamed = parallel in ("partitions", "ranks") and options.get("symmetrize", True)
    if parallel == "ranks" and not (streamed and options.get("overlap", True)):
        raise PredictError("parallel 'ranks' is the streamed prediction: it needs overlap=True, symmetrize=True")
    if streamed and options.get("overlap", True) and (options.get("method", "lownn") != "metis" or parallel == "ranks"):
        # the default: memory of one part (hamforge.predict._stream); the partitioner is Low-NN on positions
        basis = model_basis(ck.config)
        s_range = _overlap_range(
            structure, basis, options.get("basis_file"), options.get("overlap_eps", DEFAULT_OVERLAP_EPS)
        )
        n = structure.positions.shape[0]
        per_part = options.get("atoms_per_part", DEFAULT_ATOMS_PER_PART)
        if options.get("n_parts"):
            per_part = -(-n // int(options["n_parts"]))
        prov["overlap_eps"] = float(options.get("overlap_eps", DEFAULT_OVERLAP_EPS))
        prov["overlap_range_angstrom"] = s_range
        return stream_prediction(
            model,
            structure,
            atom_kind,
            output,
            s_range=s_range,
            basis_file=options.get("basis_file"),
            atoms_per_part=per_part,
            method=options.get("method", "lownn"),
            h_dtype=h_dtype,
            provenance=prov,
            inputs=inputs,
            progress=options.get("progress"),
            overlap_check_orbitals=check,
            device=options.get("device"),
            parallel=parallel,
        )
    pred = predict_structure(model, structure, atom_kind, **options)
    if pred is None:  # parallel="halo": rank 0 writes
        return None
    return write_prediction(pred, output, prov, inputs=inputs, overlap_check_orbitals=check, h_dtype=h_dtype)

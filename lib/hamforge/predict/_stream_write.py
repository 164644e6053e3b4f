"""Second sweep of the streamed prediction: row slabs in atom order from the row store into the matrix file.

Per slab: its H rows and their partners' blocks from the store, symmetrized (bit for bit the in-memory average);
its exact S blocks, each pair in its canonical orientation; per-image CSR rows (and Gamma rows when the cell is
small enough for a pair to couple through two images). One process writes the whole file; with ranks, rank r
writes a contiguous share of the rows into its own part file and rank 0 writes the file whose CSR datasets are
HDF5 virtual datasets over the parts (no MPI-IO, no gather of the matrices).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hamforge.basis import OverlapCalculator
from hamforge.io import matrix_file_writer
from hamforge.predict._assemble import build_slab, slab_bounds
from hamforge.predict._inputs import PredictError
from hamforge.predict._stream_blocks import Asymmetry, onsite, overlap_rows, pair_key, symmetrize

__all__ = ["WriteJob", "check_s_positive", "gamma_needed", "part_name", "peak_rss_mb", "write_matrices"]


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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


def part_name(path, rank: int, world: int) -> str:
    """File name (beside ``path``) of rank ``rank``'s rows."""
    return f"{Path(path).name}.part{rank}of{world}.h5"


@dataclass
class WriteJob:
    """What the second sweep reads (the first sweep's results and the structure)."""

    store: Any  # RowStore, merged across ranks
    structure: Any
    basis: dict
    tab: Any  # OrbitalTable
    box: Any  # ImageBox
    used: np.ndarray  # (K_box,) bool: images met
    search_s: Any  # NeighborSearch of S
    h_dtype: Any
    times: dict
    progress: bool
    basis_file: Any


class _Sweep:
    """Row slabs of a range of atoms into CSR writers; running statistics."""

    def __init__(self, job: WriteJob):
        self.job = job
        tab, box, used = job.tab, job.box, job.used
        self.n_orb, self.offs = np.asarray(tab.n_orb, np.int64), np.asarray(tab.offset, np.int64)
        self.norb, self.n, self.kc = int(tab.n_orbitals), int(tab.n_orb.shape[0]), box.n
        zero_c = int(box.index(np.zeros((1, 3), np.int64))[0])
        used[zero_c] = True
        self.final = np.cumsum(used) - 1
        self.shifts = box.shifts(np.flatnonzero(used))
        self.k, self.zero = self.shifts.shape[0], int(self.final[zero_c])
        self.gamma = gamma_needed(job.structure, job.search_s.r_cut)
        kinds = np.asarray(job.structure.kinds).astype(str)
        self.used_basis = {kd: job.basis[kd] for kd in sorted(set(kinds.tolist()))}
        self.overlaps = OverlapCalculator(
            job.structure.positions, job.structure.cell, kinds, self.used_basis, basis_file=job.basis_file
        )
        self.asym, self.s_asym, self.n_edges_s, self.keep_s = Asymmetry(), Asymmetry(), 0, []
        self.ptr = np.concatenate([[0], np.cumsum(job.store.degree)])

    def writers(self, w, rows: int, prefix: str = ""):
        """CSR writers (per-image, and Gamma when stored) of ``rows`` rows in the open file ``w`` (an h5py group
        or a :class:`hamforge.io.MatrixFileWriter`)."""
        from hamforge.io import CSRWriter

        def make(name, cols, dtype):
            if hasattr(w, "csr_writer"):
                return w.csr_writer(prefix + name, (rows, cols), dtype)
            return CSRWriter(w.create_group(prefix + name), (rows, cols), dtype)

        h_dt = self.job.h_dtype
        out = {
            "images/H": make("images/H", self.k * self.norb, h_dt),
            "images/S": make("images/S", self.k * self.norb, np.float64),
        }
        if self.gamma:
            out.update({"H": make("H", self.norb, h_dt), "S": make("S", self.norb, np.float64)})
        return out

    def run(self, a0: int, b0: int, writers: dict, check: bool, r_cut: float) -> None:
        from tqdm import tqdm

        job, n_orb = self.job, self.n_orb
        grow = 1.0 + (job.search_s.r_cut / max(r_cut, 1e-9)) ** 3  # S rows are this much longer
        bar = tqdm(total=b0 - a0, desc="write", unit="atom", disable=not job.progress, leave=False)
        mean = float(n_orb.mean()) if n_orb.size else 0.0
        for a, b in slab_bounds(n_orb, self.ptr, job.store.degree * mean * grow, start=a0, stop=b0):
            atoms = np.arange(a, b, dtype=np.int64)
            node_raw, i, j, img, edge_raw, rev_raw = job.store.read_slab(a, b)
            key = pair_key(i, j, img, self.n, self.kc)
            first = i * (self.n * self.kc) + j * self.kc + img == key
            h_edges = symmetrize(edge_raw, rev_raw, n_orb[i], n_orb[j], self.asym, first)
            h_nodes = onsite(node_raw, n_orb[atoms], self.asym)
            t0 = time.perf_counter()
            es = job.search_s.edges(atoms)
            s_img = job.box.index(es.shift)
            s_key = pair_key(es.i, es.j, s_img, self.n, self.kc)
            s_edges = overlap_rows(self.overlaps, es, s_img, s_key, self.n, self.kc, n_orb)
            s_nodes = onsite(self.overlaps.node_blocks(atoms), n_orb[atoms], self.s_asym)
            self.n_edges_s += es.n_edges
            job.times["overlap_s"] += time.perf_counter() - t0
            for name, nodes_v, edges_t, vals in (
                ("H", h_nodes, (i, j, self.final[img], key), h_edges),
                ("S", s_nodes, (es.i, es.j, self.final[s_img], s_key), s_edges),
            ):
                want_gamma = self.gamma or (name == "S" and check)
                g, im = build_slab(a, b, n_orb, self.offs, nodes_v, edges_t, vals, self.zero, self.k, want_gamma)
                writers[f"images/{name}"].append_csr(im)
                if self.gamma:
                    writers[name].append_csr(g)
                if name == "S" and check:
                    self.keep_s.append(g)
            bar.update(b - a)
            bar.set_postfix(peak_mb=f"{peak_rss_mb():.0f}", refresh=False)
        bar.close()

    def stats(self) -> dict:
        return {"H": self.asym, "S": self.s_asym, "n_edges_S": int(self.n_edges_s)}


def write_matrices(job: WriteJob, path, prov: dict, inputs, check_limit: int, r_cut: float, rank: int, world: int):
    """The second sweep (module docstring); returns the provenance written on rank 0, None elsewhere."""
    t_write = time.perf_counter()
    sweep = _Sweep(job)
    check = sweep.norb <= check_limit
    if world == 1:
        with matrix_file_writer(path, job.structure, sweep.used_basis, prov, inputs=inputs) as w:
            w.write_shifts(sweep.shifts)
            sweep.run(0, sweep.n, sweep.writers(w, sweep.norb), check, r_cut)
            stats, keep_s = [sweep.stats()], sweep.keep_s
            _finish(w.provenance, job, sweep, stats, keep_s, check, path, t_write, r_cut)
            return dict(w.provenance)
    import torch.distributed as dist

    a0, b0 = _share(sweep, rank, world)
    part = Path(path).parent / part_name(path, rank, world)
    import h5py

    from hamforge.io import atomic_path

    with atomic_path(part) as tmp, h5py.File(tmp, "w") as f:
        writers = sweep.writers(f, int(sweep.offs[b0] - sweep.offs[a0]))
        sweep.run(a0, b0, writers, check, r_cut)
        for c in writers.values():
            c.close()
        ptrs = {name: np.asarray(f[f"{name}/indptr"][:], np.int64) for name in writers}
    gathered = [None] * world if rank == 0 else None
    dist.gather_object((sweep.stats(), sweep.keep_s if check else [], ptrs, job.times, peak_rss_mb()), gathered, dst=0)
    if rank != 0:
        return None
    with matrix_file_writer(path, job.structure, sweep.used_basis, prov, inputs=inputs) as w:
        w.write_shifts(sweep.shifts)
        for name, csr in sweep.writers(_NoWrite(), sweep.norb).items():
            parts = [(part_name(path, r, world), name, g[2][name]) for r, g in enumerate(gathered)]
            w.write_csr_virtual(name, (sweep.norb, csr.shape[1]), parts, csr.dtype, csr.index_dtype)
        keep_s = [m for g in gathered for m in g[1]]
        for g in gathered[1:]:
            for k, v in g[3].items():
                job.times[k] = max(job.times.get(k, 0.0), v)
        _finish(w.provenance, job, sweep, [g[0] for g in gathered], keep_s, check, path, t_write, r_cut)
        w.provenance["part_files"] = [part_name(path, r, world) for r in range(world)]
        w.provenance["peak_rss_mb_ranks"] = [float(g[4]) for g in gathered]  # each rank's own high-water mark
        out = dict(w.provenance)
    return out


class _NoWrite:
    """Stands in for a file when only the writers' shapes and dtypes are wanted."""

    def csr_writer(self, name, shape, dtype):
        from types import SimpleNamespace

        cols = int(shape[1])
        index_dtype = np.int32 if cols <= np.iinfo(np.int32).max else np.int64
        return SimpleNamespace(shape=(int(shape[0]), cols), dtype=np.dtype(dtype), index_dtype=index_dtype)


def _share(sweep: _Sweep, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous atoms, balanced by matrix elements."""
    n_orb = sweep.n_orb
    work = n_orb * (n_orb + sweep.job.store.degree * float(n_orb.mean()))
    cum = np.concatenate([[0], np.cumsum(work)])
    cuts = np.searchsorted(cum, cum[-1] * np.arange(world + 1) / world)
    cuts[0], cuts[-1] = 0, sweep.n
    return int(cuts[rank]), int(max(cuts[rank], cuts[rank + 1]))


def check_s_positive(slabs, path, s_range: float) -> float:
    """Smallest eigenvalue of the (scaled) Gamma S assembled from its row ``slabs``; a PredictError when S is not
    positive definite (the one check of both prediction paths)."""
    import scipy.sparse as sp

    from hamforge.basis import OverlapError, check_overlap_positive

    try:
        return check_overlap_positive(sp.vstack(slabs, format="csr"), where=str(path))
    except OverlapError as exc:
        raise PredictError(
            f"{exc}; the overlap truncated at {s_range} Angstrom is not positive definite "
            "(a smaller --overlap-eps widens the range)"
        ) from None


def _finish(prov, job, sweep, stats, keep_s, check, path, t_write, r_cut) -> None:
    """Provenance of the whole file from the per-rank statistics; the positive-definiteness check of S."""

    acc = {}
    for which, key in (
        ("H", "asymmetry_before_symmetrization_hartree"),
        ("S", "overlap_asymmetry_before_symmetrization"),
    ):
        total = Asymmetry()
        for s in stats:  # the ranks' running sums and maxima
            a = s[which]
            total.e_max, total.n_max, total.max_abs = (
                max(total.e_max, a.e_max),
                max(total.n_max, a.n_max),
                max(total.max_abs, a.max_abs),
            )
            total.e_sq, total.n_sq, total.e_cnt, total.n_cnt = (
                total.e_sq + a.e_sq,
                total.n_sq + a.n_sq,
                total.e_cnt + a.e_cnt,
                total.n_cnt + a.n_cnt,
            )
        acc[key] = total.report()
    prov.update(
        {
            "n_atoms": int(sweep.n),
            "n_edges": int(sweep.ptr[-1]),
            "r_cut": float(r_cut),
            "symmetrized": True,
            **acc,
            "n_edges_S": int(sum(s["n_edges_S"] for s in stats)),
            "gamma_stored": bool(sweep.gamma),
            "h_dtype": np.dtype(job.h_dtype).name,
        }
    )
    prov["min_eigenvalue_S"] = check_s_positive(keep_s, path, job.search_s.r_cut) if check else None
    job.times["write_s"] = time.perf_counter() - t_write - job.times["overlap_s"]
    prov["timings_s"] = dict(job.times)
    prov["peak_rss_mb"] = peak_rss_mb()

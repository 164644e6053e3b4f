"""A row store on disk: the raw (unsymmetrized) predicted H block rows of a streamed prediction.

Why on disk. Streamed prediction computes parts in a spatial order (compact parts need small halos) but writes
the matrix file in atom order, and symmetrizing a block ``H_ij(R)`` needs its partner ``H_ji(-R)``, which another
part predicts. Holding every block in memory is what made the old prediction grow with the structure
(~147 kB per atom); this store keeps them in three flat files next to the output (``nodes``, ``edges`` float64
values; ``keys`` int64 ``j * K + image`` per edge, rows sorted by ``(j, R)``) and in memory only four integers
per atom (where its row starts, its degree). A row is appended whole by the part that owns it and read back
(with its partners' blocks) by the assembly, slab by slab, through short-lived memory maps, so the resident
memory is one slab and its partners.

Across ranks (``parallel="ranks"``) every rank appends the rows of its own parts to its own store in a shared
folder; :meth:`RowStore.merge` then exchanges the per-atom tables (an all-reduce of O(N) integers), after which
any rank reads any row, from whichever rank's files hold it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hamforge.predict._infer import ranges

__all__ = ["RowStore"]


class RowStore:
    """Raw block rows of ``n_atoms`` atoms (``n_orb`` orbitals each) with image ids in ``0 .. n_images - 1``."""

    def __init__(self, folder: str | os.PathLike, n_orb: np.ndarray, n_images: int):
        self.folder = Path(folder)
        self.n_orb = np.asarray(n_orb, np.int64)
        n = self.n_orb.shape[0]
        self.n_images = int(n_images)
        self.node_start = np.full(n, -1, np.int64)  # value offset of the on-site block in ``nodes``
        self.edge_start = np.zeros(n, np.int64)  # first edge of the row in ``keys``
        self.val_start = np.zeros(n, np.int64)  # first value of the row in ``edges``
        self.degree = np.zeros(n, np.int64)
        self.owner = np.full(n, -1, np.int64)  # which store (rank) holds the row
        self._count = {"nodes": 0, "edges": 0, "keys": 0}
        self._files = {name: open(self.folder / f"{name}.bin", "wb") for name in ("nodes", "edges", "keys")}
        self.folders, self.counts = [self.folder], [self._count]

    def append(self, atoms, node_data, i, j, img, edge_data) -> None:
        """Rows of ``atoms`` (sorted): their on-site blocks (flat, in ``atoms`` order) and every edge
        ``(i, j, image)`` centred on them (sorted by ``(i, j, R)``) with its flat blocks ``edge_data``."""
        atoms = np.asarray(atoms, np.int64)
        if np.any(self.owner[atoms] >= 0):
            raise ValueError("row store: a row was appended twice")
        n_orb = self.n_orb
        deg = np.bincount(np.searchsorted(atoms, i), minlength=atoms.shape[0])
        row_vals = n_orb[atoms] * np.bincount(np.searchsorted(atoms, i), weights=n_orb[j], minlength=atoms.shape[0])
        c = self._count
        self.node_start[atoms] = c["nodes"] + np.cumsum(n_orb[atoms] ** 2) - n_orb[atoms] ** 2
        self.edge_start[atoms] = c["keys"] + np.cumsum(deg) - deg
        self.val_start[atoms] = c["edges"] + np.cumsum(row_vals.astype(np.int64)) - row_vals.astype(np.int64)
        self.degree[atoms] = deg
        self.owner[atoms] = 0
        keys = np.asarray(j, np.int64) * self.n_images + np.asarray(img, np.int64)
        for name, arr in (("nodes", node_data), ("edges", edge_data), ("keys", keys)):
            arr = np.ascontiguousarray(arr, np.int64 if name == "keys" else np.float64)
            arr.tofile(self._files[name])
            c[name] += arr.shape[0]

    def close_writing(self) -> None:
        for f in self._files.values():
            f.close()

    def check_complete(self) -> None:
        missing = np.flatnonzero(self.owner < 0)
        if missing.size:
            raise ValueError(f"row store: {missing.size} rows never predicted (first: atom {int(missing[0])})")

    def merge(self, rank: int) -> None:
        """Collective over the torch.distributed ranks: afterwards every rank reads every rank's rows (the stores'
        folders must be on a file system all ranks see)."""
        import torch
        import torch.distributed as dist

        mine = self.owner >= 0
        tables = np.stack([self.node_start, self.edge_start, self.val_start, self.degree, self.owner])
        tables[:, ~mine] = -1
        tables[4, mine] = rank
        t = torch.from_numpy(tables)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        self.node_start, self.edge_start, self.val_start, self.degree, self.owner = (
            np.ascontiguousarray(a) for a in t.numpy()
        )
        shared = [None] * dist.get_world_size()
        dist.all_gather_object(shared, (str(self.folder), dict(self._count)))
        self.folders = [Path(f) for f, _ in shared]
        self.counts = [c for _, c in shared]

    def _map(self, owner: int, name: str, dtype):
        count = self.counts[owner][name]
        if count == 0:
            return np.zeros(0, dtype)
        return np.memmap(self.folders[owner] / f"{name}.bin", dtype=dtype, mode="r", shape=(count,))

    def _gather(self, name: str, dtype, pos: np.ndarray, owner: np.ndarray) -> np.ndarray:
        """Values at offsets ``pos`` of file ``name`` of the stores ``owner`` (per position), as a copy."""
        out = np.empty(pos.shape[0], dtype)
        for o in np.unique(owner).tolist():
            sel = np.flatnonzero(owner == o)
            m = self._map(o, name, dtype)
            out[sel] = m[pos[sel]]
            del m
        return out

    def read_slab(self, a: int, b: int):
        """Rows ``a .. b - 1``: ``(node_data, i, j, img, edge_data, rev_data)``.

        ``rev_data`` holds, edge by edge, the raw block of the reverse edge ``(j, i, -R)`` (row-major in its own
        shape ``(n_j, n_i)``). Flat float64 arrays are
        copies (the memory maps are closed on return).
        """
        atoms = np.arange(a, b, dtype=np.int64)
        n_orb, k, own = self.n_orb, self.n_images, self.owner
        node_data = self._gather(
            "nodes",
            np.float64,
            ranges(self.node_start[atoms], n_orb[atoms] ** 2),
            np.repeat(own[atoms], n_orb[atoms] ** 2),
        )
        key = self._keys(atoms)
        i = np.repeat(atoms, self.degree[atoms])
        j, img = key // k, key % k
        lengths = self._row_lengths(atoms)
        edge_data = self._gather(
            "edges", np.float64, ranges(self.val_start[atoms], lengths), np.repeat(own[atoms], lengths)
        )
        rev_val = self._reverse(i, j, img)
        sizes = n_orb[j] * n_orb[i]
        rev_data = self._gather("edges", np.float64, ranges(rev_val, sizes), np.repeat(own[j], sizes))
        return node_data, i, j, img, edge_data, rev_data

    def _keys(self, atoms) -> np.ndarray:
        """The keys of the rows of ``atoms``, row after row."""
        deg = self.degree[atoms]
        return self._gather("keys", np.int64, ranges(self.edge_start[atoms], deg), np.repeat(self.owner[atoms], deg))

    def _row_lengths(self, atoms) -> np.ndarray:
        """Values per row (``n_i * sum_j n_j``), from the rows' keys."""
        nbr = self._keys(atoms) // self.n_images
        owner = np.repeat(np.arange(atoms.shape[0]), self.degree[atoms])
        return self.n_orb[atoms] * np.bincount(owner, weights=self.n_orb[nbr], minlength=atoms.shape[0]).astype(
            np.int64
        )

    def _reverse(self, i, j, img):
        """Value offsets (in the ``edges`` file of the row's store) of the reverse edges ``(j, i, -R)``."""
        n, k = self.n_orb.shape[0], self.n_images
        rows = np.unique(j)
        deg = self.degree[rows]
        got = self._keys(rows)  # the partner rows' keys, row by row
        owner = np.repeat(np.arange(rows.shape[0], dtype=np.int64), deg)
        composite = owner * (n * k) + got  # sorted: rows in order, each row sorted by (j, R)
        want = np.searchsorted(rows, j) * (n * k) + i * k + (k - 1 - img)  # image -R is k - 1 - image
        pos = np.searchsorted(composite, want)
        pos_ok = pos < composite.shape[0]
        if not pos_ok.all() or not np.array_equal(composite[pos], want):
            bad = int(np.flatnonzero(~pos_ok | (composite[np.minimum(pos, composite.shape[0] - 1)] != want))[0])
            raise ValueError(
                f"edge ({int(i[bad])}, {int(j[bad])}): no reverse edge; the neighbour search is not symmetric there "
                "(a distance within rounding of r_cut)"
            )
        sizes = self.n_orb[rows[owner]] * self.n_orb[got // k]
        csum = np.concatenate([[0], np.cumsum(sizes)])
        row_first = np.cumsum(deg) - deg
        rel = csum[:-1] - np.repeat(csum[row_first], deg)  # value offset of every entry within its row
        return self.val_start[j] + rel[pos]

    def remove(self) -> None:
        for f in self._files.values():
            f.close()
        for name in ("nodes", "edges", "keys"):
            (self.folder / f"{name}.bin").unlink(missing_ok=True)

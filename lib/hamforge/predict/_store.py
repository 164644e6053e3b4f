"""A row store on disk: the raw (unsymmetrized) predicted H block rows of a streamed prediction.

Why on disk. Streamed prediction computes parts in a spatial order (compact parts need small halos) but writes
the matrix file in atom order, and symmetrizing a block ``H_ij(R)`` needs its partner ``H_ji(-R)``, which another
part predicts. Holding every block in memory is what made the old prediction grow with the structure
(~147 kB per atom); this store keeps them in three flat files next to the output (``nodes``, ``edges`` float64
values; ``keys`` int64 ``j * K + image`` per edge, rows sorted by ``(j, R)``) and in memory only four integers
per atom (where its row starts, its degree). A row is appended whole by the part that owns it and read back
(with its partners' blocks) by the assembly, slab by slab, through short-lived memory maps, so the resident
memory is one slab and its partners.
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
        self.rank = np.full(n, -1, np.int64)  # position of the row in store order
        self._count = {"nodes": 0, "edges": 0, "keys": 0, "rows": 0}
        self._files = {name: open(self.folder / f"{name}.bin", "wb") for name in ("nodes", "edges", "keys")}

    def append(self, atoms, node_data, i, j, img, edge_data) -> None:
        """Rows of ``atoms`` (sorted): their on-site blocks (flat, in ``atoms`` order) and every edge
        ``(i, j, image)`` centred on them (sorted by ``(i, j, R)``) with its flat blocks ``edge_data``."""
        atoms = np.asarray(atoms, np.int64)
        if np.any(self.rank[atoms] >= 0):
            raise ValueError("row store: a row was appended twice")
        n_orb = self.n_orb
        deg = np.bincount(np.searchsorted(atoms, i), minlength=atoms.shape[0])
        row_vals = n_orb[atoms] * np.bincount(np.searchsorted(atoms, i), weights=n_orb[j], minlength=atoms.shape[0])
        c = self._count
        self.node_start[atoms] = c["nodes"] + np.cumsum(n_orb[atoms] ** 2) - n_orb[atoms] ** 2
        self.edge_start[atoms] = c["keys"] + np.cumsum(deg) - deg
        self.val_start[atoms] = c["edges"] + np.cumsum(row_vals.astype(np.int64)) - row_vals.astype(np.int64)
        self.degree[atoms] = deg
        self.rank[atoms] = c["rows"] + np.arange(atoms.shape[0])
        keys = np.asarray(j, np.int64) * self.n_images + np.asarray(img, np.int64)
        for name, arr in (("nodes", node_data), ("edges", edge_data), ("keys", keys)):
            arr = np.ascontiguousarray(arr, np.int64 if name == "keys" else np.float64)
            arr.tofile(self._files[name])
            c[name] += arr.shape[0]
        c["rows"] += atoms.shape[0]

    def close_writing(self) -> None:
        for f in self._files.values():
            f.close()
        missing = np.flatnonzero(self.rank < 0)
        if missing.size:
            raise ValueError(f"row store: {missing.size} rows never predicted (first: atom {int(missing[0])})")

    def _map(self, name: str, dtype):
        if self._count[name] == 0:
            return np.zeros(0, dtype)
        return np.memmap(self.folder / f"{name}.bin", dtype=dtype, mode="r", shape=(self._count[name],))

    def read_slab(self, a: int, b: int):
        """Rows ``a .. b - 1``: ``(node_data, i, j, img, edge_data, rev_data, rev_pos)``.

        ``rev_data`` holds, edge by edge, the raw block of the reverse edge ``(j, i, -R)`` (row-major in its own
        shape ``(n_j, n_i)``); ``rev_pos`` is the reverse edge's position within its row. Flat float64 arrays are
        copies (the memory maps are closed on return).
        """
        atoms = np.arange(a, b, dtype=np.int64)
        n_orb, k = self.n_orb, self.n_images
        nodes, edges, keys = self._map("nodes", np.float64), self._map("edges", np.float64), self._map("keys", np.int64)
        try:
            node_data = np.array(nodes[ranges(self.node_start[atoms], n_orb[atoms] ** 2)])
            key = np.array(keys[ranges(self.edge_start[atoms], self.degree[atoms])])
            i = np.repeat(atoms, self.degree[atoms])
            j, img = key // k, key % k
            edge_data = np.array(edges[ranges(self.val_start[atoms], self._row_lengths(atoms))])
            rev_val, rev_pos = self._reverse(keys, i, j, img)
            rev_data = np.array(edges[ranges(rev_val, n_orb[j] * n_orb[i])])
        finally:
            del nodes, edges, keys
        return node_data, i, j, img, edge_data, rev_data, rev_pos

    def _row_lengths(self, atoms) -> np.ndarray:
        """Values per row (``n_i * sum_j n_j``), from the rows' keys."""
        keys = self._map("keys", np.int64)
        nbr = np.array(keys[ranges(self.edge_start[atoms], self.degree[atoms])]) // self.n_images
        del keys
        owner = np.repeat(np.arange(atoms.shape[0]), self.degree[atoms])
        return self.n_orb[atoms] * np.bincount(owner, weights=self.n_orb[nbr], minlength=atoms.shape[0]).astype(
            np.int64
        )

    def _reverse(self, keys, i, j, img):
        """Value offsets (in ``edges``) and row positions of the reverse edges ``(j, i, -R)``."""
        n, k = self.n_orb.shape[0], self.n_images
        rows = np.unique(j)
        deg = self.degree[rows]
        got = np.array(keys[ranges(self.edge_start[rows], deg)])  # the partner rows' keys, row by row
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
        return self.val_start[j] + rel[pos], pos - row_first[owner[pos]]

    def remove(self) -> None:
        for f in self._files.values():
            f.close()
        for name in ("nodes", "edges", "keys"):
            (self.folder / f"{name}.bin").unlink(missing_ok=True)

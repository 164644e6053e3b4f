"""The one HDF5 opener of every file format, and the checked access to its header, attributes and fields.

Every reader opens its file with :func:`open_h5` and reads through a :class:`H5Reader`, so every error names
the file and the field (``"<path>: <field>: <what is wrong>"``) and is of the format's own error class.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hamforge._errors import HamforgeError

__all__ = ["FileFormatError", "H5Reader", "open_h5"]


class FileFormatError(ValueError, HamforgeError):
    """A hamforge file is missing a field or its fields are inconsistent (message names file and field)."""


def open_h5(path: str | os.PathLike, what: str, error: type[Exception]):
    """Open ``path`` read-only; raise ``error("<path>: no such <what>")`` or "not a readable HDF5 file"."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise error(f"{path}: not a readable HDF5 file ({exc})") from exc


class H5Reader:
    """Checked reads from an open HDF5 file ``f``; every failure raises ``error`` naming ``source`` and the field."""

    def __init__(self, f, source: str, error: type[Exception]):
        self.f, self.source, self.error = f, str(source), error

    def fail(self, field: str, msg: str):
        raise self.error(f"{self.source}: {field}: {msg}")

    def check_header(self, fmt: str, versions: tuple[int, ...]) -> int:
        """Check the root attributes ``format`` and ``version``; return the version."""
        got = self.f.attrs.get("format")
        if isinstance(got, bytes):
            got = got.decode(errors="replace")
        if got != fmt:
            self.fail("format", f"attribute is {got!r}, expected {fmt!r} (not a {fmt} file)")
        if "version" not in self.f.attrs:
            self.fail("version", "missing root attribute")
        raw = self.f.attrs["version"]
        if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, np.integer)):
            self.fail("version", f"attribute must be an integer, got {raw!r}")
        version = int(raw)
        if version not in versions:
            known = ", ".join(str(v) for v in versions)
            self.fail("version", f"unsupported {fmt} file version {version} (this hamforge reads version {known})")
        return version

    def attr(self, name: str, kind: type = str, obj=None, where: str = "") -> Any:
        """Attribute ``name`` of ``obj`` (default: the root) converted with ``kind``."""
        obj = self.f if obj is None else obj
        field = f"{where}@{name}" if where else name
        if name not in obj.attrs:
            self.fail(field, "missing attribute")
        value = obj.attrs[name]
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        try:
            if kind in (int, float) and isinstance(value, (bool, np.bool_)):
                raise TypeError("a boolean")
            if kind is int and not isinstance(value, (int, np.integer)):
                raise TypeError(f"{type(value).__name__}")
            return kind(value)
        except (TypeError, ValueError) as exc:
            self.fail(field, f"bad value {value!r} ({exc})")

    def json_attr(self, name: str, default: Any = None, obj=None, where: str = "") -> Any:
        """Attribute ``name`` parsed as JSON; ``default`` when absent (None: required)."""
        obj = self.f if obj is None else obj
        if name not in obj.attrs and default is not None:
            return default
        text = self.attr(name, str, obj, where)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.fail(f"{where}@{name}" if where else name, f"not valid JSON ({exc})")

    def group(self, name: str):
        if name not in self.f:
            self.fail(f"/{name}", "missing group")
        return self.f[name]

    def array(self, name: str, *, dtype=None, shape: tuple | None = None, finite: bool = False) -> np.ndarray:
        """Dataset ``name`` as a numpy array, checked: ``dtype`` kind ('i' integer, 'f' real, 'b' bool,
        'U' strings), ``shape`` (``-1`` for any length), finiteness."""
        if name not in self.f:
            self.fail(f"/{name}", "missing")
        a = self.f[name][()]
        a = np.asarray(a)
        field = f"/{name}"
        if shape is not None and (a.ndim != len(shape) or any(s not in (-1, d) for s, d in zip(shape, a.shape))):
            want = "(" + ", ".join("n" if s == -1 else str(s) for s in shape) + ")"
            self.fail(field, f"shape {a.shape}, expected {want}")
        if dtype == "i":
            if a.size and not np.issubdtype(a.dtype, np.integer):
                self.fail(field, f"expected integers, got dtype {a.dtype}")
            a = a.astype(np.int64)
        elif dtype == "f":
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                self.fail(field, f"expected real numbers, got dtype {a.dtype}")
            a = a.astype(np.float64)
        elif dtype == "b":
            if a.dtype != np.bool_ and not (np.issubdtype(a.dtype, np.integer) and np.all((a == 0) | (a == 1))):
                self.fail(field, f"expected booleans, got dtype {a.dtype}")
            a = a.astype(bool)
        elif dtype == "U":
            a = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in a.reshape(-1)], dtype=object).reshape(
                a.shape
            )
        if finite and not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a.reshape(-1)))
            self.fail(field, f"{bad.size} non-finite value(s) (first at flat index {int(bad[0])})")
        return a

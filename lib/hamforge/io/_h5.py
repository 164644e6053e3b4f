"""Opening HDF5 files for reading with errors that name the file (shared by every file format)."""

from __future__ import annotations

import os
from pathlib import Path


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

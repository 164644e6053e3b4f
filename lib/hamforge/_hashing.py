"""Stable short hashes of configuration subtrees (recorded as provenance and in release manifests)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["config_hash", "file_digest"]


def config_hash(obj: Any) -> str:
    """Short stable hash (sha256 of canonical JSON) of a config subtree, recorded as provenance."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path, chunk: int = 1 << 22) -> str:
    """sha256 (hex) of a file's bytes: what a training input is, whatever its name."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()

"""Stable short hashes of configuration subtrees (recorded as provenance and in release manifests)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["config_hash"]


def config_hash(obj: Any) -> str:
    """Short stable hash (sha256 of canonical JSON) of a config subtree, recorded as provenance."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

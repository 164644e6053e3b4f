"""File formats and atomic output helpers."""

from hamforge.io._atomic import atomic_path, write_text_atomic

__all__ = ["atomic_path", "write_text_atomic"]

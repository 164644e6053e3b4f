"""Logging setup for entry points (workflow scripts and the CLI); library modules only create loggers."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_file: str | os.PathLike | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the ``hamforge`` logger to ``log_file`` (if given) and to stderr; return it.

    Idempotent: handlers added by an earlier call are replaced.
    """
    log = logging.getLogger("hamforge")
    log.setLevel(level)
    for h in list(log.handlers):
        if getattr(h, "_hamforge", False):
            log.removeHandler(h)
            h.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    for h in handlers:
        h.setFormatter(logging.Formatter(_FORMAT))
        h._hamforge = True  # type: ignore[attr-defined]
        log.addHandler(h)
    return log

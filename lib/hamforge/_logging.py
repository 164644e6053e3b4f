"""Logging setup for entry points (workflow scripts and the CLI); library modules only create loggers."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

__all__ = ["configure_logging", "log_failure"]

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


@contextlib.contextmanager
def log_failure(log: logging.Logger | None = None) -> Iterator[None]:
    """Write why the block failed (the exception's message, or the signal that stopped it) to ``log``, re-raise.

    Workflow scripts wrap their work in it so that the rule's own log file ends with the cause (e.g. CP2K's
    ABORT message), not only Snakemake's console with a traceback whose tail is MPI noise.
    """
    log = log or logging.getLogger("hamforge")
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (0, None):
            log.error("stopped (exit status %s)", exc.code)
        raise
    except KeyboardInterrupt:
        log.error("interrupted (SIGINT)")
        raise
    except Exception as exc:
        log.error("failed: %s: %s", type(exc).__name__, exc)
        raise

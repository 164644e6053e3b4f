"""The base class of every error hamforge raises for bad input (a file, a field, an option, a configuration).

The command line reports these as ``hamforge <command>: error: <message>`` with exit status 2; anything else is
an internal error and keeps its traceback. Each room derives its own error from it (and from the built-in class
its callers already catch, e.g. ValueError), so ``except HamforgeError`` catches every user error of every room.
"""

from __future__ import annotations

__all__ = ["HamforgeError", "UsageError"]


class HamforgeError(Exception):
    """Bad input to hamforge; the message names the file and the field (or the option)."""


class UsageError(ValueError, HamforgeError):
    """A command-line option that cannot work here (e.g. a CUDA device on a machine without one)."""

"""Chemical element symbols: one strict lookup for config keys, CP2K kinds and structures.

ASE's ``atomic_numbers`` also holds ``"X"`` (a dummy, Z = 0) and lookups by prefix turn a typo such as
``Sx`` into sulfur; here a name is an element only when it *is* one of the 118 symbols (any case).
"""

from __future__ import annotations

import re

__all__ = ["chemical_symbol", "element_of_kind"]


def chemical_symbol(name: str) -> str:
    """The element symbol ``name`` spells (``"si"``, ``"SI"`` -> ``"Si"``); ValueError if it is none."""
    from ase.data import atomic_numbers, chemical_symbols

    cand = str(name).strip().capitalize()
    if cand in atomic_numbers and atomic_numbers[cand] > 0 and chemical_symbols[atomic_numbers[cand]] == cand:
        return cand
    raise ValueError(f"{name!r} is not a chemical element symbol")


def element_of_kind(kind: str) -> str:
    """Element of a CP2K kind label without an ELEMENT keyword: its leading letters, e.g. ``Si1``, ``O_2``.

    The letters before the first digit, underscore or other non-letter must be an element symbol; anything
    else (``Xx``, ``Sx``, ``OH``) is a ValueError (give the kind an explicit ELEMENT then).
    """
    m = re.match(r"[A-Za-z]+", kind)
    letters = m.group(0) if m else ""
    try:
        return chemical_symbol(letters)
    except ValueError:
        raise ValueError(
            f"kind {kind!r}: {letters!r} is not a chemical element symbol (give the kind an explicit ELEMENT)"
        ) from None

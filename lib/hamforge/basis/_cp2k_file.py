"""Reading shell structure (angular momenta) of contracted Gaussian basis sets from CP2K basis files.

CP2K's basis-file format (the "old" format used by BASIS_MOLOPT and friends)::

    # comment
    Si SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q4     <- element symbol, then one or more names (aliases)
     1                                            <- number of sets
     2 0 1 4 1 1                                  <- n  lmin lmax  nexp  nshell(lmin) ... nshell(lmax)
       1.2567  0.2277  0.0677                     <- nexp lines: exponent, one coefficient per shell
       ...

Inside an atom CP2K orders its contracted functions set by set, inside a set by angular momentum
l = lmin..lmax, and for each l by shell; every shell contributes 2l+1 real spherical functions
ordered m = -l..l. Only the shell angular momenta matter for matrix bookkeeping; exponents and
coefficients are read to check the block is well formed.
"""

from __future__ import annotations

import os
from pathlib import Path

from hamforge.basis._types import BasisError, ElementBasis

__all__ = ["read_cp2k_basis", "resolve_cp2k_data_file", "cp2k_data_dirs", "cp2k_data_names"]


def cp2k_data_dirs() -> list[Path]:
    """Directories searched for bare CP2K data file names, in order.

    ``$CP2K_DATA_DIR`` (CP2K's own variable) first, then Debian's ``/usr/share/cp2k`` and
    ``/usr/share/cp2k/data``.
    """
    dirs = []
    env = os.environ.get("CP2K_DATA_DIR")
    if env:
        dirs.append(Path(env))
    dirs += [Path("/usr/share/cp2k"), Path("/usr/share/cp2k/data")]
    return dirs


def resolve_cp2k_data_file(name: str | os.PathLike, relative_to: str | os.PathLike | None = None) -> Path:
    """Find a CP2K data file (basis or potential) the way CP2K does.

    A path that exists (absolute, or relative to ``relative_to`` / the working directory) wins; a bare
    name is looked up in :func:`cp2k_data_dirs`. Raises :class:`BasisError` listing where it looked.
    """
    p = Path(name)
    candidates = []
    if relative_to is not None and not p.is_absolute():
        candidates.append(Path(relative_to) / p)
    candidates.append(p)
    candidates += [d / p.name for d in cp2k_data_dirs()]
    for c in candidates:
        if c.is_file():
            return c
    where = ", ".join(str(c) for c in candidates)
    raise BasisError(f"CP2K data file {str(name)!r} not found (looked in: {where}); set CP2K_DATA_DIR")


def _tokens_without_comment(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def cp2k_data_names(path: str | os.PathLike, element: str) -> list[str]:
    """Every name (aliases included) of ``element``'s entries in a CP2K basis or potential file.

    Both formats open an entry with a header line ``<element> <name> [<alias> ...]`` (e.g.
    ``Si GTH-PBE-q4 GTH-PBE``); data lines start with numbers. Element symbols match case-insensitively.
    """
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise BasisError(f"cannot read CP2K data file {path}: {exc}") from exc
    element_l = element.lower()
    names: list[str] = []
    for line in text.splitlines():
        tok = _tokens_without_comment(line)
        if len(tok) >= 2 and tok[0].lower() == element_l:
            names += tok[1:]
    return names


def read_cp2k_basis(path: str | os.PathLike, element: str, name: str) -> ElementBasis:
    """Shell angular momenta of basis set ``name`` for ``element`` from a CP2K basis file.

    Element symbols match case-insensitively; ``name`` matches any alias on the header line.
    Raises :class:`BasisError` naming the file (and line) when the set is missing or malformed.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise BasisError(f"cannot read CP2K basis file {path}: {exc}") from exc
    element_l = element.lower()
    i = 0
    n = len(lines)
    while i < n:
        tok = _tokens_without_comment(lines[i])
        if len(tok) >= 2 and tok[0].lower() == element_l and name in tok[1:]:
            return _parse_set_block(lines, i, path, element, name)
        i += 1
    raise BasisError(f"{path}: no basis set {name!r} for element {element!r}")


def _parse_set_block(lines: list[str], header: int, path: Path, element: str, name: str) -> ElementBasis:
    def data_line(k: int) -> tuple[int, list[str]]:
        # next non-empty, non-comment line at or after k
        while k < len(lines):
            tok = _tokens_without_comment(lines[k])
            if tok:
                return k, tok
            k += 1
        raise BasisError(f"{path}: basis {element} {name} ends early (after line {header + 1})")

    def as_int(tok: str, k: int, what: str) -> int:
        try:
            return int(tok)
        except ValueError:
            raise BasisError(f"{path}:{k + 1}: expected an integer {what}, got {tok!r}") from None

    k, tok = data_line(header + 1)
    nset = as_int(tok[0], k, "number of sets")
    if nset < 1:
        raise BasisError(f"{path}:{k + 1}: basis {element} {name} has {nset} sets")
    shells: list[int] = []
    k += 1
    for _ in range(nset):
        k, tok = data_line(k)
        if len(tok) < 5:
            raise BasisError(f"{path}:{k + 1}: set header needs 'n lmin lmax nexp nshell...', got {' '.join(tok)!r}")
        lmin, lmax, nexp = (as_int(t, k, w) for t, w in zip(tok[1:4], ("lmin", "lmax", "nexp")))
        if lmin < 0 or lmax < lmin:
            raise BasisError(f"{path}:{k + 1}: invalid lmin={lmin}, lmax={lmax}")
        counts = [as_int(t, k, "shell count") for t in tok[4:]]
        if len(counts) != lmax - lmin + 1:
            raise BasisError(
                f"{path}:{k + 1}: set header lists {len(counts)} shell counts for l = {lmin}..{lmax}"
            )
        ncoef = sum(counts)
        for l, c in zip(range(lmin, lmax + 1), counts):
            shells += [l] * c
        for _e in range(nexp):
            k, tok = data_line(k + 1)
            if len(tok) != 1 + ncoef:
                raise BasisError(
                    f"{path}:{k + 1}: expected exponent + {ncoef} coefficients, got {len(tok)} numbers"
                )
        k += 1
    return ElementBasis(element=element, name=name, shells=tuple(shells))

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
ordered m = -l..l. The shell angular momenta are all that matrix bookkeeping needs
(:func:`read_cp2k_basis`); the exponents and contraction coefficients (:func:`read_cp2k_gaussians`) are what
the overlap integrals need. One parser serves both.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hamforge.basis._gaussians import GaussianBasis, ShellGroup
from hamforge.basis._types import BasisError, ElementBasis

__all__ = ["cp2k_data_dirs", "cp2k_data_names", "read_cp2k_basis", "read_cp2k_gaussians", "resolve_cp2k_data_file"]


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
    return read_cp2k_gaussians(path, element, name).element_basis


def read_cp2k_gaussians(path: str | os.PathLike, element: str, name: str) -> GaussianBasis:
    """Exponents and contraction coefficients of basis set ``name`` for ``element`` (CP2K shell order).

    Same lookup and errors as :func:`read_cp2k_basis`; exponents are in bohr^-2 and coefficients refer
    to normalized primitives, exactly as written in the file.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise BasisError(f"cannot read CP2K basis file {path}: {exc}") from exc
    element_l = element.lower()
    elements_seen = False
    for i, line in enumerate(lines):
        tok = _tokens_without_comment(line)
        if len(tok) >= 2 and tok[0].lower() == element_l:
            elements_seen = True
            if name in tok[1:]:
                return _parse_set_block(lines, i, path, element, name)
    if not elements_seen:
        raise BasisError(
            f"{path}: no basis set {name!r} for element {element!r} (the file has no set for {element!r} at all)"
        )
    raise BasisError(f"{path}: no basis set {name!r} for element {element!r}")


def _parse_set_block(lines: list[str], header: int, path: Path, element: str, name: str) -> GaussianBasis:
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

    def as_floats(tok: list[str], k: int) -> list[float]:
        try:
            return [float(t.replace("D", "E").replace("d", "e")) for t in tok]
        except ValueError:
            raise BasisError(f"{path}:{k + 1}: expected numbers, got {' '.join(tok)!r}") from None

    k, tok = data_line(header + 1)
    nset = as_int(tok[0], k, "number of sets")
    if nset < 1:
        raise BasisError(f"{path}:{k + 1}: basis {element} {name} has {nset} sets")
    groups: list[ShellGroup] = []
    k += 1
    for _ in range(nset):
        k, tok = data_line(k)
        if len(tok) < 5:
            raise BasisError(f"{path}:{k + 1}: set header needs 'n lmin lmax nexp nshell...', got {' '.join(tok)!r}")
        lmin, lmax, nexp = (as_int(t, k, w) for t, w in zip(tok[1:4], ("lmin", "lmax", "nexp")))
        if lmin < 0 or lmax < lmin:
            raise BasisError(f"{path}:{k + 1}: invalid lmin={lmin}, lmax={lmax}")
        if nexp < 1:
            raise BasisError(f"{path}:{k + 1}: a set needs at least one exponent, got nexp={nexp}")
        # Shell counts follow; some files append orbital labels such as '6s 7s 6p' after them.
        counts_tok = tok[4:]
        while counts_tok and not counts_tok[-1].lstrip("+-").isdigit():
            counts_tok = counts_tok[:-1]
        counts = [as_int(t, k, "shell count") for t in counts_tok]
        if len(counts) != lmax - lmin + 1 or any(c < 0 for c in counts):
            raise BasisError(f"{path}:{k + 1}: set header lists shell counts {counts} for l = {lmin}..{lmax}")
        ncoef = sum(counts)
        rows = []
        for _e in range(nexp):
            k, tok = data_line(k + 1)
            if len(tok) != 1 + ncoef:
                raise BasisError(f"{path}:{k + 1}: expected exponent + {ncoef} coefficients, got {len(tok)} numbers")
            rows.append(as_floats(tok, k))
        table = np.array(rows, dtype=np.float64)  # (nexp, 1 + ncoef)
        if np.any(table[:, 0] <= 0):
            raise BasisError(f"{path}:{k + 1}: basis {element} {name}: exponents must be > 0")
        col = 1
        for l, c in zip(range(lmin, lmax + 1), counts):
            if c:
                groups.append(
                    ShellGroup(l=l, exponents=table[:, 0].copy(), coefficients=table[:, col : col + c].copy())
                )
            col += c
        k += 1
    return GaussianBasis(element=element, name=name, groups=tuple(groups), source=str(path))

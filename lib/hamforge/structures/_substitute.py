"""Post-quench decoration of a quenched structure: seeded substitution of one element by another (a-Ge(Pt)) and
vacancies as ghost atoms (a CP2K GHOST kind: the basis of an element at the site, no nucleus, no electrons).

Applied after the melt-quench MD to every frame of a quench with the *same* sites (LAMMPS keeps atom order), so a
potential that knows only the host element (``Ge.tersoff``) makes the amorphous network and the dopants and
vacancies sit on its sites. Sites are drawn without replacement from a generator seeded by ``(seed, quench)``:
same seed and quench, same sites. Kind labels go into the per-atom array ``kinds`` (extxyz keeps it), which the
CP2K input and :func:`hamforge.io.read_structure` use in place of the chemical symbols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hamforge.structures._melt_quench import MDError

__all__ = ["KINDS_ARRAY", "Substitution", "GhostVacancies", "PostQuench", "post_quench_sites", "apply_post_quench"]

KINDS_ARRAY = "kinds"  # per-atom array of kind labels in ASE Atoms / extxyz


def _site_count(n_from: int, count: int | None, fraction: float | None, what: str) -> int:
    if (count is None) == (fraction is None):
        raise MDError(f"{what}: give exactly one of 'count' and 'fraction'")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise MDError(f"{what}: fraction must be in (0, 1], got {fraction}")
        count = int(round(fraction * n_from))
        if count < 1:
            raise MDError(f"{what}: fraction {fraction} of {n_from} atoms rounds to 0 sites; raise it or give 'count'")
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise MDError(f"{what}: count must be an integer >= 1, got {count!r}")
    if count > n_from:
        raise MDError(f"{what}: {count} sites requested but the structure has only {n_from} such atoms")
    return int(count)


def _normalize_elements(obj, fields: Sequence[str], where: str) -> None:
    """Replace the element fields of a frozen dataclass by their canonical symbols; MDError naming the field."""
    from hamforge._elements import chemical_symbol

    for name in fields:
        try:
            object.__setattr__(obj, name, chemical_symbol(getattr(obj, name)))
        except ValueError as exc:
            raise MDError(f"{where}.{name}: {exc}") from None


@dataclass(frozen=True)
class Substitution:
    """Replace ``count`` (or ``fraction`` of the) atoms of element ``source`` by element ``target``."""

    source: str
    target: str
    count: int | None = None
    fraction: float | None = None

    def __post_init__(self):
        _normalize_elements(self, ("source", "target"), "post_quench.substitute")
        if self.source == self.target:
            raise MDError(f"post_quench.substitute: source and target are both {self.source}")


@dataclass(frozen=True)
class GhostVacancies:
    """Turn ``count`` (or ``fraction`` of the) atoms of element ``source`` into ghost atoms of kind ``kind``."""

    source: str
    kind: str
    count: int | None = None
    fraction: float | None = None

    def __post_init__(self):
        _normalize_elements(self, ("source",), "post_quench.vacancies")
        if not str(self.kind).strip():
            raise MDError("post_quench.vacancies.kind: empty kind label")


@dataclass(frozen=True)
class PostQuench:
    """Substitutions (applied in order, each on the atoms still of its ``source`` element), then vacancies."""

    substitutions: tuple[Substitution, ...] = ()
    vacancies: GhostVacancies | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "PostQuench | None":
        """From a material's ``md.post_quench`` mapping (``substitute``: list of {from, to, count|fraction};
        ``vacancies``: {from, kind, count|fraction}; ``seed``); None when ``cfg`` is empty."""
        if not cfg:
            return None
        subs = tuple(
            Substitution(source=s["from"], target=s["to"], count=s.get("count"), fraction=s.get("fraction"))
            for s in cfg.get("substitute", [])
        )
        vac = cfg.get("vacancies")
        vacancies = (
            GhostVacancies(source=vac["from"], kind=vac["kind"], count=vac.get("count"), fraction=vac.get("fraction"))
            if vac
            else None
        )
        return cls(substitutions=subs, vacancies=vacancies, seed=int(cfg.get("seed", 0)))


def post_quench_sites(symbols: Sequence[str], settings: PostQuench, quench: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(symbols, kinds)`` (N,) object arrays after the substitutions and vacancies of ``settings``.

    Non-ghost atoms have their chemical symbol as kind; a ghost keeps its host symbol (the element of its basis)
    and gets the vacancy kind label. Reproducible: the generator is seeded by ``(settings.seed, quench)``.
    """
    symbols = np.array(list(symbols), dtype=object)
    rng = np.random.default_rng(np.random.SeedSequence([int(settings.seed), int(quench)]))
    for i, s in enumerate(settings.substitutions):
        cand = np.flatnonzero(symbols == s.source)
        n = _site_count(len(cand), s.count, s.fraction, f"post_quench.substitute[{i}] ({s.source} -> {s.target})")
        symbols[np.sort(rng.choice(cand, size=n, replace=False))] = s.target
    kinds = symbols.copy()
    v = settings.vacancies
    if v is not None:
        cand = np.flatnonzero(symbols == v.source)
        n = _site_count(len(cand), v.count, v.fraction, f"post_quench.vacancies ({v.source} -> ghost {v.kind})")
        kinds[np.sort(rng.choice(cand, size=n, replace=False))] = v.kind
    return symbols, kinds


def apply_post_quench(frames: Sequence, settings: PostQuench, quench: int = 0) -> list:
    """The frames (ASE Atoms of one quench, same atom order) decorated on the same sites, in place and returned.

    Each frame's chemical symbols are changed by the substitutions and its per-atom ``kinds`` array set.
    """
    frames = list(frames)
    if not frames:
        return frames
    n = len(frames[0])
    if any(len(f) != n for f in frames):
        raise MDError("post-quench decoration: frames of one quench must all have the same atoms")
    symbols, kinds = post_quench_sites(frames[0].get_chemical_symbols(), settings, quench)
    for f in frames:
        if f.get_chemical_symbols() != frames[0].get_chemical_symbols():
            raise MDError("post-quench decoration: frames of one quench must all have the same species in order")
    for f in frames:
        f.set_chemical_symbols(list(symbols))
        f.arrays[KINDS_ARRAY] = np.array(kinds, dtype=str)
    return frames

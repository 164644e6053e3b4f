"""Contracted Gaussian basis sets (exponents, coefficients) and their conversion to libcint's data layout.

A CP2K set holds one exponent list shared by several contracted shells of angular momenta lmin..lmax;
:class:`ShellGroup` is one angular momentum of one set: ``exponents (nprim,)`` in bohr^-2 and
``coefficients (nprim, nctr)`` of ``nctr`` shells, for normalized primitives, as written in the file.
The groups of a :class:`GaussianBasis` are in CP2K's order (set by set, l ascending inside a set), so the
atom's orbitals are: group by group, shell by shell (contraction column), m = -l..l.

PySCF/libcint conventions and how they map onto CP2K's (checked against CP2K's printed S on real runs,
tests/test_overlap.py): libcint's real spherical functions come per shell (contraction) in the order
m = -l..l for l >= 2, but as (p_x, p_y, p_z) = (m = +1, -1, 0) for p; CP2K's p order is (p_y, p_z, p_x),
hence the permutation ``_LIBCINT_P = (1, 2, 0)``. Normalization: PySCF multiplies each coefficient by the
primitive norm (:func:`pyscf.gto.gto_norm`) and rescales each contraction to unit self-overlap, which is
what CP2K does for these basis files; s, p, d and f then agree with CP2K to ~1e-8 (CP2K's own screening).
Shells with l >= 4 are refused (:data:`VERIFIED_L_MAX`): no basis file here lets us check libcint's g
order and signs against CP2K, and an unchecked convention would give wrong blocks silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hamforge.basis._types import BasisError, ElementBasis

__all__ = ["VERIFIED_L_MAX", "GaussianBasis", "ShellGroup"]

# Highest angular momentum whose libcint order/normalization is verified against CP2K (f, the Hf DZVP shell).
VERIFIED_L_MAX = 3
# CP2K p orbital k (p_y, p_z, p_x) is libcint p component _LIBCINT_P[k] of (p_x, p_y, p_z).
_LIBCINT_P = np.array([1, 2, 0], dtype=np.int64)
# libcint slot layout (pyscf.gto.mole: ATM_SLOTS, BAS_SLOTS, PTR_ENV_START); fixed by libcint's C API.
_ATM_SLOTS = 6
_BAS_SLOTS = 8
_PTR_ENV_START = 20
_ATOM_OF, _PTR_EXP, _PTR_COEFF = 0, 5, 6


@dataclass(frozen=True, eq=False)
class ShellGroup:
    """Shells of one angular momentum sharing one exponent list (one l of one CP2K set)."""

    l: int
    exponents: np.ndarray  # (nprim,) float64 | bohr^-2
    coefficients: np.ndarray  # (nprim, nctr) float64 | one column per contracted shell

    @property
    def n_shells(self) -> int:
        return int(self.coefficients.shape[1])


@dataclass(frozen=True, eq=False)
class GaussianBasis:
    """Contracted Gaussian basis of one element in CP2K's shell order (see the module docstring)."""

    element: str
    name: str
    groups: tuple[ShellGroup, ...]
    source: str = ""  # the basis file it came from (for messages)

    @property
    def shells(self) -> tuple[int, ...]:
        """Angular momentum of every contracted shell, CP2K order."""
        return tuple(g.l for g in self.groups for _ in range(g.n_shells))

    @property
    def element_basis(self) -> ElementBasis:
        """The shell structure only (what orbital bookkeeping needs)."""
        return ElementBasis(element=self.element, name=self.name, shells=self.shells)

    @property
    def n_orbitals(self) -> int:
        return int(sum(2 * l + 1 for l in self.shells))

    @property
    def min_exponent(self) -> float:
        """Most diffuse primitive exponent (bohr^-2)."""
        return float(min(g.exponents.min() for g in self.groups))


@dataclass(frozen=True, eq=False)
class LibcintKind:
    """One kind's basis in libcint's layout, for one atom at the origin.

    ``bas`` rows have ``ATOM_OF = 0`` and exponent/coefficient pointers relative to ``env`` (its own data,
    normalized by PySCF); ``ao_perm[k]`` is the libcint AO (inside the atom) of CP2K orbital ``k``.
    """

    label: str
    bas: np.ndarray  # (nbas, 8) int32
    env: np.ndarray  # (ndata,) float64
    ao_perm: np.ndarray  # (n_orb,) int64
    n_orb: int


def libcint_kind(label: str, basis: GaussianBasis) -> LibcintKind:
    """Convert ``basis`` to libcint's layout with PySCF's normalization (:func:`pyscf.gto.mole.make_bas_env`).

    Raises :class:`BasisError` naming the kind and basis for shells above :data:`VERIFIED_L_MAX`.
    """
    from pyscf.gto.mole import make_bas_env

    too_high = sorted({g.l for g in basis.groups if g.l > VERIFIED_L_MAX})
    if too_high:
        raise BasisError(
            f"kind {label!r}: basis {basis.name!r} of {basis.element!r} ({basis.source or 'given'}) has shells "
            f"with l = {too_high}; overlaps are only produced for l <= {VERIFIED_L_MAX} (s, p, d, f), the orders "
            f"and signs checked against CP2K"
        )
    pyscf_basis = [
        [g.l, *[[e, *c] for e, c in zip(g.exponents.tolist(), g.coefficients.tolist())]] for g in basis.groups
    ]
    bas, env = make_bas_env(pyscf_basis, atom_id=0, ptr=0)  # one bas row per group, groups in order
    perm = []
    start = 0
    for g in basis.groups:
        width = 2 * g.l + 1
        inner = _LIBCINT_P if g.l == 1 else np.arange(width, dtype=np.int64)
        for c in range(g.n_shells):  # libcint: contraction-major, then the 2l+1 components
            perm.append(start + c * width + inner)
        start += g.n_shells * width
    ao_perm = np.concatenate(perm).astype(np.int64)
    return LibcintKind(
        label=label,
        bas=np.asarray(bas, np.int32),
        env=np.asarray(env, np.float64),
        ao_perm=ao_perm,
        n_orb=int(ao_perm.shape[0]),
    )


class LibcintSites:
    """libcint ``atm``/``bas``/``env`` arrays for many basis-carrying sites (atoms or image copies).

    The kinds' exponent/coefficient data are stored once in ``env``; each call of :meth:`overlap` appends
    the site coordinates. Everything is built with vectorized index arithmetic (no loop over sites).
    """

    def __init__(self, kinds: list[LibcintKind]):
        self.kinds = kinds
        prefix = [np.zeros(_PTR_ENV_START)]
        ptr = _PTR_ENV_START
        bas_rows = []
        for k in kinds:
            b = k.bas.astype(np.int64).copy()
            b[:, _PTR_EXP] += ptr
            b[:, _PTR_COEFF] += ptr
            bas_rows.append(b)
            prefix.append(k.env)
            ptr += k.env.shape[0]
        self._env_prefix = np.concatenate(prefix)
        self._bas_all = np.concatenate(bas_rows)  # (sum nbas, 8) all kinds' templates
        self._nbas = np.array([k.bas.shape[0] for k in kinds], np.int64)
        self._bas_start = np.concatenate([[0], np.cumsum(self._nbas)[:-1]]).astype(np.int64)
        self.n_orb = np.array([k.n_orb for k in kinds], np.int64)
        # per kind: libcint AO of each CP2K orbital (inside the atom), padded into one table
        width = int(self.n_orb.max())
        self.ao_perm = np.zeros((len(kinds), width), np.int64)
        for i, k in enumerate(kinds):
            self.ao_perm[i, : k.n_orb] = k.ao_perm

    def _bas(self, site_kind: np.ndarray, atom_offset: int) -> np.ndarray:
        n = self._nbas[site_kind]
        start = np.repeat(self._bas_start[site_kind] - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        rows = self._bas_all[start + np.arange(int(n.sum()))]
        rows[:, _ATOM_OF] = np.repeat(np.arange(site_kind.shape[0]) + atom_offset, n)
        return rows

    def overlap(self, kind_a: np.ndarray, xyz_a: np.ndarray, kind_b: np.ndarray, xyz_b: np.ndarray) -> np.ndarray:
        """Dense overlaps ``<a|b>`` between sites ``a`` and ``b`` (positions in Angstrom), libcint AO order.

        Returns ``(nao_a, nao_b)`` float64; site ``s`` of ``a`` owns rows ``ao_offset(kind_a)[s]`` onwards
        (:meth:`ao_offsets`), its CP2K orbital ``k`` is row ``ao_offsets[s] + ao_perm[kind, k]``.
        """
        from pyscf.gto import moleintor

        kind_a = np.asarray(kind_a, np.int64)
        kind_b = np.asarray(kind_b, np.int64)
        na, nb = kind_a.shape[0], kind_b.shape[0]
        coords = angstrom_to_bohr(np.concatenate([xyz_a, xyz_b]).reshape(-1, 3))
        n_sites = na + nb
        coord_ptr = self._env_prefix.shape[0]
        zeta_ptr = coord_ptr + 3 * n_sites  # one shared 0.0: point nuclei (unused by overlaps)
        env = np.concatenate([self._env_prefix, coords.ravel(), [0.0]])
        atm = np.zeros((n_sites, _ATM_SLOTS), np.int32)
        atm[:, 1] = coord_ptr + 3 * np.arange(n_sites)
        atm[:, 2] = 1  # NUC_POINT
        atm[:, 3] = zeta_ptr
        bas = np.concatenate([self._bas(kind_a, 0), self._bas(kind_b, na)]).astype(np.int32)
        nbas_a = int(self._nbas[kind_a].sum())
        shls = (0, nbas_a, nbas_a, bas.shape[0])
        return moleintor.getints("int1e_ovlp_sph", atm, bas, env, shls_slice=shls, comp=1, hermi=0)

    def ao_offsets(self, site_kind: np.ndarray) -> np.ndarray:
        """First AO of every site in a site list (``(n_sites + 1,)``; AO counts are the same in both orders)."""
        out = np.zeros(site_kind.shape[0] + 1, np.int64)
        np.cumsum(self.n_orb[site_kind], out=out[1:])
        return out


def angstrom_to_bohr(x):
    """Lengths in Angstrom to bohr (the unit of the exponents), with PySCF's bohr (``pyscf.data.nist.BOHR``).

    CP2K 2023 uses CODATA 2018 (0.529177210903 A), PySCF CODATA 2010 (0.52917721092 A): 2e-11 relative,
    far below any tolerance here.
    """
    from pyscf.data.nist import BOHR

    return np.asarray(x, np.float64) / BOHR

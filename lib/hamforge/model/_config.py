"""``ModelConfig``: every hyperparameter of :class:`hamforge.model.HamiltonianModel`, validated.

A model is rebuilt from ``ModelConfig.from_dict(config.to_dict())`` alone (checkpoints store that dict).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from hamforge._checks import check_int
from hamforge.so3 import L_MAX_SUPPORTED

ENVELOPES = ("polynomial", "cosine")
LAYER_NORMS = ("joint", "per_l")


def parse_irreps(irreps: str, name: str = "irreps") -> tuple[tuple[int, int], ...]:
    """Parse an e3nn Irreps string into ``((mul, l), ...)`` in string order; parity is ignored.

    Column layout of an output with these irreps (e3nn's): term after term; inside a term ``mul x l`` the
    copies one after the other, each copy the ``2l+1`` components ``m = -l..l`` (project order).
    """
    from e3nn import o3

    if not isinstance(irreps, str) or not irreps.strip():
        raise ValueError(f"{name} must be a non-empty e3nn Irreps string like '2x0e+1x1o', got {irreps!r}")
    try:
        parsed = o3.Irreps(irreps)
    except (ValueError, AssertionError, TypeError) as exc:
        raise ValueError(f"{name}: cannot parse Irreps string {irreps!r}: {exc}") from None
    terms = tuple((int(mul), int(ir.l)) for mul, ir in parsed if mul > 0)
    if not terms:
        raise ValueError(f"{name} {irreps!r} has no components")
    return terms


def irreps_dim(terms) -> int:
    """Number of columns of a parsed irreps list: ``sum mul (2l+1)``."""
    return sum(mul * (2 * l + 1) for mul, l in terms)


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the SO(2)-equivariant Hamiltonian network (``docs/model.md``).

    Fields::

        species         # tuple of atomic numbers the model knows (0 = ghost atom allowed); sorted, unique
        node_irreps     # e3nn Irreps string of node_out columns (padded on-site coupled targets)
        edge_irreps     # e3nn Irreps string of edge_out columns (padded edge coupled targets)
        r_cut           # Angstrom, > 0: cutoff of the graph; the envelope vanishes there
        l_max           # degree of the embeddings, 0..10; every output L must be <= l_max
        m_max           # largest order |m| kept by the SO(2) convolutions (None -> l_max), <= l_max
        embed_dim       # channels E per (l, m) component of node and edge embeddings
        n_heads         # attention heads (embed_dim % n_heads == 0)
        ffn_dim         # hidden channels of the gated feed-forward blocks
        n_layers        # message-passing layers M (halo depth for exact partitions; 1 if strictly_local)
        edge_ffn        # gated feed-forward block after each edge update (~1/3 of the activation memory)
        n_radial        # Gaussians of the distance expansion on [0, r_cut]
        radial_hidden   # hidden width of the radial MLPs
        envelope        # "polynomial" (C^2 at r_cut, DimeNet form with power envelope_p) or "cosine" (C^1)
        envelope_p      # power of the polynomial envelope, >= 2
        strictly_local  # SLEM mode: messages into i built from n_i and e_ji only (halo 1 at any depth)
        predict_overlap # add the two-centre overlap head (edge_overlap / node_overlap outputs)
        overlap_hidden  # hidden width of the overlap MLP
        layer_norm      # "joint" (one degree-balanced RMS per feature, default) or "per_l" (RMS per l)
        ln_eps          # epsilon of the equivariant layer norms
        ffn_invariants  # feed-forward scalars also read the l > 0 invariants (mean_m x^2 per l, channel)
        edge_out_norm   # equivariant layer norm on the edge embeddings before the edge head
        net_r_cut       # Angstrom or None: the network runs on the edges shorter than it (every edge when None or
                        # >= r_cut); the longer ones get the physics baselines alone (their residual is tiny; the
                        # network's cost drops ~(net_r_cut / r_cut)^3)
        edge_reads_updated  # the edge update reads the neighbour's updated node features n_j^t (both atoms'
                        # environments in one layer; partitions need a halo of n_layers + 1)
        kinds           # kind labels of a targets file: species[k] = k is kind kinds[k] (() if unused)
        basis           # "kind:element:basis name:l,l,..." per kind (the targets' basis; () if unused)

    Built from a targets file (:meth:`from_targets`), the species are the file's kind ids (two ghost kinds,
    or two kinds of one element with different bases, stay distinct), the output irreps are the targets'
    node and pair layouts and r_cut is the file's. Parity is dropped explicitly: the network is SO(3)
    equivariant and ``parse_irreps`` keeps only (multiplicity, L) in column order, which is all the
    column layout depends on. :meth:`check_targets` refuses targets of another layout, kinds, basis or
    r_cut, naming both.
    """

    species: tuple[int, ...]
    node_irreps: str
    edge_irreps: str
    r_cut: float
    l_max: int = 4
    m_max: int | None = None
    embed_dim: int = 16
    n_heads: int = 2
    ffn_dim: int = 64
    n_layers: int = 1
    n_radial: int = 32
    radial_hidden: int = 64
    envelope: str = "polynomial"
    envelope_p: int = 6
    edge_ffn: bool = True
    strictly_local: bool = False
    predict_overlap: bool = False
    overlap_hidden: int = 16
    layer_norm: str = "joint"
    ln_eps: float = 1e-6
    ffn_invariants: bool = True
    edge_out_norm: bool = True
    edge_reads_updated: bool = False
    net_r_cut: float | None = None
    kinds: tuple[str, ...] = ()
    basis: tuple[str, ...] = ()

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass normalisation)
        # species
        try:
            species = tuple(sorted(int(z) for z in self.species))
        except (TypeError, ValueError):
            raise ValueError(f"species must be a sequence of atomic numbers, got {self.species!r}") from None
        if not species:
            raise ValueError("species must not be empty")
        if len(set(species)) != len(species):
            raise ValueError(f"species has duplicates: {self.species!r}")
        if species[0] < 0 or species[-1] > 118:
            raise ValueError(f"species must be atomic numbers in 0..118 (0 = ghost), got {self.species!r}")
        for z in self.species:
            if isinstance(z, bool) or float(z) != int(z):
                raise ValueError(f"species must be integers, got {self.species!r}")
        set_("species", species)

        set_("kinds", tuple(str(k) for k in self.kinds))
        set_("basis", tuple(str(b) for b in self.basis))
        if self.kinds and len(self.kinds) != len(species):
            raise ValueError(f"kinds {list(self.kinds)} must name every species {list(species)}")
        for name in (
            "l_max",
            "embed_dim",
            "n_heads",
            "ffn_dim",
            "n_layers",
            "n_radial",
            "radial_hidden",
            "envelope_p",
            "overlap_hidden",
        ):
            check_int(getattr(self, name), name, minimum=0 if name == "l_max" else 1)
        if self.l_max > L_MAX_SUPPORTED:
            raise ValueError(f"l_max must be <= {L_MAX_SUPPORTED}, got {self.l_max}")
        if self.m_max is None:
            set_("m_max", self.l_max)
        check_int(self.m_max, "m_max", minimum=0)
        if self.strictly_local and self.edge_reads_updated:
            raise ValueError("edge_reads_updated reads the neighbour's node features, which strictly_local never does")
        if self.m_max > self.l_max:
            raise ValueError(f"m_max ({self.m_max}) must be <= l_max ({self.l_max})")
        if self.embed_dim % self.n_heads:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be divisible by n_heads ({self.n_heads})")
        if self.n_radial < 2:
            raise ValueError(f"n_radial must be >= 2, got {self.n_radial}")
        if self.envelope_p < 2:
            raise ValueError(f"envelope_p must be >= 2, got {self.envelope_p}")
        if self.envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES}, got {self.envelope!r}")
        if self.layer_norm not in LAYER_NORMS:
            raise ValueError(f"layer_norm must be one of {LAYER_NORMS}, got {self.layer_norm!r}")
        if self.net_r_cut is not None:
            v = self.net_r_cut
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"net_r_cut must be a finite number > 0 or None, got {v!r}")
            set_("net_r_cut", float(v))
        for name in ("r_cut", "ln_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
            set_(name, float(value))
        for name in (
            "edge_ffn",
            "strictly_local",
            "predict_overlap",
            "ffn_invariants",
            "edge_out_norm",
            "edge_reads_updated",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("node_irreps", "edge_irreps"):
            for _, l in parse_irreps(getattr(self, name), name):
                if l > self.l_max:
                    raise ValueError(
                        f"{name} {getattr(self, name)!r} contains l={l} > l_max={self.l_max}: "
                        "raise l_max (outputs are linear maps of l <= l_max embeddings)"
                    )

    # ------------------------------------------------------------------ derived
    @property
    def node_terms(self) -> tuple[tuple[int, int], ...]:
        """``((mul, l), ...)`` of node_irreps."""
        return parse_irreps(self.node_irreps, "node_irreps")

    @property
    def edge_terms(self) -> tuple[tuple[int, int], ...]:
        """``((mul, l), ...)`` of edge_irreps."""
        return parse_irreps(self.edge_irreps, "edge_irreps")

    @property
    def node_dim(self) -> int:
        """Columns Dn of node_out."""
        return irreps_dim(self.node_terms)

    @property
    def edge_dim(self) -> int:
        """Columns De of edge_out."""
        return irreps_dim(self.edge_terms)

    @property
    def halo(self) -> int:
        """Hops of halo a partition needs for exact outputs: n_layers (+ 1 if the edge update reads the
        neighbour's updated node), or 1 if strictly_local."""
        if self.strictly_local:
            return 1
        return self.n_layers + (1 if self.edge_reads_updated else 0)

    # ------------------------------------------------------------------ the model-targets contract
    @classmethod
    def from_targets(cls, targets, **hyper) -> "ModelConfig":
        """Config whose species, output irreps, r_cut, kinds and basis are those of ``targets``
        (a :class:`hamforge.io.Targets`); ``hyper`` sets the other fields (l_max defaults to the largest
        output L when larger than the default)."""
        for key in ("species", "node_irreps", "edge_irreps", "r_cut", "kinds", "basis"):
            if key in hyper:
                raise ValueError(f"{key}: taken from the targets file, not settable")
        need = max(l for _, l in parse_irreps(targets.node_layout.irreps) + parse_irreps(targets.pair_layout.irreps))
        hyper.setdefault("l_max", max(need, cls.l_max))
        return cls(
            species=tuple(range(len(targets.kinds))),
            node_irreps=targets.node_layout.irreps,
            edge_irreps=targets.pair_layout.irreps,
            r_cut=float(targets.nl.r_cut),
            kinds=tuple(targets.kinds),
            basis=basis_signature(targets.kinds, targets.basis),
            **hyper,
        )

    def check_targets(self, targets, source: str = "targets") -> None:
        """ValueError naming ``source`` and both values unless ``targets`` fit this model."""
        got = {
            "kinds": tuple(targets.kinds),
            "basis": basis_signature(targets.kinds, targets.basis),
            "node layout": parse_irreps(targets.node_layout.irreps),
            "pair layout": parse_irreps(targets.pair_layout.irreps),
            "r_cut": float(targets.nl.r_cut),
        }
        want = {
            "kinds": self.kinds,
            "basis": self.basis,
            "node layout": self.node_terms,
            "pair layout": self.edge_terms,
            "r_cut": self.r_cut,
        }
        for key in want:
            same = abs(got[key] - want[key]) <= 1e-9 * want[key] if key == "r_cut" else got[key] == want[key]
            if not same:
                raise ValueError(
                    f"{source}: {key} {_show(got[key])} differs from the model's {_show(want[key])}; "
                    "a model is trained for one layout, kind list, basis and r_cut"
                )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, str, int, float, bool): JSON-, YAML- and ``torch.load(weights_only)``-safe."""
        d = dataclasses.asdict(self)
        d["species"] = list(self.species)
        d["kinds"], d["basis"] = list(self.kinds), list(self.basis)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (ValueError naming them)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"model config must be a mapping, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        missing = sorted(
            f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.name not in d
        )
        if missing:
            raise ValueError(f"model config is missing required keys: {missing}")
        return cls(**d)


def basis_signature(kinds, basis) -> tuple[str, ...]:
    """``("kind:element:name:l,l,...", ...)`` of ``basis`` (kind -> ElementBasis) in the order of ``kinds``."""
    return tuple(f"{k}:{basis[k].element}:{basis[k].name}:{','.join(str(l) for l in basis[k].shells)}" for k in kinds)


def _show(value) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "+".join(f"{m}x{l}" for m, l in value)
    return repr(list(value) if isinstance(value, tuple) else value)

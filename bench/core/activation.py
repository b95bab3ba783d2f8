"""What the catalog is made of: an activation (``Activation``), its variants (``Variant``), its
threshold inputs (``Edge``), how each peer spells it (``Spelling``) and one audit case
(``Case``).  The shipped rows are in ``catalog``; declared ones come from ``declared``."""

from collections.abc import Callable
from dataclasses import dataclass, field

from actbench_ulp.reference import GATED, REFERENCES, ROWWISE

__all__ = [
    "DIRECTIONS",
    "DTYPES",
    "INPUTS",
    "KIND_DIRECTIONS",
    "PEERS",
    "SIXTEEN_BIT",
    "Activation",
    "Case",
    "Edge",
    "Spelling",
    "Variant",
    "spellings",
]

# What a kernel computes, by kind: elementwise y(x) and dy/dx; gated y(a, b) and both partials;
# row-wise y(row) and the vector-Jacobian product with an upstream gradient g.
KIND_DIRECTIONS = {
    "elementwise": ("forward", "derivative"),
    "gated": ("forward", "d_a", "d_b"),
    "rowwise": ("forward", "vjp"),
}
DIRECTIONS = tuple(dict.fromkeys(d for ds in KIND_DIRECTIONS.values() for d in ds))
DTYPES = ("float32", "float64")
SIXTEEN_BIT = ("float16", "bfloat16")  # elementwise kernels only, computed wider and rounded once


@dataclass(frozen=True)
class Edge:
    """A threshold input, as hex floats: one for all dtypes, or one per dtype.

    ``holds``, where given, makes the comment checkable: ``x`` is the largest float of its
    dtype with ``holds(f(x), x)`` true for the rounded exact forward value f(x), and the
    next float up makes it false (``tests/test_catalog.py`` recomputes every such edge).
    """

    x: str | dict
    why: str
    holds: Callable | None = None

    def value(self, dtype: str) -> float | None:
        if isinstance(self.x, str):  # one literal, every dtype
            return float.fromhex(self.x)
        return float.fromhex(self.x[dtype]) if dtype in self.x else None


@dataclass(frozen=True)
class Variant:
    """One way of computing an activation: a kernel per direction; ``method`` says how."""

    name: str
    kernels: dict
    method: str
    dtypes: tuple | None = None  # the dtypes its kernels take; None: every dtype of its kind

    def kernel(self, direction: str) -> Callable | None:
        """The kernel for ``direction``; None where this variant has none (a declared
        activation's ``declared`` variant: no kernel of ours, only references)."""
        return self.kernels.get(direction)


# The arguments a kernel of each kind takes before its parameters (``actbench_ulp.core.impl``):
# a row-wise kernel takes its temperature as an argument, not as a catalog parameter
INPUTS = {"elementwise": ("x",), "gated": ("a", "b"), "rowwise": ("x", "temperature=1.0")}

# The peers that spell activations, and the names their expressions may use (bound by each
# peer: ``actbench_ulp.core.peers`` and ``framework_peers``)
PEERS = {
    "torch": "torch, F (torch.nn.functional)",
    "jax": "jax, nn (jax.nn), jnp (jax.numpy)",
    "scipy": "special (scipy.special), np",
    "numpy-seed": "seed (the theory notebook's NumPy helpers), np",
}


@dataclass(frozen=True)
class Spelling:
    """How a peer writes one direction of an activation: a Python expression over the kind's
    inputs (``INPUTS``), the activation's parameters by name and the peer's names (``PEERS``),
    e.g. ``"F.elu(x, alpha)"``.  ``only``: the parameter values the peer's function has (jax.nn's
    softplus is beta = 1 only); elsewhere the peer has no such function."""

    expr: str
    only: dict | None = None

    def function(self, names: dict, inputs: tuple, params: dict) -> Callable | None:
        """The expression as ``f(*inputs, **params)``, the parameters defaulting to ``params``;
        None where ``params`` are not the ``only`` values."""
        if self.only is not None and dict(params) != self.only:
            return None
        args = ", ".join((*inputs, *(f"{k}=_params[{k!r}]" for k in params)))
        fn = eval(f"lambda {args}: {self.expr}", {**names, "_params": dict(params)})
        fn.__name__ = fn.__qualname__ = self.expr  # what a failing row names
        return fn


def spellings(peers: dict, kind: str, owner: str) -> dict:
    """{peer: expr | Spelling | {direction: expr | Spelling}} -> {peer: {direction: Spelling}};
    a bare expression is the forward (the frameworks differentiate it by autograd)."""
    spelled = {}
    for peer, by_direction in peers.items():
        if peer not in PEERS:
            raise ValueError(f"{owner}: unknown peer {peer!r} in its spellings; known: "
                             f"{', '.join(PEERS)}")
        if not isinstance(by_direction, dict):
            by_direction = {"forward": by_direction}
        for direction in by_direction:
            if direction not in KIND_DIRECTIONS[kind]:
                raise ValueError(f"{owner}: {peer} spells {direction!r}, which {kind} "
                                 f"activations do not have ({', '.join(KIND_DIRECTIONS[kind])})")
        spelled[peer] = {d: s if isinstance(s, Spelling) else Spelling(s)
                         for d, s in by_direction.items()}
        for spelling in spelled[peer].values():
            try:
                compile(spelling.expr, "<spelling>", "eval")
            except (SyntaxError, TypeError) as exc:
                raise ValueError(f"{owner}: {peer}'s spelling {spelling.expr!r} is not a Python "
                                 f"expression ({exc})") from None
    return spelled


@dataclass(frozen=True)
class Activation:
    name: str
    variants: tuple
    core: tuple  # the working range sampled by the ``core`` domain
    edges: tuple = ()
    params: dict = field(default_factory=dict)
    kinks: str = ""  # derivative convention at non-differentiable points (PyTorch's)
    kind: str = "elementwise"
    gate: str | None = None  # gated: the elementwise activation applied to b
    # declared outside actbench (``register``): its references, where it was declared, and
    # its float64 oracle for exhaustive sweeps ((forward, derivative), bound in float64 ULP)
    references: tuple | None = None
    declared_by: str = ""
    oracles: tuple | None = None
    declaration: object = None  # the declared.Declaration itself: a pool process re-registers it
    # how each peer writes it: {peer: expr | Spelling | {direction: expr | Spelling}} (``PEERS``)
    peers: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "peers", spellings(self.peers, self.kind, self.name))

    @property
    def directions(self) -> tuple:
        return KIND_DIRECTIONS[self.kind]

    def reference(self, direction: str):
        if self.references is not None:
            return self.references[self.directions.index(direction)]
        if self.kind == "gated":
            return GATED[self.name if direction == "forward" else f"d_{self.name}_{direction[-1]}"]
        if self.kind == "rowwise":
            return ROWWISE[self.name if direction == "forward" else f"{self.name}_vjp"]
        return REFERENCES[self.name if direction == "forward" else f"d_{self.name}"]

    def spelling(self, peer: str, direction: str) -> Spelling | None:
        """How ``peer`` writes ``direction``; None where it does not."""
        return self.peers.get(peer, {}).get(direction)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no variant {name!r}")


@dataclass(frozen=True)
class Case:
    """What one audit row is about, apart from dtype and domain."""

    activation: Activation
    variant: Variant
    direction: str

    @property
    def kernel(self) -> Callable:
        return self.variant.kernel(self.direction)

    @property
    def reference(self):
        return self.activation.reference(self.direction)

    @property
    def label(self) -> str:
        return f"{self.activation.name}.{self.variant.name}.{self.direction}"

    def takes(self, dtype: str) -> bool:
        """Whether this case's kernel takes ``dtype``: the variant's dtypes, or by default
        float32 and float64, and the 16-bit formats for elementwise activations."""
        if self.variant.dtypes is not None:
            return dtype in self.variant.dtypes
        return dtype in DTYPES or (dtype in SIXTEEN_BIT and self.activation.kind == "elementwise")

"""Activations declared outside actbench: ``actbench.register(Declaration(...))`` from Python, or
an installed package's entry point in the group ``actbench.activations``.

A declaration holds what the audit needs and cannot guess: the name, the parameters with their
defaults, and the exact value as an mpmath function (mpmath numbers in and out, the parameters
as keywords).  Optional: the derivative's mpmath function (else mpmath differentiates the
reference numerically at the working precision, which the two-precision check of every exact
value then vouches for), the working range of the ``core`` domain, threshold inputs, a
monotonicity claim that is checked, and a float64 oracle with its error bound, without which
the exhaustive float32 sweep cannot run (2**32 mpmath evaluations would take days).

The values at ±0 and ±inf are derived from the reference: its values at ±2**-2000 and ±2**2000,
beyond every float format's range, rounded like every exact value.  A reference continuous at 0
gives f(0) there (or a zero of the limit's sign); one that tends to a constant at ±inf gives the
constant, one that grows at least like |x|**0.52 gives ±inf in every format.  One that grows
slower (a logarithm, asinh, a square root in float64) gives its value at 2**2000, which is not
its limit: declare ``at_pos_inf`` / ``at_neg_inf`` (and ``at_zero``) for it.

A declaration is checked when it is registered: a reference that raises, returns something
other than an mpmath number (a float from ``math.exp`` has lost the working precision), or
breaks its monotonicity claim, and a name already taken, are each one ``DeclarationError``
naming the declaration and the input.
"""

import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points

import mpmath

from actbench_ulp.core.activation import spellings

__all__ = ["DECLARED", "ENTRY_POINT_GROUP", "Declaration", "DeclarationError", "DeclaredReference",
           "check", "check_entry_points", "ensure", "load_entry_points", "load_installed", "oracle",
           "register"]

ENTRY_POINT_GROUP = "actbench.activations"

_FAR = 2000  # ±2**2000 and ±2**-2000 stand for ±inf and ±0: beyond every float format
_PROBE_PREC = 120
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class DeclarationError(ValueError):
    """A declared activation that cannot be audited, with the reason."""


@dataclass(frozen=True)
class Declaration:
    """An elementwise activation declared by its user (see the module docstring).

    Attributes:
        name: the activation's name in the catalog.
        reference: ``f(x, **params)`` for finite nonzero mpmath ``x``, returning an mpmath number.
        derivative: ``f'(x, **params)`` likewise, or None (mpmath.diff of the reference).
        params: the parameters and their defaults (floats), passed to every function as keywords.
        core: the working range the ``core`` domain samples.
        thresholds: inputs where the activation changes regime (the ``thresholds`` domain).
        monotone: "increasing" or "decreasing" where the reference claims it, checked over ``core``.
        peers: how torch, jax, scipy or numpy-seed write it, e.g. ``{"torch": "0.5 * (x +
            torch.sqrt(x * x + b))"}`` (``actbench_ulp.core.activation.Spelling``): ``--impl torch``
            then audits and times that expression.
        oracle: a float64 function ``(x: ndarray, **params) -> ndarray`` for the exhaustive
            float32 sweep, within ``oracle_bound`` float64 ULPs (mpmath checks the decisive points
            against that bound).
        oracle_derivative: the same for the derivative.
        oracle_bound: the oracles' error bound, in float64 ULPs.
    """

    name: str
    reference: Callable
    derivative: Callable | None = None
    params: dict = field(default_factory=dict)
    core: tuple = (-10.0, 10.0)
    thresholds: tuple = ()
    monotone: str | None = None
    oracle: Callable | None = None
    oracle_derivative: Callable | None = None
    oracle_bound: float = 4.0
    at_zero: object = None
    at_pos_inf: object = None
    at_neg_inf: object = None
    conventions: str = ""
    peers: dict = field(default_factory=dict)
    source: str = "actbench.register"  # where it was declared: shown by `actbench list`


class DeclaredReference:
    """A declared function as a reference (the interface of ``reference.ElementwiseReference``):
    NaN in, NaN out; ±0 and ±inf from the far points or the declaration's overrides."""

    rational = False

    def __init__(self, name: str, fn: Callable, overrides: dict, sources: tuple = ()):
        self.name = name
        self.fn = fn
        self._overrides = overrides
        self._sources = (fn, *sources)

    def fingerprint_text(self) -> str:
        """All the exact-value cache keys on (``reference.fingerprint``): the name, the
        special-value overrides and the source of the modules defining the declared functions
        (their helpers and constants included), so that editing any of them never serves the
        old values; nothing that varies between runs, such as an address."""
        return "\n".join([self.name, repr(sorted(self._overrides.items(), key=str)),
                          *(source_digest(f) for f in self._sources)])

    def __call__(self, x: float, **params):
        if math.isnan(x):
            return math.nan
        if x == 0.0 or math.isinf(x):
            key = ("+" if math.copysign(1.0, x) > 0 else "-") + ("inf" if math.isinf(x) else "0")
            given = self._overrides.get(key)
            if given is not None:
                return given
            far = mpmath.ldexp(mpmath.mpf(1), _FAR if math.isinf(x) else -_FAR)
            return self.fn(far if x > 0 or (x == 0.0 and key == "+0") else -far, **params)
        return self.fn(mpmath.mpf(x), **params)


def source_digest(fn: Callable | None) -> str:
    """What a declared function's results depend on: the source of the module that defines it
    (its helpers and constants with it), else its own, else its code object's bytes."""
    if fn is None:
        return "none"
    if isinstance(fn, _NumericDerivative):  # the reference it differentiates
        return "d/dx " + source_digest(fn.fn)
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    for target in (module, fn):
        try:
            return inspect.getsource(target) if target is not None else ""
        except (OSError, TypeError):  # defined at a prompt, or a builtin
            continue
    code = getattr(fn, "__code__", None)
    return repr(code.co_code + repr(code.co_consts).encode()) if code else repr(fn)


class _NumericDerivative:
    """f'(x) by mpmath.diff of the reference; a class (not a closure) so that a pool process
    can receive it.  mpmath's own step for |x| <= 1, one-sided at the stand-ins for ±0 (the
    derivative from the side the zero's sign names: a kink at 0 is not averaged); beyond
    |x| = 1 a step relative to x (at ±2**2000, standing for ±inf, an absolute step vanishes):
    a central difference at a third of the precision keeps two thirds of it, and the
    two-precision check of every exact value vouches for the rest."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.__name__ = f"d_{getattr(fn, '__name__', 'reference')}"

    def __call__(self, x, **params):
        def f(t):
            return self.fn(t, **params)

        if abs(x) <= 1:
            side = 0 if abs(x) > mpmath.ldexp(1, -_FAR + 1) else (1 if x > 0 else -1)
            return mpmath.diff(f, x, direction=side)
        return mpmath.diff(f, x, h=abs(x) * mpmath.ldexp(1, -(mpmath.mp.prec // 3)))


def _probe(decl: Declaration, what: str, fn: Callable, x) -> object:
    try:
        with mpmath.workprec(_PROBE_PREC):
            value = fn(x, **decl.params)
    except Exception as exc:  # any failure of user code is reported as such
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): its {what} raised "
                               f"{type(exc).__name__}: {exc} at x = {mpmath.nstr(x, 17)}") from exc
    if isinstance(value, float):
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): its {what} returned a "
                               f"float at x = {mpmath.nstr(x, 17)}; use mpmath's functions "
                               "(mpmath.exp, not math.exp) so the value keeps the working precision")
    if not isinstance(value, (mpmath.mpf, int)) or isinstance(value, bool):
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): its {what} returned "
                               f"{type(value).__name__} at x = {mpmath.nstr(x, 17)}, not an "
                               "mpmath real number")
    return value


def check(decl: Declaration, taken) -> tuple:
    """Validate ``decl`` against the names ``taken``; return its (forward, derivative)
    references.  Raises ``DeclarationError``."""
    if not isinstance(decl, Declaration):
        raise DeclarationError(f"expected an actbench Declaration, got {type(decl).__name__}")
    if not isinstance(decl.name, str) or not _NAME.match(decl.name):
        raise DeclarationError(f"activation name {decl.name!r}: lower-case letters, digits and _, "
                               "starting with a letter")
    if decl.name in taken:
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}) is already declared "
                               f"({taken[decl.name]})")
    for what, fn in (("reference", decl.reference), ("derivative", decl.derivative),
                     ("oracle", decl.oracle), ("oracle_derivative", decl.oracle_derivative)):
        if fn is not None and not callable(fn):
            raise DeclarationError(f"activation {decl.name!r} ({decl.source}): {what} is not callable")
    if decl.reference is None:
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): no reference function")
    try:
        lo, hi = (float(v) for v in decl.core)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): core {decl.core!r} is not "
                               "a finite range (low, high)")
    for what, values in (("thresholds", decl.thresholds), ("params", decl.params)):
        try:
            [float(v) for v in (values.values() if isinstance(values, dict) else values)]
        except (TypeError, ValueError, AttributeError):
            raise DeclarationError(f"activation {decl.name!r} ({decl.source}): {what} "
                                   f"{values!r} are not numbers") from None
    if decl.monotone not in (None, "increasing", "decreasing"):
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): monotone must be "
                               f"'increasing' or 'decreasing', not {decl.monotone!r}")
    if isinstance(decl.oracle_bound, bool) or not isinstance(decl.oracle_bound, (int, float)) \
            or not decl.oracle_bound > 0:
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): oracle_bound must be positive")
    if not isinstance(decl.peers, dict):
        raise DeclarationError(f"activation {decl.name!r} ({decl.source}): peers must be a dict "
                               f"{{peer: expression}}, not {type(decl.peers).__name__}")
    try:
        spellings(decl.peers, "elementwise", f"activation {decl.name!r} ({decl.source})")
    except ValueError as exc:
        raise DeclarationError(str(exc)) from None
    derivative = decl.derivative or _NumericDerivative(decl.reference)
    xs = [mpmath.mpf(lo) + (mpmath.mpf(hi) - lo) * k / 64 for k in range(65)]
    xs = [x for x in xs if x != 0]
    values = [_probe(decl, "reference", decl.reference, x) for x in xs]
    for x in (xs[0], xs[len(xs) // 2], xs[-1]):
        _probe(decl, "derivative", derivative, x)
    far = mpmath.ldexp(mpmath.mpf(1), _FAR)
    for x in (far, -far, 1 / far, -1 / far):
        _probe(decl, "reference (at a far point standing for ±0 or ±inf)", decl.reference, x)
    if decl.monotone:
        sign = 1 if decl.monotone == "increasing" else -1
        for k in range(len(xs) - 1):
            (x0, v0), (x1, v1) = (xs[k], values[k]), (xs[k + 1], values[k + 1])
            if sign * (v1 - v0) < 0:
                raise DeclarationError(
                    f"activation {decl.name!r} ({decl.source}) is declared {decl.monotone}, but its "
                    f"reference gives {mpmath.nstr(v0, 10)} at x = {mpmath.nstr(x0, 10)} and "
                    f"{mpmath.nstr(v1, 10)} at x = {mpmath.nstr(x1, 10)}")
    overrides = {"+0": decl.at_zero, "-0": decl.at_zero, "+inf": decl.at_pos_inf,
                 "-inf": decl.at_neg_inf}
    forward = DeclaredReference(decl.name, decl.reference, overrides)
    return forward, DeclaredReference(f"d_{decl.name}", derivative, {},
                                      () if decl.derivative else (decl.reference,))


DECLARED = "declared"  # the variant of an activation declared outside actbench: no kernel of ours


def register(declaration):
    """Add an activation declared outside actbench (``Declaration``) to the catalog,
    after checking it (``check``); return its catalog row.  Its only variant,
    ``declared``, has no kernel of ours: implementations of it are audited with ``--impl
    module:function`` or ``actbench.audit``, against the standard targets."""
    from actbench_ulp.core.catalog import CATALOG, Activation, Edge, Variant

    taken = {name: act.declared_by or "shipped with actbench" for name, act in CATALOG.items()}
    forward, derivative = check(declaration, taken)
    d = declaration
    oracles = None
    if d.oracle is not None:
        oracles = ((d.oracle, d.oracle_derivative), float(d.oracle_bound))
    act = Activation(
        d.name,
        (Variant(DECLARED, {}, f"no kernel of ours: declared by {d.source}; audit an "
                 "implementation with --impl module:function"),),
        tuple(float(v) for v in d.core),
        tuple(Edge(float(x).hex(), "declared threshold") for x in d.thresholds),
        params={k: float(v) for k, v in d.params.items()},
        kinks=d.conventions,
        references=(forward, derivative),
        declared_by=d.source,
        peers=dict(d.peers),
        oracles=oracles,
        declaration=d,
    )
    CATALOG[d.name] = act
    return act


def oracle(act, direction: str) -> tuple:
    """(float64 function, its bound in float64 ULP or None) for the exhaustive float32 sweep of
    ``act``: a shipped activation's ``simd`` kernel (its bound: that kernel's float64 budget,
    None here), a declared one's oracle.  ValueError where a declared activation has none."""
    if act.references is None:
        return act.variant("simd").kernel(direction), None
    fn = None if act.oracles is None else act.oracles[0][act.directions.index(direction)]
    if fn is None:
        which = "oracle=" if direction == "forward" else "oracle_derivative="
        raise ValueError(f"{act.name} ({act.declared_by}) declares no float64 oracle for its "
                         f"{direction}: declare {which} to sweep every float32 input (mpmath alone "
                         "would take days)")
    return fn, act.oracles[1]


def ensure(job_activation: str, declaration):
    """The catalog row named ``job_activation``, registering ``declaration`` first where this
    process has not seen it (a pool process of a run that registered it from Python)."""
    from actbench_ulp.core.catalog import CATALOG

    if job_activation not in CATALOG and declaration is not None:
        register(declaration)
    return CATALOG[job_activation]


def load_entry_points() -> list:
    """Register the activations that installed packages declare in the entry point group
    ``actbench.activations``: each entry point names a Declaration or a list of them."""
    added = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} = {ep.value}" + (f" of {ep.dist.name}" if ep.dist else "")
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin: said once, naming it
            raise DeclarationError(f"{where}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
        for decl in obj if isinstance(obj, (list, tuple)) else [obj]:
            if isinstance(decl, Declaration) and decl.source == Declaration.source:
                decl = replace(decl, source=where)
            try:
                added.append(register(decl))
            except DeclarationError as exc:
                raise DeclarationError(f"{where}: {exc}") from None
            except Exception as exc:  # whatever a broken plugin does: said once, naming it
                raise DeclarationError(f"{where}: {type(exc).__name__}: {exc}") from exc
    return added


# Installed packages' declarations join the catalog when it is imported; a broken one is kept
# here and raised, naming it, by ``check_entry_points`` (the command line and the API call it
# first), so that importing actbench never fails because of someone else's package.
ENTRY_POINT_ERROR: DeclarationError | None = None


def load_installed() -> None:
    """``load_entry_points``, keeping its error for ``check_entry_points``."""
    global ENTRY_POINT_ERROR
    try:
        load_entry_points()
    except DeclarationError as exc:
        ENTRY_POINT_ERROR = exc


def check_entry_points() -> None:
    """Raise the error of a broken ``actbench.activations`` entry point, if any."""
    if ENTRY_POINT_ERROR is not None:
        raise ENTRY_POINT_ERROR

"""The Python API: audit a function of your own against the exact reference of a catalog
activation, as ``actbench audit --impl module:function`` does from the command line.

    >>> import actbench_ulp as actbench
    >>> df = actbench.audit(my_gelu, "gelu", dtype="float32")
    >>> df[["domain", "max_ulp", "budget_max_ulp", "passed"]]

The rows are those of ``audit.csv`` (``actbench_ulp.accuracy.row.AuditRow``); the exact values
come from the same content-addressed cache as the command line's (``$ACTBENCH_CACHE``, else
``~/.cache/actbench``), so a second run computes nothing.
"""

import os
from collections.abc import Callable, Iterable
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np

from actbench_ulp.accuracy.selection import at_least_one, check_domains, nothing_to_audit, pick
from actbench_ulp.core import catalog
from actbench_ulp.core.budgets import Budget, Budgets, load_budgets
from actbench_ulp.core.domains import DOMAINS, PROFILES, SIXTEEN_BIT
from actbench_ulp.core.exact import Cache, default_cache_dir

if TYPE_CHECKING:  # for the annotations only
    import pandas as pd

    from actbench_ulp.core.declared import Declaration

__all__ = ["DEFAULT_CACHE", "audit", "resolve_cache"]


class _DefaultCache:
    """The ``cache=`` default: the command line's directory, looked up at call time (so that
    ``ACTBENCH_CACHE`` set after import still counts)."""

    def __repr__(self):
        return "<the command line's cache: $ACTBENCH_CACHE or ~/.cache/actbench>"


DEFAULT_CACHE = _DefaultCache()


def audit(fn: Callable, activation: "str | Declaration", *, dtype: "str | type | list",
          direction: str | list[str] = "forward", domains: str | list[str] | None = None,
          budget: float | None = None, derivative: "Callable | str | None" = None,
          profile: str = "quick", points: int | None = None,
          cache: "str | os.PathLike | None" = DEFAULT_CACHE, jobs: int = 1, library: str = "auto",
          name: str | None = None, sweep_stride: int = 1) -> "pd.DataFrame":
    """Audit ``fn`` as ``activation`` against the exact reference; one row per direction ×
    dtype × domain, failing rows first (a ``pandas.DataFrame`` with ``audit.csv``'s columns;
    ``passed`` says whether a row is within its budget with every special value right).

    Args:
        fn: the function, in the catalog's calling convention: elementwise ``fn(x, **params)``
            (the activation's parameters, e.g. ``negative_slope=`` for leaky_relu, see
            ``actbench list``), gated ``fn(a, b)``, row-wise ``fn(x, temperature=tau)`` along the
            last axis.  It takes and returns arrays of ``dtype``: NumPy, or those of ``library``.
        activation: a catalog name (``actbench list``), or a ``Declaration`` of an activation
            actbench does not ship (registered on first use; see ``actbench.register``).
        dtype: "float32", "float64", "float16", "bfloat16" (16-bit for elementwise only), as a name
            or a NumPy dtype (np.float32), or a list.
        direction: "forward", a derivative direction ("derivative" elementwise, "d_a"/"d_b" gated,
            "vjp" row-wise; these need ``derivative=``), a list of them, or "all".
        domains: a domain name or a list; by default the profile's.  "exhaustive" in float32 runs
            every one of the 2**32 inputs (``actbench_ulp.accuracy.exhaustive``, with a progress bar),
            or every ``sweep_stride``-th.
        budget: a max ULP for every row, instead of the catalog's budgets (those of our accurate
            kernels, ``bench/core/budgets.toml``).
        derivative: the function that ``fn``'s derivative directions audit (dy/dx elementwise,
            ``f(x, g, temperature=tau)`` for a row-wise VJP), or "autograd": ``fn``'s framework
            (torch, JAX) differentiates it, gated d_a and d_b too.
        profile: "quick", "full" or "exhaustive": the default domains and number of points.
        points: random points per sampled domain, instead of the profile's.
        cache: a directory for exact values; None or False for none.  By default the command
            line's.
        jobs: processes computing exact values that are not cached yet, and exhaustive sweeps.
        library: the array library ``fn`` takes: "numpy", "torch", "jax", "cupy", an array-API
            module's name, or "auto" (detected; ``actbench_ulp.core.arrays``).
        name: the ``impl`` column; by default ``module:function`` of ``fn``.
        sweep_stride: the exhaustive float32 domain takes every N-th bit pattern (1: all).
    """
    from actbench_ulp.accuracy.audit import run_audit
    from actbench_ulp.accuracy.table import to_frame
    from actbench_ulp.core.declared import check_entry_points
    from actbench_ulp.core.peers import UserImpl

    check_entry_points()
    activation = _declared_name(activation)
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if activation not in catalog.CATALOG:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(catalog.CATALOG)}")
    act = catalog.CATALOG[activation]
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    dtypes = _names(_dtype_names(dtype), [*catalog.DTYPES, *SIXTEEN_BIT], "dtype")
    directions = (list(act.directions) if direction == "all"
                  else _names(direction, act.directions, "direction", f" of {act.kind} {act.name}"))
    domain_names = (list(PROFILES[profile]["domains"]) if domains is None
                    else _names(domains, DOMAINS, "domain"))
    points = PROFILES[profile]["points"] if points is None else at_least_one(points, "points")
    jobs = at_least_one(jobs, "jobs")
    sweep_stride = at_least_one(sweep_stride, "sweep_stride")
    check_domains(domain_names, dtypes)
    derived = [d for d in directions if d != "forward"]
    if derived and derivative is None:
        raise ValueError(f"direction {derived[0]!r} audits a derivative: pass derivative=, "
                         f"{_DERIVATIVE_HELP[act.kind]}")

    variant = act.variants[0]  # the accurate one: peers are audited on its rows and budgets
    selection = [catalog.Case(act, variant, d) for d in directions]
    for case in selection:
        untaken = [dt for dt in dtypes if not case.takes(dt)]
        if untaken:
            takes = [dt for dt in (*catalog.DTYPES, *SIXTEEN_BIT) if case.takes(dt)]
            raise ValueError(f"{act.name} ({act.kind}) is audited in {', '.join(takes)}, "
                             f"not {', '.join(untaken)}")

    impl = UserImpl(name or _callable_name(fn), fn, derivative, library=library)
    for case in selection:
        if impl.kernel(case) is None:
            raise ValueError(f"derivative= gives no kernel for direction {case.direction!r} of "
                             f"{act.kind} {act.name}: give {_DERIVATIVE_HELP[act.kind]}")

    budgets = load_budgets() if budget is None else _uniform_budgets(selection, dtypes, budget)
    rows = run_audit(selection, dtypes, domain_names, budgets, points, impls=[impl],
                     cache=resolve_cache(cache), jobs=jobs, stride=sweep_stride,
                     search_swept=domains is not None or PROFILES[profile]["search_swept"])
    if not rows:
        raise ValueError(nothing_to_audit(selection))
    return to_frame(rows)


def _declared_name(activation) -> str:
    """A Declaration's name, registering it unless this very declaration already is."""
    from actbench_ulp.core.declared import Declaration, register

    if not isinstance(activation, Declaration):
        return activation
    known = catalog.CATALOG.get(activation.name)
    if known is None or known.declaration is not activation:
        register(activation)  # a different one of the same name: the clash is the error
    return activation.name


_DERIVATIVE_HELP = {
    "elementwise": "a function computing dy/dx at x, or 'autograd'",
    "gated": "'autograd' (fn's framework differentiates it)",
    "rowwise": "a function (x, g, temperature=tau) giving the vector-Jacobian product g·J, or "
               "'autograd'",
}


def _names(value, known: Iterable[str], what: str, of: str = "") -> list[str]:
    """One name or a list of them (``selection.pick``); at least one."""
    names = pick(value, known, what, of)
    if not names:
        raise ValueError(f"no {what} given{of}; known: {', '.join(known)}")
    return names


def _dtype_names(dtype) -> list:
    """Names for dtypes given as names, NumPy dtypes or scalar types (np.float32), or a list."""
    items = list(dtype) if isinstance(dtype, list | tuple) else [dtype]
    names = []
    for item in items:
        if item is None:  # np.dtype(None) would be float64: a missing dtype is not a choice
            raise ValueError("dtype is required: float32, float64, float16 or bfloat16")
        try:
            names.append(item if isinstance(item, str) else np.dtype(item).name)
        except TypeError:
            names.append(repr(item))  # reported as unknown by _names
    return names


def _uniform_budgets(selection, dtypes, max_ulp) -> Budgets:
    if isinstance(max_ulp, bool) or not isinstance(max_ulp, Real) or not max_ulp >= 0:
        raise ValueError(f"budget must be a non-negative number of ULP, got {max_ulp!r}")
    entry = {None: Budget(float(max_ulp), "set by the caller")}
    table = {(c.activation.name, c.variant.name, c.direction, dt): entry
             for c in selection for dt in dtypes}
    return Budgets(table, f"budget={max_ulp:g}")


def resolve_cache(cache) -> Cache:
    """``cache=`` as a ``Cache``: the command line's directory (looked up now), a directory of
    the caller's, none (None or False), or a ``Cache`` as it is."""
    if isinstance(cache, Cache):
        return cache
    if cache is DEFAULT_CACHE or cache is True:
        return Cache(default_cache_dir())
    if cache is None or cache is False:
        return Cache(None)
    if isinstance(cache, str | os.PathLike):
        return Cache(cache)
    raise TypeError(f"cache must be a directory, None or False, got {type(cache).__name__}")


def _callable_name(fn) -> str:
    """``module:function``; for an object without a name of its own (a torch.nn.Module, a
    functools.partial), its type's, never a repr that may span lines."""
    target = fn if getattr(fn, "__qualname__", None) else type(fn)
    if target is not fn and hasattr(fn, "func"):  # functools.partial: the function it wraps
        target = fn.func
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return f"{module}:{qualname}" if module else str(qualname)

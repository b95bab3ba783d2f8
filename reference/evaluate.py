"""Evaluate a reference over an array of inputs: exact values, rounded once, self-checked.

Every point is computed at two working precisions (4 and 6 times the target's significand,
plus 2·log2(1/|x|) bits for tiny inputs); when they round differently the exact value sits
next to a rounding boundary, and both precisions are doubled until they agree (Ziv's
strategy, up to MAX_PRECISION bits)
and both results are rounded to the target format; if they differ the reference is not
accurate enough there and ``ReferenceDisagreement`` is raised, naming the input.  The
higher-precision value is also returned as a float64 double-double (hi + lo), which is what
the error metrics measure against: ~106 bits, far beyond the resolution of a ULP error.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np

from .rounding import FORMATS, format_of, round_to_format

__all__ = [
    "MAX_PRECISION",
    "Exact",
    "ReferenceDisagreement",
    "evaluate",
    "evaluate_rows",
    "working_precisions",
]


class ReferenceDisagreement(ArithmeticError):
    """The reference rounds differently at two working precisions."""


@dataclass(frozen=True)
class Exact:
    """Exact values of a function at inputs ``x``.

    ``want``: correctly rounded to the target dtype; ``hi`` + ``lo``: the exact value to
    ~106 bits (``hi`` = RN64(exact), ``lo`` = RN64(exact - hi)).
    """

    x: np.ndarray
    want: np.ndarray
    hi: np.ndarray
    lo: np.ndarray


def working_precisions(dtype) -> tuple[int, int]:
    p = format_of(dtype).p
    return 4 * p, 6 * p


def _tiny_input_bits(x: float) -> int:
    """Extra bits for tiny |x|: f(x) ~ x/2 + c·x² puts the exact value within ~|x| (relative)
    of x/2, which is a rounding tie whenever x/2 is not representable (subnormal results),
    so the working precision must resolve |x| itself (gelu(-0x1.bp-145) in float32); even
    functions put it within x² (a·sigmoid'(b) ~ a/4 - a·b²/16 with a and b tiny), hence 2×."""
    if x == 0 or not math.isfinite(x):
        return 0
    return 2 * max(0, -math.frexp(x)[1])


def _tiny_shift_bits(row, tau) -> int:
    """Extra bits for a row whose shifted entries t = (x - max)/tau are tiny: exp(t) = 1 + t
    then sits within |t| of an exactly representable value, and results such as
    s·(g - sum g·s) can land next to a rounding tie (e.g. softmax_vjp of two float32
    entries near 1e-38 at tau = 0.5)."""
    finite = [v for v in row if math.isfinite(v)]
    if len(finite) < 2:
        return 0
    m = max(finite)
    return max(_tiny_input_bits((v - m) / tau) for v in finite if v != m) if any(
        v != m for v in finite) else 0


def _at(fn, xs, params, prec):
    with mpmath.workprec(prec):
        return fn(*xs, **params)


def _round_checked(v_low, v, fmt, f64, where):
    """Round the two precisions' values; they must agree.  Returns (want, hi, lo)."""
    w = round_to_format(v, fmt)
    w_low = round_to_format(v_low, fmt)
    if not (w == w_low or (w != w and w_low != w_low)) or (
        w == 0.0 and np.signbit(w) != np.signbit(w_low)
    ):
        raise ReferenceDisagreement(
            f"{where()} rounds to {w_low!r} at the lower working precision but {w!r} at the higher"
        )
    h = round_to_format(v, f64)
    if isinstance(v, (float, int)) or not np.isfinite(h):
        return w, h, 0.0
    if isinstance(v, Fraction):
        return w, h, round_to_format(v - Fraction(h), f64)
    return w, h, round_to_format(mpmath.fsub(v, h, exact=True), f64)


# Ziv's strategy: when the two precisions round differently the exact value is near a
# rounding boundary; double both and try again, up to this many bits, then give up loudly.
MAX_PRECISION = 1 << 14


def _ziv(value_at, low, high, fmt, f64, where):
    v_low = value_at(low)
    while True:
        v = value_at(high)
        try:
            return _round_checked(v_low, v, fmt, f64, where)
        except ReferenceDisagreement:
            if high >= MAX_PRECISION:
                raise
        v_low, high = v, 2 * high


def _describe(name, xs):
    return f"{name}({', '.join(float(x).hex() for x in xs)})"


def evaluate(fn, *arrays, params: dict | None = None, name: str | None = None) -> Exact:
    """Exact values of the reference ``fn`` at each element of ``arrays`` (equal shapes, all
    of the target dtype): fn(x) for elementwise references, fn(a, b) for gated ones."""
    params = params or {}
    arrays = [np.asarray(a) for a in arrays]
    first = arrays[0]
    if any(a.shape != first.shape or a.dtype != first.dtype for a in arrays):
        raise ValueError("evaluate: input arrays must share shape and dtype")
    fmt = format_of(first.dtype)
    f64 = FORMATS["float64"]
    low, high = working_precisions(first.dtype)
    name = name or getattr(fn, "name", repr(fn))
    columns = [a.ravel().tolist() for a in arrays]
    n = first.size
    want, hi, lo = np.empty(n), np.empty(n), np.empty(n)
    for i, xs in enumerate(zip(*columns, strict=True)):
        extra = max(_tiny_input_bits(x) for x in xs)
        want[i], hi[i], lo[i] = _ziv(lambda prec, xs=xs: _at(fn, xs, params, prec),
                                     low + extra, high + extra, fmt, f64,
                                     lambda xs=xs: _describe(name, xs))
    return Exact(x=first, want=want.astype(first.dtype).reshape(first.shape),
                 hi=hi.reshape(first.shape), lo=lo.reshape(first.shape))


def evaluate_rows(fn, x: np.ndarray, g: np.ndarray | None = None, tau: float = 1.0,
                  name: str | None = None) -> Exact:
    """Exact values of a row reference along the last axis of 2-D ``x`` (and ``g``)."""
    fmt = format_of(x.dtype)
    f64 = FORMATS["float64"]
    low, high = working_precisions(x.dtype)
    name = name or getattr(fn, "name", repr(fn))
    want, hi, lo = (np.empty(x.shape) for _ in range(3))
    for r, row in enumerate(x.tolist()):
        g_row = None if g is None else g[r].tolist()
        extra = _tiny_shift_bits(row, tau)
        cache = {}

        def values(prec, row=row, g_row=g_row, cache=cache):
            if prec not in cache:
                with mpmath.workprec(prec):
                    cache[prec] = fn(row, g_row, tau)
            return cache[prec]

        for i in range(len(row)):
            want[r, i], hi[r, i], lo[r, i] = _ziv(
                lambda prec, i=i, values=values: values(prec)[i], low + extra, high + extra,
                fmt, f64, lambda r=r, i=i: f"{name}(row {r}, tau={tau!r})[{i}]")
    return Exact(x=x, want=want.astype(x.dtype), hi=hi, lo=lo)

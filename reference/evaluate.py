"""Evaluate a reference over an array of inputs: exact values, rounded once, self-checked.

Every point is computed at two working precisions (4 and 6 times the target's significand,
plus log2(1/|x|) bits for tiny inputs)
and both results are rounded to the target format; if they differ the reference is not
accurate enough there and ``ReferenceDisagreement`` is raised, naming the input.  The
higher-precision value is also returned as a float64 double-double (hi + lo), which is what
the error metrics measure against: ~106 bits, far beyond the resolution of a ULP error.
"""

import math
from dataclasses import dataclass

import mpmath
import numpy as np

from .rounding import FORMATS, format_of, round_to_format

__all__ = ["Exact", "ReferenceDisagreement", "evaluate", "working_precisions"]


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
    so the working precision must resolve |x| itself (gelu(-0x1.bp-145) in float32)."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, -math.frexp(x)[1])


def _at(fn, x, params, prec):
    with mpmath.workprec(prec):
        return fn(x, **params)


def evaluate(fn, x: np.ndarray, params: dict | None = None, name: str | None = None) -> Exact:
    """Exact values of the reference ``fn`` at each element of ``x`` (in x's dtype)."""
    params = params or {}
    x = np.asarray(x)
    fmt = format_of(x.dtype)
    f64 = FORMATS["float64"]
    low, high = working_precisions(x.dtype)
    flat = x.ravel()
    want = np.empty(flat.shape, dtype=np.float64)
    hi = np.empty(flat.shape, dtype=np.float64)
    lo = np.empty(flat.shape, dtype=np.float64)
    for i, xi in enumerate(flat.tolist()):
        extra = _tiny_input_bits(xi)
        v_low = _at(fn, xi, params, low + extra)
        v = _at(fn, xi, params, high + extra)
        w = round_to_format(v, fmt)
        w_low = round_to_format(v_low, fmt)
        if not (w == w_low or (w != w and w_low != w_low)) or (
            w == 0.0 and np.signbit(w) != np.signbit(w_low)
        ):
            raise ReferenceDisagreement(
                f"{name or getattr(fn, 'name', fn)}({float(xi).hex()}) rounds to "
                f"{w_low!r} at {low} bits but {w!r} at {high} bits"
            )
        want[i] = w
        h = round_to_format(v, f64)
        hi[i] = h
        if isinstance(v, float) or not np.isfinite(h):
            lo[i] = 0.0
        else:
            with mpmath.workprec(high):
                lo[i] = round_to_format(v - mpmath.mpf(h), f64)
    return Exact(
        x=x,
        want=want.astype(x.dtype).reshape(x.shape),
        hi=hi.reshape(x.shape),
        lo=lo.reshape(x.shape),
    )

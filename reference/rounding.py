"""Round an mpmath value once, correctly, to a binary floating-point format.

mpmath has no subnormals, no overflow and no signed zero, and ``float(mpf)`` rounds to 53
bits before ``ldexp`` scales into the subnormal range (a double rounding).  This module does
the one rounding itself, in integer arithmetic: round-half-even to ``p`` significant bits,
with the exponent clamped at ``emin`` (gradual underflow) and overflow to ±inf beyond
``emax``.  The result is returned as a Python float, which holds every value of the formats
here exactly.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import ml_dtypes  # noqa: F401 - registers the bfloat16 dtype with NumPy
import mpmath
import numpy as np

__all__ = ["FORMATS", "FloatFormat", "format_of", "round_to_format"]


@dataclass(frozen=True)
class FloatFormat:
    """A binary format: ``p`` significand bits (with the implicit one), exponents emin..emax."""

    name: str
    p: int
    emin: int
    emax: int

    @property
    def smallest_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.p + 1)


FORMATS = {
    "float16": FloatFormat("float16", 11, -14, 15),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float64": FloatFormat("float64", 53, -1022, 1023),
}


def format_of(dtype) -> FloatFormat:
    name = np.dtype(dtype).name
    try:
        return FORMATS[name]
    except KeyError:
        raise TypeError(f"no floating-point format for dtype {name}; have {sorted(FORMATS)}") from None


def _round_fraction(value: Fraction, fmt: FloatFormat) -> float:
    """Round an exact rational: ties are decided exactly, which no finite precision can do
    (hardswish(x) = x/2 + x²/6 sits 2**-146 from a float32 tie at x = -0x1.1cp-143)."""
    if value == 0:
        return 0.0
    sign = value < 0
    num, den = abs(value.numerator), value.denominator
    e = num.bit_length() - den.bit_length()  # floor(log2 |value|) is e or e - 1
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    if e > fmt.emax:
        return -math.inf if sign else math.inf
    if e < fmt.emin - fmt.p:
        return -0.0 if sign else 0.0
    q = max(e, fmt.emin) - fmt.p + 1
    a, b = (num, den << q) if q >= 0 else (num << -q, den)
    m, r = divmod(a, b)
    if 2 * r > b or (2 * r == b and m & 1):
        m += 1
    if m == 0:
        return -0.0 if sign else 0.0
    if m.bit_length() + q - 1 > fmt.emax:
        return -math.inf if sign else math.inf
    result = math.ldexp(float(m), q)
    return -result if sign else result


def round_to_format(value, fmt: FloatFormat) -> float:
    """The value of ``fmt`` nearest to ``value``: an mpf, a Fraction, or an int or float
    taken as exact."""
    if isinstance(value, Fraction):
        return _round_fraction(value, fmt)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value == 0:
            return float(value)
        value = mpmath.mpf(value)
    if mpmath.isnan(value):
        return math.nan
    if mpmath.isinf(value):
        return math.inf if value > 0 else -math.inf
    sign, man, exp, bc = value._mpf_
    if man == 0:
        return 0.0
    e = exp + bc - 1  # floor(log2 |value|)
    if e > fmt.emax:
        return -math.inf if sign else math.inf
    if e < fmt.emin - fmt.p:  # below half the smallest subnormal
        return -0.0 if sign else 0.0
    q = max(e, fmt.emin) - fmt.p + 1  # exponent of one ULP at |value|, clamped at subnormals
    shift = q - exp
    if shift <= 0:
        m = man << -shift
    else:
        m = man >> shift
        rem = man - (m << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and m & 1):
            m += 1
    if m == 0:
        return -0.0 if sign else 0.0
    if m.bit_length() + q - 1 > fmt.emax:
        return -math.inf if sign else math.inf
    result = math.ldexp(float(m), q)  # m <= 2**p: exact
    return -result if sign else result

"""References for the gated activations: y = a·gate(b), dy/da = gate(b), dy/db = a·gate'(b).

The gate and its derivative are the elementwise references (sigmoid, gelu, silu, relu), so
the exact product a·gate(b) is formed from an exact gate: no underflow of the gate can hide a
product that is representable (a up to 2**1024 times a gate down to 2**-2100).  Products
with special values follow IEEE 754: inf·0 is NaN, a zero's sign is the product of signs.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import mpmath

from .elementwise import REFERENCES, ElementwiseReference

__all__ = ["GATED", "GatedReference"]


def _is_nan(v) -> bool:
    return (isinstance(v, float) and math.isnan(v)) or (isinstance(v, mpmath.mpf) and mpmath.isnan(v))


def _is_inf(v) -> bool:
    return (isinstance(v, float) and math.isinf(v)) or (isinstance(v, mpmath.mpf) and mpmath.isinf(v))


def _sign(v) -> int:
    """+1 / -1 for nonzero values, and for zeros: -1 only for a float -0.0."""
    if v == 0:
        return -1 if isinstance(v, float) and math.copysign(1.0, v) < 0 else 1
    return 1 if v > 0 else -1


def product(a: float, g):
    """a·g exactly (g an mpf, Fraction, int or float from an elementwise reference)."""
    if math.isnan(a) or _is_nan(g):
        return math.nan
    if math.isinf(a) or _is_inf(g):
        if a == 0 or g == 0:
            return math.nan
        return math.copysign(math.inf, _sign(a) * _sign(g))
    if a == 0 or g == 0:
        return math.copysign(0.0, _sign(a) * _sign(g))
    if isinstance(g, (Fraction, int)):
        return Fraction(a) * g
    return mpmath.mpf(a) * g


@dataclass(frozen=True)
class GatedReference:
    name: str
    gate: ElementwiseReference  # gate(b), or gate'(b) for the b-derivative
    times_a: bool  # False for dy/da = gate(b), which does not depend on a
    rational: bool = False

    def __call__(self, a: float, b: float, **params):
        g = self.gate(b, **params)
        return product(a, g) if self.times_a else g


GATES = {"glu": "sigmoid", "geglu": "gelu", "swiglu": "silu", "reglu": "relu"}

GATED = {}
for _name, _gate in GATES.items():
    _fwd, _der = REFERENCES[_gate], REFERENCES[f"d_{_gate}"]
    GATED[_name] = GatedReference(_name, _fwd, True, _fwd.rational)
    GATED[f"d_{_name}_a"] = GatedReference(f"d_{_name}_a", _fwd, False, _fwd.rational)
    GATED[f"d_{_name}_b"] = GatedReference(f"d_{_name}_b", _der, True, _der.rational)

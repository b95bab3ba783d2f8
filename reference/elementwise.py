"""mpmath references for every elementwise activation and its derivative.

Each reference is a formula in mpmath for finite, nonzero x, evaluated at whatever precision
the caller sets (``reference.evaluate`` uses several times the target's), plus its exact
values at ±0 and ±inf given as data: mpmath has no signed zero, and the limits at ±inf are
where float implementations most often go wrong (gelu(-inf) is -0, not NaN).  NaN in gives
NaN out for every function.

Formulas are cancellation-free even at high precision, because the working precision is
only a few times the target's and 1 + erf(x) at x = -30 cancels ~1300 bits:
gelu = x/2·erfc(-x/sqrt 2), gelu_tanh = x·sigmoid(2u), tanh' = sech², sigmoid' = e/(1+e)².

Parameters (slopes, alphas, SELU's constants) are taken as the float64 values the kernels
receive, i.e. the exact binary numbers; gelu_tanh's sqrt(2/pi) and 0.044715 are exact.
Derivatives at kinks follow PyTorch's autograd; each is stated where it is encoded.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import mpmath
from mpmath import mpf

__all__ = ["REFERENCES", "ElementwiseReference"]

Special = float | Fraction | str | Callable[[dict], object]

# Version of these definitions: bump when a formula or a special value changes.
VERSION = 2


@dataclass(frozen=True)
class ElementwiseReference:
    """f(x) for finite nonzero x as an mpmath formula; its values at ±0 and ±inf as data.

    ``at_zero`` is a value for both zeros, or ``"odd"`` for f(±0) = ±0.  Any special value
    may be a callable of the parameters.  Floats are exact values (0.5, not 0.1).
    """

    name: str
    fn: Callable
    at_zero: Special
    at_pos_inf: Special
    at_neg_inf: Special
    rational: bool = False  # fn is evaluated exactly, on Fractions (see rounding.py)

    def __call__(self, x: float, **params):
        if math.isnan(x):
            return math.nan
        if x == 0.0:
            if self.at_zero == "odd":
                return x
            return _resolve(self.at_zero, params)
        if math.isinf(x):
            return _resolve(self.at_pos_inf if x > 0 else self.at_neg_inf, params)
        if self.rational:
            return self.fn(Fraction(x), **{k: Fraction(v) for k, v in params.items()})
        return self.fn(mpf(x), **params)


def _resolve(special, params):
    return special(params) if callable(special) else special


def _sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _softplus(x):
    return mpmath.log1p(mpmath.exp(x))


# |gelu(x)|, |gelu'(x)| < x²·exp(-x²/2) < 2**-2900 for x < -64: below half the smallest
# subnormal of every format, so the rounded result is -0 whatever the exact digits.  Skipping
# mpmath's erfc there matters: its cost grows with |x|, to milliseconds a point at |x| ~ 1e300.
_GAUSS_TAIL = -64
_NEGLIGIBLE = mpf(2) ** -2900


def _gelu(x):
    if x < _GAUSS_TAIL:
        return -_NEGLIGIBLE
    return x * mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _d_gelu(x):
    if x < _GAUSS_TAIL:
        return -_NEGLIGIBLE
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2 + x * mpmath.npdf(x)


def _gelu_tanh_k():
    # 0.044715 as an exact decimal, rounded at the working precision of the call (a
    # module-level mpf would be rounded once, at import, to mpmath's default 53 bits)
    return mpf(44715) / 10**6


def _gelu_tanh_v(x):
    return 2 * mpmath.sqrt(2 / mpmath.pi) * (x + _gelu_tanh_k() * x**3)


def _gelu_tanh(x):
    # 0.5·x·(1 + tanh(u)) = x·sigmoid(2u)
    return x * _sigmoid(_gelu_tanh_v(x))


def _d_gelu_tanh(x):
    v = _gelu_tanh_v(x)
    dv = 2 * mpmath.sqrt(2 / mpmath.pi) * (1 + 3 * _gelu_tanh_k() * x**2)
    return _sigmoid(v) + x * _sigmoid(v) * _sigmoid(-v) * dv


def _mish(x):
    return x * mpmath.tanh(_softplus(x))


def _d_mish(x):
    sp = _softplus(x)
    return mpmath.tanh(sp) + x * mpmath.sech(sp) ** 2 * _sigmoid(x)


def _ref(name, fn, at_zero, at_pos_inf, at_neg_inf):
    return ElementwiseReference(name, fn, at_zero, at_pos_inf, at_neg_inf)


def _rational(name, fn, at_zero, at_pos_inf, at_neg_inf):
    """Piecewise-rational functions are computed exactly: no precision resolves every tie."""
    return ElementwiseReference(name, fn, at_zero, at_pos_inf, at_neg_inf, rational=True)


_HALF = Fraction(1, 2)


_INF = math.inf
_REFS = [
    # relu and relu6 are flat on x <= 0, so both zeros map to +0; torch gives 0 for relu'(0).
    _rational("relu", lambda x: x if x > 0 else 0, 0.0, _INF, 0.0),
    _rational("d_relu", lambda x: 1 if x > 0 else 0, 0.0, 1.0, 0.0),
    _rational("relu6", lambda x: min(max(x, 0), 6), 0.0, 6.0, 0.0),
    # torch's hardtanh_backward is 0 at both kinks (x <= min or x >= max).
    _rational("d_relu6", lambda x: 1 if 0 < x < 6 else 0, 0.0, 0.0, 0.0),
    _rational(
        "hardtanh",
        lambda x, min_val, max_val: min(max(x, min_val), max_val),
        "odd",
        lambda p: p["max_val"],
        lambda p: p["min_val"],
    ),
    _rational(
        "d_hardtanh",
        lambda x, min_val, max_val: 1 if min_val < x < max_val else 0,
        lambda p: 1.0 if p["min_val"] < 0 < p["max_val"] else 0.0,
        0.0,
        0.0,
    ),
    _rational(
        "leaky_relu",
        lambda x, negative_slope: x if x > 0 else negative_slope * x,
        "odd",
        _INF,
        lambda p: p["negative_slope"] * -_INF,
    ),
    # torch: negative_slope at x = 0
    _rational(
        "d_leaky_relu",
        lambda x, negative_slope: 1 if x > 0 else negative_slope,
        lambda p: p["negative_slope"],
        1.0,
        lambda p: p["negative_slope"],
    ),
    _ref(
        "elu",
        lambda x, alpha: x if x > 0 else alpha * mpmath.expm1(x),
        "odd",
        _INF,
        lambda p: -p["alpha"],
    ),
    # torch: the x <= 0 branch at x = 0, alpha·exp(0) = alpha
    _ref(
        "d_elu",
        lambda x, alpha: mpf(1) if x > 0 else alpha * mpmath.exp(x),
        lambda p: p["alpha"],
        1.0,
        0.0,
    ),
    _ref(
        "celu",
        lambda x, alpha: x if x > 0 else alpha * mpmath.expm1(x / alpha),
        "odd",
        _INF,
        lambda p: -p["alpha"],
    ),
    _ref("d_celu", lambda x, alpha: mpf(1) if x > 0 else mpmath.exp(x / alpha), 1.0, 1.0, 0.0),
    _ref(
        "selu",
        # scale·(alpha·…): scale * alpha would be a float64 product, rounded before mpmath sees it
        lambda x, alpha, scale: scale * x if x > 0 else scale * (alpha * mpmath.expm1(x)),
        "odd",
        _INF,
        lambda p: -mpf(p["scale"]) * mpf(p["alpha"]),
    ),
    # torch: the x <= 0 branch at x = 0, scale·alpha
    _ref(
        "d_selu",
        lambda x, alpha, scale: mpf(scale) if x > 0 else scale * (alpha * mpmath.exp(x)),
        lambda p: mpf(p["scale"]) * mpf(p["alpha"]),
        lambda p: p["scale"],
        0.0,
    ),
    _ref("sigmoid", _sigmoid, 0.5, 1.0, 0.0),
    _ref("d_sigmoid", lambda x: _sigmoid(x) * _sigmoid(-x), 0.25, 0.0, 0.0),
    _ref("log_sigmoid", lambda x: -_softplus(-x), lambda p: -mpmath.log(2), -0.0, -_INF),
    _ref("d_log_sigmoid", lambda x: _sigmoid(-x), 0.5, 0.0, 1.0),
    _ref("tanh", lambda x: mpmath.tanh(x), "odd", 1.0, -1.0),
    _ref("d_tanh", lambda x: mpmath.sech(x) ** 2, 1.0, 0.0, 0.0),
    _rational("softsign", lambda x: x / (1 + abs(x)), "odd", 1.0, -1.0),
    _rational("d_softsign", lambda x: 1 / (1 + abs(x)) ** 2, 1.0, 0.0, 0.0),
    _ref(
        "softplus",
        lambda x, beta: _softplus(beta * x) / beta,
        lambda p: mpmath.log(2) / p["beta"],
        _INF,
        0.0,
    ),
    _ref("d_softplus", lambda x, beta: _sigmoid(beta * x), 0.5, 1.0, 0.0),
    _rational(
        "hardsigmoid", lambda x: 0 if x <= -3 else (1 if x >= 3 else x / 6 + _HALF), 0.5, 1.0, 0.0
    ),
    # torch: 0 at x = ±3
    _rational("d_hardsigmoid", lambda x: Fraction(1, 6) if -3 < x < 3 else 0,
              Fraction(1, 6), 0.0, 0.0),
    _rational("hardswish", lambda x: 0 if x <= -3 else (x if x >= 3 else x * (x + 3) / 6),
              "odd", _INF, 0.0),
    # torch: 0 below -3, x/3 + 1/2 on [-3, 3] (so -1/2 at -3 and 3/2 at 3), 1 above
    _rational("d_hardswish", lambda x: 0 if x < -3 else (x / 3 + _HALF if x <= 3 else 1),
              0.5, 1.0, 0.0),
    _ref("gelu", _gelu, "odd", _INF, -0.0),
    _ref("d_gelu", _d_gelu, 0.5, 1.0, -0.0),
    _ref("gelu_tanh", _gelu_tanh, "odd", _INF, -0.0),
    _ref("d_gelu_tanh", _d_gelu_tanh, 0.5, 1.0, -0.0),
    _ref("silu", lambda x: x * _sigmoid(x), "odd", _INF, -0.0),
    _ref("d_silu", lambda x: _sigmoid(x) * (1 + x * _sigmoid(-x)), 0.5, 1.0, -0.0),
    _ref("mish", _mish, "odd", _INF, -0.0),
    # mish'(0) = tanh(log 2) = 3/5
    _ref("d_mish", _d_mish, lambda p: mpf(3) / 5, 1.0, -0.0),
]

REFERENCES = {r.name: r for r in _REFS}

"""Float32-arithmetic SIMD kernels of the expm1 and log1p(exp) families: elu, celu, selu,
softplus and log_sigmoid, forward and derivative, for float32 input only.

They use ``_simd32``'s error-free exp (``_exp_dd``: exp(a + al) as a pair of floats, r's rounding
error carried) and keep each result within the float32 budgets (forward <= 1 ULP, derivative
<= 2) without float64 arithmetic, at 8 lanes a 256-bit vector where ``_simd`` has 4:

- expm1(a), a <= 0: exp(a) = eh + el, then eh - 1 by Fast2Sum (|eh| <= 1), so
  expm1 = (eh - 1) + (err + el) with one visible rounding; near 0 the pair is 1 + r and
  its low part r, so no cancellation is left.  A parameter alpha (and selu's scale·alpha) is a
  float32 pair ah + al taken from its float64 value, so alpha·expm1 rounds once too.
- log1p(e), e = exp(-|x|) <= 1: 2·atanh(s), s = e/(2 + e) = sh + sl (vdivps's reciprocal
  corrected by the fused residual), atanh(s)/s - 1 = w/3 + w²/5 + ... + w⁸/17, w = s² <= 1/9
  (the series' tail below 2**-29 of the sum); softplus = max(x, 0) + that and log_sigmoid =
  min(x, 0) - that with the outer sum a two-sum: both terms have the same sign, so nothing
  cancels.  Where exp's pair is scaled (|x| > 40, e < 2**-57) log1p(e) = e.
- the derivatives are exp (elu, celu, selu) or ``_simd32``'s sigmoid (softplus,
  log_sigmoid).

Parameters: elu's |alpha| <= 2**64, alpha > 0 for celu (x/alpha as a pair), selu's |scale| and
|scale·alpha| <= 2**64; softplus at beta = 1.  Other values (larger ones, which exp's scaled
pair could overflow, celu's alpha <= 0, softplus's beta != 1) are computed by the ``simd``
variant's float64 loop: the same budgets, at its speed (``constants`` returns None for them).
Special values are exact.  The audit measures their errors against mpmath like every kernel's
(the exhaustive sweep's figures are in the README).
"""

import numba
import numpy as np

from . import _simd
from ._simd import PARALLEL_MIN, _two_sum
from ._simd32 import A_MIN, ONE, SUB_A, TWO, ZERO, F, _exp_dd, _fma, _horner, _inline, _loops, _sigmoid

__all__ = ["KERNELS", "constants", "run"]

INF = F(np.inf)
HALF = F(0.5)
TINY = F(2.0**-20)  # |x| below: expm1(x) = x + x²/2 to 2**-42
TWO_M60, TWO_64, TWO_M64 = F(2.0**-60), F(2.0**64), F(2.0**-64)
SOFTPLUS_BIG = F(40.0)
EXPM1_MIN = F(-20.0)  # expm1(x) rounds to -1 below -17.33; the clamp keeps exp's s2 at 1
# atanh(s)/s = 1 + w/3 + w²/5 + ..., w = s²: the Taylor coefficients 1/17 .. 1/3 (highest
# first), each within 2**-25 of its value, which the factor w <= 1/9 shrinks below sight
ATANH_SERIES = tuple(F(1 / (2 * k + 1)) for k in range(8, 0, -1))


@_inline
def _expm1_pair(a):
    """expm1(a) = mh + ml for a in [EXPM1_MIN, 0]: exp's pair minus 1, the subtraction exact."""
    eh, el, _ = _exp_dd(a, ZERO)  # s2 = 1 above SUB_A
    mh = eh - ONE
    return mh, (eh - (mh + ONE)) + el


@_inline
def _clamp(x, lo):
    """x clamped to [lo, 0]; NaN passes (the comparisons are false)."""
    a = lo if x < lo else x
    return ZERO if a > ZERO else a


@_inline
def _scaled(x):
    """(t, s) = (x·2**64, 2**-64) for |x| < 2**-60, else (x, 1): the products of t with a
    pair's low part stay normal, and the result rounds into the subnormals once, last."""
    small = abs(x) < TWO_M60
    return (x * TWO_64 if small else x), (TWO_M64 if small else ONE)


@_inline
def _times_x(x, ch, cl):
    """(ch + cl)·x, one visible rounding down to the subnormals."""
    t, s = _scaled(x)
    return _fma(ch, t, cl * t) * s


@_inline
def _times_expm1(x, ch, cl):
    """(ch + cl)·expm1(x) for x <= 0, one visible rounding.  Below TINY exp's pair rounds to
    1 and carries expm1 in its low part alone, rounded: there x + x²/2 instead."""
    mh, ml = _expm1_pair(_clamp(x, EXPM1_MIN))
    y = _fma(ch, mh, _fma(ch, ml, cl * (mh + ml)))
    t, s = _scaled(x)
    small = _fma(ch, t, _fma(ch, t * (x * HALF), cl * t)) * s
    return small if abs(x) < TINY else y


@_inline
def _times_exp(a, al, ch, cl):
    """(ch + cl)·exp(a + al) for a <= 0, rounded once into the subnormals."""
    eh, el, s2 = _exp_dd(_clamp(a, A_MIN), al)
    return _fma(ch, eh, _fma(ch, el, cl * eh)) * s2


@_inline
def _elu(x, ah, al, c2, c3):
    y = x if x > ZERO else _times_expm1(x, ah, al)
    return ah * x if x == ZERO else y  # alpha·expm1(±0) = alpha·(±0); NaN: the product is NaN


@_inline
def _d_elu(x, ah, al, c2, c3):
    y = ONE if x > ZERO else _times_exp(x, ZERO, ah, al)  # torch: alpha at 0
    return x if x != x else y


@_inline
def _quotient(x, ih, il, lo):
    """x·(ih + il) as qh + ql, ql zero where qh is below the clamp ``lo`` (so -inf gives no
    NaN)."""
    qh = x * ih
    ql = _fma(x, ih, -qh) + x * il
    return qh, (ZERO if qh < lo else ql)


@_inline
def _celu(x, ah, al, ih, il):
    # alpha·expm1(x/alpha), x/alpha = qh + ql carried into exp's argument
    qh, ql = _quotient(x, ih, il, EXPM1_MIN)
    eh, el, _ = _exp_dd(_clamp(qh, EXPM1_MIN), ql)
    mh = eh - ONE
    ml = (eh - (mh + ONE)) + el
    neg = _fma(ah, mh, _fma(ah, ml, al * (mh + ml)))
    neg = _fma(x, qh * HALF, x) if abs(qh) < TINY else neg  # alpha·(q + q²/2) = x + x·q/2
    y = x if x > ZERO else neg
    return x if x == ZERO else y  # alpha > 0: celu(±0) = ±0


@_inline
def _d_celu(x, ah, al, ih, il):
    # exp(q), q = min(x, 0)/alpha as a pair, clamped before the exp: x > 0 enters it as 0,
    # inside _exp_dd's domain [A_MIN, 0]; clamping through _times_exp, or passing x itself,
    # makes the loop several times slower on x > 0
    qh, ql = _quotient(ZERO if x > ZERO else x, ih, il, A_MIN)
    eh, el, s2 = _exp_dd(A_MIN if qh < A_MIN else qh, ql)
    y = ONE if x > ZERO else (eh + el) * s2  # 1 at 0, as torch
    return x if x != x else y


@_inline
def _selu(x, sh, sl, ch, cl):
    # scale·x above 0, (scale·alpha)·expm1(x) below, each constant a pair
    pos = _times_x(x, sh, sl)
    y = (x if x == INF else pos) if x > ZERO else _times_expm1(x, ch, cl)  # inf·sl may be -inf
    return ch * x if x == ZERO else y


@_inline
def _d_selu(x, sh, sl, ch, cl):
    y = sh if x > ZERO else _times_exp(x, ZERO, ch, cl)  # sh = scale rounded
    return x if x != x else y


@_inline
def _log1p_exp(x):
    """(lh, ll, tiny, far): log1p(exp(-|x|)) = lh + ll for |x| <= 40; beyond (far) it is
    exp(-|x|) = tiny, rounded once into the subnormals."""
    a = -abs(x)
    eh, el, s2 = _exp_dd(A_MIN if a < A_MIN else a, ZERO)
    tiny = (eh + el) * s2
    far = a < SUB_A
    eh = ZERO if far else eh  # the near path's squares would underflow in the far lanes
    el = ZERO if far else el
    dh = TWO + eh  # e <= 1: Fast2Sum
    dl = (eh - (dh - TWO)) + el
    y0 = ONE / dh
    sh = eh * y0
    sl = y0 * ((_fma(-sh, dh, eh) + el) - sh * dl)  # the residual e - sh·d, to first order
    w = sh * sh
    t = w * _horner(ATANH_SERIES, w)
    return TWO * sh, TWO * _fma(sh, t, sl), tiny, far


@_inline
def _softplus(x, c0, c1, c2, c3):
    # softplus(x) rounds to x beyond 16.6: clamped there, those lanes form no underflowing tiny
    lh, ll, tiny, far = _log1p_exp(SOFTPLUS_BIG if x > SOFTPLUS_BIG else x)
    zh, zl = _two_sum(x, lh)
    y = zh + (zl + ll) if x > ZERO else lh + ll
    y = (x if x > ZERO else tiny) if (far or x > SOFTPLUS_BIG) else y
    return x if x != x else y


@_inline
def _log_sigmoid(x, c0, c1, c2, c3):
    lh, ll, tiny, far = _log1p_exp(x)
    zh, zl = _two_sum(x, -lh)
    y = -(lh + ll) if x >= ZERO else zh + (zl - ll)
    y = (-tiny if x >= ZERO else x) if far else y
    return x if x != x else y


@_inline
def _d_softplus(x, c0, c1, c2, c3):
    return _sigmoid(x)


@_inline
def _d_log_sigmoid(x, c0, c1, c2, c3):
    return _sigmoid(-x)


_SCALARS = {
    "elu": _elu, "d_elu": _d_elu,
    "celu": _celu, "d_celu": _d_celu,
    "selu": _selu, "d_selu": _d_selu,
    "softplus": _softplus, "d_softplus": _d_softplus,
    "log_sigmoid": _log_sigmoid, "d_log_sigmoid": _d_log_sigmoid,
}
KERNELS = {name: _loops(name, scalar, constants=True) for name, scalar in _SCALARS.items()}


def _pair(value: float) -> tuple:
    hi = np.float32(value)
    return hi, np.float32(value - float(hi))


# elu' and selu' multiply the parameter by exp's pair, which is scaled up to 2**33 below
# SUB_A: a parameter above 2**64 could overflow there, so it takes the simd loop
_PARAM_MAX = 2.0**64


def constants(name: str, params: dict):
    """The four float32 constants ``name``'s loop takes for these parameters (floats, the
    kernel's defaults filled in), or None where the float32 path does not cover them."""
    base = name.removeprefix("d_")
    zero = (np.float32(0.0), np.float32(0.0))
    if base == "elu":
        return (*_pair(params["alpha"]), *zero) if abs(params["alpha"]) <= _PARAM_MAX else None
    if base == "celu":
        alpha = params["alpha"]
        return (*_pair(alpha), *_pair(1.0 / alpha)) if 0 < alpha < np.inf else None
    if base == "selu":
        scale, alpha = params["scale"], params["alpha"]
        ok = abs(scale) <= _PARAM_MAX and abs(scale * alpha) <= _PARAM_MAX
        return (*_pair(scale), *_pair(scale * alpha)) if ok else None
    if base == "softplus":
        return zero * 2 if params["beta"] == 1.0 else None
    return zero * 2


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``out[:] = name(x; params)`` for 1-D contiguous float32 ``x`` (``inputs`` = ``(x,)``)
    and ``out``; parameters the float32 path does not cover go to the ``simd`` variant's
    float64 loop."""
    (x,) = inputs
    consts = constants(name, params)
    if consts is None:
        _simd.run(name, inputs, out, params)
        return
    KERNELS[name][x.size >= PARALLEL_MIN and numba.get_num_threads() > 1](x, out, *consts)

"""The accurate elementwise kernels: scalar float64 definitions and their NumPy ufuncs.

Every kernel is a ufunc with a float32 and a float64 loop.  Both evaluate the scalar float64
definition below; the float32 loop widens its input and rounds the result once to float32,
so float32 results carry a single rounding from a value accurate to a few float64 ULP.
The float64 definitions are therefore written to be accurate *in float64*:

- no cancellation: 1 + erf and 1 + tanh are rewritten through erfc and the logistic
  function, tanh' is 4e/(1+e)² with e = exp(-2|x|), never 1 - tanh²;
- no premature overflow or underflow: the logistic function picks exp(x) or exp(-x) by sign,
  and products x·exp(x) that land in the subnormal range are formed as (x·h)·h with
  h = exp(x/2), or scaled by 2**64 and scaled back in the last operation, so the only
  rounding into the subnormal range is the last one;
- ill-conditioned tails (gelu ~ exp(-x²/2) has condition number ~x²) carry the argument of
  exp/erfc as a double-double (Dekker/Knuth error-free products and sums) and correct the
  result to first order.

Conventions at non-differentiable points follow PyTorch's autograd (listed in the catalog).
NaN in gives NaN out everywhere, derivatives included.

Each kernel is a ``_ufunc.Ufunc`` (float32 in, float32 out, computed in float64 and rounded
once); its loop and the helpers here are cached on disk by ``_cache``, keyed by every kernel
source, so a change to any helper recompiles what uses it.
"""

import math

from numba import float64, njit

from ._cache import cached
from ._dd64 import (
    div_dd,
    exp_dd,
    expm1_dd,
    fast_two_sum,
    finish,
    log1p_dd,
    mul_dd,
    scale,
    sigmoid_dd,
    two_prod,
    two_sum,
)
from ._erfcx64 import INV_SQRT2, normal_tail
from ._ufunc import Ufunc, ufunc

# --- every elementwise activation, once -----------------------------------------------
# Its parameters with PyTorch's defaults (the kernels' wrappers and the catalog read them from
# here) and the variants it has beyond ``accurate`` (their loops live in _simd*.py).  A new
# elementwise activation is its scalar definitions and ufuncs below and its line here.
# SELU's constants as PyTorch writes them (float64 literals of the paper's values).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
PARAMS = {
    "hardtanh": {"min_val": -1.0, "max_val": 1.0},
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
    "celu": {"alpha": 1.0},
    "selu": {"alpha": SELU_ALPHA, "scale": SELU_SCALE},
    "softplus": {"beta": 1.0},
}
_SIMD, _F32, _FAST = "simd", "simd_f32", "simd_f32_fast"
ELEMENTWISE = {
    "relu": (_SIMD,),
    "relu6": (_SIMD,),
    "hardtanh": (_SIMD,),
    "leaky_relu": (_SIMD,),
    "elu": (_SIMD, _F32),  # float32 arithmetic: kernels/_simd32_expm1.py
    "celu": (_SIMD, _F32),
    "selu": (_SIMD, _F32),
    "sigmoid": (_SIMD, _F32, _FAST),
    "log_sigmoid": (_SIMD, _F32),
    "tanh": (_SIMD, _F32, _FAST),
    "softsign": (_SIMD, _F32),
    "softplus": (_SIMD, _F32),
    "hardsigmoid": (_SIMD,),
    "hardswish": (_SIMD,),
    "gelu": (_SIMD, _F32),
    "gelu_tanh": (_SIMD, _F32),  # float32 arithmetic: kernels/_simd32_gelu_tanh.py
    "silu": (_SIMD, _F32, _FAST),
    "mish": (_SIMD,),
}


def _jit(func):
    return cached(njit(error_model="numpy", fastmath=False)(func))  # stated: see _dd64._jit

# --- double-double helpers ---------------------------------------------------------------
# Constants as hi + lo pairs: hi = RN(c), lo = RN(c - hi), from mpmath at 300 bits;
# tests/test_kernels.py recomputes them.
SQRT_2_OVER_PI = (float.fromhex("0x1.9884533d43651p-1"), float.fromhex("-0x1.cbc0d30ebfd15p-55"))
GELU_TANH_K = (float.fromhex("0x1.6e4e26d4801f7p-5"), float.fromhex("0x1.441355475a31ap-59"))  # 0.044715
INV_SQRT_2PI = (float.fromhex("0x1.9884533d43651p-2"), float.fromhex("-0x1.cbc0d30ebfd15p-56"))
TWO_OVER_SQRTPI = (float.fromhex("0x1.20dd750429b6dp+0"), float.fromhex("0x1.1ae3a914fed80p-56"))

# --- root-centred Taylor patches --------------------------------------------------------
# f'(x) = t·(c1 + c2·t + ...), t = (x - r_hi) - r_lo, for |x - r| <= radius around the root r of
# gelu', gelu_tanh', silu' and mish', where the plain formulas cancel (hundreds of ULP in
# float64).  Derived by reference/taylor.py (mpmath, 600 bits); tests/test_kernels.py
# re-derives them and compares every bit.
_D_GELU_PATCH = (
    float.fromhex("-0x1.80ead197f00b4p-1"),  # r_hi
    float.fromhex("0x1.13e74c58cada8p-56"),  # r_lo
    0.4,  # radius
    (
        float.fromhex("0x1.b9d98fa5a3215p-2"),
        float.fromhex("0x1.8d9a941de3ac5p-2"),
        float.fromhex("-0x1.2a2ef9bb865aep-6"),
        float.fromhex("-0x1.d2fa4c17c7e84p-4"),
        float.fromhex("-0x1.e4088244f901dp-7"),
        float.fromhex("0x1.3e346def42057p-6"),
        float.fromhex("0x1.297b9d6ffaacdp-8"),
        float.fromhex("-0x1.258a6d85633afp-9"),
        float.fromhex("-0x1.8680f74e6b6bap-11"),
        float.fromhex("0x1.86c863b66083cp-13"),
        float.fromhex("0x1.69610924deba8p-14"),
        float.fromhex("-0x1.784acad4b941ep-17"),
        float.fromhex("-0x1.03fec69bdd554p-17"),
        float.fromhex("0x1.d0c38b7a117ccp-22"),
        float.fromhex("0x1.322a347f1968bp-21"),
        float.fromhex("-0x1.b9057b3d93486p-30"),
        float.fromhex("-0x1.3099122c48e32p-25"),
        float.fromhex("-0x1.7ffd0f708645ap-30"),
        float.fromhex("0x1.0592d74158a0ap-29"),
        float.fromhex("0x1.3effe0efcb25fp-33"),
        float.fromhex("-0x1.89a0774eb6048p-34"),
    ),
)
_D_GELU_TANH_PATCH = (
    float.fromhex("-0x1.81429f9e97e4dp-1"),  # r_hi
    float.fromhex("0x1.4f523ed77dbdcp-55"),  # r_lo
    0.45,  # radius
    (
        float.fromhex("0x1.b8bacd2c96b91p-2"),
        float.fromhex("0x1.8cd1a2b2fff33p-2"),
        float.fromhex("-0x1.029615edb077ap-6"),
        float.fromhex("-0x1.d2b77346470abp-4"),
        float.fromhex("-0x1.104a83edc0ddcp-6"),
        float.fromhex("0x1.427996dc249cep-6"),
        float.fromhex("0x1.58c9ed713486cp-8"),
        float.fromhex("-0x1.3d8d64170bb72p-9"),
        float.fromhex("-0x1.e63f294331885p-11"),
        float.fromhex("0x1.14bf895a69517p-12"),
        float.fromhex("0x1.04936f0ef73dbp-13"),
        float.fromhex("-0x1.253bce9ecae48p-15"),
        float.fromhex("-0x1.0b9c949575db9p-16"),
        float.fromhex("0x1.8d30f995eee7cp-18"),
        float.fromhex("0x1.46a0328d00b7ap-19"),
        float.fromhex("-0x1.09b6fd46ae70ap-20"),
        float.fromhex("-0x1.cecf33fcf1fa4p-22"),
        float.fromhex("0x1.3007fe1df4050p-23"),
        float.fromhex("0x1.43036bb90f7d1p-24"),
        float.fromhex("-0x1.23aefd74d1787p-26"),
        float.fromhex("-0x1.9b012e1b21a3bp-27"),
        float.fromhex("0x1.e4d300ae6240fp-30"),
        float.fromhex("0x1.dfa88db1f1611p-30"),
        float.fromhex("-0x1.77c584fde0ea6p-33"),
        float.fromhex("-0x1.0b9b7346e9899p-32"),
    ),
)
_D_SILU_PATCH = (
    float.fromhex("-0x1.474973c84120bp+0"),  # r_hi
    float.fromhex("-0x1.f8d74bc9ac154p-54"),  # r_lo
    0.35,  # radius
    (
        float.fromhex("0x1.be1410460527fp-3"),
        float.fromhex("0x1.2c563458cc0adp-3"),
        float.fromhex("0x1.353eb573ca457p-6"),
        float.fromhex("-0x1.f2d0e32bc2994p-7"),
        float.fromhex("-0x1.b0f82c498fd2fp-8"),
        float.fromhex("0x1.098e92b8f076dp-13"),
        float.fromhex("0x1.a2a7caf0ee747p-11"),
        float.fromhex("0x1.8574d136d4cb4p-13"),
        float.fromhex("-0x1.57238dca12615p-15"),
        float.fromhex("-0x1.f2d8976600f6fp-16"),
        float.fromhex("-0x1.8af40fd30a2bcp-19"),
        float.fromhex("0x1.3ae0f751df483p-19"),
        float.fromhex("0x1.cdb14ef8f6491p-21"),
        float.fromhex("-0x1.061994e63271cp-25"),
        float.fromhex("-0x1.8dffda8a766aap-24"),
        float.fromhex("-0x1.4450a9df8b6aep-26"),
        float.fromhex("0x1.3d70fd01a98fbp-28"),
        float.fromhex("0x1.9103906c85149p-29"),
        float.fromhex("0x1.040416db972a2p-32"),
        float.fromhex("-0x1.ef14a65c75c02p-33"),
    ),
)
_D_MISH_PATCH = (
    float.fromhex("-0x1.31432c0d12d84p+0"),  # r_hi
    float.fromhex("-0x1.bf319154da210p-55"),  # r_lo
    0.6,  # radius
    (
        float.fromhex("0x1.115acb42500bbp-2"),
        float.fromhex("0x1.a34a251d8ad7bp-3"),
        float.fromhex("0x1.574f121a868dbp-5"),
        float.fromhex("-0x1.4c222fe64d4fbp-6"),
        float.fromhex("-0x1.03369d4ac90fap-6"),
        float.fromhex("-0x1.b87ddfb51b745p-9"),
        float.fromhex("0x1.1e5e184a0fe00p-10"),
        float.fromhex("0x1.03799182b217fp-10"),
        float.fromhex("0x1.0a7954e868670p-12"),
        float.fromhex("-0x1.5fffa067220abp-15"),
        float.fromhex("-0x1.d453aef9813d0p-15"),
        float.fromhex("-0x1.223bcd6871175p-16"),
        float.fromhex("0x1.fa20aae0364c5p-21"),
        float.fromhex("0x1.866a4abf08ed3p-19"),
        float.fromhex("0x1.1fad0feef3614p-20"),
        float.fromhex("0x1.cdc8ee0f3f16cp-26"),
        float.fromhex("-0x1.2f2a6f67e254ep-23"),
        float.fromhex("-0x1.09308389bebbbp-24"),
        float.fromhex("-0x1.77389c6a0a981p-28"),
        float.fromhex("0x1.b716f3bd4fe09p-28"),
        float.fromhex("0x1.cdd99b87a3bc1p-29"),
        float.fromhex("0x1.08da5810e3afbp-31"),
        float.fromhex("-0x1.2623d307ee142p-32"),
        float.fromhex("-0x1.7f8ee955413c0p-33"),
        float.fromhex("-0x1.2a3aaa1a31e2cp-35"),
        float.fromhex("0x1.636c45500acfep-37"),
        float.fromhex("0x1.3172f15da1172p-37"),
        float.fromhex("0x1.2afb1220b8b14p-39"),
    ),
)


@_jit
def _near_root(x, patch):
    return abs(x - patch[0]) <= patch[2]


@_jit
def _root_taylor_dd(x, patch):
    """f'(x) on a root-centred Taylor patch as a pair; see the constants above.  t = x - r and the last
    two steps t·(c1 + t·q) are pairs: in plain float64 they cost up to 2 ULP, more than the
    series' truncation."""
    th, tl = two_sum(x, -patch[0])
    th, tl = fast_two_sum(th, tl - patch[1])
    c = patch[3]
    q = c[len(c) - 1]
    for k in range(len(c) - 2, 0, -1):
        q = q * th + c[k]
    ph, pl = two_prod(th, q)
    sh, sl = two_sum(c[0], ph)
    return mul_dd(th, tl, sh, sl + (pl + tl * q))


@_jit
def _root_taylor(x, patch):
    rh, rl = _root_taylor_dd(x, patch)
    return finish(rh, rl, 0)


# --- scalar definitions ------------------------------------------------------------------
_INF = math.inf

# Below this, exp(x) and everything of size x·exp(x) is subnormal or zero in float64
# (log(2**-1022) = -708.4); products are then formed as (x·h)·h, h = exp(x/2).
_SUBNORMAL_EXP_EDGE = -700.0


# --- piecewise-linear -------------------------------------------------------------------


@_jit
def _s_relu(x):
    if x > 0.0:
        return x
    if x != x:
        return x
    return 0.0  # _s_relu(-0) = +0: the function is identically zero on x <= 0


@_jit
def _s_d_relu(x):
    if x != x:
        return x
    return 1.0 if x > 0.0 else 0.0  # torch: 0 at x = 0


@_jit
def _s_relu6(x):
    if x != x:
        return x
    if x <= 0.0:
        return 0.0
    if x >= 6.0:
        return 6.0
    return x


@_jit
def _s_d_relu6(x):
    if x != x:
        return x
    return 1.0 if 0.0 < x < 6.0 else 0.0  # torch hardtanh_backward: 0 at both kinks


@_jit
def _s_hardtanh(x, min_val, max_val):
    if x < min_val:
        return min_val
    if x > max_val:
        return max_val
    return x  # keeps NaN and the sign of zero


@_jit
def _s_d_hardtanh(x, min_val, max_val):
    if x != x:
        return x
    return 1.0 if min_val < x < max_val else 0.0


@_jit
def _s_leaky_relu(x, negative_slope):
    if x > 0.0:
        return x
    return negative_slope * x


@_jit
def _s_d_leaky_relu(x, negative_slope):
    if x != x:
        return x
    return 1.0 if x > 0.0 else negative_slope  # torch: slope at x = 0


@_jit
def _s_hardsigmoid(x):
    if x != x:
        return x
    if x <= -3.0:
        return 0.0
    if x >= 3.0:
        return 1.0
    return (x + 3.0) / 6.0  # x + 3 is exact near -3 (Sterbenz), so one rounding there


@_jit
def _s_d_hardsigmoid(x):
    if x != x:
        return x
    return 1.0 / 6.0 if -3.0 < x < 3.0 else 0.0


@_jit
def _s_hardswish(x):
    if x != x:
        return x
    if x <= -3.0:
        return 0.0
    if x >= 3.0:
        return x
    if x == 0.0:
        return x  # keeps -0
    sh, sl = two_sum(x, 3.0)  # x·(x + 3)/6 as pairs: two roundings cost 1.6 ULP
    ph, pl = mul_dd(x, 0.0, sh, sl)
    qh, ql = div_dd(ph, pl, 6.0, 0.0)
    return finish(qh, ql, 0)


@_jit
def _s_d_hardswish(x):
    if x != x:
        return x
    if x < -3.0:
        return 0.0
    if x <= 3.0:
        # torch's x/3 + 1/2, written so that the root at -1.5 does not cancel: 2x is exact
        # and 2x + 3 is exact near -3 (Sterbenz).
        return (2.0 * x + 3.0) / 6.0
    return 1.0


# --- exponential family -----------------------------------------------------------------
# Every intermediate is a double-double (``_dd64``): the result's one visible rounding is the
# last, so forward results are within 0.5 ULP plus a few hundredths and derivatives within 1.
# Results that go subnormal are computed scaled by 2**-k and scaled back last (``finish``).


_TINY_X = 2.0**-600


@_jit
def _times_x(x, h, lo, k):
    """RN(x·(h + lo)·2**k), x scaled up first where x·(h + lo) may be subnormal (its error
    term would be below the subnormals and lost)."""
    if abs(x) < _TINY_X:
        ph, pl = mul_dd(math.ldexp(x, 600), 0.0, h, lo)
        return finish(ph, pl, k - 600)
    ph, pl = mul_dd(x, 0.0, h, lo)
    return finish(ph, pl, k)


@_jit
def _times_half_b_up(a, b):
    """RN(a·b/2 + c·a·b²), c > 0, for finite nonzero a and 0 < |b| < 2**-600 (geglu, swiglu
    there), where gelu(b) and silu(b) would be subnormal or zero on their own while a·b/2 need
    not be.  a·b is exact as a pair; where it is one float, a·b/2 may be a tie on the subnormal
    grid, which c·a·b² (far below any float, of a's sign) breaks: a stand-in of that sign,
    2**-60, below half an ULP of ph in [1/4, 1), tells ``finish`` so (it decides a tie by a low
    part too small to move it, and no other rounding)."""
    am, ae = math.frexp(a)
    bm, be = math.frexp(b)
    ph, pl = two_prod(am, bm)
    if pl == 0.0:
        pl = math.copysign(2.0**-60, a)
    return finish(ph, pl, ae + be - 1)


@_jit
def _half_x_up(x):
    """RN(x/2 + c·x²), c > 0, for 0 < |x| < 2**-600 (silu, gelu, gelu_tanh there): a·b/2 +
    c·a·b² at a = 1."""
    return _times_half_b_up(1.0, x)


@_jit
def _s_elu(x, alpha):
    if x > 0.0:
        return x
    if x != x:
        return x
    if x == 0.0:
        return alpha * x  # elu(-0) = -0 (alpha > 0)
    mh, ml = expm1_dd(x)
    return _times_x(alpha, mh, ml, 0)


@_jit
def _s_d_elu(x, alpha):
    if x > 0.0:
        return 1.0
    if x != x:
        return x
    h, lo, k = exp_dd(x, 0.0)
    ph, pl = mul_dd(alpha, 0.0, h, lo)
    return finish(ph, pl, k)  # torch: alpha at x = 0 (the x <= 0 branch)


@_jit
def _over_alpha(x, alpha):
    """x/alpha as a pair: the quotient's residual is exact."""
    return div_dd(x, 0.0, alpha, 0.0)


@_jit
def _s_celu(x, alpha):
    if x > 0.0:
        return x
    if x != x or x == 0.0:
        return x
    if x == -_INF:
        return alpha * math.expm1(x / alpha)  # -alpha, or -inf for a negative alpha
    if abs(x) < _TINY_X:
        return x  # x + x²/(2·alpha): the square is below 2**-600 of x
    qh, ql = _over_alpha(x, alpha)
    if qh > 0.0:  # alpha < 0: expm1 of a positive argument, libm's (celu is not defined there)
        return alpha * math.expm1(qh)
    mh, ml = expm1_dd(qh)
    ml += ql * (1.0 + mh)  # expm1(q + ql) = expm1(q) + ql·exp(q)
    ph, pl = mul_dd(alpha, 0.0, mh, ml)
    return finish(ph, pl, 0)


@_jit
def _s_d_celu(x, alpha):
    if x > 0.0:
        return 1.0
    if x != x:
        return x
    if x == -_INF:
        return math.exp(x / alpha)  # 0, or inf for a negative alpha
    qh, ql = _over_alpha(x, alpha)
    h, lo, k = exp_dd(qh, ql)
    return finish(h, lo, k)


@_jit
def _s_selu(x, alpha, scale):
    if x > 0.0:
        return scale * x
    if x != x or x == 0.0:
        return scale * x
    mh, ml = expm1_dd(x)
    sh, sl = two_prod(scale, alpha)  # scale·alpha exactly: its rounding alone cost 0.5 ULP
    if abs(mh) < _TINY_X:  # expm1(x) = x to 2**-600: scaled, so that the product rounds once
        ph, pl = mul_dd(sh, sl, math.ldexp(mh, 600), 0.0)
        return finish(ph, pl, -600)
    ph, pl = mul_dd(sh, sl, mh, ml)
    return finish(ph, pl, 0)


@_jit
def _s_d_selu(x, alpha, scale):
    if x > 0.0:
        return scale
    if x != x:
        return x
    h, lo, k = exp_dd(x, 0.0)
    sh, sl = two_prod(scale, alpha)
    ph, pl = mul_dd(sh, sl, h, lo)
    return finish(ph, pl, k)


@_jit
def _s_sigmoid(x):
    if x != x:
        return x
    h, lo, k, _, _ = sigmoid_dd(x, 0.0)
    return finish(h, lo, k)


@_jit
def _d_logistic(x, xl):
    """sigmoid'(x + xl) = e/(1 + e)², e = exp(-|x + xl|), as (h, l, k): no 1 - sigmoid."""
    if x >= 0.0:
        eh, el, k = exp_dd(-x, -xl)
    else:
        eh, el, k = exp_dd(x, xl)
    dh, dl = two_sum(1.0, scale(eh, k))
    dl += scale(el, k)
    d2h, d2l = mul_dd(dh, dl, dh, dl)
    qh, ql = div_dd(eh, el, d2h, d2l)
    return qh, ql, k


@_jit
def _s_d_sigmoid(x):
    if x != x:
        return x
    h, lo, k = _d_logistic(x, 0.0)
    return finish(h, lo, k)


@_jit
def _softplus_dd(yh, yl):
    """log(1 + exp(y)) for y = yh + yl as (h, l, k): y + log1p(e**-y) above 0, log1p(e**y)
    below, where it is e**y·(1 - e**y/2 + ...) and may be subnormal (then scaled)."""
    if yh >= 0.0:
        eh, el, k = exp_dd(-yh, -yl)
        lh, ll = log1p_dd(scale(eh, k), scale(el, k))
        sh, sl = two_sum(yh, lh)
        return sh, sl + (yl + ll), 0
    eh, el, k = exp_dd(yh, yl)
    if k < -60:  # e**y < 2**-60: log1p(e) = e·(1 - e/2) to 2**-120
        return eh, el - eh * scale(eh, k - 1), k
    lh, ll = log1p_dd(scale(eh, k), scale(el, k))
    return lh, ll, 0


@_jit
def _s_log_sigmoid(x):
    if x != x or x == -_INF:
        return x
    if x == _INF:
        return -0.0
    h, lo, k = _softplus_dd(-x, 0.0)
    return -finish(h, lo, k)


@_jit
def _s_d_log_sigmoid(x):
    return _s_sigmoid(-x)


@_jit
def _s_tanh(x):
    # tanh|x| = -expm1(-2|x|)/(2 + expm1(-2|x|)): no cancellation, -2|x| exact
    if x != x or x == 0.0:
        return x
    mh, ml = expm1_dd(-2.0 * abs(x))
    dh, dl = two_sum(2.0, mh)
    qh, ql = div_dd(-mh, -ml, dh, dl + ml)
    return math.copysign(finish(qh, ql, 0), x)


@_jit
def _s_d_tanh(x):
    # sech²(x) = 4e/(1+e)², e = exp(-2|x|); 1 - tanh² would lose everything for |x| > 9
    if x != x:
        return x
    h, lo, k = _d_logistic(-2.0 * abs(x), 0.0)
    return finish(h, lo, k + 2)


@_jit
def _s_softsign(x):
    if abs(x) == _INF:
        return math.copysign(1.0, x)
    if x == 0.0:
        return x
    dh, dl = two_sum(1.0, abs(x))
    qh, ql = div_dd(x, 0.0, dh, dl)
    return finish(qh, ql, 0)


@_jit
def _s_d_softsign(x):
    if x != x:
        return x
    if abs(x) == _INF:
        return 0.0
    if abs(x) > 2.0**500:  # 1/(1 + |x|)² = 1/x² to 2**-500, scaled by 2**1000 as a pair
        th, tl = div_dd(1.0, 0.0, math.ldexp(abs(x), -500), 0.0)
        ph, pl = mul_dd(th, tl, th, tl)
        return finish(ph, pl, -1000)
    dh, dl = two_sum(1.0, abs(x))
    d2h, d2l = mul_dd(dh, dl, dh, dl)
    qh, ql = div_dd(1.0, 0.0, d2h, d2l)
    return finish(qh, ql, 0)


@_jit
def _s_softplus(x, beta):
    # (1/beta)·log(1 + exp(beta·x)), exact formula: no threshold shortcut
    if x != x:
        return x
    yh, yl = two_prod(beta, x)
    if abs(yh) == _INF:
        return x if yh > 0.0 else 0.0
    h, lo, k = _softplus_dd(yh, yl)
    if beta == 1.0:
        return finish(h, lo, k)
    qh, ql = div_dd(h, lo, beta, 0.0)
    return finish(qh, ql, k)


@_jit
def _s_d_softplus(x, beta):
    if x != x:
        return x
    yh, yl = two_prod(beta, x)
    if abs(yh) == _INF:
        return 1.0 if yh > 0.0 else 0.0
    h, lo, k, _, _ = sigmoid_dd(yh, yl)
    return finish(h, lo, k)


@_jit
def _s_silu(x):
    if x == -_INF:
        return -0.0
    if x != x or x == _INF or x == 0.0:
        return x
    if abs(x) < _TINY_X:
        return _half_x_up(x)
    h, lo, k, _, _ = sigmoid_dd(x, 0.0)
    return _times_x(x, h, lo, k)


@_jit
def _d_silu_dd(x):
    """silu'(x) = sigmoid(x)·(1 + x·sigmoid(-x)) as (h, l, k), x not NaN:
    (1 + e + x·e)/(1+e)² (x >= 0, e = exp(-x)), e·(1 + e + x)/(1+e)² (x < 0, e = exp(x))."""
    if x == _INF:
        return 1.0, 0.0, 0
    if x == -_INF:
        return -0.0, 0.0, 0
    if _near_root(x, _D_SILU_PATCH):
        rh, rl = _root_taylor_dd(x, _D_SILU_PATCH)
        return rh, rl, 0
    eh, el, k = exp_dd(-abs(x), 0.0)
    e_h, e_l = scale(eh, k), scale(el, k)
    dh, dl = two_sum(1.0, e_h)
    dl += e_l
    d2h, d2l = mul_dd(dh, dl, dh, dl)
    if x >= 0.0:
        xh, xl = mul_dd(x, 0.0, e_h, e_l)
        nh, nl = two_sum(dh, xh)
        qh, ql = div_dd(nh, nl + (dl + xl), d2h, d2l)
        return qh, ql, 0
    nh, nl = two_sum(1.0, x)  # 1 + x + e: cancels at the root, exactly here
    nh, nl2 = two_sum(nh, e_h)
    nh, nl = fast_two_sum(nh, (nl + nl2) + e_l)
    ph, pl = mul_dd(eh, el, nh, nl)
    qh, ql = div_dd(ph, pl, d2h, d2l)
    return qh, ql, k


@_jit
def _s_d_silu(x):
    if x != x:
        return x
    h, lo, k = _d_silu_dd(x)
    return finish(h, lo, k)


@_jit
def _mish_ratio(x):
    """tanh(softplus(x)) = n/(n + 2), n = e·(e + 2), e = exp(x), as a pair, for -700 <= x."""
    eh, el, k = exp_dd(x, 0.0)
    eh, el = scale(eh, k), scale(el, k)
    e2h, e2l = two_sum(eh, 2.0)
    nh, nl = mul_dd(eh, el, e2h, e2l + el)
    dh, dl = two_sum(nh, 2.0)
    th, tl = div_dd(nh, nl, dh, dl + nl)
    return th, tl, eh, el, nh, nl, dh, dl + nl


@_jit
def _s_mish(x):
    if x > 20.0:
        return x  # tanh(softplus(x)) = 1 - 2/(n+2) rounds to 1 beyond x = 18.7
    if x == -_INF:
        return -0.0
    if x != x or x == 0.0:
        return x
    if x < -700.0:  # x·e·(1 - e/2 + ...), e = e**x < 2**-1000: the correction is below 2**-1000
        eh, el, k = exp_dd(x, 0.0)
        ph, pl = mul_dd(x, 0.0, eh, el)
        return finish(ph, pl, k)
    th, tl, _, _, _, _, _, _ = _mish_ratio(x)
    return _times_x(x, th, tl, 0)


@_jit
def _s_d_mish(x):
    # tanh(sp) + x·sech²(sp)·sigmoid(x), sp = softplus(x), with n = e·(e + 2):
    # tanh(sp) = n/(n+2), sech²(sp) = 4(n+1)/(n+2)², sigmoid(x) = e/(1+e)
    if x > 40.0:
        return 1.0  # the second term is < 4x·e**-2x < 2**-110 here
    if x == -_INF:
        return -0.0
    if x != x:
        return x
    if x < -700.0:  # e**x·(1 + x) + O(x·e**2x)
        eh, el, k = exp_dd(x, 0.0)
        ph, pl = mul_dd(1.0 + x, 0.0, eh, el)  # 1 + x exact for |x| < 2**52
        return finish(ph, pl, k)
    if _near_root(x, _D_MISH_PATCH):
        return _root_taylor(x, _D_MISH_PATCH)
    th, tl, eh, el, nh, nl, dh, dl = _mish_ratio(x)
    n1h, n1l = two_sum(nh, 1.0)
    d2h, d2l = mul_dd(dh, dl, dh, dl)
    sh, sl = div_dd(4.0 * n1h, 4.0 * (n1l + nl), d2h, d2l)  # sech²(sp)
    gh, gl, k, _, _ = sigmoid_dd(x, 0.0)
    gh, gl = scale(gh, k), scale(gl, k)
    ph, pl = mul_dd(sh, sl, gh, gl)
    ph, pl = mul_dd(x, 0.0, ph, pl)
    rh, rl = two_sum(th, ph)
    return finish(rh, rl + (tl + pl), 0)


# --- Gaussian family --------------------------------------------------------------------


@_jit
def _mills_series(z):
    """S(z) - 1 with erfc(z) = exp(-z²)/(z·sqrt(pi))·S(z), asymptotic: for z > 28 the 8 terms
    kept leave a relative error below 2**-70, and S - 1 < 1/1568 keeps its rounding below 2**-63
    of S = 1 + (S - 1)."""
    w = 1.0 / (2.0 * z * z)
    s = 0.0
    t = 1.0
    for k in range(1, 9):
        t = -t * (2 * k - 1) * w
        s += t
    return s


@_jit
def _half_x_squared(x):
    """x²/2 as a double-double (exact: x² = p + e, halving is exact)."""
    p, e = two_prod(x, x)
    return 0.5 * p, 0.5 * e


# gelu(x) = x·Phi(x) and gelu'(x) = Phi(x) + x·phi(x), from Phi(-|x|) = exp(-x²/2)·erfcx(z)/2,
# z = |x|/sqrt(2), as pairs (``_erfcx64``): no 1 + erf cancellation, and one rounding, the last.
# Beyond these bounds gelu rounds to x or -0 and gelu' to 1 or -0 (|gelu(-39)| < 2**-1097).
_GELU_LOW, _GELU_HIGH = -39.0, 40.0


@_jit
def _gelu_pair(x):
    """gelu(x) = (h + l)·2**k for finite nonzero x in [-40, 40]."""
    qh, ql, k, _, _, _, _ = normal_tail(x)
    xm, xe = math.frexp(x)  # x's exponent joins the scale: x·Phi(x) may be subnormal
    if x < 0.0:
        ph, pl = mul_dd(xm, 0.0, qh, ql)
        return ph, pl, k + xe
    qh, ql = scale(qh, k), scale(ql, k)  # Phi(-x) <= 1/2 beside 1: its underflow is harmless
    oh, ol = two_sum(1.0, -qh)
    ph, pl = mul_dd(xm, 0.0, oh, ol - ql)
    return ph, pl, xe


@_jit
def _d_gelu_pair(x):
    """gelu'(x) = (h + l)·2**k for finite x in [-40, 40]: exp(-x²/2)·(S/2 + x/sqrt(2pi)) for
    x < 0 (S = erfcx(z)), 1 + exp(-x²/2)·(x/sqrt(2pi) - S/2) for x >= 0; the root patch where
    the bracket cancels (outside it the bracket loses at most a factor 3)."""
    if _near_root(x, _D_GELU_PATCH):
        rh, rl = _root_taylor_dd(x, _D_GELU_PATCH)
        return rh, rl, 0
    _, _, k, gh, gl, sh, sl = normal_tail(x)
    ch, cl = mul_dd(x, 0.0, INV_SQRT_2PI[0], INV_SQRT_2PI[1])
    half_s = 0.5 * sh if x < 0.0 else -0.5 * sh
    bh, bl = two_sum(half_s, ch)
    bh, bl = fast_two_sum(bh, bl + cl + (0.5 * sl if x < 0.0 else -0.5 * sl))
    th, tl = mul_dd(gh, gl, bh, bl)
    if x < 0.0:
        return th, tl, k
    th, tl = scale(th, k), scale(tl, k)
    oh, ol = two_sum(1.0, th)
    return oh, ol + tl, 0


@_jit
def _s_gelu(x):
    if x > _GELU_HIGH:
        return x
    if x < _GELU_LOW:
        return -0.0
    if x != x or x == 0.0:
        return x
    if abs(x) < _TINY_X:
        return _half_x_up(x)  # x/2 + x²/sqrt(2pi)
    h, lo, k = _gelu_pair(x)
    return finish(h, lo, k)


@_jit
def _s_d_gelu(x):
    if x > _GELU_HIGH:
        return 1.0
    if x < -_GELU_HIGH:
        return -0.0  # phi(x)·(x + S/|x|) < 2**-1150 in magnitude, negative
    if x != x:
        return x
    h, lo, k = _d_gelu_pair(x)
    return finish(h, lo, k)


@_jit
def _gelu_tanh_arg(x):
    """v = 2u = 2·sqrt(2/pi)·(x + 0.044715·x³) as a double-double."""
    p2, e2 = two_prod(x, x)
    p3, e3 = two_prod(p2, x)
    e3 += e2 * x
    k3, k3_lo = two_prod(GELU_TANH_K[0], p3)
    k3_lo += GELU_TANH_K[0] * e3 + GELU_TANH_K[1] * p3
    s, s_lo = two_sum(x, k3)
    s_lo += k3_lo
    u, u_lo = two_prod(SQRT_2_OVER_PI[0], s)
    u_lo += SQRT_2_OVER_PI[0] * s_lo + SQRT_2_OVER_PI[1] * s
    return 2.0 * u, 2.0 * u_lo


@_jit
def _s_gelu_tanh(x):
    # 0.5·x·(1 + tanh(u)) = x·sigmoid(2u): no 1 + tanh cancellation; v = 2u as a pair
    if x > 20.0:
        return x  # 1 - sigmoid(2u) < e**-2000
    if x < -25.0:
        return -0.0  # 2u < -1930: the result underflows
    if x != x or x == 0.0:
        return x
    if abs(x) < _TINY_X:
        return _half_x_up(x)
    v, v_lo = _gelu_tanh_arg(x)
    h, lo, k, _, _ = sigmoid_dd(v, v_lo)
    return _times_x(x, h, lo, k)


@_jit
def _s_d_gelu_tanh(x):
    # sigmoid(v) + x·sigmoid(v)·sigmoid(-v)·v',  v' = 2·sqrt(2/pi)·(1 + 3·0.044715·x²)
    if x > 20.0:
        return 1.0
    if x < -25.0:
        return -0.0
    if x != x:
        return x
    if _near_root(x, _D_GELU_TANH_PATCH):
        return _root_taylor(x, _D_GELU_TANH_PATCH)
    v, v_lo = _gelu_tanh_arg(x)
    x2h, x2l = two_prod(x, x)
    kh, kl = mul_dd(3.0 * GELU_TANH_K[0], 3.0 * GELU_TANH_K[1], x2h, x2l)
    wh, wl = two_sum(1.0, kh)
    dvh, dvl = mul_dd(2.0 * SQRT_2_OVER_PI[0], 2.0 * SQRT_2_OVER_PI[1], wh, wl + kl)
    xdh, xdl = mul_dd(x, 0.0, dvh, dvl)  # x·v'
    sh, sl, k, nh, nl = sigmoid_dd(v, v_lo)
    # sigmoid(v)·(1 + x·v'·sigmoid(-v)), scaled by 2**k with sigmoid(v)
    th, tl = mul_dd(xdh, xdl, nh, nl)
    uh, ul = two_sum(1.0, th)
    ph, pl = mul_dd(sh, sl, uh, ul + tl)
    return finish(ph, pl, k)


# --- ufuncs ------------------------------------------------------------------------------


def _ufunc(n_params=0):
    return ufunc(1, n_params)


@_ufunc()
def relu(x):
    return _s_relu(float64(x))


@_ufunc()
def d_relu(x):
    return _s_d_relu(float64(x))


@_ufunc()
def relu6(x):
    return _s_relu6(float64(x))


@_ufunc()
def d_relu6(x):
    return _s_d_relu6(float64(x))


@_ufunc(2)
def hardtanh(x, min_val, max_val):
    return _s_hardtanh(float64(x), min_val, max_val)


@_ufunc(2)
def d_hardtanh(x, min_val, max_val):
    return _s_d_hardtanh(float64(x), min_val, max_val)


@_ufunc(1)
def leaky_relu(x, negative_slope):
    return _s_leaky_relu(float64(x), negative_slope)


@_ufunc(1)
def d_leaky_relu(x, negative_slope):
    return _s_d_leaky_relu(float64(x), negative_slope)


@_ufunc(1)
def elu(x, alpha):
    return _s_elu(float64(x), alpha)


@_ufunc(1)
def d_elu(x, alpha):
    return _s_d_elu(float64(x), alpha)


@_ufunc(1)
def celu(x, alpha):
    return _s_celu(float64(x), alpha)


@_ufunc(1)
def d_celu(x, alpha):
    return _s_d_celu(float64(x), alpha)


@_ufunc(2)
def selu(x, alpha, scale):
    return _s_selu(float64(x), alpha, scale)


@_ufunc(2)
def d_selu(x, alpha, scale):
    return _s_d_selu(float64(x), alpha, scale)


@_ufunc()
def sigmoid(x):
    return _s_sigmoid(float64(x))


@_ufunc()
def d_sigmoid(x):
    return _s_d_sigmoid(float64(x))


@_ufunc()
def log_sigmoid(x):
    return _s_log_sigmoid(float64(x))


@_ufunc()
def d_log_sigmoid(x):
    return _s_d_log_sigmoid(float64(x))


@_ufunc()
def tanh(x):
    return _s_tanh(float64(x))


@_ufunc()
def d_tanh(x):
    return _s_d_tanh(float64(x))


@_ufunc()
def softsign(x):
    return _s_softsign(float64(x))


@_ufunc()
def d_softsign(x):
    return _s_d_softsign(float64(x))


@_ufunc(1)
def softplus(x, beta):
    return _s_softplus(float64(x), beta)


@_ufunc(1)
def d_softplus(x, beta):
    return _s_d_softplus(float64(x), beta)


@_ufunc()
def hardsigmoid(x):
    return _s_hardsigmoid(float64(x))


@_ufunc()
def d_hardsigmoid(x):
    return _s_d_hardsigmoid(float64(x))


@_ufunc()
def hardswish(x):
    return _s_hardswish(float64(x))


@_ufunc()
def d_hardswish(x):
    return _s_d_hardswish(float64(x))


@_ufunc()
def gelu(x):
    return _s_gelu(float64(x))


@_ufunc()
def d_gelu(x):
    return _s_d_gelu(float64(x))


@_ufunc()
def gelu_tanh(x):
    return _s_gelu_tanh(float64(x))


@_ufunc()
def d_gelu_tanh(x):
    return _s_d_gelu_tanh(float64(x))


@_ufunc()
def silu(x):
    return _s_silu(float64(x))


@_ufunc()
def d_silu(x):
    return _s_d_silu(float64(x))


@_ufunc()
def mish(x):
    return _s_mish(float64(x))


@_ufunc()
def d_mish(x):
    return _s_d_mish(float64(x))


# --- gated (two-input) ---------------------------------------------------------------------
# y = a·gate(b), dy/da = gate(b), dy/db = a·gate'(b).  The product is one rounding of exact-ish
# factors, except where gate(b) (or gate'(b)) is so small it is subnormal or underflows while
# a·gate(b) need not be (a up to 2**1024): there the gate is carried as w·exp(t), exp(t) split
# as m·2**k, and a·w·m scaled by 2**k last.
@_jit
def _times_pair(a, h, lo, k):
    """RN(a·(h + lo)·2**k) for a gate's pair (h + lo > 0 or a zero): a's exponent joins the
    scale, so that neither a huge a nor a subnormal product rounds early."""
    if abs(a) == _INF or a != a:
        return a * (h + lo)
    am, ae = math.frexp(a)
    ph, pl = mul_dd(am, 0.0, h, lo)
    return finish(ph, pl, k + ae)


@_jit
def _times_tiny(a, w, w_lo, t, t_lo):
    """a·(w + w_lo)·exp(t + t_lo) for t < -600: exp(t) may underflow, the product need not; exp
    as a pair (``exp_dd``) with a's and w's exponents in its scale, one rounding."""
    if t < -1460.0:  # |a·w·exp(t)| < 2**1024·|w|·2**-2106 rounds to zero for finite a
        sign = math.copysign(1.0, w)
        if abs(a) == _INF and t > -_INF:
            return a * sign  # inf times a tiny but nonzero gate
        return a * (0.0 * sign)
    h, lo, k = exp_dd(t, t_lo)
    wm, we = math.frexp(w)
    ph, pl = mul_dd(wm, math.ldexp(w_lo, -we), h, lo)
    return _times_pair(a, ph, pl, k + we)


_HUGE_B = -1e150  # below, b²/2 overflows; any t < -1460 gives the same (zero) product


@_jit
def _glu(a, b):
    if b < -660.0:  # sigmoid(b) = e**b to 1e-287 relative
        return _times_tiny(a, 1.0, 0.0, b, 0.0)
    if b != b:
        return a + b
    h, lo, k, _, _ = sigmoid_dd(b, 0.0)
    return _times_pair(a, h, lo, k)


@_jit
def _d_glu_b(a, b):
    if abs(b) > 660.0:  # sigmoid'(b) = e**-|b| to 1e-287 relative
        return _times_tiny(a, 1.0, 0.0, -abs(b), 0.0)
    if b != b:
        return a + b
    h, lo, k = _d_logistic(b, 0.0)
    return _times_pair(a, h, lo, k)


@_jit
def _gelu_tail(b):
    """(sh, sl, t, t_lo) for b < -40, where gelu(b) is below the subnormals but a·gelu(b) need
    not be: gelu(b) = -phi(b)·S(z), phi(b) = exp(t + t_lo)/sqrt(2pi), S = sh + sl."""
    t, t_lo = _half_x_squared(b) if b > _HUGE_B else (2000.0 if b > -_INF else _INF, 0.0)
    sh, sl = fast_two_sum(1.0, _mills_series(-b * INV_SQRT2[0]))
    return sh, sl, -t, -t_lo


@_jit
def _geglu(a, b):
    if b < -_GELU_HIGH:
        sh, sl, t, t_lo = _gelu_tail(b)
        wh, wl = mul_dd(INV_SQRT_2PI[0], INV_SQRT_2PI[1], sh, sl)
        return _times_tiny(a, -wh, -wl, t, t_lo)
    if b > _GELU_HIGH or b != b or b == 0.0:
        return a * _s_gelu(b)
    if abs(b) < _TINY_X and 0.0 < abs(a) < _INF:
        return _times_half_b_up(a, b)
    h, lo, k = _gelu_pair(b)
    return _times_pair(a, h, lo, k)


@_jit
def _d_geglu_b(a, b):
    if b == -_INF:
        return a * -0.0
    if b < -_GELU_HIGH:  # gelu'(b) = -phi(b)·(|b| - S(z)/|b|)
        sh, _, t, t_lo = _gelu_tail(b)
        mh, ml = two_sum(-b, sh / b)
        wh, wl = mul_dd(INV_SQRT_2PI[0], INV_SQRT_2PI[1], mh, ml)
        return _times_tiny(a, -wh, -wl, t, t_lo)
    if b > _GELU_HIGH or b != b:
        return a * _s_d_gelu(b)
    h, lo, k = _d_gelu_pair(b)
    return _times_pair(a, h, lo, k)


@_jit
def _swiglu(a, b):
    if 0.0 < abs(b) < _TINY_X and 0.0 < abs(a) < _INF:
        return _times_half_b_up(a, b)
    if b < -655.0:  # silu(b) = b·e**b
        return _times_tiny(a, b, 0.0, b, 0.0) if b > -_INF else a * -0.0
    if b != b or abs(b) == _INF:
        return a * _s_silu(b)
    h, lo, k, _, _ = sigmoid_dd(b, 0.0)
    bh, bl = math.frexp(b)  # b·sigmoid(b) as a pair, b's exponent in the scale
    sh, sl = mul_dd(bh, 0.0, h, lo)
    return _times_pair(a, sh, sl, k + bl)


@_jit
def _d_swiglu_b(a, b):
    if b < -655.0:  # silu'(b) = e**b·(1 + b)
        return _times_tiny(a, 1.0 + b, 0.0, b, 0.0) if b > -_INF else a * -0.0
    if b != b:
        return a + b
    h, lo, k = _d_silu_dd(b)
    return _times_pair(a, h, lo, k)


@_jit
def _reglu(a, b):
    return a * _s_relu(b)


@_jit
def _d_reglu_b(a, b):
    return a * _s_d_relu(b)


@ufunc(2)
def glu(a, b):
    return _glu(float64(a), float64(b))


@ufunc(2)
def d_glu_a(a, b):
    return _s_sigmoid(float64(b))


@ufunc(2)
def d_glu_b(a, b):
    return _d_glu_b(float64(a), float64(b))


@ufunc(2)
def geglu(a, b):
    return _geglu(float64(a), float64(b))


@ufunc(2)
def d_geglu_a(a, b):
    return _s_gelu(float64(b))


@ufunc(2)
def d_geglu_b(a, b):
    return _d_geglu_b(float64(a), float64(b))


@ufunc(2)
def swiglu(a, b):
    return _swiglu(float64(a), float64(b))


@ufunc(2)
def d_swiglu_a(a, b):
    return _s_silu(float64(b))


@ufunc(2)
def d_swiglu_b(a, b):
    return _d_swiglu_b(float64(a), float64(b))


@ufunc(2)
def reglu(a, b):
    return _reglu(float64(a), float64(b))


@ufunc(2)
def d_reglu_a(a, b):
    return _s_relu(float64(b))


@ufunc(2)
def d_reglu_b(a, b):
    return _d_reglu_b(float64(a), float64(b))


# every ufunc above: the wrappers of kernels/__init__.py pick theirs by name
__all__ = sorted(name for name, value in list(globals().items()) if isinstance(value, Ufunc))

"""SIMD kernels: the accurate kernels' formulas with exp, expm1, log1p and erfc in plain arithmetic.

A call to libm keeps a Numba loop scalar (PyPI's llvmlite has no vector math library), and the
default ``error_model='python'`` puts a zero-division check in every division; both block
LLVM's loop vectorizer.  Here exp(a) is reduced by Cody and Waite to 2**n·exp(r), |r| <=
ln(2)/2, exp(r) = 1 + r + r²·q(r); expm1 comes from the same reduction and log1p(e), e <= 1, is
2·atanh(e/(2 + e)), and erfc(z) = exp(-z²)·K(u)/(z + c) with u = (z - c)/(z + c); q, atanh's
series and K are fitted by ``reference/polyfit.py`` (the literals below are what it prints); 2**n
is built from its bits.  The loops use ``error_model='numpy'``,
and LLVM turns them into 4- to 8-wide vector code (``tests/test_simd.py`` checks the IR).  The
one fast-math flag is ``contract``: a·b + c may become one fused multiply-add, rounded once
(one instruction instead of two in every Horner step); the audit's budgets hold with it.
The error-free transformations (two_prod, two_sum) stay in ``_accurate``'s own compiled
functions, where no contraction reaches them.

Every kernel computes in float64 and rounds once: float32 results use the low-degree fits
(relative error ~1e-12, invisible after rounding to float32), float64 results the high-degree
ones (below 2**-56).  The formulas are the accurate kernels' (no 1 - sigmoid cancellation;
products that land in the subnormal range rounded into it once; the derivatives' roots on the
accurate kernels' Taylor patches; the piecewise kernels are their scalar definitions as they
are); the float64 budgets in ``bench/core/budgets.toml`` say where they differ.

Arrays of at least ``PARALLEL_MIN`` elements run on Numba's threads (``prange``) when more
than one is set.  The loops are cached on disk by ``_cache`` (keyed by every kernel source, so
a change to an inlined helper of ``_accurate`` recompiles them): compiling them all is seconds
of LLVM work, loading them a small fraction of that.
"""

import math

import mpmath
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import _accurate
from ._accurate import _D_GELU_PATCH, _D_GELU_TANH_PATCH, _D_MISH_PATCH, _D_SILU_PATCH, _near_root
from ._cache import cached
from ._dd64 import FDLIBM_LN2_HI, FDLIBM_LN2_LO, INV_LN2
from ._dd64 import fma as _fma64  # a·b + c rounded once, where a step relies on it

__all__ = ["KERNELS", "PARALLEL_MIN", "run"]

PARALLEL_MIN = 1 << 17  # below ~1e5 elements thread start-up costs more than it saves

# reference/polyfit.py: q of degree 6 / 10, max relative error of exp 4.25e-12 / 3.38e-19
EXP_Q_FLOAT32 = (
    float.fromhex("0x1.a1131351400c3p-16"), float.fromhex("0x1.a15169e096556p-13"),
    float.fromhex("0x1.6c1685919d367p-10"), float.fromhex("0x1.1110c63a4eed0p-7"),
    float.fromhex("0x1.5555555c85f99p-5"), float.fromhex("0x1.5555556750672p-3"),
    float.fromhex("0x1.0000000000000p-1"),
)
EXP_Q_FLOAT64 = (
    float.fromhex("0x1.1f72fc730b4ffp-29"), float.fromhex("0x1.af4ddd84882fep-26"),
    float.fromhex("0x1.27e4db67b4303p-22"), float.fromhex("0x1.71de02375656cp-19"),
    float.fromhex("0x1.a01a01a6d7808p-16"), float.fromhex("0x1.a01a01abe62ddp-13"),
    float.fromhex("0x1.6c16c16c162d6p-10"), float.fromhex("0x1.11111111100dfp-7"),
    float.fromhex("0x1.5555555555556p-5"), float.fromhex("0x1.5555555555557p-3"),
    float.fromhex("0x1.0000000000000p-1"),
)
# reference/polyfit.py: log1p(e) = 2z + 2z·w·B(w), z = e/(2 + e), w = z²; B of degree 6 / 10,
# max relative error of log1p 2.56e-13 / 2.09e-18
LOG1P_B_FLOAT32 = (
    float.fromhex("0x1.8677a4bf9332ap-4"), float.fromhex("0x1.27db2445d4862p-4"),
    float.fromhex("0x1.75de5d874a272p-4"), float.fromhex("0x1.c70d2f5e45807p-4"),
    float.fromhex("0x1.24926db12eb2ap-3"), float.fromhex("0x1.99999958485b0p-3"),
    float.fromhex("0x1.555555555ed28p-2"),
)
LOG1P_B_FLOAT64 = (
    float.fromhex("0x1.401d3e65cdc48p-4"), float.fromhex("0x1.32e0d25c9c761p-5"),
    float.fromhex("0x1.bc37f0140c19ep-5"), float.fromhex("0x1.e0a2d581ab68fp-5"),
    float.fromhex("0x1.111abdc8abe16p-4"), float.fromhex("0x1.3b13515f6f9efp-4"),
    float.fromhex("0x1.745d19937b1fcp-4"), float.fromhex("0x1.c71c71bedea97p-4"),
    float.fromhex("0x1.2492492499d46p-3"), float.fromhex("0x1.9999999999944p-3"),
    float.fromhex("0x1.5555555555555p-2"),
)
# reference/polyfit.py: erfcx(z) = exp(z²)·erfc(z) = K(u)/(z + c), u = (z - c)/(z + c), c = ERFCX_C;
# K of degree 14 on z <= 11 / 22 on z <= 27.6, max relative error of erfcx 1.69e-12 / 7.28e-17
ERFCX_C = 4.0
ERFCX_K_FLOAT32 = (
    float.fromhex("-0x1.3c76d70c8a282p-18"), float.fromhex("-0x1.0b89f2476b990p-15"),
    float.fromhex("-0x1.e5769e68c4e29p-18"), float.fromhex("0x1.8014e54053bdfp-13"),
    float.fromhex("-0x1.d82e66476a880p-12"), float.fromhex("-0x1.2731253913f69p-12"),
    float.fromhex("0x1.9078919021ebcp-8"), float.fromhex("-0x1.b00c9d8b7c13fp-6"),
    float.fromhex("0x1.38dbff6fac4b7p-4"), float.fromhex("-0x1.645fd4cac7d8cp-3"),
    float.fromhex("0x1.52cac1964da2ep-2"), float.fromhex("-0x1.14eacb284ddb9p-1"),
    float.fromhex("0x1.8be202d430ff1p-1"), float.fromhex("-0x1.f3fe31ec85ec9p-1"),
    float.fromhex("0x1.18932bf08d2edp+0"),
)
ERFCX_K_FLOAT64 = (
    float.fromhex("0x1.eb0502d3b1d04p-31"), float.fromhex("-0x1.78891dc05a806p-31"),
    float.fromhex("-0x1.0584118e5dce4p-26"), float.fromhex("0x1.e0c3a2198fd17p-29"),
    float.fromhex("0x1.0a69308249f17p-23"), float.fromhex("-0x1.53bdf60e15adfp-24"),
    float.fromhex("-0x1.c66a3ddae0d77p-21"), float.fromhex("0x1.7f07897de7a29p-20"),
    float.fromhex("0x1.3b0e67bca11bdp-18"), float.fromhex("-0x1.3c74470bf394dp-16"),
    float.fromhex("-0x1.e7ed000f06a0fp-19"), float.fromhex("0x1.72cddb8c4d4fep-13"),
    float.fromhex("-0x1.dd284320306a9p-12"), float.fromhex("-0x1.269b56f694014p-12"),
    float.fromhex("0x1.908f471ea9071p-8"), float.fromhex("-0x1.b00c052a09689p-6"),
    float.fromhex("0x1.38dbd2c8eab7dp-4"), float.fromhex("-0x1.645fd8a4c06a0p-3"),
    float.fromhex("0x1.52cac2370ffc0p-2"), float.fromhex("-0x1.14eacb1ad02bbp-1"),
    float.fromhex("0x1.8be202d26c709p-1"), float.fromhex("-0x1.f3fe31ecb49c0p-1"),
    float.fromhex("0x1.18932bf08e154p+0"),
)
# ln 2 split (fdlibm's): n·LN2_HI is exact for |n| < 2**11, so r keeps its low bits
LN2_HI, LN2_LO = FDLIBM_LN2_HI, FDLIBM_LN2_LO
# exp(a) is clamped here: below it x·exp(x) is 0 even as a float64 subnormal (|x|·e**x <
# 2**-1075 from x = -752), and 2**n still splits into two normal factors (n >= -1155)
EXP_FLOOR = -800.0
# and above this exp is inf in float64 (log(2**1024) = 709.78); the clamp keeps 2**n's two
# halves inside the exponent field (celu with alpha < 0 takes exp of positive x/alpha)
EXP_CEIL = 1000.0


@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (a vector bitcast in the loop)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _prefer_512_bit_vectors(typingctx):
    """Marks the enclosing function "prefer-vector-width"="512".  LLVM's tuning for Intel's
    AVX-512 cores (Skylake-server and after) prefers 256-bit vectors, for the clock cost of
    512-bit instructions, which would give the float64 loops 4 doubles a vector; these loops
    are compute-bound, and 8 doubles a vector outweigh that cost (same bits).
    llvmlite's attribute set takes no string attributes, so the attribute goes into the
    underlying set directly;
    tests/test_vector_width.py checks that the loops get 512-bit vectors where the CPU has them."""
    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return types.none(), codegen


_inline = njit(error_model="numpy", inline="always", fastmath={"contract"})


@_inline
def _two_sum(a, b):
    """(s, e) with s + e = a + b exactly and s = a + b rounded (Knuth's two-sum: no ordering of
    |a| and |b| needed); float32 or float64, whichever a and b are."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


# the fits as constant arrays, highest degree first: a Horner loop over one unrolls fully
_EXP_Q = (np.array(EXP_Q_FLOAT32), np.array(EXP_Q_FLOAT64))
_LOG1P_B = (np.array(LOG1P_B_FLOAT32), np.array(LOG1P_B_FLOAT64))
_ERFCX_K = (np.array(ERFCX_K_FLOAT32), np.array(ERFCX_K_FLOAT64))


@_inline
def _horner(c, r):
    p = c[0]
    for k in range(1, c.size):
        p = p * r + c[k]
    return p


@_inline
def _log1p_of_exp(m, s, wide):
    """log1p(e) for e = m·s = exp(a), a <= 0: 2·atanh(z), z = e/(2 + e) formed to half an ULP
    (2 + e = d + dl exactly; q·d's residual e - q·d is exact by a fused multiply-add), so only the
    final sum rounds visibly.  Below e = 2**-30, e·(1 - e/2) as (m·(1 - e/2))·s: a subnormal
    result rounds once."""
    e = m * s
    d = 2.0 + e
    dl = e - (d - 2.0)
    q = e / d
    z = q + (_fma64(-q, d, e) - q * dl) / d
    w = z * z
    b = _horner(_LOG1P_B[1], w) if wide else _horner(_LOG1P_B[0], w)
    return (m * (1.0 - 0.5 * e)) * s if e < 2.0**-30 else 2.0 * z + (2.0 * z) * (w * b)


@_inline
def _reduce_dd(a, a_lo, wide):
    """exp(a + a_lo) = (1 + em1)·s1·s2 for a clamped to [EXP_FLOOR, EXP_CEIL] and |a_lo| <=
    ulp(a): Cody-Waite reduction a + a_lo = n·ln2 + r, em1 = exp(r) - 1 = r + r²·q(r)
    (``wide``: the float64-grade fit), and 2**n as two normal factors from their bits (n
    reaches -1155, and 2**-1076 is not a float64)."""
    a = min(max(a, EXP_FLOOR), EXP_CEIL)
    n = np.floor(a * INV_LN2 + 0.5)
    r = ((a - n * LN2_HI) - n * LN2_LO) + a_lo
    q = _horner(_EXP_Q[1], r) if wide else _horner(_EXP_Q[0], r)
    k = np.int64(n)
    h = k >> 1
    return r + r * r * q, _f64_from_bits((h + 1023) << 52), _f64_from_bits((k - h + 1023) << 52)


@_inline
def _reduce(a, wide):
    """``_reduce_dd`` of a alone (r + -0.0 is r for every r: LLVM drops the addition)."""
    return _reduce_dd(a, -0.0, wide)


@_inline
def _exp_parts(a, wide):
    """exp(a) = m·s (NaN is the caller's), with m normal: a product that must round into the
    subnormal range multiplies by s last, so it rounds there once."""
    em1, s1, s2 = _reduce(a, wide)
    return (1.0 + em1) * s1, s2


@_inline
def _expm1(a, wide):
    """exp(a) - 1 without cancellation.  For a <= 1, with s = 2**n (never a subnormal for the n
    that matter): s·em1 + (s - 1), where s - 1 is exact for n >= -53 and em1 keeps its relative
    accuracy as r -> 0 (n = 0).  Above, exp(a) - 1 with exp as two factors (s alone would
    overflow from n = 1024 while exp(a) is still finite)."""
    em1, s1, s2 = _reduce(a, wide)
    scale = s1 * s2
    small = em1 * scale + (scale - 1.0)
    large = ((1.0 + em1) * s1) * s2 - 1.0
    y = large if a > 1.0 else small
    return a if a == 0.0 else y  # expm1(-0) = -0 (the sum above gives +0)


@_inline
def _tanh(x, wide, p0, p1):
    # tanh|x| = -t/(2 + t), t = expm1(-2|x|), near 0 (no cancellation as t -> 0); beyond
    # |x| = 0.55 (e = exp(-2|x|) < 1/3) 1 - 2e/(1 + e), whose subtraction from 1 shrinks the
    # quotient's error instead (-t/(2 + t) lost 2.5 ULP near tanh -> 1)
    t = _expm1(-2.0 * abs(x), wide)
    m, s = _exp_parts(-2.0 * abs(x), wide)
    far = 1.0 - (2.0 * m * s) / (1.0 + m * s)
    y = np.copysign(-t / (2.0 + t) if abs(x) < 0.55 else far, x)
    return x if x != x else y


@_inline
def _d_tanh(x, wide, p0, p1):
    # sech²(x) = 4e/(1+e)², e = exp(-2|x|): 1 - tanh² would lose everything for |x| > 9
    m, s = _exp_parts(-2.0 * abs(x), wide)
    r = 1.0 / (1.0 + m * s)
    y = (((4.0 * m) * r) * r) * s
    return x if x != x else y


@_inline
def _elu(x, wide, alpha, p1):
    y = x if x > 0.0 else alpha * _expm1(min(x, 0.0), wide)
    return x if x != x else y


@_inline
def _d_elu(x, wide, alpha, p1):
    m, s = _exp_parts(min(x, 0.0), wide)
    y = 1.0 if x > 0.0 else (alpha * m) * s  # torch: alpha at x = 0 (the x <= 0 branch)
    return x if x != x else y


@_inline
def _celu(x, wide, alpha, p1):
    # x/alpha > 0 on x < 0 when alpha < 0 (torch allows it): expm1 of either sign
    y = x if x > 0.0 else alpha * _expm1(x / alpha, wide)
    return x if x != x else y


@_inline
def _d_celu(x, wide, alpha, p1):
    m, s = _exp_parts(x / alpha, wide)
    y = 1.0 if x > 0.0 else m * s
    return x if x != x else y


@_inline
def _selu(x, wide, alpha, scale):
    y = scale * x if x > 0.0 else scale * (alpha * _expm1(min(x, 0.0), wide))
    return x if x != x else y


@_inline
def _d_selu(x, wide, alpha, scale):
    m, s = _exp_parts(min(x, 0.0), wide)
    y = scale if x > 0.0 else (scale * (alpha * m)) * s
    return x if x != x else y


# the accurate kernels' root-centred Taylor patches (_accurate._root_taylor), coefficients as
# constant arrays: a loop over a tuple indexes it through a switch, which keeps LLVM from
# unrolling mish''s 28 steps (and so from vectorizing the element loop); loads from a constant
# array unroll
_D_SILU_C = np.array(_D_SILU_PATCH[3])
_D_MISH_C = np.array(_D_MISH_PATCH[3])
_D_GELU_TANH_C = np.array(_D_GELU_TANH_PATCH[3])
_D_GELU_C = np.array(_D_GELU_PATCH[3])


@_inline
def _taylor_patch(x, patch, c):
    t = (x - patch[0]) - patch[1]
    p = c[c.size - 1]
    for k in range(c.size - 2, -1, -1):
        p = p * t + c[k]
    return t * p


@_inline
def _softplus(x, wide, beta, p1):
    # (max(y, 0) + log1p(exp(-|y|)))/beta, y = beta·x: the accurate kernel's exact formula
    y = beta * x
    m, s = _exp_parts(-abs(y), wide)
    lp = _log1p_of_exp(m, s, wide)
    out = (y + lp) / beta if y >= 0.0 else lp / beta
    return x if x != x else out


@_inline
def _d_softplus(x, wide, beta, p1):
    return _sigmoid(beta * x, wide, p1, p1)


@_inline
def _log_sigmoid(x, wide, p0, p1):
    # -log1p(exp(-x)) for x >= 0, x - log1p(exp(x)) below
    m, s = _exp_parts(-abs(x), wide)
    lp = _log1p_of_exp(m, s, wide)
    y = -lp if x >= 0.0 else x - lp
    return x if x != x else y


@_inline
def _d_log_sigmoid(x, wide, p0, p1):
    return _sigmoid(-x, wide, p0, p1)


@_inline
def _sigmoid_pair(v, wide):
    """(m, s, r, sig_neg) for sigmoid(v) with e = exp(-|v|) = m·s, r = 1/(1 + e):
    sigmoid(|v|) = r and sigmoid(-|v|) = e·r; sig_neg = sigmoid(-v)."""
    m, s = _exp_parts(-abs(v), wide)
    r = 1.0 / (1.0 + m * s)
    return m, s, r, (m * r) * s if v >= 0.0 else r


@_inline
def _gelu_tanh(x, wide, p0, p1):
    # x·sigmoid(v + v_lo), v = 2·sqrt(2/pi)·(x + 0.044715x³) as the accurate kernel's
    # double-double (its cubic is ill-conditioned in the tail), sigmoid corrected to first
    # order in v_lo; for v < 0, x·e·r·(...) with the 2**n factor s last (subnormal results)
    v, v_lo = _accurate._gelu_tanh_arg(min(max(x, -25.0), 20.0))
    m, s, r, sig_neg = _sigmoid_pair(v, wide)
    c = r * (1.0 + sig_neg * v_lo)
    y = x * c if v >= 0.0 else ((x * m) * c) * s
    y = x if x > 20.0 else y  # 1 - sigmoid(v) < e**-2000
    y = -0.0 if x < -25.0 else y  # v < -1930: the result underflows
    return x if x != x else y


@_inline
def _d_gelu_tanh(x, wide, p0, p1):
    # sigmoid(v)·(1 + x·v'·sigmoid(-v)), v' = 2·sqrt(2/pi)·(1 + 3·0.044715x²); the root
    # (x = -0.7525) on the accurate kernel's patch
    v, v_lo = _accurate._gelu_tanh_arg(min(max(x, -25.0), 20.0))
    m, s, r, sig_neg = _sigmoid_pair(v, wide)
    dv = 2.0 * _accurate.SQRT_2_OVER_PI[0] * (1.0 + 3.0 * _accurate.GELU_TANH_K[0] * x * x)
    tail = (1.0 + sig_neg * v_lo) * (1.0 + x * dv * sig_neg)
    y = r * tail if v >= 0.0 else ((m * r) * tail) * s
    y = _taylor_patch(x, _D_GELU_TANH_PATCH, _D_GELU_TANH_C) if _near_root(x, _D_GELU_TANH_PATCH) else y
    y = 1.0 if x > 20.0 else y
    y = -0.0 if x < -25.0 else y
    return x if x != x else y


# gelu in the erf form: with a = |x| and z = a/sqrt(2), Phi(-a) = erfc(z)/2 = E·F/2, where
# E = exp(-x²/2) (x² exact as p + e) and F = erfcx(z) = exp(z²)·erfc(z) from its fit; past
# GELU_XMAX the result is x or -0 (float64: Phi(-39) < 2**-1100; float32: gelu(-15.5) < 2**-170)
GELU_XMAX = (15.5, 39.0)
# gelu' near 0, where F/2 + x/sqrt(2pi) cancels partly and the sum ~1/4 doubles the ULP count
# (5.9 ULP at x = -0.33 in float64): its Maclaurin series, from those of Phi and x·phi,
# gelu'(x) = 1/2 + x·phi(0)·sum_k (-1)^k·2(k + 1)/((2k + 1)·2**k·k!)·x**(2k); for |x| <=
# D_GELU_SERIES_X the terms from k = 11 on sum to below 2**-68 of the result (the accurate
# kernel's root patch takes over below -0.3518)
D_GELU_SERIES_X = 0.36
with mpmath.workprec(200):  # then rounded once to float64
    D_GELU_SERIES = tuple(
        float(mpmath.mpf((-1) ** k * 2 * (k + 1)) / ((2 * k + 1) * 2**k * math.factorial(k))
              / mpmath.sqrt(2 * mpmath.pi))
        for k in range(10, -1, -1))  # highest first
_D_GELU_SERIES = np.array(D_GELU_SERIES)


@_inline
def _erfcx_gauss(a, wide):
    """(f, em1, s1, s2) for a >= 0: f = erfcx(a/sqrt(2)), exp(-a²/2) = (1 + em1)·s1·s2 with
    the 2**n factor s2 to multiply last (subnormal results round once).  f comes from the fit
    in u = (z - c)/(z + c) with z + c and z - c carried exactly, so u is right to ~1 ULP (z + c
    rounded alone cost 6 ULP near z = 0, where K(u) is steep)."""
    z, z_lo = _accurate.two_prod(a, _accurate.INV_SQRT2[0])
    z_lo += a * _accurate.INV_SQRT2[1]
    t, t_lo = _accurate.two_sum(z, ERFCX_C)
    t_lo += z_lo
    w, w_lo = _accurate.two_sum(z, -ERFCX_C)
    w_lo += z_lo
    d = 1.0 / t
    q = w * d
    u = q + (_fma64(-q, t, w) + w_lo - q * t_lo) * d  # w - q·t, exact
    k = _horner(_ERFCX_K[1], u) if wide else _horner(_ERFCX_K[0], u)
    kd = k * d
    p, e = _accurate.two_prod(a, a)
    em1, s1, s2 = _reduce_dd(-0.5 * p, -0.5 * e, wide)
    # k/(t + t_lo) = kd·(1 + rho - t_lo·d) to first order, rho = 1 - t·d exact: d's rounding
    # and t's low part corrected in one step
    return kd + kd * (_fma64(-t, d, 1.0) - t_lo * d), em1, s1, s2


@_inline
def _gelu(x, wide, p0, p1):
    # v·exp(-x²/2) = x·Phi(-|x|), v = x·F/2: that below 0, x minus it above (Phi(-|x|) <= 1/2:
    # no cancellation); v·(1 + em1) as v + v·em1, one rounding
    xmax = GELU_XMAX[1] if wide else GELU_XMAX[0]
    f, em1, s1, s2 = _erfcx_gauss(min(abs(x), xmax), wide)
    v = (0.5 * x) * f
    tail = ((v + v * em1) * s1) * s2
    y = tail if x < 0.0 else x - tail
    y = x if x > xmax or x == 0.0 else y  # x - tail would turn -0 into +0
    y = -0.0 if x < -xmax else y
    return x if x != x else y


@_inline
def _d_gelu(x, wide, p0, p1):
    # Phi(x) + x·phi(x) = b·exp(-x²/2), b = F/2 + x/sqrt(2pi), below 0; 1 + b'·exp(-x²/2),
    # b' = x/sqrt(2pi) - F/2, above; the root (x = -0.7518) on the accurate kernel's patch
    xmax = GELU_XMAX[1] if wide else GELU_XMAX[0]
    f, em1, s1, s2 = _erfcx_gauss(min(abs(x), xmax), wide)
    b = x * _accurate.INV_SQRT_2PI[0] + (0.5 * f if x < 0.0 else -0.5 * f)
    g = ((b + b * em1) * s1) * s2
    y = g if x < 0.0 else 1.0 + g
    y = 0.5 + x * _horner(_D_GELU_SERIES, x * x) if abs(x) <= D_GELU_SERIES_X else y
    y = _taylor_patch(x, _D_GELU_PATCH, _D_GELU_C) if _near_root(x, _D_GELU_PATCH) else y
    y = 1.0 if x > xmax else y
    y = -0.0 if x < -xmax else y
    return x if x != x else y


@_inline
def _mish(x, wide, p0, p1):
    # x·tanh(softplus(x)) = x·n/(n + 2), n = e·(e + 2), e = exp(x) = m·s (no log, no
    # cancellation), as x·m·((e + 2)/(n + 2))·s so that a subnormal result rounds once
    m, s = _exp_parts(min(x, 20.0), wide)
    e = m * s
    n = e * (e + 2.0)
    y = ((x * m) * ((e + 2.0) / (n + 2.0))) * s
    y = x if x > 20.0 else y  # tanh(softplus(x)) rounds to 1 beyond x = 18.7
    y = -0.0 if x < EXP_FLOOR else y
    return x if x != x else y


@_inline
def _d_mish(x, wide, p0, p1):
    # tanh(sp) + x·sech²(sp)·sigmoid(x) = e·((e + 2)/d + 4x(n + 1)/((1 + e)·d²)), d = n + 2;
    # near the root (x = -1.1924) on the accurate kernel's patch
    m, s = _exp_parts(min(x, 40.0), wide)
    e = m * s
    n = e * (e + 2.0)
    d = n + 2.0
    y = (m * ((e + 2.0) / d + (x / (1.0 + e)) * (4.0 * (n + 1.0) / (d * d)))) * s
    y = _taylor_patch(x, _D_MISH_PATCH, _D_MISH_C) if _near_root(x, _D_MISH_PATCH) else y
    y = 1.0 if x > 40.0 else y  # the second term is below 2**-110 there
    y = -0.0 if x < EXP_FLOOR else y
    return x if x != x else y


@_inline
def _sigmoid(x, wide, p0, p1):
    m, s = _exp_parts(-abs(x), wide)
    e = m * s
    r = 1.0 / (1.0 + e)
    y = r if x >= 0.0 else (m * r) * s
    return x if x != x else y


@_inline
def _d_sigmoid(x, wide, p0, p1):
    # sigmoid(x)·sigmoid(-x) = e/(1+e)², e = exp(-|x|): no 1 - sigmoid cancellation
    m, s = _exp_parts(-abs(x), wide)
    r = 1.0 / (1.0 + m * s)
    y = ((m * r) * r) * s
    return x if x != x else y


@_inline
def _silu(x, wide, p0, p1):
    m, s = _exp_parts(-abs(x), wide)
    r = 1.0 / (1.0 + m * s)
    y = x * r if x >= 0.0 else ((x * m) * r) * s  # x·e**x rounded into the subnormals once
    y = -0.0 if x < EXP_FLOOR else y  # the clamped exp would leave x·exp(EXP_FLOOR) there
    return x if x != x else y


@_inline
def _d_silu(x, wide, p0, p1):
    # x >= 0: (d + x·e)/d², x < 0: e·(d + x)/d², d = 1 + e, e = exp(-|x|); near the root
    # (x = -1.2785) on the accurate kernel's patch
    m, s = _exp_parts(-abs(x), wide)
    e = m * s
    d = 1.0 + e
    r = 1.0 / d
    pos = (d + x * e) * (r * r)
    neg = ((m * (d + x)) * (r * r)) * s
    y = pos if x >= 0.0 else neg
    y = _taylor_patch(x, _D_SILU_PATCH, _D_SILU_C) if _near_root(x, _D_SILU_PATCH) else y
    y = 1.0 if x == np.inf else y
    y = -0.0 if x < EXP_FLOOR else y
    return x if x != x else y


# Divisions by 1 + |x| and by 6 bound hardsigmoid, hardswish and softsign well above the copy
# of their bytes (float64 division: one vector per ~16 cycles).  For float32 input (wide
# False) they are replaced by steps that give the same float64 value: Markstein's
# q + (s - 6q)·RN(1/6) for s/6, and for 1/d a float32 reciprocal refined in float64; checked
# over all 2**32 float32 inputs (bit-identical to the accurate kernels, tests/test_simd.py
# samples it).  float64 input keeps the division, for which these steps are not proved.
SIXTH = 1.0 / 6.0
SOFTSIGN_ONE = 2.0**25  # float32 softsign rounds to ±1 from here
D_SOFTSIGN_ZERO = 2.0**76  # float32 softsign' rounds to 0 from here
_ONE32 = np.float32(1.0)


@_inline
def _div6(s, wide):
    q = s * SIXTH
    return s / 6.0 if wide else _fma64(_fma64(-q, 6.0, s), SIXTH, q)


@_inline
def _recip_parts(d):
    """(y0, e) with 1/d = y0·(1 + e + e² + ...), y0 from a float32 division (16 lanes a
    vector) and e = 1 - d·y0 exact, |e| < 2**-23."""
    y0 = np.float64(_ONE32 / np.float32(d))
    return y0, _fma64(-y0, d, 1.0)


@_inline
def _hardsigmoid(x, wide, p0, p1):
    y = _div6(x + 3.0, wide)  # x + 3 is exact near -3 (Sterbenz)
    y = 0.0 if x <= -3.0 else y
    y = 1.0 if x >= 3.0 else y
    return x if x != x else y


@_inline
def _hardswish(x, wide, p0, p1):
    y = _div6(x * (x + 3.0), wide)
    y = 0.0 if x <= -3.0 else y
    y = x if x >= 3.0 else y
    return x if x != x or x == 0.0 else y  # Markstein's step turns -0 into +0


@_inline
def _d_hardswish(x, wide, p0, p1):
    y = _div6(2.0 * x + 3.0, wide)  # torch's x/3 + 1/2 without cancelling at the root -1.5
    y = 0.0 if x < -3.0 else y
    y = 1.0 if x > 3.0 else y
    return x if x != x else y


@_inline
def _softsign(x, wide, p0, p1):
    a = abs(x)
    d = 1.0 + a
    y0, e = _recip_parts(d)
    q0 = a * y0
    y = a / d if wide else _fma64(q0, _fma64(e, e, e), q0)
    y = 1.0 if a >= (np.inf if wide else SOFTSIGN_ONE) else y
    return np.copysign(y, x)  # NaN stays NaN


@_inline
def _d_softsign(x, wide, p0, p1):
    a = abs(x)
    d = 1.0 + a
    y0, e = _recip_parts(d)
    s = y0 * y0  # 1/d² = s·(1 + 2e + 3e² + ...)
    t = 1.0 / d  # float64: squared last, as the accurate kernel ((1 + |x|)² overflows first)
    y = t * t if wide else _fma64(s, e * _fma64(3.0, e, 2.0), s)
    y = 0.0 if not wide and a >= D_SOFTSIGN_ZERO else y
    return x if x != x else y


# The other piecewise kernels have no exp and no division: the accurate kernels' scalar
# definitions, as they are, in the vectorizing loops (their ufunc loops pass parameters as
# broadcast arrays)
_PIECEWISE = {"relu": 0, "relu6": 0, "hardtanh": 2, "leaky_relu": 1}  # name: number of parameters


def _piecewise(fn, n_params: int):
    """``fn(x, *params)`` in the loops' signature (x, wide, p0, p1)."""
    if n_params == 0:
        @_inline
        def scalar(x, wide, p0, p1):
            return fn(x)
    elif n_params == 1:
        @_inline
        def scalar(x, wide, p0, p1):
            return fn(x, p0)
    else:
        @_inline
        def scalar(x, wide, p0, p1):
            return fn(x, p0, p1)
    return scalar


# float32 kernels whose result is the input, 0 or a constant exact in float32, so that float32
# arithmetic gives the float64 path's value (a signalling NaN passes through unquieted): their
# float32 loops skip the widening to float64 (two conversions and two registers a value), which
# kept them slower than the copy of their bytes
_NATIVE32 = {"relu", "d_relu", "relu6", "d_relu6"}


@_inline
def _as_float64(x):
    return np.float64(x)


@_inline
def _as_is(x):
    return x


@_inline
def _no_mark():
    return None


def _loops(name, scalar):
    """Serial and parallel loops over 1-D contiguous arrays, for float32 (computed in float64,
    rounded once; in float32 for ``_NATIVE32``) and float64; ``p0``, ``p1`` are the activation's
    parameters (alpha, scale).  Cached on disk as ``<name>.<loop>`` (``_cache``)."""
    native = name in _NATIVE32
    widen = _as_is if native else _as_float64
    # the widened float32 loops (16 lanes, two registers a value) are left to LLVM's preferred
    # width: they are no faster marked for 512 bits, some slower
    mark = _prefer_512_bit_vectors if native else _no_mark

    @njit(error_model="numpy", fastmath={"contract"})
    def f32(x, out, p0, p1):
        for i in range(x.size):
            mark()
            out[i] = np.float32(scalar(widen(x[i]), False, p0, p1))

    @njit(error_model="numpy", parallel=True, fastmath={"contract"})
    def f32_parallel(x, out, p0, p1):
        for i in prange(x.size):
            mark()
            out[i] = np.float32(scalar(widen(x[i]), False, p0, p1))

    @njit(error_model="numpy", fastmath={"contract"})
    def f64(x, out, p0, p1):
        for i in range(x.size):
            # emits nothing; in the loop so that prange's outlined body has it too
            _prefer_512_bit_vectors()
            out[i] = scalar(x[i], True, p0, p1)

    @njit(error_model="numpy", parallel=True, fastmath={"contract"})
    def f64_parallel(x, out, p0, p1):
        for i in prange(x.size):
            _prefer_512_bit_vectors()  # as above
            out[i] = scalar(x[i], True, p0, p1)

    loops = {("float32", False): f32, ("float64", False): f64,
             ("float32", True): f32_parallel, ("float64", True): f64_parallel}
    return {key: cached(loop, f"{name}.{loop.py_func.__name__}") for key, loop in loops.items()}


_SCALARS = {
    "sigmoid": _sigmoid,
    "d_sigmoid": _d_sigmoid,
    "silu": _silu,
    "d_silu": _d_silu,
    "tanh": _tanh,
    "d_tanh": _d_tanh,
    "elu": _elu,
    "d_elu": _d_elu,
    "celu": _celu,
    "d_celu": _d_celu,
    "selu": _selu,
    "d_selu": _d_selu,
    "mish": _mish,
    "d_mish": _d_mish,
    "gelu": _gelu,
    "d_gelu": _d_gelu,
    "gelu_tanh": _gelu_tanh,
    "d_gelu_tanh": _d_gelu_tanh,
    "softplus": _softplus,
    "d_softplus": _d_softplus,
    "log_sigmoid": _log_sigmoid,
    "d_log_sigmoid": _d_log_sigmoid,
    "hardsigmoid": _hardsigmoid,
    "d_hardsigmoid": _piecewise(_accurate._s_d_hardsigmoid, 0),
    "hardswish": _hardswish,
    "d_hardswish": _d_hardswish,
    "softsign": _softsign,
    "d_softsign": _d_softsign,
    **{f"{d}{name}": _piecewise(getattr(_accurate, f"_s_{d}{name}"), n)
       for name, n in _PIECEWISE.items() for d in ("", "d_")},
}
KERNELS = {name: _loops(name, scalar) for name, scalar in _SCALARS.items()}


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``out[:] = name(x; params)`` for 1-D contiguous float32/float64 ``x`` (``inputs`` =
    ``(x,)``) and ``out``; the loops take up to two parameters, in the kernel's order."""
    (x,) = inputs
    p0, p1 = (*params.values(), 0.0, 0.0)[:2]
    parallel = x.size >= PARALLEL_MIN and numba.get_num_threads() > 1
    KERNELS[name][(x.dtype.name, parallel)](x, out, float(p0), float(p1))

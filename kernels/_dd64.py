"""Double-double building blocks for the accurate float64 kernels.

A float64 result within 1 ULP (forward) or 2 (derivatives) cannot come from libm's exp and a
few rounded operations: exp's own rounding, the sum 1 + e, the quotient and a product already
add to 2 ULP.  These helpers carry every intermediate as an unevaluated sum h + l of two
float64 (Dekker, Knuth), accurate to ~2**-58 relative, so the kernel's one visible rounding is
its last: 0.5 ULP plus a few hundredths.

- ``exp_dd(x, xl)``: exp(x + xl) = (h + l)·2**k with h + l in [0.7, 1.42]: Cody-Waite
  reduction by ln 2 as a pair, r = x - k·ln 2 as a pair, then 1 + r + r²/2 with r² exact and
  the tail r³/3! + ... + r¹⁶/16! (below 2**-68 truncated, |r| <= 0.35) in plain float64: the
  tail is < 0.007, so its roundings are below 2**-60 of the result.  The scale 2**k is applied
  by the caller, last, so that results in the subnormal range round once.
- ``expm1_dd(x)`` for x <= 0, ``log1p_dd(e)`` for 0 <= e <= 1 (2·atanh(e/(2 + e)), the series
  in s² to s³⁹), ``div_dd``, ``mul_dd``, ``sigmoid_dd``.

``llvm_call`` emits a call of an LLVM intrinsic (fma here; the float32 kernels' fma,
copysign and vector operations too): the lowest of the kernel modules, so every one can use it.
"""

import math

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cache import cached

__all__ = [
    "FDLIBM_LN2_HI",
    "FDLIBM_LN2_LO",
    "INV_LN2",
    "div_dd",
    "exp_dd",
    "expm1_dd",
    "fast_two_sum",
    "finish",
    "fma",
    "llvm_call",
    "log1p_dd",
    "mul_dd",
    "sigmoid_dd",
    "two_prod",
    "two_sum",
]


def _jit(func):
    # fastmath stated, not left unset: Numba compiles a callee whose fastmath is unset with its
    # caller's, so a fast variant's contracting loop that compiled one of these first would have
    # cached it contracted for every caller (the error-free steps and the accurate kernels too)
    return cached(njit(error_model="numpy", fastmath=False)(func))


LN2_H = float.fromhex("0x1.62e42fefa39efp-1")  # RN(ln 2)
LN2_L = float.fromhex("0x1.abc9e3b39803fp-56")  # RN(ln 2 - LN2_H)
INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
# fdlibm's split of ln 2: FDLIBM_LN2_HI has 32 significant bits, so k·FDLIBM_LN2_HI is exact
# for every |k| < 2**21 (a one-step Cody-Waite reduction keeps r's low bits)
FDLIBM_LN2_HI = float.fromhex("0x1.62e42feep-1")
FDLIBM_LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
# 1/n! for n = 3..16 and 1/(2j + 1) for j = 1..19, each correctly rounded (an int below 2**53
# divides 1.0 in one rounding)
_EXP_TAIL = tuple(1.0 / math.factorial(n) for n in range(3, 17))
_ATANH_TAIL = tuple(1.0 / (2 * j + 1) for j in range(1, 20))
# exp's argument is clamped here: below, exp(x)·2**1100 is still 0; above, it overflows
_X_MIN, _X_MAX = -1500.0, 710.0


@_jit
def two_sum(a, b):
    """s + e == a + b exactly, s = RN(a + b) (Knuth)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@_jit
def fast_two_sum(a, b):
    """s + e == a + b exactly for |a| >= |b| (Dekker)."""
    s = a + b
    return s, b - (s - a)


def llvm_call(builder, name, ret, args):
    """A call of the LLVM intrinsic ``name`` (declared once a module) returning ``ret``, its
    argument types those of ``args``: the kernels' codegen for fma, copysign and the like."""
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, [a.type for a in args]),
                                        name)
    return builder.call(fn, args)


@intrinsic
def fma(typingctx, a, b, c):
    """a·b + c rounded once (llvm.fma.f64): the error of a product, exactly, at any magnitude
    (Dekker's split overflows above 2**996)."""
    def codegen(context, builder, signature, args):
        return llvm_call(builder, "llvm.fma.f64", ir.DoubleType(), args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@intrinsic
def _pow2(typingctx, k):
    """2**k for -1022 <= k <= 1023, from its bits: ldexp is a libm call."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        bits = builder.shl(builder.add(args[0], ir.Constant(i64, 1023)), ir.Constant(i64, 52))
        return builder.bitcast(bits, ir.DoubleType())
    return types.float64(types.int64), codegen


@_jit
def scale(v, k):
    """RN(v·2**k), as math.ldexp: one multiplication where 2**k is a normal float."""
    if -1022 <= k <= 1023:
        return v * _pow2(k)
    return math.ldexp(v, k)


@_jit
def two_prod(a, b):
    """p + e == a * b exactly (unless e is below the subnormals), p = RN(a * b)."""
    p = a * b
    return p, fma(a, b, -p)


@_jit
def mul_dd(ah, al, bh, bl):
    p, e = two_prod(ah, bh)
    if p == 0.0 or abs(p) == math.inf:
        return p, 0.0  # a zero keeps its sign (-0 + 0 would be +0), an overflow is not NaN
    return fast_two_sum(p, e + (ah * bl + al * bh))


@_jit
def div_dd(ah, al, bh, bl):
    """(a_h + a_l)/(b_h + b_l) as a pair: q = a_h·(1/b_h) within an ULP or two, its residual
    exact (fma), the correction the residual times 1/b_h (one division, not two)."""
    inv = 1.0 / bh
    q = ah * inv
    if abs(q) == math.inf:
        return ah / bh, 0.0  # an overflowing quotient (its residual would be NaN)
    r = (fma(-q, bh, ah) + al) - q * bl
    return fast_two_sum(q, r * inv)


@_jit
def _tail(c, t):
    p = c[len(c) - 1]
    for k in range(len(c) - 2, -1, -1):
        p = p * t + c[k]
    return p


@_jit
def _exp_small(rh, rl):
    """exp(rh + rl) - 1 as a pair, |rh| <= 0.35."""
    qh, ql = two_prod(rh, rh)
    ah, al = two_sum(rh, 0.5 * qh)
    al += 0.5 * ql + rl * (1.0 + rh) + (qh * rh) * _tail(_EXP_TAIL, rh)
    return fast_two_sum(ah, al)


@_jit
def exp_dd(x, xl):
    """(h, l, k) with exp(x + xl) = (h + l)·2**k, h + l in [0.7, 1.42] (x not NaN; |xl| small)."""
    if x < _X_MIN or x > _X_MAX:  # clamped: the low part (possibly large, e.g. q's residual
        x, xl = min(max(x, _X_MIN), _X_MAX), 0.0  # for a huge x/alpha) no longer applies
    k = math.floor(x * INV_LN2 + 0.5)
    ph, pl = two_prod(k, LN2_H)
    rh, rl = two_sum(x, -ph)
    rh, rl = fast_two_sum(rh, (rl - pl) - k * LN2_L + xl)
    ah, al = _exp_small(rh, rl)
    h, lo = two_sum(1.0, ah)
    h, lo = fast_two_sum(h, lo + al)
    return h, lo, int(k)


_SMALLEST = 2.0**-1074
_NORMAL = 2.0**-1022


@_jit
def finish(h, lo, k):
    """RN((h + lo)·2**k), one rounding.  A normal result is h + lo rounded, then scaled
    exactly; a result below the smallest normal (before rounding: also one that rounds up to
    it) is h·2**k rounded to the subnormal grid, then moved one step where the remainder
    (h - r·2**-k) + lo passes half a step (rounding h + lo to 53 bits first would round twice:
    up to 0.75 ULP); where that remainder is exactly half a step and lo was too small to
    change it, lo's sign decides the tie.  A zero takes h's sign (-0 + 0 is +0)."""
    if k == 0:
        y = h + lo
    else:
        y = scale(h + lo, k)
    if abs(y) > _NORMAL or y != y or lo == 0.0:
        return math.copysign(y, h)
    r = scale(h, k)
    step = math.ldexp(_SMALLEST, -k)  # one subnormal ULP at h's scale
    half = 0.5 * step
    d = h - scale(r, -k)  # exact: at most half a step
    rest = d + lo
    steps = r / _SMALLEST  # an integer: r is on the grid
    odd = steps - 2.0 * math.floor(0.5 * steps) != 0.0
    if rest == d and abs(d) == half:  # lo absorbed into a tie: below it, it still decides
        odd = lo * d > 0.0
    if rest > half or (rest == half and odd):
        r += _SMALLEST
    elif rest < -half or (rest == -half and odd):
        r -= _SMALLEST
    return math.copysign(r, h)


@_jit
def expm1_dd(x):
    """expm1(x) for x <= 0 as a pair."""
    if x > -0.34:
        return _exp_small(x, 0.0)
    h, lo, k = exp_dd(x, 0.0)
    s, e = two_sum(-1.0, scale(h, k))  # the pair scaled exactly unless e**x < 2**-1022,
    return fast_two_sum(s, e + scale(lo, k))  # where expm1 is -1 to 2**-1000


@_jit
def log1p_dd(eh, el):
    """log1p(e) for 0 <= e = eh + el <= 1 as a pair: 2·atanh(s), s = e/(2 + e) <= 1/3."""
    dh, dl = two_sum(2.0, eh)
    sh, sl = div_dd(eh, el, dh, dl + el)
    s2 = sh * sh
    h, lo = fast_two_sum(sh, sl + sh * s2 * _tail(_ATANH_TAIL, s2))
    return 2.0 * h, 2.0 * lo


@_jit
def sigmoid_dd(x, xl):
    """(h, l, k, nh, nl) with sigmoid(x + xl) = (h + l)·2**k and sigmoid(-(x + xl)) = nh + nl
    (the latter unscaled, for the derivatives' products), x not NaN."""
    if x >= 0.0:
        eh, el, k = exp_dd(-x, -xl)
        eh, el = scale(eh, k), scale(el, k)
        dh, dl = two_sum(1.0, eh)
        dl += el
        qh, ql = div_dd(1.0, 0.0, dh, dl)
        nh, nl = mul_dd(eh, el, qh, ql)
        return qh, ql, 0, nh, nl
    eh, el, k = exp_dd(x, xl)
    dh, dl = two_sum(1.0, scale(eh, k))
    dl += scale(el, k)
    qh, ql = div_dd(eh, el, dh, dl)
    nh, nl = div_dd(1.0, 0.0, dh, dl)
    return qh, ql, k, nh, nl

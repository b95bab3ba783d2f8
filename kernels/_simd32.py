"""SIMD kernels in float32 arithmetic: 16 lanes a 512-bit vector, for float32 input only.

``_simd`` computes float32 input in float64 and rounds once: 8 lanes a vector, and the loops
are bound by instruction count, not memory.  These compute in float32 and keep each result
within the float32 budgets (forward <= 1 ULP, derivatives <= 2) with error-free
transformations instead of wider arithmetic:

- exp(a), a <= 0: Cody-Waite a = n·ln 2 + r, n read from the bits of a/ln 2 + 1.5·2**23 (the
  shifter), exp(r) = 1 + r + r²·q(r) summed error-free into a pair eh + el (the forward
  kernels; the derivatives and tanh round r + r²·q once and then split 1 + p exactly);
  2**n is built from its bits (int32 inside an intrinsic: Numba widens int32 arithmetic to
  int64, which halves the lanes) and, where the result may be subnormal, the pair is scaled
  (2**(n + 90) below a = -40, or two factors in the derivatives) and the factor that reaches
  the subnormals applied last, so that product rounds once and no operation before it sees a
  subnormal operand (Intel microcodes those: one such lane slows the whole vector 10-20x);
  lanes whose result is a constant compute on a clamped input for the same reason;
- 1/(1 + e): d = 1 + e = dh + dl exactly, y0 = 1/dh (vdivps), and the residual
  1 - y0·(dh + dl) from fused multiply-adds (``_fma``, llvm.fma.f32: exact products) corrects
  y0 to first order; e/(1 + e) likewise;
- tanh: x + x·w·P(w), w = x², for |x| < 0.55; above, (1 - e)/(1 + e), e = exp(-2|x|), with
  numerator and denominator as exact pairs (on CPUs with AVX-512F ``_simd32_table``'s
  table-driven tanh takes its place in ``KERNELS``; ``ARITHMETIC_TANH`` keeps this one);
  silu' near its root x0 = -1.27846: t·G(t), t = x - x0 with x0 carried as two float32;
- gelu (erf form): Phi(-|x|) = exp(-x²/2)·K(u)/(|x| + 2), u = 4/(|x| + 2) - 1, with x² as an
  exact pair in exp's argument and every factor a float32 pair, so that only the last step
  rounds visibly; gelu' near its root x0 = -0.75179 on t·G(t) as silu';
- softsign: 1 + |x| as an exact pair, x·(1/(1 + |x|)) and (1/(1 + |x|))² corrected by the
  fused residual of the one vdivps.

q, P and G come from ``reference/polyfit.py`` (``fit_exp_float32``, ``fit_tanh_float32``,
``fit_d_silu_root_float32``: mpmath chebyfit, coefficients rounded to float32 and the error
bound taken with them rounded); ``tests/test_simd.py`` re-derives them.  Every constant is an
``np.float32`` (a Python float is typed float64 and would widen the loop); the IR test checks
for ``<16 x float>`` and no ``double``.  Measured over all 2**32 float32 inputs against the
float64 kernels (exact to ~2**-28 of a float32 ULP): sigmoid 0.832 ULP, silu 0.909, tanh
0.763, gelu 0.779, softsign 0.5, sigmoid' 1.06, silu' 1.35, tanh' 1.06, gelu' 1.06, softsign'
1.0; special values exact,
no flush to zero.  The
audit measures them against mpmath like every kernel (``bench/core/budgets.toml``).
"""

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import _simd32_table
from ._cache import cached
from ._dd64 import llvm_call
from ._simd import PARALLEL_MIN, _inline, _prefer_512_bit_vectors, _two_sum

__all__ = ["ARITHMETIC_TANH", "D_GELU_G", "D_GELU_ROOT", "D_SILU_G", "D_SILU_ROOT", "EXP_Q",
           "GELU_EXP_Q", "GELU_K", "KERNELS", "PHI0", "TANH_P", "run"]

# reference/polyfit.py, rounded to float32 there: q of degree 4 (exp to 1.09e-8 on |r| <=
# 1.01·ln2/2), P of degree 5 (tanh to 3.95e-9 on |x| <= 0.55), silu''s root x0h + x0l and G of
# degree 5 (9.7e-9 on |t| <= 1/16)
EXP_Q = (float.fromhex("0x1.6d1606p-10"), float.fromhex("0x1.12106cp-7"),
         float.fromhex("0x1.555516p-5"), float.fromhex("0x1.5554d8p-3"), float.fromhex("0x1p-1"))
TANH_P = (float.fromhex("0x1.4b239ap-9"), float.fromhex("-0x1.176410p-7"),
          float.fromhex("0x1.657936p-6"), float.fromhex("-0x1.ba142ep-5"),
          float.fromhex("0x1.111104p-3"), float.fromhex("-0x1.555556p-2"))
D_SILU_ROOT = (float.fromhex("-0x1.474974p+0"), float.fromhex("0x1.bdf6fap-27"))
D_SILU_G = (float.fromhex("0x1.0bcf48p-13"), float.fromhex("-0x1.b0a9b2p-8"),
            float.fromhex("-0x1.f2d0e6p-7"), float.fromhex("0x1.353eaep-6"),
            float.fromhex("0x1.2c5634p-3"), float.fromhex("0x1.be1410p-3"))

# gelu (reference/polyfit.py, float32 there): exp's q of degree 5 (8.1e-10); Phi(-a) =
# exp(-a²/2)·K(u)/(a + 2), u = 4/(a + 2) - 1, K of degree 12 with k1 and k0 as float32 pairs
# (2.9e-9 for a <= 14.75); the root of gelu' as x0h + x0l and G of degree 3, g0 as a pair
# (4.3e-9 on |t| <= 1/32)
GELU_EXP_Q = (
    float.fromhex("0x1.a12a42p-13"), float.fromhex("0x1.6d492p-10"), float.fromhex("0x1.1110ep-7"),
    float.fromhex("0x1.5554e4p-5"), float.fromhex("0x1.555556p-3"), float.fromhex("0x1.0p-1"),
)
GELU_K = (
    float.fromhex("-0x1.64b3d6p-16"), float.fromhex("0x1.8dd0b6p-14"), float.fromhex("-0x1.ee083p-14"),
    float.fromhex("-0x1.7f635cp-13"), float.fromhex("0x1.ade434p-11"), float.fromhex("-0x1.9f682p-11"),
    float.fromhex("-0x1.fe939ep-10"), float.fromhex("0x1.b8c82cp-8"), float.fromhex("-0x1.ed001ep-12"),
    float.fromhex("-0x1.2ccc0cp-5"), float.fromhex("0x1.d7d104p-6"), float.fromhex("0x1.535bbp-2"),
    float.fromhex("-0x1.7828c8p-28"), float.fromhex("0x1.5845dcp-1"), float.fromhex("0x1.55af94p-26"),
)
D_GELU_ROOT = (float.fromhex("-0x1.80ead2p-1"), float.fromhex("0x1.a03fd4p-27"))
D_GELU_G = (
    float.fromhex("-0x1.d2e66ap-4"), float.fromhex("-0x1.2a6b76p-6"), float.fromhex("0x1.8d9a94p-2"),
    float.fromhex("0x1.b9d99p-2"), float.fromhex("-0x1.e0f548p-29"),
)

F = np.float32
ZERO, NZERO, ONE, TWO, FOUR = F(0.0), F(-0.0), F(1.0), F(2.0), F(4.0)
Q = tuple(F(c) for c in EXP_Q)
P5, P4, P3, P2, P1, P0 = (F(c) for c in TANH_P)
G5, G4, G3, G2, G1, G0 = (F(c) for c in D_SILU_G)
X0H, X0L = (F(c) for c in D_SILU_ROOT)
D_SILU_PATCH = F(1 / 16)
TANH_SMALL = F(0.55)
INV_LN2 = F(float.fromhex("0x1.715476p+0"))
# ln 2 = LN2_HI + LN2_LO to 5e-14: LN2_HI has 16 significant bits, so n·LN2_HI is exact for
# |n| < 2**8 (the kernels' n stay above -160)
LN2_HI = F(float.fromhex("0x1.62e4p-1"))
LN2_LO = F(float.fromhex("0x1.7f7d1cp-20"))
SHIFT = F(float.fromhex("0x1.8p+23"))  # a/ln2 + 1.5·2**23 holds n in its low mantissa bits
# exp's argument is clamped here: exp(-110) = 2**-158.7 rounds to 0 even as a subnormal, and
# n >= -159 still splits into two normal factors
A_MIN = F(-110.0)
A_MIN_TANH = F(-80.0)  # tanh needs no subnormal e: 1 ± e rounds to 1 long before
# Below SUB_A exp's pair is formed as (eh + el)·2**(n + OFFSET) and scaled by SUB_SCALE =
# 2**-OFFSET last, so that no operation before a result's last product sees a subnormal
# operand (Intel microcodes those: a vector with one such lane runs 10-20x slower) and a
# subnormal result rounds once.  el reaches ~2**-48·eh, so eh·2**(n + OFFSET) should stay
# above 2**-78: with OFFSET = 90, A_MIN = -110 (n >= -159) gives eh >= 2**-69, and gelu_tanh's
# arguments (down to -112.5, n >= -163) eh >= 2**-73; n + OFFSET <= 33 at a = SUB_A.  Above
# SUB_A, e >= 2**-58 and el >= 2**-106: normal.
SUB_A = F(-40.0)
OFFSET = F(90.0)
SUB_SCALE = F(2.0**-90)
PHI0 = (float.fromhex("0x1.988454p-2"), float.fromhex("-0x1.857936p-27"))  # 1/sqrt(2pi), a pair
GELU_Q = tuple(F(c) for c in GELU_EXP_Q)
GELU_K_HI = tuple(F(c) for c in GELU_K[:-4])  # K's coefficients k12 .. k2
K1H, K1L, K0H, K0L = (F(c) for c in GELU_K[-4:])
GELU_ROOT_H, GELU_ROOT_L = (F(c) for c in D_GELU_ROOT)
D_GELU_G_HI = tuple(F(c) for c in D_GELU_G[:-2])
GELU_G0H, GELU_G0L = (F(c) for c in D_GELU_G[-2:])
PHI0H, PHI0L = (F(c) for c in PHI0)
HALF = F(0.5)
GELU_C = F(2.0)  # v = 1/(a + 2)
GELU_ROOT_R = F(1 / 32)
# below -GELU_XMAX gelu and gelu' are -0 (they round to -0 from x ~ -14.35 and ~ -14.55; exp's
# clamp at -110 is reached at |x| = 14.83); above GELU_POS_BIG Phi(-x) < 2**-50: x and 1
GELU_XMAX = F(14.75)
GELU_POS_BIG = F(8.0)
SIG_BIG = F(30.0)
SILU_BIG = F(20.0)  # silu(x) = x·(1 - e**-x) rounds to x beyond 18.02
D_SILU_BIG = F(30.0)  # silu'(x) rounds to 1 beyond ~20.5


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c rounded once (llvm.fma.f32): the products of the error-free steps are exact."""
    def codegen(context, builder, signature, args):
        return llvm_call(builder, "llvm.fma.f32", ir.FloatType(), args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@intrinsic
def _copysign(typingctx, a, b):
    def codegen(context, builder, signature, args):
        return llvm_call(builder, "llvm.copysign.f32", ir.FloatType(), args)
    return types.float32(types.float32, types.float32), codegen


def _pow2_codegen(part):
    """2**n, 2**(n >> 1) or 2**(n - (n >> 1)) from t = n + 1.5·2**23, all in int32."""
    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        n = builder.sub(builder.bitcast(args[0], i32), ir.Constant(i32, 0x4B400000))
        if part == "hi":
            n = builder.ashr(n, ir.Constant(i32, 1))
        elif part == "lo":
            n = builder.sub(n, builder.ashr(n, ir.Constant(i32, 1)))
        bits = builder.shl(builder.add(n, ir.Constant(i32, 127)), ir.Constant(i32, 23))
        return builder.bitcast(bits, ir.FloatType())
    return codegen


@intrinsic
def _pow2(typingctx, t):
    return types.float32(types.float32), _pow2_codegen("all")


@intrinsic
def _pow2_hi(typingctx, t):
    return types.float32(types.float32), _pow2_codegen("hi")


@intrinsic
def _pow2_lo(typingctx, t):
    return types.float32(types.float32), _pow2_codegen("lo")


@_inline
def _reduce(a, inv_step, step_hi, step_lo):
    """(r, t): a = n·step + r with r rounded once (n·step_hi exact), n in the bits of the
    shifter t = a/step + 1.5·2**23."""
    t = _fma(a, inv_step, SHIFT)
    n = t - SHIFT
    return _fma(-n, step_lo, _fma(-n, step_hi, a)), t


@_inline
def _exp_reduced(a):
    """``_reduce`` by ln 2, for exp(a)."""
    return _reduce(a, INV_LN2, LN2_HI, LN2_LO)


@_inline
def _horner(c, t):
    p = c[0]
    for k in range(1, len(c)):
        p = p * t + c[k]
    return p


@_inline
def _fma_horner(c, t, last):
    """(...(c[0]·t + c[1])·t + ...)·t + last, each step fused."""
    p = c[0]
    for k in range(1, len(c)):
        p = _fma(p, t, c[k])
    return _fma(p, t, last)


@_inline
def _exp_pair(a):
    """exp(a) = (eh + el)·s2 for a <= 0 (clamped by the caller; NaN propagates): 1 + r +
    r²·q(r) summed error-free (|r| < 1, so 1 + r's error is exact), times 2**n' (eh exact),
    with s2 = SUB_SCALE and n' = n + OFFSET below SUB_A, else 1."""
    r, t = _exp_reduced(a)
    c = r * r * _horner(Q, r)
    u = ONE + r
    v = c + ((ONE - u) + r)
    eh = u + v
    el = (u - eh) + v
    sub = a < SUB_A
    s = _pow2(t + OFFSET if sub else t)
    return eh * s, el * s, SUB_SCALE if sub else ONE


@_inline
def _exp_pair_lite(a):
    """exp(a) = (eh + el)·2**n, n in t's bits: p = r + r²·q(r) rounded, 1 + p split exactly."""
    r, t = _exp_reduced(a)
    p = _fma(r * r, _horner(Q, r), r)
    eh = ONE + p
    return eh, (ONE - eh) + p, t


@_inline
def _logistic(x):
    """(y0, rl, eh, el, s2) with e = exp(-|x|) = (eh + el)·s2: 1/(1 + e) = y0 + rl (to first
    order in the residual) for sigmoid(|x|), and e/(1 + e) from the same parts.  x is taken at
    most SIG_BIG: sigmoid rounds to 1 beyond 17.33, and so the lanes that use y0 + rl form no
    underflowing e in the other branch (a select of the factor s2 would not do: LLVM may fold
    x·select(c, 1, s2) into select(c, x, x·s2) and form the product in every lane)."""
    a = -abs(SIG_BIG if x > SIG_BIG else x)
    a = A_MIN if a < A_MIN else a  # the comparisons keep a NaN a
    eh, el, s2 = _exp_pair(a)
    ss = ZERO if a < SUB_A else ONE  # e < 2**-57 leaves 1/(1 + e) at 1 (and e·s2 may be subnormal)
    e = eh * ss
    dh = ONE + e
    dl = _fma(el, ss, e - (dh - ONE))
    y0 = ONE / dh
    rl = y0 * _fma(-y0, dl, _fma(-y0, dh, ONE))
    return y0, rl, eh, el, s2


@_inline
def _logistic_lite(a):
    """As ``_logistic`` for exp(a), a <= 0 (from ``_exp_pair_lite``, 2**n as two normal
    factors): (y0, rl, q0, ql, s2) with 1/(1 + e) = y0 + rl and e/(1 + e) = (q0 + ql)·s2."""
    eh0, el0, t = _exp_pair_lite(max(a, A_MIN))
    s1 = _pow2_hi(t)
    s2 = _pow2_lo(t)
    eh = eh0 * s1
    el = el0 * s1
    ss = ZERO if a < SUB_A else s2  # as in ``_logistic``: no subnormal e in 1 + e
    e = eh * ss
    dh = ONE + e
    dl = _fma(el, ss, e - (dh - ONE))
    y0 = ONE / dh
    rl = y0 * _fma(-y0, dl, _fma(-y0, dh, ONE))
    q0 = eh * y0
    ql = y0 * _fma(-q0, dl, _fma(-q0, dh, eh) + el)
    return y0, rl, q0, ql, s2


@_inline
def _sigmoid(x):
    y0, rl, eh, el, s2 = _logistic(x)
    neg = _fma(eh, y0, _fma(el, y0, eh * rl)) * s2
    return y0 + rl if x >= ZERO else neg  # NaN: neg is NaN


@_inline
def _silu(x):
    y0, rl, eh, el, s2 = _logistic(x)
    pos = _fma(x, y0, x * rl)
    xe = x * eh
    xl = _fma(x, eh, -xe)  # x·eh's rounding error, exact
    neg = _fma(xe, y0, _fma(xe, rl, _fma(x * el + xl, y0, ZERO))) * s2
    y = pos if x >= ZERO else neg
    y = x if x > SILU_BIG else y  # also keeps inf·0 out
    y = NZERO if x < A_MIN else y  # |x|·e**x < 2**-152: -0 (and silu(-inf) = -0)
    return x if x == ZERO else y  # silu(±0) = ±0


@_inline
def _d_sigmoid(x):
    # e/(1 + e)² = (q0 + ql)·(y0 + rl)·s2
    y0, rl, q0, ql, s2 = _logistic_lite(-abs(x))
    y = _fma(q0, y0, _fma(q0, rl, ql * y0)) * s2
    return x if x != x else y


@_inline
def _d_silu(x):
    # the formula on xc: x, or 0 where the result is a constant (no underflowing lane)
    xc = ZERO if (x > D_SILU_BIG or x < A_MIN) else x
    y0, rl, q0, ql, s2 = _logistic_lite(-abs(xc))
    # x >= 0: (1 + x·e/d)/d, with 1 + w = wh + wl exactly
    w = (max(xc, ZERO) * q0) * s2  # s2 exact: the same bits; no subnormal q0·s2 below -87
    wh = ONE + w
    wl = (ONE - wh) + w
    pos = _fma(y0, wh, _fma(y0, wl, rl * wh))
    # x < 0: (e/d)·(1 + x/d), 1 + x/d = vh + vl (two-sum: it cancels at the root)
    ph = xc * y0
    pl = _fma(xc, y0, -ph) + xc * rl
    vh = ONE + ph
    bb = vh - ONE
    vl = ((ONE - (vh - bb)) + (ph - bb)) + pl
    neg = _fma(q0, vh, _fma(q0, vl, ql * vh)) * s2
    y = pos if xc >= ZERO else neg
    # near the root: t·G(t), t = (x - X0H) - X0L with x - X0H exact there; G0·t as
    # G0·th + G0·(-X0L) inside the fused steps, so that only the last sum rounds visibly
    th = xc - X0H
    t = th - X0L
    h = (((G5 * t + G4) * t + G3) * t + G2) * t + G1
    patch = _fma(th, G0, _fma(-X0L, G0, (t * t) * h))
    y = patch if abs(t) < D_SILU_PATCH else y
    y = ONE if x > D_SILU_BIG else y
    y = NZERO if x < A_MIN else y
    return x if x != x else y


@_inline
def _tanh(x):
    ax = abs(x)
    w = ax * ax
    p = ((((P5 * w + P4) * w + P3) * w + P2) * w + P1) * w + P0
    small = _fma(ax, w * p, ax)
    # (1 - e)/(1 + e), e = exp(-2|x|): numerator and denominator as exact pairs
    eh0, el0, t = _exp_pair_lite(max(-TWO * ax, A_MIN_TANH))
    s = _pow2(t)
    eh = eh0 * s
    el = el0 * s
    nh = ONE - eh
    nl = ((ONE - nh) - eh) - el
    dh = ONE + eh
    dl = (eh - (dh - ONE)) + el
    y0 = ONE / dh
    qh = nh * y0
    large = _fma(y0, _fma(-qh, dl, _fma(-qh, dh, nh) + nl), qh)
    y = _copysign(small if ax < TANH_SMALL else large, x)
    return x if x != x else y


@_inline
def _d_tanh(x):
    # sech² = 4e/(1 + e)², e = exp(-2|x|)
    y0, rl, q0, ql, s2 = _logistic_lite(-TWO * abs(x))
    y = (FOUR * _fma(q0, y0, _fma(q0, rl, ql * y0))) * s2
    return x if x != x else y


@_inline
def _exp_dd(a, al):
    """exp(a + al) = (eh + el)·s2 for a in [A_MIN, 0], |al| <= ulp(a): r's rounding error and al
    in the low part, 1 + r + r²·q(r) (q of degree 5) summed error-free, s2 as in ``_exp_pair``."""
    t = a * INV_LN2 + SHIFT
    n = t - SHIFT
    r1 = _fma(-n, LN2_HI, a)  # exact
    r = _fma(-n, LN2_LO, r1)
    rl = _fma(-n, LN2_LO, r1 - r) + al
    c = r * r * _horner(GELU_Q, r)
    u = ONE + r
    v = c + ((ONE - u) + r)
    eh = u + v
    el = _fma(eh, rl, (u - eh) + v)  # exp(r + rl) = exp(r)·(1 + rl)
    sub = a < SUB_A
    s = _pow2(t + OFFSET if sub else t)
    return eh * s, el * s, SUB_SCALE if sub else ONE


@_inline
def _phi_tail(a):
    """(gh, gl, eh, el, s2) for a >= 0: Phi(-a) = (gh + gl)·s2 and exp(-a²/2) = (eh + el)·s2,
    each factor a float32 pair so that only the caller's last step rounds visibly: a² = p + pe
    exactly; v = 1/(a + 2) = y0 + vl with a + 2 split exactly (2 - th is exact); u = 4v - 1 =
    uh + ul (4·y0 exact; K is steep near u = 1, where u rounded alone cost 0.25 ULP of gelu),
    ul entering as K'(u)·ul; K by Horner, its last two steps as exact products and two-sums
    with k1, k0 as pairs."""
    p = a * a
    pe = _fma(a, a, -p)
    eh, el, s2 = _exp_dd(max(-HALF * p, A_MIN), -HALF * pe)
    th = a + GELU_C
    tl = (GELU_C - th) + a
    y0 = ONE / th
    vl = y0 * _fma(-y0, tl, _fma(-y0, th, ONE))
    y4 = FOUR * y0
    u = y4 - ONE
    ul = _fma(FOUR, vl, (-ONE - u) + y4)
    r2 = _horner(GELU_K_HI, u)
    p2 = u * r2
    r1h = K1H + p2
    r1l = ((K1H - r1h) + p2) + (_fma(u, r2, -p2) + K1L)
    p1 = u * r1h
    kh = K0H + p1
    kl = ((K0H - kh) + p1) + (_fma(u, r1h, -p1) + _fma(u, r1l, _fma(r1h + p2, ul, K0L)))
    ah = eh * y0
    al = _fma(eh, y0, -ah) + _fma(eh, vl, el * y0)
    gh = ah * kh
    gl = _fma(ah, kh, -gh) + _fma(ah, kl, al * kh)
    return gh, gl, eh, el, s2


@_inline
def _tail_arg(x):
    """|x|, or 1 where the result is a constant (x above GELU_POS_BIG, below -GELU_XMAX): those
    lanes would otherwise compute tails that underflow, and one subnormal lane slows the
    whole vector."""
    return ONE if (x > GELU_POS_BIG or x < -GELU_XMAX) else abs(x)


@_inline
def _gelu(x):
    # x·Phi(x): x·(gh + gl)·s2 below 0, x·(1 - G) above with 1 - gh split exactly
    gh, gl, _, _, s2 = _phi_tail(_tail_arg(x))
    neg = _fma(x, gh, x * gl) * s2
    hh = ONE - gh  # s2 = 1 for x <= GELU_POS_BIG
    hl = ((ONE - hh) - gh) - gl
    pos = _fma(x, hh, x * hl)
    y = neg if x < ZERO else pos  # NaN: pos is NaN
    y = x if x > GELU_POS_BIG else y
    y = ZERO if x < -GELU_XMAX else y
    return _copysign(y, x)  # gelu(-0) = -0 (pos may be +0 there)


@_inline
def _d_gelu_pair(x):
    """(yh, yl, s) with gelu'(x) = (yh + yl)·s: Phi(x) + x·phi(x) as G - H below 0 and
    1 + (H - G) above, H = a·phi(a) as a pair; near the root t·G(t), t = (x - x0h) - x0l with
    x - x0h exact there.  A pair, so that a·gelu'(b) rounds once (``_gated_fast``)."""
    a = _tail_arg(x)
    gh, gl, eh, el, s2 = _phi_tail(a)
    ch = a * PHI0H
    cl = _fma(a, PHI0H, -ch) + a * PHI0L
    hh = ch * eh
    hl = _fma(ch, eh, -hh) + _fma(ch, el, cl * eh)
    dh = gh - hh
    bb = dh - gh
    dl = ((gh - (dh - bb)) + (-hh - bb)) + (gl - hl)
    rest = (hh - gh) + (hl - gl)
    ph = ONE + rest
    pl = (ONE - ph) + rest
    neg = x < ZERO
    yh = dh if neg else ph
    yl = dl if neg else pl
    s = s2 if neg else ONE
    t1 = x - GELU_ROOT_H
    t = t1 - GELU_ROOT_L
    h = _horner(D_GELU_G_HI, t)
    patch = _fma(t1, GELU_G0H, _fma(t1, t * h, _fma(t1, GELU_G0L, -GELU_ROOT_L * GELU_G0H)))
    near_root = abs(t) < GELU_ROOT_R
    yh = patch if near_root else yh
    yl = NZERO if near_root else yl  # -0: yh + yl is yh, whatever yh's sign (+0 would make -0 +0)
    s = ONE if near_root else s
    yh = ONE if x > GELU_POS_BIG else yh
    yh = NZERO if x < -GELU_XMAX else yh
    flat = x > GELU_POS_BIG or x < -GELU_XMAX
    return yh, NZERO if flat else yl, ONE if flat else s


@_inline
def _d_gelu(x):
    yh, yl, s = _d_gelu_pair(x)
    return (yh + yl) * s


# softsign: beyond 2**26 x/(1 + |x|) rounds to ±1; beyond 2**76 the derivative rounds to 0.
# The clamps keep 1/(1 + |x|) normal and give ±inf its limits (the derivative's correction
# term 2·rh·rl is subnormal beyond 2**52, where the result is below 2**-104)
SOFTSIGN_BIG = F(2.0**26)
D_SOFTSIGN_BIG = F(2.0**76)


@_inline
def _inverse_pair(a):
    """1/(1 + a) = (rh + rl) to ~2**-46 for a >= 0: 1 + a = dh + dl exactly (two-sum), rh =
    1/dh (vdivps), rl its first-order correction from the fused residual."""
    dh, dl = _two_sum(ONE, a)
    rh = ONE / dh
    return rh, rh * (_fma(-rh, dh, ONE) - rh * dl), dh, dl


@_inline
def _softsign(x):
    # x·(rh + rl) with q = x·rh's residual x - q·(dh + dl) folded back by one fused step
    xc = SOFTSIGN_BIG if x > SOFTSIGN_BIG else x
    xc = -SOFTSIGN_BIG if xc < -SOFTSIGN_BIG else xc  # NaN passes
    rh, _, dh, dl = _inverse_pair(abs(xc))
    q = xc * rh
    return _copysign(_fma(_fma(-q, dh, xc) - q * dl, rh, q), x)  # -0 -> -0 (the sum gives +0)


@_inline
def _d_softsign(x):
    # (rh + rl)² = rh² + 2·rh·rl, rh² as an exact pair
    a = abs(x)
    a = D_SOFTSIGN_BIG if a > D_SOFTSIGN_BIG else a  # NaN passes
    rh, rl, _, _ = _inverse_pair(a)
    sq = rh * rh
    return sq + (_fma(rh, rh, -sq) + TWO * rh * rl)


# --- the fast variant: speed first, within a looser budget --------------------------------------
# One rounded exp and one division per element, no correction steps: at the copy roofline,
# 27-45 instructions per 16 elements against 48-90 above.  Measured over all 2**32 inputs:
# sigmoid 1.96 ULP, silu 1.97, tanh 2.19, sigmoid' 2.38, silu' 3.89, tanh' 2.38 (budgets and
# reasons in bench/core/budgets.toml).  exp's q is EXP_Q (and GELU_EXP_Q for tanh) with its powers
# of 2 and signs folded in exactly: exp(2r) = 1 + r·P(r), P = 2 + r·sum(q_k·2**(k+2)·r**k), and
# exp(-r) likewise with (-1)**k; silu''s root patch is ``fit_d_silu_root_float32(4, 0.1875)``.
FAST_D_SILU_G = (
    float.fromhex("-0x1.aeac8p-8"), float.fromhex("-0x1.f29fdp-7"), float.fromhex("0x1.353d6cp-6"),
    float.fromhex("0x1.2c562ep-3"), float.fromhex("0x1.be141p-3"),
)
FAST_Q2 = tuple(F(c * 2.0 ** (len(EXP_Q) + 1 - k)) for k, c in enumerate(EXP_Q))
FAST_Q2_5 = tuple(F(c * 2.0 ** (len(GELU_EXP_Q) + 1 - k)) for k, c in enumerate(GELU_EXP_Q))
FAST_QN = tuple(F(c * (-1) ** (len(EXP_Q) - 1 - k)) for k, c in enumerate(EXP_Q))
FAST_G = tuple(F(c) for c in FAST_D_SILU_G)
FAST_K = 64  # results scaled by 2**-64 last: one rounding into the subnormals
TWO_MK = F(2.0**-FAST_K)
FOUR_TWO_MK = F(2.0 ** (2 - FAST_K))
NEG_ONE, HALF_, SIXTEENTH = F(-1.0), F(0.5), F(1 / 16)
NEG_INV_LN2 = F(-float.fromhex("0x1.715476p+0"))
TWO_INV_LN2 = F(float.fromhex("0x1.715476p+1"))
HLN2_HI, HLN2_LO = F(float.fromhex("0x1.62e4p-2")), F(float.fromhex("0x1.7f7d1cp-21"))  # ln2/2
HLN2 = F(float.fromhex("0x1.62e43p-2"))  # ln 2/2 rounded: its error times n is damped by e/(1+e)
FAST_A_MIN_TANH = F(-10.0)  # tanh(10) rounds to 1
FAST_A_MIN_DTANH = F(-55.0)  # 4·exp(-110) rounds to 0
FAST_X_HI = F(40.0)  # sigmoid, silu: 1 + exp(-x) rounds to 1 above (2**(n-64) stays normal)
FAST_N_BIG = F(23.5)  # n >= 24: 2**(n-64) + 2**-64 rounds to 2**(n-64) (n = 24: a tie)
FAST_N_24 = F(24.0)
TWO_M24 = F(2.0**-24)
FAST_D_SILU_PATCH = F(0.1875)


def _pow2_offset_codegen(offset):
    """2**(n + offset) for t = n + 1.5·2**23: (bits(t) << 23) + ((127 + offset) << 23), the
    shifter's own bits vanishing mod 2**32; valid while n + offset is a normal exponent."""
    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        bits = builder.shl(builder.bitcast(args[0], i32), ir.Constant(i32, 23))
        bits = builder.add(bits, ir.Constant(i32, ((127 + offset) << 23) & 0xFFFFFFFF))
        return builder.bitcast(bits, ir.FloatType())
    return codegen


@intrinsic
def _pow2_up(typingctx, t):
    """2**(n + 64)."""
    return types.float32(types.float32), _pow2_offset_codegen(FAST_K)


@intrinsic
def _pow2_down(typingctx, t):
    """2**(n - 64)."""
    return types.float32(types.float32), _pow2_offset_codegen(-FAST_K)


@_inline
def _neg_abs_clamped(x, lo):
    a = -abs(x)
    return lo if a < lo else a  # keeps a NaN a


@_inline
def _fast_exp_up(a):
    """exp(a)·2**64, one rounding, for A_MIN <= a <= 0."""
    r, t = _exp_reduced(a)
    return _fma(_fma_horner(Q, r, ONE), r, ONE) * _pow2_up(t)


@_inline
def _fast_exp2_up(a):
    """exp(2a)·2**64, a <= 0 (r = a - n·ln2/2; the 2 is in FAST_Q2)."""
    r, t = _reduce(a, TWO_INV_LN2, HLN2_HI, HLN2_LO)
    return _fma(_fma_horner(FAST_Q2, r, TWO), r, ONE) * _pow2_up(t)


@_inline
def _fast_den(x):
    """(den, xc, n, r): den = (1 + exp(-x))·2**-64 rounded once, xc = x clamped to [A_MIN,
    FAST_X_HI] (NaN passes); exp(-x) = 2**n·exp(-r), S = 2**(n - 64), S + 2**-64 exact for
    |n| <= 23."""
    xc = FAST_X_HI if x > FAST_X_HI else x
    xc = A_MIN if xc < A_MIN else xc
    t = _fma(xc, NEG_INV_LN2, SHIFT)
    n = t - SHIFT
    r = _fma(n, LN2_LO, _fma(n, LN2_HI, xc))
    s = _pow2_down(t)
    return _fma(s * r, _fma_horner(FAST_QN, r, NEG_ONE), s + TWO_MK), xc, n, r


@_inline
def _fast_sigmoid(x):
    den, _, n, _ = _fast_den(x)
    y0 = TWO_MK / den  # one rounding, into the subnormals too
    return _fma(-y0, y0, y0) if n > FAST_N_BIG else y0  # n >= 24: y0 = e**x, e/(1 + e) = e - e²


@_inline
def _fast_silu(x):
    # (xc/den)·2**-64; at n = 24 (the tie) the 1 lost from 1 + e is put back, v - v·e**x
    den, xc, n, r = _fast_den(x)
    v = (xc / den) * TWO_MK
    y = _fma(-v, _fma(TWO_M24, r, TWO_M24), v) if n == FAST_N_24 else v
    return x if x > FAST_X_HI else y  # silu(±0) = ±0; silu(-inf) = -110·tiny = -0


@_inline
def _fast_tanh(x):
    # expm1(-2|x|)/(expm1(-2|x|) + 2), each formed with one rounding (S - 1 exact)
    a = _neg_abs_clamped(x, FAST_A_MIN_TANH)
    t = _fma(a, TWO_INV_LN2, SHIFT)
    n = t - SHIFT
    r = _fma(-n, HLN2, a)
    p = _fma(_fma_horner(FAST_Q2_5[:5], r, FAST_Q2_5[5]), r, TWO)
    s = _pow2(t)
    sr = s * r
    return _copysign(_fma(sr, p, s - ONE) / _fma(sr, p, s + ONE), x)  # ±0 -> ±0, NaN -> NaN


@_inline
def _fast_d_sigmoid(x):
    e = _fast_exp_up(_neg_abs_clamped(x, A_MIN)) * TWO_MK
    return e / _fma(e, e + TWO, ONE)


@_inline
def _fast_d_tanh(x):
    e4 = _fast_exp2_up(_neg_abs_clamped(x, FAST_A_MIN_DTANH)) * FOUR_TWO_MK
    return e4 / _fma(e4, _fma(e4, SIXTEENTH, HALF_), ONE)


@_inline
def _fast_d_silu(x):
    # x >= 0: (1 + e·(1 + x))/(1 + e)², x < 0: (e·(1 + x) + e²)/(1 + e)², e = exp(-|x|); near
    # the root t·G(t)
    a = _neg_abs_clamped(x, A_MIN)
    es = _fast_exp_up(a)
    e = es * TWO_MK
    u = ONE + _copysign(a, x)  # x clamped to [-110, 110]: no inf·0
    num = _fma(e, u, ONE) if x >= ZERO else _fma(es, u, es * e) * TWO_MK
    y = num / _fma(e, e + TWO, ONE)
    tt = (x - X0H) - X0L  # x - X0H exact near the root
    return tt * _fma_horner(FAST_G[:4], tt, FAST_G[4]) if abs(tt) < FAST_D_SILU_PATCH else y


def _loops(name, scalar, constants=False):
    """Serial and threaded loops over 1-D contiguous float32 arrays, cached on disk as
    ``<name>.<loop>`` (``_cache``); with ``constants``, ``scalar(x, c0, c1, c2, c3)`` and the
    loops ``(x, out, c0, c1, c2, c3)``: the kernel's parameters as float32 pairs."""

    if constants:
        @njit(error_model="numpy", fastmath={"contract"})
        def serial(x, out, c0, c1, c2, c3):
            for i in range(x.size):
                _prefer_512_bit_vectors()
                out[i] = scalar(x[i], c0, c1, c2, c3)

        @njit(error_model="numpy", parallel=True, fastmath={"contract"})
        def parallel(x, out, c0, c1, c2, c3):
            for i in prange(x.size):
                _prefer_512_bit_vectors()
                out[i] = scalar(x[i], c0, c1, c2, c3)
    else:
        @njit(error_model="numpy", fastmath={"contract"})
        def serial(x, out):
            for i in range(x.size):
                _prefer_512_bit_vectors()  # emits nothing; in the loop so that prange's body has it
                out[i] = scalar(x[i])

        @njit(error_model="numpy", parallel=True, fastmath={"contract"})
        def parallel(x, out):
            for i in prange(x.size):
                _prefer_512_bit_vectors()
                out[i] = scalar(x[i])

    return {threads: cached(loop, f"{name}.{loop.py_func.__name__}")
            for threads, loop in ((False, serial), (True, parallel))}


_SCALARS = {
    "sigmoid": _sigmoid,
    "d_sigmoid": _d_sigmoid,
    "silu": _silu,
    "d_silu": _d_silu,
    "tanh": _tanh,
    "d_tanh": _d_tanh,
    "gelu": _gelu,
    "d_gelu": _d_gelu,
    "softsign": _softsign,
    "d_softsign": _d_softsign,
    "sigmoid_fast": _fast_sigmoid,
    "d_sigmoid_fast": _fast_d_sigmoid,
    "silu_fast": _fast_silu,
    "d_silu_fast": _fast_d_silu,
    "tanh_fast": _fast_tanh,
    "d_tanh_fast": _fast_d_tanh,
}
KERNELS = {name: _loops(name, scalar) for name, scalar in _SCALARS.items()}
# where the CPU has AVX-512F, tanh is the table-driven kernel (fewer instructions, no division);
# the arithmetic one above stays the kernel of every other CPU, and is tested here as such
ARITHMETIC_TANH = KERNELS["tanh"]
KERNELS.update(_simd32_table.LOOPS)


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``out[:] = name(x)`` for 1-D contiguous float32 ``x`` (``inputs`` = ``(x,)``) and
    ``out``; these kernels have no parameters."""
    (x,) = inputs
    KERNELS[name][x.size >= PARALLEL_MIN and numba.get_num_threads() > 1](x, out)

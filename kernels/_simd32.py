"""SIMD kernels in float32 arithmetic: 16 lanes a 512-bit vector, for float32 input only.

``_simd`` computes float32 input in float64 and rounds once: 8 lanes a vector, and the loops
are bound by instruction count, not memory.  These compute in float32 and keep each result
within the float32 budgets (forward <= 1 ULP, derivatives <= 2) with error-free
transformations instead of wider arithmetic:

- exp(a), a <= 0: Cody-Waite a = n·ln 2 + r, n read from the bits of a/ln 2 + 1.5·2**23 (the
  shifter), exp(r) = 1 + r + r²·q(r) summed error-free into a pair eh + el (the forward
  kernels; the derivatives and tanh round r + r²·q once and then split 1 + p exactly);
  2**n is built from its bits (int32 inside an intrinsic: Numba widens int32 arithmetic to
  int64, which halves the lanes) and, where the result may be subnormal, as two factors with
  the one that reaches the subnormals applied last, so that product rounds once;
- 1/(1 + e): d = 1 + e = dh + dl exactly, y0 = 1/dh (vdivps), and the residual
  1 - y0·(dh + dl) from fused multiply-adds (``_fma``, llvm.fma.f32: exact products) corrects
  y0 to first order; e/(1 + e) likewise;
- tanh: x + x·w·P(w), w = x², for |x| < 0.55; above, (1 - e)/(1 + e), e = exp(-2|x|), with
  numerator and denominator as exact pairs; silu' near its root x0 = -1.27846: t·G(t),
  t = x - x0 with x0 carried as two float32.

q, P and G come from ``reference/polyfit.py`` (``fit_exp_float32``, ``fit_tanh_float32``,
``fit_d_silu_root_float32``: mpmath chebyfit, coefficients rounded to float32 and the error
bound taken with them rounded); ``tests/test_simd.py`` re-derives them.  Every constant is an
``np.float32`` (a Python float is typed float64 and would widen the loop); the IR test checks
for ``<16 x float>`` and no ``double``.  Measured over all 2**32 float32 inputs against the
float64 kernels (exact to ~2**-28 of a float32 ULP): sigmoid 0.832 ULP, silu 0.909, tanh
0.763, sigmoid' 1.06, silu' 1.35, tanh' 1.06; special values exact, no flush to zero.  The
audit measures them against mpmath like every kernel (``bench/budgets.toml``).
"""

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._simd import PARALLEL_MIN, _prefer_512_bit_vectors

__all__ = ["D_SILU_G", "D_SILU_ROOT", "EXP_Q", "KERNELS", "TANH_P", "run"]

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

F = np.float32
ZERO, NZERO, ONE, TWO, FOUR = F(0.0), F(-0.0), F(1.0), F(2.0), F(4.0)
Q4, Q3, Q2, Q1, Q0 = (F(c) for c in EXP_Q)
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
SUB_A = F(-80.0)  # below this a the result may be subnormal: 2**n as 2**(n + 64)·2**-64
OFFSET = F(64.0)
TWO_M64 = F(2.0**-64)
SILU_BIG = F(20.0)  # silu(x) = x·(1 - e**-x) rounds to x beyond 18.02
D_SILU_BIG = F(30.0)  # silu'(x) rounds to 1 beyond ~20.5


def _declare(builder, name, n):
    f32 = ir.FloatType()
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * n), name)


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c rounded once (llvm.fma.f32): the products of the error-free steps are exact."""
    def codegen(context, builder, signature, args):
        return builder.call(_declare(builder, "llvm.fma.f32", 3), args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@intrinsic
def _copysign(typingctx, a, b):
    def codegen(context, builder, signature, args):
        return builder.call(_declare(builder, "llvm.copysign.f32", 2), args)
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


_inline = njit(error_model="numpy", inline="always", fastmath={"contract"})


@_inline
def _exp_reduced(a):
    """(r, t): a = n·ln2 + r (r rounded once), n in t's bits."""
    t = a * INV_LN2 + SHIFT
    n = t - SHIFT
    return _fma(-n, LN2_LO, _fma(-n, LN2_HI, a)), t


@_inline
def _q(r):
    return (((Q4 * r + Q3) * r + Q2) * r + Q1) * r + Q0


@_inline
def _exp_pair(a):
    """exp(a) = (eh + el)·s2 for a <= 0 (clamped by the caller; NaN propagates): 1 + r +
    r²·q(r) summed error-free (|r| < 1, so 1 + r's error is exact), times 2**n' (eh exact),
    with s2 = 2**-64 and n' = n + 64 where the result may be subnormal, else 1."""
    r, t = _exp_reduced(a)
    c = r * r * _q(r)
    u = ONE + r
    v = c + ((ONE - u) + r)
    eh = u + v
    el = (u - eh) + v
    sub = a < SUB_A
    s = _pow2(t + OFFSET if sub else t)
    return eh * s, el * s, TWO_M64 if sub else ONE


@_inline
def _exp_pair_lite(a):
    """exp(a) = (eh + el)·2**n, n in t's bits: p = r + r²·q(r) rounded, 1 + p split exactly."""
    r, t = _exp_reduced(a)
    p = _fma(r * r, _q(r), r)
    eh = ONE + p
    return eh, (ONE - eh) + p, t


@_inline
def _logistic(x):
    """(y0, rl, eh, el, s2) with e = exp(-|x|) = (eh + el)·s2: 1/(1 + e) = y0 + rl (to first
    order in the residual) for sigmoid(|x|), and e/(1 + e) from the same parts."""
    a = -abs(x)
    a = A_MIN if a < A_MIN else a  # the comparison keeps a NaN a
    eh, el, s2 = _exp_pair(a)
    e = eh * s2
    dh = ONE + e
    dl = _fma(el, s2, e - (dh - ONE))
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
    e = eh * s2
    dh = ONE + e
    dl = _fma(el, s2, e - (dh - ONE))
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
    y0, rl, q0, ql, s2 = _logistic_lite(-abs(x))
    # x >= 0: (1 + x·e/d)/d, with 1 + w = wh + wl exactly
    w = x * (q0 * s2)
    wh = ONE + w
    wl = (ONE - wh) + w
    pos = _fma(y0, wh, _fma(y0, wl, rl * wh))
    # x < 0: (e/d)·(1 + x/d), 1 + x/d = vh + vl (two-sum: it cancels at the root)
    ph = x * y0
    pl = _fma(x, y0, -ph) + x * rl
    vh = ONE + ph
    bb = vh - ONE
    vl = ((ONE - (vh - bb)) + (ph - bb)) + pl
    neg = _fma(q0, vh, _fma(q0, vl, ql * vh)) * s2
    y = pos if x >= ZERO else neg
    # near the root: t·G(t), t = (x - X0H) - X0L with x - X0H exact there; G0·t as
    # G0·th + G0·(-X0L) inside the fused steps, so that only the last sum rounds visibly
    th = x - X0H
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


def _loops(scalar):
    """Serial and threaded loops over 1-D contiguous float32 arrays."""

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

    return {False: serial, True: parallel}


KERNELS = {
    "sigmoid": _loops(_sigmoid),
    "d_sigmoid": _loops(_d_sigmoid),
    "silu": _loops(_silu),
    "d_silu": _loops(_d_silu),
    "tanh": _loops(_tanh),
    "d_tanh": _loops(_d_tanh),
}


def run(name: str, x: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = name(x)`` for 1-D contiguous float32 ``x`` and ``out``."""
    KERNELS[name][x.size >= PARALLEL_MIN and numba.get_num_threads() > 1](x, out)

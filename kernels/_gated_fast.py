"""Fast gated kernels: glu, geglu, swiglu and reglu, forward and both partials, in vectorized
loops over flat float32 or float64 operands.

y = a·gate(b), dy/da = gate(b), dy/db = a·gate'(b).  float64 operands use ``_simd``'s gates
(exp in plain arithmetic).  float32 operands: the partials use ``_simd32``'s float32-arithmetic
gates (8 lanes a vector on AVX2, 16 on AVX-512, twice the float64 loops'), whose error plus
the product's rounding stays within 2 ULP; the forward products must round once, so glu forms
a·sigmoid(b) from ``_simd32``'s sigmoid as a float32 pair, swiglu and geglu multiply the exact
pair a·b by ``_simd32``'s sigmoid and Phi as pairs, and reglu is exact in float32.  The
loop counts the elements the plain product does not cover as it goes, and only where there
are any, a scalar pass gives them the accurate kernel's value
(``_accurate``'s scalar of the same name): where gate(b) underflows or goes subnormal while
a·gate(b) need not (|a| up to the dtype's maximum, an infinite a times a tiny nonzero gate),
and |b| < 2**-900 for gelu and silu (a·b/2); for the float32 forward products, where a partial
product may leave the normal range (``_off``).  So the conventions are the accurate kernel's by
construction; the common case pays a few instructions an element for the count.

Arrays of at least ``PARALLEL_MIN`` elements run on Numba's threads when more than one is set.
"""

import math

import numba
import numpy as np
from numba import njit, prange

from . import _accurate, _simd, _simd32
from ._cache import cached
from ._simd import PARALLEL_MIN

__all__ = ["KERNELS", "run"]

_inline = njit(error_model="numpy", inline="always", fastmath={"contract"})
# the accurate scalars of the partials by a, for the plans' completeness (their edges never
# hold: those loops have no fix-up pass)
_jit_scalar = njit(error_model="numpy", fastmath=False)  # stated: see _dd64._jit
_TINY_B = 2.0**-900
_BLOCK = 1 << 14  # elements a thread takes at a time
_INF32 = np.float32(np.inf)


@_inline
def _never(a, b, y):
    return False


# where the plain product is not the accurate one (b as float64): float64 operands
@_inline
def _glu_edge(a, b, y):
    return b < -660.0


@_inline
def _d_glu_edge(a, b, y):
    return abs(b) > 660.0


@_inline
def _geglu_edge(a, b, y):
    return 0.0 < abs(b) < _TINY_B or b < -36.4  # at b = ±0 the product is right already


@_inline
def _d_geglu_edge(a, b, y):
    return b < -36.4


@_inline
def _swiglu_edge(a, b, y):
    return 0.0 < abs(b) < _TINY_B or b < -655.0


@_inline
def _d_swiglu_edge(a, b, y):
    return b < -655.0


# ... and float32 operands through ``_simd32``, whose exp clamps at -110 (the product with
# |a| up to 2**128 is nonzero down to b = -193) and gelu at -14.75
@_inline
def _beyond_80(a, b, y):
    return abs(b) > 80.0  # sigmoid'(b) < 2**-115: near float32's subnormals it loses bits


@_inline
def _below_80(a, b, y):
    return b < -80.0  # silu'(b) likewise


@_inline
def _below_10(a, b, y):
    return b < -10.0


# The float32 forward products hold their one rounding while every partial product stays
# normal and finite: the pair a·b (or a, for glu) at most 2**64, which times exp's scaled
# pair (up to 2**33) cannot overflow; and, where exp's pair is not scaled (b >= -40 for the
# logistic gates, |b| < 9 for gelu's tail), results of at least 2**-100, whose low-order
# terms (~2**-48 of them) are still normal (scaled, any result that rounds to a nonzero value
# has normal terms).  Elsewhere (and for non-finite operands) the fix-up pass gives the
# accurate value; an exact zero product needs none.
_TINY_Y = np.float32(2.0**-100)
_GEGLU_A_BIG = np.float32(256.0)
_BIG_P = np.float32(2.0**64)
# gelu's tail is scaled where -b²/2 < SUB_A: |b| > sqrt(80), taken up to the next whole number
_GELU_UNSCALED = np.float32(math.ceil(math.sqrt(-2.0 * float(_simd32.SUB_A))))


@_inline
def _off(p, y, unscaled):
    p = abs(p)
    return not (p <= _BIG_P) or (unscaled and abs(y) < _TINY_Y and p != _simd32.ZERO)  # NaN, inf


@_inline
def _glu32_edge(a, b, y):
    return _off(a, y, b >= _simd32.SUB_A) or b < -100.0  # the gate's exp clamps at -110


@_inline
def _swiglu32_edge(a, b, y):
    return _off(a * b, y, b >= _simd32.SUB_A) or b < -100.0


@_inline
def _geglu32_edge(a, b, y):
    # below -GELU_XMAX the kernel gives ±0: |gelu(b)| < 2**-158, so a·gelu(b) rounds to 0
    # unless |a| > 2**8 (or a·b is NaN: 0·-inf)
    ph = a * b
    if b < -_simd32.GELU_XMAX:
        return not (abs(a) <= _GEGLU_A_BIG) or ph != ph
    return _off(ph, y, abs(b) < _GELU_UNSCALED)


@_inline
def _swiglu32(a, b):
    """(a·b)·sigmoid(b) in float32 arithmetic, rounded once: a·b = ph + pl exactly (a fused
    multiply-add gives pl), then as ``_glu32`` with the pair in place of a (``_off`` says where
    the fix-up pass takes over)."""
    ph = a * b
    pl = _simd32._fma(a, b, -ph)
    y0, rl, eh, el, s2 = _simd32._logistic(b)
    pos = _simd32._fma(ph, y0, _simd32._fma(ph, rl, pl * y0))
    qh = ph * eh
    ql = _simd32._fma(ph, eh, -qh) + _simd32._fma(ph, el, pl * eh)
    neg = _simd32._fma(qh, y0, _simd32._fma(qh, rl, ql * y0)) * s2
    y = pos if b >= _simd32.ZERO else neg
    return _simd32._copysign(y, ph)  # sigmoid >= 0: the sign is a·b's (zeros too)


@_inline
def _geglu32(a, b):
    """(a·b)·Phi(b) in float32 arithmetic, rounded once: a·b = ph + pl exactly, times
    ``_simd32``'s Phi as a pair (G·s2 below 0, 1 - G above), as ``_simd32._gelu`` does with x."""
    ph = a * b
    pl = _simd32._fma(a, b, -ph)
    gh, gl, _, _, s2 = _simd32._phi_tail(_simd32._tail_arg(b))
    neg = _simd32._fma(ph, gh, _simd32._fma(ph, gl, pl * gh)) * s2
    hh = _simd32.ONE - gh  # s2 = 1 for b <= GELU_POS_BIG
    hl = ((_simd32.ONE - hh) - gh) - gl
    pos = _simd32._fma(ph, hh, _simd32._fma(ph, hl, pl * hh))
    y = neg if b < _simd32.ZERO else pos
    y = ph if b > _simd32.GELU_POS_BIG else y  # Phi(b) = 1 to 2**-50
    y = _simd32.ZERO if b < -_simd32.GELU_XMAX else y
    return _simd32._copysign(y, ph)  # Phi >= 0: the sign is a·b's (zeros too)


def _times(gate):
    @_inline
    def product(a, b, wide):
        return a * gate(b, wide, 0.0, 0.0)
    return product


def _alone(gate):
    @_inline
    def value(a, b, wide):
        return gate(b, wide, 0.0, 0.0)
    return value


def _times32(gate):
    """a·gate(b) in float32 arithmetic: the gate's own error (sigmoid' 1.06, silu' 1.35 ULP at
    most), up to twice that in the product's ULPs, plus the product's rounding."""
    @_inline
    def product(a, b):
        return a * gate(b)
    return product


@_inline
def _d_geglu_b32(a, b):
    """a·gelu'(b) rounded once.  gelu'(b) rounded alone is within ~1.1 of its own ULPs, but
    that is up to twice as many of the product's (gelu'(b) low in its binade, a·gelu'(b) high
    in its), and the product's rounding comes on top: 2.33 ULP at b = 0x1.8dc038p-8.  So the
    pair is multiplied in by a fused multiply-add.  Its scale goes in first (a huge a times
    the unscaled pair would overflow): exact, since gelu'(b) and its low part are normal for
    b > -10, the vector loop's range (``_below_10``)."""
    yh, yl, s = _simd32._d_gelu_pair(b)
    ys = yh * s
    y = _simd32._fma(a, ys, a * (yl * s))
    # a·ys where a is infinite (inf·0 in the low part would be NaN) or the product is zero
    # (its sign is a·ys's: -0 + 0 is +0)
    return a * ys if (y == _simd32.ZERO or abs(a) == _INF32) else y


def _alone32(gate):
    @_inline
    def value(a, b):
        return gate(b)
    return value


@_inline
def _glu32(a, b):
    """a·sigmoid(b) in float32 arithmetic, rounded once: sigmoid as the pair ``_logistic``
    gives (y0 + rl for b >= 0; (eh + el)·s2·(y0 + rl) below), multiplied in by fused
    multiply-adds, as ``_simd32._silu`` does with x for a."""
    y0, rl, eh, el, s2 = _simd32._logistic(b)
    pos = _simd32._fma(a, y0, a * rl)
    ae = a * eh
    al = _simd32._fma(a, eh, -ae)
    neg = _simd32._fma(ae, y0, _simd32._fma(ae, rl, _simd32._fma(a * el + al, y0,
                                                                 _simd32.ZERO))) * s2
    y = pos if b >= _simd32.ZERO else neg  # NaN b: neg is NaN
    y = a if (abs(a) == _INF32 and b == b) else y  # inf·sigmoid(b) (b >= -100 here) is a
    return _simd32._copysign(y, a)  # sigmoid >= 0: the sign is a's (zeros and underflow too)


@_inline
def _relu32(a, b):
    """relu(b) in float32 (NaN kept, -0 to +0), as ``_accurate._s_relu``: 8 lanes, no widening."""
    return b if (b > _simd32.ZERO or b != b) else _simd32.ZERO


@_inline
def _reglu32(a, b):
    return a * _relu32(a, b)  # a float32 product rounds as the float64 one does, once


@_inline
def _d_reglu_b32(a, b):
    return a * (b if b != b else (_simd32.ONE if b > _simd32.ZERO else _simd32.ZERO))


@_jit_scalar
def _sigmoid_of_b(a, b):
    return _accurate._s_sigmoid(b)


@_jit_scalar
def _gelu_of_b(a, b):
    return _accurate._s_gelu(b)


@_jit_scalar
def _silu_of_b(a, b):
    return _accurate._s_silu(b)


@_jit_scalar
def _relu_of_b(a, b):
    return _accurate._s_relu(b)


@_inline
def _reglu(a, b, wide):
    return _accurate._reglu(a, b)


@_inline
def _d_reglu_b(a, b, wide):
    return _accurate._d_reglu_b(a, b)


@_inline
def _relu(a, b, wide):
    return _accurate._s_relu(b)


_GLU64, _GEGLU64, _SWIGLU64 = _times(_simd._sigmoid), _times(_simd._gelu), _times(_simd._silu)
_D_GLU64, _D_GEGLU64 = _times(_simd._d_sigmoid), _times(_simd._d_gelu)
_D_SWIGLU64 = _times(_simd._d_silu)

# name: float64 (value, edge), float32 (value, edge), and the accurate scalar where an edge
# holds; with _never the count is constant zero and LLVM drops the pass.  float32 forward
# kernels keep one rounding (float32 pairs: the gate's, and a·b's for geglu and swiglu), the
# partials use the float32-arithmetic gates (their error plus one rounding is within 2 ULP)
_PLANS = {
    "glu": ((_GLU64, _glu_edge), (_glu32, _glu32_edge), _accurate._glu),
    "d_glu_a": ((_alone(_simd._sigmoid), _never), (_alone32(_simd32._sigmoid), _never),
                _sigmoid_of_b),
    "d_glu_b": ((_D_GLU64, _d_glu_edge), (_times32(_simd32._d_sigmoid), _beyond_80),
                _accurate._d_glu_b),
    "geglu": ((_GEGLU64, _geglu_edge), (_geglu32, _geglu32_edge), _accurate._geglu),
    "d_geglu_a": ((_alone(_simd._gelu), _never), (_alone32(_simd32._gelu), _never),
                  _gelu_of_b),
    "d_geglu_b": ((_D_GEGLU64, _d_geglu_edge), (_d_geglu_b32, _below_10),
                  _accurate._d_geglu_b),
    "swiglu": ((_SWIGLU64, _swiglu_edge), (_swiglu32, _swiglu32_edge),
               _accurate._swiglu),
    "d_swiglu_a": ((_alone(_simd._silu), _never), (_alone32(_simd32._silu), _never),
                   _silu_of_b),
    "d_swiglu_b": ((_D_SWIGLU64, _d_swiglu_edge), (_times32(_simd32._d_silu), _below_80),
                   _accurate._d_swiglu_b),
    "reglu": ((_reglu, _never), (_reglu32, _never), _accurate._reglu),
    "d_reglu_a": ((_relu, _never), (_relu32, _never), _relu_of_b),
    "d_reglu_b": ((_d_reglu_b, _never), (_d_reglu_b32, _never), _accurate._d_reglu_b),
}


def _loops(name, plan64, plan32, accurate):
    """Serial and threaded loops for float32 and float64 operands."""
    value64, edge64 = plan64
    value32, edge32 = plan32

    @_inline
    def fix(a, b, out, edge):
        """The accurate scalar where ``edge`` holds (the caller counted some): a and b are
        never ``out`` (the wrapper makes sure), so they still hold the operands."""
        for i in range(out.size):
            if edge(a[i], b[i], out[i]):
                out[i] = accurate(np.float64(a[i]), np.float64(b[i]))

    # The edges are counted in the vector loop itself, a reduction beside the stores (a
    # separate counting pass would read a, b and out once more: the loop's memory traffic again),
    # as a flag in an int32 (an int64 would hold the loop to 8 lanes) that no number of edges
    # can wrap back to zero.  The loops index from 0 (a thread's block as slices): from a
    # variable start LLVM cannot rule out negative indices, and their wraparound makes it
    # gather the operands.
    def block(value, edge):
        @_inline
        def loop(a, b, out):
            flag = np.int32(0)
            for i in range(out.size):
                _simd._prefer_512_bit_vectors()  # 16 float32 (8 float64) lanes where the CPU has them
                y = value(a[i], b[i])
                out[i] = y
                flag = np.int32(flag | edge(a[i], b[i], y))
            if flag:
                fix(a, b, out, edge)
        return loop

    @_inline
    def wide64(a, b):
        return value64(a, b, True)

    block32, block64 = block(value32, edge32), block(wide64, edge64)

    def f32(a, b, out):
        block32(a, b, out)

    def f64(a, b, out):
        block64(a, b, out)

    def f32_threaded(a, b, out):
        for c in prange((out.size + _BLOCK - 1) // _BLOCK):
            lo = c * _BLOCK
            hi = min(lo + _BLOCK, out.size)
            block32(a[lo:hi], b[lo:hi], out[lo:hi])

    def f64_threaded(a, b, out):
        for c in prange((out.size + _BLOCK - 1) // _BLOCK):
            lo = c * _BLOCK
            hi = min(lo + _BLOCK, out.size)
            block64(a[lo:hi], b[lo:hi], out[lo:hi])

    flags = {"error_model": "numpy", "fastmath": {"contract"}}
    return {
        ("float32", False): cached(njit(**flags)(f32), f"gated.{name}.f32"),
        ("float64", False): cached(njit(**flags)(f64), f"gated.{name}.f64"),
        ("float32", True): cached(njit(parallel=True, **flags)(f32_threaded),
                                  f"gated.{name}.f32_threaded"),
        ("float64", True): cached(njit(parallel=True, **flags)(f64_threaded),
                                  f"gated.{name}.f64_threaded"),
    }


KERNELS = {name: _loops(name, *plan) for name, plan in _PLANS.items()}


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``out[:] = name(a, b)`` for 1-D contiguous operands ``inputs`` = ``(a, b)`` of one
    dtype (no parameters)."""
    a, b = inputs
    threaded = out.size >= PARALLEL_MIN and numba.get_num_threads() > 1
    KERNELS[name][(out.dtype.name, threaded)](a, b, out)

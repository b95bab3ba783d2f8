"""Fast gated kernels: glu, geglu, swiglu and reglu, forward and both partials, in vectorized
loops over flat float32 or float64 operands.

y = a·gate(b), dy/da = gate(b), dy/db = a·gate'(b).  float64 operands use ``_simd``'s gates
(exp in plain arithmetic).  float32 operands: the partials use ``_simd32``'s float32-arithmetic
gates (8 lanes a vector on AVX2, twice the float64 loops'), whose error plus the product's
rounding stays within 2 ULP; the forward products must round once, so glu forms a·sigmoid(b)
from ``_simd32``'s sigmoid as a float32 pair, geglu and swiglu compute in float64 and round
once, and reglu is exact in float32.  The
loop is followed by a vectorized count of the elements the plain product does not cover, and
only where there are any, a scalar pass gives them the accurate kernel's value
(``_accurate``'s scalar of the same name): where gate(b) underflows or goes subnormal while
a·gate(b) need not (|a| up to the dtype's maximum, an infinite a times a tiny nonzero gate),
and |b| < 2**-900 for gelu and silu (a·b/2).  So the conventions are the accurate kernel's by
construction; the common case pays one extra pass over b.

Arrays of at least ``PARALLEL_MIN`` elements run on Numba's threads when more than one is set.
"""

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
_jit_scalar = njit(error_model="numpy")
_TINY_B = 2.0**-900
_INF32 = np.float32(np.inf)


@_inline
def _never(b):
    return False


# where the plain product is not the accurate one (b as float64): float64 operands
@_inline
def _glu_edge(b):
    return b < -660.0


@_inline
def _d_glu_edge(b):
    return abs(b) > 660.0


@_inline
def _geglu_edge(b):
    return 0.0 < abs(b) < _TINY_B or b < -36.4  # at b = ±0 the product is right already


@_inline
def _d_geglu_edge(b):
    return b < -36.4


@_inline
def _swiglu_edge(b):
    return 0.0 < abs(b) < _TINY_B or b < -655.0


@_inline
def _d_swiglu_edge(b):
    return b < -655.0


# ... and float32 operands through ``_simd32``, whose exp clamps at -110 (the product with
# |a| up to 2**128 is nonzero down to b = -193) and gelu at -14.75
@_inline
def _below_100(b):
    return b < -100.0


@_inline
def _beyond_80(b):
    return abs(b) > 80.0  # sigmoid'(b) < 2**-115: near float32's subnormals it loses bits


@_inline
def _below_80(b):
    return b < -80.0  # silu'(b) likewise


@_inline
def _below_10(b):
    return b < -10.0


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


def _widened(value64):
    """A float32 value computed by the float64 loop body and rounded once."""
    @_inline
    def value(a, b):
        return np.float32(value64(np.float64(a), np.float64(b), False))
    return value


def _times32(gate):
    """a·gate(b) in float32 arithmetic, the gate's own error (<= 1.35 ULP) plus the product's
    rounding: within the partials' 2 ULP."""
    @_inline
    def product(a, b):
        return a * gate(b)
    return product


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
# kernels keep one rounding (glu as a float32 pair; geglu, swiglu through float64), the
# partials use the float32-arithmetic gates (their error plus one rounding is within 2 ULP)
_PLANS = {
    "glu": ((_GLU64, _glu_edge), (_glu32, _below_100), _accurate._glu),
    "d_glu_a": ((_alone(_simd._sigmoid), _never), (_alone32(_simd32._sigmoid), _never),
                _sigmoid_of_b),
    "d_glu_b": ((_D_GLU64, _d_glu_edge), (_times32(_simd32._d_sigmoid), _beyond_80),
                _accurate._d_glu_b),
    "geglu": ((_GEGLU64, _geglu_edge), (_widened(_GEGLU64), _geglu_edge), _accurate._geglu),
    "d_geglu_a": ((_alone(_simd._gelu), _never), (_alone32(_simd32._gelu), _never),
                  _gelu_of_b),
    "d_geglu_b": ((_D_GEGLU64, _d_geglu_edge), (_times32(_simd32._d_gelu), _below_10),
                  _accurate._d_geglu_b),
    "swiglu": ((_SWIGLU64, _swiglu_edge), (_widened(_SWIGLU64), _swiglu_edge),
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
    def fix(a, b, out, lo, hi, edge):
        count = 0
        for i in range(lo, hi):
            count += edge(b[i])
        if count:
            for i in range(lo, hi):
                if edge(b[i]):
                    out[i] = accurate(np.float64(a[i]), np.float64(b[i]))

    def f32(a, b, out):
        for i in range(out.size):
            out[i] = value32(a[i], b[i])
        fix(a, b, out, 0, out.size, edge32)

    def f64(a, b, out):
        for i in range(out.size):
            _simd._prefer_512_bit_vectors()
            out[i] = value64(a[i], b[i], True)
        fix(a, b, out, 0, out.size, edge64)

    def f32_threaded(a, b, out):
        chunk = 1 << 14
        for c in prange((out.size + chunk - 1) // chunk):
            lo = c * chunk
            hi = min(lo + chunk, out.size)
            for i in range(lo, hi):
                out[i] = value32(a[i], b[i])
            fix(a, b, out, lo, hi, edge32)

    def f64_threaded(a, b, out):
        chunk = 1 << 14
        for c in prange((out.size + chunk - 1) // chunk):
            lo = c * chunk
            hi = min(lo + chunk, out.size)
            for i in range(lo, hi):
                _simd._prefer_512_bit_vectors()
                out[i] = value64(a[i], b[i], True)
            fix(a, b, out, lo, hi, edge64)

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


def run(name: str, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = name(a, b)`` for 1-D contiguous operands of one dtype."""
    threaded = out.size >= PARALLEL_MIN and numba.get_num_threads() > 1
    KERNELS[name][(out.dtype.name, threaded)](a, b, out)

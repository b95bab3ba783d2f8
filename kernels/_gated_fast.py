"""Fast gated kernels: glu, geglu, swiglu and reglu, forward and both partials, in vectorized
loops over flat float32 or float64 operands.

y = a·gate(b) with the gate from ``_simd`` (exp in plain arithmetic, float64; float32 input
widened and the product rounded once to float32), dy/da = gate(b), dy/db = a·gate'(b).  The
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

from . import _accurate, _simd
from ._cache import cached
from ._simd import PARALLEL_MIN

__all__ = ["KERNELS", "run"]

_inline = njit(error_model="numpy", inline="always", fastmath={"contract"})
_TINY_B = 2.0**-900


@_inline
def _never(b):
    return False


@_inline
def _glu_edge(b):
    return b < -660.0


@_inline
def _d_glu_edge(b):
    return abs(b) > 660.0


@_inline
def _geglu_edge(b):
    return abs(b) < _TINY_B or b < -36.4


@_inline
def _d_geglu_edge(b):
    return b < -36.4


@_inline
def _swiglu_edge(b):
    return abs(b) < _TINY_B or b < -655.0


@_inline
def _d_swiglu_edge(b):
    return b < -655.0


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


@_inline
def _reglu(a, b, wide):
    return _accurate._reglu(a, b)


@_inline
def _d_reglu_b(a, b, wide):
    return _accurate._d_reglu_b(a, b)


@_inline
def _relu(a, b, wide):
    return _accurate._s_relu(b)


# name: (the vectorized value, where it is not the accurate one, the accurate scalar there;
# with _never the count is constant zero and LLVM drops the pass)
_PLANS = {
    "glu": (_times(_simd._sigmoid), _glu_edge, _accurate._glu),
    "d_glu_a": (_alone(_simd._sigmoid), _never, _accurate._reglu),
    "d_glu_b": (_times(_simd._d_sigmoid), _d_glu_edge, _accurate._d_glu_b),
    "geglu": (_times(_simd._gelu), _geglu_edge, _accurate._geglu),
    "d_geglu_a": (_alone(_simd._gelu), _never, _accurate._reglu),
    "d_geglu_b": (_times(_simd._d_gelu), _d_geglu_edge, _accurate._d_geglu_b),
    "swiglu": (_times(_simd._silu), _swiglu_edge, _accurate._swiglu),
    "d_swiglu_a": (_alone(_simd._silu), _never, _accurate._reglu),
    "d_swiglu_b": (_times(_simd._d_silu), _d_swiglu_edge, _accurate._d_swiglu_b),
    "reglu": (_reglu, _never, _accurate._reglu),
    "d_reglu_a": (_relu, _never, _accurate._reglu),
    "d_reglu_b": (_d_reglu_b, _never, _accurate._reglu),
}


def _loops(name, value, edge, accurate):
    """Serial and threaded loops for float32 (computed in float64, rounded once) and float64."""

    @_inline
    def fix(a, b, out, lo, hi):
        count = 0
        for i in range(lo, hi):
            count += edge(np.float64(b[i]))
        if count:
            for i in range(lo, hi):
                if edge(np.float64(b[i])):
                    out[i] = accurate(np.float64(a[i]), np.float64(b[i]))

    def f32(a, b, out):
        for i in range(out.size):
            out[i] = np.float32(value(np.float64(a[i]), np.float64(b[i]), False))
        fix(a, b, out, 0, out.size)

    def f64(a, b, out):
        for i in range(out.size):
            _simd._prefer_512_bit_vectors()
            out[i] = value(a[i], b[i], True)
        fix(a, b, out, 0, out.size)

    def f32_threaded(a, b, out):
        chunk = 1 << 14
        for c in prange((out.size + chunk - 1) // chunk):
            lo = c * chunk
            hi = min(lo + chunk, out.size)
            for i in range(lo, hi):
                out[i] = np.float32(value(np.float64(a[i]), np.float64(b[i]), False))
            fix(a, b, out, lo, hi)

    def f64_threaded(a, b, out):
        chunk = 1 << 14
        for c in prange((out.size + chunk - 1) // chunk):
            lo = c * chunk
            hi = min(lo + chunk, out.size)
            for i in range(lo, hi):
                _simd._prefer_512_bit_vectors()
                out[i] = value(a[i], b[i], True)
            fix(a, b, out, lo, hi)

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

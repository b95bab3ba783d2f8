"""The normal tail Phi(-|x|) = erfc(|x|/sqrt(2))/2 in float64 as a double-double, for gelu, gelu'
and geglu.

libm's erfc is within an ULP or so, and gelu = x/2·erfc(-x/sqrt(2)) adds the argument's and the
product's roundings: up to 3.5 ULP in float64.  Here erfc(z) = exp(-z²)·erfcx(z) with

- exp(-z²) = exp(-x²/2) from ``exp_dd``, x² exact (``two_prod``), the scale 2**k kept apart so
  that a result in the subnormal range rounds once;
- erfcx(z) from a Taylor expansion at the node nearest z (``reference/erfcx_table.py``, spacing
  1/32, degree 10, truncation below 2**-74): a0 as a pair, the terms after it in plain float64
  (they are below 2**-5.8 of a0, so their roundings stay below 2**-57 of the result), and
  z = |x|/sqrt(2) as a pair whose low part enters h.

Phi(-|x|) then carries ~2**-56 relative error before the kernel's one rounding.  The table is
``erfcx_taylor.npy`` beside this file; it is part of the kernels' cache key.
"""

from pathlib import Path

import numpy as np
from numba import njit

from ._cache import cached
from ._dd64 import exp_dd, fast_two_sum, mul_dd, two_prod

__all__ = ["INV_SQRT2", "TABLE", "Z_MAX", "erfcx_pair", "normal_tail"]

TABLE = np.load(Path(__file__).with_name("erfcx_taylor.npy"))
_NODES_PER_UNIT = 32.0
_INV_NODES = 1.0 / _NODES_PER_UNIT
Z_MAX = (TABLE.shape[0] - 1) * _INV_NODES
_DEGREE = TABLE.shape[1] - 2
# 1/sqrt(2) as hi + lo (the kernels' pair constants: tests/test_kernels.py recomputes it)
INV_SQRT2 = (float.fromhex("0x1.6a09e667f3bcdp-1"), float.fromhex("-0x1.bdd3413b26456p-55"))


def _jit(func):
    return cached(njit(error_model="numpy", fastmath=False)(func))  # stated: see _dd64._jit


@_jit
def erfcx_pair(z, z_lo):
    """erfcx(z + z_lo) as a pair, 0 <= z <= Z_MAX (|z_lo| <= ulp(z))."""
    j = int(z * _NODES_PER_UNIT + 0.5)
    c = TABLE[j]
    h = (z - j * _INV_NODES) + z_lo  # z - t0 exact: t0 within a factor 2 of z (Sterbenz) or 0
    p = c[_DEGREE + 1]
    for k in range(_DEGREE, 1, -1):
        p = p * h + c[k]
    return fast_two_sum(c[0], c[1] + h * p)


@_jit
def normal_tail(x):
    """(qh, ql, k, gh, gl, sh, sl) for finite |x| <= sqrt(2)·Z_MAX:
    Phi(-|x|) = (qh + ql)·2**k, exp(-x²/2) = (gh + gl)·2**k, erfcx(|x|/sqrt(2)) = sh + sl."""
    p, e = two_prod(x, x)
    gh, gl, k = exp_dd(-0.5 * p, -0.5 * e)
    ax = abs(x)
    z, z_lo = two_prod(ax, INV_SQRT2[0])
    sh, sl = erfcx_pair(z, z_lo + ax * INV_SQRT2[1])
    qh, ql = mul_dd(gh, gl, sh, sl)
    return 0.5 * qh, 0.5 * ql, k, gh, gl, sh, sl

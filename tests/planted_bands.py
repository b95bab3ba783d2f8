"""float64 kernels with one bug each, confined to one band of the range: what a sample misses.

Written apart from the search (``actbench_ulp.accuracy.search``) and not tuned to it: each is the
kind of bug a real kernel has, with its band where such a bug sits.  ``BANDS`` gives each one's
activation and its band; ``tests/test_search.py`` knows each one's true maximum.
"""

import math

import numpy as np
from scipy import special

from actbench_ulp import kernels

_TINY = np.finfo(np.float64).smallest_normal


def flushed_sigmoid(x):
    """sigmoid with subnormal results flushed to zero (a fast-math build)."""
    with np.errstate(over="ignore"):
        y = 1.0 / (1.0 + np.exp(-x))
    return np.where(np.abs(y) < _TINY, 0.0, y)


def overflowing_silu(x):
    """silu as x/(1 + exp(-x)): exp(-x) overflows below -709.78, and x/inf is -0 where the
    result is still a normal number (down to about -745)."""
    with np.errstate(over="ignore"):
        return x / (1.0 + np.exp(-x))


def _tanh_series(x):
    x2 = x * x
    return x * (1.0 + x2 * (-1 / 3 + x2 * (2 / 15 + x2 * (-17 / 315 + x2 * (62 / 2835)))))


SERIES_SWITCH = 0.0484375  # the series' truncation error passes 1 ULP near 0.043


def late_series_tanh(x):
    """tanh by its Taylor series to x**9 below SERIES_SWITCH: switched too late, a few ULPs
    in the top of the binade [2**-5, 2**-4)."""
    x = np.asarray(x)
    return np.where(np.abs(x) < SERIES_SWITCH, _tanh_series(x), np.tanh(x))


CANCEL_LO, CANCEL_HI = -5.0, -4.0


def cancelling_gelu(x):
    """gelu as x/2·(1 + erf(x/√2)) in [-5, -4] (1 + erf cancels there); elsewhere our accurate
    kernel (x/2·erfc(-x/√2) has its own errors where the result nears the subnormals)."""
    x = np.asarray(x)
    naive = 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))
    return np.where((x >= CANCEL_LO) & (x <= CANCEL_HI), naive, kernels.gelu(x))


# name: (function, activation, the band of |x| or x where it errs)
BANDS = {
    "flushed_subnormal": (flushed_sigmoid, "sigmoid", (-745.2, -708.39)),
    "intermediate_overflow": (overflowing_silu, "silu", (-746.0, -709.78)),
    "late_series": (late_series_tanh, "tanh", (0.03, SERIES_SWITCH)),  # |x|: tanh is odd
    "cancellation": (cancelling_gelu, "gelu", (CANCEL_LO, CANCEL_HI)),
}

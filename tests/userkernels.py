"""User kernels for the tests of ``--impl module:function``."""

import numpy as np
from scipy.special import ndtr


def good_gelu(x):
    # a user wrapping an accurate implementation (x·ndtr(x) is not: the audit finds 100 ULP
    # in its float64 tail and NaN at -inf)
    from actbench_ulp import kernels

    return kernels.gelu(x)


def naive_gelu(x):
    # the textbook form with erf: 1 + erf cancels in the negative tail
    from scipy.special import erf

    with np.errstate(all="ignore"):
        return (0.5 * x * (1 + erf(x / np.sqrt(np.asarray(2, x.dtype))))).astype(x.dtype)


def raising_gelu(x):
    raise RuntimeError("not implemented for this input")


def promoting_gelu(x):
    return x * ndtr(x.astype(np.float64))  # float32 in, float64 out


def warning_gelu(x):
    import warnings

    warnings.warn("approximate result", UserWarning, stacklevel=1)
    return good_gelu(x)

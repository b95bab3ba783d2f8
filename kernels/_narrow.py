"""Rounding float64 results once to the 16-bit formats.

NumPy rounds float64 to float16 directly and correctly.  ml_dtypes converts float64 to
bfloat16 through float32, a double rounding (1 + 2**-8 + 2**-30 becomes 1, not 1 + 2**-7);
rounding to float32 *to odd* first makes the second rounding exact, because float32 keeps more
than two bits beyond bfloat16's eight (Boldo and Melquiond, "Emulation of FMA and correctly
rounded sums: proved algorithms using rounding to odd", 2008).
"""

import ml_dtypes
import numpy as np

__all__ = ["BFLOAT16", "FLOAT16", "round_once"]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
FLOAT16 = np.dtype(np.float16)


def _to_float32_odd(x: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd: truncate, then set the last bit if inexact."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32)
        back = y.astype(np.float64)
        inexact = np.isfinite(x) & (back != x)
        # round toward zero: step back where round-to-nearest went away from zero
        away = inexact & (np.abs(back) > np.abs(x))
        y = np.where(away, np.nextafter(y, np.float32(0)), y)
        bits = y.view(np.uint32)
        bits = np.where(inexact, bits | np.uint32(1), bits)
    return bits.view(np.float32)


def round_once(x: np.ndarray, dtype) -> np.ndarray:
    """float64 values rounded once (to nearest, ties to even) to ``dtype``."""
    dtype = np.dtype(dtype)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        if dtype == BFLOAT16:
            return _to_float32_odd(x).astype(BFLOAT16)
        return x.astype(dtype)

"""Find where a rounded reference changes value: the thresholds written into the catalog.

The catalog lists edges such as "largest x where sigmoid_f32(x) != 1" as hex literals; the
tests recompute them here by bisection over the ordered floats of the dtype.
"""

import numpy as np

__all__ = ["last_true", "next_up"]

_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _key(x: float, dtype) -> int:
    """Map floats of ``dtype`` to integers in the same order (-0 and +0 adjacent)."""
    dtype = np.dtype(dtype)
    i = int(np.array(x, dtype=dtype).view(_INT[dtype]))
    return i if i >= 0 else -(i - np.iinfo(_INT[dtype]).min) - 1


def _unkey(k: int, dtype) -> float:
    dtype = np.dtype(dtype)
    i = k if k >= 0 else np.iinfo(_INT[dtype]).min - k - 1
    return float(np.array(i, dtype=_INT[dtype]).view(dtype))


def next_up(x: float, dtype) -> float:
    return float(np.nextafter(np.array(x, dtype=dtype), np.array(np.inf, dtype=dtype)))


def last_true(pred, lo: float, hi: float, dtype) -> float:
    """The largest float x of ``dtype`` in [lo, hi) with pred(x), for pred monotone
    (True then False) on [lo, hi], pred(lo) True and pred(hi) False."""
    a, b = _key(lo, dtype), _key(hi, dtype)
    if not pred(_unkey(a, dtype)) or pred(_unkey(b, dtype)):
        raise ValueError(f"predicate must hold at {lo!r} and fail at {hi!r}")
    while b - a > 1:
        m = (a + b) // 2
        if pred(_unkey(m, dtype)):
            a = m
        else:
            b = m
    return _unkey(a, dtype)

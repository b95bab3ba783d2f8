"""The table of the table-driven float32 tanh (``kernels/_simd32_table.py``), derived with mpmath.

|x| falls in one of 32 intervals read from its bits: [0, 1.25·2**-3) (everything below 2**-3
shares the first), then four a binade, [2**e·(1 + k/4), 2**e·(1 + (k + 1)/4)), up to 32.  On
interval j, with c_j its centre (0 for the first) and t = |x| - c_j (exact: |x| and c_j are
within a factor of 2, Sterbenz),

    tanh(|x|) = c0h + (c0l + c1·t + t²·R(t)),

c0h + c0l = tanh(c_j) as a float32 pair (so the value at the centre is not rounded once before
the sum), c1 = sech²(c_j) rounded to float32, R of degree ``DEGREE`` fitted by mpmath.chebyfit
to (tanh(c_j + t) - tanh(c_j) - sech²(c_j)·t)/t² and its coefficients rounded to float32.  Each
term after c0h is at most ~1/9 of the result (|t| <= c_j/9), so their roundings show at a ninth
of their own.  Intervals from 10 up hold tanh = 1 (c0h = 1, the rest 0): tanh rounds to 1
beyond 9.01; the kernel selects 1 for |x| > 10 (from 32 up |x| falls in the last interval
with a growing t, and inf·0 would give NaN).

``fit_tanh_table()`` returns the table (``ROWS`` by 32, float32) and the model's worst error in
float32 ULPs of the exact value, on 401 points an interval with the coefficients as rounded;
``tests/test_simd32_table.py`` checks that ``kernels/tanh_table.npy`` is what this derives.
``python -m reference.tablefit`` writes that file.
"""

from pathlib import Path

import mpmath
import numpy as np

from .polyfit import _chebyfit, _dense, _horner_mp, _pair24, _round24

__all__ = ["BASE", "DEGREE", "INTERVALS", "ONE_FROM", "ROWS", "fit_tanh_table", "intervals"]

DEGREE = 4
INTERVALS = 32
BASE = 2.0**-3  # the first interval's binade: its bits are the index's origin
ONE_FROM = 10.0  # tanh(|x|) is 1 from here on (it rounds to 1 beyond 9.01)
ROWS = ("center", "c0h", "c0l", "c1", *(f"r{k}" for k in range(DEGREE, -1, -1)))
_PREC = 120


def intervals() -> list[tuple[float, float, float]]:
    """(lo, hi, centre) of each interval, as the kernel's index reads them."""
    out = []
    for j in range(INTERVALS):
        e, k = -3 + j // 4, j % 4
        lo, hi = 2.0**e * (1 + k / 4), 2.0**e * (1 + (k + 1) / 4)
        out.append((0.0, hi, 0.0) if j == 0 else (lo, hi, (lo + hi) / 2))
    return out


def _ulps(y, exact) -> mpmath.mpf:
    """|y - exact| in float32 ULPs of exact (> 0, normal here)."""
    return abs(y - exact) / mpmath.ldexp(1, int(mpmath.floor(mpmath.log(exact, 2))) - 23)


def fit_tanh_table(degree: int = DEGREE) -> tuple[np.ndarray, float]:
    table = np.zeros((len(ROWS), INTERVALS), dtype=np.float32)
    worst = mpmath.mpf(0)
    with mpmath.workprec(_PREC):
        for j, (lo, hi, c) in enumerate(intervals()):
            table[0, j] = c
            if lo >= ONE_FROM:
                table[1, j] = 1.0
                continue
            mc = mpmath.mpf(c)
            y0, d1 = mpmath.tanh(mc), 1 / mpmath.cosh(mc) ** 2

            def r(t, mc=mc, y0=y0, d1=d1):
                # the Taylor limit at t = 0: tanh''(c)/2
                return -y0 * d1 if t == 0 else (mpmath.tanh(mc + t) - y0 - d1 * t) / t**2
            coeffs = [_round24(v) for v in _chebyfit(r, [lo - c, hi - c], degree + 1)]
            c0h, c0l = _pair24(y0)
            c1 = _round24(d1)
            table[1:, j] = [c0h, c0l, c1, *coeffs]
            for x in _dense(mpmath.mpf(lo), mpmath.mpf(hi), 401):
                if x > 0:
                    t = x - mc
                    y = mpmath.mpf(c0h) + c0l + c1 * t + t * t * _horner_mp(coeffs, t)
                    worst = max(worst, _ulps(y, mpmath.tanh(x)))
    return table, float(worst)


TABLE_FILE = Path(__file__).resolve().parent.parent / "kernels" / "tanh_table.npy"

if __name__ == "__main__":
    table, bound = fit_tanh_table()
    np.save(TABLE_FILE, table)
    print(f"wrote {TABLE_FILE}: {table.shape[0]} rows by {table.shape[1]} intervals, "
          f"model error at most {bound:.4f} ULP")

"""Taylor expansions of erfcx(z) = exp(z²)·erfc(z) at the nodes j/32, 0 <= z <= 28.5, derived
with mpmath for the float64 Gaussian kernels (gelu, gelu', geglu).

erfcx is smooth and slowly varying where erfc spans 300 decades, so the kernels evaluate
erfc(z) = exp(-z²)·erfcx(z) with exp(-z²) from a double-double exp and erfcx from the node
nearest z: erfcx(t0 + h) = a0 + a1·h + ... + a10·h**10, |h| <= 1/64.  erfcx' = 2z·erfcx - 2/sqrt(pi)
gives the coefficients by the recurrence (k+1)·a_{k+1} = 2·t0·a_k + 2·a_{k-1} (a1 = 2·t0·a0 -
2/sqrt(pi)), which cancels for large t0; it runs at ``PREC`` bits, far above what it loses.

Row j of ``table()`` is (a0_hi, a0_lo, a1, ..., a10) for t0 = j/32: a0 as a pair (hi = RN(a0),
lo = RN(a0 - hi)), the others rounded once.  The first omitted term, a11·h**11, is below 2**-74
of a0 on every node (``truncation_bits``), so the series' error is far below the kernels'
rounding errors.  ``kernels/erfcx_taylor.npy`` holds what ``python -m
actbench_ulp.reference.erfcx_table`` writes; ``tests/test_kernels.py`` derives it again at two
precisions and compares every bit.
"""

import sys
from pathlib import Path

import mpmath
import numpy as np

__all__ = ["DEGREE", "NODES_PER_UNIT", "PREC", "Z_MAX", "table", "truncation_bits"]

NODES_PER_UNIT = 32
Z_MAX = 28.5  # erfc(28.5) ~ 1e-355: below float64's subnormals even times gelu's 40
DEGREE = 10
PREC = 240


def _coefficients(t0: mpmath.mpf, degree: int) -> list:
    a0 = mpmath.erfc(t0) * mpmath.exp(t0 * t0)
    a = [a0, 2 * t0 * a0 - 2 / mpmath.sqrt(mpmath.pi)]
    for k in range(1, degree):
        a.append((2 * t0 * a[k] + 2 * a[k - 1]) / (k + 1))
    return a


def table(prec: int = PREC) -> np.ndarray:
    """The (nodes, DEGREE + 2) float64 table described in the module docstring."""
    rows = []
    with mpmath.workprec(prec):
        for j in range(int(Z_MAX * NODES_PER_UNIT) + 1):
            a = _coefficients(mpmath.mpf(j) / NODES_PER_UNIT, DEGREE)
            hi = float(a[0])
            rows.append([hi, float(a[0] - hi), *(float(c) for c in a[1:])])
    return np.array(rows, dtype=np.float64)


def truncation_bits(prec: int = PREC) -> float:
    """log2 of the largest first omitted term a11·(1/64)**11 relative to a0 over the nodes."""
    worst = mpmath.mpf(0)
    with mpmath.workprec(prec):
        h = mpmath.mpf(1) / (2 * NODES_PER_UNIT)
        for j in range(int(Z_MAX * NODES_PER_UNIT) + 1):
            a = _coefficients(mpmath.mpf(j) / NODES_PER_UNIT, DEGREE + 1)
            worst = max(worst, abs(a[-1]) * h ** (DEGREE + 1) / a[0])
        return float(mpmath.log(worst, 2))


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "kernels" / "erfcx_taylor.npy"
    first, second = table(), table(PREC + 80)
    if not np.array_equal(first.view(np.uint64), second.view(np.uint64)):
        print(f"erfcx table: {PREC} and {PREC + 80} bits disagree", file=sys.stderr)
        return 1
    np.save(out, first)
    print(f"wrote {out}: {first.shape[0]} nodes, degree {DEGREE}, "
          f"first omitted term below 2**{truncation_bits():.1f} of a0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Error metrics against exact values: pure NumPy, no pandas, no I/O.

``ulp_error`` is the fractional distance |got - exact| in units of the target format's ULP
*at the exact value*: a correctly rounded result scores <= 0.5.  The ULP is that of the
binade holding the exact value, clamped below at the smallest subnormal (so a wrong tiny
result counts in subnormal ULPs rather than vanishing), and continued past the largest
finite number (so an overflow-edge error is a finite number of ULPs).

Special values are judged apart: a NaN where the exact value is not NaN (or the reverse), an
infinity where the exact value rounds to a finite number (or the reverse, or the wrong
sign), and a zero of the wrong sign are *special-value mismatches*.  They get no ULP error
and are always failures.
"""

from dataclasses import dataclass

import numpy as np

from actbench_ulp.reference import format_of

__all__ = [
    "MISMATCH_KINDS",
    "ErrorSummary",
    "mismatch_kind",
    "summarize",
    "ulp_at",
    "ulp_error",
]

MISMATCH_KINDS = ("nan", "infinity", "zero_sign")


def ulp_at(hi: np.ndarray, lo: np.ndarray, dtype) -> np.ndarray:
    """One ULP of ``dtype`` at the exact value hi + lo (float64 array)."""
    fmt = format_of(dtype)
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        m, e = np.frexp(np.abs(hi))  # |hi| = m·2**e, m in [0.5, 1)
        e = e.astype(np.int64) - 1  # floor(log2 |hi|)
        # hi is RN(exact): an exact value just below a power of two may round up to it.
        below_power = (m == 0.5) & (lo != 0) & (np.sign(lo) != np.sign(hi))
        e = np.where(below_power, e - 1, e)
        e = np.where(hi == 0, fmt.emin, e)
        e = np.clip(e, fmt.emin, fmt.emax)
    return np.ldexp(1.0, (e - fmt.p + 1).astype(np.int32))


def mismatch_kind(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Per element: '' where special values agree, else one of MISMATCH_KINDS."""
    got = np.asarray(got)
    want = np.asarray(want)
    kind = np.full(got.shape, "", dtype=object)
    nan = np.isnan(got) != np.isnan(want)
    both = ~np.isnan(got) & ~np.isnan(want)
    inf = both & (np.isinf(got) | np.isinf(want)) & (got != want)
    zero = both & (got == 0) & (want == 0) & (np.signbit(got) != np.signbit(want))
    kind[zero] = "zero_sign"
    kind[inf] = "infinity"
    kind[nan] = "nan"
    return kind


def ulp_error(got: np.ndarray, hi: np.ndarray, lo: np.ndarray, dtype=None) -> np.ndarray:
    """|got - (hi + lo)| / ulp(hi + lo); 0 where got equals an infinite or NaN exact value,
    NaN where the comparison is a special-value mismatch (see ``mismatch_kind``)."""
    got = np.asarray(got)
    dtype = got.dtype if dtype is None else dtype
    with np.errstate(invalid="ignore", over="ignore"):  # a signalling NaN may be cast
        g = got.astype(np.float64)
        err = np.abs((g - hi) - lo) / ulp_at(hi, lo, dtype)
    finite = np.isfinite(g) & np.isfinite(hi)
    same_special = (g == hi) | (np.isnan(g) & np.isnan(hi))
    return np.where(finite, err, np.where(same_special, 0.0, np.nan))


@dataclass(frozen=True)
class ErrorSummary:
    n: int
    max_ulp: float
    p99_ulp: float
    mean_ulp: float
    max_abs: float
    max_rel: float
    special_mismatches: int
    worst: np.ndarray  # indices, worst first: mismatches, then by ULP error

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "n", "max_ulp", "p99_ulp", "mean_ulp", "max_abs", "max_rel", "special_mismatches"
        )}


def summarize(got: np.ndarray, want: np.ndarray, hi: np.ndarray, lo: np.ndarray,
              n_worst: int = 5) -> ErrorSummary:
    """Aggregate errors of ``got`` against exact values; ``want`` is the correctly rounded
    value in got's dtype (used for the special-value checks)."""
    got = np.asarray(got).ravel()
    want = np.asarray(want).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    lo = np.asarray(lo, dtype=np.float64).ravel()
    kinds = mismatch_kind(got, want)
    bad = kinds != ""
    ulps = ulp_error(got, hi, lo, want.dtype)
    ulps = np.where(bad, np.nan, ulps)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        g = got.astype(np.float64)
        abs_err = np.abs((g - hi) - lo)
        rel_err = np.where(hi != 0, abs_err / np.abs(hi), np.nan)
    ok = ~bad & np.isfinite(ulps)
    abs_ok = ok & np.isfinite(abs_err)
    rel_ok = abs_ok & np.isfinite(rel_err)
    score = np.where(bad, np.inf, np.where(np.isnan(ulps), -1.0, ulps))
    worst = np.argsort(-score, kind="stable")[:n_worst]
    with np.errstate(over="ignore"):  # a mean of huge ULP errors may overflow: inf is honest
        stats = dict(
            max_ulp=float(ulps[ok].max()) if ok.any() else 0.0,
            p99_ulp=float(np.percentile(ulps[ok], 99)) if ok.any() else 0.0,
            mean_ulp=float(ulps[ok].mean()) if ok.any() else 0.0,
            max_abs=float(abs_err[abs_ok].max()) if abs_ok.any() else 0.0,
            max_rel=float(rel_err[rel_ok].max()) if rel_ok.any() else 0.0,
        )
    return ErrorSummary(
        n=int(got.size),
        **stats,
        special_mismatches=int(bad.sum()),
        worst=worst,
    )

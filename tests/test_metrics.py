"""ULP metric corner cases: each expectation is derived by hand in the comment beside it."""

import numpy as np
import pytest

from actbench_ulp.core import metrics

F32_ULP1 = 2.0**-23  # ULP of float32 on [1, 2)
SUB32 = 2.0**-149  # smallest float32 subnormal


def ulp(got, exact, dtype=np.float32, lo=0.0):
    return float(metrics.ulp_error(np.array([got], dtype=dtype), np.array([exact]),
                                   np.array([lo]), dtype)[0])


def test_exact_result_is_zero_ulp():
    assert ulp(1.5, 1.5) == 0.0


def test_half_ulp_is_the_correct_rounding_bound():
    # exact 1 + ULP/2 is a tie; either neighbour is exactly 0.5 ULP away
    assert ulp(1.0, 1.0 + F32_ULP1 / 2) == 0.5
    assert ulp(1.0 + F32_ULP1, 1.0 + F32_ULP1 / 2) == 0.5


def test_ulp_is_taken_at_the_exact_value_not_the_result():
    # exact just below 2 (hi rounds up to 2.0, lo < 0): the ULP is that of [1, 2), 2**-23,
    # so returning 2 - 2**-23 for exact 2 - 2**-30 is (2**-23 - 2**-30)/2**-23 ULP off
    exact = 2.0 - 2.0**-30
    got = 2.0 - F32_ULP1
    assert ulp(got, 2.0, lo=-(2.0**-30)) == pytest.approx((F32_ULP1 - 2.0**-30) / F32_ULP1)
    assert ulp(got, exact) == pytest.approx((F32_ULP1 - 2.0**-30) / F32_ULP1)


def test_subnormal_results_count_in_subnormal_ulps():
    assert ulp(0.0, SUB32 / 2) == 0.5  # tie between 0 and the smallest subnormal
    assert ulp(SUB32, 3 * SUB32) == 2.0
    # the ULP is clamped at the smallest subnormal: an exact 1e-60 returned as 0 is 1e-60/2**-149
    assert ulp(0.0, 1e-60) == pytest.approx(1e-60 / SUB32)
    assert ulp(SUB32, 1e-60) == pytest.approx(1.0)


def test_zero_exact_value():
    assert ulp(0.0, 0.0) == 0.0
    assert ulp(-SUB32, 0.0) == 1.0


def test_float64_subnormal_ulp():
    assert ulp(5e-324, 0.0, np.float64) == 1.0


def test_ulp_is_continued_past_the_largest_float():
    big = float(np.finfo(np.float32).max)
    ulp_max = 2.0**104  # ULP of float32 at its largest binade
    assert ulp(big, big + ulp_max, np.float32) == 1.0


def test_infinities_and_nan_are_special_value_mismatches():
    got = np.array([np.inf, 3.0, np.nan, 1.0, np.inf, np.nan, 0.0, -0.0], dtype=np.float32)
    want = np.array([np.inf, np.inf, 1.0, np.nan, -np.inf, np.nan, -0.0, -0.0], dtype=np.float32)
    kinds = metrics.mismatch_kind(got, want).tolist()
    assert kinds == ["", "infinity", "nan", "nan", "infinity", "", "zero_sign", ""]
    err = metrics.ulp_error(got, want.astype(np.float64), np.zeros(8))
    assert err[0] == 0.0 and err[5] == 0.0  # a matching infinity or NaN is exact


def test_summary_counts_mismatches_apart_and_puts_them_first():
    got = np.array([1.0, np.nan, 1.0 + F32_ULP1], dtype=np.float32)
    want = np.array([1.0, 2.0, 1.0], dtype=np.float32)
    s = metrics.summarize(got, want, want.astype(np.float64), np.zeros(3))
    assert s.special_mismatches == 1
    assert s.max_ulp == 1.0  # the NaN gets no ULP error; the 1-ULP miss is the max
    assert list(s.worst[:2]) == [1, 2]

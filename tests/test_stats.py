"""The gate's statistics on synthetic samples (no timing is measured here)."""

import numpy as np
import pytest

from actbench_ulp.gate import stats


def test_mann_whitney_p_value_is_exact_for_fully_separated_samples():
    # new = 6..10 above base = 1..5: of the C(10, 5) = 252 equally likely rankings under the
    # null hypothesis only this one is as extreme, so the exact one-sided p is 1/252
    t = stats.shift_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert t.p_slower == pytest.approx(1 / 252)
    assert t.p_faster == pytest.approx(1.0)
    assert t.ratio == pytest.approx(8 / 3)


def test_identical_distributions_are_not_called_different():
    rng = np.random.default_rng(1)
    p = [stats.shift_test(rng.lognormal(0, 0.05, 50), rng.lognormal(0, 0.05, 50)).p_slower
         for _ in range(400)]
    # under the null hypothesis p is uniform: about 5 % of tests fall below 0.05 (binomial
    # 400 × 0.05 = 20 ± 4.4; 35 is 3.4 sigma out)
    assert 5 <= sum(q < 0.05 for q in p) <= 35


def test_a_25_percent_shift_is_found_with_20_samples():
    rng = np.random.default_rng(2)
    base, new = rng.lognormal(0, 0.05, 20), 1.25 * rng.lognormal(0, 0.05, 20)
    t = stats.shift_test(base, new)
    assert t.p_slower < 1e-6 and t.ratio == pytest.approx(1.25, rel=0.05)


def test_too_few_samples_are_untestable_not_significant():
    t = stats.shift_test([1, 1.1, 1.2, 1.3], [2, 2.1, 2.2, 2.3])
    assert np.isnan(t.p_slower) and np.isnan(t.p_faster)
    assert stats.verdicts([t.ratio], [np.nan], [np.nan], 0.05, 1.1)[0] == "untestable"


def test_shift_test_refuses_empty_sides():
    with pytest.raises(ValueError, match="at least one finite sample"):
        stats.shift_test([], [1.0])


def test_benjamini_hochberg_by_hand():
    # sorted p: 0.005, 0.01, 0.03, 0.04 (m = 4); q_(i) = min over k >= i of p_(k) m / k:
    # 0.005·4/1 = 0.02 and 0.01·4/2 = 0.02; 0.03·4/3 = 0.04 and 0.04·4/4 = 0.04
    q = stats.bh_adjust([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])


def test_benjamini_hochberg_ignores_untestable_entries():
    q = stats.bh_adjust([0.01, np.nan, 0.02])
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], [0.02, 0.02])  # m = 2, not 3


def test_one_real_change_among_many_survives_the_correction():
    rng = np.random.default_rng(3)
    p = [stats.shift_test(rng.lognormal(0, 0.05, 30), rng.lognormal(0, 0.05, 30)).p_slower
         for _ in range(199)]
    p.append(stats.shift_test(rng.lognormal(0, 0.05, 30), 1.25 * rng.lognormal(0, 0.05, 30)).p_slower)
    q = stats.bh_adjust(p)
    assert q[-1] < 0.05
    assert (q[:-1] > 0.05).all()  # and no null benchmark is called (FDR 5 %: ~0 expected)


@pytest.mark.parametrize(("ratio", "q_slow", "q_fast", "want"), [
    (1.30, 1e-9, 1.0, "slower"),
    (1.05, 1e-9, 1.0, "same"),  # significant but below the 10 % minimum effect: drift
    (1.30, 0.2, 1.0, "same"),  # large but not significant after correction
    (0.80, 1.0, 1e-9, "faster"),
    (0.95, 1.0, 1e-9, "same"),
])
def test_verdict_needs_both_significance_and_effect(ratio, q_slow, q_fast, want):
    assert stats.verdicts([ratio], [q_slow], [q_fast], 0.05, 1.10)[0] == want


def test_verdict_threshold_per_row():
    # a noisy benchmark (threshold 1.4) is not called slower at 1.3; a steady one (1.1) is
    got = stats.verdicts([1.3, 1.3], [1e-9, 1e-9], [1.0, 1.0], 0.05, [1.4, 1.1])
    assert list(got) == ["same", "slower"]

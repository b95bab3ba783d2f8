"""The references: single correct rounding, the two-precision self-check, specials, and
each derivative reference against mpmath's numerical differentiation."""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from actbench_ulp import reference
from actbench_ulp.core.catalog import CATALOG
from actbench_ulp.reference import FORMATS, REFERENCES, ReferenceDisagreement, evaluate, round_to_format

F32, F64 = FORMATS["float32"], FORMATS["float64"]


def test_round_half_even_and_no_double_rounding_through_float64():
    # 1 + 2**-24 + 2**-60 is just above the float32 tie 1 + 2**-24: it must round up.
    # Through float64 it would first become the tie itself, then round to even (1.0).
    with mpmath.workprec(100):
        v = mpmath.mpf(1) + mpmath.mpf(2) ** -24 + mpmath.mpf(2) ** -60
    assert round_to_format(v, F32) == 1 + 2.0**-23
    assert float(np.float32(float(v))) == 1.0  # the double rounding we avoid
    assert round_to_format(mpmath.mpf(1) + mpmath.mpf(2) ** -24, F32) == 1.0  # tie to even


def test_subnormals_overflow_and_signed_underflow():
    sub = 2.0**-149
    assert round_to_format(mpmath.mpf(sub) * 1.5, F32) == 2 * sub  # tie 1.5 -> even 2
    assert round_to_format(mpmath.mpf(sub) * 0.5, F32) == 0.0  # tie 0.5 -> even 0
    tiny_neg = round_to_format(-mpmath.mpf(2) ** -3000, F64)
    assert tiny_neg == 0.0 and math.copysign(1, tiny_neg) == -1
    fmax = float(np.finfo(np.float32).max)
    half_ulp = 2.0**103
    assert round_to_format(mpmath.mpf(fmax) + half_ulp, F32) == math.inf  # tie goes to even: inf
    assert round_to_format(mpmath.mpf(fmax) + half_ulp * 0.99, F32) == fmax


def test_exact_rationals_decide_ties_no_precision_can():
    # hardswish(x) = x/2 + x²/6 at x = -0x1.1cp-143 is 2**-146 (relative) from a float32 tie
    x = Fraction(float.fromhex("-0x1.1cp-143"))
    assert round_to_format(x * (x + 3) / 6, F32) == pytest.approx(-4.90454462513686e-44)


def test_disagreeing_precisions_are_resolved_by_raising_precision():
    # At 96 bits this is the tie 1 + 2**-24 (rounds to even, 1); at 144 bits it is above the
    # tie.  Ziv's loop keeps doubling until two precisions agree: the correct 1 + 2**-23.
    def near_tie(x):
        return mpmath.mpf(1) + mpmath.mpf(2) ** -24 + mpmath.mpf(2) ** -120

    assert evaluate(near_tie, np.array([1.0], np.float32)).want[0] == np.float32(1 + 2.0**-23)


def test_a_reference_that_never_settles_is_an_error():
    # flips to the other side of the tie at every doubling of the precision
    def unstable(x):
        sign = (-1) ** mpmath.mp.prec.bit_length()
        return mpmath.mpf(1) + mpmath.mpf(2) ** -24 + sign * mpmath.mpf(2) ** (-mpmath.mp.prec + 8)

    with pytest.raises(ReferenceDisagreement, match=r"unstable\(0x1.0000000000000p\+0\)"):
        evaluate(unstable, np.array([1.0], np.float32), name="unstable")


def test_evaluate_returns_target_dtype_and_double_double():
    ex = evaluate(REFERENCES["sigmoid"], np.array([0.5, -1000.0], np.float32))
    assert ex.want.dtype == np.float32
    assert ex.want[1] == 0.0
    with mpmath.workprec(200):
        exact = 1 / (1 + mpmath.exp(-0.5))
        assert abs(mpmath.mpf(ex.hi[0]) + ex.lo[0] - exact) < mpmath.mpf(2) ** -100


@pytest.mark.parametrize(("name", "x", "want"), [
    ("gelu", -math.inf, -0.0), ("silu", -math.inf, -0.0), ("mish", -math.inf, -0.0),
    ("d_gelu", -math.inf, -0.0), ("gelu", -0.0, -0.0), ("tanh", -0.0, -0.0),
    ("relu", -0.0, 0.0), ("sigmoid", math.inf, 1.0), ("log_sigmoid", math.inf, -0.0),
    ("d_mish", 0.0, 0.6), ("d_relu", 0.0, 0.0), ("d_elu", 0.0, 1.0),
])
def test_special_values(name, x, want):
    params = next(a.params for a in CATALOG.values()
                  if name in (a.name, f"d_{a.name}"))
    got = round_to_format(REFERENCES[name](x, **params), F64)
    assert got == want and math.copysign(1, got) == math.copysign(1, want)


def test_traps_named_in_the_issue():
    # float64 gelu(-20) ~ -5.507248237212468e-88; float32 tanh'(20) ~ 1.6993417e-17
    assert evaluate(REFERENCES["gelu"], np.array([-20.0])).want[0] == -5.507248237212468e-88
    assert evaluate(REFERENCES["d_tanh"], np.array([20.0], np.float32)).want[0] == np.float32(
        1.6993417e-17)


DIFF_POINTS = [-3.3, -0.7, 0.4, 2.5]


ELEMENTWISE = [a for a in CATALOG.values() if a.kind == "elementwise"]


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_derivative_reference_matches_numerical_derivative(act):
    fwd, der = act.reference("forward"), act.reference("derivative")
    for x in DIFF_POINTS:
        with mpmath.workprec(160):
            analytic = _mp(der(x, **act.params))
            if fwd.rational:
                # exact central difference: exact for the quadratics, O(h²) = 2**-160 otherwise
                h = Fraction(1, 2**80)
                params = {k: Fraction(v) for k, v in act.params.items()}
                x_ = Fraction(x)
                numeric = _mp((fwd.fn(x_ + h, **params) - fwd.fn(x_ - h, **params)) / (2 * h))
            else:
                numeric = mpmath.diff(lambda t: fwd.fn(t, **act.params), mpmath.mpf(x))
            assert abs(numeric - analytic) <= mpmath.mpf(10) ** -30 * max(1, abs(analytic)), (
                act.name, x, numeric, analytic)


def _mp(v):
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return mpmath.mpf(v)


def test_working_precision_is_several_times_the_target():
    assert reference.working_precisions(np.float32) == (96, 144)
    assert reference.working_precisions(np.float64) == (212, 318)

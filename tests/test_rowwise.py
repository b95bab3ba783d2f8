"""softmax / log_softmax: conventions for undefined rows, shapes and axes, and the theory
notebook's softmax checks (15-19) against our kernels."""

import itertools
import math

import numpy as np
import pytest

from actbench_ulp import kernels
from actbench_ulp.accuracy import audit, table
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.core.catalog import CATALOG, Case, Variant

ROWWISE = [kernels.softmax, kernels.log_softmax]
VJPS = [kernels.softmax_vjp, kernels.log_softmax_vjp]
INF = np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_masked_row_is_zero_probability_and_zero_gradient(dtype):
    # documented convention: a fully masked (all -inf) row contributes nothing, not NaN
    x = np.full((1, 4), -INF, dtype)
    g = np.ones_like(x)
    np.testing.assert_array_equal(kernels.softmax(x), 0.0)
    np.testing.assert_array_equal(kernels.log_softmax(x), -INF)
    np.testing.assert_array_equal(kernels.softmax_vjp(x, g), 0.0)
    np.testing.assert_array_equal(kernels.log_softmax_vjp(x, g), 0.0)


def test_infinite_and_nan_entries():
    x = np.array([[INF, 1.0, INF, -INF], [-INF, 0.0, 1.0, 2.0], [np.nan, 1.0, 2.0, 3.0]])
    s = kernels.softmax(x)
    np.testing.assert_array_equal(s[0], [0.5, 0.0, 0.5, 0.0])  # +inf entries share the mass
    assert s[1, 0] == 0 and not np.signbit(s[1, 0]) and s[1].sum() == pytest.approx(1.0)
    assert np.isnan(s[2]).all()
    ls = kernels.log_softmax(x)
    np.testing.assert_array_equal(ls[0], [-math.log(2), -INF, -math.log(2), -INF])
    assert ls[1, 0] == -INF and np.isnan(ls[2]).all()
    g = np.ones_like(x)
    v = kernels.softmax_vjp(x, g)
    assert v[1, 0] == 0 and not np.signbit(v[1, 0])  # a zero probability passes no gradient


def test_offset_by_1000_gives_the_same_answer():
    # seed check 16: shift invariance. x - max is exact for both rows, so bit-identical
    z = np.array([[2.0, 1.0, -1.0]])
    np.testing.assert_array_equal(kernels.softmax(z + 1000), kernels.softmax(z))
    np.testing.assert_array_equal(kernels.log_softmax(z - 1000), kernels.log_softmax(z))
    g = np.array([[0.3, -1.0, 2.0]])
    np.testing.assert_array_equal(kernels.softmax_vjp(z + 1000, g), kernels.softmax_vjp(z, g))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_length_one_rows(dtype):
    x = np.array([[3.5], [-1e30], [0.0]], dtype)
    g = np.array([[2.0], [-1.0], [7.0]], dtype)
    np.testing.assert_array_equal(kernels.softmax(x), 1.0)
    np.testing.assert_array_equal(kernels.log_softmax(x), 0.0)
    np.testing.assert_array_equal(kernels.softmax_vjp(x, g), 0.0)
    np.testing.assert_array_equal(kernels.log_softmax_vjp(x, g), 0.0)


@pytest.mark.parametrize("kernel", ROWWISE, ids=lambda k: k.name)
def test_any_axis(kernel):
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    for axis in range(3):
        moved = np.moveaxis(x, axis, -1)
        want = np.moveaxis(kernel(np.ascontiguousarray(moved)), -1, axis)
        np.testing.assert_array_equal(kernel(x, axis=axis), want)
    out = np.empty_like(x)
    assert kernel(x, axis=0, temperature=2.0, out=out) is out


def test_vjp_along_a_non_last_axis_and_float32_dtype():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    g = rng.normal(size=(5, 3)).astype(np.float32)
    for vjp in VJPS:
        y = vjp(x, g, axis=0)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, vjp(x.T.copy(), g.T.copy()).T)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"temperature": 0.0}, "temperature must be a finite number > 0"),
    ({"temperature": np.nan}, "temperature must be a finite number > 0"),
])
def test_bad_temperature(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernels.softmax(np.ones(3), **kwargs)


def test_vjp_needs_a_matching_gradient():
    with pytest.raises(ValueError, match="g must be float64 of shape"):
        kernels.softmax_vjp(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="needs the upstream gradient"):
        kernels.softmax_vjp(np.ones(3))


# --- the theory notebook's checks 15-19, on our kernels ------------------------------------

Z = np.array([2.0, 1.0, -1.0])


def test_seed_15_softmax_sums_to_one():
    # exact probabilities rounded once each: the float sum is within n/2 ULP of 1
    assert abs(kernels.softmax(Z).sum() - 1.0) <= 1.5 * np.finfo(float).eps


def test_seed_17_temperature_raises_entropy_monotonically():
    entropies = []
    for tau in [0.25, 0.5, 1.0, 2.0, 4.0]:
        s = kernels.softmax(Z, temperature=tau)
        entropies.append(-(s * kernels.log_softmax(Z, temperature=tau)).sum())
    assert all(a < b for a, b in itertools.pairwise(entropies))
    assert entropies[-1] < math.log(3)  # bounded by the uniform distribution's


def test_seed_18_softmax_jacobian_rows_sum_to_zero_and_it_is_psd():
    s = kernels.softmax(Z)
    # J from the VJP with unit vectors: J = diag(s) - s sᵀ is symmetric, so Jᵀe_k = J e_k
    jac = np.stack([kernels.softmax_vjp(Z, e) for e in np.eye(3)])
    # the float64 formula rounds s_i - s_i² itself (1 ULP of 0.2 is 2.8e-17)
    np.testing.assert_allclose(jac, np.diag(s) - np.outer(s, s), rtol=0, atol=6e-17)
    assert np.abs(jac.sum(axis=1)).max() < 1e-16
    assert np.linalg.eigvalsh(jac).min() > -1e-16


def test_seed_19_twenty_zero_minus_twenty_saturates():
    s = kernels.softmax(np.array([20.0, 0.0, -20.0]))
    assert s[0] > 0.999999 and 0 < s[2] < 1e-17  # the tail is tiny but not flushed to 0


# --- a deliberately wrong softmax is caught, its worst row reported ----------------------


def _naive_softmax(x, axis=-1, temperature=1.0):
    with np.errstate(all="ignore"):
        e = np.exp(x / temperature)  # no max shift: overflows at x/tau > 709
        return e / e.sum(axis=axis, keepdims=True)


def test_softmax_without_max_shift_is_caught_with_its_row():
    act = CATALOG["softmax"]
    case = Case(act, Variant("naive", {"forward": _naive_softmax}, "exp(x)/sum exp(x)"), "forward")

    class Budgets:
        def get_any(self, *key):
            return load_budgets().get_any(act.name, "accurate", *key[2:])

    row = audit.audit(case, "float64", "thresholds", Budgets())
    assert not row["passed"] and row["special_mismatches"] > 0
    report = "\n".join(table.failures_report(table.to_frame([row])))
    assert "FAIL softmax.naive.forward float64 thresholds" in report
    assert "row=[" in report and "got nan" in report  # the offending short row, replayable


def test_empty_rows_and_gated_out_checks():
    assert kernels.softmax(np.empty((3, 0), np.float32)).shape == (3, 0)
    with pytest.raises(ValueError, match="out must be a float32 array of shape"):
        kernels.glu(np.ones(2, np.float32), np.ones(2, np.float32), out=np.empty(2))

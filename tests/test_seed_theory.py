"""The theory notebook's numbered checks (shared/seeds/000_*) that concern activation
behaviour, run against our kernels; hypothesis where the property holds for every input.
(Checks 12–19, gated and softmax, live in test_gated.py and test_rowwise.py.)"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actbench_ulp import kernels

DTYPES = (np.float32, np.float64)


def finite(dtype, **kw):
    return st.floats(allow_nan=False, allow_infinity=False,
                     width=32 if dtype == np.float32 else 64, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_02_sigmoid_derivative_at_most_a_quarter(dtype):
    @given(finite(dtype))
    def check(x):
        d = kernels.d_sigmoid(np.array([x], dtype))[0]
        assert 0 <= d <= 0.25  # σ' = σ(1-σ) ≤ 1/4, with equality only at 0

    check()
    assert kernels.d_sigmoid(np.array([0.0], dtype))[0] == 0.25


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_03_tanh_derivative_at_most_one(dtype):
    @given(finite(dtype))
    def check(x):
        assert 0 <= kernels.d_tanh(np.array([x], dtype))[0] <= 1

    check()
    assert kernels.d_tanh(np.array([0.0], dtype))[0] == 1


def test_seed_05_saturation_at_plus_minus_ten():
    # the notebook's table: sigmoid'(±10) = 4.539787e-05, tanh'(±10) = 8.244614e-09
    x = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    e = math.exp(-10.0)
    np.testing.assert_allclose(kernels.d_sigmoid(x)[[0, 4]], e / (1 + e) ** 2, rtol=1e-15)
    np.testing.assert_allclose(kernels.d_tanh(x)[[0, 4]], 1 / math.cosh(10.0) ** 2, rtol=1e-14)
    # both gradients fall monotonically away from 0
    assert np.all(np.diff(kernels.d_sigmoid(x[2:])) < 0) and np.all(np.diff(kernels.d_tanh(x[2:])) < 0)


def test_seed_06_an_activation_breaks_the_affine_collapse():
    w1, w2 = np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([[2.0, -1.0], [1.0, 0.5]])
    b1, b2 = np.array([0.5, -1.0]), np.array([1.0, 2.0])
    x0 = np.array([3.0, -2.0])
    collapsed = (w2 @ w1) @ x0 + (w2 @ b1 + b2)
    np.testing.assert_allclose(w2 @ (w1 @ x0 + b1) + b2, collapsed)  # no activation: one layer
    # with ReLU between, W1·x0 + b1 = (-0.5, -3) is cut to 0: the output is b2, not (3, 0)
    np.testing.assert_array_equal(w2 @ kernels.relu(w1 @ x0 + b1) + b2, b2)
    assert not np.allclose(b2, collapsed)


def test_seed_07_relu_zeroes_about_half_of_a_standard_normal():
    z = np.random.default_rng(7).standard_normal(100_000)
    frac = np.mean(kernels.relu(z) == 0)
    # P(z ≤ 0) = 1/2; binomial sd = 0.0016, the bound is 6 sd
    assert abs(frac - 0.5) < 0.01
    np.testing.assert_array_equal(kernels.relu(z) == 0, z <= 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_08_leaky_relu_keeps_negative_values_and_gradient(dtype):
    tiny = float(np.finfo(dtype).smallest_subnormal)

    # |x|·slope above the smallest subnormal, so the product cannot round to -0
    @given(finite(dtype, max_value=-(2.0 ** math.ceil(math.log2(tiny / 0.01) + 1))),
           st.sampled_from([0.01, 0.1, 0.2]))
    def check(x, slope):
        xs = np.array([x], dtype)
        assert kernels.leaky_relu(xs, negative_slope=slope)[0] < 0
        assert kernels.d_leaky_relu(xs, negative_slope=slope)[0] == dtype(slope)

    check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_09_softplus_tends_to_relu_in_the_tails(dtype):
    @given(finite(dtype, min_value=8.0))
    def check(x):
        xs = np.array([x, -x], dtype)
        gap = np.abs(kernels.softplus(xs).astype(np.float64) - kernels.relu(xs))
        # softplus(x) - relu(x) = log1p(exp(-|x|)) <= exp(-8) = 3.4e-4 (the notebook's < 1e-3),
        # plus the float32 rounding of softplus(x) ~ x itself
        with np.errstate(over="ignore"):  # spacing(max) is the next binade's: inf
            ulp = np.spacing(dtype(x))
        assert np.all(gap <= math.exp(-8) + 2 * ulp)

    check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_10_gelu_and_silu_dip_slightly_below_zero(dtype):
    @given(finite(dtype, min_value=-5.0, max_value=-(2.0**-100)))
    def check(x):
        xs = np.array([x], dtype)
        # minima: gelu -0.16997 at x = -0.7518, silu -0.27846 at x = -1.2785
        assert -0.1700 < kernels.gelu(xs)[0] < 0
        assert -0.2785 < kernels.silu(xs)[0] < 0

    check()


def test_seed_11_smooth_derivatives_at_zero():
    zero = np.array([0.0])
    assert kernels.d_gelu(zero)[0] == 0.5 and kernels.d_silu(zero)[0] == 0.5
    assert kernels.d_mish(zero)[0] == 0.6  # tanh(ln 2) = 3/5


def test_seed_20_activation_moments_on_a_standard_normal():
    x = np.random.default_rng(20).standard_normal((5000, 128))
    n = x.size
    # closed forms: E relu = 1/√(2π), Var relu = 1/2 - 1/(2π); E gelu = E x·Φ(x) = 1/(2√π);
    # E tanh = 0 (odd). Tolerances are 5 standard errors (sd ≤ 1 for each).
    relu = kernels.relu(x)
    assert abs(relu.mean() - 1 / math.sqrt(2 * math.pi)) < 5 / math.sqrt(n)
    assert abs(relu.var() - (0.5 - 1 / (2 * math.pi))) < 5 * 0.75 / math.sqrt(n)
    assert abs(kernels.gelu(x).mean() - 1 / (2 * math.sqrt(math.pi))) < 5 / math.sqrt(n)
    assert abs(kernels.tanh(x).mean()) < 5 / math.sqrt(n)
    assert np.isfinite(kernels.silu(x).var())


def test_seed_21_22_he_init_keeps_the_relu_signal_and_xavier_halves_it():
    rng = np.random.default_rng(22)
    n_in, n_out = 256, 128
    var_xavier, var_he = 2 / (n_in + n_out), 2 / n_in
    assert var_he > var_xavier
    x = rng.standard_normal((4096, n_in))
    a_he = kernels.relu(x @ rng.normal(scale=math.sqrt(var_he), size=(n_in, n_out)))
    a_xv = kernels.relu(x @ rng.normal(scale=math.sqrt(var_xavier), size=(n_in, n_out)))
    # E[relu(z)^2] = Var(z)/2 with Var(z) = n_in·var_w: He keeps the second moment at 1,
    # Xavier gives n_in/(n_in+n_out) = 2/3 (the sampled weights add ~2 % of noise)
    assert abs(np.mean(a_he**2) - 1.0) < 0.05
    assert abs(np.mean(a_xv**2) - n_in / (n_in + n_out)) < 0.05
    a_tanh = kernels.tanh(x @ rng.normal(scale=math.sqrt(var_xavier), size=(n_in, n_out)))
    assert np.isfinite(a_tanh.var()) and 0 < a_tanh.var() < 1


def test_seed_23_forty_sigmoid_layers_vanish():
    slopes = kernels.d_sigmoid(np.zeros(40))  # the largest slope there is, 1/4
    product = np.prod(slopes)
    assert product == 2.0**-80 and product < 1e-20  # exact: 1/4 = 2^-2 forty times


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40))
def test_seed_24_a_relu_path_survives_only_if_every_unit_is_active(pre):
    pre = np.array(pre)
    survives = np.prod(kernels.d_relu(pre)) == 1
    assert survives == bool(np.all(pre > 0))


def test_seed_25_a_negatively_biased_layer_is_dead():
    pre = np.random.default_rng(25).normal(loc=-3.0, scale=0.5, size=(1000, 32))
    active = np.mean(kernels.d_relu(pre) > 0, axis=0)
    # P(z > 0) = Φ(-6) ≈ 1e-9: every unit is dead-like (active < 1 %)
    assert np.sum(active < 0.01) == 32

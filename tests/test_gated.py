"""GLU family: the split-in-half calling form, tails where the gate underflows, and the
theory notebook's gate checks (12-14) against our kernels."""

import numpy as np
import pytest

from actbench_ulp import kernels, reference
from actbench_ulp.core import metrics
from actbench_ulp.core.budgets import load_budgets

GATED = [kernels.glu, kernels.geglu, kernels.swiglu, kernels.reglu]


@pytest.mark.parametrize("kernel", GATED, ids=lambda k: k.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_in_half_form_agrees_with_two_inputs(kernel, dtype):
    x = np.random.default_rng(2).normal(size=(3, 4, 6)).astype(dtype)
    np.testing.assert_array_equal(kernel(x), kernel(x[..., :3], x[..., 3:]))
    np.testing.assert_array_equal(kernel(x, dim=1), kernel(x[:, :2], x[:, 2:]))
    assert kernel(x).dtype == dtype


def test_odd_split_and_mixed_dtypes_are_refused():
    with pytest.raises(ValueError, match="dimension -1 is of size 5; it must be even"):
        kernels.glu(np.ones(5))
    with pytest.raises(TypeError, match="a is float32 but b is float64"):
        kernels.glu(np.ones(2, np.float32), np.ones(2))


def test_product_survives_where_the_gate_alone_underflows():
    # gelu(-40) ~ -1.5e-350 underflows, but 1e300·gelu(-40) ~ -1.46e-50 does not
    y = kernels.geglu(np.array([1e300]), np.array([-40.0]))[0]
    assert y == pytest.approx(-1.4623574e-48, rel=1e-6)
    # sigmoid(-800) ~ e**-800 underflows; inf times a tiny positive gate is inf, not NaN
    assert kernels.glu(np.array([np.inf]), np.array([-800.0]))[0] == np.inf
    # silu(b) ~ b/2 for the smallest subnormal b: max·b/2 is a normal number
    y = kernels.swiglu(np.array([np.finfo(float).max]), np.array([5e-324]))[0]
    assert y == pytest.approx(np.finfo(float).max * 5e-324 / 2, rel=1e-15)


def test_seed_12_glu_gates_lie_in_zero_one():
    b = np.array([-2.0, 0.0, 2.0])
    gate = kernels.d_glu_a(np.ones(3), b)  # dy/da = sigmoid(b), the gate
    assert ((gate > 0) & (gate < 1)).all()
    np.testing.assert_allclose(kernels.glu(np.array([1.0, -2.0, 3.0]), b),
                               [1.0, -2.0, 3.0] * gate, rtol=1e-16)


def test_seed_13_gated_outputs_finite():
    a, b = np.array([1.0, -2.0, 3.0]), np.array([-2.0, 0.0, 2.0])
    assert np.isfinite(kernels.geglu(a, b)).all() and np.isfinite(kernels.swiglu(a, b)).all()


@pytest.mark.parametrize(("name", "gate", "d_gate"), [
    ("glu", kernels.sigmoid, kernels.d_sigmoid), ("geglu", kernels.gelu, kernels.d_gelu),
    ("swiglu", kernels.silu, kernels.d_silu), ("reglu", kernels.relu, kernels.d_relu),
])
def test_seed_14_bilinear_gate_gradients(name, gate, d_gate):
    # y = a·g(b): dy/da is the gate itself, dy/db is a·g'(b), each checked against the exact
    # value (mpmath) first; d_b not against a * d_gate(b) bit for bit: the kernel multiplies a
    # into g'(b)'s double-double and rounds once, which a * d_gate(b) (two roundings) is not
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(size=50) * 4
    d_a = getattr(kernels, f"d_{name}_a")(a, b)
    ex_a = reference.evaluate(reference.GATED[f"d_{name}_a"], a, b)
    assert metrics.ulp_error(d_a, ex_a.hi, ex_a.lo).max() <= 1.0  # the gate: a forward value
    np.testing.assert_array_equal(d_a, gate(b))
    got = getattr(kernels, f"d_{name}_b")(a, b)
    ex = reference.evaluate(reference.GATED[f"d_{name}_b"], a, b)
    ulps = metrics.ulp_error(got, ex.hi, ex.lo)
    # the partial's float64 budget: the target, 2, where the gate is within its own (geglu's
    # gelu' from glibc's erfc is not: bench/core/budgets.toml says why)
    assert ulps.max() <= load_budgets().get(name, "accurate", "d_b", "float64", "core").max_ulp
    assert np.abs(got - a * d_gate(b)).max() <= 4 * np.spacing(np.abs(got)).max()

"""Kernel API contract (dtype, shape, out=, bad input) and the traps the issue names."""

import math

import mpmath
import numpy as np
import pytest

from actbench_ulp import kernels
from actbench_ulp.core.catalog import CATALOG, cases
from actbench_ulp.core.metrics import ulp_error
from actbench_ulp.kernels import _accurate
from actbench_ulp.reference import REFERENCES, erfcx_table, evaluate
from actbench_ulp.reference.taylor import PATCHES, patch

ELEMENTWISE = [c for c in cases() if c.activation.kind == "elementwise"]


@pytest.mark.parametrize(("kernel", "dtype"),
                         [(c.kernel, dt) for c in ELEMENTWISE for dt in (np.float32, np.float64)
                          if c.takes(np.dtype(dt).name)],
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_output_dtype_and_shape_follow_the_input(kernel, dtype):
    x = np.linspace(-4, 4, 24).astype(dtype).reshape(2, 3, 4)
    y = kernel(x)
    assert y.dtype == dtype and y.shape == x.shape
    strided = x[:, ::2, ::-1]  # non-contiguous view
    np.testing.assert_array_equal(kernel(strided), kernel(np.ascontiguousarray(strided)))
    out = np.empty_like(x)
    assert kernel(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    assert kernel(dtype(0.5)).dtype == dtype  # a NumPy scalar stays in its dtype


@pytest.mark.parametrize("bad", [np.arange(3), np.ones(3, np.complex64), np.ones(3, bool)])
def test_wrong_dtype_is_refused_by_name(bad):
    with pytest.raises(TypeError, match=f"bfloat16, float32 or float64 array, got dtype {bad.dtype}"):
        kernels.gelu(bad)
    with pytest.raises(TypeError, match="expected a float32 or float64 array, got dtype float16"):
        kernels.softmax(np.ones(3, np.float16))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_sixteen_bit_kernels_of_every_elementwise_activation_against_mpmath(dtype):
    """Every elementwise activation's 16-bit forward and derivative, audited against the exact
    values (special values, thresholds, 200 core points): a result of the 16-bit dtype, the
    special values exact, and within half an ULP plus 2**-30, since each is a float64 result
    within 2 float64 ULP rounded once (16-bit exhaustive sweeps: gelu's in test_audit.py)."""
    from actbench_ulp.accuracy import audit, table
    from actbench_ulp.core.budgets import load_budgets

    selection = [c for c in cases(variants=["accurate"]) if c.takes(dtype)]
    assert len(selection) == 2 * sum(a.kind == "elementwise" for a in CATALOG.values())
    rows = audit.run_audit(selection, [dtype], ["special", "thresholds", "core"], load_budgets(),
                           n=200, jobs=2)
    report = table.failures_report(table.to_frame(rows))
    assert not report, "\n".join(report)
    assert all(r["error"] == "" and r["special_mismatches"] == 0 for r in rows)
    worst = max(rows, key=lambda r: r["max_ulp"])
    assert worst["max_ulp"] <= 0.5 + 2.0**-30, (worst["activation"], worst["direction"],
                                                  worst["domain"], worst["worst_input"])
    x = np.linspace(-6, 6, 97).astype(dtype)
    assert kernels.gelu(x).dtype == np.dtype(dtype)


def test_empty_array_gives_empty_array_of_same_dtype():
    y = kernels.silu(np.array([], np.float32))
    assert y.shape == (0,) and y.dtype == np.float32


def test_parameters_are_keyword_only_and_checked():
    x = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(kernels.leaky_relu(x, negative_slope=0.5), [-1.0, 3.0])
    with pytest.raises(TypeError, match="unknown parameter"):
        kernels.leaky_relu(x, slope=0.5)
    with pytest.raises(ValueError, match="out must be a float64 array of shape"):
        kernels.relu(x, out=np.empty(3))


def test_nan_inputs_raise_no_floating_point_warnings():
    # pyproject turns warnings into errors: this would fail if the kernels leaked FP flags
    for k in (c.kernel for c in ELEMENTWISE):
        assert np.isnan(k(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "mish", "d_gelu", "d_silu", "d_mish"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minus_infinity_gives_minus_zero_not_nan(name, dtype):
    y = getattr(kernels, name)(np.array([-np.inf], dtype))[0]
    assert y == 0 and np.signbit(y)


def test_traps_from_other_libraries():
    # gelu's negative tail: 1 + erf cancels; float64 gelu(-20) = -5.507248237212468e-88
    assert kernels.gelu(np.array([-20.0]))[0] == pytest.approx(-5.507248237212468e-88, rel=1e-15)
    # tanh' as 1 - y² is 0 here; sech²(20) in float32 is 1.6993417e-17
    assert kernels.d_tanh(np.array([20.0], np.float32))[0] == np.float32(1.6993417e-17)
    # sigmoid and silu below the exp(-x) overflow edge (-709.78) are still normal/subnormal
    assert kernels.sigmoid(np.array([-740.0]))[0] > 0
    assert kernels.silu(np.array([-740.0]))[0] < 0
    # float32 inputs are not promoted by float64 constants
    assert kernels.gelu_tanh(np.float32(1.0)).dtype == np.float32


@pytest.mark.parametrize("name", ["INV_SQRT2", "SQRT_2_OVER_PI", "GELU_TANH_K", "INV_SQRT_2PI",
                                  "TWO_OVER_SQRTPI"])
def test_double_double_constants_are_what_they_say(name):
    with mpmath.workprec(300):
        exact = {
            "INV_SQRT2": 1 / mpmath.sqrt(2), "SQRT_2_OVER_PI": mpmath.sqrt(2 / mpmath.pi),
            "GELU_TANH_K": mpmath.mpf(44715) / 10**6, "INV_SQRT_2PI": 1 / mpmath.sqrt(2 * mpmath.pi),
            "TWO_OVER_SQRTPI": 2 / mpmath.sqrt(mpmath.pi),
        }[name]
        hi, lo = getattr(_accurate, name)
        assert hi == float(exact) and lo == float(exact - hi)


def test_ln2_split_is_exact_in_its_high_part():
    from actbench_ulp.kernels import _dd64

    assert (64.0 * _dd64.FDLIBM_LN2_HI) / 64.0 == _dd64.FDLIBM_LN2_HI
    with mpmath.workprec(300):
        assert abs(mpmath.mpf(_dd64.FDLIBM_LN2_HI) + _dd64.FDLIBM_LN2_LO - mpmath.log(2)) < 2.0**-85


def test_every_elementwise_activation_has_a_kernel_pair():
    for act in CATALOG.values():
        if act.kind != "elementwise":
            continue
        for v in act.variants:
            fwd, der = v.kernel("forward"), v.kernel("derivative")
            assert fwd.name == act.name and der.name == f"d_{act.name}"
            dtype = (v.dtypes or ("float64",))[-1]
            assert not math.isnan(fwd(np.array([1.0], dtype), **act.params)[0])


@pytest.mark.parametrize("name", list(PATCHES))
def test_root_patches_are_what_reference_taylor_derives(name):
    r_hi, r_lo, coeffs = patch(name)
    r_hi_k, r_lo_k, radius, coeffs_k = getattr(_accurate, f"_{name.upper()}_PATCH")
    assert (r_hi_k, r_lo_k, radius, coeffs_k) == (r_hi, r_lo, PATCHES[name][1], coeffs)


def test_erfcx_table_is_what_reference_derives_at_two_precisions():
    """kernels/erfcx_taylor.npy (gelu's erfc in float64) holds, bit for bit, what
    reference/erfcx_table.py derives at its precision and 80 bits above it, and its series
    are truncated far below the kernels' 2**-56: a stale or hand-edited table fails here."""
    from actbench_ulp.kernels import _erfcx64

    shipped = _erfcx64.TABLE.view(np.uint64)
    assert np.array_equal(erfcx_table.table().view(np.uint64), shipped)
    assert np.array_equal(erfcx_table.table(erfcx_table.PREC + 80).view(np.uint64), shipped)
    assert erfcx_table.truncation_bits() < -70


def test_erfcx_pair_is_within_2_to_the_minus_56_of_mpmath():
    """The pair the float64 gelu, gelu' and geglu build on, at the nodes' midpoints (the
    series' worst truncation) and at random points, to 2**-56 relative: what keeps the
    kernels' results within 0.5 ULP plus a few hundredths."""
    from actbench_ulp.kernels import _erfcx64

    rng = np.random.default_rng(7)
    zs = np.concatenate([(np.arange(912) + 0.5) / 32, rng.uniform(0, _erfcx64.Z_MAX, 300), [0.0]])
    with mpmath.workprec(200):
        worst = 0.0
        for z in zs:
            h, lo = _erfcx64.erfcx_pair(float(z), 0.0)
            exact = mpmath.erfc(z) * mpmath.exp(mpmath.mpf(z) ** 2)
            worst = max(worst, float(abs((mpmath.mpf(h) + lo) / exact - 1)))
    assert worst < 2.0**-56, math.log2(worst)


@pytest.mark.parametrize("name", list(PATCHES))
def test_root_patch_keeps_relative_accuracy_at_the_root(name):
    # the float64 nearest the root: the plain formula gets ~1e-17 absolute error here, which
    # would be ~1e+00 relative; the patch must stay within a few ULP
    r_hi = getattr(_accurate, f"_{name.upper()}_PATCH")[0]
    x = np.array([r_hi, np.nextafter(r_hi, 0), np.nextafter(r_hi, -1)])
    exact = evaluate(REFERENCES[name], x)
    got = getattr(kernels, name)(x)
    assert ulp_error(got, exact.hi, exact.lo).max() <= 2


def test_every_kernel_module_has_one_calling_convention():
    """The loops' modules are driven alike (kernels/__init__.py picks a module by KERNELS and
    calls run(name, inputs, out, params)): a module with its own signature would need its own
    dispatch again.  Every kernel module with a KERNELS table is one, a new one included."""
    import importlib
    import inspect
    import pkgutil

    modules = [importlib.import_module(f"actbench_ulp.kernels.{m.name}")
               for m in pkgutil.iter_modules(kernels.__path__)]
    loops = [m for m in modules if hasattr(m, "KERNELS")]
    assert {m.__name__.rsplit(".", 1)[1] for m in loops} == {
        "_simd", "_simd32", "_simd32_expm1", "_simd32_gelu_tanh", "_gated_fast", "_rowwise_fast",
        "_rowwise_short"}
    for module in loops:
        assert list(inspect.signature(module.run).parameters) == ["name", "inputs", "out", "params"], module
        assert module.KERNELS, module


def test_gated_products_with_a_tiny_gate_input_round_once():
    """a·b/2 (+ c·a·b², c > 0) for b at the smallest subnormals: exact ties broken by the square's
    sign (a = 1, b = 2**-1074: 2**-1075 + tiny rounds up) and a near-tie not pushed across
    (a = 9 - 2**-49: 4.4999999999999991 subnormal steps round to 4)."""
    from actbench_ulp.reference import GATED

    a = np.array([9 - 2.0**-49, 1.0, -3.0, 9 - 2.0**-49])
    b = np.array([2.0**-1074, 2.0**-1074, 3 * 2.0**-1074, -(2.0**-1074)])
    for name in ("geglu", "swiglu"):
        got = getattr(kernels, name)(a, b)
        want = evaluate(GATED[name], a, b).want
        np.testing.assert_array_equal(got, want)
        assert (want / 2.0**-1074).tolist() == [4.0, 1.0, -5.0, -4.0]

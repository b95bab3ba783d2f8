"""The float32-arithmetic elu, celu, selu, softplus and log_sigmoid kernels (the ``simd_f32``
variant, kernels/_simd32_expm1.py): float32 vector code, the threaded path's bits, their
switch points and their parameters.  Their accuracy over the catalog's domains is the audit's
(tests/test_audit.py)."""


import numpy as np
import pytest

from actbench_ulp import kernels
from actbench_ulp.core import budgets, catalog, metrics
from actbench_ulp.kernels import _simd, _simd32_expm1
from tests.test_simd import around, assert_float32_vector_loop

NAMES = sorted(_simd32_expm1.KERNELS)
ONE, ZERO = np.float32(1.0), np.float32(0.0)


def _budget(name):
    act = catalog.CATALOG[name.removeprefix("d_")]
    direction = "derivative" if name.startswith("d_") else "forward"
    return budgets.load_budgets().get(act.name, "simd_f32", direction, "float32", "core").max_ulp


def _check(name, x, params):
    """The wrapper's float32 result against the float64 accurate kernel, rounded: no special
    value mismatch and the variant's budget."""
    got = getattr(kernels, f"{name}_simd_f32")(x, **params)
    with np.errstate(all="ignore"):
        want = getattr(kernels, name)(x.astype(np.float64), **params)
        kinds = metrics.mismatch_kind(got, want.astype(np.float32))
    bad = np.flatnonzero(kinds != "")
    assert bad.size == 0, f"{name} {params}: {kinds[bad[0]]} mismatch at {float(x[bad[0]]).hex()}"
    ulps = metrics.ulp_error(got, want, 0.0, np.float32)
    worst = int(np.nanargmax(ulps))
    assert ulps[worst] <= _budget(name), (
        f"{name} {params}: {ulps[worst]:.3f} ULP at {float(x[worst]).hex()}")
    return ulps[worst]


@pytest.mark.parametrize("name", NAMES)
def test_loops_stay_in_float32(name):
    assert_float32_vector_loop(name, _simd32_expm1.KERNELS[name][False], ONE, ZERO, ONE, ZERO,
                               libm=("exp", "log"))


# every loop comes from the same factory (_simd32._loops: prange over a pure scalar), so one
# per formula family shows the threaded path keeps the bits; compiling a threaded loop takes
# seconds, and the default test run has a time budget
@pytest.mark.parametrize("name", ["elu", "d_celu", "softplus"])
def test_threads_give_the_serial_bits(name):
    x = np.random.default_rng(7).uniform(-100, 100, _simd.PARALLEL_MIN + 17).astype(np.float32)
    serial, threaded = np.empty_like(x), np.empty_like(x)
    consts = (ONE, ZERO, ONE, ZERO)
    _simd32_expm1.KERNELS[name][False](x, serial, *consts)
    _simd32_expm1.KERNELS[name][True](x, threaded, *consts)
    assert serial.tobytes() == threaded.tobytes()


# where the kernels switch formula or clamp (TINY = 2**-20, the 2**-60 rescaling, expm1's
# clamp at -20 and saturation at -17.33, exp's subnormal band from -80 and its clamp at -110,
# the subnormal inputs), ±300 floats around each, both signs
_SWITCHES = [0.0, 2.0**-20, 2.0**-60, 2.0**-126, 1.0, 17.3287, 20.0, 80.0, 87.3, 103.97, 110.0]


@pytest.mark.parametrize("name", NAMES)
def test_at_the_switch_points(name):
    x = np.concatenate([around(_SWITCHES),
                        np.array([np.inf, -np.inf, np.nan, 3.3e38, -3.3e38], np.float32)])
    _check(name, x, catalog.CATALOG[name.removeprefix("d_")].params)


# parameters the float32 path takes (alpha and scale as float32 pairs, x/alpha as a pair):
# every one within the budget on 2**16 random bit patterns and 2**16 inputs in [-30, 30]
@pytest.mark.parametrize("name, params", [
    ("elu", {"alpha": 0.3}), ("d_elu", {"alpha": 2.5}),
    ("celu", {"alpha": 0.3}), ("celu", {"alpha": 2.5}), ("d_celu", {"alpha": 0.3}),
    ("selu", {"alpha": 1.5, "scale": 0.7}), ("d_selu", {"alpha": 1.5, "scale": 0.7}),
])
def test_parameters_stay_within_the_budget(name, params):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.integers(0, 2**32, 2**16, dtype=np.uint64).astype(np.uint32)
                        .view(np.float32), rng.uniform(-30, 30, 2**16).astype(np.float32)])
    _check(name, x, params)


@pytest.mark.parametrize("name, params", [
    ("celu", {"alpha": -1.0}), ("d_celu", {"alpha": -0.5}),
    ("softplus", {"beta": 2.0}), ("d_softplus", {"beta": 0.5}),
    # elu' and selu' multiply the parameter by exp's pair, scaled up to 2**33 below x = -40:
    # above 2**64 that could overflow (alpha = 1e30 at x = -41 gave inf)
    ("d_elu", {"alpha": 1e30}), ("d_selu", {"alpha": 1e20, "scale": 1e20}),
])
def test_uncovered_parameters_take_the_simd_loop(name, params):
    # the float32 path covers celu's alpha > 0, softplus's beta = 1 and parameters up to 2**64;
    # other values give the simd variant's bits
    assert _simd32_expm1.constants(name, params) is None
    x = np.random.default_rng(5).uniform(-30, 30, 4096).astype(np.float32)
    got = getattr(kernels, f"{name}_simd_f32")(x, **params)
    want = getattr(kernels, f"{name}_simd")(x, **params)
    assert got.tobytes() == want.tobytes()

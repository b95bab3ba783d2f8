"""The float32-arithmetic gelu_tanh kernels (the ``simd_f32`` variant,
kernels/_simd32_gelu_tanh.py): the root patch is what reference/polyfit.py derives, float32
vector code, the threaded path's bits, and the switch points within the budget.  Their
accuracy over the catalog's domains is the audit's (tests/test_audit.py)."""


import numpy as np
import pytest

from actbench_ulp.kernels import _simd, _simd32_gelu_tanh
from actbench_ulp.reference import polyfit
from tests.test_simd import around, assert_float32_vector_loop
from tests.test_simd32_expm1 import _check

NAMES = sorted(_simd32_gelu_tanh.KERNELS)


def test_root_patch_is_derived():
    root, coeffs, bound = polyfit.fit_d_gelu_tanh_root_float32()
    assert tuple(root) == _simd32_gelu_tanh.D_GELU_TANH_ROOT
    assert tuple(coeffs) == _simd32_gelu_tanh.D_GELU_TANH_G
    assert bound < 2.0**-27  # a sixteenth of a float32 ULP at most


@pytest.mark.parametrize("name", NAMES)
def test_loops_stay_in_float32(name):
    assert_float32_vector_loop(name, _simd32_gelu_tanh.KERNELS[name][False])


@pytest.mark.parametrize("name", ["d_gelu_tanh"])  # as in test_simd32_expm1: one suffices
def test_threads_give_the_serial_bits(name):
    x = np.random.default_rng(7).uniform(-15, 10, _simd.PARALLEL_MIN + 17).astype(np.float32)
    serial, threaded = np.empty_like(x), np.empty_like(x)
    _simd32_gelu_tanh.KERNELS[name][False](x, serial)
    _simd32_gelu_tanh.KERNELS[name][True](x, threaded)
    assert serial.tobytes() == threaded.tobytes()


# the clamps (8, -12), where v reaches exp's subnormal band (|v| = 80 at x = -9.78) and its
# clamp (-125), where the result turns subnormal and rounds to -0 (-10.2 .. -10.77), the root
# patch's edges and centre, the subnormal inputs: ±300 floats around each, both signs; and 2**16
# points around the root, where the derivative's two terms cancel
_SWITCHES = [0.0, 2.0**-126, 0.75253, 0.75253 - 1 / 16, 0.75253 + 1 / 16, 1.0, 4.99, 8.0,
             9.7797, 10.2, 10.7717, 11.0, 12.0]


@pytest.mark.parametrize("name", NAMES)
def test_at_the_switch_points(name):
    x = np.concatenate([around(_SWITCHES),
                        np.linspace(-0.8145, -0.6895, 2**16, dtype=np.float32),
                        np.array([np.inf, -np.inf, np.nan, 3.3e38, -3.3e38], np.float32)])
    _check(name, x, {})

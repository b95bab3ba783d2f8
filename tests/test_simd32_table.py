"""The table-driven float32 tanh (kernels/_simd32_table.py): its table is what
reference/tablefit.py derives, it is the simd_f32 tanh where the CPU has AVX-512F, and it and
the arithmetic tanh that every other CPU runs stay within 1 ULP where the table's intervals
and switches meet.  Its maximum over all 2**32 inputs is the exhaustive audit's
(results/exhaustive); the default audit measures it against mpmath."""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest
from numba.core import codegen

from actbench_ulp.kernels import _simd, _simd32, _simd32_table
from actbench_ulp.reference import tablefit
from tests.test_simd import around, assert_near_float64_kernel

needs_table = pytest.mark.skipif(not _simd32_table.AVAILABLE,
                                 reason="the table-driven tanh needs AVX-512F")


def test_the_table_is_what_reference_derives():
    table, bound = tablefit.fit_tanh_table()
    assert table.view(np.uint32).tobytes() == _simd32_table.TABLE.view(np.uint32).tobytes()
    # the model (the table's polynomials, coefficients as rounded) within 0.06 ULP of tanh: the
    # evaluation's roundings (the last sum's 0.5 ULP, the rest at a ninth of their size) must
    # fit in what is left of the 1 ULP budget
    assert bound < 0.06
    assert tablefit.ROWS[:4] == ("center", "c0h", "c0l", "c1")
    assert _simd32_table.TABLE.shape == (len(tablefit.ROWS), tablefit.INTERVALS)
    # the kernel reads the intervals as the fit lays them out: its index origin, four a binade
    # (one interval each 2**21 bit patterns), the value from which tanh is 1
    assert np.float32(tablefit.BASE).view(np.int32) == _simd32_table._BASE_BITS
    for j, (lo, _, _) in enumerate(tablefit.intervals()[1:], start=1):
        bits = int(np.float32(lo).view(np.int32))
        assert (bits - _simd32_table._BASE_BITS) >> _simd32_table._SHIFT == j
    assert float(_simd32_table._ONE_FROM) == tablefit.ONE_FROM


@needs_table
def test_simd_f32_tanh_is_the_table_where_avx512f_is():
    assert _simd32.KERNELS["tanh"] is _simd32_table.LOOPS["tanh"]
    assert _simd32.ARITHMETIC_TANH[False].py_func is not _simd32_table.LOOPS["tanh"][False].py_func


# every interval's ends, the tiny-input switch, where tanh rounds to 1 and where the table ends
_EDGES = sorted({hi for _, hi, _ in tablefit.intervals()} | {2.0**-12, 9.0109, 10.0, 32.0})


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(11)
    rand = rng.integers(0, 2**32, 2**18, dtype=np.uint64).astype(np.uint32).view(np.float32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-149, -(2.0**-149), 2.0**-126,
                         np.finfo(np.float32).max], np.float32)
    return np.concatenate([around(_EDGES), rand, specials])


# just above each kernel's maximum over all 2**32 inputs (results/exhaustive for the table; the
# same sweep compiled for Haswell for the exp-based one): a sample near its edges must not
# exceed what the whole range reaches
@pytest.mark.parametrize("kernel, worst", [("table", 0.62), ("arithmetic", 0.77)])
def test_tanh_within_its_maximum_at_its_edges_and_random_patterns(kernel, worst):
    if kernel == "table" and not _simd32_table.AVAILABLE:
        pytest.skip("the table-driven tanh needs AVX-512F")
    loop = (_simd32_table.LOOPS["tanh"] if kernel == "table" else _simd32.ARITHMETIC_TANH)[False]
    assert_near_float64_kernel(f"{kernel} tanh", loop, "tanh", _inputs(), worst)


@needs_table
@pytest.mark.parametrize("n", [0, 5, 16, 37, _simd.PARALLEL_MIN + 17])
def test_every_position_gets_the_same_bits(n):
    # whole vectors, the masked remainder and the threads' blocks all give an element the same
    # result wherever it sits, and nothing past the end is written
    x = np.random.default_rng(n).uniform(-12, 12, n).astype(np.float32)
    serial, threaded = np.empty_like(x), np.empty_like(x)
    _simd32_table.LOOPS["tanh"][False](x, serial)
    _simd32_table.LOOPS["tanh"][True](x, threaded)
    assert serial.tobytes() == threaded.tobytes()
    for start in (1, 3, 15):
        buffer = np.concatenate([np.zeros(start, np.float32), x, np.zeros(19, np.float32)])
        out = np.full_like(buffer, 7.0)  # a sentinel tanh never gives
        _simd32_table.LOOPS["tanh"][False](buffer[start:start + n], out[start:start + n])
        assert out[start:start + n].tobytes() == serial.tobytes()
        assert (out[:start] == 7.0).all() and (out[start + n:] == 7.0).all()


def test_the_vector_code_takes_contiguous_float32_only():
    # it addresses the arrays' memory directly: anything else is refused when typed
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def call(x, out):
        _simd32_table._tanh_span(x, out, 0, x.size)

    for x in (np.zeros(4), np.zeros(8, np.float32)[::2]):
        with pytest.raises(TypingError, match="takes array\\(float32, 1d, C\\) arrays"):
            call(x, np.zeros(4, np.float32))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64")
                    or "+avx2" not in codegen.get_host_cpu_features(),
                    reason="runs code compiled for Haswell: needs an x86 CPU with AVX2")
def test_a_cpu_without_avx512f_runs_the_arithmetic_tanh():
    # compiled for Haswell (AVX2) in a fresh process, which this CPU can run: no table kernel,
    # and the arithmetic one computes
    code = ("import numpy as np; from actbench_ulp.kernels import _simd32, _simd32_table as t; "
            "assert not t.AVAILABLE and not t.LOOPS; "
            "assert _simd32.KERNELS['tanh'] is _simd32.ARITHMETIC_TANH; "
            "x = np.float32([0.5, -3.0]); y = np.empty_like(x); _simd32.KERNELS['tanh'][False](x, y); "
            "assert np.allclose(y, np.tanh(x), rtol=1e-6), y")
    env = {**os.environ, "NUMBA_CPU_NAME": "haswell",
           "NUMBA_CPU_FEATURES": "+avx2,+fma,+f16c,+popcnt,+bmi2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

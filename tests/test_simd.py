"""The SIMD kernels: their polynomial coefficients are what reference/polyfit.py derives, their
loops compile to vector code with no libm call, the threaded path gives the serial path's
bits, and the wrappers keep the accurate kernels' dtype, shape and ``out=`` rules.  Their
accuracy is the audit's (the catalog's ``simd`` variant, gated by tests/test_audit.py)."""

import math
import re
from fractions import Fraction

import mpmath
import numba
import numpy as np
import pytest

from actbench_ulp import kernels
from actbench_ulp.kernels import _simd, _simd32, _target
from actbench_ulp.reference import polyfit
from tests import vector_loops

NAMES = sorted(_simd.KERNELS)
# the widest vector of the CPU the kernels compile for (the host's, or NUMBA_CPU_NAME's):
# 512 bits with AVX-512F, 256 with AVX, 128 with SSE (tests/test_vector_width.py checks it)
TARGET_BITS = _target.vector_bits()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exp_coefficients_are_derived(dtype):
    coeffs, bound = polyfit.fit(polyfit.EXP_DEGREES[dtype])
    assert tuple(coeffs) == getattr(_simd, f"EXP_Q_{dtype.upper()}")
    # float32 results: far below a float32 ULP (2**-24) so the final rounding is the only one
    # that shows; float64: below an eighth of a float64 ULP (2**-53 / 8)
    assert bound < {"float32": 2.0**-36, "float64": 2.0**-56}[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log1p_coefficients_are_derived(dtype):
    coeffs, bound = polyfit.fit_log1p(polyfit.LOG1P_DEGREES[dtype])
    assert tuple(coeffs) == getattr(_simd, f"LOG1P_B_{dtype.upper()}")
    assert bound < {"float32": 2.0**-36, "float64": 2.0**-56}[dtype]  # as exp's, same reasons


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erfcx_coefficients_are_derived(dtype):
    degree, zmax = polyfit.ERFCX_FITS[dtype]
    coeffs, bound = polyfit.fit_erfcx(degree, zmax)
    assert tuple(coeffs) == getattr(_simd, f"ERFCX_K_{dtype.upper()}")
    assert _simd.ERFCX_C == polyfit.ERFCX_C
    # the fit covers every z the kernel evaluates (z = |x|/sqrt(2) clamped at GELU_XMAX)
    assert zmax >= _simd.GELU_XMAX[dtype == "float64"] / 2**0.5
    # float32 results: as exp's; float64: 7.3e-17, set by the coefficients' rounding to float64
    # (the fit alone is within 5.7e-18), under one ULP; the audit's budget measures the whole
    assert bound < {"float32": 2.0**-36, "float64": 2.0**-53}[dtype]


def test_d_gelu_series_is_the_maclaurin_series():
    # an independent derivation: mpmath's Taylor coefficients of Phi(x) + x·phi(x) at 0
    with mpmath.workprec(200):
        taylor = mpmath.taylor(lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x), 0, 23)
        assert taylor[0] == mpmath.mpf(1) / 2 and all(abs(c) < 1e-60 for c in taylor[2::2])
        assert tuple(float(c) for c in taylor[1:23:2][::-1]) == _simd.D_GELU_SERIES
        # what the series leaves out at its edge, against the smallest gelu' there (~0.22)
        x = mpmath.mpf(_simd.D_GELU_SERIES_X)
        rest = sum(abs(c) * x**k for k, c in enumerate(mpmath.taylor(
            lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x), 0, 61)) if k >= 23)
        assert rest < 0.2 * mpmath.mpf(2) ** -68


def test_ln2_split_is_exact_for_every_reduction():
    # n·LN2_HI must be exact for every n the kernels use (|n| <= 1155, 11 bits): LN2_HI's
    # significand ends in at least 11 zero bits
    significand = int(float.hex(_simd.LN2_HI)[4:].split("p")[0], 16)
    assert (significand & -significand).bit_length() - 1 >= 11
    for n in range(-1160, 1):
        assert Fraction(n * _simd.LN2_HI) == n * Fraction(_simd.LN2_HI)
    with mpmath.workprec(200):  # LN2_HI + LN2_LO is ln 2 to LN2_LO's last bit (2**-86)
        assert abs(mpmath.mpf(_simd.LN2_HI) + _simd.LN2_LO - mpmath.log(2)) < mpmath.mpf(2) ** -85


def _uncached(loop):
    """A fresh, uncached compile of a kernel loop: Numba refuses to show the IR of code loaded
    from the disk cache (kernels/_cache.py), which a warm machine always does.  One a process,
    shared with tests/test_vector_width.py, which reads the same loops' machine code."""
    return vector_loops.fresh(loop)


def around(points, width: int = 300) -> np.ndarray:
    """The float32 values within ``width`` steps of each of ``points`` and of its negative
    (steps of the bit pattern; those past the int32 range left out)."""
    xs = []
    for s in points:
        for v in (s, -s):
            c = np.float32(v).view(np.int32).astype(np.int64)
            xs.append(np.arange(c - width, c + width + 1))
    bits = np.concatenate(xs)
    inside = (bits >= np.iinfo(np.int32).min) & (bits <= np.iinfo(np.int32).max)
    return bits[inside].astype(np.int32).view(np.float32)


def assert_float32_vector_loop(name, loop, *constants, libm=("exp",)):
    """A fresh compile of a float32 loop ``loop(x, out, *constants)`` is vector code in float32
    alone (a double anywhere would mean a constant or an operation widened the lanes) with no
    call to ``libm``. With float constants, the CPython wrapper (which converts them from
    doubles) is left out: the loop's own functions are what must stay in float32."""
    loop = _uncached(loop)
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    loop(x, np.empty_like(x), *constants)
    ir = loop.inspect_llvm((numba.typeof(x), numba.typeof(x), *[numba.float32] * len(constants)))
    if constants:
        ir = "\n".join(f for f in re.findall(r"^define .*?^}$", ir, re.S | re.M)
                       if "cpython" not in f.split("(")[0])
    widths = {int(w) for w in re.findall(r"<(\d+) x float>", ir)}
    assert "double" not in ir, f"{name}: float64 arithmetic in the loop"
    # the loops ask for 512-bit vectors: as many lanes as the target's widest register holds
    assert widths and max(widths) == TARGET_BITS // 32, f"{name}: widths {widths}"
    assert not re.search(rf"call [^\n]*@(llvm\.)?({'|'.join(libm)})", ir)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loops_are_vectorized_without_libm(name, dtype):
    loop = _uncached(_simd.KERNELS[name][(dtype, False)])
    x = np.linspace(-5, 5, 64, dtype=dtype)
    loop(x, np.empty_like(x), 1.0, 1.0)  # alpha, scale = 1
    ir = loop.inspect_llvm((numba.typeof(x), numba.typeof(x), numba.float64, numba.float64))
    widths = {int(w) for w in re.findall(r"<(\d+) x (?:double|float)>", ir)}
    assert widths, f"{name} {dtype}: no floating-point vector in the IR"
    if dtype == "float64":  # asked for 512-bit vectors: the target's widest register of doubles
        assert max(widths) == TARGET_BITS // 64, f"{name}: widest vector {max(widths)} lanes"
    elif name in _simd._NATIVE32:  # float32 arithmetic, asked for 512-bit vectors too
        assert max(widths) == TARGET_BITS // 32, f"{name}: widest vector {max(widths)} lanes"
    else:  # left to LLVM's tuning, which prefers 256-bit vectors on AVX-512 CPUs like this
        # project's: at most 8 float32 lanes (LLVM's cost model picked 4 for some on AVX2)
        assert max(widths) <= min(TARGET_BITS, 256) // 32, f"{name}: widths {widths}"
    assert not re.search(r"call [^\n]*@(llvm\.)?exp", ir), f"{name} {dtype} calls exp"


# Every loop is built by one factory (_simd._loops: prange over a pure elementwise scalar, no
# reduction), so the threaded path keeps the bits by construction; these check the factory's
# wiring on each dtype, with and without parameters, on the longest scalars. Each threaded
# loop compiles in 2-3 s, and all 46 took ~100 s of the default test run's 10 minutes.
THREADED = [("float32", "sigmoid"), ("float32", "hardswish"), ("float64", "d_gelu"),
            ("float64", "selu"), ("float64", "d_mish")]


@pytest.mark.parametrize(("dtype", "name"), THREADED)
def test_threads_give_the_serial_bits(name, dtype):
    rng = np.random.default_rng(7)
    x = rng.uniform(-30, 30, _simd.PARALLEL_MIN + 17).astype(dtype)
    serial, threaded = np.empty_like(x), np.empty_like(x)
    _simd.KERNELS[name][(dtype, False)](x, serial, 1.0, 1.0)
    _simd.KERNELS[name][(dtype, True)](x, threaded, 1.0, 1.0)
    assert serial.tobytes() == threaded.tobytes()


@pytest.mark.parametrize("name", ["sigmoid", "silu", "tanh", "mish"])
def test_wrappers_keep_the_kernel_rules(name):
    simd = getattr(kernels, f"{name}_simd")
    accurate = getattr(kernels, name)
    x = np.linspace(-8, 8, 24, dtype=np.float32).reshape(4, 6)
    y = simd(x)
    assert y.dtype == np.float32 and y.shape == (4, 6)
    # computed in float64 and rounded once, as the accurate kernel: equal but for ties of
    # the two float64 values (none on this grid)
    np.testing.assert_array_equal(y, accurate(x))
    strided = x[:, ::2]  # not contiguous
    np.testing.assert_array_equal(simd(strided), accurate(strided))
    out = np.empty_like(x)
    assert simd(x, out=out) is out and np.array_equal(out, y)
    out_t = np.empty((6, 4), np.float32).T  # a non-contiguous out
    assert simd(x, out=out_t) is out_t and np.array_equal(out_t, y)
    assert simd(np.float32(1.5)) == accurate(np.float32(1.5)) and np.ndim(simd(np.float32(1.5))) == 0
    assert simd(np.empty(0, np.float32)).shape == (0,)
    with pytest.raises(TypeError, match="float32 or float64"):
        simd(np.arange(3))
    with pytest.raises(ValueError, match="out must be"):
        simd(x, out=np.empty(3, np.float32))
    frozen = np.empty_like(x)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        simd(x, out=frozen)
    with pytest.raises(TypeError, match="scalars"):
        kernels.elu_simd(x, alpha=np.ones(3))


def test_an_overlapping_out_is_read_before_it_is_written():
    # NumPy copies an operand that overlaps the output; so must we (in place is fine)
    buf = np.linspace(-3, 3, 1000)
    want = kernels.sigmoid_simd(buf[:-1].copy())
    got = kernels.sigmoid_simd(buf[:-1], out=buf[1:])
    np.testing.assert_array_equal(got, want)
    same = np.linspace(-3, 3, 1000)
    assert kernels.sigmoid_simd(same, out=same) is same
    np.testing.assert_array_equal(same, kernels.sigmoid_simd(np.linspace(-3, 3, 1000)))


@pytest.mark.parametrize("name", NAMES)
def test_special_values(name):
    simd = getattr(kernels, f"{name}_simd")
    accurate = getattr(kernels, name)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1000.0, 1000.0, -750.0, -1e308], np.float64)
    got, want = simd(x), accurate(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)


@pytest.mark.parametrize("name, params", [("elu", {"alpha": 0.5}), ("celu", {"alpha": 2.5}),
                                          ("celu", {"alpha": -1.0}), ("celu", {"alpha": -2.5}),
                                          ("softplus", {"beta": 2.0}), ("softplus", {"beta": -3.0}),
                                          ("selu", {"alpha": 1.5, "scale": 0.75})])
def test_parameters_reach_the_loop(name, params):
    # float32 results of both kernels are the float64 values rounded once: equal on this grid
    # (negative alpha: celu takes exp of positive x/alpha, up to overflow at the ends)
    x = np.concatenate([np.linspace(-6, 3, 101), [-400.0, -2000.0, -np.inf, np.inf]]).astype(
        np.float32)
    for n in (name, f"d_{name}"):
        np.testing.assert_array_equal(getattr(kernels, f"{n}_simd")(x, **params),
                                      getattr(kernels, n)(x, **params))
    with pytest.raises(TypeError, match="unknown parameter"):
        getattr(kernels, f"{name}_simd")(x, gamma=1.0)


# --- the float32-arithmetic kernels (kernels/_simd32.py) ---------------------------------------
NAMES32 = sorted(_simd32.KERNELS)


def test_float32_coefficients_are_derived():
    coeffs, bound = polyfit.fit_exp_float32()
    assert tuple(coeffs) == _simd32.EXP_Q
    # 1.1e-8 = 2**-26.5: a fraction of a float32 ULP (2**-24 to 2**-23 relative), so the kernels'
    # exp pair adds at most ~0.1-0.2 ULP to a result
    assert bound < 2.0**-26
    coeffs, bound = polyfit.fit_tanh_float32()
    assert tuple(coeffs) == _simd32.TANH_P and bound < 2.0**-27
    root, coeffs, bound = polyfit.fit_d_silu_root_float32()
    assert root == _simd32.D_SILU_ROOT and tuple(coeffs) == _simd32.D_SILU_G and bound < 2.0**-26
    # gelu: exp's q of degree 5 (8.1e-10; degree 4 left gelu at 0.80 ULP instead of 0.78: the
    # bounds are asserted at each fit's own level, so a worse fit shows), K with k1, k0 as pairs,
    # the root patch with g0 as a pair
    coeffs, bound = polyfit.fit_exp_float32(polyfit.FLOAT32_FITS["gelu_exp"])
    assert tuple(coeffs) == _simd32.GELU_EXP_Q and bound < 2.0**-30
    coeffs, bound = polyfit.fit_erfcx_float32()
    assert tuple(coeffs) == _simd32.GELU_K and bound < 2.0**-28
    root, coeffs, bound = polyfit.fit_d_gelu_root_float32()
    assert root == _simd32.D_GELU_ROOT and tuple(coeffs) == _simd32.D_GELU_G and bound < 2.0**-27
    with mpmath.workprec(200):  # 1/sqrt(2pi) as a pair, to its low part's last bit
        assert abs(mpmath.mpf(_simd32.PHI0[0]) + _simd32.PHI0[1] - 1 / mpmath.sqrt(2 * mpmath.pi)) < 2.0**-50
    # the fast variant: silu''s wider patch fitted; exp's q for exp(2r) and exp(-r) is q with
    # powers of 2 and signs folded in (exact), ln 2/2 rounded once
    _, coeffs, bound = polyfit.fit_d_silu_root_float32(*polyfit.FLOAT32_FITS["fast_d_silu_root"])
    assert tuple(coeffs) == _simd32.FAST_D_SILU_G and bound < 2.0**-25
    q = _simd32.EXP_Q
    assert [float(c) for c in _simd32.FAST_Q2] == [c * 2.0 ** (6 - k) for k, c in enumerate(q)]
    assert [float(c) for c in _simd32.FAST_QN] == [c * (-1) ** (4 - k) for k, c in enumerate(q)]
    assert float(_simd32.HLN2) == float(np.float32(math.log(2) / 2))
    # every literal is a float32 (the kernels take them as np.float32: no second rounding)
    for c in (*_simd32.EXP_Q, *_simd32.TANH_P, *_simd32.D_SILU_ROOT, *_simd32.D_SILU_G,
              *_simd32.GELU_EXP_Q, *_simd32.GELU_K, *_simd32.D_GELU_ROOT, *_simd32.D_GELU_G,
              *_simd32.PHI0, *_simd32.FAST_D_SILU_G):
        assert float(np.float32(c)) == c


@pytest.mark.parametrize("name", NAMES32)
def test_float32_loops_stay_in_float32(name):
    assert_float32_vector_loop(name, _simd32.KERNELS[name][False])


@pytest.mark.parametrize("name", ["gelu", "d_silu", "tanh_fast"])  # as THREADED above
def test_float32_threads_give_the_serial_bits(name):
    x = np.random.default_rng(7).uniform(-100, 100, _simd.PARALLEL_MIN + 17).astype(np.float32)
    serial, threaded = np.empty_like(x), np.empty_like(x)
    _simd32.KERNELS[name][False](x, serial)
    _simd32.KERNELS[name][True](x, threaded)
    assert serial.tobytes() == threaded.tobytes()


@pytest.mark.parametrize("suffix", ["_simd_f32", "_simd_f32_fast"])
def test_float32_wrappers_take_float32_only(suffix):
    silu, tanh = getattr(kernels, f"silu{suffix}"), getattr(kernels, f"tanh{suffix}")
    x = np.linspace(-8, 8, 24, dtype=np.float32).reshape(4, 6)
    y = silu(x)
    assert y.dtype == np.float32 and y.shape == (4, 6)
    np.testing.assert_array_equal(silu(x[:, ::2]), silu(np.ascontiguousarray(x[:, ::2])))
    out = np.empty((6, 4), np.float32).T
    assert silu(x, out=out) is out and np.array_equal(out, y)
    assert tanh(np.empty(0, np.float32)).shape == (0,)
    assert np.ndim(tanh(np.float32(0.25))) == 0
    for bad in (x.astype(np.float64), np.arange(3), np.ones(3, np.float16)):
        with pytest.raises(TypeError, match=f"float32 arrays only, got dtype {bad.dtype}"):
            silu(bad)
    with pytest.raises(TypeError, match="unknown parameter"):
        silu(x, beta=2.0)


# where the float32 kernels switch formula or clamp: ±300 floats around each, against the
# float64 simd kernel (the exhaustive float32 domain's oracle over all inputs), within the
# variant's budget
_SWITCHES = [0.0, 0.55, 1 / 32, 1 / 16, 0.1875, 8.0, 14.75, 20.0, 30.0, 40.0, 55.0, 80.0, 110.0,
             16.6355, 17.0, 87.3, 88.72, 103.97, 1.27846, 0.75179, 1.0, 2.0**-126,
             2.0**26, 2.0**63, 2.0**76]  # softsign's clamps, and where its derivative goes subnormal


@pytest.mark.parametrize("name", NAMES32)
def test_float32_kernels_at_their_switch_points(name):
    from actbench_ulp.core import budgets, catalog
    fast = name.endswith("_fast")
    base = name.removesuffix("_fast")
    act = catalog.CATALOG[base.removeprefix("d_")]
    direction = "derivative" if base.startswith("d_") else "forward"
    budget = budgets.load_budgets().get(act.name, "simd_f32_fast" if fast else "simd_f32",
                                        direction, "float32", "core").max_ulp
    assert_near_float64_kernel(name, _simd32.KERNELS[name][False], base, around(_SWITCHES), budget)


def assert_near_float64_kernel(label, loop, base, x, bound):
    """A float32 loop ``loop(x, out)`` against the float64 simd kernel ``base`` (the exhaustive
    float32 domain's oracle) at ``x``: no special-value mismatch, and within ``bound`` ULP."""
    from actbench_ulp.core import metrics

    got = np.empty_like(x)
    loop(x, got)
    want = np.empty(x.size)
    with np.errstate(invalid="ignore"):  # signalling NaN bit patterns warn as they widen
        wide = x.astype(np.float64)
    _simd.KERNELS[base][("float64", False)](wide, want, 0.0, 0.0)
    kinds = metrics.mismatch_kind(got, want.astype(np.float32))
    bad = np.flatnonzero(kinds != "")
    assert bad.size == 0, f"{label}: {kinds[bad[0]]} mismatch at {float(x[bad[0]]).hex()}"
    ulps = metrics.ulp_error(got, want, 0.0, np.float32)
    worst = int(np.nanargmax(ulps))
    assert ulps[worst] <= bound, f"{label}: {ulps[worst]:.3f} ULP at {float(x[worst]).hex()}"


@pytest.mark.parametrize("name", ["hardsigmoid", "hardswish", "softsign"])
def test_division_free_float32_path_gives_the_accurate_bits(name):
    # float32 input takes Markstein's step for /6 and a refined float32 reciprocal for
    # 1/(1 + |x|) instead of a float64 division: the same float64 values, so the same float32
    # results (checked over all 2**32 inputs when written; here 2**20 random bit patterns, the
    # kinks, the ends and the thresholds where the float32 shortcuts start)
    bits = np.random.default_rng(3).integers(0, 2**32, 2**20, dtype=np.uint64).astype(np.uint32)
    edges = [0.0, -0.0, 3.0, -3.0, 1.5, -1.5, np.inf, -np.inf, 2.0**25, -(2.0**25),
             float(np.nextafter(np.float32(2.0**25), np.float32(0))), 2.0**76, 2.0**-149]
    x = np.concatenate([bits.view(np.float32), np.array(edges, np.float32)])
    x = x[~np.isnan(x)]
    for n in (name, f"d_{name}"):
        want, got = getattr(kernels, n)(x), getattr(kernels, f"{n}_simd")(x)
        assert want.tobytes() == got.tobytes(), n


@pytest.mark.parametrize("name", sorted(_simd._NATIVE32))
def test_float32_native_loops_give_the_float64_paths_values(name):
    # every sign and exponent (2**17 patterns spread over all of them), the specials and the
    # points where the functions change: the float32 loop that skips widening returns what the
    # float64 loop rounded once returns, NaN for NaN (a signalling NaN may pass unquieted)
    bits = np.arange(0, 1 << 32, 1 << 15, dtype=np.uint64).astype(np.uint32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 6.0, np.nextafter(6, 7),
                         np.nextafter(6, 5), 1e-45, -1e-45, 3.4e38], np.float32)
    x = np.concatenate([bits.view(np.float32), specials, -specials])
    got = np.empty_like(x)
    _simd.KERNELS[name][("float32", False)](x, got, 0.0, 0.0)
    wide = np.empty(x.size, np.float64)
    with np.errstate(invalid="ignore"):
        _simd.KERNELS[name][("float64", False)](x.astype(np.float64), wide, 0.0, 0.0)
        want = wide.astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))

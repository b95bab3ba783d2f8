"""The fast row-wise and gated variants (kernels/_rowwise_fast.py, kernels/_gated_fast.py):
the same values as the accurate kernels to within their budgets' rounding, the same
conventions exactly, at every shape the issue names, on one thread and on two.  Their
accuracy against mpmath is the audit's (every catalog variant, tests/test_audit.py)."""

import numba
import numpy as np
import pytest

from actbench_ulp import kernels
from actbench_ulp.kernels import _rowwise_fast, _rowwise_short

ROWWISE = [("softmax", False), ("log_softmax", False), ("softmax_vjp", True),
           ("log_softmax_vjp", True)]
GATED = [f"{d}{n}{p}" for n in ("glu", "geglu", "swiglu", "reglu")
         for d, p in (("", ""), ("d_", "_a"), ("d_", "_b"))]


def _ulps(got, want, dtype):
    """|got - want| in ULPs of want (the two kernels agree to ~0.5 ULP each of the exact)."""
    got = got.astype(np.float64)
    want = want.astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    # inf - inf and the spacing of inf where both are inf: `same` covers them
    with np.errstate(invalid="ignore", over="ignore"):
        spacing = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
        return np.where(same, 0.0, np.abs(got - want) / spacing)


def _rowwise_pair(name, x, g, **kw):
    fast, accurate = getattr(kernels, f"{name}_fast"), getattr(kernels, name)
    args = (x, g) if g is not None else (x,)
    return fast(*args, **kw), accurate(*args, **kw)


@pytest.mark.parametrize(("name", "vjp"), ROWWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "axis"), [((512, 8), -1), ((2, 65536), -1), ((1, 128256), -1),
                                             ((300, 17), 0), ((4, 33, 5), 1)])
def test_rowwise_fast_matches_accurate_at_every_shape(name, vjp, dtype, shape, axis):
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(-12, 12, shape).astype(dtype)
    g = rng.uniform(-1, 1, shape).astype(dtype) if vjp else None
    got, want = _rowwise_pair(name, x, g, axis=axis, temperature=0.7)
    assert got.dtype == dtype and got.shape == shape
    # each is within 0.5 ULP (float32: both round a float64 value once; float64 budgets 2/4)
    limit = 1.0 if dtype == np.float32 else 6.0
    assert _ulps(got, want, dtype).max() <= limit


@pytest.mark.parametrize(("name", "vjp"), ROWWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rowwise_fast_keeps_every_convention(name, vjp, dtype):
    """NaN rows, +inf entries, fully masked rows, -inf entries (zero softmax, -inf
    log-softmax, gradient +0), a row spread beyond exp's range, a dominated row: the accurate
    kernel's NaNs and signs of zeros exactly, its values to the rounding of each."""
    rows = np.array([
        [1.0, np.nan, 2.0, 3.0],
        [1.0, np.inf, np.inf, 0.0],
        [-np.inf] * 4,
        [0.5, -np.inf, 2.0, -np.inf],
        [3e4, -3e4, 0.0, 1.0],
        [100.0, 0.0, -5.0, 1.0],
        [2.0, 2.0, 2.0, 2.0],
    ], dtype=dtype)
    g = np.tile(np.array([0.25, -1.0, 3.0, 0.5], dtype=dtype), (rows.shape[0], 1)) if vjp else None
    got, want = _rowwise_pair(name, rows, g)
    numbers = ~np.isnan(want)  # a NaN's sign bit is no convention
    assert np.array_equal(np.isnan(got), ~numbers)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))
    assert _ulps(got, want, dtype).max() <= (1.0 if dtype == np.float32 else 6.0)
    if name == "softmax_vjp":
        assert got[3, 1] == 0.0 and not np.signbit(got[3, 1])  # a masked entry passes +0


@pytest.mark.parametrize(("name", "vjp"), ROWWISE)
def test_rowwise_fast_threads_give_the_serial_result(name, vjp):
    rng = np.random.default_rng(7)
    x = rng.uniform(-8, 8, (600, 1000)).astype(np.float32)  # above PARALLEL_MIN: threaded
    g = rng.uniform(-1, 1, x.shape).astype(np.float32) if vjp else None
    fast = getattr(kernels, f"{name}_fast")
    args = (x, g) if vjp else (x,)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = fast(*args)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        threaded = fast(*args)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(serial, threaded)


@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gated_fast_matches_accurate(name, dtype):
    rng = np.random.default_rng(3)
    a = rng.uniform(-20, 20, 5000).astype(dtype)
    b = rng.uniform(-20, 20, 5000).astype(dtype)
    got = getattr(kernels, f"{name}_fast")(a, b)
    want = getattr(kernels, name)(a, b)
    assert got.dtype == dtype
    # float32: forward kernels round once (<= 0.6 ULP), the partials compute in float32 (their
    # budget 2, the accurate kernel's 0.5); float64: the budgets (forward <= 5, d_b <= 7)
    limit = (1.0 if "_" not in name else 2.5) if dtype == np.float32 else 12.0
    assert _ulps(got, want, dtype).max() <= limit


@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gated_fast_edges_are_the_accurate_kernels(name, dtype):
    """Where the gate underflows or b is tiny the fast loop hands over to the accurate
    scalar: infinite a times a tiny nonzero gate, huge a times an underflowing gate, signed
    zeros, NaN."""
    big = np.finfo(dtype).max
    tiny_b = 2.0**-1000 if dtype == np.float64 else 2.0**-140
    # float64 edges (-700, -40, -38, tiny b) and float32 ones (b < -100 for glu, |b| > 80
    # for sigmoid', b < -80 for silu', b < -10 for gelu'), each with a huge a
    # and the float32 products' range: a (or a·b) huge beside exp's pair scaled by 2**90 (b
    # below -40), a result just above the smallest normal (glu's low-order terms went
    # subnormal: 1.57 ULP), gelu's tail clamp (b below -14.75) with a small and a large a
    a = np.array([np.inf, -np.inf, big, -big, 3.0, 3.0, 3.0, -2.0, np.nan, 1.0, big,
                  big, -big, big, big, -big, big,
                  1.0162352e38, -6.5754555e32, 3.4866674e32, -1.8e-37, 3.0, 1000.0], dtype=dtype)
    b = np.array([-700.0, -40.0, -700.0, -38.0, -np.inf, np.inf, np.nan, -0.0, 1.0, tiny_b,
                  tiny_b, -150.0, -95.0, 85.0, -85.0, -12.0, 0.0,
                  -54.52566, -52.31068, -9.141954, -1.7785, -20.0, -15.0], dtype=dtype)
    with np.errstate(all="ignore"):
        got = getattr(kernels, f"{name}_fast")(a, b)
        want = getattr(kernels, name)(a, b)
    numbers = ~np.isnan(want)  # a NaN's sign bit is no convention
    assert np.array_equal(np.isnan(got), ~numbers)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))
    assert _ulps(got, want, dtype).max() <= (2.5 if dtype == np.float32 else 12.0)


@pytest.mark.parametrize("which", ["a", "b"])
def test_gated_fast_out_may_be_an_input(which):
    """out= one of the operands (in place): the edge pass reads b after the main pass, so the
    kernel must not write into an operand before it has read it for the last time."""
    a = np.array([-1000.0, 5.0, 2.0], np.float64)
    b = np.array([5.0, -700.0, 0.5], np.float64)
    want = kernels.glu(a, b)
    target = a.copy() if which == "a" else b.copy()
    other = b if which == "a" else a
    got = kernels.glu_fast(target, other, out=target) if which == "a" else \
        kernels.glu_fast(other, target, out=target)
    assert got is target
    assert _ulps(got, want, np.float64).max() <= 4.0


def test_rowwise_fast_takes_a_subnormal_temperature():
    x = np.array([[1.0, 2.0, -3.0]])
    got = kernels.softmax_fast(x, temperature=5e-324)
    assert np.array_equal(got, kernels.softmax(x, temperature=5e-324))
    assert np.array_equal(got, [[0.0, 1.0, 0.0]])


def test_gated_fast_split_broadcast_out_and_threads():
    rng = np.random.default_rng(5)
    x = rng.uniform(-5, 5, (400, 2 * 700)).astype(np.float32)
    got = kernels.swiglu_fast(x, dim=-1)
    assert np.array_equal(got, kernels.swiglu_fast(x[:, :700], x[:, 700:]))
    out = np.empty((400, 700), np.float32)
    assert kernels.glu_fast(x[:, :700], x[:, 700:], out=out) is out
    assert np.array_equal(out, kernels.glu_fast(np.ascontiguousarray(x[:, :700]),
                                                np.ascontiguousarray(x[:, 700:])))
    row = kernels.geglu_fast(x[:1, :700], x[:, 700:])  # a broadcasts over the rows
    assert np.array_equal(row[3], kernels.geglu_fast(x[0, :700], x[3, 700:]))
    with pytest.raises(TypeError, match="float32"):
        kernels.glu_fast(x[:, :700], x[:, 700:].astype(np.float64))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = kernels.geglu_fast(x.reshape(-1), x.reshape(-1)[::-1].copy())
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        threaded = kernels.geglu_fast(x.reshape(-1), x.reshape(-1)[::-1].copy())
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(serial, threaded)


@pytest.mark.parametrize(("name", "vjp"), ROWWISE)
@pytest.mark.parametrize("length", [1, 3, 8, 17, _rowwise_short.SHORT_MAX])
def test_short_rows_across_rows_give_the_long_rows_values(name, vjp, length):
    """Short float32 rows run across rows (kernels/_rowwise_short.py) with the long rows'
    arithmetic per entry: the same float32 results, up to the float64 sum's order (2**-50 of
    a ULP moves a rounding only at a near-tie), over three blocks of rows, one with a NaN
    row, one with a row spread beyond exp's range (both through the row functions)."""
    rng = np.random.default_rng(length)
    rows = 3 * _rowwise_short.BLOCK - 5
    x = rng.uniform(-30, 30, (rows, length)).astype(np.float32)
    g = rng.uniform(-1, 1, x.shape).astype(np.float32) if vjp else None
    x[7, 0] = np.nan
    if length > 1:
        x[_rowwise_short.BLOCK + 3, :2] = [3e3, -3e3]
    args = (x, g) if vjp else (x,)
    short, long_rows = np.empty_like(x), np.empty_like(x)
    _rowwise_short.run(name, args, short, {"temperature": 0.7})
    _rowwise_fast.run(name, args, long_rows, {"temperature": 0.7})
    assert np.array_equal(np.isnan(short), np.isnan(long_rows))
    assert np.isnan(short[7]).all() and not np.isnan(short[8:]).any()
    steps = np.abs(short.view(np.int32).astype(np.int64) - long_rows.view(np.int32))[~np.isnan(short)]
    assert steps.max() <= 1 and np.count_nonzero(steps) <= steps.size // 1000


def test_a_short_row_beyond_exps_range_is_flagged_for_the_row_function():
    # what sends it to the accurate kernel: float32 results rarely show it (exp(-714) is far
    # below float32's range either way), so the flag itself is checked
    x = np.zeros((4, 8), np.float32)
    x[2, 3] = -500.0  # t = -714 at tau = 0.7: beyond the -700 of the fast passes
    n, block = x.shape[1], _rowwise_short.BLOCK
    t, e, v = np.empty((n, block)), np.empty((n, block)), np.zeros((6, block))
    _rowwise_short._softmax_block(x, 0.7, np.empty_like(x), 0, 4, t, e, v)
    assert (v[4, :4] != 0).tolist() == [False, False, True, False]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one thread: nothing to compare")
@pytest.mark.parametrize(("name", "vjp"), ROWWISE)
def test_short_rows_threads_give_the_serial_result(name, vjp):
    rng = np.random.default_rng(8)
    x = rng.uniform(-8, 8, (40000, 8)).astype(np.float32)  # above PARALLEL_MIN: threaded
    g = rng.uniform(-1, 1, x.shape).astype(np.float32) if vjp else None
    serial, threaded = _rowwise_short.KERNELS[name]
    out_serial, out_threaded = np.empty_like(x), np.empty_like(x)
    args = (x, g) if vjp else (x,)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        threaded(*args, 1.0, out_threaded)
    finally:
        numba.set_num_threads(before)
    serial(*args, 1.0, out_serial)
    assert np.array_equal(out_serial, out_threaded)

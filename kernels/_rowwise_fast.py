"""Fast row-wise kernels: softmax and log_softmax, forward and VJP, float32 and float64.

Each row is a few passes at SIMD width, over the row and a float64 buffer that stays in cache:

1. scan: whether there is a NaN, then the maximum m (as an integer max of the bits, which
   vectorizes where a floating-point one would not);
2. exp: e_i = exp((x_i - m)/tau) by ``_simd``'s Cody-Waite reduction and polynomial, into the
   buffer; for float64 input x_i - m and the division by tau are carried as double-doubles
   (two_sum and a fused residual), since exp turns an absolute error of t into a relative one;
3. a sum of the buffer, in a function of its own that may reassociate (the only one: the
   error-free steps elsewhere must not be reordered), so that it vectorizes;
4. the output: e_i/S as e_i·(1/S) corrected by its fused residual; log-softmax (x_i - m)/tau
   - log1p(R), R the sum without the maximum's 1, so a dominated row gives -tiny, not -0.

float32 input is computed in float64 and rounded once (exp's fit to 4e-12 is ample); float64
uses the float64 fit, and a normaliser summed in 16 lanes of error-free two-sums.

The float32 VJPs subtract the gradient at the maximum, g_m, first:
softmax v_i = s_i·((g_i - g_m) - sum_j s_j (g_j - g_m))/tau, so a constant g gives exact
zeros and a row dominated by its maximum does not cancel; log-softmax
v_i = (g_i - s_i·G)/tau.  In float64 arithmetic that is ~2**-29 of a float32 ULP, but for
float64 results the subtraction cancels wherever g_i nears the weighted mean of g, and the
rounding errors of exp and of the sums show in proportion: a plain float64 VJP reaches 1,400
ULP (softmax) and 500 ULP (log-softmax) on the audit's domains, against a budget of 4.  Only a
double-double exp would keep them within budget, and that is the accurate kernel, which the
float64 VJPs of this variant therefore are (``RowwiseFastKernel``).

Rows the fast passes do not cover are handed to the accurate kernel (``_rowwise``), one row
at a time, so every convention is the same by construction: a NaN, a +inf entry or an all
-inf row, and rows whose finite entries spread beyond exp's normal range ((min - m)/tau < -700),
where results must be formed with their exponent apart.  -inf entries in ordinary rows
get softmax +0, log-softmax -inf and gradient +0 here.

Rows run on Numba's threads (``prange`` over blocks of rows) when the batch is large.
"""

import math

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import _rowwise
from ._cache import cached
from ._simd import (
    _EXP_Q,
    INV_LN2,
    LN2_HI,
    LN2_LO,
    PARALLEL_MIN,
    _f64_from_bits,
    _fma64,
    _horner,
    _inline,
    _prefer_512_bit_vectors,
    _two_sum,
)

__all__ = ["KERNELS", "ROW_FUNCTIONS", "run"]

_INF = math.inf
# rows whose finite entries reach below this t = (x - max)/tau go to the accurate kernel: above
# it exp(t) >= 2**-1010 is a normal float64, so every product formed here stays normal (a
# float32 gradient of 2**128 times exp(t)/tau still counts, and float64 results that are
# subnormal must round once)
_SPREAD = -700.0
_ROWS_PER_BLOCK = 16


def _jit(**flags):
    def wrap(func):
        # fastmath stated where not given: see _dd64._jit
        return cached(njit(error_model="numpy", **{"fastmath": False, **flags})(func))
    return wrap


@_jit()
def _max32(row):
    """The maximum of a float32 row without NaNs, as a max of integer keys (the bits with the
    magnitude flipped for negative numbers order like the floats): LLVM vectorizes integer
    max reductions, but not floating-point ones without fast-math flags we cannot give."""
    bits = row.view(np.int32)
    best = -(2**31)
    for i in range(bits.shape[0]):
        _prefer_512_bit_vectors()  # the widest vectors the CPU has (LLVM's tuning prefers 256 bit)
        b = np.int64(bits[i])
        best = max(best, b ^ ((b >> 31) & 0x7FFFFFFF))
    return np.float64(_f32_from_bits(np.int32(best ^ ((best >> 31) & 0x7FFFFFFF))))


@_jit()
def _max64(row):
    """``_max32`` for float64 rows."""
    bits = row.view(np.int64)
    best = -(2**63)
    for i in range(bits.shape[0]):
        _prefer_512_bit_vectors()
        b = bits[i]
        best = max(best, b ^ ((b >> 63) & 0x7FFFFFFFFFFFFFFF))
    return _f64_from_bits(best ^ ((best >> 63) & 0x7FFFFFFFFFFFFFFF))


@_jit(fastmath={"reassoc"})
def _nans(row):
    """Whether the row has a NaN: a sum of v·0 (NaN for NaN and ±inf entries; reassociated,
    so it vectorizes), and only when that is NaN the precise check."""
    probe = 0.0
    for i in range(row.shape[0]):
        _prefer_512_bit_vectors()
        probe += row[i] * 0.0
    if probe == probe:
        return False
    for i in range(row.shape[0]):
        if row[i] != row[i]:
            return True
    return False


@_jit()
def _first(row, value):
    """The first index of ``value`` in row (an integer min reduction, vectorized)."""
    n = row.shape[0]
    k = n
    for i in range(n):
        _prefer_512_bit_vectors()
        k = min(k, i if row[i] == value else n)
    return k


@_jit(fastmath={"reassoc", "contract"})
def _sum(buf, n):
    s = 0.0
    for i in range(n):
        _prefer_512_bit_vectors()
        s += buf[i]
    return s


_LANES = 16


@_jit()
def _sum_compensated(buf, n):
    """sum(buf[:n]) in 16 lanes of Knuth two-sums (error-free: no reassociation here, the
    lanes are explicit so that they vectorize), the lanes then added as double-doubles: the
    float64 kernels' normaliser, where a plain sum's error would show in the result."""
    hi = np.zeros(_LANES)
    lo = np.zeros(_LANES)
    full = n - n % _LANES
    for i in range(0, full, _LANES):
        for k in range(_LANES):
            v = buf[i + k]
            s = hi[k] + v
            bb = s - hi[k]
            lo[k] += (hi[k] - (s - bb)) + (v - bb)
            hi[k] = s
    total = 0.0
    err = 0.0
    for k in range(_LANES):
        total, e = _two_sum(total, hi[k])
        err += e + lo[k]
    for i in range(full, n):
        total, e = _two_sum(total, buf[i])
        err += e
    return total + err


@_jit(fastmath={"reassoc", "contract"})
def _dot_shifted(buf, g, gm, n):
    """sum_i buf_i·(g_i - gm), in float64."""
    s = 0.0
    for i in range(n):
        _prefer_512_bit_vectors()
        s += buf[i] * (np.float64(g[i]) - gm)
    return s



@_inline
def _t(v, m, tau, inv_tau, wide):
    """(t, t_lo) = (v - m)/tau; exact sums for float32 (v - m is exact in float64), a
    double-double for float64.  -inf stays -inf with t_lo 0."""
    if wide:
        d, d_lo = _two_sum(v, -m)
        d_lo = d_lo if d > -_INF else 0.0
        q = d * inv_tau
        q_lo = (_fma64(-q, tau, d) + d_lo) * inv_tau
        q_lo = q_lo if q > -_INF else 0.0
        return q, q_lo
    return (np.float64(v) - m) * inv_tau, 0.0


@intrinsic
def _bits_of_f64(typingctx, x):
    """The int64 bit pattern of the float64 ``x`` (a vector bitcast in the loop)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


_SHIFTER = float.fromhex("0x1.8p52")  # a/ln2 + 1.5·2**52 holds round(a/ln2) in its low bits


@_inline
def _exp(t, t_lo, wide):
    """exp(t + t_lo) as an unevaluated sum hi + lo, for t >= -708 (the finite entries of a
    fast row reach -700 at most), and 0 below (a -inf entry): Cody-Waite and ``_simd``'s fit
    (float32-grade unless ``wide``), 1 + p kept exact as a pair (rounding it would be half
    the float64 kernels' error), 2**n from its bits in one normal factor.  n is read from the
    shifter's bits rather than converted (AVX2 has no vector float64 -> int64 conversion:
    one would scalarize the loop)."""
    a = max(t, -708.0)
    shifted = a * INV_LN2 + _SHIFTER
    n = shifted - _SHIFTER
    r = ((a - n * LN2_HI) - n * LN2_LO) + t_lo
    q = _horner(_EXP_Q[1], r) if wide else _horner(_EXP_Q[0], r)
    p = r + r * r * q
    hi = 1.0 + p
    lo = p - (hi - 1.0)  # 1 + p = hi + lo exactly (Fast2Sum: |p| < 1)
    scale = _f64_from_bits((_bits_of_f64(shifted) + 1023) << 52)
    if t < -708.0:
        return 0.0, 0.0
    return hi * scale, lo * scale


@_inline
def _quotient(e, e_lo, inv_s, s):
    """(e + e_lo)/S from e·(1/S), corrected by the fused residual e - y·S + e_lo (float32
    rows pass e_lo = 0: their buffer's low row is not written)."""
    y = e * inv_s
    return y + (_fma64(-y, s, e) + e_lo) * inv_s


def _kernels(wide):
    """The four row loops for float32 (``wide`` False) or float64 input."""

    @_inline
    def exps(row, m, tau, inv_tau, buf, skip_max):
        """buf_i = exp(t_i); with skip_max the entries equal to m give 0 instead of 1.
        Returns how many finite entries lie beyond the spread the fast passes cover."""
        far = 0
        for i in range(row.shape[0]):
            _prefer_512_bit_vectors()  # 8 doubles a vector where the CPU has them
            t, t_lo = _t(row[i], m, tau, inv_tau, wide)
            e, e_lo = _exp(t, t_lo, wide)
            top = skip_max and row[i] == m
            buf[0, i] = 0.0 if top else e
            if wide:  # float32 rows need no low parts (a constant: the store is compiled out)
                buf[1, i] = 0.0 if top else e_lo
            # a finite entry beyond the spread, or whose distance to m overflowed
            far += (t < _SPREAD) & (row[i] > -_INF)
        return far

    @_inline
    def _normaliser(buf, n):
        """sum of the pairs in buf: float64 sums for float32 rows (2**-40 is ample), 16
        lanes of two-sums for float64 rows."""
        if wide:
            return _sum_compensated(buf[0], n) + _sum(buf[1], n)
        return _sum(buf[0], n)

    @_inline
    def ordinary(row):
        """m, and whether the row may take the fast passes (see the module docstring)."""
        if _nans(row):
            return 0.0, False
        hi = _max64(row) if wide else _max32(row)
        return hi, -_INF < hi < _INF

    def softmax(x, tau, out, buf, r):
        row = x[r]
        n = row.shape[0]
        m, fast = ordinary(row)
        if not fast:
            _accurate_row(_rowwise.softmax_rows, x, tau, out, r)
            return
        inv_tau = 1.0 / tau
        if exps(row, m, tau, inv_tau, buf, False):
            _accurate_row(_rowwise.softmax_rows, x, tau, out, r)
            return
        s = _normaliser(buf, n)
        inv_s = 1.0 / s
        for i in range(n):
            out[r, i] = _quotient(buf[0, i], buf[1, i] if wide else 0.0, inv_s, s)

    def log_softmax(x, tau, out, buf, r):
        row = x[r]
        n = row.shape[0]
        m, fast = ordinary(row)
        if not fast:
            _accurate_row(_rowwise.log_softmax_rows, x, tau, out, r)
            return
        inv_tau = 1.0 / tau
        if exps(row, m, tau, inv_tau, buf, True):
            _accurate_row(_rowwise.log_softmax_rows, x, tau, out, r)
            return
        k = 0
        for i in range(n):  # indexed, so that it vectorizes
            k += row[i] == m
        # every other finite entry is within the spread, so its exp (>= e**-700) keeps rest > 0
        # and the maximum's value -log1p(rest) negative, as it is
        rest = _normaliser(buf, n) + (k - 1)
        lse = math.log1p(rest)
        for i in range(n):
            t, t_lo = _t(row[i], m, tau, inv_tau, wide)
            out[r, i] = (t - lse) + t_lo

    def softmax_vjp(x, g, tau, out, buf, r):
        row = x[r]
        n = row.shape[0]
        m, fast = ordinary(row)
        if not fast or not _finite(g[r]):
            _accurate_vjp_row(_rowwise.softmax_vjp_rows, x, g, tau, out, r)
            return
        inv_tau = 1.0 / tau
        if exps(row, m, tau, inv_tau, buf, False):
            _accurate_vjp_row(_rowwise.softmax_vjp_rows, x, g, tau, out, r)
            return
        s = _normaliser(buf, n)
        inv_s = 1.0 / s
        gm = np.float64(g[r, _first(row, m)])
        dot = _dot_shifted(buf[0], g[r], gm, n) * inv_s
        for i in range(n):
            s_i = _quotient(buf[0, i], buf[1, i] if wide else 0.0, inv_s, s)
            v = s_i * (((np.float64(g[r, i]) - gm) - dot) * inv_tau)
            out[r, i] = 0.0 if row[i] == -_INF else v

    def log_softmax_vjp(x, g, tau, out, buf, r):
        row = x[r]
        n = row.shape[0]
        m, fast = ordinary(row)
        if not fast or not _finite(g[r]):
            _accurate_vjp_row(_rowwise.log_softmax_vjp_rows, x, g, tau, out, r)
            return
        inv_tau = 1.0 / tau
        if exps(row, m, tau, inv_tau, buf, False):
            _accurate_vjp_row(_rowwise.log_softmax_vjp_rows, x, g, tau, out, r)
            return
        s = _normaliser(buf, n)
        inv_s = 1.0 / s
        total = _sum_of(g[r])
        for i in range(n):
            p = _quotient(buf[0, i], buf[1, i] if wide else 0.0, inv_s, s) * total
            out[r, i] = (np.float64(g[r, i]) - p) * inv_tau

    return softmax, log_softmax, softmax_vjp, log_softmax_vjp


@_jit(fastmath={"reassoc"})
def _finite(g):
    """Whether every entry is finite: g·0 sums to NaN otherwise (reassociated: vectorized)."""
    probe = 0.0
    for i in range(g.shape[0]):
        _prefer_512_bit_vectors()
        probe += g[i] * 0.0
    return probe == probe


@_jit(fastmath={"reassoc", "contract"})
def _sum_of(g):
    s = 0.0
    for i in range(g.shape[0]):
        _prefer_512_bit_vectors()
        s += np.float64(g[i])
    return s


# not cached: they take the accurate kernel as an argument, and a Dispatcher type in a cache key
# never compares equal after unpickling (every cold compile would add an entry that never hits);
# the cached row bodies that call them carry their code
@njit(error_model="numpy", fastmath=False)
def _accurate_row(rows, x, tau, out, r):
    """One row through the accurate kernel ``rows`` (float64 in and out)."""
    xr = np.empty((1, x.shape[1]))
    xr[0, :] = x[r]
    res = np.empty((1, x.shape[1]))
    rows(xr, tau, res)
    out[r, :] = res[0]


@njit(error_model="numpy", fastmath=False)
def _accurate_vjp_row(rows, x, g, tau, out, r):
    """One row and its gradient through the accurate VJP ``rows`` (float64 in and out)."""
    xr = np.empty((1, x.shape[1]))
    xr[0, :] = x[r]
    gr = np.empty((1, x.shape[1]))
    gr[0, :] = g[r]
    res = np.empty((1, x.shape[1]))
    rows(xr, gr, tau, res)
    out[r, :] = res[0]


def _drivers(name, row_fn, takes_gradient):
    """Serial and threaded drivers over the rows of C-contiguous 2-D arrays."""
    body = cached(njit(error_model="numpy", fastmath={"contract"})(row_fn), f"fast.{name}.row")
    ROW_FUNCTIONS[name] = body
    if takes_gradient:
        def serial(x, g, tau, out):
            buf = np.empty((2, x.shape[1]))
            for r in range(x.shape[0]):
                body(x, g, tau, out, buf, r)

        def threaded(x, g, tau, out):
            blocks = (x.shape[0] + _ROWS_PER_BLOCK - 1) // _ROWS_PER_BLOCK
            for b in prange(blocks):
                buf = np.empty((2, x.shape[1]))
                for r in range(b * _ROWS_PER_BLOCK, min((b + 1) * _ROWS_PER_BLOCK, x.shape[0])):
                    body(x, g, tau, out, buf, r)
    else:
        def serial(x, tau, out):
            buf = np.empty((2, x.shape[1]))
            for r in range(x.shape[0]):
                body(x, tau, out, buf, r)

        def threaded(x, tau, out):
            blocks = (x.shape[0] + _ROWS_PER_BLOCK - 1) // _ROWS_PER_BLOCK
            for b in prange(blocks):
                buf = np.empty((2, x.shape[1]))
                for r in range(b * _ROWS_PER_BLOCK, min((b + 1) * _ROWS_PER_BLOCK, x.shape[0])):
                    body(x, tau, out, buf, r)
    return (cached(njit(error_model="numpy", fastmath=False)(serial), f"fast.{name}.serial"),
            cached(njit(error_model="numpy", fastmath=False, parallel=True)(threaded),
                   f"fast.{name}.threaded"))


_NAMES = ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp")
KERNELS = {}
ROW_FUNCTIONS = {}  # "softmax.float32" -> one row's function (x, tau, out, buf, r), for _rowwise_short
for _wide, _kind in ((False, "float32"), (True, "float64")):
    for _name, _fn in zip(_NAMES, _kernels(_wide), strict=True):
        # float64 VJPs are the accurate kernel's (module docstring): none is built for them
        if not (_wide and _name.endswith("_vjp")):
            KERNELS[_name, _kind] = _drivers(f"{_name}.{_kind}", _fn, _name.endswith("_vjp"))


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``out = name(x[, g])`` along the last axis of C-contiguous 2-D ``x`` (and ``g``):
    ``inputs`` = ``(x,)`` or ``(x, g)``; ``params["temperature"]`` divides x."""
    x, g = (*inputs, None)[:2]
    tau = params["temperature"]
    serial, threaded = KERNELS[name, x.dtype.name]
    fn = threaded if x.size >= PARALLEL_MIN and x.shape[0] > 1 and numba.get_num_threads() > 1 \
        else serial
    if g is None:
        fn(x, float(tau), out)
    else:
        fn(x, g, float(tau), out)

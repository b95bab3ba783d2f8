"""Short float32 rows (up to ``SHORT_MAX`` entries: a mixture-of-experts router's 8 logits):
softmax and log_softmax, forward and VJP, vectorized across rows instead of along them.

Along a row of 8, every pass of ``_rowwise_fast`` is shorter than one 16-lane vector, so it
runs in the loops' scalar remainders and the fixed cost of five passes is the row's whole
time.  Here a block of ``BLOCK`` rows is transposed into a float64 buffer (one column
per row: ``T[j, k]`` is entry j of row k), and each pass runs along k, across the block's
rows, at full vector width: the maximum is an elementwise max of n columns, the sum an
elementwise sum, the row's scalars (m, S, 1/S, the gradient at the maximum) are vectors.
The arithmetic per entry is ``_rowwise_fast``'s (its exp, its corrected quotient), so the
results are those of the long-row passes up to the order of the sum and, for log_softmax,
the log1p of the row's sum: a vector here (``_log1p``, within a few float64 ULP), libm's
once per row there.

A block with any non-finite entry (in x, or in g for the VJPs), and any row whose entries
spread beyond exp's normal range, goes through ``_rowwise_fast``'s row functions, one row at
a time, and so through the accurate kernel for every convention (NaN, ±inf, -inf rows).
"""

import numba
import numpy as np
from numba import njit, prange

from ._cache import cached
from ._rowwise_fast import _SPREAD, ROW_FUNCTIONS, _bits_of_f64, _exp, _finite, _jit, _quotient
from ._simd import (
    LN2_HI,
    LN2_LO,
    PARALLEL_MIN,
    _f64_from_bits,
    _log1p_of_exp,
    _prefer_512_bit_vectors,
)

__all__ = ["BLOCK", "KERNELS", "SHORT_MAX", "run"]

# up to here the passes across rows beat those along them; at 64 and 128 entries the
# transposes' power-of-two strides collide in the cache (tools/short_rows.py measures it)
SHORT_MAX = 48
BLOCK = 256  # rows a block: its buffers (n columns of 256 float64, 16 KB at n = 8) stay in L1/L2


@_jit()
def _load(src, r0, rows, t):
    """t[j, k] = src[r0 + k, j] in float64: the block transposed, one column per row."""
    n = src.shape[1]
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            t[j, k] = np.float64(src[r0 + k, j])


@_jit()
def _row_max(t, n, rows, m):
    for k in range(rows):
        _prefer_512_bit_vectors()
        m[k] = t[0, k]
    for j in range(1, n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            v = t[j, k]
            m[k] = v if v > m[k] else m[k]


@_jit(fastmath={"contract"})  # as the long rows' passes
def _exps(t, n, rows, m, inv_tau, skip_max, keep, e, s, count, far):
    """e[j, k] = exp((t[j, k] - m[k])/tau), 0 at the maximum with ``skip_max``, kept in e only
    with ``keep``; s[k]: their sum, in the order of j; count[k]: the entries equal to m;
    far[k]: whether an entry lies beyond the spread."""
    for k in range(rows):
        s[k] = 0.0
        count[k] = 0.0
        far[k] = 0.0
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            d = (t[j, k] - m[k]) * inv_tau  # exact difference: float32 entries in float64
            v, _ = _exp(d, 0.0, False)
            top = t[j, k] == m[k]
            v = 0.0 if skip_max and top else v
            if keep:
                e[j, k] = v
            s[k] += v
            count[k] += 1.0 if top else 0.0
            far[k] += 1.0 if d < _SPREAD else 0.0


@_jit()
def _column_sum(e, n, rows, s):
    for k in range(rows):
        _prefer_512_bit_vectors()
        s[k] = e[0, k]
    for j in range(1, n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            s[k] += e[j, k]


@_jit(fastmath={"contract"})
def _log1p(v):
    """log1p(v) for 0 <= v < 2**52 in float64 arithmetic that vectorizes: below 1,
    ``_simd._log1p_of_exp`` of e = v; above, 1 + v = 2**p·(1 + f), f in [0, 1) exact, the same
    of f plus p·ln 2 (1 + v rounds by 2**-53 relative, and log's condition there is below 1.5)."""
    bits = _bits_of_f64(1.0 + v)
    p = np.float64((bits >> 52) - 1023)
    f = _f64_from_bits((bits & 0xFFFFFFFFFFFFF) | (1023 << 52)) - 1.0
    lg = _log1p_of_exp(v if v < 1.0 else f, 1.0, True)
    return lg if v < 1.0 else p * LN2_HI + (lg + p * LN2_LO)  # p·LN2_HI is exact


@_jit()
def _recip(s, rows, inv_s):
    for k in range(rows):
        _prefer_512_bit_vectors()
        inv_s[k] = 1.0 / s[k]


@_jit()
def _at_max(t, g, n, rows, m, gm):
    """gm[k]: the gradient at the first entry of row k equal to its maximum."""
    for k in range(rows):
        _prefer_512_bit_vectors()
        gm[k] = 0.0
    for j in range(n - 1, -1, -1):
        for k in range(rows):
            _prefer_512_bit_vectors()
            gm[k] = g[j, k] if t[j, k] == m[k] else gm[k]


@_jit()
def _store(out, r0, rows, y, n):
    """out[r0 + k, j] = y[j, k]: the block back to rows, rounded once to out's dtype (a pass of
    its own: strided stores in the arithmetic's loop would keep it from vectorizing)."""
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            out[r0 + k, j] = y[j, k]


@_jit(fastmath={"contract"})
def _softmax_block(x, tau, out, r0, rows, t, e, v):
    """softmax of rows r0 .. r0 + rows - 1, all finite; v: the row vectors (m, S, 1/S, count,
    far); v[4] says which rows lie beyond the spread (the driver redoes them)."""
    n = x.shape[1]
    m, s, inv_s, count, far = v[0], v[1], v[2], v[3], v[4]
    _load(x, r0, rows, t)
    _row_max(t, n, rows, m)
    _exps(t, n, rows, m, 1.0 / tau, False, True, e, s, count, far)
    _recip(s, rows, inv_s)
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            e[j, k] = _quotient(e[j, k], 0.0, inv_s[k], s[k])
    _store(out, r0, rows, e, n)


@_jit(fastmath={"contract"})
def _log_softmax_block(x, tau, out, r0, rows, t, e, v):
    """log_softmax: (x - m)/tau - log1p(R), R the sum without the maximum's 1 (as the long
    rows: a row dominated by its maximum gives -tiny there, not -0)."""
    n = x.shape[1]
    m, rest, count, far = v[0], v[1], v[3], v[4]
    inv_tau = 1.0 / tau
    _load(x, r0, rows, t)
    _row_max(t, n, rows, m)
    _exps(t, n, rows, m, inv_tau, True, False, e, rest, count, far)
    for k in range(rows):
        _prefer_512_bit_vectors()
        rest[k] = _log1p(rest[k] + (count[k] - 1.0))
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            e[j, k] = (t[j, k] - m[k]) * inv_tau - rest[k]
    _store(out, r0, rows, e, n)


@_jit(fastmath={"contract"})
def _softmax_vjp_block(x, g, tau, out, r0, rows, t, e, gt, v):
    """softmax's VJP as the long rows form it: s·((g - g_m) - sum_j s_j (g_j - g_m))/tau, g_m
    the gradient at the maximum (a constant g gives exact zeros)."""
    n = x.shape[1]
    m, s, inv_s, count, far, gm = v[0], v[1], v[2], v[3], v[4], v[5]
    inv_tau = 1.0 / tau
    _load(x, r0, rows, t)
    _load(g, r0, rows, gt)
    _row_max(t, n, rows, m)
    _exps(t, n, rows, m, inv_tau, False, True, e, s, count, far)
    _recip(s, rows, inv_s)
    _at_max(t, gt, n, rows, m, gm)
    dot = count  # reused: the counts are not needed here
    for k in range(rows):
        dot[k] = 0.0
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            dot[k] += e[j, k] * (gt[j, k] - gm[k])
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            s_j = _quotient(e[j, k], 0.0, inv_s[k], s[k])
            e[j, k] = s_j * (((gt[j, k] - gm[k]) - dot[k] * inv_s[k]) * inv_tau)
    _store(out, r0, rows, e, n)


@_jit(fastmath={"contract"})
def _log_softmax_vjp_block(x, g, tau, out, r0, rows, t, e, gt, v):
    """log_softmax's VJP: (g - s·sum(g))/tau."""
    n = x.shape[1]
    m, s, inv_s, count, far, total = v[0], v[1], v[2], v[3], v[4], v[5]
    inv_tau = 1.0 / tau
    _load(x, r0, rows, t)
    _load(g, r0, rows, gt)
    _row_max(t, n, rows, m)
    _exps(t, n, rows, m, inv_tau, False, True, e, s, count, far)
    _recip(s, rows, inv_s)
    _column_sum(gt, n, rows, total)
    for j in range(n):
        for k in range(rows):
            _prefer_512_bit_vectors()
            p = _quotient(e[j, k], 0.0, inv_s[k], s[k]) * total[k]
            e[j, k] = (gt[j, k] - p) * inv_tau
    _store(out, r0, rows, e, n)


def _drivers(name, block, takes_gradient):
    """Serial and threaded drivers over blocks of ``BLOCK`` rows; a block with a non-finite
    entry, and each row beyond the spread, through the long rows' row function."""
    row = ROW_FUNCTIONS[f"{name}.float32"]
    if takes_gradient:
        def blocks(x, g, tau, out, first, last):
            n = x.shape[1]
            t, e, gt, v = np.empty((n, BLOCK)), np.empty((n, BLOCK)), np.empty((n, BLOCK)), \
                np.empty((6, BLOCK))
            buf = np.empty((2, n))
            for b in range(first, last):
                r0 = b * BLOCK
                rows = min(BLOCK, x.shape[0] - r0)
                if _finite(x[r0:r0 + rows].ravel()) and _finite(g[r0:r0 + rows].ravel()):
                    block(x, g, tau, out, r0, rows, t, e, gt, v)
                    for k in range(rows):
                        if v[4, k] != 0.0:
                            row(x, g, tau, out, buf, r0 + k)
                else:
                    for r in range(r0, r0 + rows):
                        row(x, g, tau, out, buf, r)

        def serial(x, g, tau, out):
            blocks(x, g, tau, out, 0, (x.shape[0] + BLOCK - 1) // BLOCK)

        def threaded(x, g, tau, out):
            count = (x.shape[0] + BLOCK - 1) // BLOCK
            for b in prange(count):
                blocks(x, g, tau, out, b, b + 1)
    else:
        def blocks(x, tau, out, first, last):
            n = x.shape[1]
            t, e, v = np.empty((n, BLOCK)), np.empty((n, BLOCK)), np.empty((6, BLOCK))
            buf = np.empty((2, n))
            for b in range(first, last):
                r0 = b * BLOCK
                rows = min(BLOCK, x.shape[0] - r0)
                if _finite(x[r0:r0 + rows].ravel()):
                    block(x, tau, out, r0, rows, t, e, v)
                    for k in range(rows):
                        if v[4, k] != 0.0:
                            row(x, tau, out, buf, r0 + k)
                else:
                    for r in range(r0, r0 + rows):
                        row(x, tau, out, buf, r)

        def serial(x, tau, out):
            blocks(x, tau, out, 0, (x.shape[0] + BLOCK - 1) // BLOCK)

        def threaded(x, tau, out):
            count = (x.shape[0] + BLOCK - 1) // BLOCK
            for b in prange(count):
                blocks(x, tau, out, b, b + 1)
    blocks = cached(njit(error_model="numpy", fastmath=False)(blocks), f"short.{name}.blocks")
    return (cached(njit(error_model="numpy", fastmath=False)(serial), f"short.{name}.serial"),
            cached(njit(error_model="numpy", fastmath=False, parallel=True)(threaded),
                   f"short.{name}.threaded"))


KERNELS = {
    name: _drivers(name, block, name.endswith("_vjp"))
    for name, block in (("softmax", _softmax_block), ("log_softmax", _log_softmax_block),
                        ("softmax_vjp", _softmax_vjp_block),
                        ("log_softmax_vjp", _log_softmax_vjp_block))
}


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``_rowwise_fast.run`` for float32 rows of at most ``SHORT_MAX`` entries."""
    x, g = (*inputs, None)[:2]
    tau = float(params["temperature"])
    serial, threaded = KERNELS[name]
    fn = threaded if x.size >= PARALLEL_MIN and x.shape[0] > BLOCK \
        and numba.get_num_threads() > 1 else serial
    if g is None:
        fn(x, tau, out)
    else:
        fn(x, g, tau, out)

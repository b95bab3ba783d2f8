"""Row-wise kernels: softmax and log_softmax with a temperature, and their VJPs.

Each row is processed in float64 (float32 input is widened and the results rounded once):

- shift by the row maximum: t_i = (x_i - m)/tau, with x_i - m exact (two_sum) and the
  division's remainder carried, so t_i is a double-double even when tau is not a power of 2;
  exp(t) is evaluated in double-double (``exp_dd``), because the VJPs subtract nearly equal
  multiples of it and libm's 0.5 ULP would be amplified;
- the normaliser is E = 1 + R, R the compensated sum over all but the maximum; log_softmax
  uses log1p(R), so a row dominated by one entry gives -tiny, not 0;
- the softmax VJP is written as s_i·sum_j s_j·(g_i - g_j), i.e. (g_i - g_m) + (g_i·R - A)
  with compensated products and sums, so the cancellation that the Jacobian has by
  construction happens on paper, not in rounded arithmetic; gradients are rescaled by a power
  of 2 when huge or tiny, and results that land in the subnormal range are formed with their
  exponent apart and rounded once.

Conventions (the mathematically undefined cases): a row with a NaN is all NaN; entries equal
to +inf share the mass equally (the limit as they grow together), the rest get 0 (log: -inf);
an all -inf (fully masked) row gives softmax 0, log_softmax -inf and zero gradients, so a fully
masked attention row contributes nothing instead of spreading NaN.  The VJPs use the same
s, and an entry at -inf gets gradient +0 from softmax.

Cached on disk by ``_cache``, keyed by every kernel source: these call helpers in
``_accurate``, which Numba's own cache would not notice changing.
"""

import math
from fractions import Fraction
from math import factorial

import numpy as np
from numba import njit

from ._cache import cached
from ._dd64 import (
    FDLIBM_LN2_HI,
    FDLIBM_LN2_LO,
    INV_LN2,
    div_dd,
    fast_two_sum,
    finish,
    log1p_dd,
    mul_dd,
    two_prod,
    two_sum,
)

__all__ = ["log_softmax_rows", "log_softmax_vjp_rows", "softmax_rows", "softmax_vjp_rows"]

_INF = math.inf
_EXP_UNDERFLOW = -746.0  # exp(t) is 0 below
_FAR = -1500.0  # exp(t) times any finite float is 0 below

def _jit(func):
    return cached(njit(error_model="numpy", fastmath=False)(func))  # stated: see _dd64._jit


def _inverse_factorials(n):
    """1/k! for k = 0..n as double-doubles, exact from Fractions (no literals to trust)."""
    out = []
    for k in range(n + 1):
        exact = Fraction(1, factorial(k))
        hi = float(exact)
        out.append((hi, float(exact - Fraction(hi))))
    return tuple(out)


# exp(r) for |r| <= log(2)/2 + 2**-50: the Taylor term r**23/23! < 2**-110
_INV_FACT = _inverse_factorials(22)


@_jit
def exp_dd(t, t_lo):
    """exp(t + t_lo) as a double-double; see ``exp_dd_scaled``."""
    s, s_lo, k = exp_dd_scaled(t, t_lo)
    return math.ldexp(s, k), math.ldexp(s_lo, k)


@_jit
def exp_dd_scaled(t, t_lo):
    """exp(t + t_lo) = (s + s_lo)·2**k, s in [0.7, 1.42], a double-double (~2**-75 relative
    at t = -746, limited by the log 2 split) for -1500 < t <= 0: the softmax VJPs subtract
    nearly equal multiples of these, so libm's 0.5 ULP would be amplified, and so would the
    ~2**-58 of ``_dd64.exp_dd`` (its tail in plain float64), which is enough for the
    elementwise kernels' results, each rounded once.
    Cody-Waite reduction with fdlibm's split log 2 (k·FDLIBM_LN2_HI exact), Taylor series of the
    reduced argument in double-double, then scaling by 2**k."""
    k = math.floor(t * INV_LN2 + 0.5)
    r = t - k * FDLIBM_LN2_HI  # exact (Sterbenz)
    p, p_lo = two_prod(k, FDLIBM_LN2_LO)
    r, r_lo = two_sum(r, -p)
    r_lo += t_lo - p_lo
    r, r_lo = two_sum(r, r_lo)
    s, s_lo = _INV_FACT[22]
    for j in range(21, -1, -1):
        s, s_lo = mul_dd(s, s_lo, r, r_lo)
        c, c_lo = _INV_FACT[j]
        s, e = two_sum(s, c)
        s_lo += e + c_lo
        s, s_lo = two_sum(s, s_lo)
    s, s_lo = two_sum(s, s_lo)
    return s, s_lo, int(k)


@_jit
def _shift_pair(x, m, tau):
    """(x - m)/tau as a double-double (t, t_lo), at every magnitude."""
    if x == -_INF:
        return -_INF, 0.0
    d, d_lo = two_sum(x, -m)
    if d == -_INF:  # x - m overflowed (x near -max, m near max): t is far below -1500
        return 2.0 * ((0.5 * x - 0.5 * m) / tau), 0.0
    q = d / tau
    p, e = two_prod(q, tau)
    return q, ((d - p) - e + d_lo) / tau


@_jit
def _shifted(x, m, tau):
    """``_shift_pair`` with the low part dropped below t = -1500, where exp(t) times any
    float is zero (see _vjp_max_of_dominated_row); between -1500 and the exp underflow edge
    the softmax VJP still evaluates exp(t + t_lo) scaled.  log_softmax, whose result is t
    itself there, takes the full pair."""
    t, t_lo = _shift_pair(x, m, tau)
    return (t, 0.0) if t < _FAR else (t, t_lo)


@_jit
def _row_state(row, tau, t, t_lo, e, e_lo):
    """Fill t, t_lo, e = exp(t) for one row; return (kind, R, R_lo, imax): kind 0 normal,
    1 NaN row, 2 +inf entries (their count in R), 3 all -inf.  For kind 0 the normaliser is
    E = 1 + R with R = sum of e over all entries but the (first) maximum, as a double-double
    (Neumaier), so that 1 - s_max = R/E never has to be formed by cancellation."""
    n = row.shape[0]
    n_inf = 0
    m = -_INF
    imax = 0
    for i in range(n):
        v = row[i]
        if v != v:
            return 1, 0.0, 0.0, 0
        if v == _INF:
            n_inf += 1
        if v > m:
            m = v
            imax = i
    if n_inf:
        return 2, float(n_inf), 0.0, 0
    if m == -_INF:
        return 3, 0.0, 0.0, 0
    rest = 0.0
    rest_lo = 0.0
    for i in range(n):
        t[i], t_lo[i] = _shifted(row[i], m, tau)
        if t[i] > _EXP_UNDERFLOW:
            e[i], e_lo[i] = exp_dd(t[i], t_lo[i])
        else:
            e[i], e_lo[i] = 0.0, 0.0
        if i != imax:
            rest, err = two_sum(rest, e[i])
            rest_lo += err + e_lo[i]
    rest, rest_lo = two_sum(rest, rest_lo)
    return 0, rest, rest_lo, imax


@_jit
def _div_dd(a, a_lo, rest, rest_lo):
    """(a + a_lo)/(1 + rest + rest_lo) as a double-double, returned as its high part plus
    the correction (the caller's rounding is the last)."""
    q, q_lo = _quotient(a, a_lo, rest, rest_lo)
    return q + q_lo


@_jit
def _quotient(a, a_lo, rest, rest_lo):
    big, big_lo = two_sum(1.0, rest)
    big_lo += rest_lo
    q = a / big
    p, p_lo = two_prod(q, big)
    return q, ((a - p) - p_lo + a_lo - q * big_lo) / big


@_jit
def _limit_mass(row, n_inf, i):
    return 1.0 / n_inf if row[i] == _INF else 0.0


@_jit
def softmax_rows(x, tau, out):
    n = x.shape[1]
    t = np.empty(n)
    t_lo = np.empty(n)
    e = np.empty(n)
    e_lo = np.empty(n)
    for r in range(x.shape[0]):
        row = x[r]
        kind, rest, rest_lo, _ = _row_state(row, tau, t, t_lo, e, e_lo)
        for i in range(n):
            if kind == 0:
                out[r, i] = _div_dd(e[i], e_lo[i], rest, rest_lo)
            elif kind == 1:
                out[r, i] = math.nan
            elif kind == 2:
                out[r, i] = _limit_mass(row, rest, i)
            else:
                out[r, i] = 0.0


@_jit
def _log1p_pair(rest, rest_lo):
    """log(1 + R), R = rest + rest_lo >= 0, as a pair: 2·atanh(R/(2 + R)) up to R = 1;
    above, libm's log1p corrected by one Newton step, (1 + R)·exp(-L) - 1, in double-double."""
    if rest <= 1.0:
        return log1p_dd(rest, rest_lo)
    lh = math.log1p(rest)
    eh, el = exp_dd(-lh, 0.0)
    ph, pl = two_sum(1.0, rest)
    qh, ql = mul_dd(ph, pl + rest_lo, eh, el)
    dh, dl = two_sum(qh, -1.0)
    return two_sum(lh, dh + (dl + ql))


@_jit
def log_softmax_rows(x, tau, out):
    n = x.shape[1]
    t = np.empty(n)
    t_lo = np.empty(n)
    e = np.empty(n)
    e_lo = np.empty(n)
    for r in range(x.shape[0]):
        row = x[r]
        kind, rest, rest_lo, imax = _row_state(row, tau, t, t_lo, e, e_lo)
        lse, lse_lo = _log1p_pair(rest, rest_lo) if kind == 0 else (0.0, 0.0)
        others = 0  # finite entries besides one maximum: then lse > 0 even if it rounds to 0
        for v in row:
            others += v > -_INF
        for i in range(n):
            if kind == 0:
                if t[i] == 0.0 and lse == 0.0:
                    out[r, i] = -0.0 if others > 1 else 0.0
                elif t[i] == -_INF:
                    out[r, i] = -_INF
                else:  # t - lse with both pairs: libm's log1p and two roundings cost 1.5 ULP
                    th, tl = (t[i], t_lo[i]) if t[i] >= _FAR else _shift_pair(row[i], row[imax], tau)
                    d, d_lo = two_sum(th, -lse)
                    out[r, i] = d + ((d_lo - lse_lo) + tl)
            elif kind == 1:
                out[r, i] = math.nan
            elif kind == 2:
                out[r, i] = 0.0 - math.log(rest) if row[i] == _INF else -_INF
            else:
                out[r, i] = -_INF


@_jit
def _has_nan(g):
    for v in g:
        if v != v:
            return True
    return False


@_jit
def _gradient_scale(g):
    """A power of 2 that brings max|g| into [2**-400, 2**900]: two_prod cannot overflow, a sum
    of up to 2**100 terms stays finite, and no error term is lost to subnormals.  The VJPs
    are linear in g, so the scaling is exact and undone by the last operation."""
    big = 0.0
    for v in g:
        big = max(big, abs(v))
    if big > 2.0**900:
        return 2.0**-200
    if 0.0 < big < 2.0**-400:
        return 2.0**600
    return 1.0


@_jit
def softmax_vjp_rows(x, g, tau, out):
    # v_i = s_i·(g_i - sum_j g_j s_j)/tau = e_i·B_i/(E²·tau) with E = 1 + R and
    # B_i = g_i·E - sum_j e_j g_j = (g_i - g_m) + (g_i·R - A),  A = sum_{j != m} e_j g_j:
    # the e_m = 1 terms cancel exactly on paper instead of in rounded arithmetic.
    n = x.shape[1]
    t = np.empty(n)
    t_lo = np.empty(n)
    e = np.empty(n)
    e_lo = np.empty(n)
    for r in range(x.shape[0]):
        row = x[r]
        kind, rest, rest_lo, m = _row_state(row, tau, t, t_lo, e, e_lo)
        if kind == 1:
            out[r, :] = math.nan
            continue
        if kind == 3:
            out[r, :] = 0.0
            continue
        scale = _gradient_scale(g[r])
        if kind == 2:
            _vjp_at_limit(row, g[r], scale, rest, tau, out[r])
            continue
        if _has_nan(g[r]):  # sum_j e_j g_j is NaN, and so is every v_i but at -inf entries
            for i in range(n):
                out[r, i] = 0.0 if row[i] == -_INF else math.nan
            continue
        a_hi = 0.0
        a_lo = 0.0
        for j in range(n):
            if j != m:
                gj = g[r, j] * scale
                p, p_lo = two_prod(e[j], gj)
                a_hi, err = two_sum(a_hi, p)
                a_lo += err + p_lo + e_lo[j] * gj
        big_e = 1.0 + (rest + rest_lo)
        for i in range(n):
            if row[i] == -_INF:
                out[r, i] = 0.0  # an exactly zero probability passes no gradient: +0
                continue
            if i == m and rest < 2.0**-900:
                out[r, i] = _vjp_max_of_dominated_row(row, t, t_lo, g[r], m, scale, tau)
                continue
            # all in the scaled domain (scaling up tiny gradients is exact; scaling down huge
            # ones only drops bits far below the huge terms), unscaled by the last operation
            gi = g[r, i] * scale
            d, d_lo = two_sum(gi, -g[r, m] * scale)
            p, p_lo = two_prod(gi, rest)
            p_lo += gi * rest_lo
            q, q_lo = two_sum(p, -a_hi)
            q_lo += p_lo - a_lo
            b, b_lo = two_sum(d, q)
            b, b_lo = fast_two_sum(b, b_lo + d_lo + q_lo)
            if b == 0.0:
                b = math.copysign(0.0, _underflowed_sign(row, e, g[r], m, i, tau))
            if t[i] < _FAR and e[i] < 2.0**-900:  # e_i < 2**-2164: v rounds to zero even
                out[r, i] = math.copysign(0.0, b)  # for |B| near 2**1026
            elif b != 0.0 and abs(b) < 2.0**1000:
                # e_i·B_i/(E²·tau) with every factor a pair and one rounding, last: rounded
                # one by one, the quotient, the products and the divisions cost 3 ULP.  e_i
                # near the subnormals keeps its exponent apart until that rounding.
                if e[i] >= 2.0**-900:
                    mant, mant_lo, k = e[i], e_lo[i], 0
                else:
                    mant, mant_lo, k = exp_dd_scaled(t[i], t_lo[i])
                sh, sl = _quotient(mant, mant_lo, rest, rest_lo)
                ph, pl = mul_dd(sh, sl, b, b_lo)
                eh, el = two_sum(1.0, rest)
                ph, pl = div_dd(ph, pl, eh, el + rest_lo)
                ph, pl = div_dd(ph, pl, tau, 0.0)
                out[r, i] = finish(ph, pl, k - int(math.log2(scale)))
            elif e[i] >= 2.0**-900:
                out[r, i] = (_div_dd(e[i], e_lo[i], rest, rest_lo) * (b / big_e) / tau) / scale
            else:  # e_i is (nearly) subnormal: keep its exponent apart until the last rounding
                mant, mant_lo, k = exp_dd_scaled(t[i], t_lo[i])
                w = _div_dd(mant, mant_lo, rest, rest_lo) * (b / big_e) / tau
                out[r, i] = math.ldexp(w, k - int(math.log2(scale)))


@_jit
def _vjp_max_of_dominated_row(row, t, t_lo, g, m, scale, tau):
    """softmax VJP at the maximum when every other exp(t_j) is below 2**-900: then
    v_m = sum_j e_j·(g_m - g_j)/tau to 1 + O(2**-900), every term tiny or subnormal.  The
    terms are summed with their exponents factored out (e_j = mant_j·2**k_j, scaled by 2**-K,
    K the largest k_j) so that only the final ldexp rounds into the subnormal range."""
    n = t.shape[0]
    big_k = -(2**30)
    for j in range(n):
        if j != m and t[j] > _FAR:
            big_k = max(big_k, math.floor(t[j] * INV_LN2 + 0.5))
    if big_k == -(2**30):  # every other term is below 2**-2164: v_m rounds to a signed zero
        return math.copysign(0.0, _underflowed_sign(row, np.zeros(n), g, m, m, tau))
    acc = 0.0
    acc_lo = 0.0
    for j in range(n):
        if j != m and t[j] > _FAR:
            mant, mant_lo, k = exp_dd_scaled(t[j], t_lo[j])
            d, d_lo = two_sum(g[m] * scale, -g[j] * scale)
            p, p_lo = two_prod(mant, d)
            p_lo += mant * d_lo + mant_lo * d
            p, p_lo = math.ldexp(p, k - big_k), math.ldexp(p_lo, k - big_k)
            acc, err = two_sum(acc, p)
            acc_lo += err + p_lo
    w = (acc + acc_lo) / tau
    if w == 0.0:
        w = math.copysign(0.0, _underflowed_sign(row, np.zeros(n), g, m, m, tau))
    return math.ldexp(w, big_k - int(math.log2(scale)))


@_jit
def _underflowed_sign(row, e, g, m, i, tau):
    """Sign of B_i = sum_j e_j·(g_i - g_j) when every term that did not underflow cancels:
    the underflowed terms, weighted relative to the largest of them, exp((x_j - x_k)/tau)
    (entries a hair apart weigh the same; far ones vanish)."""
    k = -1
    for j in range(row.shape[0]):
        if j != m and e[j] == 0.0 and row[j] > -_INF and (k < 0 or row[j] > row[k]):
            k = j
    if k < 0:
        return 0.0
    acc = 0.0
    for j in range(row.shape[0]):
        if j != m and e[j] == 0.0 and row[j] > -_INF:
            d, d_lo = two_sum(row[j], -row[k])
            w = math.exp((d + d_lo) / tau) if d > -_INF else 0.0
            if w > 0.0:  # weights <= 1, applied before subtracting: g_i - g_j may overflow
                acc += w * g[i] - w * g[j]
    return 0.0 if acc == 0.0 else math.copysign(1.0, acc)


@_jit
def _vjp_at_limit(row, g, scale, n_inf, tau, out):
    """softmax VJP at the limit distribution of a row with +inf entries."""
    dot = 0.0
    for j in range(row.shape[0]):
        dot += _limit_mass(row, n_inf, j) * g[j] * scale
    for i in range(row.shape[0]):
        s = _limit_mass(row, n_inf, i)
        out[i] = s * (g[i] * scale - dot) / tau / scale if s > 0.0 else 0.0


@_jit
def _over_e_tau(d, d_lo, rest, rest_lo, tau, k):
    """RN((d + d_lo)/((1 + R)·tau)·2**k): the divisions as pairs, one rounding (rounded one
    by one they cost 2 ULP)."""
    eh, el = two_sum(1.0, rest)
    qh, ql = div_dd(d, d_lo, eh, el + rest_lo)
    qh, ql = div_dd(qh, ql, tau, 0.0)
    return finish(qh, ql, k)


@_jit
def log_softmax_vjp_rows(x, g, tau, out):
    # v_i = (g_i - s_i·G)/tau with G = sum g; for the maximum, g_m - G/E = (g_m·R - G')/E
    # with G' = G - g_m, so that s_m ~ 1 does not cancel against g_m in rounded arithmetic.
    n = x.shape[1]
    t = np.empty(n)
    t_lo = np.empty(n)
    e = np.empty(n)
    e_lo = np.empty(n)
    for r in range(x.shape[0]):
        row = x[r]
        kind, rest, rest_lo, m = _row_state(row, tau, t, t_lo, e, e_lo)
        if kind == 1:
            out[r, :] = math.nan
            continue
        if kind == 3:
            out[r, :] = 0.0
            continue
        scale = _gradient_scale(g[r])
        other = 0.0  # G' = sum over j != m, scaled
        other_lo = 0.0
        other_u = 0.0  # and unscaled, for when the scaling would flush it
        other_u_lo = 0.0
        for j in range(n):
            if j != m:
                other, err = two_sum(other, g[r, j] * scale)
                other_lo += err
                other_u, err = two_sum(other_u, g[r, j])
                other_u_lo += err
        gm = g[r, m] * scale
        total, total_lo = two_sum(gm, other)
        total_lo += other_lo
        for i in range(n):
            if kind == 2:
                s = _limit_mass(row, rest, i)
                out[r, i] = (g[r, i] - s * ((total + total_lo) / scale)) / tau
            elif i == m:
                p, p_lo = two_prod(gm, rest)
                p_lo += gm * rest_lo
                if scale < 1.0 and abs(other_u) < 2.0**1000:
                    # scaled down for a huge g_m, but G' itself is moderate or tiny: scaling it
                    # would lose it, so meet it unscaled (g_m·R grows exactly when unscaled)
                    d, d_lo = two_sum(p / scale, -other_u)
                    out[r, i] = _over_e_tau(d, d_lo + (p_lo / scale - other_u_lo), rest,
                                            rest_lo, tau, 0)
                else:
                    d, d_lo = two_sum(p, -other)
                    out[r, i] = _over_e_tau(d, d_lo + (p_lo - other_lo), rest, rest_lo, tau,
                                            -int(math.log2(scale)))
            else:
                s, s_lo = _quotient(e[i], e_lo[i], rest, rest_lo)
                p, p_lo = two_prod(s, total)
                p_lo += s * total_lo + s_lo * total
                if scale >= 1.0:  # scaled up (tiny gradients): exact; unscale last
                    d, d_lo = two_sum(g[r, i] * scale, -p)
                    qh, ql = div_dd(d, d_lo - p_lo, tau, 0.0)
                    out[r, i] = finish(qh, ql, -int(math.log2(scale)))
                else:  # scaled down: unscale s_i·G (exact, it grows) so tiny g_i keep their bits
                    d, d_lo = two_sum(g[r, i], -(p / scale))
                    qh, ql = div_dd(d, d_lo - p_lo / scale, tau, 0.0)
                    out[r, i] = finish(qh, ql, 0)

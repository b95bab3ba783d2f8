"""References for softmax and log_softmax of x/tau along a row, and their VJPs.

Exact in mpmath at the caller's working precision, with the conventions of the kernels for
the undefined cases (see ``kernels/_rowwise.py``): a NaN row is NaN; +inf entries share the
mass equally; an all -inf row has softmax 0, log_softmax -inf and zero gradients; an entry
at -inf gets softmax gradient +0.

Every exp(t) is computed, however far below the float range: its sign and relative size
decide the sign of a gradient that underflows.
"""

import math
from dataclasses import dataclass

import mpmath
from mpmath import mpf

__all__ = ["ROWWISE", "RowReference"]



def _classify(x):
    if any(math.isnan(v) for v in x):
        return "nan"
    if any(v == math.inf for v in x):
        return "inf"
    if all(v == -math.inf for v in x):
        return "masked"
    return "finite"


def _shifted(x, tau):
    """t_i = (x_i - max)/tau, exact to the working precision *in absolute terms*: exp(t)
    needs t to ~2**-prec absolutely, so x_i - max is formed exactly and the division gets
    log2|t| extra bits (at t = -2e30 + 6 a relative rounding would lose all of the 6)."""
    m = max(v for v in x if v > -math.inf)
    out = []
    for v in x:
        if v == -math.inf:
            out.append(None)
            continue
        d = mpmath.fsub(v, m, exact=True)
        extra = max(0, int(mpmath.mag(d))) if d else 0
        out.append(mpmath.fdiv(d, tau, prec=mpmath.mp.prec + extra))
    return out


def _probabilities(x, tau):
    kind = _classify(x)
    if kind == "nan":
        return kind, [math.nan] * len(x)
    if kind == "inf":
        k = sum(v == math.inf for v in x)
        return kind, [mpf(1) / k if v == math.inf else 0.0 for v in x]
    if kind == "masked":
        return kind, [0.0] * len(x)
    t = _shifted(x, tau)
    e = [mpf(0) if ti is None else mpmath.exp(ti) for ti in t]
    total = mpmath.fsum(e)
    return kind, [0.0 if ti is None else ei / total for ti, ei in zip(t, e, strict=True)]


def softmax(x, tau):
    return _probabilities(x, tau)[1]


def log_softmax(x, tau):
    kind = _classify(x)
    if kind == "nan":
        return [math.nan] * len(x)
    if kind == "inf":
        k = sum(v == math.inf for v in x)
        return [-mpmath.log(k) if v == math.inf else -math.inf for v in x]
    if kind == "masked":
        return [-math.inf] * len(x)
    t = _shifted(x, tau)
    # log(sum e**t) = log1p(sum over all but one maximum): the sum is 1 + tiny when one entry
    # dominates, and log(1 + tiny) at finite precision would return 0, not -tiny
    imax = t.index(0)
    rest = mpmath.fsum(mpmath.exp(ti) for j, ti in enumerate(t) if j != imax and ti is not None)
    lse = mpmath.log1p(rest)
    return [-math.inf if ti is None else ti - lse for ti in t]


def _split(x, tau):
    """(t, e, m, R): shifted entries, exp(t), index of the (first) maximum, and the sum R of
    e over the other entries (so the normaliser is E = 1 + R)."""
    t = _shifted(x, tau)
    m = t.index(0)
    e = [mpf(0) if ti is None else mpmath.exp(ti) for ti in t]
    rest = mpmath.fsum(ej for j, ej in enumerate(e) if j != m)
    return t, e, m, rest


def softmax_vjp(x, g, tau):
    # v_i = e_i·B_i/(E²·tau), B_i = (g_i - g_m) + (g_i·R - sum_{j != m} e_j g_j): the same
    # cancellation-free form as the kernel, because at any finite precision g_i - sum g·s
    # loses everything when one entry dominates (R = e**-260 at tau = 1e-3).
    kind = _classify(x)
    if kind == "nan":
        return [math.nan] * len(x)
    if kind == "masked":
        return [0.0] * len(x)
    if kind == "inf":
        s = _probabilities(x, tau)[1]
        dot = mpmath.fsum(mpf(gj) * sj for gj, sj in zip(g, s, strict=True))
        return [0.0 if si == 0 else si * (gi - dot) / tau for gi, si in zip(g, s, strict=True)]
    t, e, m, rest = _split(x, tau)
    a = mpmath.fsum(ej * gj for j, (ej, gj) in enumerate(zip(e, g, strict=True)) if j != m)
    big_e = 1 + rest
    out = []
    for ti, ei, gi in zip(t, e, g, strict=True):
        if ti is None:
            out.append(0.0)  # an exactly zero probability passes no gradient: +0
            continue
        b = (mpf(gi) - g[m]) + (gi * rest - a)
        out.append(ei * b / (big_e**2 * tau))
    return out


def log_softmax_vjp(x, g, tau):
    # v_i = (g_i - s_i·G)/tau; for the maximum (g_m·R - G')/(E·tau), G' = G - g_m
    kind = _classify(x)
    if kind == "nan":
        return [math.nan] * len(x)
    if kind == "masked":
        return [0.0] * len(x)
    total = mpmath.fsum(mpf(gj) for gj in g)
    if kind == "inf":
        s = _probabilities(x, tau)[1]
        return [(gi - si * total) / tau for gi, si in zip(g, s, strict=True)]
    _, e, m, rest = _split(x, tau)
    big_e = 1 + rest
    other = mpmath.fsum(mpf(gj) for j, gj in enumerate(g) if j != m)
    return [(g[m] * rest - other) / (big_e * tau) if i == m else (gi - ei / big_e * total) / tau
            for i, (ei, gi) in enumerate(zip(e, g, strict=True))]


@dataclass(frozen=True)
class RowReference:
    """fn(row, [g,] tau) -> list of exact values (mpf, or floats for exact specials)."""

    name: str
    fn: object
    takes_gradient: bool

    def __call__(self, x, g=None, tau=1.0):
        return self.fn(x, g, tau) if self.takes_gradient else self.fn(x, tau)


ROWWISE = {
    "softmax": RowReference("softmax", softmax, False),
    "softmax_vjp": RowReference("softmax_vjp", softmax_vjp, True),
    "log_softmax": RowReference("log_softmax", log_softmax, False),
    "log_softmax_vjp": RowReference("log_softmax_vjp", log_softmax_vjp, True),
}

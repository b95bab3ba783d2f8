"""Float32-arithmetic SIMD kernels of gelu_tanh and its derivative, for float32 input only.

gelu_tanh(x) = x·sigmoid(v), v = c1·(x + k·x³), c1 = 2·sqrt(2/pi), k = 0.044715 (the tanh
form as 1 + tanh(v/2) = 2·sigmoid(v), with no 1 + tanh cancellation).  Below 0 the result's
condition number in v is about |v|, up to 106 where it turns subnormal, so v is carried as a
float32 pair: x² exact, c1 and c1·k as pairs, v = vh + vl to ~2**-44 relative.  Then
``_simd32``'s error-free exp takes -|vh| with vl in its low part (``_exp_dd``), and 1/(1 + e)
is vdivps corrected by its fused residual, as in ``_simd32``'s sigmoid:

- x >= 0: x·(y0 + rl); x < 0: x·e·(y0 + rl) with x·eh exact and the 2**n factor last, so a
  subnormal result rounds once;
- the derivative sigmoid(v)·(1 + q), q = x·v'·sigmoid(-v), v' = c1·(1 + 3k·x²): q as a pair and
  1 + q by a two-sum (below 0 they cancel where the derivative crosses zero); near its root
  x0 = -0.75253 the fit t·G(t) of ``reference/polyfit.py`` (``fit_d_gelu_tanh_root_float32``).

Below SUB_A (|v| > 40) e is left out of 1 + e (it is below 2**-57 there, and e·2**-OFFSET
can be subnormal), so no operation but the result's last product sees a subnormal operand:
Intel CPUs microcode subnormal arithmetic, several times slower per vector.  Beyond the clamps
the results are exact: x above 8 (1 - sigmoid(v) < 2**-70), -0 below -11 (gelu_tanh rounds to
-0 from -10.77 on).  The audit measures their errors against mpmath like every kernel's.
"""

import mpmath
import numba
import numpy as np

from ._simd import PARALLEL_MIN, _two_sum
from ._simd32 import NZERO, ONE, SUB_A, ZERO, F, _exp_dd, _fma, _horner, _inline, _loops

__all__ = ["D_GELU_TANH_G", "D_GELU_TANH_ROOT", "KERNELS", "run"]

# reference/polyfit.py (fit_d_gelu_tanh_root_float32): the root as x0h + x0l, G of degree 4
# with g0 as a pair (g0h, g0l last), 3.8e-9 on |t| <= 1/16
D_GELU_TANH_ROOT = (float.fromhex("-0x1.8142a0p-1"), float.fromhex("0x1.85a06cp-27"))
D_GELU_TANH_G = (
    float.fromhex("-0x1.0fded8p-6"), float.fromhex("-0x1.d252bap-4"),
    float.fromhex("-0x1.029630p-6"), float.fromhex("0x1.8cd19cp-2"),
    float.fromhex("0x1.b8bacep-2"), float.fromhex("-0x1.a6d28ep-27"),
)


def _pair(value) -> tuple:
    """An mpmath value as two float32, hi + lo, to ~2**-48 relative."""
    hi = np.float32(float(value))
    return hi, np.float32(float(value - mpmath.mpf(float(hi))))


with mpmath.workprec(200):
    _C1 = 2 * mpmath.sqrt(2 / mpmath.pi)
    _K = mpmath.mpf("0.044715")
    C1H, C1L = _pair(_C1)
    C3H, C3L = _pair(_C1 * _K)  # v = x·(c1 + c3·x²)
    D3H, D3L = _pair(3 * _C1 * _K)  # x·v' = x·(c1 + 3·c3·x²)
ROOT_H, ROOT_L = (F(c) for c in D_GELU_TANH_ROOT)
G_HI = tuple(F(c) for c in D_GELU_TANH_G[:-2])
G0H, G0L = (F(c) for c in D_GELU_TANH_G[-2:])
ROOT_R = F(1 / 16)
V_MIN = F(-125.0)  # exp's clamp: e**-125·|x·v'| < 2**-170 rounds to 0; 2**(n + OFFSET) stays normal
X_HI = F(8.0)
X_LO = F(-11.0)  # both round to -0 below: gelu_tanh from -10.771 on, its derivative from -10.895


@_inline
def _cubic(x, ch, cl):
    """x·(c1 + c·x²) as a pair, c = ch + cl."""
    ph = x * x
    pl = _fma(x, x, -ph)
    th = ch * ph
    tl = _fma(ch, ph, -th) + _fma(ch, pl, cl * ph)
    wh, wl = _two_sum(C1H, th)
    wl = wl + (tl + C1L)
    vh = x * wh
    return vh, _fma(x, wh, -vh) + x * wl


@_inline
def _logistic(x):
    """(xc, y0, rl, eh, el, s2): x, or 0 outside [X_LO, X_HI], e = exp(-|v|) = (eh + el)·s2,
    1/(1 + e) = y0 + rl."""
    xc = ZERO if (x > X_HI or x < X_LO) else x  # constant results: no underflowing lane; NaN passes
    vh, vl = _cubic(xc, C3H, C3L)
    a = -abs(vh)
    al = -vl if xc >= ZERO else vl
    al = ZERO if a < V_MIN else al
    eh, el, s2 = _exp_dd(V_MIN if a < V_MIN else a, al)
    ss = ZERO if a < SUB_A else s2  # e < 2**-57: 1/(1 + e) = 1, and no subnormal operand
    e = eh * ss
    dh = ONE + e
    dl = _fma(el, ss, e - (dh - ONE))
    y0 = ONE / dh
    rl = y0 * _fma(-y0, dl, _fma(-y0, dh, ONE))
    return xc, y0, rl, eh, el, s2


@_inline
def _gelu_tanh(x):
    xc, y0, rl, eh, el, s2 = _logistic(x)
    pos = _fma(xc, y0, xc * rl)
    xe = xc * eh
    xl = _fma(xc, eh, -xe)  # exact
    neg = _fma(xe, y0, _fma(xe, rl, (xc * el + xl) * y0)) * s2
    y = pos if x >= ZERO else neg  # ±0: x·1/2 keeps the sign
    y = x if x > X_HI else y
    y = NZERO if x < X_LO else y
    return x if x != x else y


@_inline
def _d_gelu_tanh(x):
    xc, y0, rl, eh, el, s2 = _logistic(x)
    dvh, dvl = _cubic(xc, D3H, D3L)
    gh = eh * y0  # e·(y0 + rl) = gh + gl
    gl = _fma(eh, y0, -gh) + _fma(eh, rl, el * y0)
    # x < 0: sigmoid(-v) = y0 + rl, sigmoid(v) = (gh + gl)·s2; 1 + q cancels at the root
    qh = dvh * y0
    ql = _fma(dvh, y0, -qh) + _fma(dvh, rl, dvl * y0)
    sh, sl = _two_sum(ONE, qh)
    sl = sl + ql
    neg = _fma(gh, sh, _fma(gh, sl, gl * sh)) * s2
    # x >= 0: sigmoid(v) = y0 + rl, sigmoid(-v) = gh + gl, q >= 0; where exp's pair is scaled
    # (v > 40) q < 2**-50 is left out: gh·s2 would underflow in the lanes below 0
    keep = ONE if s2 == ONE else ZERO
    ph2 = gh * keep
    pl2 = gl * keep
    ph = dvh * ph2
    pl = _fma(dvh, ph2, -ph) + _fma(dvh, pl2, dvl * ph2)
    uh = ONE + ph
    ul = ((ONE - uh) + ph) + pl
    pos = _fma(y0, uh, _fma(y0, ul, rl * uh))
    y = pos if x >= ZERO else neg
    # near the root: t·G(t), t = (x - x0h) - x0l with x - x0h exact there
    t1 = x - ROOT_H
    t = t1 - ROOT_L
    patch = _fma(t1, G0H, _fma(t1, t * _horner(G_HI, t), _fma(t1, G0L, -ROOT_L * G0H)))
    y = patch if abs(t) < ROOT_R else y
    y = ONE if x > X_HI else y
    y = NZERO if x < X_LO else y
    return x if x != x else y


KERNELS = {name: _loops(name, scalar)
           for name, scalar in (("gelu_tanh", _gelu_tanh), ("d_gelu_tanh", _d_gelu_tanh))}


def run(name: str, inputs: tuple, out: np.ndarray, params: dict) -> None:
    """``out[:] = name(x)`` for 1-D contiguous float32 ``x`` (``inputs`` = ``(x,)``) and
    ``out`` (no parameters)."""
    (x,) = inputs
    KERNELS[name][x.size >= PARALLEL_MIN and numba.get_num_threads() > 1](x, out)

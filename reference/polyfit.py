"""Polynomial coefficients of the SIMD kernels' exp, derived with mpmath.

The SIMD kernels (``kernels/_simd.py``) cannot call libm's exp: a call keeps the loop scalar.
They reduce exp(a) = 2**n · exp(r), n = round(a/ln 2), |r| <= ln(2)/2 (Cody and Waite), and
evaluate exp(r) = 1 + r + r²·q(r) with q a polynomial fitted here to (exp(r) - 1 - r)/r²:
the two leading terms stay exact, so the fit's relative error is scaled down by r² <= 0.12.

``fit(degree)`` returns q's float64 coefficients (highest degree first) from
``mpmath.chebyfit`` (a Chebyshev interpolant: within a small factor of the minimax error)
and the measured bound of the whole approximation's relative error, with the coefficients as
rounded to float64, on 20,001 points and the Chebyshev nodes of the interval.
``python -m reference.polyfit`` prints the literals that ``kernels/_simd.py`` holds;
``tests/test_simd.py`` checks that they are what this derives.

Degrees: q of degree 6 (exp of degree 8) for float32 results: a bound of ~1e-12, 2**-16 of a
float32 ULP, so the one rounding to float32 stays the only visible one; q of degree 10 (exp
of degree 12) for float64 results: a bound below 2**-56, an eighth of a float64 ULP.

log1p(e) for e in (0, 1] (softplus and log-sigmoid need no other log): with z = e/(2 + e) in
(0, 1/3] and w = z², log1p(e) = 2·atanh(z) = 2z + 2z·w·B(w), B(w) = (atanh(√w)/√w - 1)/w
fitted on [0, 1/9] by ``fit_log1p(degree)``; B's error is scaled down by w <= 1/9.  Degree 6
for float32 results, 10 for float64, with the same bounds as exp's.

erfc(z), z >= 0 (gelu and gelu' in the erf form): erfc(z) = exp(-z²)·erfcx(z), and erfcx, the
scaled complement, is smooth and bounded on [0, ∞) but decays like 1/(z·sqrt(pi)), so no one
polynomial in z fits it with a relative error.  With u = (z - c)/(z + c), which maps [0, ∞)
onto [-1, 1), K(u) = erfcx(z)·(z + c) is analytic and bounded away from 0 (from c at z = 0 to
1/sqrt(pi) at infinity); ``fit_erfcx(degree, zmax)`` fits K on the u of [0, zmax] (up to
where gelu underflows: z = 39/sqrt(2) for float64, 15.5/sqrt(2) for float32) and the kernel
takes erfcx(z) = K(u)/(z + c).  c = 4 gave the fastest convergence of c in {1, 2, 3, 4, 6},
with coefficients no larger than 1.1 (so Horner's rule in u, |u| <= 1, does not cancel):
degree 14 on z <= 11 for float32 results (1.7e-12), 22 on z <= 27.6 for float64 (7.3e-17, 0.66
of a float64 ULP: the fit itself is within 5.7e-18, the rest is its coefficients' rounding to
float64, which no higher degree removes).

The float32-arithmetic kernels (``kernels/_simd32.py``) compute in float32 lanes and take
coefficients rounded to float32; the bounds below are of the polynomials with those rounded
coefficients:
- ``fit_exp_float32``: q as above on |r| <= 1.01·ln(2)/2 (n comes from a/ln 2 rounded in
  float32, which can pick the neighbouring n at a tie: the 1 % margin covers its r), degree 4:
  1.1e-8 relative (2**-26.5, a fraction of a float32 ULP: 2**-24 to 2**-23 relative);
- ``fit_tanh_float32``: tanh(x) = x + x·w·P(w), w = x², on |x| <= 0.55 (beyond, the kernels use
  exp), degree 5 in w: 3.9e-9;
- ``fit_d_silu_root_float32``: silu' near its root x0 = -1.27846 (where its two terms cancel)
  as t·G(t), t = x - x0 with x0 as two float32 (x0h + x0l), on |t| <= 1/16, degree 5: 9.7e-9;
- ``fit_erfcx_float32``: for gelu, Phi(-a) = exp(-a²/2)·K(u)/(a + 2) with u = 4/(a + 2) - 1 =
  (2 - a)/(2 + a) in [-0.761, 1] for a = |x| <= 14.75 (where gelu reaches -0), K of degree 12
  with its two lowest coefficients as float32 pairs: 2.9e-9 (exp's q of degree 5 there:
  ``fit_exp_float32(5)``, 8.1e-10);
- ``fit_d_gelu_tanh_root_float32``: gelu_tanh' near its root x0 = -0.75253 likewise, |t| <= 1/16,
  G of degree 4 with g0 as a pair: 3.8e-9 (kernels/_simd32_gelu_tanh.py);
- ``fit_d_gelu_root_float32``: gelu' near its root x0 = -0.75179 as t·G(t), |t| <= 1/32, G of
  degree 3 with g0 as a pair: 4.3e-9;
- the fast float32 variant reuses exp's q (degree 4, and 5 for tanh) with powers of 2 and signs
  folded in exactly, and fits silu''s root patch on |t| <= 0.1875 at degree 4: 2.2e-8.
"""

import mpmath

__all__ = ["ERFCX_C", "ERFCX_FITS", "EXP_DEGREES", "FLOAT32_FITS", "LOG1P_DEGREES", "fit",
           "fit_d_gelu_tanh_root_float32", "fit_d_silu_root_float32", "fit_erfcx",
           "fit_exp_float32", "fit_log1p", "fit_tanh_float32", "literals"]

EXP_DEGREES = {"float32": 6, "float64": 10}
LOG1P_DEGREES = {"float32": 6, "float64": 10}
ERFCX_C = 4
ERFCX_FITS = {"float32": (14, 11), "float64": (22, 27.6)}  # dtype: (degree, zmax)
# the float32-arithmetic kernels' fits: exp's q degree, tanh's P degree and range, silu' patch
FLOAT32_FITS = {"exp": 4, "tanh": (5, 0.55), "d_silu_root": (5, 1 / 16),
                "gelu_exp": 5, "erfcx": (12, 14.75), "d_gelu_root": (3, 1 / 32),
                "fast_d_silu_root": (4, 0.1875),  # the fast variant's wider, lower-degree patch
                "d_gelu_tanh_root": (4, 1 / 16)}
_PREC = 200
_GRID = 20001


def _chebyfit(f, interval, n: int) -> list:
    """mpmath.chebyfit's coefficients, highest degree first, on mpmath 1.3 (which has only
    that order) and 1.4+ (where it is deprecated in favour of ``asc=True``)."""
    try:
        coeffs, _ = mpmath.chebyfit(f, interval, n, error=True, asc=True)
    except TypeError:
        coeffs, _ = mpmath.chebyfit(f, interval, n, error=True)
        return list(coeffs)
    return list(reversed(coeffs))


def _horner_mp(coeffs, x):
    p = mpmath.mpf(0)
    for c in coeffs:
        p = p * x + c
    return p


def _q(r):
    return (mpmath.exp(r) - 1 - r) / r**2 if r else mpmath.mpf(1) / 2


def fit(degree: int) -> tuple[list[float], float]:
    """(q's float64 coefficients, highest first; max |approximation/exp - 1| on the interval)."""
    with mpmath.workprec(_PREC):
        half = mpmath.log(2) / 2
        coeffs = _chebyfit(_q, [-half, half], degree + 1)
        rounded = [float(c) for c in coeffs]
        nodes = [half * mpmath.cos(mpmath.pi * (k + mpmath.mpf(1) / 2) / 64) for k in range(64)]
        grid = [-half + 2 * half * k / (_GRID - 1) for k in range(_GRID)] + nodes
        worst = max(abs((1 + r + r * r * _horner_mp(rounded, r)) / mpmath.exp(r) - 1)
                    for r in grid)
    return rounded, float(worst)


def _b(w):
    return (mpmath.atanh(mpmath.sqrt(w)) / mpmath.sqrt(w) - 1) / w if w else mpmath.mpf(1) / 3


def fit_log1p(degree: int) -> tuple[list[float], float]:
    """(B's float64 coefficients, highest first; max |approximation/log1p(e) - 1| for e in
    (0, 1], as 2z + 2z·w·B(w) with z = e/(2 + e) exact)."""
    with mpmath.workprec(_PREC):
        top = mpmath.mpf(1) / 9
        coeffs = _chebyfit(_b, [0, top], degree + 1)
        rounded = [float(c) for c in coeffs]
        grid = [top * k / (_GRID - 1) for k in range(1, _GRID)]
        grid += [top * (1 + mpmath.cos(mpmath.pi * (k + mpmath.mpf(1) / 2) / 64)) / 2
                 for k in range(64)]
        worst = mpmath.mpf(0)
        for w in grid:
            z = mpmath.sqrt(w)
            b = _horner_mp(rounded, w)
            worst = max(worst, abs((2 * z + 2 * z * w * b) / (2 * mpmath.atanh(z)) - 1))
    return rounded, float(worst)


def _k(u, c):
    z = c * (1 + u) / (1 - u)
    return mpmath.erfc(z) * mpmath.exp(z * z) * (z + c)


def fit_erfcx(degree: int, zmax: float, c: int = ERFCX_C) -> tuple[list[float], float]:
    """(K's float64 coefficients, highest first; max |K(u)/(z + c) / erfcx(z) - 1| for z in
    [0, zmax], u = (z - c)/(z + c) exact)."""
    with mpmath.workprec(_PREC):
        c = mpmath.mpf(c)
        top = (mpmath.mpf(zmax) - c) / (mpmath.mpf(zmax) + c)
        coeffs = _chebyfit(lambda u: _k(u, c), [-1, top], degree + 1)
        rounded = [float(v) for v in coeffs]
        grid = [-1 + (top + 1) * k / (_GRID // 4 - 1) for k in range(_GRID // 4)]
        grid += [(top - 1) / 2 + (top + 1) / 2 * mpmath.cos(mpmath.pi * (k + mpmath.mpf(1) / 2) / 64)
                 for k in range(64)]
        worst = max(abs(_horner_mp(rounded, u) / _k(u, c) - 1) for u in grid)
    return rounded, float(worst)


def _round24(v) -> float:
    """v rounded once to 24 significant bits, as a float (no double rounding through float64)."""
    with mpmath.workprec(24):
        return float(+mpmath.mpf(v))


def _pair24(v) -> tuple[float, float]:
    hi = _round24(v)
    return hi, _round24(v - hi)


def _dense(lo, hi, n: int = 4001) -> list:
    pts = [lo + (hi - lo) * mpmath.mpf(k) / (n - 1) for k in range(n)]
    return pts + [(lo + hi) / 2 + (hi - lo) / 2 * mpmath.cos(mpmath.pi * (k + mpmath.mpf(1) / 2) / 200)
                  for k in range(200)]


def fit_exp_float32(degree: int = FLOAT32_FITS["exp"]) -> tuple[list[float], float]:
    """(q's coefficients rounded to float32, highest first; max |(1 + r + r²q(r))/exp(r) - 1|
    on |r| <= 1.01·ln(2)/2)."""
    with mpmath.workprec(_PREC):
        top = mpmath.log(2) / 2 * mpmath.mpf("1.01")
        rounded = [_round24(c) for c in _chebyfit(_q, [-top, top], degree + 1)]
        worst = max(abs((1 + r + r * r * _horner_mp(rounded, r)) / mpmath.exp(r) - 1)
                    for r in _dense(-top, top))
    return rounded, float(worst)


def _p_tanh(w):
    if not w:
        return -mpmath.mpf(1) / 3
    s = mpmath.sqrt(w)
    return (mpmath.tanh(s) - s) / (w * s)


def fit_tanh_float32(degree: int = FLOAT32_FITS["tanh"][0],
                     xmax: float = FLOAT32_FITS["tanh"][1]) -> tuple[list[float], float]:
    """(P's coefficients rounded to float32, highest first; max |(x + x·w·P(w))/tanh(x) - 1|
    on (0, xmax])."""
    with mpmath.workprec(_PREC):
        top = mpmath.mpf(xmax)
        rounded = [_round24(c) for c in _chebyfit(_p_tanh, [0, top**2], degree + 1)]
        worst = max(abs((x + x**3 * _horner_mp(rounded, x * x)) / mpmath.tanh(x) - 1)
                    for x in _dense(0, top) if x > 0)
    return rounded, float(worst)


def _d_silu(x):
    s = 1 / (1 + mpmath.exp(-x))
    return s * (1 + x * (1 - s))


def _root_patch_float32(f, root_of, guess: str, degree: int, radius: float, g0_pair: bool):
    """((x0h, x0l), G's coefficients rounded to float32, highest first, max |t·G(t)/f(x0 + t) -
    1| on 0 < |t| <= radius) for f = t·G(t) near its root x0 (found as a zero of ``root_of``
    from ``guess``), t = (x - x0h) - x0l with x0 as a float32 pair; ``g0_pair``: G's constant
    term as a float32 pair too (g0h, g0l last)."""
    with mpmath.workprec(_PREC):
        x0h, x0l = _pair24(mpmath.findroot(root_of, mpmath.mpf(guess)))
        root = mpmath.mpf(x0h) + x0l  # the root as the kernel's t sees it

        def g(t):
            return mpmath.diff(f, root) if abs(t) < mpmath.mpf(10) ** -40 else f(root + t) / t
        top = mpmath.mpf(radius)
        coeffs = _chebyfit(g, [-top, top], degree + 1)
        if g0_pair:
            g0h, g0l = _pair24(coeffs[-1])
            rounded = [_round24(c) for c in coeffs[:-1]]
            approx, coeffs = [*rounded, mpmath.mpf(g0h) + g0l], [*rounded, g0h, g0l]
        else:
            approx = coeffs = [_round24(c) for c in coeffs]
        worst = max(abs(t * _horner_mp(approx, t) / f(root + t) - 1)
                    for t in _dense(-top, top) if t != 0)
    return (x0h, x0l), coeffs, float(worst)


def fit_d_silu_root_float32(degree: int = FLOAT32_FITS["d_silu_root"][0],
                            radius: float = FLOAT32_FITS["d_silu_root"][1]):
    """``_root_patch_float32`` of silu' (its root is where 1 + x/(1 + e**x) = 0)."""
    return _root_patch_float32(_d_silu, lambda x: 1 + x / (1 + mpmath.exp(x)), "-1.2785", degree,
                               radius, g0_pair=False)


def _erfcx_a(a):
    return mpmath.erfc(a / mpmath.sqrt(2)) * mpmath.exp(a * a / 2)


def fit_erfcx_float32(degree: int = FLOAT32_FITS["erfcx"][0],
                      amax: float = FLOAT32_FITS["erfcx"][1]) -> tuple[list[float], float]:
    """(K's coefficients, highest first, the last two as float32 pairs (k1h, k1l, k0h, k0l);
    max |K~(u)/K(u) - 1|) for Phi(-a) = exp(-a²/2)·K(u)/(a + 2), u = 4/(a + 2) - 1, a in
    [0, amax]."""
    with mpmath.workprec(_PREC):
        lo, hi = 4 / (mpmath.mpf(amax) + 2) - 1, mpmath.mpf(1)

        def k(u):
            a = 4 / (u + 1) - 2
            return _erfcx_a(a) * (a + 2) / 2
        coeffs = _chebyfit(k, [lo, hi], degree + 1)
        k1h, k1l = _pair24(coeffs[-2])
        k0h, k0l = _pair24(coeffs[-1])
        rounded = [_round24(c) for c in coeffs[:-2]]
        approx = [*rounded, mpmath.mpf(k1h) + k1l, mpmath.mpf(k0h) + k0l]
        worst = max(abs(_horner_mp(approx, u) / k(u) - 1) for u in _dense(lo, hi))
    return [*rounded, k1h, k1l, k0h, k0l], float(worst)


def _d_gelu(x):
    return mpmath.ncdf(x) + x * mpmath.npdf(x)


def fit_d_gelu_root_float32(degree: int = FLOAT32_FITS["d_gelu_root"][0],
                            radius: float = FLOAT32_FITS["d_gelu_root"][1]):
    """``_root_patch_float32`` of gelu', g0 as a float32 pair."""
    return _root_patch_float32(_d_gelu, _d_gelu, "-0.7518", degree, radius, g0_pair=True)


GELU_TANH_K = "0.044715"  # the cubic's coefficient, as a decimal: the reference's exact value


def _d_gelu_tanh(x):
    c1 = 2 * mpmath.sqrt(2 / mpmath.pi)
    k = mpmath.mpf(GELU_TANH_K)
    s = 1 / (1 + mpmath.exp(-c1 * (x + k * x**3)))
    return s * (1 + x * c1 * (1 + 3 * k * x * x) * (1 - s))


def fit_d_gelu_tanh_root_float32(degree: int = FLOAT32_FITS["d_gelu_tanh_root"][0],
                                 radius: float = FLOAT32_FITS["d_gelu_tanh_root"][1]):
    """``_root_patch_float32`` of gelu_tanh' (root near -0.7525), g0 as a float32 pair."""
    return _root_patch_float32(_d_gelu_tanh, _d_gelu_tanh, "-0.7525", degree, radius,
                               g0_pair=True)


def _literal(name: str, coeffs: list[float]) -> str:
    return f"{name} = (" + ", ".join(f'float.fromhex("{c.hex()}")' for c in coeffs) + ")"


def literals() -> str:
    lines = []
    for dtype, degree in EXP_DEGREES.items():
        coeffs, bound = fit(degree)
        lines.append(f"# {dtype}: q of degree {degree}, max relative error of exp {bound:.3g}")
        lines.append(_literal(f"EXP_Q_{dtype.upper()}", coeffs))
    for dtype, degree in LOG1P_DEGREES.items():
        coeffs, bound = fit_log1p(degree)
        lines.append(f"# {dtype}: B of degree {degree}, max relative error of log1p {bound:.3g}")
        lines.append(_literal(f"LOG1P_B_{dtype.upper()}", coeffs))
    for dtype, (degree, zmax) in ERFCX_FITS.items():
        coeffs, bound = fit_erfcx(degree, zmax)
        lines.append(f"# {dtype}: K of degree {degree} on z <= {zmax}, c = {ERFCX_C}, max relative "
                     f"error of erfcx {bound:.3g}")
        lines.append(_literal(f"ERFCX_K_{dtype.upper()}", coeffs))
    coeffs, bound = fit_exp_float32()
    lines.append(f"# float32 arithmetic: q of degree {len(coeffs) - 1}, max relative error of exp "
                 f"{bound:.3g}")
    lines.append(_literal("EXP_Q", coeffs))
    coeffs, bound = fit_tanh_float32()
    lines.append(f"# float32 arithmetic: P of degree {len(coeffs) - 1}, max relative error of tanh "
                 f"{bound:.3g}")
    lines.append(_literal("TANH_P", coeffs))
    (x0h, x0l), coeffs, bound = fit_d_silu_root_float32()
    lines.append(f"# float32 arithmetic: silu' root x0h + x0l, G of degree {len(coeffs) - 1}, max "
                 f"relative error {bound:.3g}")
    lines.append(_literal("D_SILU_ROOT", [x0h, x0l]))
    lines.append(_literal("D_SILU_G", coeffs))
    coeffs, bound = fit_exp_float32(FLOAT32_FITS["gelu_exp"])
    lines.append(f"# float32 arithmetic (gelu): q of degree 5, max relative error of exp {bound:.3g}")
    lines.append(_literal("GELU_EXP_Q", coeffs))
    coeffs, bound = fit_erfcx_float32()
    lines.append(f"# float32 arithmetic (gelu): K of degree {len(coeffs) - 3}, max relative error "
                 f"{bound:.3g}")
    lines.append(_literal("GELU_K", coeffs))
    root, coeffs, bound = fit_d_gelu_root_float32()
    lines.append(f"# float32 arithmetic: gelu' root x0h + x0l, G of degree {len(coeffs) - 2}, max "
                 f"relative error {bound:.3g}")
    lines.append(_literal("D_GELU_ROOT", root))
    lines.append(_literal("D_GELU_G", coeffs))
    _, coeffs, bound = fit_d_silu_root_float32(*FLOAT32_FITS["fast_d_silu_root"])
    lines.append(f"# float32 arithmetic, fast variant: silu' root patch of degree 4 on |t| <= 0.1875, "
                 f"max relative error {bound:.3g}")
    lines.append(_literal("FAST_D_SILU_G", coeffs))
    root, coeffs, bound = fit_d_gelu_tanh_root_float32()
    lines.append(f"# float32 arithmetic: gelu_tanh' root x0h + x0l, G of degree {len(coeffs) - 2}, "
                 f"max relative error {bound:.3g}")
    lines.append(_literal("D_GELU_TANH_ROOT", root))
    lines.append(_literal("D_GELU_TANH_G", coeffs))
    return "\n".join(lines)


if __name__ == "__main__":
    print(literals())

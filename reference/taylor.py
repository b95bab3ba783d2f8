"""Root-centred Taylor patches for derivatives that cross zero, derived with mpmath.

gelu', gelu_tanh', silu' and mish' each have one real root where two terms of size ~0.2-1
cancel; evaluated as written in float64 they lose hundreds of ULP there.  Near the root r
the kernels evaluate instead  f'(x) = t·(c1 + c2·t + ... + cN·t**(N-1)),  t = (x - r_hi) - r_lo,
where x - r_hi is exact (Sterbenz) and r = r_hi + r_lo to ~106 bits, so the result keeps its
relative accuracy however close x is to r.

``patch(name, guess, radius)`` recomputes a patch; ``kernels/_accurate.py`` holds the
printed literals and ``tests/test_kernels.py`` checks they are what this derives.  The
degree is the smallest for which the first omitted term is below 2**-60 of the result on
|t| <= radius (the series of these entire functions converge fast on these radii).
"""

import mpmath

from .elementwise import REFERENCES

__all__ = ["PATCHES", "patch"]

# derivative reference, a guess of its root, and the patch radius: wide enough that outside
# it the plain formula stays within the float64 budget (the audit shows why: at radius 0.25,
# mish' loses 9 ULP at x = -1.4457)
PATCHES = {
    "d_gelu": (-0.75, 0.4),
    "d_gelu_tanh": (-0.75, 0.45),
    "d_silu": (-1.28, 0.35),
    "d_mish": (-1.19, 0.6),
}

_PREC = 600


def patch(name: str, guess: float | None = None, radius: float | None = None, max_degree: int = 40):
    """Return (r_hi, r_lo, (c1, ..., cN)) as float64 values for reference ``name``."""
    g, rad = PATCHES[name]
    guess = g if guess is None else guess
    radius = rad if radius is None else radius
    ref = REFERENCES[name]
    with mpmath.workprec(_PREC):
        root = mpmath.findroot(lambda t: ref.fn(t), mpmath.mpf(guess))
        coeffs = mpmath.taylor(lambda t: ref.fn(t), root, max_degree + 1)
        c1 = abs(coeffs[1])
        n = next(k for k in range(2, max_degree + 1)
                 if all(abs(coeffs[j]) * radius ** (j - 1) < mpmath.mpf(2) ** -60 * c1
                        for j in range(k + 1, min(k + 4, max_degree + 2))))
        r_hi = float(root)
        r_lo = float(root - r_hi)
        return r_hi, r_lo, tuple(float(c) for c in coeffs[1 : n + 1])

"""Input domains: deterministic, reproducible sets of inputs for one activation and dtype.

- ``special``: ±0, ±inf, NaN, ±max, ±smallest normal, ±smallest subnormal, ±1.
- ``thresholds``: the activation's edges (catalog) and the dtype's exp edges, each with
  its two neighbours on either side (nextafter), so both sides of every branch are hit.
- ``core``: uniform over the activation's working range.
- ``wide``: magnitudes log-spaced over the whole finite range, subnormals to max, with
  random significands, both signs.

Random domains draw from a generator seeded by the domain's name, so a run is repeatable
and a row's worst input can be replayed.
"""

import zlib

import numpy as np

from .catalog import DTYPE_EDGES, Activation

__all__ = ["DEFAULT_POINTS", "DOMAINS", "points"]

DOMAINS = ("special", "thresholds", "core", "wide")
DEFAULT_POINTS = {"core": 2000, "wide": 2000}
NEIGHBOURS = 2  # floats taken on each side of an edge


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, key)).encode()))


def special(dtype) -> np.ndarray:
    fi = np.finfo(dtype)
    tiny_sub = np.nextafter(np.zeros((), dtype), np.ones((), dtype))
    pos = [0.0, np.inf, float(fi.max), float(fi.smallest_normal), float(tiny_sub), 1.0]
    vals = [v for p in pos for v in (p, -p)] + [np.nan]
    return np.array(vals, dtype=dtype)


def thresholds(activation: Activation, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    centres = [e.value(dtype.name) for e in (*activation.edges, *DTYPE_EDGES)]
    out = []
    for c in centres:
        if c is None:
            continue
        lo = hi = np.array(c, dtype=dtype)
        around = [lo]
        for _ in range(NEIGHBOURS):
            lo = np.nextafter(lo, dtype.type(-np.inf))
            hi = np.nextafter(hi, dtype.type(np.inf))
            around += [lo, hi]
        out += around
    return np.unique(np.array(out, dtype=dtype))


def core(activation: Activation, dtype, n: int) -> np.ndarray:
    lo, hi = activation.core
    x = _rng(activation.name, np.dtype(dtype).name, "core").uniform(lo, hi, n)
    return x.astype(dtype)


def wide(activation: Activation, dtype, n: int) -> np.ndarray:
    fi = np.finfo(dtype)
    rng = _rng(activation.name, np.dtype(dtype).name, "wide")
    lowest = int(fi.minexp) - int(fi.nmant)  # exponent of the smallest subnormal
    exponents = np.linspace(lowest, int(fi.maxexp) - 1, n)
    mantissa = rng.uniform(1.0, 2.0, n)
    mags = np.minimum(np.ldexp(mantissa, np.floor(exponents).astype(np.int32)), float(fi.max))
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return (signs * mags).astype(dtype)


def points(activation: Activation, dtype, domain: str, n: int | None = None) -> np.ndarray:
    """The inputs of ``domain`` for ``activation`` in ``dtype``."""
    if domain == "special":
        return special(dtype)
    if domain == "thresholds":
        return thresholds(activation, dtype)
    if domain in ("core", "wide"):
        n = DEFAULT_POINTS[domain] if n is None else n
        return (core if domain == "core" else wide)(activation, dtype, n)
    raise KeyError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")

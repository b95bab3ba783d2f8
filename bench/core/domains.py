"""Input domains: deterministic, reproducible sets of inputs for one activation and dtype.

- ``special``: ±0, ±inf, NaN, ±max, ±smallest normal, ±smallest subnormal, ±1.
- ``thresholds``: the activation's edges (catalog) and the dtype's exp edges, each with
  its two neighbours on either side (nextafter), so both sides of every branch are hit.
- ``core``: uniform over the activation's working range.
- ``wide``: magnitudes log-spaced over the whole finite range, subnormals to max, with
  random significands, both signs.
- ``bits``: uniformly random bit patterns (as Herbie and SLEEF test), with extra weight on
  the patterns next to ±0, ±inf and the subnormal/normal boundary.
- ``exhaustive``: every one of the 65,536 values of a 16-bit dtype (exact values for all), or
  of the 2**32 of float32 (``actbench_ulp.accuracy.exhaustive``: a fast oracle, checked by mpmath).
- ``regressions``: the inputs in ``regressions.json``, package data (see ``regressions.py``).
- ``search``: a search for the worst case (``actbench_ulp.accuracy.search``) that starts from
  ``stratified`` points: every binade of both signs, subnormals included, with points drawn
  bit-uniformly inside it.

Profiles: ``quick`` (the default) is special, thresholds, core and wide with 2,000 random
points, the regressions and the search (float64, and the gated and row-wise kernels in float32:
the exhaustive sweep is float32's elementwise search); ``full`` has 20,000 points and adds
``bits``; ``exhaustive`` is the exhaustive domain alone.

Random domains draw from a generator seeded by the domain's name, so a run is repeatable
and a row's worst input can be replayed.
"""

import zlib

import ml_dtypes
import numpy as np

from actbench_ulp.core.catalog import CATALOG, DTYPE_EDGES, SIXTEEN_BIT, Activation

__all__ = ["DEFAULT_POINTS", "DOMAINS", "EXHAUSTIVE_DTYPES", "PROFILES", "SIXTEEN_BIT", "binades",
           "from_keys", "keys", "points", "seeded", "stratified"]

DOMAINS = ("special", "thresholds", "core", "wide", "bits", "exhaustive", "regressions", "search")
DEFAULT_POINTS = {"core": 2000, "wide": 2000, "bits": 2000}
# ``search_swept``: whether the profile searches where the exhaustive sweep already covers
# every input (float32 and 16-bit elementwise); naming --domain search asks for it anyway.
PROFILES = {
    "quick": {"domains": ("special", "thresholds", "core", "wide", "regressions", "search"),
              "points": 2000, "search_swept": False},
    "full": {"domains": ("special", "thresholds", "core", "wide", "bits", "regressions", "search"),
             "points": 20000, "search_swept": False},
    "exhaustive": {"domains": ("exhaustive",), "points": 2000, "search_swept": False},
}
EXHAUSTIVE_DTYPES = ("float32", *SIXTEEN_BIT)
NEIGHBOURS = 2  # floats taken on each side of an edge


def finfo(dtype):
    """np.finfo, extended to bfloat16 (ml_dtypes)."""
    return ml_dtypes.finfo(dtype)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, key)).encode()))


def seeded(*key) -> np.random.Generator:
    """A generator seeded by ``key``'s parts: the same draws for the same key, every run."""
    return _rng(*key)


def special(dtype) -> np.ndarray:
    fi = finfo(dtype)
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


def _uniform(key: tuple, lo: float, hi: float, dtype, n: int) -> np.ndarray:
    return _rng(*key).uniform(lo, hi, n).astype(dtype)


def _logspaced(key: tuple, dtype, n: int) -> np.ndarray:
    fi = finfo(dtype)
    rng = _rng(*key)
    lowest = int(fi.minexp) - int(fi.nmant)  # exponent of the smallest subnormal
    exponents = np.linspace(lowest, int(fi.maxexp) - 1, n)
    mantissa = rng.uniform(1.0, 2.0, n)
    mags = np.minimum(np.ldexp(mantissa, np.floor(exponents).astype(np.int32)), float(fi.max))
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return (signs * mags).astype(dtype)


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bits(key: tuple, dtype, n: int) -> np.ndarray:
    """Random bit patterns: 60% uniform over all patterns, 40% within 1024 patterns of ±0,
    ±inf (the largest finites, and NaNs past them) and the smallest normal."""
    dtype = np.dtype(dtype)
    width = dtype.itemsize * 8
    ut = _UINT[dtype.itemsize]
    rng = _rng(*key)
    nmant = int(finfo(dtype).nmant)
    sign = np.array(1 << (width - 1), dtype=np.uint64)
    inf = ((1 << (width - 1)) - 1) >> nmant << nmant  # all exponent bits set
    k = rng.integers(0, 1024, n, dtype=np.uint64)
    edges = [np.zeros(n, np.uint64) + k,
             np.array(inf, np.uint64) - 1 - k,
             np.array(inf, np.uint64) + 1 + k,
             np.array(1 << nmant, np.uint64) + k - 512]
    which = rng.integers(0, len(edges), n)
    near = np.choose(which, edges)
    uniform = rng.integers(0, 1 << min(width, 63), n, dtype=np.uint64, endpoint=False)
    if width == 64:
        uniform |= rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63)
    pattern = np.where(rng.random(n) < 0.6, uniform, near | np.where(rng.random(n) < 0.5, sign, 0))
    return pattern.astype(ut).view(dtype)


def keys(x: np.ndarray) -> np.ndarray:
    """The floats' places in the order of the reals, as int64: -0 and +0 are neighbours
    (-1 and 0), the next float up is one more; NaNs sit past the infinities."""
    x = np.asarray(x)
    width = x.dtype.itemsize * 8
    bits = x.view(_UINT[x.dtype.itemsize]).astype(np.int64)
    magnitude = bits & ((1 << (width - 1)) - 1)
    return np.where(bits >> (width - 1) != 0, -magnitude - 1, magnitude)


def from_keys(k: np.ndarray, dtype) -> np.ndarray:
    """The floats of ``dtype`` at places ``k`` (the inverse of ``keys``)."""
    dtype = np.dtype(dtype)
    k = np.asarray(k, dtype=np.int64)
    sign = np.int64(1) << (dtype.itemsize * 8 - 1)
    bits = np.where(k < 0, (-k - 1) | sign, k)
    return bits.astype(np.uint64).astype(_UINT[dtype.itemsize]).view(dtype)


def binades(dtype) -> np.ndarray:
    """[start, end) places of every positive binade of ``dtype``, smallest first: the
    subnormals by their leading bit (1, 2-3, 4-7, ...), then one per exponent up to max."""
    nmant = int(finfo(dtype).nmant)
    inf = int(keys(np.array(np.inf, dtype)))
    subnormal = [(1 << j, 1 << (j + 1)) for j in range(nmant)]
    normal = [(e, min(e + (1 << nmant), inf)) for e in range(1 << nmant, inf, 1 << nmant)]
    return np.array(subnormal + normal, dtype=np.int64)


def stratified(key: tuple, dtype, per_binade: int, dense: tuple | None = None) -> np.ndarray:
    """``per_binade`` points drawn bit-uniformly inside every binade of both signs; ``dense``
    = (lo, hi, count) gives the binades [2**lo, 2**hi) ``count`` points each instead."""
    spans = binades(dtype)
    counts = np.full(len(spans), per_binade)
    if dense is not None:
        lo, hi, count = dense
        _, exponent = np.frexp(from_keys(spans[:, 0], dtype).astype(np.float64))
        counts[(exponent - 1 >= lo) & (exponent - 1 < hi)] = count
    spans = np.repeat(spans, counts, axis=0)
    k = _rng(*key, "stratified").integers(spans[:, 0], spans[:, 1])
    return from_keys(np.concatenate([k, -k - 1]), dtype)


def exhaustive(dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.name not in SIXTEEN_BIT:
        raise ValueError(f"the exhaustive domain's points are listed for 16-bit dtypes "
                         f"({', '.join(SIXTEEN_BIT)}) only; float32's 2**32 are swept in chunks "
                         f"(actbench_ulp.accuracy.exhaustive), not {dtype.name}")
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)


def bits(activation: Activation, dtype, n: int) -> np.ndarray:
    return _bits((activation.name, np.dtype(dtype).name, "bits"), dtype, n)


def core(activation: Activation, dtype, n: int) -> np.ndarray:
    lo, hi = activation.core
    return _uniform((activation.name, np.dtype(dtype).name, "core"), lo, hi, dtype, n)


def wide(activation: Activation, dtype, n: int) -> np.ndarray:
    return _logspaced((activation.name, np.dtype(dtype).name, "wide"), dtype, n)


def points(activation: Activation, dtype, domain: str, n: int | None = None) -> np.ndarray:
    """The inputs of ``domain`` for an elementwise ``activation`` in ``dtype``."""
    if domain == "special":
        return special(dtype)
    if domain == "thresholds":
        return thresholds(activation, dtype)
    if domain == "exhaustive":
        return exhaustive(dtype)
    if domain in ("core", "wide", "bits"):
        n = DEFAULT_POINTS[domain] if n is None else n
        return {"core": core, "wide": wide, "bits": bits}[domain](activation, dtype, n)
    raise KeyError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")


# --- gated: pairs (a, b) ------------------------------------------------------------------


def pairs(activation: Activation, dtype, domain: str, n: int | None = None):
    """(a, b) for a gated activation: each domain's values for a and b drawn independently;
    ``thresholds`` puts b on the gate's edges, with a random, huge and tiny contents."""
    dtype = np.dtype(dtype)
    gate = CATALOG[activation.gate]
    if domain == "special":
        s = special(dtype)
        a, b = np.meshgrid(s, s, indexing="ij")
        return a.ravel(), b.ravel()
    if domain == "thresholds":
        b = thresholds(gate, dtype)
        fi = finfo(dtype)
        contents = [core(activation, dtype, b.size), np.full(b.size, fi.max, dtype),
                    np.full(b.size, -fi.smallest_normal, dtype)]
        return np.concatenate(contents), np.tile(b, len(contents))
    if domain in ("core", "wide", "bits"):
        n = DEFAULT_POINTS[domain] if n is None else n
        key = (activation.name, dtype.name, domain)
        if domain == "core":
            lo, hi = activation.core
            return _uniform((*key, "a"), lo, hi, dtype, n), _uniform((*key, "b"), lo, hi, dtype, n)
        draw = _logspaced if domain == "wide" else _bits
        return draw((*key, "a"), dtype, n), draw((*key, "b"), dtype, n)
    raise KeyError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")


# --- row-wise: batches of rows sharing a length and a temperature -------------------------

ROW_LENGTHS = (1, 2, 8, 1000)
TEMPERATURES = (0.5, 1.0, 2.0, 1e-3)  # 1e-3: an extreme one, and not a power of 2


class RowBatch:
    """Rows of one length under one temperature, with upstream gradients for the VJP."""

    def __init__(self, x: np.ndarray, g: np.ndarray, tau: float, label: str):
        self.x, self.g, self.tau, self.label = x, g, tau, label

    def describe(self, i: int) -> str:
        """A replayable description of element i: the row itself when short."""
        r, c = divmod(i, self.x.shape[1])
        if self.x.shape[1] <= 8:
            row = ", ".join(hexf(v) for v in self.x[r])
            grad = ", ".join(hexf(v) for v in self.g[r])
            return f"tau={self.tau!r} row=[{row}] g=[{grad}] i={c}"
        return f"tau={self.tau!r} {self.label} row {r} i={c}"


def hexf(v) -> str:
    """float.hex without the trailing zeros a float32 gets as a float64: 0x1.154246p+4."""
    h = float(v).hex()
    if "p" not in h:
        return h
    mant, exp = h.split("p")
    return f"{mant.rstrip('0').rstrip('.') if '.' in mant else mant}p{exp}"


def _special_rows(dtype):
    fi = finfo(dtype)
    inf, nan = np.inf, np.nan
    return [
        [inf, 1.0, 2.0], [1.0, inf, inf, -3.0], [-inf, 0.0, 1.0], [-inf, -inf, -inf, -inf],
        [nan, 1.0, 2.0], [20.0, 0.0, -20.0], [2.0, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0],
        [float(fi.max), -float(fi.max)], [float(fi.max), float(fi.max)],
        [0.0], [inf], [-inf], [nan], [float(fi.smallest_subnormal)], [-float(fi.max)],
    ]


def _threshold_rows(dtype):
    fi = finfo(dtype)
    base = [2.0, 1.0, -1.0, 0.5, -3.25, 7.0, 0.0, -9.5]
    under = -float(np.log(fi.smallest_subnormal))  # where exp(x - max) underflows
    rows = [[v + off for v in base] for off in (0.0, 1000.0, -1000.0, 1e6, -1e6)]
    rows += [[1e30, 1.0, 2.0, 3.0, -1e30, 0.0, 0.5, -0.5],
             [0.0, -under, -under - 0.5, -under + 0.5, -under / 2, -1.0, 1e-3, -5.0]]
    return rows


def row_batches(activation: Activation, dtype, domain: str, n: int | None = None) -> list:
    """The row batches of ``domain`` for a row-wise activation."""
    dtype = np.dtype(dtype)
    rng = _rng(activation.name, dtype.name, domain, "g")
    if domain in ("special", "thresholds"):
        rows = _special_rows(dtype) if domain == "special" else _threshold_rows(dtype)
        batches = []
        taus = (1.0,) if domain == "special" else TEMPERATURES
        for tau in taus:
            for k, row in enumerate(rows):
                x = np.array([row], dtype=dtype)
                g = rng.uniform(-2.0, 2.0, x.shape).astype(dtype)
                batches.append(RowBatch(x, g, tau, f"{domain} row {k}"))
        return batches
    if domain not in ("core", "wide", "bits"):
        raise KeyError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    n = DEFAULT_POINTS[domain] if n is None else n
    lo, hi = activation.core
    batches = []
    for length in ROW_LENGTHS:
        rows = max(1, n // (len(ROW_LENGTHS) * len(TEMPERATURES) * length))
        for tau in TEMPERATURES:
            key = (activation.name, dtype.name, domain, length, tau)
            if domain == "core":
                x, g = (_uniform((*key, part), lo, hi, dtype, rows * length) for part in "xg")
            else:
                # bits: random patterns for the inputs; upstream gradients stay finite (wide)
                draw = _logspaced if domain == "wide" else _bits
                x = draw((*key, "x"), dtype, rows * length)
                g = _logspaced((*key, "g"), dtype, rows * length)
            label = f"(domains.row_batches {domain}: len={length} tau={tau!r})"
            batches.append(RowBatch(x.reshape(rows, length), g.reshape(rows, length), tau, label))
    return batches

"""The fast oracle of the exhaustive float32 sweep, its error bound, and what it leaves to mpmath.

The oracle is the float64 ``simd`` kernel of the same activation and direction, evaluated at
each float32 input widened to float64.  Its error bound is its float64 budget: B float64 ULP
(``bench/core/budgets.toml``, the largest over its domains; at most 8).  A float64 ULP is 2**-29
of a float32 ULP at the same value (less where float32 results are subnormal), so the ULP
error of a float32 result measured against the oracle is within

    delta = B * 2**-29 float32 ULP (at most 2**-26)

of its error against the exact value, except where the exact value and the oracle may lie in
different binades: the oracle within B float64 ULP above a power of two, or 2B below it (B
ULP of the binade above are 2B of the oracle's own); there the ULP unit may differ by 2x, and
both readings are kept.

``scan`` measures one chunk against the oracle in one compiled pass and sorts its points:

- *decided*: counted from the oracle (ULP sums, the histogram behind p99, the counts above
  0.5, 1 and 2 ULP, each binade's maximum, special-value mismatches);
- *deferred*: the bound straddles 0.5, 1 or 2 ULP, or the oracle is within the bound of
  where float32 rounding overflows to infinity or underflows to zero; these are counted only
  after mpmath gives their exact value (up to ``MAX_DEFERRED`` a chunk: beyond that they are
  counted as *undecided*, by the threshold they straddle, and the row says how many);
- *candidates for the maximum*: every decided point whose upper error bound reaches the
  largest lower bound of the chunk (the maximum is one of them; at most ``MAX_CANDIDATES``
  kept, the highest bounds, and the best bound left out remembered), and the top few by error;

and mpmath (``actbench_ulp.reference``, in ``exhaustive.confirm``) then re-evaluates the deferred
points, the candidates of the chunks that may hold the sweep's maximum, the sweep's worst
points and first special-value mismatches, and a few random points of every chunk.  At each of them the
oracle is checked against its bound: a violation means the sweep's counts cannot be trusted,
and the row says so (``actbench_ulp.accuracy.exhaustive``).
"""


import numba
import numpy as np

__all__ = [
    "COUNTERS",
    "FLOATS",
    "HIST_BINS",
    "ORACLE_VARIANT",
    "SPOT_CHECKS",
    "THRESHOLDS",
    "TOP",
    "bin_index",
    "bin_upper_edge",
    "delta_for",
    "inputs",
    "scan",
    "tallies",
]

ORACLE_VARIANT = "simd"
TOP = 8  # the chunk's worst points by oracle error, re-checked and kept as its worst points
SPOT_CHECKS = 2  # random points of each chunk checked against mpmath, to test the oracle's bound
MAX_CANDIDATES = 256  # per chunk: the highest upper bounds; the rest only bound the maximum
MAX_DEFERRED = 256  # per chunk settled by mpmath; the rest are reported as undecided

THRESHOLDS = {"over_half": 0.5, "over_1": 1.0, "over_2": 2.0}  # counter name -> ULP
# counters, in this order, filled by scan
COUNTERS = ("ok", "over_half", "over_1", "over_2", "nan", "infinity", "zero_sign", "deferred",
            "mismatches_kept", "candidates", "top_kept", "undecided_half", "undecided_1",
            "undecided_2", "undecided_edge")
TOP_ROWS = 8 * TOP  # the top table's room: TOP kept, the rest pending
FLOATS = {"sum_ulp": 0.0, "max_abs": 0.0, "max_rel": 0.0, "max_lower": -np.inf,
          "dropped_upper": -1.0, "candidates_floor": -np.inf}  # name -> starting value
MISMATCH_KEPT = 8  # the first special-value mismatches of a chunk, re-checked and reported

# The p99 comes from a histogram of ULP errors: bin 0 holds exact zeros; then 16 bins per
# octave from 2**HIST_LOW, linear in the significand, so p99 is known to within 1/16 of its
# octave (reported as the upper edge of its bin).
HIST_LOW = -64
HIST_OCTAVES = 400
HIST_SUB = 16
HIST_BINS = 1 + HIST_OCTAVES * HIST_SUB

_F32_OVERFLOW = float.fromhex("0x1.ffffffp+127")  # RN to float32 gives inf from here up (a tie)
_F32_UNDERFLOW = 2.0**-150  # ... and 0 from here down (a tie, to even)


def tallies() -> tuple[np.ndarray, np.ndarray]:
    """Fresh (counters, floats) for ``scan`` to accumulate into (``COUNTERS``, ``FLOATS``)."""
    return np.zeros(len(COUNTERS), np.int64), np.array(list(FLOATS.values()))


def delta_for(bound_f64_ulp: float) -> float:
    """The oracle's error in float32 ULP, given its bound in float64 ULP."""
    return float(bound_f64_ulp) * 2.0**-29


def bin_index(e: float) -> int:
    """The histogram bin of ULP error ``e``."""
    return int(_bin_of_bits(float(e), int(np.array(e, np.float64).view(np.int64))))


def bin_upper_edge(b: int) -> float:
    """The largest ULP error histogram bin ``b`` can hold."""
    if b == 0:
        return 0.0
    octave, sub = divmod(b - 1, HIST_SUB)
    return float(np.ldexp(1.0 + (sub + 1) / HIST_SUB, octave + HIST_LOW))


_BIN_BASE = (1023 + HIST_LOW) << 4  # the top 16 bits of 2**HIST_LOW as a float64


@numba.njit(nogil=True, cache=True)
def _bin_of_bits(e, bits):
    """The histogram bin of ULP error e >= 0, from its float64 bits: the exponent and the top
    4 bits of the significand."""
    if e == 0.0:
        return 0
    return min(max((bits >> 48) - _BIN_BASE + 1, 1), HIST_BINS - 1)


@numba.njit(nogil=True, cache=True)
def inputs(first_bit, stride, x32, x64):
    """A block's inputs ``first_bit + i * stride`` as float32 bits (``x32``, a uint32 view)
    and widened to float64; returns how many are NaN."""
    nans = 0
    for i in range(x32.size):
        b = np.uint32(first_bit + i * stride)
        x32[i] = b
        nans += ((b >> 23) & 0xFF) == 0xFF and (b & 0x7FFFFF) != 0
    xf = x32.view(np.float32)
    for i in range(x32.size):
        x64[i] = np.float64(xf[i])
    return nans


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _ulp_bits(ref_bits, out_bits):
    """The float64 bits of one float32 ULP at each oracle value (its binade's, clamped to
    float32's range): written as integers, read as floats, so that both loops vectorize."""
    for i in range(ref_bits.size):
        k = min(max((ref_bits[i] >> 52) & 0x7FF, 1023 - 126), 1023 + 127)
        out_bits[i] = (k - 23) << 52


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _measure(got, got_bits, ref, ref_bits, ulp, delta, bound_mant, err):
    """The first pass, branch-free so that LLVM vectorizes it: ``err[i]`` = the ULP error of
    an *ordinary* point (finite, clear of the overflow and zero edges, no special-value
    mismatch, its bounds clear of 0.5, 1 and 2 ULP), -1 for the rest, which ``scan`` looks
    at one by one.  The bounds: the oracle's slack, and where the oracle is within its bound
    of a power of two the exact value may lie in the binade below (ULP half) or above
    (ULP twice)."""
    tiny = delta * 2.0**-149
    top = (1 << 52) - 2 * bound_mant
    for i in range(got.size):
        g = np.float64(got[i])
        r = ref[i]
        rb = ref_bits[i]
        mant = rb & 0xFFFFFFFFFFFFF
        e = abs(g - r) / ulp[i]
        slack = delta + e * 2.0**-50
        hi = (2.0 * e if mant <= bound_mant else e) + slack
        lo = (0.5 * e if mant >= top else e) - slack
        ar = abs(r)
        zero_sign = (ar < _F32_UNDERFLOW) & (g == 0.0) & ((got_bits[i] >> 31) != ((rb >> 63) & 1))
        ordinary = ((ar < 2.0**127) & (abs(ar - _F32_UNDERFLOW) > tiny) & ~zero_sign
                    & (e < np.inf) & ~((lo <= 0.5) & (0.5 < hi)) & ~((lo <= 1.0) & (1.0 < hi))
                    & ~((lo <= 2.0) & (2.0 < hi)))
        err[i] = e if ordinary else -1.0


@numba.njit(nogil=True, cache=True)
def _keep(records, n_kept, index, g, r, extra):
    """Append (index, got, oracle, extra) to a record table if it has room."""
    if n_kept < records.shape[0]:
        records[n_kept, 0] = index
        records[n_kept, 1] = g
        records[n_kept, 2] = r
        records[n_kept, 3] = extra
    return n_kept + 1


@numba.njit(nogil=True, cache=True)
def _prune(cands, n, dropped, cut):
    """Keep the rows of the candidate table whose bound reaches ``cut``; if more than half the
    table's room, the highest half.  Returns (count, the best bound left out, the floor: the
    lowest bound kept when that half is full, else -inf)."""
    kept = 0
    for k in range(min(n, cands.shape[0])):
        if cands[k, 3] >= cut:
            cands[kept] = cands[k]
            kept += 1
    half = cands.shape[0] // 2
    floor = -np.inf
    if kept >= half:
        order = np.argsort(-cands[:kept, 3], kind="mergesort")
        if kept > half:
            dropped = max(dropped, cands[order[half], 3])
        best = cands[order[:half]].copy()
        cands[:half] = best
        kept = half
        floor = best[half - 1, 3]
    return kept, dropped, floor


@numba.njit(nogil=True, cache=True)
def _candidates(cands, n, dropped, floor, upper, got, ref, offset, cut):
    """Add the block's points whose upper bound reaches ``cut`` (the running largest lower
    bound) to the candidate table (twice ``MAX_CANDIDATES`` rows), pruning it to the highest
    ``MAX_CANDIDATES`` whenever it fills (``_prune``).  A point no higher than the floor of a
    full table is only remembered as left out: ties (an exact kernel's zeros) cost nothing.
    Returns (count, dropped, floor)."""
    n, dropped, floor = _prune(cands, n, dropped, cut)
    for i in range(upper.size):
        up = upper[i]
        if up >= cut:
            if up <= floor:
                dropped = max(dropped, up)
                continue
            if n == cands.shape[0]:
                n, dropped, floor = _prune(cands, n, dropped, cut)
                if up <= floor:
                    dropped = max(dropped, up)
                    continue
            _keep(cands, n, offset + i, got[i], ref[i], up)
            n += 1
    return n, dropped, floor


@numba.njit(nogil=True, cache=True)
def _settle(top, n):
    """Sort the first ``n`` rows of the top table by error, descending, keep the first TOP
    (the rest marked empty); returns the smallest kept error once TOP are kept."""
    rows = top[:n]
    order = np.argsort(-rows[:, 3], kind="mergesort")
    best = rows[order[:TOP]].copy()
    top[:, 0] = -1.0
    top[:, 3] = -np.inf
    top[:best.shape[0]] = best
    return best[TOP - 1, 3] if best.shape[0] == TOP else -np.inf


@numba.njit(nogil=True, cache=True)
def scan(offset, first_bit, stride, got, ref, delta, bound_mant, work, binmax, hist, top,
         deferred, mism, cands, counters, floats, scratch, scratch_bits):
    """Measure one block of a chunk: ``got`` (float32) against the oracle ``ref`` (float64),
    inputs ``first_bit + i * stride``, element ``offset + i`` of the chunk.  ``bound_mant``:
    the oracle's bound in float64 ULP, as an integer.  ``work``: two float64 arrays of the
    block's size; ``work[0]`` holds each point's upper error bound afterwards (-1 where not
    decided).  Accumulates into the rest: the histogram, each binade's maximum, the top
    points by error (``top``, a record table: index, got, oracle, error, sorted), deferred
    points and the first mismatches (record tables; ``counters`` says how many there were),
    the candidates for the maximum (``cands``, a record table with the upper bound; see
    ``_candidates``; prune it with ``_prune`` at the end),
    the counters (``COUNTERS``) and ``floats`` (``FLOATS``; [3] is the largest lower bound,
    so the chunk's maximum is among the points whose upper bound reaches it).  ``scratch``
    and ``scratch_bits``: one float64 and its int64 view, to read a float's bits."""
    ref_bits = ref.view(np.int64)
    err, ulp = work[0], work[1]
    err_bits = err.view(np.int64)
    _ulp_bits(ref_bits, ulp.view(np.int64))
    _measure(got, got.view(np.uint32), ref, ref_bits, ulp, delta, bound_mant, err)
    n_ok = over0 = over1 = over2 = nan_mis = inf_mis = zero_mis = 0
    n_def, n_mism = counters[7], counters[8]
    sum_e = 0.0
    max_abs, max_rel, max_lower = floats[1], floats[2], floats[3]
    keep = TOP
    n_top = counters[10]
    lowest = top[keep - 1, 3] if n_top >= keep else -np.inf
    big, tiny = delta * 2.0**104, delta * 2.0**-149  # the bound at the overflow and zero edges
    topm = (1 << 52) - 2 * bound_mant  # B ULP of the binade above: 2B of the oracle's
    cur_binade = np.uint64(first_bit) >> np.uint64(23)
    cur_max = binmax[cur_binade]
    b = which = 0
    e_hi = 0.0
    dropped = floats[4]
    for i in range(got.size):
        e = err[i]
        g = np.float64(got[i])
        r = ref[i]
        kind = 0  # 0: measured, 1-3: a NaN, infinity or zero-sign mismatch, 4: deferred, 5: skip
        if e >= 0.0:
            b = _bin_of_bits(e, err_bits[i])
            d = abs(g - r)
            mant = ref_bits[i] & 0xFFFFFFFFFFFFF
            slack = delta + e * 2.0**-50
            up = (2.0 * e if mant <= bound_mant else e) + slack
            max_lower = max(max_lower, (0.5 * e if mant >= topm else e) - slack)
            max_abs = max(max_abs, d)
            if d > max_rel * abs(r) and r != 0.0:  # a division only where it may be a new maximum
                max_rel = max(max_rel, d / abs(r))
            over0 += e > 0.5
            over1 += e > 1.0
            over2 += e > 2.0
        else:
            up = -1.0
            e = 0.0
            if g != g or r != r:
                if not (g != g and r != r):
                    kind = 1  # (both NaN: a point with no error)
            else:
                ar = abs(r)
                w = np.float64(np.float32(r))
                if abs(ar - _F32_OVERFLOW) <= big or abs(ar - _F32_UNDERFLOW) <= tiny:
                    kind = 4
                    which = 8  # on a rounding edge: which special value is right is undecided
                    e_hi = abs(g - r) / ulp[i] + 2.0 * delta
                elif np.isinf(g) or np.isinf(w):
                    if g != w:
                        kind = 2
                    elif g != r:
                        kind = 5  # the right infinity for a finite value past the range
                elif g == 0.0 and w == 0.0 and np.signbit(g) != np.signbit(w):
                    kind = 3
                else:
                    mant = ref_bits[i] & 0xFFFFFFFFFFFFF
                    d = abs(g - r)
                    e = d / ulp[i]
                    slack = delta + e * 2.0**-50
                    e_hi = (2.0 * e if mant <= bound_mant else e) + slack
                    e_lo = (0.5 * e if mant >= topm else e) - slack
                    which = (1 * (e_lo <= 0.5 < e_hi) + 2 * (e_lo <= 1.0 < e_hi)
                             + 4 * (e_lo <= 2.0 < e_hi))
                    if which and n_def >= deferred.shape[0]:
                        # past what mpmath settles per chunk (e.g. hardsigmoid's x/6 + 1/2 is
                        # halfway between floats at ~1.4 million inputs a binade): measured
                        # like any point, its error known to within the bound; only its side
                        # of the threshold is not, and it is counted as undecided
                        for t in range(3):
                            if which & (1 << t):
                                counters[11 + t] += 1
                        dropped = max(dropped, e_hi)
                        over0 += e > 0.5 and not which & 1
                        over1 += e > 1.0 and not which & 2
                        over2 += e > 2.0 and not which & 4
                        max_abs = max(max_abs, d)
                        if r != 0.0:
                            max_rel = max(max_rel, d / ar)
                        max_lower = max(max_lower, e_lo)
                        up = e_hi
                    elif which:
                        kind = 4
                    else:
                        over0 += e > 0.5
                        over1 += e > 1.0
                        over2 += e > 2.0
                        max_abs = max(max_abs, d)
                        if r != 0.0:
                            max_rel = max(max_rel, d / ar)
                        max_lower = max(max_lower, e_lo)
                        up = e_hi
            if kind == 0 and up < 0.0:
                up = e + delta  # an exact NaN or infinity, or a zero
        if kind == 0:
            n_ok += 1
            sum_e += e
            if up < 0.0 or err[i] < 0.0:
                scratch[0] = e
                b = _bin_of_bits(e, scratch_bits[0])
            hist[b] += 1
            binade = (np.uint64(first_bit) + np.uint64(i) * np.uint64(stride)) >> np.uint64(23)
            if binade != cur_binade:
                binmax[cur_binade] = max(binmax[cur_binade], cur_max)
                cur_binade, cur_max = binade, binmax[binade]
            cur_max = max(cur_max, e)
            if e > lowest:
                # into the pending rows; sorted into the top table when they fill up
                # (a point-by-point insertion costs O(TOP) per point where errors grow steadily)
                _keep(top, n_top, offset + i, g, r, e)
                n_top += 1
                if n_top == top.shape[0]:
                    lowest = _settle(top, n_top)
                    n_top = keep
        elif kind == 4:
            if n_def >= deferred.shape[0]:
                # past what mpmath settles per chunk: left undecided, counted, bound kept
                for t in range(4):
                    if which & (1 << t):
                        counters[11 + t] += 1
                dropped = max(dropped, e_hi)
            n_def = _keep(deferred, n_def, offset + i, g, r, 0.0)
        elif kind != 5:
            if kind == 1:
                nan_mis += 1
            elif kind == 2:
                inf_mis += 1
            else:
                zero_mis += 1
            n_mism = _keep(mism, n_mism, offset + i, g, r, 0.0)
        err[i] = up
    binmax[cur_binade] = max(binmax[cur_binade], cur_max)
    lowest = _settle(top, n_top)
    counters[10] = min(n_top, keep)
    counters[9], floats[4], floats[5] = _candidates(cands, counters[9], dropped, floats[5], err,
                                                    got, ref, offset, max_lower)
    for j, v in enumerate((n_ok, over0, over1, over2, nan_mis, inf_mis, zero_mis)):
        counters[j] += v
    counters[7], counters[8] = n_def, n_mism
    floats[0] += sum_e
    floats[1], floats[2], floats[3] = max_abs, max_rel, max_lower

"""The search domain finds what sampling misses: planted band bugs in float64, our own kernels'
worst cases, and float32 maxima close to the exhaustive sweep's."""

from pathlib import Path

import numpy as np
import pytest

import actbench_ulp as actbench
from actbench_ulp.accuracy import search
from actbench_ulp.core import domains
from actbench_ulp.core.exact import Cache
from actbench_ulp.core.metrics import ulp_error
from actbench_ulp.reference import REFERENCES, evaluate

from .planted_bands import BANDS, CANCEL_LO, SERIES_SWITCH

F64 = np.float64


def _errors(fn, activation, x):
    ex = evaluate(REFERENCES[activation], x)
    return ulp_error(fn(x), ex.hi, ex.lo, x.dtype)


def _true_maximum(name):
    """Each planted bug's true maximum, or a lower bound within a few percent of it."""
    fn, activation, _ = BANDS[name]
    if name == "flushed_subnormal":
        return 2.0**52  # a subnormal result just below 2**-1022 flushed: 2**52 subnormal ULPs
    if name == "intermediate_overflow":
        return 2.0**53  # a normal result just below a power of two returned as -0
    # The truncation error grows to the switch point, the cancellation to the band's low end;
    # on both, rounding noise sits on that envelope.  4,096 random points within 1e-3 of the
    # peak (far enough apart that erf's and the series' roundings are independent draws; the
    # envelope changes by < 1 % there) find the noise's top to a few percent.
    u = np.random.default_rng(0).random(4096) * 1e-3
    x = SERIES_SWITCH * (1 - u) if name == "late_series" else CANCEL_LO * (1 - u)
    return float(np.nanmax(_errors(fn, activation, x)))


def _in_band(name, worst):
    lo, hi = BANDS[name][2]
    x = float.fromhex(worst)
    return lo <= (abs(x) if name == "late_series" else x) <= hi


@pytest.mark.parametrize("name", sorted(BANDS))
def test_default_profile_catches_a_planted_band_bug(name):
    """Each bug errs in one band only: the default profile's search must fail it, with its worst
    input inside the band and a maximum within 2x of the true one (a lower bound: never above)."""
    fn, activation, _ = BANDS[name]
    table = actbench.audit(fn, activation, dtype="float64")
    row = table[table["domain"] == "search"].iloc[0]
    assert not row["passed"]
    assert _in_band(name, row["worst_input"]), row["worst_input"]
    true = _true_maximum(name)
    assert row["max_ulp"] >= true / 2, (row["max_ulp"], true)
    assert row["max_is"] == "lower bound"


def test_stratified_points_cover_every_binade_of_both_signs():
    x = domains.stratified(("t",), F64, 1, (-2, 2, 3))
    _, e = np.frexp(np.abs(x))
    # 2,046 normal exponents and 52 subnormal leading bits a sign; 3 each in [2**-2, 2**2)
    assert x.size == 2 * (2046 + 52 + 4 * 2)
    assert np.unique(e[x > 0]).size == 2046 + 52
    assert (np.signbit(x).sum(), (~np.signbit(x)).sum()) == (x.size // 2, x.size // 2)
    assert np.isfinite(x).all() and (x != 0).all()


def test_edges_are_found_by_bisection_on_the_reference():
    """sigmoid's float64 regimes change where its result becomes subnormal (-708.39...), where
    it underflows to 0 (-745.13...) and where it rounds to 1 (36.73...): the bisection finds
    each to the float, checked against its neighbours."""
    ref = REFERENCES["sigmoid"]
    x = domains.stratified(("t",), F64, 1, search.DENSE)
    want = evaluate(ref, x).want
    found = domains.from_keys(search.edges_of(ref, {}, x, want), F64)
    ex = evaluate(ref, np.concatenate([found, np.nextafter(found, np.inf)])).want
    below, above = ex[:found.size], ex[found.size:]
    tiny = np.finfo(F64).smallest_normal
    subnormal_entry = (below < tiny) & (above >= tiny)
    zero_exit = (below == 0) & (above > 0)
    to_one = (below < 1) & (above == 1)
    assert subnormal_entry.sum() == 1 and zero_exit.sum() == 1 and to_one.sum() == 1
    assert -709 < found[subnormal_entry][0] < -708 and -746 < found[zero_exit][0] < -745
    assert 36 < found[to_one][0] < 38


def test_search_finds_the_gated_tiny_a_beside_an_ordinary_b(tmp_path):
    """glu's float32 product near the smallest normal (a tiny, b ordinary) is in the search's
    strata: at least one point of the search gives a result within 4x of 2**-126."""
    case = next(c for c in actbench_cases("glu", "fast", "forward"))
    base = search.base_batches(case, "float32")
    a, b = base[0].args
    with np.errstate(over="ignore"):
        y = np.abs(a.astype(F64) / (1 + np.exp(-b.astype(F64))))
    tiny = float(np.finfo(np.float32).smallest_normal)
    ordinary = (np.abs(b) > 0.25) & (np.abs(b) < 8)
    assert np.count_nonzero(ordinary & (y > tiny / 4) & (y < 4 * tiny)) >= 4


def actbench_cases(act, variant, direction):
    from actbench_ulp.core.catalog import cases

    return cases([act], [variant], [direction])


def test_search_is_repeatable_and_warm_reruns_compute_nothing(tmp_path):
    case = next(actbench_cases("tanh", "accurate", "forward"))
    from actbench_ulp.core.budgets import load_budgets
    from actbench_ulp.core.impl import Impl

    cache = Cache(tmp_path)
    first = search.search_row(case, "float64", load_budgets(), Impl(), cache)
    misses = cache.misses
    again = Cache(tmp_path)
    second = search.search_row(case, "float64", load_budgets(), Impl(), again)
    assert (first["max_ulp"], first["worst_input"]) == (second["max_ulp"], second["worst_input"])
    assert misses > 0 and again.misses == 0
    assert first["sweep"]["rounds"] == search.ROUNDS
    assert first["n"] == (first["sweep"]["stratified"] + first["sweep"]["edge_points"]
                          + first["sweep"]["searched"])


# float32 kernels whose proved maximum is an isolated coincidence of roundings: a few inputs
# reach it while the rest of the binade stays below ~80 % of it, and a search of 4,096 steps
# finds the envelope, not the needle (ratio found / proved, with its seeds: 0.66 to 0.90)
NEEDLES = {("celu", "simd_f32", "forward"), ("tanh", "simd_f32", "forward"),
           ("log_sigmoid", "simd_f32", "derivative"),
           ("silu", "simd_f32", "derivative"), ("sigmoid", "simd_f32_fast", "forward"),
           ("sigmoid", "simd_f32_fast", "derivative"), ("tanh", "simd_f32_fast", "forward"),
           ("silu", "simd_f32_fast", "forward"), ("silu", "simd_f32_fast", "derivative")}


def test_float32_search_comes_near_the_exhaustive_maximum(tmp_path):
    """On every kernel with a committed exhaustive float32 sweep (results/exhaustive/), the
    search's maximum is within 10 % of the proved one, or, for the named needles, 60 %; never
    above it (the search's points are inputs the sweep ran)."""
    import pandas as pd

    from actbench_ulp.core.budgets import load_budgets
    from actbench_ulp.core.catalog import cases
    from actbench_ulp.core.impl import Impl

    swept = pd.read_csv(Path(__file__).resolve().parents[1] / "results" / "exhaustive" / "audit.csv")
    cache, budgets, ratios = Cache(tmp_path), load_budgets(), {}
    for r in swept.itertuples():
        case = next(iter(cases([r.activation], [r.variant], [r.direction])))
        row = search.search_row(case, "float32", budgets, Impl(), cache)
        ratios[(r.activation, r.variant, r.direction)] = row["max_ulp"] / r.max_ulp
    assert len(ratios) == 28
    assert all(v <= 1 + 1e-9 for v in ratios.values()), ratios
    short = {k: round(v, 2) for k, v in ratios.items() if v < 0.9}
    assert set(short) <= NEEDLES, short
    assert all(ratios[k] >= 0.6 for k in NEEDLES), {k: ratios[k] for k in NEEDLES}


# torch's float32 kernels (results/exhaustive-torch/, torch 2.13.0 on AVX-512) whose proved
# maximum is such a needle: hardswish's 1.91 ULP at x = 0x1.555556p+125 needs x's mantissa near
# 4/3 in the top binades, which hold one stratified point each (found: 0.77 of it);
# log_sigmoid′'s 2.40 at x = 0x1.0a111ap+2 is one coincidence in a binade whose envelope is 2.06
TORCH_NEEDLES = {("hardswish", "forward"), ("log_sigmoid", "derivative")}


def test_float32_search_comes_near_torchs_exhaustive_maximum(tmp_path):
    """The same check on torch, whose float32 kernels flush bands to zero, overflow in
    intermediates and lose a few ULP (results/exhaustive-torch/): within 10 % of the proved
    maximum on every kernel but the named needles (60 %); both zero where torch is exact."""
    pytest.importorskip("torch")
    import pandas as pd

    from actbench_ulp.core import peers
    from actbench_ulp.core.budgets import load_budgets
    from actbench_ulp.core.catalog import cases

    swept = pd.read_csv(Path(__file__).resolve().parents[1] / "results" / "exhaustive-torch" /
                        "audit.csv")
    torch, cache, budgets, ratios = peers.resolve("torch"), Cache(tmp_path), load_budgets(), {}
    for r in swept.itertuples():
        case = next(iter(cases([r.activation], ["accurate"], [r.direction])))
        found = search.search_row(case, "float32", budgets, torch, cache)["max_ulp"]
        exact = found == 0 or float("inf")  # a proved 0: the search must find 0 too
        ratios[(r.activation, r.direction)] = found / r.max_ulp if r.max_ulp else float(exact)
    assert len(ratios) == 36
    assert all(v <= 1 + 1e-9 for v in ratios.values()), ratios
    short = {k: round(v, 2) for k, v in ratios.items() if v < 0.9}
    assert set(short) == TORCH_NEEDLES, short
    assert all(ratios[k] >= 0.6 for k in TORCH_NEEDLES), {k: ratios[k] for k in TORCH_NEEDLES}

"""The ``search`` domain: look for the worst case instead of sampling the range.

float64 has 2**64 inputs, so no sweep proves its maximum; what a sample misses is a band — a
range of inputs where a kernel flushes, overflows an intermediate, or keeps a series past its
switch point — narrow beside the range and wide beside one ULP.  The search runs in three
stages, all seeded, so a run is repeatable and a worst input can be replayed:

1. *stratified* (``domains.stratified``): every binade of both signs, subnormals included,
   with points drawn bit-uniformly inside it;
2. *edges from the reference*: where the correctly rounded result changes regime (NaN, ±inf,
   ±normal, ±subnormal, ±0, the constant it tends to at ±inf, x itself), located by bisection
   on the reference between neighbouring stratified points of different regime, and sampled
   densely on both sides: the edge's neighbours 1, 2, 3 ULPs away, then at every power of two
   of ULPs, each with a random point between it and the next (a band that starts at an edge is
   hit at every scale); the catalog's edges (``Activation.edges``, the dtype's exp edges) too;
3. *local search* per implementation: from the worst points found, random steps in bit space
   at every scale (a step of up to 2**j ULPs, j uniform) and restarts inside the worst
   points' binades, keeping the worst, for a fixed number of rounds and evaluations (Zimmermann's
   search for the worst cases of binary64 libm functions works the same way).

Every point's exact value comes from the reference through the cache (``core.exact``): a warm
rerun of the same kernel computes nothing, and the maximum reported is mpmath-exact.  It is a
lower bound on the true maximum (``max_is`` says so); the exhaustive sweep's is proved.

Gated activations search over pairs (a, b): each operand stratified by binade beside the other
drawn from the working range, and both stratified (a tiny a beside an ordinary b is where the
product nears the subnormals); b also on the gate's edges; the local search steps a, b or both.
Row-wise ones are stratified (rows whose largest entry is drawn from every binade).
"""

from dataclasses import dataclass, field

import numpy as np

from actbench_ulp import reference
from actbench_ulp.accuracy.audit import (
    Batch,
    audit,
    elementwise_batch,
    evaluate_points,
    gated_batch,
    row_batch,
)
from actbench_ulp.core import domains
from actbench_ulp.core.catalog import CATALOG, DTYPE_EDGES
from actbench_ulp.core.exact import Cache, Task, resolve_exact

__all__ = [
    "PER_BINADE",
    "PER_ROUND",
    "ROUNDS",
    "SEEDS",
    "Searched",
    "base_batches",
    "edges_of",
    "search_row",
]

# Points per binade and sign: one in every binade (float64 has 2,098 a sign), and DENSE in the
# binades of |x| in [2**-32, 2**12), where activations change formula (series switch points,
# exp's range, the working ranges): a band of 30 % of such a binade, on one sign, is missed with
# probability 0.7**8 = 6 %.  ~5,000 exact values per reference, cached.
PER_BINADE = {"elementwise": 1, "gated": 1, "rowwise": 1}
DENSE = (-32, 12, 8)
SEEDS = 8  # worst points the local search starts from, each round
PER_ROUND = 256  # evaluations a round: 3/4 steps around the seeds, 1/4 restarts in their binades
# 16 rounds: on the 28 float32 kernels with an exhaustive sweep, 8 rounds of 128 came within
# 10 % of the proved maximum on 16, 16 of 256 on 19, 32 of 512 on 22 (tests/test_search.py)
ROUNDS = 16
MAX_BRACKETS = 48  # regime changes bisected per reference: the rest are listed, not located
STEP_SHARE = 0.75
STEP_BIAS = 2.0


def _regime(x: np.ndarray, want: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """A small integer per point saying which regime its rounded result is in."""
    fi = domains.finfo(want.dtype)
    with np.errstate(invalid="ignore"):
        mag = np.abs(want)
        category = np.select(
            [np.isnan(want), np.isinf(want), want == 0, mag < fi.smallest_normal],
            [0, 1, 2, 3], 4)
        sign = np.signbit(want).astype(np.int64)
        is_x = (want == x) & (want != 0)
        is_limit = np.isin(want, limits[np.isfinite(limits) & (limits != 0)])
    return ((category * 2 + sign) * 2 + is_x) * 2 + is_limit


def _exact_at(ref, x: np.ndarray, params: dict) -> np.ndarray:
    return reference.evaluate(ref, x, params=params).want


def _bisect(ref, params, lo_key: int, hi_key: int, dtype, regime_lo, limits) -> int:
    """The last place in [lo_key, hi_key) whose regime is ``regime_lo``: the edge."""
    while hi_key - lo_key > 1:
        mid = (lo_key + hi_key) // 2
        x = domains.from_keys(np.array([mid]), dtype)
        if _regime(x, _exact_at(ref, x, params), limits)[0] == regime_lo:
            lo_key = mid
        else:
            hi_key = mid
    return lo_key


def edges_of(ref, params: dict, x: np.ndarray, want: np.ndarray, cache: Cache | None = None):
    """Places (``domains.keys``) where the rounded reference changes regime, located by
    bisection between the neighbouring points of ``x`` (with exact rounded values ``want``)
    whose regimes differ.  Cached: bisection is ~60 sequential mpmath calls per edge."""
    dtype = x.dtype
    key = None
    if cache is not None:
        probe = Task("elementwise", ref.name, (x,), dict(params), ref=ref)
        key = f"edges-{probe.key}"
        hit = cache.load_array(key)  # the edges as floats: a float64 holds any key's float
        if hit is not None:
            return domains.keys(hit.astype(dtype))
    order = np.argsort(domains.keys(x), kind="stable")
    xs, ws = x[order], want[order]
    limits = _exact_at(ref, np.array([np.inf, -np.inf], dtype), params)
    regime = _regime(xs, ws, limits)
    places = domains.keys(xs)
    changes = np.flatnonzero(regime[1:] != regime[:-1])
    found = [_bisect(ref, params, int(places[i]), int(places[i + 1]), dtype, regime[i], limits)
             for i in changes[:MAX_BRACKETS]]
    result = np.array(sorted(set(found)), dtype=np.int64)
    if cache is not None:
        cache.store_array(key, domains.from_keys(result, dtype).astype(np.float64))
    return result


def _around(places: np.ndarray, dtype, rng) -> np.ndarray:
    """Dense points on both sides of each place: 0..3 ULPs, every power of two of ULPs and a
    random point in each octave of distance."""
    width = int(domains.finfo(dtype).bits) - 1
    powers = np.int64(1) << np.arange(2, width, dtype=np.int64)
    between = powers + (rng.random(powers.size) * powers).astype(np.int64)
    steps = np.concatenate([np.arange(0, 4, dtype=np.int64), powers, between])
    near = (places[:, None] + np.concatenate([steps, -steps])[None, :]).ravel()
    return np.unique(_finite(near, dtype))


def _top(dtype) -> int:
    """The place of the largest finite float of ``dtype``."""
    return int(domains.keys(np.array(domains.finfo(dtype).max, dtype)))


def _finite(k: np.ndarray, dtype) -> np.ndarray:
    top = _top(dtype)
    return np.clip(k, -top - 1, top)


def _catalog_places(activation, dtype) -> np.ndarray:
    vals = [e.value(np.dtype(dtype).name) for e in (*activation.edges, *DTYPE_EDGES)]
    vals = [v for v in vals if v is not None]
    return domains.keys(np.array(vals, dtype=dtype)) if vals else np.zeros(0, np.int64)


def _key(case, dtype, *parts):
    return (case.activation.name, np.dtype(dtype).name, "search", *parts)


def _core_values(act, dtype, n, key):
    lo, hi = act.core
    return domains.seeded(*key).uniform(lo, hi, n).astype(dtype)


def _row_values(act, dtype, key):
    """Rows of four: the first entry stratified over the binades, the others near it (within
    2**-30 to 2**7 of it) or anywhere in the working range."""
    lead = domains.stratified((*key, "lead"), dtype, PER_BINADE["rowwise"])
    rng = domains.seeded(*key, "rest")
    n = lead.size
    span = np.exp2(rng.uniform(-30, 7, (n, 2))) * np.where(rng.random((n, 2)) < 0.5, -1, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        near = (lead.astype(np.float64)[:, None] + span).astype(dtype)
    lo, hi = act.core
    far = rng.uniform(lo, hi, (n, 1)).astype(dtype)
    x = np.concatenate([lead[:, None], near, far], axis=1)
    x = np.where(np.isfinite(x), x, lead[:, None])
    g = rng.uniform(-2.0, 2.0, x.shape).astype(dtype)
    tau = np.array(domains.TEMPERATURES)[np.arange(n) % len(domains.TEMPERATURES)]
    return x, g, tau


def base_batches(case, dtype) -> list[Batch]:
    """The points every implementation gets: stratified, plus the catalog's edges with their
    neighbourhoods (the reference's own edges come later: they need these exact values)."""
    act, dtype = case.activation, np.dtype(dtype)
    if act.kind == "elementwise":
        x = domains.stratified(_key(case, dtype), dtype, PER_BINADE["elementwise"], DENSE)
        near = _around(_catalog_places(act, dtype), dtype, domains.seeded(*_key(case, dtype, "near")))
        x = np.concatenate([x, domains.from_keys(near, dtype)])
        return [elementwise_batch(case, x)]
    if act.kind == "gated":
        k = _key(case, dtype)
        s = domains.stratified((*k, "a"), dtype, PER_BINADE["gated"], DENSE)
        t = domains.stratified((*k, "b"), dtype, PER_BINADE["gated"], DENSE)
        a = np.concatenate([s, _core_values(act, dtype, s.size, (*k, "core a")),
                            s[domains.seeded(*k, "pair").permutation(s.size)]])
        b = np.concatenate([_core_values(act, dtype, t.size, (*k, "core b")), t, t])
        gate = CATALOG[act.gate]
        near = domains.from_keys(_around(_catalog_places(gate, dtype), dtype,
                                         domains.seeded(*k, "near")), dtype)
        a = np.concatenate([a, _core_values(act, dtype, near.size, (*k, "near a"))])
        return [gated_batch(case, a, np.concatenate([b, near]))]
    x, g, taus = _row_values(act, dtype, _key(case, dtype))
    out = []
    for tau in domains.TEMPERATURES:
        pick = taus == tau
        out.append(row_batch(case, domains.RowBatch(x[pick], g[pick], float(tau),
                                                    f"(search rows, tau={tau!r})")))
    return out


@dataclass
class Searched:
    """What the search of one row did, for the row's ``sweep`` column."""

    stratified: int = 0
    edges: list = field(default_factory=list)
    edge_points: int = 0
    searched: int = 0
    rounds: int = 0

    binades: list = field(default_factory=list)

    def as_dict(self, dtype) -> dict:
        return {"kind": "search", "stratified": self.stratified, "edge_points": self.edge_points,
                "searched": self.searched, "rounds": self.rounds,
                "edges": [domains.hexf(v) for v in domains.from_keys(
                    np.array(self.edges, np.int64), dtype)],
                "binade_max_ulp": self.binades}


def binade_maxima(x: np.ndarray, ulps: np.ndarray) -> list:
    """[[sign, e, max ULP]] for every binade 2**e <= |x| < 2**(e + 1) holding a finite,
    nonzero x with a measured error (subnormals by their own e)."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x) & (x != 0) & np.isfinite(ulps)
    if not ok.any():
        return []
    _, e = np.frexp(np.abs(x[ok]))
    sign = np.where(x[ok] < 0, -1, 1)
    frame = {}
    for s_, e_, u in zip(sign.tolist(), (e - 1).tolist(), ulps[ok].tolist(), strict=True):
        frame[(s_, e_)] = max(frame.get((s_, e_), 0.0), u)
    return [[s_, e_, m] for (s_, e_), m in sorted(frame.items())]


def _edge_batch(case, dtype, base: Batch, exact: dict, cache: Cache, gate_of=None):
    """The reference's own edges, found from the base points' exact values, densely sampled."""
    act = case.activation
    rng = domains.seeded(*_key(case, dtype, "edges"))
    if act.kind == "elementwise":
        ex = exact[base.task.key]
        x = np.ravel(base.args[0])
        places = edges_of(case.reference, dict(act.params), x, np.ravel(ex.want), cache)
        return [elementwise_batch(case, domains.from_keys(_around(places, dtype, rng), dtype))], \
            places
    if act.kind == "gated" and gate_of is not None:
        places = gate_of
        b = domains.from_keys(_around(places, dtype, rng), dtype)
        a = domains.stratified(_key(case, dtype, "edge a"), dtype, 1)
        a = a[rng.integers(0, a.size, b.size)]
        return [gated_batch(case, a, b)], places
    return [], np.zeros(0, np.int64)


def _gate_edges(case, dtype, cache):
    """The gated activation's b edges: those of its gate's forward reference."""
    gate = CATALOG[case.activation.gate]
    x = domains.stratified(("gate", gate.name, np.dtype(dtype).name, "search"), dtype,
                           PER_BINADE["elementwise"], DENSE)
    ref = gate.reference("forward")
    task = Task("elementwise", ref.name, (x,), dict(gate.params), ref=ref)
    want = resolve_exact([task], cache)[task.key].want
    return edges_of(ref, dict(gate.params), x, want, cache)


def _candidates(case, dtype, seeds: list, rng, n: int):
    """n points around the seeds: steps at every scale, and restarts in the seeds' binades."""
    width = int(domains.finfo(dtype).bits) - 1
    spans = domains.binades(dtype)
    per = max(1, n // len(seeds))
    top = _top(dtype)
    out = []
    for seed in seeds:
        k = domains.keys(np.asarray(seed, dtype=dtype))  # one place per operand
        steps = int(per * STEP_SHARE)
        # scales of 2**j ULPs, small ones likelier (j = width·u**2): the error of a kernel is
        # noise on a smooth envelope, and the noise's extremes are found by many near steps
        j = ((width - 1) * rng.random((steps, k.size)) ** STEP_BIAS).astype(np.int64)
        scale = np.int64(1) << j
        step = (rng.random((steps, k.size)) * scale).astype(np.int64) + 1
        step *= np.where(rng.random((steps, k.size)) < 0.5, -1, 1)
        if k.size > 1:  # pairs: move a, b or both
            which = rng.integers(0, 3, steps)
            step[which == 0, 1] = 0
            step[which == 1, 0] = 0
        # kept inside the finite floats before adding: k + step could pass int64's range
        moved = k[None, :] + np.clip(step, -top - 1 - k[None, :], top - k[None, :])
        restarts = per - steps
        mag = np.where(k < 0, -k - 1, k)
        lo = spans[np.clip(np.searchsorted(spans[:, 1], mag, side="right"), 0, len(spans) - 1)]
        fresh = rng.integers(lo[:, 0], lo[:, 1], (restarts, k.size))
        fresh = np.where(k[None, :] < 0, -fresh - 1, fresh)
        out.append(np.concatenate([moved, fresh]))
    return _finite(np.concatenate(out), dtype)


def _worst_seeds(points, inputs, count):
    score = np.where(points.kinds != "", np.inf, np.nan_to_num(points.ulps, nan=-1.0))
    order = np.argsort(-score, kind="stable")
    seeds, seen = [], set()
    for i in order:
        pair = tuple(float(v) for v in inputs[i])
        if pair in seen:
            continue
        seen.add(pair)
        seeds.append(inputs[i])
        if len(seeds) == count:
            break
    return seeds


def _inputs(work) -> np.ndarray:
    """(points, operands) of every batch of elementwise or gated ``work``, in order."""
    return np.concatenate([np.stack([np.ravel(a) for a in b.args], axis=1) for b in work])


def search_row(case, dtype: str, budgets, impl, cache: Cache, executor=None, jobs: int = 1,
               exact: dict | None = None, base: list | None = None,
               edges: dict | None = None) -> dict:
    """The search row of one implementation.  ``base`` and ``exact`` are its base batches and
    their exact values when the caller resolved them with others (``audit.run_audit``);
    ``edges`` a dict shared between calls, so that each reference's edges are found once."""
    kernel = impl.kernel(case)
    base = base_batches(case, dtype) if base is None else base
    if kernel is None:
        return audit(case, dtype, "search", budgets, impl=impl, work=base, exact={})
    exact = dict(exact or {})
    missing = [b.task for b in base if b.task.key not in exact]
    exact.update(resolve_exact(missing, cache, jobs, executor=executor))
    # the later stages are a few thousand points at a time: a new pool would cost more than it saves
    done = Searched(stratified=sum(b.task.size for b in base))
    edges = {} if edges is None else edges
    ref_key = (case.reference.name, np.dtype(dtype).name)
    if ref_key not in edges:
        gate_of = (_gate_edges(case, dtype, cache) if case.activation.kind == "gated" else None)
        edge_work, places = _edge_batch(case, dtype, base[0], exact, cache, gate_of)
        edge_work = [b for b in edge_work if b.task.size]
        exact_edges = resolve_exact([b.task for b in edge_work], cache, executor=executor)
        edges[ref_key] = (edge_work, places, exact_edges)
    edge_work, places, exact_edges = edges[ref_key]
    exact.update(exact_edges)
    work = base + edge_work
    done.edges = list(places)
    done.edge_points = sum(b.task.size for b in edge_work)
    if case.activation.kind != "rowwise":
        work, inputs, ulps = _local_search(case, dtype, kernel, work, exact, cache, executor, done)
        if ulps is not None:  # per binade of x, or of b for a gated activation (the gate's input)
            done.binades = binade_maxima(inputs[:, -1], ulps)
    row = audit(case, dtype, "search", budgets, impl=impl, work=work, exact=exact)
    row["sweep"] = done.as_dict(np.dtype(dtype))
    return row


def _local_search(case, dtype, kernel, work, exact, cache, executor, done):
    """(work, inputs, ULP errors): the work with the search's batches added, every point's
    operands and error (None where the kernel failed: the audit row reports it)."""
    rng = domains.seeded(*_key(case, dtype, "local"))
    pts = evaluate_points(kernel, work, exact)
    if pts.error:
        return work, None, None
    inputs = _inputs(work)
    make = gated_batch if case.activation.kind == "gated" else elementwise_batch
    for _ in range(ROUNDS):
        seeds = _worst_seeds(pts, inputs, SEEDS)
        fresh = domains.from_keys(_candidates(case, dtype, seeds, rng, PER_ROUND), dtype)
        batch = make(case, *(np.ascontiguousarray(fresh[:, j]) for j in range(fresh.shape[1])))
        exact.update(resolve_exact([batch.task], cache, executor=executor))
        got = evaluate_points(kernel, [batch], exact)
        if got.error:
            break
        work.append(batch)
        inputs = np.concatenate([inputs, fresh])
        pts.kinds = np.concatenate([pts.kinds, got.kinds])
        pts.ulps = np.concatenate([pts.ulps, got.ulps])
        done.searched += fresh.shape[0]
        done.rounds += 1
    return work, inputs, pts.ulps

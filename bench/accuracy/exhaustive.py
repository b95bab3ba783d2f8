"""The exhaustive float32 domain: all 2**32 inputs of one implementation, as one audit row.

``sweep(case, impl, ...)`` cuts the bit patterns into chunks of whole binades
(``sweep_chunk``), runs them in an executor (a local process pool or a Dask cluster,
``actbench_ulp.core.executors``) with a progress bar, and stores each finished chunk's summary
atomically (``SweepStore``), so that an interrupted sweep resumes where it stopped.  Then it
settles with mpmath, through the exact-value cache, every point the fast oracle leaves
undecided and every point the row reports (``confirm``; ``oracle`` says which and why), and
merges the chunks into an ordinary audit row: ``n`` inputs run (NaNs included), max / p99 /
mean ULP, the counts above 0.5, 1 and 2 ULP, special-value mismatches, the worst points, and
in ``sweep`` each binade's maximum, the number of points mpmath checked and what the oracle
was.  A row whose oracle broke its bound at a checked point is an error: its counts would
rest on a wrong oracle.
"""

import hashlib
import inspect
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from actbench_ulp.accuracy import oracle, sweep_chunk
from actbench_ulp.accuracy.row import AuditRow
from actbench_ulp.accuracy.sweep_chunk import Job, chunks, impl_spec, machine_code, run_chunk
from actbench_ulp.core import metrics
from actbench_ulp.core.declared import oracle as catalog_oracle
from actbench_ulp.core.declared import source_digest
from actbench_ulp.core.domains import DOMAINS, hexf
from actbench_ulp.core.exact import Task, resolve_exact
from actbench_ulp.core.executors import completed, picklable
from actbench_ulp.core.results import write_atomic

__all__ = ["STORE_SCHEMA", "SweepInterrupted", "SweepStore", "confirm", "oracle_bound", "sweep"]

STORE_SCHEMA = 1
WORST = 5  # worst points kept in the row, as for every domain
# candidates for the maximum mpmath settles, the highest bounds first: more are ties within the
# oracle's bound (an exact kernel's zeros), which only bound the maximum (``max_ulp_bound``)
CONFIRM_CANDIDATES = 32


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; the chunks finished so far are stored."""


@cache
def oracle_bound(activation: str, direction: str) -> float:
    """The oracle's error bound in float64 ULP: its float64 budget in the packaged budgets
    (not a user's ``--budgets``: the bound belongs to our kernel), the largest over domains."""
    from actbench_ulp.core.budgets import load_budgets

    budgets = load_budgets()
    return max(budgets.get(activation, oracle.ORACLE_VARIANT, direction, "float64", d).max_ulp
               for d in DOMAINS)


@cache
def _source_hash() -> str:
    """What our kernels and the sweep's own measuring code are: their sources."""
    from actbench_ulp import kernels

    h = hashlib.sha256()
    from actbench_ulp.accuracy import audit
    from actbench_ulp.core import activation, array_libs, arrays, catalog, framework_peers, impl, peers

    files = sorted(Path(kernels.__file__).parent.glob("*.py"))
    # the measuring code, what picks a variant's kernel, and how peers and a user's arrays are
    # called and their results checked
    files += [Path(m.__file__) for m in (oracle, sweep_chunk, audit, catalog, activation, impl,
                                         peers, framework_peers, arrays, array_libs)]
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _callable_identity(fn) -> str:
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    except (OSError, TypeError):
        return repr(fn)


def _identity(spec: tuple) -> list:
    """What an implementation's results depend on, beyond its name."""
    kind, *rest = spec
    libs = ["numpy", "numba", "llvmlite"]
    if kind == "builtin":
        libs += {"scipy": ["scipy"], "torch": ["torch"], "jax": ["jax", "jaxlib"]}.get(rest[0], [])
        return [spec, {lib: _version(lib) for lib in libs}]
    if kind == "spec":
        from actbench_ulp.core.peers import load_callable

        fns = [load_callable(s) for s in rest[:2] if s and ":" in s]
        return [spec, [_callable_identity(f) for f in fns],
                {lib: _version(lib) for lib in [*libs, "torch", "jax", "jaxlib"]}]
    if kind == "callables":
        return [kind, rest[0], [_callable_identity(f) for f in rest[1:3] if callable(f)],
                repr(rest[3]), {lib: _version(lib) for lib in [*libs, "torch", "jax", "jaxlib"]}]
    return [kind, repr(rest[0])]


class SweepStore:
    """The finished chunks of one sweep, a JSON file each, in ``root/sweeps/<key>/``.

    The key hashes everything a chunk's summary depends on: the implementation (and its
    library's version, or its source), the CPU its code is compiled or dispatched for, the
    activation, direction and parameters, the stride and chunking, the oracle's bound, and our
    kernels' and this measuring code's sources.  A
    file that cannot be read or belongs to another key is reported and its chunk rerun."""

    def __init__(self, root, key: str, about: dict, report=None):
        self.directory = Path(root) / "sweeps" / key[:2] / key if root else None
        self.key = key
        self.about = about
        self.report = report or (lambda msg: print(f"actbench: {msg}", file=sys.stderr))

    def _path(self, index: int) -> Path:
        return self.directory / f"chunk-{index:05d}.json"

    def finished(self, count: int) -> dict:
        """index -> summary of every stored chunk below ``count``."""
        done = {}
        if self.directory is None or not self.directory.is_dir():
            return done
        for index in range(count):
            path = self._path(index)
            if not path.exists():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("schema") != STORE_SCHEMA or data.get("key") != self.key:
                    raise ValueError("written for another sweep")
                result = data["result"]
                if result.get("index") != index or "counters" not in result:
                    raise ValueError("not a chunk summary")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self.report(f"stored sweep chunk {path} is unusable ({exc}); measuring it again")
                continue
            done[index] = result
        return done

    def save(self, result: dict) -> None:
        if self.directory is None or result.get("error"):
            return  # a chunk that failed is measured again next time
        if not (self.directory / "sweep.json").exists():
            write_atomic(self.directory / "sweep.json", json.dumps(self.about, indent=1, default=str))
        try:
            write_atomic(self._path(result["index"]),
                         json.dumps({"schema": STORE_SCHEMA, "key": self.key, "result": result}))
        except OSError as exc:
            self.report(f"cannot store sweep chunk in {self.directory}: {exc.strerror or exc}")


def _store_for(case, spec, stride, span, bound, cache_dir, report) -> SweepStore:
    about = {"schema": STORE_SCHEMA, "implementation": _identity(spec), "case": case.label,
             "machine_code": machine_code(),
             "params": case.activation.params, "dtype": "float32", "stride": stride,
             "chunk_span": span, "oracle_bound": bound,
             # how a peer writes it (a declared activation's spelling is the user's code)
             "spelling": repr(case.activation.spelling(spec[1], case.direction))
             if spec[0] == "builtin" else None,
             "limits": [oracle.TOP, oracle.SPOT_CHECKS, oracle.MAX_CANDIDATES,
                        oracle.MISMATCH_KEPT, oracle.MAX_DEFERRED],
             "sources": _source_hash(),
             # a declared activation's oracle is the user's code: editing it starts afresh
             "declared_oracle": None if case.activation.oracles is None else
             [source_digest(f) for f in case.activation.oracles[0]]}
    key = hashlib.sha256(json.dumps(about, sort_keys=True, default=str).encode()).hexdigest()
    return SweepStore(cache_dir, key, about, report)


def sweep(case, impl, *, stride: int = 1, cache=None, executor=None,
          progress=None, oracle_kernel=None, chunk_points: int | None = None) -> AuditRow:
    """The exhaustive float32 row of ``impl`` on ``case``: every ``stride``-th bit pattern.
    ``cache``: the exact-value ``Cache``; its directory also holds the stored chunks.
    ``executor``: where chunks and exact values are computed (None: here, one at a time).
    ``progress(total, initial, desc)``: a progress bar (tqdm's interface), or None.
    ``chunk_points``: inputs per chunk, the unit that is stored, resumed and sent to a worker
    (default ``sweep_chunk.TARGET_POINTS``)."""
    start = time.perf_counter()
    act = case.activation
    spec = impl_spec(impl)
    own_bound = catalog_oracle(act, case.direction)[1]  # raises where a declared one has none
    bound = oracle_bound(act.name, case.direction) if own_bound is None else own_bound
    chunk_points = chunk_points or sweep_chunk.TARGET_POINTS
    layout = chunks(stride, chunk_points)
    # a replaced oracle (the tests plant a wrong one) must not leave chunks under the real key
    root = cache.directory if cache and oracle_kernel is None else None
    # keyed by the chunks' span, not the size asked for: two sizes giving the same chunks
    # resume each other's
    store = _store_for(case, spec, stride, layout[0].hi - layout[0].lo, bound, root,
                       cache.report if cache else None)
    results = store.finished(len(layout))
    resumed = len(results)
    todo = [c for c in layout if c.index not in results]
    bar = None
    if progress:
        bar = progress(sum(c.size for c in layout), sum(layout[i].size for i in results),
                       f"{impl.name} {case.label} float32 exhaustive")
    jobs = [Job(spec, act.name, case.variant.name, case.direction, c, bound, act.declaration)
            for c in todo]
    if isinstance(executor, ProcessPoolExecutor) and not picklable((spec, act.declaration)):
        executor = None  # a lambda or a local function cannot reach a pool: run it here
    try:
        here = store.about["machine_code"]
        for result in _run(jobs, executor, oracle_kernel):
            # a Dask worker on another kind of CPU runs other code (on one without AVX-512F,
            # the exp-based tanh): its chunks cannot join this sweep
            if result.get("machine_code", here) != here:
                raise RuntimeError(
                    f"{case.label}: chunk {result['index']} ran on a worker whose code is "
                    f"compiled for {result['machine_code']['compiled_for'][0]}, not for this "
                    f"client's {here['compiled_for'][0]}; run a sweep's workers on the client's "
                    "kind of CPU")
            store.save(result)
            results[result["index"]] = result
            if bar:
                bar.update(layout[result["index"]].size)
    except KeyboardInterrupt:
        where = store.directory or "nowhere (no cache directory)"
        raise SweepInterrupted(f"{case.label}: {len(results)} of {len(layout)} chunks finished, "
                               f"stored in {where}; the same command resumes from there") from None
    finally:
        if bar:
            bar.close()
    ordered = [results[c.index] for c in layout]
    row = confirm(case, ordered, bound, cache, executor)
    row["sweep"].update(stride=stride, chunks=len(layout), resumed_chunks=resumed,
                        seconds=round(time.perf_counter() - start, 1),
                        store=str(store.directory) if store.directory else None)
    return row


def _run(jobs, executor, oracle_kernel):
    if executor is None or oracle_kernel is not None:
        for job in jobs:
            yield run_chunk(job, oracle_kernel)
        return
    for _, result in completed(executor, run_chunk, jobs):
        yield result


def _pick(results) -> tuple[dict, float]:
    """The points mpmath settles, by bit pattern, and the bound on unchecked candidates."""
    max_lower = max(r["max_lower"] for r in results)
    cands = [p for r in results for p in r["candidates"] if p["upper"] >= max_lower]
    cands.sort(key=lambda p: -p["upper"])
    unchecked = max([r["unchecked_upper"] for r in results] + [-1.0])
    if len(cands) > CONFIRM_CANDIDATES:
        unchecked = max(unchecked, cands[CONFIRM_CANDIDATES]["upper"])
        cands = cands[:CONFIRM_CANDIDATES]
    top = sorted((p for r in results for p in r["top"]), key=lambda p: -p["ulp"])[:oracle.TOP]
    mism = [p for r in results for p in r["mismatches"]][:oracle.MISMATCH_KEPT]
    points = {}
    for group in (cands, top, mism, [p for r in results for p in r["spot"]],
                  [p for r in results for p in r["deferred"]]):
        for p in group:
            points.setdefault(p["bits"], p)
    return points, unchecked


def confirm(case, results, bound, cache=None, executor=None) -> AuditRow:
    """Merge chunk summaries into row fields, with mpmath's exact values at the points that
    decide them (see the module docstring)."""
    from actbench_ulp.core.exact import Cache

    errors = [r["error"] for r in results if r.get("error")]
    notes = list(dict.fromkeys(r["wrong_dtype"] for r in results if r.get("wrong_dtype")))
    warned = "; ".join(dict.fromkeys(r["warnings"] for r in results if r.get("warnings")))
    n = sum(r["n"] for r in results)
    if errors:
        return {"n": n, "error": errors[0], "status": "error", "warnings": warned,
                "special_mismatches": 0, "worst_points": [], "sweep": {}}
    counts = {k: sum(r["counters"][k] for r in results) for k in results[0]["counters"]}
    undecided = {t: counts.pop(f"undecided_{t}") for t in ("half", "1", "2", "edge")}
    counts.pop("deferred")
    hist = np.zeros(oracle.HIST_BINS, np.int64)
    binmax = np.full(sweep_chunk.BINADES, -1.0)
    for r in results:
        for b, c in r["hist"]:
            hist[b] += c
        for b, m in r["binmax"]:
            binmax[b] = max(binmax[b], m)
    total = sum(r["sum_ulp"] for r in results)
    points, unchecked = _pick(results)
    bits = np.array(sorted(points), dtype=np.uint64)
    x = bits.astype(np.uint32).view(np.float32)
    got = np.array([points[b]["got"] for b in sorted(points)], np.float32)
    ref = np.array([points[b]["oracle"] for b in sorted(points)], np.float64)
    task = Task("elementwise", case.reference.name, (x,), dict(case.activation.params),
                ref=case.reference)
    ex = resolve_exact([task], cache or Cache(None), executor=executor)[task.key]
    with np.errstate(all="ignore"):
        e = metrics.ulp_error(got, ex.hi, ex.lo, np.float32)
        kinds = metrics.mismatch_kind(got, ex.want)
        oracle_err = metrics.ulp_error(ref, ex.hi, ex.lo, np.float64)
    broken = (metrics.mismatch_kind(ref, ex.hi) != "") | np.isnan(oracle_err) | (oracle_err > bound)
    broken &= ~(np.isnan(ref) & np.isnan(ex.hi))
    deferred = {p["bits"] for r in results for p in r["deferred"]}
    max_abs = max(r["max_abs"] for r in results)
    max_rel = max(r["max_rel"] for r in results)
    for i, b in enumerate(bits.tolist()):
        if b not in deferred:
            continue
        if not kinds[i] and np.isfinite(e[i]):
            d = abs((float(got[i]) - ex.hi[i]) - ex.lo[i])
            max_abs = max(max_abs, d)
            if ex.hi[i] != 0:
                max_rel = max(max_rel, d / abs(ex.hi[i]))
        if kinds[i]:
            counts[kinds[i]] += 1
        elif not np.isnan(e[i]):
            counts["ok"] += 1
            total += e[i]
            hist[oracle.bin_index(e[i])] += 1
            binmax[b >> 23] = max(binmax[b >> 23], e[i])
            for name, t in oracle.THRESHOLDS.items():
                counts[name] += int(e[i] > t)
    ok = (kinds == "") & np.isfinite(e)
    max_ulp = float(e[ok].max()) if ok.any() else 0.0
    score = np.where(kinds != "", np.inf, np.where(ok, e, -1.0))
    worst = [{"x": hexf(x[i]), "got": str(got[i]), "want": str(ex.want[i]), "ulp": float(e[i]),
              "kind": kinds[i] or "ulp"} for i in np.argsort(-score, kind="stable")[:WORST]]
    worst[0]["input"] = {"x": worst[0]["x"]}
    mismatches = counts["nan"] + counts["infinity"] + counts["zero_sign"]
    cumulative = np.cumsum(hist)
    p99_bin = int(np.searchsorted(cumulative, 0.99 * counts["ok"])) if counts["ok"] else 0
    violations = [{"x": hexf(x[i]), "oracle": repr(float(ref[i])), "exact": repr(float(ex.hi[i])),
                   "ulp64": float(oracle_err[i])} for i in np.flatnonzero(broken)]
    row = {
        "n": n, "max_ulp": max_ulp, "p99_ulp": oracle.bin_upper_edge(p99_bin),
        "mean_ulp": total / counts["ok"] if counts["ok"] else 0.0,
        "max_abs": max_abs, "max_rel": max_rel,
        "special_mismatches": mismatches, "worst_points": worst,
        "over_half_ulp": counts["over_half"], "over_1_ulp": counts["over_1"],
        "over_2_ulp": counts["over_2"], "mpmath_checked": int(bits.size), "warnings": warned,
        "error": "; ".join(notes), "status": "wrong_dtype" if notes else "ok",
        "sweep": {"nan_inputs": counts["nan_inputs"], "mismatch_kinds":
                  {k: counts[k] for k in metrics.MISMATCH_KINDS},
                  "oracle": (f"{case.activation.name}.{oracle.ORACLE_VARIANT}.{case.direction} "
                             "float64 kernel" if case.activation.oracles is None else
                             f"{case.activation.name} {case.direction}: the declared float64 oracle"),
                  "oracle_bound_f64_ulp": bound, "oracle_delta_f32_ulp": oracle.delta_for(bound),
                  "max_ulp_bound": max(max_ulp, unchecked),
                  # points the oracle could not place and mpmath did not settle (over the
                  # per-chunk limit), by the threshold they straddle: each count above is
                  # exact to within these
                  "undecided": undecided,
                  "binade_max_ulp": [[int(b), float(binmax[b])] for b in np.flatnonzero(binmax >= 0)],
                  "oracle_violations": violations[:WORST]},
    }
    if violations:
        v = violations[0]
        row.update(status="error", error=(
            f"the oracle broke its bound ({bound:g} float64 ULP) at {len(violations)} of "
            f"{bits.size} points mpmath checked, e.g. x={v['x']}: oracle {v['oracle']}, exact "
            f"{v['exact']} ({v['ulp64']:.3g} ULP); the sweep's counts are not confirmed"))
    return row

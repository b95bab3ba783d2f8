"""The core call: ``audit(case, dtype, domain) -> result row``.

Kernel, reference, input domain and budget stay separate: the catalog case supplies the
kernel and reference, ``domains`` the inputs, ``reference`` the exact values, ``metrics`` the
errors, and the budget is looked up last to decide ``passed``.  Every kind of activation
(elementwise, gated, row-wise) reaches the same metrics through a list of batches: inputs
for one kernel call, how to evaluate them exactly, and how to describe an element so that
it can be replayed.
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from actbench_ulp.accuracy import exhaustive
from actbench_ulp.accuracy import row as rows
from actbench_ulp.accuracy.row import AuditRow
from actbench_ulp.core import domains, metrics
from actbench_ulp.core.budgets import Budgets
from actbench_ulp.core.catalog import runs_for_peers
from actbench_ulp.core.domains import hexf
from actbench_ulp.core.exact import Cache, Task, resolve_exact
from actbench_ulp.core.executors import local_pool
from actbench_ulp.core.peers import Impl
from actbench_ulp.core.regressions import Regressions
from actbench_ulp.kernels._narrow import BFLOAT16, round_once

__all__ = ["Batch", "Points", "audit", "batches", "call_kernel",
           "elementwise_batch", "evaluate_points", "format_value", "gated_batch", "row_batch",
           "run_audit", "sweep_row"]

def format_value(v) -> str:
    """Shortest string that round-trips in v's own dtype (float32 prints 8 digits, not 17)."""
    return str(np.asarray(v)[()])


@dataclass
class Batch:
    """Inputs for one kernel call: positional arrays, keyword arguments, the task that gives
    their exact values, a replayable description of each element and its structured input."""

    args: tuple
    kwargs: dict
    task: Task
    describe: Callable[[int], str]
    replay: Callable[[int], dict]


def elementwise_batch(case, x):
    act, ref = case.activation, case.reference
    return Batch((x,), dict(act.params), Task("elementwise", ref.name, (x,), dict(act.params), ref=ref),
                 lambda i: hexf(x.flat[i]), lambda i: {"x": hexf(x.flat[i])})


def gated_batch(case, a, b):
    return Batch((a, b), {}, Task("gated", case.reference.name, (a, b)),
                 lambda i: f"a={hexf(a[i])} b={hexf(b[i])}",
                 lambda i: {"a": hexf(a[i]), "b": hexf(b[i])})


def row_batch(case, rb):
    vjp = case.direction == "vjp"
    n = rb.x.shape[1]
    return Batch(
        (rb.x, rb.g) if vjp else (rb.x,), {"temperature": rb.tau},
        Task("rowwise", case.reference.name, (rb.x, rb.g) if vjp else (rb.x,), tau=rb.tau),
        rb.describe,
        lambda i: {"row": [hexf(v) for v in rb.x[i // n]], "g": [hexf(v) for v in rb.g[i // n]],
                   "tau": rb.tau},
    )


def batches(case, dtype: str, domain: str, n: int | None = None,
            x: np.ndarray | None = None, regressions: Regressions | None = None) -> list[Batch]:
    """The batches of ``domain`` for ``case``; ``x`` overrides an elementwise domain's inputs
    (e.g. to replay a worst input).  The search domain's are its starting points only: the
    rest depends on the implementation (``search.search_row``)."""
    act = case.activation
    if domain == "search" and x is None:
        return _search().base_batches(case, dtype)
    if domain == "regressions":
        regs = regressions or Regressions()
        if act.kind == "elementwise":
            got = regs.elementwise(case, dtype)
            return [elementwise_batch(case, got)] if got.size else []
        if act.kind == "gated":
            a, b = regs.pairs(case, dtype)
            return [gated_batch(case, a, b)] if a.size else []
        return [row_batch(case, domains.RowBatch(xr, gr, tau, "regressions"))
                for xr, gr, tau in regs.rows(case, dtype)]
    if act.kind == "elementwise":
        return [elementwise_batch(case, domains.points(act, dtype, domain, n) if x is None else x)]
    if act.kind == "gated":
        return [gated_batch(case, *domains.pairs(act, dtype, domain, n))]
    return [row_batch(case, rb) for rb in domains.row_batches(act, dtype, domain, n)]


def _converts_exactly(dtype: np.dtype) -> bool:
    """Whether every value of ``dtype`` is a float64, so that rounding it to the input's dtype
    through float64 is one rounding: floats up to 64 bits, bfloat16, bools and integers up to 32
    bits (int64 above 2**53 and long double would be rounded twice)."""
    if dtype == BFLOAT16:
        return True
    return (dtype.kind == "f" and dtype.itemsize <= 8) or dtype.kind == "b" or (
        dtype.kind in "iu" and dtype.itemsize <= 4)


def _check_output(got, like, name):
    """(result, problem, note): a result of another real dtype but the right shape is rounded
    once to the input's dtype and measured, with ``note`` saying so; anything else that is
    not an array of the input's dtype and shape is a ``problem``."""
    if not isinstance(got, np.ndarray | np.generic):
        return got, f"{name} returned {type(got).__name__}, not an array", ""
    got = np.asarray(got)
    if got.shape != like.shape:
        return got, f"{name} returned shape {got.shape} for input of shape {like.shape}", ""
    if got.dtype == like.dtype:
        return got, "", ""
    if not _converts_exactly(got.dtype):
        return got, f"{name} returned {got.dtype} for {like.dtype} input", ""
    return (round_once(got, like.dtype), "",
            f"{name} returned {got.dtype} for {like.dtype} input; rounded to {like.dtype} and audited")


def call_kernel(kernel, args: tuple, kwargs: dict):
    """(result, problem, warnings, note) of ``kernel(*args, **kwargs)``: a kernel that raises or
    returns the wrong thing fails its row; a result of another dtype comes back rounded, with
    a note; warnings it emits are recorded with the row."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = kernel(*args, **kwargs)
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}", _warning_text(caught), ""
    result, problem, note = _check_output(got, args[0], getattr(kernel, "__name__", "kernel"))
    return result, problem, _warning_text(caught), note


def _warning_text(caught) -> str:
    seen = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return "; ".join(seen)


@dataclass
class Points:
    """Every point of one implementation on a list of batches: the output, the exact value
    (rounded ``want``, unrounded ``hi + lo``), its ULP error and mismatch kind ("" for none),
    and ``where`` = (batch, element) to describe or replay it.  ``error`` is set (and the
    arrays are empty) when the kernel raised or returned the wrong thing; ``wrong_dtype`` says
    when a result of another dtype was rounded to the input's and measured."""

    got: np.ndarray
    want: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    ulps: np.ndarray
    kinds: np.ndarray
    where: list
    warnings: str = ""
    error: str = ""
    wrong_dtype: str = ""


def evaluate_points(kernel, work: list[Batch], exact: dict) -> Points:
    """Call ``kernel`` on every batch of ``work`` and measure each output against ``exact``."""
    got, want, hi, lo, where, noted, rounded = [], [], [], [], [], [], []
    for k, batch in enumerate(work):
        ex = exact[batch.task.key]
        result, problem, warned, note = call_kernel(kernel, batch.args, batch.kwargs)
        if warned:
            noted.append(warned)
        if note:
            rounded.append(note)
        if problem:
            empty = np.empty(0)
            return Points(empty, empty, empty, empty, empty, empty, [],
                          "; ".join(dict.fromkeys(noted)), problem)
        got.append(np.ravel(result))
        want.append(np.ravel(ex.want))
        hi.append(np.ravel(ex.hi))
        lo.append(np.ravel(ex.lo))
        where += [(k, i) for i in range(ex.want.size)]
    got, want, hi, lo = (np.concatenate(v) for v in (got, want, hi, lo))
    return Points(got, want, hi, lo, metrics.ulp_error(got, hi, lo, want.dtype),
                  metrics.mismatch_kind(got, want), where, "; ".join(dict.fromkeys(noted)),
                  wrong_dtype="; ".join(dict.fromkeys(rounded)))


def _search():
    # imported when called: the search builds on this module's batches and rows
    from actbench_ulp.accuracy import search

    return search


def sweep_row(case, budgets: Budgets, impl: Impl | None = None, **options) -> AuditRow:
    """The exhaustive float32 row of one implementation (``exhaustive.sweep``; ``options``
    are its keyword arguments: stride, cache, executor, progress, chunk_points)."""
    impl = impl or Impl()
    row, budget = rows.start(case, "float32", "exhaustive", budgets, impl)
    if impl.kernel(case) is None:
        return rows.absent(row)
    row.update(exhaustive.sweep(case, impl, **options))
    if row["status"] == "error":
        row["passed"] = False
        return row
    return rows.judge(row, budget, max(row["max_ulp"], row["sweep"]["max_ulp_bound"]),
                  row["status"] == "wrong_dtype", row["worst_points"][0])


def audit(case, dtype: str, domain: str, budgets: Budgets, n: int | None = None,
          x: np.ndarray | None = None, impl: Impl | None = None, exact: dict | None = None,
          work: list | None = None, cache: Cache | None = None) -> AuditRow | None:
    """Audit one implementation of a case on one domain in one dtype against the exact
    reference.  Returns None when the domain has nothing for this case (no regressions).
    ``cache`` keeps the exact values it computes (none by default)."""
    impl = impl or Impl()
    cache = cache or Cache(None)
    if domain == "search" and work is None and x is None:
        return _search().search_row(case, dtype, budgets, impl, cache)
    row, budget = rows.start(case, dtype, domain, budgets, impl)
    kernel = impl.kernel(case)
    if kernel is None:
        return rows.absent(row)
    work = batches(case, dtype, domain, n, x) if work is None else work
    if not work:
        return None
    size = sum(b.args[0].size for b in work)
    if size == 0:
        raise ValueError(f"{case.label} {dtype} {domain}: the domain has no points")
    if exact is None:
        exact = resolve_exact([b.task for b in work], cache)
    pts = evaluate_points(kernel, work, exact)
    if pts.error:
        return rows.failed(row, size, pts.error, pts.warnings)
    got, want, hi, lo, ulps, kinds, where = (pts.got, pts.want, pts.hi, pts.lo, pts.ulps,
                                             pts.kinds, pts.where)
    summary = metrics.summarize(got, want, hi, lo)
    points = [
        {"x": work[where[i][0]].describe(where[i][1]), "got": format_value(got[i]),
         "want": format_value(want[i]), "ulp": float(ulps[i]), "kind": kinds[i] or "ulp"}
        for i in summary.worst
    ]
    # the structured input (a whole row for row-wise kernels) only for the worst point, the one
    # --record-regressions stores: five 1000-element rows per row-wise result would make
    # audit.csv megabytes
    points[0]["input"] = work[where[summary.worst[0]][0]].replay(where[summary.worst[0]][1])
    row.update(summary.as_dict())
    with np.errstate(invalid="ignore"):  # a mismatch has a NaN error: not counted
        row.update({col: int(np.count_nonzero(ulps > t)) for col, t in rows.THRESHOLD_COLUMNS.items()})
    row["mpmath_checked"] = size  # every point of a sampled domain has its exact value
    row.update(worst_points=points, warnings=pts.warnings, error=pts.wrong_dtype)
    return rows.judge(row, budget, summary.max_ulp, bool(pts.wrong_dtype), points[0])


def _swept(case, dtype, domain) -> bool:
    """Whether this unit is the exhaustive float32 sweep (16-bit formats are audited like any
    domain: all 65,536 exact values, cached)."""
    return domain == "exhaustive" and dtype == "float32" and case.activation.kind == "elementwise"


def _sweepable(case, dtype) -> bool:
    return case.activation.kind == "elementwise" and dtype in domains.EXHAUSTIVE_DTYPES


def run_audit(selection, dtypes, domain_names, budgets: Budgets, n: int | None = None,
              progress=None, impls=None, cache: Cache | None = None, jobs: int = 1,
              regressions: Regressions | None = None, exact_progress=None, executor=None,
              stride: int = 1, sweep_progress=None, search_swept: bool = True,
              chunk_points: int | None = None) -> list[dict]:
    """Audit every case in ``selection`` and every implementation on every dtype and domain;
    one row each.  Exact values come from ``cache`` or are computed first, for all rows at
    once, in ``executor`` (``actbench_ulp.core.executors``) or else ``jobs`` processes; the
    exhaustive float32 sweeps (every ``stride``-th input, in chunks of ``chunk_points``) run
    there too.  ``search_swept``:
    whether to search where the exhaustive sweep covers every input (float32 and 16-bit
    elementwise kernels)."""
    impls = impls or [Impl()]
    cache = cache or Cache(None)
    regressions = regressions or Regressions()
    units = []
    for case in selection:
        for dtype in dtypes:
            for domain in domain_names:
                if not case.takes(dtype):
                    continue  # e.g. 16-bit formats: elementwise accurate kernels only
                if _swept(case, dtype, domain):
                    units.append((case, dtype, domain, None))
                elif domain == "search" and not search_swept and _sweepable(case, dtype):
                    continue
                elif domain != "exhaustive" or dtype in domains.SIXTEEN_BIT:
                    units.append((case, dtype, domain,
                                  batches(case, dtype, domain, n, regressions=regressions)))
    owned = None
    if executor is None and jobs > 1 and any(work is None for *_, work in units):
        executor = owned = local_pool(jobs)  # one pool for every sweep: its processes stay warm
    try:
        tasks = [b.task for *_, work in units if work for b in work]
        exact = resolve_exact(tasks, cache, jobs, exact_progress, executor=executor)
        rows, edges = [], {}
        for impl in impls:
            for case, dtype, domain, work in units:
                if impl.name != "ours" and not runs_for_peers(case, selection):
                    continue
                if work is None:
                    row = sweep_row(case, budgets, impl, stride=stride, cache=cache,
                                    executor=executor, progress=sweep_progress,
                                    chunk_points=chunk_points)
                elif domain == "search":
                    row = _search().search_row(case, dtype, budgets, impl, cache, executor, jobs,
                                               exact=exact, base=work, edges=edges)
                else:
                    row = audit(case, dtype, domain, budgets, n, impl=impl, exact=exact, work=work)
                if row is not None:
                    rows.append(row)
                    if progress:
                        progress(row)
    finally:
        if owned is not None:
            owned.shutdown(cancel_futures=True)
    return rows

"""The core call: ``audit(case, dtype, domain) -> result row``.

Kernel, reference, input domain and budget stay separate: the catalog case supplies the
kernel and reference, ``domains`` the inputs, ``reference`` the exact values, ``metrics`` the
errors, and the budget is looked up last to decide ``passed``.  Every kind of activation
(elementwise, gated, row-wise) reaches the same metrics through a list of batches: inputs
for one kernel call, how to evaluate them exactly, and how to describe an element so that
it can be replayed.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import reference

from . import domains, metrics
from .budgets import Budgets
from .domains import hexf

__all__ = ["COLUMNS", "Batch", "audit", "batches", "format_value", "run_audit"]

# Result-table columns, in order; the first block is the schema promised to users.
COLUMNS = [
    "activation", "variant", "direction", "dtype", "domain", "n",
    "max_ulp", "p99_ulp", "mean_ulp", "max_abs", "max_rel", "special_mismatches",
    "worst_input", "worst_output", "worst_expected", "budget_max_ulp", "passed",
    "worst_ulp", "worst_kind", "budget_reason", "error", "worst_points",
]


def format_value(v) -> str:
    """Shortest string that round-trips in v's own dtype (float32 prints 8 digits, not 17)."""
    return str(np.asarray(v)[()])


@dataclass
class Batch:
    """Inputs for one kernel call: positional arrays, keyword arguments, their exact results
    (computed on demand) and a replayable description of each element."""

    args: tuple
    kwargs: dict
    exact: Callable[[], reference.Exact]
    describe: Callable[[int], str]


def batches(case, dtype: str, domain: str, n: int | None = None,
            x: np.ndarray | None = None) -> list[Batch]:
    """The batches of ``domain`` for ``case``; ``x`` overrides an elementwise domain's inputs
    (e.g. to replay a worst input)."""
    act, ref = case.activation, case.reference
    if act.kind == "elementwise":
        x = domains.points(act, dtype, domain, n) if x is None else x
        return [Batch((x,), dict(act.params),
                      lambda: reference.evaluate(ref, x, params=act.params, name=ref.name),
                      lambda i: hexf(x.flat[i]))]
    if act.kind == "gated":
        a, b = domains.pairs(act, dtype, domain, n)
        return [Batch((a, b), {}, lambda: reference.evaluate(ref, a, b, name=ref.name),
                      lambda i: f"a={hexf(a[i])} b={hexf(b[i])}")]
    vjp = case.direction == "vjp"
    out = []
    for rb in domains.row_batches(act, dtype, domain, n):
        out.append(Batch(
            (rb.x, rb.g) if vjp else (rb.x,), {"temperature": rb.tau},
            lambda rb=rb: reference.evaluate_rows(ref, rb.x, rb.g if vjp else None, rb.tau,
                                                  name=ref.name),
            rb.describe,
        ))
    return out


def _check_output(got, like, name):
    if not isinstance(got, np.ndarray | np.generic):
        return f"{name} returned {type(got).__name__}, not an array"
    got = np.asarray(got)
    if got.dtype != like.dtype:
        return f"{name} returned {got.dtype} for {like.dtype} input"
    if got.shape != like.shape:
        return f"{name} returned shape {got.shape} for input of shape {like.shape}"
    return ""


def _call(kernel, batch):
    """(result, problem): a kernel that raises or returns the wrong thing fails its row."""
    try:
        got = kernel(*batch.args, **batch.kwargs)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return got, _check_output(got, batch.args[0], getattr(kernel, "__name__", "kernel"))


def audit(case, dtype: str, domain: str, budgets: Budgets, n: int | None = None,
          x: np.ndarray | None = None) -> dict:
    """Audit one kernel on one domain in one dtype against the exact reference."""
    act = case.activation
    budget = budgets.get(act.name, case.variant.name, case.direction, dtype, domain)
    row = {
        "activation": act.name, "variant": case.variant.name, "direction": case.direction,
        "dtype": dtype, "domain": domain,
        "budget_max_ulp": budget.max_ulp, "budget_reason": budget.reason, "error": "",
    }
    work = batches(case, dtype, domain, n, x)
    size = sum(b.args[0].size for b in work)
    if size == 0:
        raise ValueError(f"{case.label} {dtype} {domain}: the domain has no points")
    got, want, hi, lo, where = [], [], [], [], []
    for k, batch in enumerate(work):
        exact = batch.exact()
        result, problem = _call(case.kernel, batch)
        if problem:
            row.update(n=size, error=problem, passed=False, special_mismatches=0, worst_points=[])
            return row
        got.append(np.ravel(result))
        want.append(np.ravel(exact.want))
        hi.append(np.ravel(exact.hi))
        lo.append(np.ravel(exact.lo))
        where += [(k, i) for i in range(exact.want.size)]
    got, want, hi, lo = (np.concatenate(v) for v in (got, want, hi, lo))
    summary = metrics.summarize(got, want, hi, lo)
    ulps = metrics.ulp_error(got, hi, lo, want.dtype)
    kinds = metrics.mismatch_kind(got, want)
    points = [
        {"x": work[where[i][0]].describe(where[i][1]), "got": format_value(got[i]),
         "want": format_value(want[i]), "ulp": float(ulps[i]), "kind": kinds[i] or "ulp"}
        for i in summary.worst
    ]
    worst = points[0]
    row.update(summary.as_dict())
    row.update(
        worst_input=worst["x"], worst_output=worst["got"], worst_expected=worst["want"],
        worst_ulp=worst["ulp"], worst_kind=worst["kind"],
        passed=bool(summary.special_mismatches == 0 and summary.max_ulp <= budget.max_ulp),
        worst_points=points,
    )
    return row


def run_audit(selection, dtypes, domain_names, budgets: Budgets, n: int | None = None,
              progress=None) -> list[dict]:
    """Audit every case in ``selection`` on every dtype and domain; one row each."""
    rows = []
    for case in selection:
        for dtype in dtypes:
            for domain in domain_names:
                rows.append(audit(case, dtype, domain, budgets, n))
                if progress:
                    progress(rows[-1])
    return rows

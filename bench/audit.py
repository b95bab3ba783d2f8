"""The core call: ``audit(case, dtype, domain) -> result row``.

Kernel, reference, input domain and budget stay separate: the catalog case supplies the
kernel and reference, ``domains`` the inputs, ``reference.evaluate`` the exact values,
``metrics`` the errors, and the budget is looked up last to decide ``passed``.
"""

import numpy as np

import reference

from . import domains, metrics
from .budgets import Budgets

__all__ = ["COLUMNS", "audit", "format_value", "run_audit", "worst_points"]

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


def _hex(x) -> str:
    """float.hex without the trailing zeros a float32 gets as a float64: 0x1.154246p+4."""
    h = float(x).hex()
    if "p" not in h:
        return h  # inf, nan
    mant, exp = h.split("p")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return f"{mant}p{exp}"


def worst_points(x, got, exact: reference.Exact, summary: metrics.ErrorSummary) -> list[dict]:
    """The worst inputs of a row, as replayable records (input in hex)."""
    flat_x, flat_got = np.ravel(x), np.ravel(got)
    want = np.ravel(exact.want)
    ulps = metrics.ulp_error(flat_got, np.ravel(exact.hi), np.ravel(exact.lo), want.dtype)
    kinds = metrics.mismatch_kind(flat_got, want)
    return [
        {
            "x": _hex(flat_x[i]),
            "got": format_value(flat_got[i]),
            "want": format_value(want[i]),
            "ulp": float(ulps[i]),
            "kind": kinds[i] or "ulp",
        }
        for i in summary.worst
    ]


def _check_output(got, x, name):
    if not isinstance(got, np.ndarray) and not isinstance(got, np.generic):
        return f"{name} returned {type(got).__name__}, not an array"
    got = np.asarray(got)
    if got.dtype != x.dtype:
        return f"{name} returned {got.dtype} for {x.dtype} input"
    if got.shape != x.shape:
        return f"{name} returned shape {got.shape} for input of shape {x.shape}"
    return ""


def audit(case, dtype: str, domain: str, budgets: Budgets, n: int | None = None,
          x: np.ndarray | None = None) -> dict:
    """Audit one kernel on one domain in one dtype against the exact reference.

    ``x`` overrides the domain's generated inputs (e.g. to replay a worst input)."""
    act = case.activation
    budget = budgets.get(act.name, case.variant.name, case.direction, dtype, domain)
    row = {
        "activation": act.name, "variant": case.variant.name, "direction": case.direction,
        "dtype": dtype, "domain": domain,
        "budget_max_ulp": budget.max_ulp, "budget_reason": budget.reason, "error": "",
    }
    if x is None:
        x = domains.points(act, dtype, domain, n)
    if x.size == 0:
        raise ValueError(f"{case.label} {dtype} {domain}: the domain has no points")
    exact = reference.evaluate(case.reference, x, act.params, name=case.reference.name)
    try:
        got = case.kernel(x, **act.params)
        problem = _check_output(got, x, getattr(case.kernel, "__name__", "kernel"))
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        row.update(n=int(x.size), error=problem, passed=False, special_mismatches=0,
                   worst_points=[])
        return row
    got = np.asarray(got)
    summary = metrics.summarize(got, exact.want, exact.hi, exact.lo)
    points = worst_points(x, got, exact, summary)
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

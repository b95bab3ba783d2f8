"""The audit row: one implementation of one case, in one dtype, on one domain.

``AuditRow`` is the row's type, every column named and typed once: ``COLUMNS`` (the order of
``audit.csv``) is read from it.  Every domain builds its row the same way: ``start`` (what the
row is about and its budget), then the domain's measurement (``audit.audit`` for sampled
points and the search, ``exhaustive.confirm`` for the sweep), then ``judge`` (the one rule for
``passed`` and ``status``); ``absent`` where the implementation has no such function.  A plain
dict at run time, so a list of rows is a ``pandas.DataFrame`` as it stands.
"""

from typing import Literal, TypedDict

from actbench_ulp.accuracy import oracle

__all__ = ["COLUMNS", "THRESHOLD_COLUMNS", "AuditRow", "Status", "WorstPoint", "absent", "failed",
           "judge", "start"]

Status = Literal["ok", "failed", "error", "wrong_dtype", "absent"]


class WorstPoint(TypedDict, total=False):
    x: str  # the input, hex (gated: "a=… b=…"; row-wise: the element and its row)
    got: str  # the implementation's output, shortest round-trip string in its dtype
    want: str  # the exact value rounded once to the dtype
    ulp: float  # error in ULPs of the dtype at the exact value
    kind: str  # "ulp", or the special-value mismatch: "nan", "infinity", "zero_sign"
    input: dict  # the worst point only: its structured input, to replay it


class AuditRow(TypedDict, total=False):
    # the schema promised to users: what the row is about, its error, its worst input, budget
    activation: str
    variant: str  # ours: the variant; every other implementation: "-"
    direction: str  # forward, derivative, d_a, d_b, vjp
    dtype: str
    domain: str  # special, thresholds, core, wide, search, exhaustive, regressions
    n: int  # points measured
    max_ulp: float  # largest error in ULPs of the dtype against the exact value
    p99_ulp: float
    mean_ulp: float
    max_abs: float
    max_rel: float
    special_mismatches: int  # NaN, infinity or zero-sign results where the exact value differs
    worst_input: str
    worst_output: str
    worst_expected: str
    budget_max_ulp: float  # the budget (budgets.toml, else the standard target)
    passed: bool | None  # None: absent
    # how it went
    impl: str  # ours, numpy-seed, scipy, torch, jax, module:function
    status: Status
    worst_ulp: float
    worst_kind: str
    budget_reason: str
    error: str  # what went wrong (status error / wrong_dtype), else ""
    warnings: str  # warnings the implementation raised, recorded rather than raised
    worst_points: list[WorstPoint]  # the worst few, worst first
    over_half_ulp: int  # points above each threshold (THRESHOLD_COLUMNS)
    over_1_ulp: int
    over_2_ulp: int
    mpmath_checked: int  # points whose exact value mpmath computed (the sweep: the decisive ones)
    sweep: dict  # the exhaustive sweep's or the search's own account (stride, oracle, chunks…)
    max_is: Literal["proved", "lower bound"]  # only a sweep of every input proves its maximum


COLUMNS = list(AuditRow.__annotations__)
THRESHOLD_COLUMNS = {f"{name}_ulp": t for name, t in oracle.THRESHOLDS.items()}  # AuditRow's over_*


def start(case, dtype: str, domain: str, budgets, impl) -> tuple[AuditRow, object]:
    """(row, budget): the fields every row has before anything is measured."""
    act = case.activation
    budget = budgets.get_any(act.name, case.variant.name, case.direction, dtype, domain)
    row: AuditRow = {
        "impl": impl.name, "activation": act.name,
        "variant": case.variant.name if impl.name == "ours" else "-",
        "direction": case.direction, "dtype": dtype, "domain": domain,
        "budget_max_ulp": budget.max_ulp, "budget_reason": budget.reason, "error": "",
        "warnings": "", "status": "ok",
        "max_is": "proved" if domain == "exhaustive" else "lower bound",
    }
    return row, budget


def judge(row: AuditRow, budget, bound: float, wrong_dtype: bool, worst: WorstPoint) -> AuditRow:
    """The one rule for ``passed`` and ``status``, every domain: no special-value mismatch and
    the maximum (``bound``: the sweep's bound on it, which a candidate mpmath did not settle
    may raise) within the budget; a result of the wrong dtype fails whatever its error.  The
    worst point's fields go with it."""
    within = bool(row["special_mismatches"] == 0 and bound <= budget.max_ulp)
    row.update(worst_input=worst["x"], worst_output=worst["got"], worst_expected=worst["want"],
               worst_ulp=worst["ulp"], worst_kind=worst["kind"], passed=within and not wrong_dtype,
               status="wrong_dtype" if wrong_dtype else "ok" if within else "failed")
    return row


def failed(row: AuditRow, n: int, error: str, warnings: str = "") -> AuditRow:
    """An implementation that raised, or whose measurement broke: an error row."""
    row.update(n=n, error=error, passed=False, status="error", special_mismatches=0,
               worst_points=[], warnings=warnings)
    return row


def absent(row: AuditRow) -> AuditRow:
    """The implementation has no such function: shown, neither passed nor failed."""
    row.update(n=0, passed=None, status="absent", special_mismatches=0, worst_points=[])
    return row

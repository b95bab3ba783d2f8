"""The accuracy gate: every catalog row within its budget, and a wrong kernel is caught.

This is the project's CI gate: a kernel that leaves its budget fails here, with its worst
inputs in the message.
"""

import math

import numpy as np
import pytest
from numba import vectorize

from actbench_ulp.accuracy import audit, table
from actbench_ulp.core import domains
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.core.catalog import CATALOG, DTYPES, Case, Variant, cases
from actbench_ulp.core.exact import Cache, default_cache_dir

BUDGETS = load_budgets()
CASES = list(cases())


QUICK = domains.PROFILES["quick"]["domains"]  # what `actbench audit` runs by default


@pytest.fixture(scope="module")
def exact_cache():
    """The command line's exact-value cache ($ACTBENCH_CACHE or ~/.cache/actbench, read
    before the per-test private one is set): entries are keyed by the reference's source and
    the inputs' bytes, so sharing them is safe, and after `actbench audit` (as .ci/run runs it
    first) this module's search computes no exact value again."""
    return Cache(default_cache_dir())


@pytest.mark.parametrize(("case", "dtype"), [(c, dt) for c in CASES for dt in DTYPES if c.takes(dt)],
                         ids=[f"{c.label}-{dt}" for c in CASES for dt in DTYPES if c.takes(dt)])
def test_kernel_within_budget_on_every_domain(case, dtype, exact_cache):
    # the profile's domains as `actbench audit` runs them: no search where the sweep covers
    skip = not domains.PROFILES["quick"]["search_swept"] and (
        case.activation.kind == "elementwise" and dtype in domains.EXHAUSTIVE_DTYPES)
    rows = [audit.audit(case, dtype, dom, BUDGETS, cache=exact_cache) for dom in QUICK
            if not (dom == "search" and skip)]
    report = table.failures_report(table.to_frame([r for r in rows if r is not None]))
    assert not report, "\n".join(report)


@vectorize(["float32(float32)", "float64(float64)"])
def _naive_gelu_ufunc(x):
    # the textbook form: 1 + erf cancels in the negative tail
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def _naive_gelu(x):
    with np.errstate(invalid="ignore"):  # -inf·0 at x = -inf: the NaN is what we test for
        return _naive_gelu_ufunc(x)


def _naive_case():
    act = CATALOG["gelu"]
    naive = Variant("naive", {"forward": _naive_gelu}, "x/2·(1 + erf(x/√2))")
    return Case(act, naive, "forward")


class _Budgets:
    """The accurate gelu's budgets, lent to the naive variant."""

    def get_any(self, activation, variant, direction, dtype, domain):
        return BUDGETS.get_any(activation, "accurate", direction, dtype, domain)


def test_naive_gelu_is_caught_with_its_worst_input():
    row = audit.audit(_naive_case(), "float32", "core", _Budgets())
    assert not row["passed"]
    # the worst point is deep in the negative tail, where 1 + erf(x/√2) rounds to 0
    assert float.fromhex(row["worst_input"]) < -5
    assert row["max_ulp"] > 1e6
    report = table.failures_report(table.to_frame([row]))
    assert report[0].startswith("FAIL gelu.naive.forward float32 core: max ")
    assert report[1].strip().startswith(f"x={row['worst_input']} got ")


def test_naive_gelu_minus_infinity_is_a_special_value_mismatch():
    row = audit.audit(_naive_case(), "float32", "special", _Budgets())
    assert row["special_mismatches"] >= 1 and not row["passed"]
    assert "x=-inf got nan want -0.0 (nan)" in "\n".join(table.failures_report(table.to_frame([row])))


def test_kernel_returning_wrong_dtype_is_rounded_measured_and_fails_its_row():
    act = CATALOG["sigmoid"]
    # float64 sigmoid: once rounded to float32 it is within half an ULP almost everywhere,
    # yet the row fails, because a caller gets float64
    promoting = Variant("promoting", {"forward": lambda x: (1 / (1 + np.exp(-x.astype(np.float64))))}, "")
    row = audit.audit(Case(act, promoting, "forward"), "float32", "core", _Budgets(), n=200)
    assert row["status"] == "wrong_dtype" and not row["passed"]
    assert row["error"] == "<lambda> returned float64 for float32 input; rounded to float32 and audited"
    assert row["max_ulp"] <= 0.5 + 1e-6  # float64 error (~1e-16) is far below float32's half ULP
    report = table.failures_report(table.to_frame([row]))
    assert report[0] == "FAIL sigmoid.promoting.forward float32 core: " + row["error"]


def test_a_float64_result_for_bfloat16_input_is_rounded_once():
    # float64 sigmoid rounded once (through round-to-odd float32) is correctly rounded
    # bfloat16 wherever float64's own error is far from a bfloat16 midpoint: at most half an ULP
    act = CATALOG["sigmoid"]
    promoting = Variant("promoting", {"forward": lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))}, "")
    row = audit.audit(Case(act, promoting, "forward"), "bfloat16", "core", _Budgets(), n=200)
    assert row["status"] == "wrong_dtype" and row["max_ulp"] <= 0.5 + 1e-6
    assert row["error"] == "<lambda> returned float64 for bfloat16 input; rounded to bfloat16 and audited"


def test_kernel_that_raises_fails_its_row():
    def boom(x):
        raise RuntimeError("no")

    act = CATALOG["sigmoid"]
    row = audit.audit(Case(act, Variant("boom", {"forward": boom}, ""), "forward"), "float64",
                      "special", _Budgets())
    assert not row["passed"] and row["error"] == "RuntimeError: no"


def test_empty_domain_is_an_error():
    with pytest.raises(ValueError, match="the domain has no points"):
        audit.audit(CASES[0], "float32", "core", BUDGETS, x=np.array([], np.float32))


def test_exhaustive_16_bit_sweep_in_a_process_pool():
    # every float16 and bfloat16 input of gelu, both directions: within the float32 budgets
    rows = audit.run_audit([c for c in CASES if c.activation.name == "gelu"],
                           ["float16", "bfloat16"], ["exhaustive"], BUDGETS, jobs=2)
    assert len(rows) == 4 and all(r["n"] == 65536 for r in rows)
    assert {r["variant"] for r in rows} == {"accurate"}  # the simd kernels take no 16-bit input
    report = table.failures_report(table.to_frame(rows))
    assert not report, "\n".join(report)
    assert max(r["max_ulp"] for r in rows) <= 0.5 + 1e-9  # computed in float64, rounded once


def test_every_kind_of_row_is_an_audit_row():
    """Sampled, absent, error and exhaustive rows come from one builder (``accuracy.row``):
    each holds only ``AuditRow``'s columns, with a status that type allows, and a measured row
    holds every one of them (``sweep`` is the sweep's and the search's own)."""
    import typing

    from actbench_ulp.accuracy.row import COLUMNS, AuditRow, Status
    from actbench_ulp.core.peers import resolve

    gelu, = cases(["gelu"], ["accurate"], ["derivative"])
    raising = Case(gelu.activation, Variant("raising", {"derivative": _raises}, "raises"),
                   "derivative")
    built = {
        "sampled": audit.audit(gelu, "float32", "core", BUDGETS, n=64),
        "absent": audit.audit(gelu, "float32", "core", BUDGETS, n=64, impl=resolve("scipy")),
        "error": audit.audit(raising, "float32", "core", BUDGETS, n=64),
        "exhaustive": audit.sweep_row(gelu, BUDGETS, stride=(1 << 20) + 1, cache=Cache(None)),
    }
    statuses = typing.get_args(Status)
    for kind, row in built.items():
        assert set(row) <= set(COLUMNS), (kind, set(row) - set(COLUMNS))
        assert row["status"] in statuses, (kind, row["status"])
    assert set(built["sampled"]) == set(COLUMNS) - {"sweep"}
    assert set(built["exhaustive"]) == set(COLUMNS)
    assert [built[k]["status"] for k in built] == ["ok", "absent", "error", "ok"]
    assert list(AuditRow.__annotations__) == COLUMNS


def _raises(x):
    raise ValueError("boom")

"""Assertions for a project's own test suite, in the manner of ``numpy.testing``.

    from actbench_ulp.testing import assert_accurate

    def test_my_gelu_is_accurate():
        assert_accurate(my_gelu, "gelu", dtype="float32")

A failure raises ``AssertionError`` naming each failing domain, by how much it fails, and its
worst inputs as hex floats (paste one into ``float.fromhex`` to replay it) with the output,
the correctly rounded value and the error in ULP.
"""

import json

from actbench_ulp import api

__all__ = ["WORST_POINTS_SHOWN", "assert_accurate", "failure_message"]

WORST_POINTS_SHOWN = 5  # per failing row: enough to see a pattern, few enough to read


def assert_accurate(fn, activation: str, *, dtype, max_ulp: float | None = None,
                    direction="forward", domains=None, derivative=None, **audit_options):
    """Audit ``fn`` as ``activation`` (``actbench.audit``) and raise ``AssertionError`` if any
    row fails: more ULP than ``max_ulp`` (by default the budget of our accurate kernel), a
    special value (NaN, infinity, sign of zero) that differs from the reference's, or an
    exception or wrong output type from ``fn``.  Returns the audit's DataFrame when it
    passes.  ``audit_options`` go to ``actbench.audit`` (points, profile, cache, jobs, ...)."""
    __tracebackhide__ = True  # pytest: the failure points at the caller's line
    df = api.audit(fn, activation, dtype=dtype, direction=direction, domains=domains,
                   budget=max_ulp, derivative=derivative, **audit_options)
    message = failure_message(df)
    if message:
        raise AssertionError(message)
    return df


def failure_message(df) -> str:
    """What an audit table's failing rows say, for a person: '' when every row passes."""
    from actbench_ulp.accuracy.table import failed

    failing = df[failed(df)]
    if failing.empty:
        return ""
    impl = df["impl"].iloc[0]
    lines = [f"{impl} fails {len(failing)} of {len(df)} audited rows"]
    for (activation, direction, dtype), group in failing.groupby(
            ["activation", "direction", "dtype"], sort=False):
        lines.append(f"{activation} {direction} {dtype}:")
        for r in group.itertuples():
            if r.status == "error":
                lines.append(f"  {r.domain}: {r.error} ({r.n} points)")
                continue
            over = ">" if r.max_ulp > r.budget_max_ulp else "<="
            reason = f", {r.budget_reason}" if r.budget_reason else ""
            mismatches = int(r.special_mismatches)
            # a result of the wrong dtype is measured after rounding, and fails for its dtype
            wrong_dtype = f"; {r.error}" if r.status == "wrong_dtype" else ""
            lines.append(f"  {r.domain}: max {r.max_ulp:.4g} ULP {over} budget {r.budget_max_ulp:g}"
                         f"{reason} ({r.n} points, {mismatches} special-value "
                         f"mismatch{'' if mismatches == 1 else 'es'}){wrong_dtype}")
            # the worst points within budget would only hide the failing ones
            out_of_budget = [p for p in json.loads(r.worst_points)
                             if p["kind"] != "ulp" or p["ulp"] > r.budget_max_ulp]
            for p in out_of_budget[:WORST_POINTS_SHOWN]:
                lines.append(f"    {_input(p['x'])} {_outcome(p)}")
    return "\n".join(lines)


def _input(described: str) -> str:
    # an elementwise point is its bare hex input; gated and row-wise points name their parts
    return described if "=" in described else f"x={described}"


def _outcome(p: dict) -> str:
    error = f"{p['ulp']:.4g} ulp" if p["kind"] == "ulp" else f"{p['kind']} mismatch"
    return f"got {p['got']} want {p['want']} ({error})"

"""The report's table of our fastest variant within the standard accuracy target against the
faster of torch and jax (``speed.timing.best_within_target``), under the speed section, with
the machine it was timed on: a ratio of timings means little without it."""

import numpy as np
import pandas as pd

from actbench_ulp.core.budgets import target
from actbench_ulp.gate.compare import fmt
from actbench_ulp.report.document import Report

__all__ = ["add_section"]

_SHOWN = ["activation", "direction", "dtype", "size", "row_length", "variant", "max_ulp", "max_over",
          "ns_per_element", "noise", "peer", "peer_max_ulp", "peer_ns_per_element", "ratio_vs_peer",
          "excluded"]


def _cell(v) -> str:
    if v is None or v is pd.NA or v == "":  # pd.NA: the row length of a kernel that has no rows
        return "—"
    return fmt(v, ".3g") if isinstance(v, float | np.floating) else str(v)


def add_section(rep: Report, rs, speed: pd.DataFrame) -> None:
    """The table, computed from the run's timings (``speed``, ``speed_table``'s) and the audit
    in ``rs``; a notice instead where there is no audit (nothing can count as within target)."""
    from actbench_ulp.speed.timing import best_within_target

    if not (speed["impl"] == "ours").any():
        return
    rep.add("heading", "Our fastest variant within the accuracy target", level=3, anchor="speed-best")
    if rs.audit is None:
        rep.add("notice", "No table of our fastest variant within the accuracy target: it needs the "
                f"audit's max ULP. Run `actbench audit --out {rs.path}` to add it.")
        return
    best = best_within_target(speed, rs.audit)
    meta = rs.speed_meta or {}
    cpu = meta.get("cpu") or {}
    compiled = meta.get("compiler_target") or {}
    torch = (meta.get("peers") or {}).get("torch") or {}
    isa = (f", compiled for {compiled.get('cpu_name', '?')} with {compiled.get('vector_bits', '?')}-bit "
           "vectors" if compiled else "")
    isa += f", torch dispatching {torch['cpu_capability']}" if torch.get("cpu_capability") else ""
    targets = "; ".join(f"{dt}: forward ≤ {target(dt, 'forward'):g} ULP, other directions ≤ "
                        f"{target(dt, 'vjp'):g}" for dt in dict.fromkeys(best["dtype"]))
    rep.add("text", f"For each timed case, the fastest of our variants whose worst audited error "
            f"(max ULP over every audited domain) is within the standard target ({targets}), "
            "not merely within its own budget; the faster of torch and jax in the same run, and "
            "its own worst audited error where the audit has it (peer_max_ulp); "
            "ratio_vs_peer is ours over the peer's ns/element (below 1: ours is faster). "
            "excluded: variants over the target, or not audited. "
            f"Timed on {cpu.get('model', '?')} ({cpu.get('logical_cores', '?')} logical cores{isa}), "
            f"{meta.get('threads', '?')} thread(s), {meta.get('created', '?')}.")
    cols = [c for c in _SHOWN if c != "row_length" or best[c].notna().any()]
    rep.add("table", header=cols, rows=[[_cell(v) for v in r] for r in best[cols].itertuples(index=False)],
            failing=[False] * len(best))

"""A comparison as Markdown: the verdict first, then what failed and why, then the rest folded
away — made for a CI step summary ($GITHUB_STEP_SUMMARY) and readable in a terminal."""

import json

import numpy as np
import pandas as pd

from actbench_ulp.accuracy.table import point_outcome
from actbench_ulp.gate.compare import Comparison, fmt_size
from actbench_ulp.gate.compare import fmt as _g

__all__ = ["markdown", "markdown_table"]


def _kernel(r) -> str:
    if bool(getattr(r, "drift", False)):
        return f"(every {r.bound}-bound kernel: the run's drift)"
    who = "" if r.impl == "ours" else f"[{r.impl}] "
    return f"{who}{r.activation}.{r.variant}.{r.direction}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---:" if h.endswith(("ULP", "ns/elem", "ratio", "q", "budget", "size")) else "---"
             for h in header]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _counts(series: pd.Series, order: list[str]) -> str:
    counts = series.value_counts()
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k, 0))


def _accuracy(df: pd.DataFrame, worst_points: int) -> list[str]:
    order = ["regressed", "out of budget", "missing", "added", "worse", "better", "same"]
    lines = [f"### Accuracy: {len(df)} rows — {_counts(df['verdict'], order)}", ""]
    shown = df[df["failing"] | df["verdict"].isin(["worse", "better", "missing", "added"])]
    if len(shown):
        rows = [[_kernel(r), r.dtype, r.domain, _g(r.base_max_ulp), _g(r.new_max_ulp),
                 _g(r.budget, "g"), ("**FAIL** " if r.failing else "") + r.verdict, r.reason]
                for r in shown.itertuples()]
        header = ["kernel", "dtype", "domain", "base max ULP", "new max ULP", "budget", "verdict",
                  "why"]
        lines += [*markdown_table(header, rows), ""]
    failing = df[df["failing"]]
    if len(failing) and worst_points:
        lines.append("Worst inputs of the failing rows (hex, so `float.fromhex` replays them):")
        lines.append("")
        for r in failing.itertuples():
            pts = json.loads(r.worst_points) if isinstance(r.worst_points, str) and r.worst_points else []
            for p in pts[:worst_points]:
                lines.append(f"- `{_kernel(r)} {r.dtype} {r.domain}`: `x={p['x']}` {point_outcome(p)}")
        lines.append("")
    changed = df[df["budget_change"] != ""]
    if len(changed):
        lines.append("Budget changes (the new budget file applies):")
        lines.append("")
        for r in changed.drop_duplicates([*["impl", "activation", "variant", "direction",
                                            "dtype"]]).itertuples():
            why = f" — {r.budget_reason}" if isinstance(r.budget_reason, str) and r.budget_reason else ""
            lines.append(f"- {r.budget_change}: `{_kernel(r)} {r.dtype}` {_g(r.base_budget, 'g')} → "
                         f"{_g(r.budget, 'g')} ULP{why}")
        lines.append("")
    return lines


def _paired(r) -> str:
    """The paired ratio with its interval: '1.25 [1.18, 1.32]'."""
    if not np.isfinite(getattr(r, "paired_ratio", np.nan)):
        return "—"
    if not np.isfinite(r.paired_low):
        return f"{r.paired_ratio:.3f}"
    return f"{r.paired_ratio:.3f} [{r.paired_low:.3f}, {r.paired_high:.3f}]"


def _speed_rows(df: pd.DataFrame) -> list[list[str]]:
    paired = "paired_ratio" in df.columns
    return [[_kernel(r), r.dtype, fmt_size(r.size) if r.size else "all",
             str(r.threads),
             _g(r.base_ns, ".3g"), _g(r.new_ns, ".3g"),
             r.normalized_by if isinstance(r.normalized_by, str) else "—", _g(r.ratio, ".3f"),
             *([_paired(r)] if paired else []),
             _g(r.threshold, ".3f"),
             _g(r.q_faster if r.verdict == "faster" else r.q_slower, ".2g"),
             ("**FAIL** " if r.failing else "") + r.verdict] for r in df.itertuples()]


def _speed(df: pd.DataFrame, settings: dict) -> list[str]:
    order = ["slower", "missing", "unconfirmed", "faster", "added", "same", "untestable"]
    header = ["kernel", "dtype", "size", "threads", "base ns/elem", "new ns/elem", "normalised by",
              "normalised ratio", *(["paired ratio [95 %]"] if "paired_ratio" in df.columns else []),
              "threshold ratio", "q", "verdict"]
    how = {"drift": "round times ÷ the run's drift (the median change of every compute- or "
                    "memory-bound benchmark against the baseline, judged on its own in the "
                    "*every …-bound kernel* row)",
           "run": "round times ÷ the run's yardstick (np.copyto of the same bytes for "
                  "memory-bound kernels, a scalar libm loop for compute-bound ones)",
           "beside": "round times ÷ a yardstick timed beside them (np.copyto of the same "
                     "bytes, or a scalar libm loop)",
           "none": "raw round times"}[settings.get("normalize", "drift")]
    lines = [f"### Speed: {len(df)} benchmarks — {_counts(df['verdict'], order)}", "",
             f"One-sided Mann–Whitney U on {how}; Benjamini–Hochberg false discovery rate "
             f"{settings.get('alpha')}; a change counts only if the ratio of medians passes the "
             f"threshold: {settings.get('min_effect', 0):.0%} beyond the slowest of the "
             f"baseline's own runs ({settings.get('min_effect_memory', 0):.0%} for memory-bound "
             "kernels, whose drift between runs is larger). Peers' speed (numpy-seed, scipy, "
             "torch, jax) is reported, not gated.", ""]
    if "paired_ratio" in df.columns:
        lines += ["Base and new were timed on this machine benchmark by benchmark in "
                  "alternation (a session a run): *paired ratio* is the geometric mean of new ÷ "
                  "base over rounds timed back to back (each ÷ its session's drift), with its "
                  "95 % Student-t interval.", ""]
    notable = df[df["verdict"].isin(["slower", "unconfirmed", "faster", "missing", "added"])]
    if len(notable):
        lines += [*markdown_table(header, _speed_rows(notable)), ""]
    if settings.get("confirmed"):
        lines += ["Every benchmark the first run found slower was rerun in a fresh process "
                  "(both sides, in alternation again, where base and new ran here); "
                  "*unconfirmed* ones were not slower the second time (transient noise) and do "
                  "not fail the gate.", ""]
    untestable = int((df["verdict"] == "untestable").sum())
    if untestable:
        lines += [f"{untestable} benchmark(s) had fewer than 5 rounds on a side and were not "
                  "tested: give actbench bench more --rounds.", ""]
    lines += ["<details><summary>All benchmarks</summary>", "",
              *markdown_table(header, _speed_rows(df)), "", "</details>", ""]
    return lines


def markdown(c: Comparison, title: str = "actbench compare", worst_points: int = 3) -> str:
    fails = []
    if c.accuracy is not None and c.accuracy["failing"].any():
        fails.append(f"{int(c.accuracy['failing'].sum())} accuracy row(s)")
    if c.speed is not None and c.speed["failing"].any():
        fails.append(f"{int(c.speed['failing'].sum())} benchmark(s)")
    verdict = "FAIL — " + " and ".join(fails) if fails else "PASS"
    lines = [f"## {title}: {verdict}", "",
             f"- base: {c.base.label}" + (f" on {c.base.machine}" if c.base.machine else ""),
             f"- new: {c.new.label}" + (f" on {c.new.machine}" if c.new.machine else ""), ""]
    lines += [f"> {n}" for n in c.notes] + ([""] if c.notes else [])
    if c.accuracy is not None:
        lines += _accuracy(c.accuracy, worst_points)
    if c.speed is not None:
        lines += _speed(c.speed, c.settings)
    return "\n".join(lines).rstrip() + "\n"

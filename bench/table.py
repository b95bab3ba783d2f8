"""Results as pandas tables, and their compact rendering for a terminal."""

import json

import pandas as pd

from .audit import COLUMNS
from .domains import DOMAINS

__all__ = ["failures_report", "render", "summary_table", "to_frame"]


def to_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    df["worst_points"] = df["worst_points"].map(lambda p: json.dumps(p or []))
    failing_first = df.assign(_ok=df["passed"].astype(bool)).sort_values("_ok", kind="stable")
    return failing_first.drop(columns="_ok")[COLUMNS].reset_index(drop=True)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One line per activation × variant × direction × dtype: max ULP per domain."""
    keys = ["activation", "variant", "direction", "dtype"]
    wide = df.pivot_table(index=keys, columns="domain", values="max_ulp", aggfunc="max",
                          sort=False)
    wide = wide[[d for d in DOMAINS if d in wide.columns]]
    g = df.groupby(keys, sort=False)
    wide["budget"] = g["budget_max_ulp"].max()
    wide["mismatches"] = g["special_mismatches"].sum()
    wide["passed"] = g["passed"].all()
    failing_first = wide.reset_index().sort_values("passed", kind="stable")
    return failing_first.reset_index(drop=True)


def failures_report(df: pd.DataFrame, points: int = 3) -> list[str]:
    """For each failing row: what failed, by how much, and its worst inputs."""
    lines = []
    for r in df[~df["passed"].astype(bool)].itertuples():
        head = f"FAIL {r.activation}.{r.variant}.{r.direction} {r.dtype} {r.domain}: "
        if r.error:
            lines.append(head + r.error)
            continue
        why = []
        if r.special_mismatches:
            why.append(f"{int(r.special_mismatches)} special-value mismatch(es)")
        if r.max_ulp > r.budget_max_ulp:
            why.append(f"max {r.max_ulp:.4g} ULP > budget {r.budget_max_ulp:g}")
        lines.append(head + "; ".join(why))
        for p in json.loads(r.worst_points)[:points]:
            err = p["kind"] if p["kind"] != "ulp" else f"{p['ulp']:.4g} ulp"
            lines.append(f"    x={p['x']} got {p['got']} want {p['want']} ({err})")
    return lines


def render(df: pd.DataFrame) -> str:
    table = summary_table(df)
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.float_format", lambda v: f"{v:.3g}"):
        text = table.to_string(index=False)
    lines = failures_report(df)
    return "\n".join([*lines, *([""] if lines else []), text])

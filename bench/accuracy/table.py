"""Results as pandas tables, and their compact rendering for a terminal."""

import json

import numpy as np
import pandas as pd

from actbench_ulp.accuracy.row import COLUMNS
from actbench_ulp.core.domains import DOMAINS

__all__ = ["KERNEL_KEY", "failed", "failures_report", "point_outcome", "render", "summary_table", "to_frame",
           "worst_error", "worst_errors_from"]


def failed(df: pd.DataFrame) -> pd.Series:
    """Rows that fail: out of budget, a special-value mismatch, a kernel error, or a result of
    the wrong dtype (measured after rounding; an absent peer function is not a failure)."""
    return df["status"].isin(["failed", "error", "wrong_dtype"])


def to_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    df["impl"] = df["impl"].fillna("ours")
    df["status"] = df["status"].fillna("ok")
    df["worst_points"] = df["worst_points"].map(lambda p: json.dumps(p or []))
    # the exhaustive float32 rows' details (binade maxima, oracle, chunks): JSON, else empty
    df["sweep"] = df["sweep"].map(lambda s: json.dumps(s) if isinstance(s, dict) and s else "")
    failing_first = df.assign(_ok=~failed(df)).sort_values("_ok", kind="stable")
    return failing_first.drop(columns="_ok")[COLUMNS].reset_index(drop=True)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One line per activation × implementation × variant × direction × dtype: max ULP per
    domain, failing lines first."""
    keys = ["activation", "impl", "variant", "direction", "dtype"]
    df = df.assign(_fail=failed(df), _absent=df["status"] == "absent")
    present = df[~df["_absent"]]
    # dropna=False: a group whose every row errored (no max_ulp at all) must still show
    table = present.pivot_table(index=keys, columns="domain", values="max_ulp", aggfunc="max",
                                sort=False, dropna=False)
    table = table.reindex(present.groupby(keys, sort=False).size().index)
    table = table[[d for d in DOMAINS if d in table.columns]]
    g = present.groupby(keys, sort=False)
    table["budget"] = g["budget_max_ulp"].max()
    table["mismatches"] = g["special_mismatches"].sum()
    table["errors"] = g["status"].agg(lambda s: int((s == "error").sum()))
    table["wrong_dtype"] = g["status"].agg(lambda s: int((s == "wrong_dtype").sum()))
    table["passed"] = ~g["_fail"].any()
    table = table.reset_index()
    absent = df[df["_absent"]].drop_duplicates(keys)[keys].assign(passed="absent")
    out = pd.concat([table, absent], ignore_index=True)
    order = out["passed"].map({False: 0, True: 1, "absent": 2})
    return out.assign(_o=order).sort_values("_o", kind="stable").drop(columns="_o").reset_index(
        drop=True)


KERNEL_KEY = ["impl", "activation", "variant", "direction", "dtype"]


def worst_error(df: pd.DataFrame) -> pd.Series:
    """Each kernel's worst error over every audited domain, indexed by ``KERNEL_KEY``: its
    largest max ULP, inf where a special value came out wrong, NaN where it raised on some
    domain (its error is then unknown, not small).  Absent kernels are left out."""
    present = df[df["status"] != "absent"]
    worst = np.where(present["special_mismatches"] > 0, np.inf, present["max_ulp"].astype(float))
    frame = present[KERNEL_KEY].assign(worst=np.where(present["status"] == "error", np.nan, worst))
    # a domain where it raised must leave the kernel's worst unknown; max() would skip it
    return frame.groupby(KERNEL_KEY, sort=False)["worst"].agg(
        lambda w: np.nan if w.isna().any() else w.max())


def worst_errors_from(audit_csvs) -> dict:
    """``worst_error`` of every kernel in one ``audit.csv`` or a list of them (its worst over
    all) as a dict keyed by ``KERNEL_KEY`` (kernels that raised left out); {} where there is no
    such file. The timing runs put it beside each benchmark (``max_ulp``)."""
    import os

    paths = [audit_csvs] if isinstance(audit_csvs, str | os.PathLike) else list(audit_csvs or ())
    paths = [p for p in paths if p and os.path.exists(p)]
    if not paths:
        return {}
    df = pd.concat([pd.read_csv(p, keep_default_na=False) for p in paths], ignore_index=True)
    df = df.assign(**{c: pd.to_numeric(df[c].replace("", np.nan))
                      for c in ("max_ulp", "special_mismatches")})
    return {k: float(v) for k, v in worst_error(df).items() if not np.isnan(v)}


def point_outcome(p: dict) -> str:
    """'got … want … (error)' of one worst point (as stored in ``worst_points``)."""
    err = p["kind"] if p["kind"] != "ulp" else f"{p['ulp']:.4g} ulp"
    return f"got {p['got']} want {p['want']} ({err})"


def failures_report(df: pd.DataFrame, points: int = 3) -> list[str]:
    """For each failing row: what failed, by how much, and its worst inputs."""
    lines = []
    for r in df[failed(df)].itertuples():
        who = "" if r.impl == "ours" else f"[{r.impl}] "
        head = f"FAIL {who}{r.activation}.{r.variant}.{r.direction} {r.dtype} {r.domain}: "
        if r.error and r.status != "wrong_dtype":
            lines.append(head + r.error)
            continue
        why = [r.error] if r.error else []
        if r.special_mismatches:
            why.append(f"{int(r.special_mismatches)} special-value mismatch(es)")
        if r.max_ulp > r.budget_max_ulp:
            why.append(f"max {r.max_ulp:.4g} ULP > budget {r.budget_max_ulp:g}")
        lines.append(head + "; ".join(why))
        for p in json.loads(r.worst_points)[:points]:
            lines.append(f"    x={p['x']} {point_outcome(p)}")
    return lines


def by_activation(df: pd.DataFrame) -> pd.DataFrame:
    """One line per activation (every implementation, variant, direction, dtype and domain of
    it): its rows, how many failed, how many are absent, and its worst row, the one furthest
    beyond or nearest to its budget (a special-value mismatch or an error counts as beyond
    every budget)."""
    out = []
    for name, rows in df.groupby("activation", sort=False):
        g = rows[rows["status"] != "absent"]
        # rows of an implementation without such a function (scipy has no sigmoid')
        line = {"activation": name, "rows": len(g), "failed": int(failed(g).sum()),
                "worst row": "—", "max ULP": np.nan, "budget": np.nan, "worst input": "",
                "absent": len(rows) - len(g)}
        if len(g):
            # a failing row first, whatever its figure (a wrong dtype within the budget fails)
            beyond = np.where(failed(g), np.inf,
                              g["max_ulp"].astype(float) / g["budget_max_ulp"].astype(float))
            w = g.iloc[int(np.argmax(np.nan_to_num(beyond, nan=-1.0, posinf=np.inf)))]
            who = "" if w["impl"] == "ours" else f"[{w['impl']}] "
            line.update({"worst row": f"{who}{w['variant']}.{w['direction']} {w['dtype']} "
                                      f"{w['domain']}",
                         "max ULP": w["max_ulp"], "budget": w["budget_max_ulp"],
                         "worst input": _clip(w["error"] if w["status"] == "error"
                                              else w["worst_input"])})
        out.append(line)
    table = pd.DataFrame(out)
    return table if table.empty or table["absent"].any() else table.drop(columns="absent")


def _clip(text: str, width: int = 48) -> str:
    # a row-wise input is a whole row: the line keeps its start, audit.csv has all of it
    return text if len(text) <= width else text[:width - 1] + "…"


def render(df: pd.DataFrame, show_failures: bool = True, verbose: bool = False) -> str:
    """The terminal's account of an audit: the failing rows with their worst inputs, then one
    line per activation (``by_activation``), or with ``verbose`` one line per kernel and dtype
    with its maximum on every domain (``summary_table``)."""
    lines = failures_report(df) if show_failures else []
    if not verbose:
        with pd.option_context("display.max_rows", None, "display.width", 220,
                               "display.float_format", lambda v: f"{v:.3g}"):
            text = by_activation(df).to_string(index=False, na_rep="—") if len(df) else "no rows"
        return "\n".join([*lines, *([""] if lines else []), text])
    table = summary_table(df)
    if (table["impl"] == "ours").all():
        table = table.drop(columns="impl")
    for col in ("errors", "wrong_dtype"):
        if not table[col].any():
            table = table.drop(columns=col)
    with pd.option_context("display.max_rows", None, "display.width", 220,
                           "display.float_format", lambda v: f"{v:.3g}"):
        text = table.to_string(index=False)
    return "\n".join([*lines, *([""] if lines else []), text])

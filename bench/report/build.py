"""``actbench report``: the results of an audit and/or a timing run as a report a person can
open — one self-contained HTML file (figures inlined as PNG data) and a Markdown summary
beside the PNG files.

The report is built as a list of blocks (headings, text, notices, tables, figures), then
written twice: ``report.html`` and ``report.md``.  What goes in:

- the seed visualization report's eight findings, each with the number this run measured,
  and its figures regenerated from our kernels (``seed_findings``, ``seed_figures``);
- for each audited activation × direction × dtype, ULP error against the input, one line per
  implementation in the audit (``error_curves``, ``report_figures.ulp_figure``);
- for each exhaustive float32 sweep, the max ULP per binade of |x| and a table (``sweeps``);
- ns/element per kernel and implementation beside the copy roofline, speed against
  accuracy (``report_figures``), and our fastest variant within the accuracy target against
  the faster of torch and jax (``speed_best``);
- the result tables, failing rows first, and each run's metadata.

A results directory with only accuracy or only speed results gives the parts it can, and
says what is missing and how to get it.
"""

import json

import numpy as np
import pandas as pd

from actbench_ulp.core import catalog
from actbench_ulp.core.errors import ResultsError
from actbench_ulp.core.resultset import ResultSet
from actbench_ulp.gate.compare import fmt, fmt_size
from actbench_ulp.report import speed_best, sweeps
from actbench_ulp.report.document import Figure, Report

__all__ = ["build"]

ERROR_CURVE_POINTS = 2000  # the quick audit profile's: its exact values are already cached


# --- content ----------------------------------------------------------------------------------

def _meta_items(label: str, meta: dict | None) -> list[str]:
    if not meta:
        return []
    cpu = meta.get("cpu") or {}
    versions = meta.get("versions") or {}
    commit = (meta.get("commit") or "no commit")[:12] + (" (uncommitted changes)" if meta.get("dirty")
                                                          else "")
    items = [
        f"{label}: written {meta.get('created', '?')} by `{' '.join(meta.get('argv') or ['?'])}`",
        f"{label}: commit {commit}; CPU {cpu.get('model', '?')}, {cpu.get('logical_cores', '?')} "
        f"logical cores, {cpu.get('system', '?')} {cpu.get('release', '')}",
        f"{label}: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    settings = {k: meta[k] for k in ("profile", "threads", "rounds", "repeat", "max_time", "min_time")
                if k in meta}
    filters = {k: v for k, v in (meta.get("filters") or {}).items() if v not in (None, [], "")}
    if settings or filters:
        items.append(f"{label}: " + ", ".join(f"{k}={v}" for k, v in {**settings, **filters}.items()))
    return items


def _staleness(rep: Report, rs: ResultSet) -> None:
    """The error curves re-run today's kernels on the audit's inputs: say so when the kernels'
    sources (``results.KERNEL_SOURCES``) differ from the audit's commit, or git cannot tell."""
    from actbench_ulp.core.results import KERNEL_SOURCES, kernels_changed_since

    commit = (rs.audit_meta or {}).get("commit")
    changed = kernels_changed_since(commit) if commit else None
    if changed is False:
        return
    why = (f"the kernels' sources ({', '.join(KERNEL_SOURCES)}) changed since the audit's commit "
           f"{commit[:12]}" if changed else "git cannot tell whether the kernels changed since "
           "the audit")
    rep.add("notice", f"The error-against-input figures run the kernels as they are now, and {why}: "
            "they may differ from the audit's tables.")


def _summary(rep: Report, rs: ResultSet, speed: pd.DataFrame | None) -> None:
    rep.add("text", f"Results from `{rs.path}`.")
    if rs.audit is not None:
        from actbench_ulp.accuracy.table import failed

        df = rs.audit
        failing = failed(df)
        ours = df["impl"] == "ours"
        wrong = df["status"] == "wrong_dtype"
        rep.add("text", f"Accuracy: {len(df)} audit rows ({', '.join(dict.fromkeys(df['impl']))}); "
                f"{int((failing & ours).sum())} of our {int(ours.sum())} rows out of budget or in "
                f"error, {int((failing & ~ours).sum())} of the peers'"
                + (f" ({int(wrong.sum())} of them returned the wrong dtype: rounded to the input's "
                   "and measured)" if wrong.any() else "") + ".")
    else:
        rep.add("notice", f"No accuracy results in {rs.path} (no audit.csv): the error-against-input "
                "figures, the accuracy table and the accuracy axis of the speed-against-accuracy "
                f"figure are missing. Run `actbench audit --out {rs.path}` to add them.")
    if speed is not None:
        sizes = ", ".join(fmt_size(s) for s in sorted(speed["size"].unique()))
        rep.add("text", f"Speed: {len(speed)} benchmarks at {sizes} elements, "
                f"{', '.join(str(i) for i in dict.fromkeys(speed['impl']))}.")
    else:
        rep.add("notice", f"No speed results in {rs.path} (no speed-raw.json): the speed charts, the "
                "speed-against-accuracy figure and the speed table are missing. Run "
                f"`actbench bench --out {rs.path}` to add them.")


def _findings(rep: Report) -> None:
    from actbench_ulp.report.seed_findings import findings

    rep.add("heading", "The seed report's findings, measured", anchor="findings")
    rep.add("text", "The eight findings of the seed visualization report (shared/seeds/003), each "
            "re-measured on our kernels (exact mpmath references where they apply) by this run.")
    found = findings()
    rep.add("table", header=["#", "finding", "the seed says", "measured here", "verdict"],
            rows=[[str(f.number), f.title, f.claim, f.measured, f.verdict] for f in found],
            failing=[not f.holds for f in found])


def _seed_figures(rep: Report) -> None:
    from actbench_ulp.report.seed_figures import FIGURES

    rep.add("heading", "The seed report's figures, from our kernels", anchor="seed-figures")
    for f in FIGURES:
        rep.blocks.append(Figure(f"seed-{f.slug}", f.title, f.caption, f.draw))


def _points_text(rows: pd.DataFrame, limit: int = 3) -> str:
    """The worst stored points of these audit rows (all domains), worst first."""
    from actbench_ulp.accuracy.table import point_outcome

    pts = []
    for r in rows.itertuples():
        try:
            stored = json.loads(r.worst_points or "[]")
        except json.JSONDecodeError:
            stored = []
        pts += [(p, r.domain) for p in stored]
    pts.sort(key=lambda pd_: (pd_[0].get("kind", "ulp") == "ulp", -float(pd_[0].get("ulp") or 0)))
    return "; ".join(f"{dom}: x={p['x']} {point_outcome(p)}" for p, dom in pts[:limit])


def _impls(rs: ResultSet, rep: Report) -> dict:
    from actbench_ulp.core import peers

    out = {}
    derivative = (rs.audit_meta or {}).get("impl_derivative")
    for name in dict.fromkeys(rs.audit["impl"]):
        try:
            out[name] = peers.resolve(name, derivative if ":" in name else None)
        except (peers.PeerUnavailable, ValueError) as exc:
            rep.add("notice", f"{name} is in the audit but cannot be loaded here ({exc}): its "
                    "error-against-input lines are left out (its table rows are kept).")
    return out


def _curve_cases(audit: pd.DataFrame):
    """(case, dtype, audit rows on the curve's domains) for every activation × direction ×
    dtype whose core or wide domain was audited, in catalog order: each of our variants
    apart, the peers with the activation's first variant."""
    from actbench_ulp.accuracy.error_curves import CURVE_DOMAINS

    present = audit[(audit["status"] != "absent") & audit["domain"].isin(CURVE_DOMAINS)]
    for case in catalog.cases():
        act = case.activation
        same = present[(present["activation"] == act.name) & (present["direction"] == case.direction)]
        first = case.variant is act.variants[0]
        for dtype in dict.fromkeys(same["dtype"]):
            rows = same[same["dtype"] == dtype]
            ours = rows[(rows["impl"] == "ours") & (rows["variant"] == case.variant.name)]
            peers = rows[rows["impl"] != "ours"]
            if len(ours) or (first and len(peers)):
                yield case, dtype, pd.concat([ours, peers]) if first else ours


def _uncovered(rep: Report, audit: pd.DataFrame) -> None:
    """Audit rows the error curves cannot show: an activation this catalog does not know, or
    no core/wide domain audited."""
    from actbench_ulp.accuracy.error_curves import CURVE_DOMAINS

    unknown = sorted(set(audit["activation"]) - set(catalog.CATALOG))
    if unknown:
        rep.add("notice", f"The audit has activations this actbench does not know "
                f"({', '.join(unknown)}): they are in the tables, with no error-against-input figure.")
    if not audit["domain"].isin(CURVE_DOMAINS).any():
        rep.add("notice", "The audit has no core or wide domain (the figures' inputs): no "
                "error-against-input figures. Run `actbench audit` with its default domains.")


def _points(rs: ResultSet) -> int:
    """The audit's random-domain size, so that the curves re-use its inputs and exact values."""
    points = ((rs.audit_meta or {}).get("filters") or {}).get("points", ERROR_CURVE_POINTS)
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ResultsError(f"{rs.path / 'audit.json'}: filters.points is {points!r}, not a "
                           "positive whole number")
    return points


def _accuracy_figures(rep: Report, rs: ResultSet, cache, jobs: int, exact_progress) -> None:
    from actbench_ulp.accuracy import error_curves
    from actbench_ulp.core.exact import resolve_exact
    from actbench_ulp.report.figures import ulp_figure

    rep.add("heading", "Accuracy: error against the input", anchor="accuracy")
    n = _points(rs)
    rep.add("text", f"Each figure: ULP error (of the exact value, mpmath) of every "
            f"implementation in the audit, over the audit's core and wide domains ({n} points "
            "each, the audit's inputs, re-evaluated with today's kernels): above, |x| "
            "log-scaled on each side of 0 over the whole finite range; below, the working range. "
            "Dots: every point; line: the largest error per bin; ring: each implementation's "
            "worst point; dashed: our budget; x on the top edge: a special-value mismatch. Gated "
            "kernels are plotted against the gate input b, row-wise ones against the element "
            "x_i (rows are evaluated at several temperatures). The caption lists the worst "
            "points the audit found on all its domains.")
    _uncovered(rep, rs.audit)
    impls = _impls(rs, rep)
    todo = list(_curve_cases(rs.audit))
    work = {(case.label, dtype): error_curves.work_for(case, dtype, n) for case, dtype, _ in todo}
    tasks = [b.task for batches in work.values() for b in batches]
    exact = resolve_exact(tasks, cache, jobs, exact_progress)
    current = None
    for case, dtype, plotted in todo:
        rows = rs.audit[(rs.audit["activation"] == case.activation.name)
                        & (rs.audit["direction"] == case.direction) & (rs.audit["dtype"] == dtype)
                        & rs.audit["impl"].isin(plotted["impl"])
                        & ((rs.audit["impl"] != "ours") | (rs.audit["variant"] == case.variant.name))]
        if case.activation.name != current:
            current = case.activation.name
            rep.add("heading", current, level=3, anchor=f"accuracy-{current}")
        chosen = [impls[i] for i in dict.fromkeys(plotted["impl"]) if i in impls]
        ours = plotted[plotted["impl"] == "ours"]
        budget_rows = ours if len(ours) else plotted
        budget = float(budget_rows["budget_max_ulp"].max())
        reasons = "; ".join(r for r in dict.fromkeys(budget_rows["budget_reason"]) if r)
        captions = []
        for impl_name, sub in rows.groupby("impl", sort=False):
            worst = _points_text(sub)
            rounded = sub["status"] == "wrong_dtype"
            errors = "; ".join(e for e in dict.fromkeys(sub.loc[~rounded, "error"]) if e)
            wrong = "; ".join(dict.fromkeys(sub.loc[rounded, "error"]))
            captions.append(f"{impl_name}: max {fmt(sub['max_ulp'].max())} ULP"
                            + (f", WRONG DTYPE: {wrong}" if wrong else "")
                            + (f", error: {errors}" if errors else "")
                            + (f" — worst: {worst}" if worst else ""))
        label = f"{case.activation.name} {case.direction}" + (
            f" [{case.variant.name}]" if len(case.activation.variants) > 1 else "")
        title = f"{label}, {dtype}: ULP error against the input"
        xlabel = {"gated": "gate input b",
                  "rowwise": "row element x_i (before the temperature)"}.get(case.activation.kind, "x")

        def draw(case=case, dtype=dtype, chosen=chosen, budget=budget, title=title, xlabel=xlabel):
            curves = error_curves.curves_for(case, chosen, work[(case.label, dtype)], exact)
            return ulp_figure(title, dtype, curves, budget, case.activation.core, xlabel)

        caption = f"Budget {budget:g} ULP" + (f" ({reasons})" if reasons else "") + ". " + \
            " | ".join(captions)
        slug = f"ulp-{case.activation.name}-{case.variant.name}-{case.direction}-{dtype}"
        rep.blocks.append(Figure(slug, title, caption, draw))


def _speed_frame(rs: ResultSet) -> pd.DataFrame | None:
    if rs.speed is None or not len(rs.speed):
        return None
    from actbench_ulp.speed.timing import speed_table

    return speed_table(rs.speed_raw)


def _accuracy_by_kernel(rs: ResultSet, speed: pd.DataFrame) -> pd.Series:
    """Worst error of each timed kernel over every audited domain (``table.worst_error``:
    inf for a special-value mismatch, NaN where it raised); from the audit when there is one,
    else the max ULP the timing carried."""
    from actbench_ulp.accuracy.table import KERNEL_KEY, worst_error

    if rs.audit is not None:
        worst = worst_error(rs.audit)
        return pd.Series([worst.get(tuple(r), np.nan) for r in speed[KERNEL_KEY].itertuples(index=False)],
                         index=speed.index, dtype=float)
    return pd.to_numeric(speed["max_ulp"], errors="coerce")


def _speed_figures(rep: Report, rs: ResultSet, speed: pd.DataFrame) -> None:
    from actbench_ulp.report.figures import OFF_SCALE_ULP, speed_accuracy_figure, speed_figure

    rep.add("heading", "Speed", anchor="speed")
    threads = ", ".join(str(t) for t in sorted(speed["threads"].unique()))
    rep.add("text", f"Medians of pytest-benchmark rounds ({threads} thread(s)); the dashed line is "
            "np.copyto of the same bytes timed in the same run, the memory roofline no "
            "elementwise kernel can beat. Only the largest size timed is drawn; the table below "
            "has every size.")
    for (dtype, size), part in speed.groupby(["dtype", "size"], sort=True):
        if size != speed[speed["dtype"] == dtype]["size"].max():
            continue
        for group, picked in (("forward", part["direction"] == "forward"),
                              ("derivatives", part["direction"] != "forward")):
            chosen = part[picked | (part["impl"] == "np.copyto")]
            if (chosen["impl"] != "np.copyto").sum() == 0:
                continue
            title = f"{group}, {dtype}, {fmt_size(size)} elements: ns per element"
            rep.blocks.append(Figure(
                f"speed-{group}-{dtype}-{size}", title,
                "Bars: median ns/element per implementation, ±IQR/2 as the error bar; black ticks: "
                "each kernel's own roofline, np.copyto of the bytes it moves (two inputs for gated "
                "kernels and VJPs); dashed: the copy of one array in, one out.",
                lambda chosen=chosen, title=title: speed_figure(chosen, title)))
    worst = _accuracy_by_kernel(rs, speed)
    points = speed.assign(max_ulp=worst)
    unknown = points[(points["impl"] != "np.copyto") & points["max_ulp"].isna()]
    points = points[(points["impl"] != "np.copyto") & points["max_ulp"].notna()]
    largest = points.groupby("dtype")["size"].transform("max")
    points = points[points["size"] == largest]
    missing = "" if rs.audit is not None else " (max ULP as carried by the timing run: no audit here)"
    for dtype, part in points.groupby("dtype", sort=True):
        beyond = part[part["max_ulp"] > OFF_SCALE_ULP]
        off = "; ".join(f"{r.impl} {r.activation} {r.direction} "
                        + ("(special-value mismatch)" if np.isinf(r.max_ulp) else f"({r.max_ulp:.3g} ULP)")
                        for r in beyond.itertuples()) or "none"
        title = f"speed against accuracy, {dtype}, {fmt_size(part['size'].iloc[0])} elements"
        rep.blocks.append(Figure(
            f"speed-accuracy-{dtype}", title,
            "Each kernel variant and implementation a point: ns/element against its worst "
            f"error over every audited domain{missing}. On the top edge, a special-value "
            f"mismatch (x) and errors beyond {OFF_SCALE_ULP:g} ULP (triangles): {off}. Left out, "
            "having no error to plot (they raised, or were not audited): "
            + (", ".join(f"{r.impl} {r.activation} {r.direction}" for r in
                         unknown[unknown["dtype"] == dtype].drop_duplicates(
                             ["impl", "activation", "direction"]).itertuples()) or "none") + ".",
            lambda part=part, title=title: speed_accuracy_figure(part, title)))
    if points.empty:
        rep.add("notice", "No speed-against-accuracy figure: no timed kernel has a max ULP "
                "(run actbench audit before actbench bench, into the same directory).")


def _cell(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "NO"
    return fmt(v) if isinstance(v, float | np.floating) or v is None else str(v)


def _tables(rep: Report, rs: ResultSet, speed: pd.DataFrame | None) -> None:
    from actbench_ulp.accuracy.table import failures_report, summary_table

    rep.add("heading", "Result tables", anchor="tables")
    if rs.audit is not None:
        table = summary_table(rs.audit)
        # a budget looser than the target carries its reason; the report shows it beside it
        keys = ["activation", "impl", "variant", "direction", "dtype"]
        reasons = rs.audit.groupby(keys, sort=False)["budget_reason"].agg(
            lambda r: "; ".join(x for x in dict.fromkeys(r) if x))
        table["budget reason"] = [reasons.get(tuple(k), "")
                                  for k in table[keys].itertuples(index=False)]
        rep.add("heading", "Accuracy (max ULP per domain; failing rows first)", level=3)
        rep.add("table", header=list(table.columns),
                rows=[[_cell(v) for v in r] for r in table.itertuples(index=False)],
                failing=[p is False or p is np.False_ for p in table["passed"]])
        lines = failures_report(rs.audit)
        if lines:
            rep.add("heading", "Failing rows, worst points", level=3)
            rep.add("list", items=[line.strip() for line in lines])
    if speed is not None:
        cols = ["impl", "activation", "variant", "direction", "dtype", "size", "threads",
                "ns_per_element", "noise", "runs", "drift", "time_vs_copy", "roofline_fraction",
                "speedup_vs_numpy_seed", "speedup_vs_torch", "speedup_vs_jax", "max_ulp"]
        cols = [c for c in cols if c in speed]  # speed.csv of an older run has no jax column
        rep.add("heading", "Speed", level=3)
        rep.add("table", header=cols,
                rows=[[_cell(v) for v in r] for r in speed[cols].itertuples(index=False)],
                failing=[False] * len(speed))


def build(rs: ResultSet, cache=None, jobs: int = 1, exact_progress=None,
          seed: bool = True) -> Report:
    """The report's blocks for the results in ``rs``; figures not yet drawn."""
    from actbench_ulp.core.exact import Cache

    cache = cache or Cache(None)
    if rs.audit is not None and not len(rs.audit):
        rs.audit = None  # a header and no rows: nothing measured
    speed = _speed_frame(rs)
    if rs.audit is None and speed is None:
        raise ResultsError(f"{rs.path} holds no measurements: its audit.csv and speed-raw.json "
                           "have no rows")
    rep = Report(f"actbench report: {rs.path}")
    _summary(rep, rs, speed)
    if seed:
        _findings(rep)
        _seed_figures(rep)
    if rs.audit is not None:
        _staleness(rep, rs)
        _accuracy_figures(rep, rs, cache, jobs, exact_progress)
        sweeps.add_section(rep, rs.audit)
        sweeps.add_search_section(rep, rs.audit)
    if speed is not None and len(speed):
        _speed_figures(rep, rs, speed)
        speed_best.add_section(rep, rs, speed)
    _tables(rep, rs, speed)
    rep.add("heading", "Run metadata", anchor="metadata")
    rep.add("list", items=_meta_items("audit", rs.audit_meta) + _meta_items("speed", rs.speed_meta))
    return rep



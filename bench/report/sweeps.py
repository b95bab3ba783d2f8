"""The report's sections on exhaustive float32 sweeps and on the search domain: for each swept
or searched kernel, the largest ULP error in every binade of |x|, both signs, so a reader sees
where in the range the error lives; a table of each sweep (max ULP, worst input, inputs above
0.5, 1 and 2 ULP, special-value mismatches, how many points mpmath checked), and one of the
search's maxima per implementation."""

import json

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from actbench_ulp.gate.compare import fmt
from actbench_ulp.report.document import Figure, Report
from actbench_ulp.report.figures import impl_colour

__all__ = ["SWEEP_COLUMNS", "add_search_section", "add_section", "binade_figure", "binade_maxima",
           "figure_lines",
           "search_figure", "search_rows", "search_table", "sweep_rows"]

SWEEP_COLUMNS = ["impl", "variant", "max_ulp", "worst_input", "over_half_ulp", "over_1_ulp",
                 "over_2_ulp", "special_mismatches", "mpmath_checked", "n"]
_SUBNORMAL = -127  # where the figure puts the binade of subnormals (exponent field 0)
# the axes' ceiling: a kernel 1e306 ULP off (a flushed result) would overflow the log axis' ticks
_TOP = 1e200


def sweep_rows(audit: pd.DataFrame) -> pd.DataFrame:
    """The audit's exhaustive float32 rows that hold a sweep."""
    if "sweep" not in audit:
        return audit.iloc[0:0]
    rows = audit[(audit["domain"] == "exhaustive") & (audit["dtype"] == "float32")]
    return rows[rows["sweep"].fillna("").astype(str).str.startswith("{")]


def binade_maxima(sweep_json: str) -> dict:
    """{sign: (exponents, max ULP)} from a row's ``sweep`` field: sign +1 / -1, the exponent
    of the binade (``_SUBNORMAL`` for the subnormals), the largest ULP error measured in it
    (the oracle's, within its bound); inf and NaN inputs (exponent field 255) left out."""
    pairs = json.loads(sweep_json).get("binade_max_ulp", [])
    out = {}
    for sign in (1, -1):
        chosen = [(b & 0xFF, m) for b, m in pairs if (b >> 8) == (sign < 0) and b & 0xFF != 0xFF]
        exps = np.array([_SUBNORMAL if e == 0 else e - 127 for e, _ in chosen], float)
        out[sign] = (exps, np.array([m for _, m in chosen], float))
    return out


def _binade_axes(title: str, lines: list, budget: float, maxima_of, lw: float, ms: float,
                 xlabel: str, ylabel: str):
    """(figure, axes) with each line's max ULP per binade (``maxima_of(sweep JSON)`` gives
    {sign: (exponents, maxima)}; x > 0 solid, x < 0 dashed), the budget, a log y axis and the
    labels; the caller sets the x range."""
    fig = MplFigure(figsize=(10, 4.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    top = budget
    for label, colour, sweep_json in lines:
        for sign, (exps, maxima) in maxima_of(sweep_json).items():
            if not exps.size:
                continue
            shown = np.clip(maxima, 1e-12, _TOP)  # exact binades drawn at the axis' floor
            ax.plot(exps, shown, color=colour, ls="-" if sign > 0 else "--", lw=lw,
                    marker="." if sign > 0 else "", ms=ms,
                    label=f"{label}, x {'>' if sign > 0 else '<'} 0")
            top = max(top, float(shown.max()))
    ax.axhline(budget, color="black", ls=":", lw=1, label=f"budget {budget:g} ULP")
    ax.set_yscale("log")
    ax.set_ylim(1e-12, min(top * 3, _TOP))
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=6, ncols=3, loc="upper left")
    return fig, ax


def _stride(sweep_json: str) -> int:
    return int(json.loads(sweep_json).get("stride") or 1)


def binade_figure(title: str, lines: list, budget: float) -> MplFigure:
    """Max ULP per binade: ``lines`` = [(label, colour, sweep JSON)]; x > 0 solid, x < 0 dashed.
    The axis says which inputs of each binade were run (all, or every N-th: the sweeps'
    stride)."""
    strides = {_stride(sweep) for _, _, sweep in lines}
    each = ("all 2^23 inputs of each" if strides == {1} else
            f"every {strides.pop()}th input of each" if len(strides) == 1 else "sampled")
    fig, ax = _binade_axes(
        title, lines, budget, binade_maxima, 1.2, 3,
        f"binade of |x|: exponent e of 2^e <= |x| < 2^(e+1) ({each})",
        "max error in the binade (ULP)")
    ax.set_xlim(_SUBNORMAL - 2, 130)
    ticks = [_SUBNORMAL, -100, -75, -50, -25, 0, 25, 50, 75, 100, 127]
    ax.set_xticks(ticks, ["subn." if t == _SUBNORMAL else str(t) for t in ticks], fontsize=7)
    return fig


def figure_lines(group: pd.DataFrame) -> list:
    """[(label, colour, sweep JSON)]: a line per implementation (ours: per variant)."""
    return [(f"{r.impl}" + (f" {r.variant}" if r.impl == "ours" else ""),
             impl_colour(r.impl) if r.impl != "ours" else _variant_colour(r.variant), r.sweep)
            for r in group.itertuples()]


def _kernel_figures(rep: Report, rows: pd.DataFrame, keys: list, slug: str, title, draw) -> None:
    """One figure per group of ``rows`` by ``keys``, a line per implementation (ours: per
    variant): ``title(*key)`` names it, ``draw(title, lines, budget, *key)`` draws it."""
    for key, group in rows.groupby(keys, sort=False):
        lines = figure_lines(group)
        budget = float(pd.to_numeric(group["budget_max_ulp"]).max())
        name = title(*key)
        caption = " | ".join(f"{label}: max {fmt(float(r.max_ulp))} ULP at x={r.worst_input}"
                             for (label, _, _), r in zip(lines, group.itertuples(), strict=True))

        def drawn(name=name, lines=lines, budget=budget, key=key):
            return draw(name, lines, budget, *key)

        rep.blocks.append(Figure(f"{slug}-{'-'.join(key)}", name, caption, drawn))


def add_section(rep: Report, audit: pd.DataFrame) -> None:
    """The section, when the audit has exhaustive float32 sweeps; nothing otherwise."""
    swept = sweep_rows(audit)
    if not len(swept):
        return
    rep.add("heading", "Exhaustive float32 sweeps: where the error lives", anchor="sweeps")
    rep.add("text", "Every float32 input (or every N-th, as the stride says) of each kernel, "
            "measured against the float64 simd kernel and settled by mpmath wherever that "
            "oracle's bound leaves a count or a reported point undecided: each figure gives the "
            "largest ULP error in every binade of |x| (solid: x > 0, dashed: x < 0).")
    table = swept.assign(variant=swept["variant"].fillna("-"))
    rep.add("table", header=["activation", "direction", *SWEEP_COLUMNS, "stride", "undecided"],
            rows=[[r.activation, r.direction, *(_cell(getattr(r, c)) for c in SWEEP_COLUMNS),
                   str(json.loads(r.sweep).get("stride", "?")), _undecided(r.sweep)]
                  for r in table.itertuples()],
            failing=[str(p) not in ("True", "true") for p in table["passed"]])
    _kernel_figures(rep, swept, ["activation", "direction"], "binades",
                    lambda act, direction: f"{act} {direction}, float32: max ULP error per binade of |x|",
                    lambda name, lines, budget, *_: binade_figure(name, lines, budget))


_VARIANT_COLOURS = {"accurate": "#1f77b4", "simd": "#17becf", "simd_f32": "#2ca02c",
                    "simd_f32_fast": "#bcbd22"}


def _variant_colour(variant: str) -> str:
    return _VARIANT_COLOURS.get(variant, "#1f77b4")


def _cell(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if abs(f) >= 1e6:
        return f"{f:.3g}"  # 4.5e+15, not 4503599627370495: the size is what matters there
    return str(int(f)) if f.is_integer() and abs(f) >= 1 else fmt(f)


def _undecided(sweep_json: str) -> str:
    und = json.loads(sweep_json).get("undecided") or {}
    return ", ".join(f"{v} at {k}" for k, v in und.items() if v) or "0"


def search_rows(audit: pd.DataFrame) -> pd.DataFrame:
    """The audit's search rows of elementwise kernels with their per-binade maxima."""
    if "sweep" not in audit:
        return audit.iloc[0:0]
    rows = audit[(audit["domain"] == "search") & (audit["status"] != "absent")]
    return rows[rows["sweep"].fillna("").astype(str).str.contains('"binade_max_ulp": [[', regex=False)
                & ~rows["worst_input"].astype(str).str.startswith(("a=", "tau="))]


def search_table(audit: pd.DataFrame, dtype: str = "float64") -> pd.DataFrame:
    """Max ULP the search found, activation · direction × implementation (ours: its accurate
    variant), in ``dtype``: lower bounds on each kernel's true maximum."""
    rows = search_rows(audit)
    rows = rows[(rows["dtype"] == dtype) & ((rows["impl"] != "ours") | (rows["variant"] == "accurate"))]
    table = rows.pivot_table(index=["activation", "direction"], columns="impl", values="max_ulp",
                             aggfunc="max", sort=False)
    order = [c for c in ("ours", "numpy-seed", "scipy", "torch", "jax") if c in table.columns]
    return table[order + [c for c in table.columns if c not in order]]


def _search_binades(sweep_json: str) -> dict:
    """{sign: (exponents, max ULP)} of a search row."""
    triples = json.loads(sweep_json).get("binade_max_ulp", [])
    return {sign: (np.array([e for s, e, _ in triples if s == sign], float),
                   np.array([m for s, _, m in triples if s == sign], float)) for sign in (1, -1)}


def search_figure(title: str, lines: list, budget: float, dtype: str) -> MplFigure:
    """Max ULP found per binade of |x| by the search: ``lines`` = [(label, colour, sweep JSON)]."""
    fig, ax = _binade_axes(
        title, lines, budget, _search_binades, 1.0, 2,
        "binade of |x|: exponent e of 2^e <= |x| < 2^(e+1) (points the search drew)",
        "max error found in the binade (ULP)")
    fi = np.finfo(dtype)
    ax.set_xlim(int(fi.minexp) - int(fi.nmant) - 2, int(fi.maxexp) + 2)
    return fig


def add_search_section(rep: Report, audit: pd.DataFrame) -> None:
    """The search rows' maxima per implementation and per binade, when the audit has them."""
    found = search_rows(audit)
    if not len(found):
        return
    rep.add("heading", "The search: worst cases found", anchor="search")
    rep.add("text", "The search domain (actbench_ulp.accuracy.search) stratifies every binade, "
            "samples the reference's regime edges densely and searches from the worst points; "
            "its maxima are mpmath-exact lower bounds on each kernel's true maximum.")
    for dtype in dict.fromkeys(found["dtype"]):
        table = search_table(audit, dtype)
        if len(table):
            rep.add("table", header=["activation", "direction", *table.columns],
                    rows=[[a, d, *(_cell(v) if v == v else "—" for v in vals)]
                          for (a, d), vals in zip(table.index, table.to_numpy(), strict=True)],
                    failing=[False] * len(table))
    _kernel_figures(
        rep, found, ["activation", "direction", "dtype"], "search",
        lambda act, direction, dtype: f"{act} {direction}, {dtype}: max ULP error found per binade of |x|",
        lambda name, lines, budget, act, direction, dtype: search_figure(name, lines, budget, dtype))

"""The report's measurement figures: ULP error against the input, ns/element with the copy
roofline, and speed against accuracy.  Each function takes data already measured and returns
a ``matplotlib.figure.Figure`` (the object API, no pyplot state, so a loop of a hundred
figures neither leaks nor needs a display)."""

from dataclasses import replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from actbench_ulp.core.domains import finfo

__all__ = ["IMPL_COLOURS", "impl_colour", "speed_accuracy_figure", "speed_figure", "ulp_figure"]

IMPL_COLOURS = {"ours": "#1f77b4", "numpy-seed": "#ff7f0e", "scipy": "#2ca02c", "torch": "#d62728",
                "jax": "#9467bd"}
_OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
BINS_PER_DECADE = 2  # the max line: one point per half decade of |x| on each side
LINEAR_BINS = 100  # ... and over the working range, one per hundredth of it


def impl_colour(name: str) -> str:
    if name in IMPL_COLOURS:
        return IMPL_COLOURS[name]
    return _OTHER_COLOURS[sum(map(ord, name)) % len(_OTHER_COLOURS)]


def _signed_log(x: np.ndarray, dtype: str) -> np.ndarray:
    """Position on the figure's x axis: sign(x)·(decades of |x| above the smallest subnormal,
    plus one), 0 at x = 0.  Done by hand: matplotlib's symlog scale breaks down (a singular
    transform) across float64's 600 decades."""
    low = np.log10(float(finfo(dtype).smallest_subnormal))
    with np.errstate(divide="ignore"):
        mag = np.log10(np.abs(x)) - low + 1
    return np.where(x == 0, 0.0, np.sign(x) * np.maximum(mag, 0.0))


def _signed_log_axis(ax, dtype: str) -> None:
    fi = finfo(dtype)
    top = int(np.floor(np.log10(float(fi.max))))
    bottom = int(np.ceil(np.log10(float(fi.smallest_subnormal))))
    # about four labelled decades on each side, whatever the dtype's range (float16: 13 decades)
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200) if (top - bottom) / s <= 9)
    # the innermost decade's labels would collide with 0's
    decades = [*range(0, top + 1, step), *range(-step, bottom + step // 2, -step)]
    values = sorted([0.0] + [s * 10.0 ** d for d in decades for s in (-1, 1)])
    ax.set_xticks(_signed_log(np.array(values), dtype),
                  ["0" if v == 0 else f"{'−' if v < 0 else ''}1e{round(np.log10(abs(v)))}"
                   for v in values], fontsize=7)
    edge = float(_signed_log(np.array([float(fi.max)]), dtype)[0])
    ax.set_xlim(-edge * 1.02, edge * 1.02)


def _log_bins(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.sign(x) * (np.floor(np.log10(np.abs(x)) * BINS_PER_DECADE) + 10_000)


def _max_line(x: np.ndarray, ulps: np.ndarray, bins=_log_bins):
    """The largest finite error in each bin of x (by default each half decade of |x|, each
    sign apart): the shape of the error without 4,000 points of scatter hiding the line."""
    ok = np.isfinite(ulps) & np.isfinite(x) & (x != 0)
    x, ulps = x[ok], ulps[ok]
    if not x.size:
        return np.empty(0), np.empty(0)
    key = bins(x)
    frame = pd.DataFrame({"key": key, "x": x, "u": ulps})
    g = frame.groupby("key")
    idx = g["u"].idxmax()
    pts = frame.loc[idx].sort_values("x")
    return pts["x"].to_numpy(), pts["u"].to_numpy()


_STYLES = ("-", "--", "-.", ":")


def _ulp_axis(ax, top: float) -> None:
    """Linear up to 1 ULP, logarithmic above: sub-ULP detail and a peer's million-ULP failure
    on one axis.  The linear band keeps a fifth of the height however far the log part
    reaches, and at most about eight ticks are labelled."""
    decades = max(np.log10(max(top, 1.0)), 0.5)
    ax.set_yscale("symlog", linthresh=1.0, linscale=max(0.6, decades / 4))
    ax.set_ylim(0, top)
    logs = [10.0 ** k for k in range(1, int(np.log10(top)) + 1)] if top > 10 else []
    logs = logs[::max(1, int(np.ceil(len(logs) / 5)))]
    ticks = [t for t in [0, 0.5, 1] + ([2, 5] if top < 100 else []) + logs if t <= top]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_locator(NullLocator())


def _top(curves, budget: float) -> float:
    finite = [c.ulps[np.isfinite(c.ulps)] for c in curves if c.ulps.size]
    return 3 * max([float(f.max()) for f in finite if f.size] + [budget, 1.0])


def _ulp_panel(ax, curves, budget: float, place, bins=_log_bins) -> None:
    top = _top(curves, budget)
    for k, c in enumerate(curves):
        colour, style = impl_colour(c.impl), _STYLES[k % len(_STYLES)]
        z = 3 + len(curves) - k  # the first implementation (ours) drawn on top
        if c.error:
            ax.plot([], [], color=colour, label=f"{c.impl}: error ({c.error[:60]})")
            continue
        fin = np.isfinite(c.ulps)
        ax.scatter(place(c.x[fin]), c.ulps[fin], s=3, color=colour, alpha=0.25, linewidths=0,
                   zorder=z)
        bx, bu = _max_line(c.x, c.ulps, bins)
        worst = float(c.ulps[fin].max()) if fin.any() else 0.0
        ax.plot(place(bx), bu, color=colour, ls=style, lw=1.3, zorder=z,
                label=f"{c.impl} (max {worst:.3g} ULP"
                + (", wrong dtype: rounded, then measured)" if c.wrong_dtype else ")"))
        if (~fin).any():
            ax.scatter(place(c.x[~fin]), np.full(int((~fin).sum()), top * 0.8), marker="x", s=30,
                       color=colour, label=f"{c.impl}: {int((~fin).sum())} special-value mismatch(es)")
        for x, u, _ in c.worst[:1]:
            ax.scatter(place(np.array([x])), [u if np.isfinite(u) else top * 0.8], s=90,
                       facecolors="none", edgecolors=colour, linewidths=1.5, zorder=5)
    ax.axhline(budget, color="black", ls="--", lw=1, label=f"budget {budget:g} ULP")
    ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    _ulp_axis(ax, top)
    ax.set_ylabel("error (ULP)")
    ax.grid(True, which="major", alpha=0.3)


def ulp_figure(title: str, dtype: str, curves, budget: float, core: tuple,
               xlabel: str = "x") -> Figure:
    """ULP error of each implementation against its input, over the whole finite range (|x|
    log-scaled on each side of 0) and over the working range ``core`` (linear); the budget as
    a line, each implementation's worst point ringed, special-value mismatches on the top
    edge.  The max line is the largest error per half decade of |x|."""
    fig = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    whole, near = fig.subplots(2, 1, height_ratios=(1, 1))
    _ulp_panel(whole, curves, budget, lambda v: _signed_log(v, dtype))
    _signed_log_axis(whole, dtype)
    whole.set_xlabel(f"{xlabel}: |x| log-scaled on each side of 0, from the smallest subnormal to "
                     "the largest finite", fontsize=8)
    whole.set_title(title, fontsize=10)
    lo, hi = core
    inside = [_clip(c, lo, hi) for c in curves]
    width = (hi - lo) / LINEAR_BINS
    _ulp_panel(near, inside, budget, lambda v: v, lambda v: np.floor((v - lo) / width))
    near.set_xlim(lo, hi)
    near.set_xlabel(f"{xlabel} over the working range [{lo:g}, {hi:g}] (linear)", fontsize=8)
    handles, labels = whole.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", ls="", markerfacecolor="none", color="black"))
    labels.append("worst point")
    fig.legend(handles, labels, fontsize=7, loc="outside lower center", ncols=4, framealpha=0.8)
    return fig


def _clip(curve, lo: float, hi: float):
    """The curve over [lo, hi], its ring on the worst point *in* that range."""
    keep = (curve.x >= lo) & (curve.x <= hi)
    x, ulps = curve.x[keep], curve.ulps[keep]
    worst = [] if not x.size else [(float(x[np.argmax(ulps)]), float(ulps.max()), "")]
    return replace(curve, x=x, ulps=ulps, worst=worst)


def _label(row) -> str:
    prime = {"forward": "", "derivative": "′", "vjp": " vjp", "d_a": " ∂a", "d_b": " ∂b"}
    variant = "" if row["variant"] in ("accurate", "-", "") else f" [{row['variant']}]"
    return f"{row['activation']}{prime.get(row['direction'], ' ' + row['direction'])}{variant}"


def speed_figure(table: pd.DataFrame, title: str) -> Figure:
    """ns/element of each kernel and implementation (median, IQR as the error bar; log scale),
    with the same run's ``np.copyto`` of the same bytes: the memory roofline."""
    rows = table[table["impl"] != "np.copyto"].copy()
    rows["label"] = rows.apply(_label, axis=1)
    labels = list(dict.fromkeys(rows["label"]))
    impls = list(dict.fromkeys(rows["impl"]))
    height = 1.2 + 0.16 * len(labels) * max(len(impls), 1)
    fig = Figure(figsize=(10, min(height, 30)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    bar = 0.8 / max(len(impls), 1)
    pos = {lab: i for i, lab in enumerate(labels)}
    for j, impl in enumerate(impls):
        sub = rows[rows["impl"] == impl]
        y = np.array([pos[lab] for lab in sub["label"]]) + (j - (len(impls) - 1) / 2) * bar
        ns = sub["ns_per_element"].to_numpy(float)
        err = (sub["iqr_s"] / sub["size"] * 1e9 / 2).to_numpy(float)
        ax.barh(y, ns, height=bar, xerr=err, color=impl_colour(impl), label=impl,
                error_kw={"lw": 0.6, "capsize": 1.5})
        # each kernel's own roofline: the copy of the bytes it moves (gated kernels read two)
        own = (sub["ns_per_element"] / sub["time_vs_copy"]).to_numpy(float)
        ax.scatter(own, y, marker="|", s=60, color="black", linewidths=1.2, zorder=4,
                   label="copy of the bytes it moves" if j == 0 else None)
    copy = table[table["impl"] == "np.copyto"]["ns_per_element"]
    if len(copy):
        ax.axvline(float(copy.median()), color="black", ls="--", lw=1,
                   label=f"np.copyto, same bytes ({float(copy.median()):.3g} ns/element)")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ns per element (median; bar: IQR)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.legend(fontsize=8, loc="outside upper center", ncols=len(impls) + 1)
    return fig


OFF_SCALE_ULP = 1e3  # above this the scatter puts a point on its top edge (named in the caption)


def _place_labels(ax, xs, ys, texts, fontsize: float = 6) -> None:
    """Each label beside its point, at the first of eight offsets whose box overlaps no label
    placed before it (in pixels; a rough text width is enough to keep names readable)."""
    ax.figure.canvas.draw()  # the transforms need a drawn layout
    placed = []
    offsets = [(4, 3), (4, -9), (-4, 3), (-4, -9), (4, 10), (4, -16), (-4, 10), (-4, -16)]
    for x, y, text in zip(xs, ys, texts, strict=True):
        px, py = ax.transData.transform((x, y))
        w, h = 3.3 * fontsize / 6 * len(text) + 2, fontsize + 2
        for dx, dy in offsets:
            left = px + dx if dx > 0 else px + dx - w
            box = (left, py + dy, left + w, py + dy + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):
                break
        placed.append(box)
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                    ha="left" if dx > 0 else "right", alpha=0.85)


def speed_accuracy_figure(points: pd.DataFrame, title: str) -> Figure:
    """Each kernel variant a point: ns/element against its worst error over every audited
    domain, forward kernels and derivatives apart.  Lower left is better; the 0.5 ULP line
    is correct rounding; errors beyond ``OFF_SCALE_ULP`` sit on the top edge."""
    fig = Figure(figsize=(12, 6.5), dpi=100, layout="constrained")
    panels = fig.subplots(1, 2, sharey=True)
    on_scale = points["max_ulp"][points["max_ulp"] <= OFF_SCALE_ULP]
    top = 3 * max(float(on_scale.max()) if len(on_scale) else 1.0, 1.0)
    for ax, (name, forward) in zip(panels, (("forward", True), ("derivatives", False)), strict=True):
        part = points[(points["direction"] == "forward") == forward]
        xs, ys, texts = [], [], []
        for impl, sub in part.groupby("impl", sort=False):
            off, wrong = sub["max_ulp"] > top, np.isinf(sub["max_ulp"])
            ax.scatter(sub["ns_per_element"][~off], sub["max_ulp"][~off], s=26, alpha=0.85,
                       color=impl_colour(str(impl)), label=str(impl))
            for sel, marker in ((off & ~wrong, "^"), (wrong, "x")):
                ax.scatter(sub["ns_per_element"][sel], np.full(int(sel.sum()), top / 1.15), s=40,
                           marker=marker, color=impl_colour(str(impl)), alpha=0.85)
            for _, r in sub[~off].iterrows():  # the off-scale ones are named in the caption
                xs.append(r["ns_per_element"])
                ys.append(r["max_ulp"])
                texts.append(("" if impl == "ours" else f"{impl} ") + _label(r))
        ax.axhline(0.5, color="grey", ls=":", lw=1, label="0.5 ULP: correctly rounded")
        ax.set_xscale("log")
        _ulp_axis(ax, top)
        ax.set_xlabel("ns per element (median)")
        ax.set_title(name, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        if xs:
            _place_labels(ax, xs, ys, texts)
    panels[0].set_ylabel("max error over all audited domains (ULP)")
    panels[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    return fig

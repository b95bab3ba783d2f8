"""The seed visualization report's figures (shared/seeds/003_*), redrawn from our kernels.

Every number and curve comes from ``seed_measures``; this module only draws.  Figures
are built with matplotlib's object API on an Agg canvas of their own: no pyplot, no global
backend switch, nothing kept alive after the caller drops a figure, so a loop over
``FIGURES`` neither leaks nor disturbs a caller that uses pyplot itself.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from actbench_ulp.report import seed_measures as measures

__all__ = ["COLORS", "DPI", "FIGSIZE", "FIGURES", "LINESTYLES", "SeedFigure", "by_slug"]

FIGSIZE = (11.0, 6.5)
DPI = 100
# One colour per activation in every figure (tab10's first six); gelu_tanh, drawn beside
# GELU only, gets a contrasting one.
COLORS = {
    "relu": "#1f77b4",
    "leaky_relu": "#ff7f0e",
    "sigmoid": "#2ca02c",
    "tanh": "#d62728",
    "gelu": "#9467bd",
    "silu": "#8c564b",
    "gelu_tanh": "#e377c2",
}
# LeakyReLU coincides with ReLU for x > 0 (and nearly for x < 0): dashed, so both show.
LINESTYLES = {"leaky_relu": (0, (5, 3))}
LABELS = dict(measures.SEED_ACTIVATIONS)
_OURS = "actbench kernels, float64"
_EXTENDED = (-20.0, 20.0)  # the seed's extended range
_VANISH = (-10.0, 10.0)


@dataclass(frozen=True)
class SeedFigure:
    slug: str
    title: str
    caption: str
    draw: Callable[[], Figure]


def _figure(figsize=FIGSIZE) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax, xlabel="x", ylabel=None, title=None, zero_lines=True):
    if zero_lines:
        ax.axhline(0, color="0.6", lw=0.8, zorder=0)
        ax.axvline(0, color="0.6", lw=0.8, zorder=0)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def _line(ax, name, x, y, lw=2.0):
    ax.plot(x, y, color=COLORS[name], ls=LINESTYLES.get(name, "-"), lw=lw, label=LABELS[name])


def _grid_of_panels(direction: str, suptitle: str, ylabel: str) -> Figure:
    fig = _figure()
    axes = fig.subplots(2, 3)
    data = measures.curves(direction=direction)
    for ax, (name, (x, y)) in zip(axes.flat, data.items(), strict=True):
        ax.plot(x, y, color=COLORS[name], lw=2)
        suffix = "" if direction == "forward" else " derivative"
        _style(ax, ylabel=ylabel, title=f"{LABELS[name]}{suffix}")
        if direction == "forward" and name in ("gelu", "silu"):
            x_min, y_min = measures.minimum(name)
            ax.plot([x_min], [y_min], "o", color="k", ms=5)
            ax.annotate(f"min {y_min:.4f}\nat x = {x_min:.4f}", (x_min, y_min),
                        xytext=(0.05, 0.55), textcoords="axes fraction", fontsize=9,
                        arrowprops={"arrowstyle": "->", "color": "0.3"})
    fig.suptitle(f"{suptitle} ({_OURS})")
    return fig


def _overlay(direction: str, title: str, ylabel: str, lo=measures.FORWARD_RANGE[0],
             hi=measures.FORWARD_RANGE[1], names=measures.NAMES, ax=None, legend_loc="best") -> Figure:
    fig = None
    if ax is None:
        fig = _figure()
        ax = fig.subplots()
    for name, (x, y) in measures.curves(names, lo, hi, direction=direction).items():
        _line(ax, name, x, y)
    _style(ax, ylabel=ylabel, title=title)
    ax.legend(loc=legend_loc)
    return fig


def forward() -> Figure:
    return _grid_of_panels("forward", "Activation Functions — Forward Pass", "f(x)")


def forward_overlay() -> Figure:
    return _overlay("forward", f"All Activation Functions Overlaid ({_OURS})", "f(x)",
                    legend_loc="upper left")


def derivative() -> Figure:
    return _grid_of_panels("derivative", "Activation Derivatives — Backward Pass", "f′(x)")


def derivative_overlay() -> Figure:
    return _overlay("derivative", f"All Activation Derivatives Overlaid ({_OURS})", "f′(x)",
                    legend_loc="upper left")


def dying_relu() -> Figure:
    fig = _figure()
    axes = fig.subplots(2, 3)
    x, grads = measures.gradient_distribution()
    for ax, (name, g) in zip(axes.flat, grads.items(), strict=True):
        zero = np.mean(g == 0)
        ax.hist(g, bins=60, color=COLORS[name], alpha=0.85)
        _style(ax, xlabel="f′(x)", ylabel="count", zero_lines=False,
               title=f"{LABELS[name]}: {zero:.1%} exactly zero")
    fig.suptitle(f"Dying ReLU Problem — Gradient Distributions, f′(x) for x ~ N(0, 1) "
                 f"({x.size} draws, seed {measures.SEED}; {_OURS})")
    return fig


def negative_gradient() -> Figure:
    fig = _figure()
    ax = fig.subplots()
    _overlay("derivative", f"Gradient in the Negative Region — ReLU Dies, Others Survive ({_OURS})",
             "f′(x)", measures.FORWARD_RANGE[0], 0.0, ax=ax, legend_loc="upper left")
    return fig


def gelu_approximation() -> Figure:
    a = measures.gelu_approximation()
    fig = _figure()
    left, right = fig.subplots(1, 2)
    left.plot(a.x, a.exact, color=COLORS["gelu"], lw=2.5, label="GELU exact (erf)")
    left.plot(a.x, a.approx, color=COLORS["gelu_tanh"], lw=1.5, ls="--", label="GELU tanh approximation")
    _style(left, ylabel="f(x)", title="Exact (erf) vs tanh approximation")
    left.legend(loc="upper left")
    shown = a.difference > 0  # log axis: the difference is exactly 0 at x = 0
    right.semilogy(a.x[shown], a.difference[shown], color=COLORS["gelu"], lw=1.2,
                   label="|exact − tanh form|")
    # the difference falls as x⁵ to 0 at x = 0; five decades below the maximum is enough to
    # show its shape without the plunge taking the axis
    right.set_ylim(a.max_difference * 1e-5, 0.05)
    right.axhline(0.005, color="k", ls=":", lw=1, label="seed's bound 0.005")
    for x_max in (a.max_x, -a.max_x):  # the difference is even
        right.plot([x_max], [a.max_difference], "o", color="k", ms=5)
    right.annotate(f"max {a.max_difference:.4g}\nat x = ±{abs(a.max_x):.4f}",
                   (abs(a.max_x), a.max_difference), xytext=(0.62, 0.55), textcoords="axes fraction",
                   arrowprops={"arrowstyle": "->", "color": "0.3"})
    _style(right, ylabel="|gelu(x) − gelu_tanh(x)|", title="Absolute difference (exact references)",
           zero_lines=False)
    right.legend(loc="lower center")
    fig.suptitle("GELU: Exact (erf) vs Tanh Approximation (mpmath references, float64)")
    return fig


def vanishing_gradients() -> Figure:
    fig = _figure()
    classic, modern = fig.subplots(1, 2)
    for name, (x, y) in measures.curves(("sigmoid", "tanh"), *_VANISH, direction="derivative").items():
        classic.semilogy(x, y, color=COLORS[name], lw=2, label=LABELS[name])
    _style(classic, ylabel="f′(x) (log scale)", zero_lines=False,
           title="Classic Activations — Gradients Vanish at Extremes")
    classic.legend(loc="lower center")
    _overlay("derivative", "Modern Activations — Gradients Survive for x > 0", "f′(x)", *_VANISH,
             names=("relu", "gelu", "silu"), ax=modern, legend_loc="upper left")
    fig.suptitle(f"Vanishing Gradient: Classic vs Modern Activations ({_OURS})")
    return fig


# ReLU and LeakyReLU coincide to 3 digits on both panels: markers and dashes keep both visible.
_FLOW_STYLE = {"relu": ("o", "-"), "leaky_relu": ("x", "--")}


def gradient_flow() -> Figure:
    flows = measures.gradient_flow()
    fig = _figure()
    grad_ax, spread_ax = fig.subplots(1, 2)
    for name, flow in flows.items():
        marker, ls = _FLOW_STYLE.get(name, (".", "-"))
        layers = np.arange(flow.mean_abs_gradient.size)
        kw = {"color": COLORS[name], "marker": marker, "ls": ls, "lw": 1.8, "label": LABELS[name]}
        grad_ax.semilogy(layers, flow.mean_abs_gradient, **kw)
        spread_ax.plot(layers, flow.spread, **kw)
    _style(grad_ax, "layer l", "mean |∂h_l / ∂x|", "Gradient Magnitude Through Layers", zero_lines=False)
    _style(spread_ax, "layer l", "std of h_l", "Forward Activation Spread Through Layers", zero_lines=False)
    grad_ax.legend(loc="lower left")
    spread_ax.legend(loc="upper right")
    fig.suptitle(f"Gradient Flow: Chaining {measures.FLOW_LAYERS} Activation Layers, no weights "
                 f"(x ~ N(0, 1), {measures.FLOW_SAMPLES} draws, seed {measures.SEED}; {_OURS})")
    return fig


def temperature() -> Figure:
    t = measures.temperature_curves()
    fig = _figure()
    sig_ax, gelu_ax = fig.subplots(1, 2)
    shades = dict(zip(measures.SCALES, np.linspace(0.15, 0.85, len(measures.SCALES)), strict=True))
    cmap = colormaps["viridis"]
    for s in measures.SCALES:
        sig_ax.plot(t.x, t.sigmoid[s], color=cmap(shades[s]), lw=1.8, label=f"s = {s:g}")
        gelu_ax.plot(t.x, t.gelu[s], color=cmap(shades[s]), lw=1.8, label=f"s = {s:g}")
    sig_ax.plot(t.x, t.step, color="k", ls="--", lw=1, label="step(x)")
    gelu_ax.plot(t.x, t.relu, color="k", ls="--", lw=1, label="ReLU(x)")
    _style(sig_ax, ylabel="sigmoid(s·x)", title="Sigmoid becomes step-like")
    _style(gelu_ax, ylabel="GELU(s·x) / s", title="GELU becomes ReLU-like")
    sig_ax.legend(loc="upper left")
    gelu_ax.legend(loc="upper left")
    fig.suptitle(f"Temperature/Scaling Effects on Activations ({_OURS})")
    return fig


def stability_forward_20() -> Figure:
    return _overlay("forward", f"Forward Values Over Extended Range [-20, 20] ({_OURS})", "f(x)",
                    *_EXTENDED, legend_loc="upper left")


def stability_gradient_20() -> Figure:
    return _overlay("derivative", f"Gradient Values Over Extended Range [-20, 20] ({_OURS})", "f′(x)",
                    *_EXTENDED, legend_loc="upper left")


def _nonfinite(impl: str) -> tuple[int, int]:
    st = measures.stability()
    counts = [v.nonfinite for k, v in st.items() if k[0] == impl]
    return sum(counts), len(counts)


def stability_1000() -> Figure:
    fig = _figure()
    fwd, der = fig.subplots(1, 2)
    lo, hi = measures.STABILITY_RANGE
    for ax, direction, ylabel in ((fwd, "forward", "f(x) (symlog)"), (der, "derivative", "f′(x)")):
        for name, (x, y) in measures.curves_on(measures.symlog_grid(hi), direction=direction).items():
            _line(ax, name, x, y, lw=1.8)
        _style(ax, "x (symlog)", ylabel, "Forward" if direction == "forward" else "Derivative")
        # linear within |x| ≤ 1, where the six differ; logarithmic out to ±1000
        ax.set_xscale("symlog", linthresh=1.0)
    fwd.set_yscale("symlog", linthresh=1.0)
    fwd.legend(loc="upper left")
    der.legend(loc="upper left")
    ours, runs = _nonfinite("ours")
    seed, seed_runs = _nonfinite("numpy-seed")
    fig.suptitle(f"Numerical Stability over [{lo:g}, {hi:g}] ({_OURS})\n"
                 f"NaN/Inf on {measures.STABILITY_POINTS} points, float32 and float64: ours {ours} "
                 f"({runs} runs), the seed's NumPy formulas {seed} ({seed_runs} runs)")
    return fig


FIGURES = (
    SeedFigure("forward", "Forward functions (individual)",
               "Each activation over [-5, 5]; GELU's and SiLU's minima marked (finding 1).", forward),
    SeedFigure("forward_overlay", "Forward functions (overlay)",
               "The six activations on one axis over [-5, 5].", forward_overlay),
    SeedFigure("derivative", "Derivatives (individual)",
               "f′(x) over [-5, 5]: sigmoid′ peaks at 0.25, tanh′ at 1, relu′ jumps at 0 (finding 2).",
               derivative),
    SeedFigure("derivative_overlay", "Derivatives (overlay)",
               "The six derivatives on one axis over [-5, 5].", derivative_overlay),
    SeedFigure("dying_relu", "Dying ReLU — gradient distributions",
               "Histograms of f′(x) for x ~ N(0, 1); titles give the fraction of exactly-zero gradients "
               "(finding 3).", dying_relu),
    SeedFigure("negative_gradient", "Gradient in the negative region",
               "f′(x) over [-5, 0]: relu′ is 0, the others are not (finding 3).", negative_gradient),
    SeedFigure("gelu_approximation", "GELU exact vs tanh approximation",
               "Both exact references over [-5, 5] and their absolute difference, its maximum marked "
               "(finding 4).", gelu_approximation),
    SeedFigure("vanishing_gradients", "Vanishing gradients: classic vs modern",
               "sigmoid′ and tanh′ on a log axis, relu′, gelu′, silu′ on a linear one, over [-10, 10] "
               "(finding 5).", vanishing_gradients),
    SeedFigure("gradient_flow", "Gradient flow through 10 layers",
               "Mean |gradient| and the spread of h_l through 10 chained activations (finding 6).",
               gradient_flow),
    SeedFigure("temperature", "Temperature / scaling",
               "sigmoid(s·x) against step(x) and GELU(s·x)/s against ReLU(x) (finding 7).", temperature),
    SeedFigure("stability_forward_20", "Forward over [-20, 20]",
               "The six activations over the seed's extended range (finding 8).", stability_forward_20),
    SeedFigure("stability_gradient_20", "Derivatives over [-20, 20]",
               "The six derivatives over the seed's extended range (finding 8).", stability_gradient_20),
    SeedFigure("stability_1000", "Forward and derivative over [-1000, 1000]",
               "Up to |x| = 1000 on symlog axes (linear for |x| ≤ 1: the bends at ±1 are the axis's), "
               "with the NaN/Inf counts measured on a 0.01 grid (finding 8).",
               stability_1000),
)


def by_slug(slug: str) -> SeedFigure:
    for f in FIGURES:
        if f.slug == slug:
            return f
    raise KeyError(f"no seed figure {slug!r}; known: {', '.join(f.slug for f in FIGURES)}")

"""The seed visualization report (shared/seeds/003_*): the measurements behind its figures
and findings, on our kernels.

Every number and curve the seed's figures and eight findings need, computed from our kernels
(float64 unless a finding is about dtypes), with the mpmath references where a value must be
exact: curves, the minima of GELU and SiLU, dying-ReLU gradients, GELU exact vs tanh, gradient
flow through chained layers, input scaling, numerical stability.  ``seed_findings`` states the
findings from these; ``seed_figures`` draws them.

The seed's code is not in the extract, so its grids and sample sizes are not known; ours are
module constants below, each with the reason for its value.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
from scipy.optimize import brentq

from actbench_ulp.core.catalog import CATALOG, Case
from actbench_ulp.core.peers import NumpySeed
from actbench_ulp.reference import REFERENCES, evaluate

__all__ = [
    "APPROX_POINTS",
    "CURVE_POINTS",
    "DEVIATION",
    "DYING_SAMPLES",
    "FLOW_LAYERS",
    "FLOW_SAMPLES",
    "FORWARD_RANGE",
    "NAMES",
    "SCALES",
    "SEED",
    "SEED_ACTIVATIONS",
    "STABILITY_POINTS",
    "STABILITY_RANGE",
    "STEP_MARGIN",
    "Flow",
    "GeluApproximation",
    "Stability",
    "Temperature",
    "curves",
    "curves_on",
    "gelu_approximation",
    "gradient_distribution",
    "gradient_flow",
    "grid",
    "is_monotone",
    "kernel",
    "minimum",
    "scaling_gaps",
    "stability",
    "symlog_grid",
    "temperature_curves",
]

# The seed's six, in its order, with its labels.  The report gives no LeakyReLU slope; the
# catalog's (PyTorch's default, 0.01) is used, not the theory notebook's 0.1.
SEED_ACTIVATIONS = (
    ("relu", "ReLU"),
    ("leaky_relu", "LeakyReLU"),
    ("sigmoid", "Sigmoid"),
    ("tanh", "Tanh"),
    ("gelu", "GELU"),
    ("silu", "SiLU"),
)
NAMES = tuple(name for name, _ in SEED_ACTIVATIONS)
SEED = 42  # the seed report's

FORWARD_RANGE = (-5.0, 5.0)  # the seed's plotting range, and finding 4's
# Odd counts on symmetric ranges put x = 0 on the grid, where the kinks and peaks are;
# 2001 points over [-5, 5] is a step of 0.005, finer than a figure's pixel.
CURVE_POINTS = 2001
# Finding 4's grid: step 5e-4, so the grid maximum of |gelu - gelu_tanh| is within ~1e-8
# (relative) of the true one before refinement; 2 × 20001 exact values, a few seconds of mpmath.
APPROX_POINTS = 20001
DYING_SAMPLES = 100_000  # binomial sd of a fraction ~ 0.0016: two digits of the ½ are real
FLOW_SAMPLES = 10_000
FLOW_LAYERS = 10  # the seed's
# Input scales for finding 7: a decade and a half either side of 1, 5 and 10 where the
# sigmoid is visibly a step at the seed's plotting resolution.
SCALES = (0.5, 1.0, 2.0, 5.0, 10.0)
# sigmoid(s·x) → step(x) only away from 0 (at 0 it is ½ for every s): finding 7 measures the
# gap for |x| ≥ STEP_MARGIN.
STEP_MARGIN = 0.5
# 200001 points over [-1000, 1000]: step 0.01, endpoints and 0 exactly on the grid; it crosses
# float32's exp overflow (|x| ≈ 88.7) and float64's (≈ 709.8), where naive formulas break.
STABILITY_RANGE = (-1000.0, 1000.0)
STABILITY_POINTS = 200_001


# --- kernels from the catalog -----------------------------------------------------------


def kernel(name: str, direction: str = "forward") -> Callable[[np.ndarray], np.ndarray]:
    """Our kernel for ``name`` (a catalog activation) with the catalog's parameters bound."""
    act = CATALOG[name]
    return functools.partial(act.variants[0].kernel(direction), **act.params)


def grid(lo: float, hi: float, n: int, dtype: str = "float64") -> np.ndarray:
    # built in float64 and rounded once, so float32 and float64 grids hold the same points
    return np.linspace(lo, hi, n).astype(dtype)


def curves(names=NAMES, lo: float = FORWARD_RANGE[0], hi: float = FORWARD_RANGE[1],
           n: int = CURVE_POINTS, direction: str = "forward",
           dtype: str = "float64") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (x, f(x))}`` over an n-point grid, ``f`` the forward or derivative kernel."""
    return curves_on(grid(lo, hi, n, dtype), names, direction)


def curves_on(x: np.ndarray, names=NAMES,
              direction: str = "forward") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (x, f(x))}`` on given points."""
    return {name: (x, kernel(name, direction)(x)) for name in names}


def symlog_grid(limit: float, linear: float = 1.0, n: int = 2001) -> np.ndarray:
    """Points for a symlog axis over [-limit, limit]: uniform on [-linear, linear], where the
    axis is linear, and geometric beyond, so every decade gets as many points."""
    inner = np.linspace(-linear, linear, n // 2 | 1)
    outer = np.geomspace(linear, limit, n // 4)
    return np.unique(np.concatenate([-outer, inner, outer]))


def _readonly(*arrays):
    # cached results are shared between callers: a caller's edit must not leak into another's
    for a in arrays:
        a.flags.writeable = False
    return arrays


# --- finding 1: the minima of GELU and SiLU ---------------------------------------------


@functools.cache
def minimum(name: str) -> tuple[float, float]:
    """(x, f(x)) at the minimum of our kernel on [-5, 0]: bracketed on a grid, then the root
    of our derivative kernel.  The root pins x to ~an ulp, where minimising f itself could
    only resolve it to ~sqrt(eps) ≈ 1e-8 (f is flat to second order there)."""
    x = grid(FORWARD_RANGE[0], 0.0, 50_001)  # step 1e-4: only brackets the root, cheaply
    i = int(np.argmin(kernel(name)(x)))
    if i in (0, x.size - 1):
        raise ValueError(f"{name} has no interior minimum on [{x[0]}, {x[-1]}]")
    d = kernel(name, "derivative")
    x_min = brentq(lambda t: float(d(np.float64(t))), x[i - 1], x[i + 1], xtol=1e-300,
                   rtol=4 * np.finfo(np.float64).eps)
    return x_min, float(kernel(name)(np.float64(x_min)))


def is_monotone(y: np.ndarray) -> bool:
    return bool(np.all(np.diff(y) >= 0))


# --- finding 3: dying ReLU ----------------------------------------------------------------


def _normal(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def gradient_distribution(seed: int = SEED, n: int = DYING_SAMPLES,
                          names=NAMES) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """x ~ N(0, 1) (``default_rng(seed)``) and ``{name: f'(x)}`` for the histograms."""
    x = _normal(seed, n)
    return x, {name: kernel(name, "derivative")(x) for name in names}


# --- finding 4: GELU, exact vs the tanh approximation -------------------------------------


@dataclass(frozen=True)
class GeluApproximation:
    """The exact GELU and its tanh approximation on a grid, and how far apart they are.

    ``exact``/``approx``: both references, correctly rounded; ``difference``: |gelu -
    gelu_tanh| from their ~106-bit values; ``kernel_difference``: the same from our two
    kernels; ``max_x``/``max_difference``: the maximum of |gelu - gelu_tanh| over the
    range, refined to full precision from the grid's."""

    x: np.ndarray
    exact: np.ndarray
    approx: np.ndarray
    difference: np.ndarray
    kernel_difference: np.ndarray
    max_x: float
    max_difference: float


# Near its maximum the difference is ~5% of gelu's value: ~5 bits cancel, > 100 remain.
_REFINE_BITS = 113


def _exact_difference(x) -> mpmath.mpf:
    return REFERENCES["gelu"](x) - REFERENCES["gelu_tanh"](x)


def _refine_maximum(lo: float, hi: float) -> tuple[float, float]:
    """The extremum of gelu - gelu_tanh in [lo, hi] (the difference's derivative changes sign
    there), from the exact references."""
    with mpmath.workprec(_REFINE_BITS):
        slope = lambda t: REFERENCES["d_gelu"](t) - REFERENCES["d_gelu_tanh"](t)  # noqa: E731
        t = mpmath.findroot(slope, (mpmath.mpf(lo), mpmath.mpf(hi)), solver="anderson")
        return float(t), float(abs(_exact_difference(t)))


@functools.cache
def gelu_approximation(lo: float = FORWARD_RANGE[0], hi: float = FORWARD_RANGE[1],
                       n: int = APPROX_POINTS) -> GeluApproximation:
    x = grid(lo, hi, n)
    g, t = evaluate(REFERENCES["gelu"], x), evaluate(REFERENCES["gelu_tanh"], x)
    diff = np.abs((g.hi - t.hi) + (g.lo - t.lo))
    kdiff = np.abs(kernel("gelu")(x) - kernel("gelu_tanh")(x))
    i = int(np.argmax(diff))
    if 0 < i < n - 1:
        max_x, max_diff = _refine_maximum(x[i - 1], x[i + 1])
    else:  # the maximum is at an end of the range: nothing to refine
        max_x, max_diff = float(x[i]), float(diff[i])
    _readonly(x, g.want, t.want, diff, kdiff)
    return GeluApproximation(x, g.want, t.want, diff, kdiff, max_x, max_diff)


# --- finding 6: gradient flow through chained layers --------------------------------------


@dataclass(frozen=True)
class Flow:
    """Per layer l = 0..layers: mean |d h_l / d h_0| and the std of h_l."""

    mean_abs_gradient: np.ndarray
    spread: np.ndarray


def gradient_flow(seed: int = SEED, n: int = FLOW_SAMPLES, layers: int = FLOW_LAYERS,
                  names=NAMES) -> dict[str, Flow]:
    """h_0 = x ~ N(0, 1), h_{l+1} = f(h_l), no weights (the seed's setup); the gradient of
    h_l with respect to h_0 is the chain rule's product of f'(h_k) for k < l."""
    x = _normal(seed, n)
    flows = {}
    for name in names:
        f, df = kernel(name), kernel(name, "derivative")
        h, g = x, np.ones_like(x)
        grads, spreads = [1.0], [float(np.std(x))]
        for _ in range(layers):
            g = g * df(h)
            h = f(h)
            grads.append(float(np.mean(np.abs(g))))
            spreads.append(float(np.std(h)))
        flows[name] = Flow(*_readonly(np.array(grads), np.array(spreads)))
    return flows


# --- finding 7: input scaling ("temperature") ---------------------------------------------


@dataclass(frozen=True)
class Temperature:
    """sigmoid(s·x) and gelu(s·x)/s per scale s, with the limits they approach."""

    x: np.ndarray
    sigmoid: dict
    gelu: dict
    step: np.ndarray
    relu: np.ndarray


def temperature_curves(scales=SCALES, lo: float = FORWARD_RANGE[0], hi: float = FORWARD_RANGE[1],
                       n: int = CURVE_POINTS) -> Temperature:
    x = grid(lo, hi, n)
    sig, gel = kernel("sigmoid"), kernel("gelu")
    # step(0) = ½, where every sigmoid(s·x) passes
    step = np.where(x > 0, 1.0, np.where(x < 0, 0.0, 0.5))
    return Temperature(x, {s: sig(s * x) for s in scales}, {s: gel(s * x) / s for s in scales},
                       step, kernel("relu")(x))


def scaling_gaps(scales=SCALES, n: int = APPROX_POINTS) -> dict:
    t = temperature_curves(scales, n=n)
    away = np.abs(t.x) >= STEP_MARGIN
    # the sigmoid gap is largest at |x| = STEP_MARGIN, which the grid may miss by a rounding
    edge = np.array([-STEP_MARGIN, STEP_MARGIN])
    sig = kernel("sigmoid")
    return {
        "sigmoid_step_gap": {s: max(float(np.max(np.abs(t.sigmoid[s][away] - t.step[away]))),
                                    float(np.max(np.abs(sig(s * edge) - (edge > 0)))))
                             for s in scales},
        "gelu_relu_gap": {s: float(np.max(np.abs(t.gelu[s] - t.relu))) for s in scales},
    }


# --- finding 8: numerical stability -------------------------------------------------------


@dataclass(frozen=True)
class Stability:
    """Non-finite outputs of one implementation, activation, direction and dtype over the
    stability grid, the floating-point flags it raised (NumPy's ``errstate``), the dtype it
    returned, and its largest difference from our kernel for the same formula."""

    nonfinite: int
    flags: tuple
    out_dtype: str
    max_deviation: float
    deviating: int = 0  # points more than DEVIATION from ours
    first_deviating: float | None = None  # the smallest |x| among them


# A deviation a reader would see on the seed's derivative plots (their y scale is ~1).
DEVIATION = 0.01


# The seed study's own code is not in the extract; the closest we have are the theory
# notebook's NumPy formulas (bench.peers.NumpySeed): gelu there is the tanh form (so it is
# compared with our gelu_tanh) and its gelu/silu derivatives are central differences.
_SAME_FORMULA = {"gelu": "gelu_tanh"}


def _run_flagged(fn, x, params):
    flags = []
    with np.errstate(all="call", call=lambda kind, _flag: flags.append(kind)):
        y = fn(x, **params)
    return np.asarray(y), tuple(sorted(set(flags)))


@functools.cache
def stability(lo: float = STABILITY_RANGE[0], hi: float = STABILITY_RANGE[1],
              n: int = STABILITY_POINTS) -> dict[tuple[str, str, str, str], Stability]:
    """``{(impl, dtype, name, direction): Stability}``, impl "ours" or "numpy-seed"; a seed
    direction it has no formula for (leaky_relu's derivative) is absent."""
    seed = NumpySeed()
    out = {}
    for dtype in ("float32", "float64"):
        x = grid(lo, hi, n, dtype)
        for name in NAMES:
            act = CATALOG[name]
            for direction in act.directions:
                ours, seed_fn = kernel(name, direction), seed.kernel(Case(act, act.variants[0], direction))
                y, flags = _run_flagged(ours, x, {})
                out["ours", dtype, name, direction] = Stability(
                    int(np.sum(~np.isfinite(y))), flags, str(y.dtype), 0.0)
                if seed_fn is None:
                    continue
                ys, flags = _run_flagged(seed_fn, x, act.params)
                same = kernel(_SAME_FORMULA.get(name, name), direction)(x)
                with np.errstate(invalid="ignore"):  # inf - inf, should the seed give inf
                    dev = np.abs(ys.astype(np.float64) - same)
                off = dev > DEVIATION
                out["numpy-seed", dtype, name, direction] = Stability(
                    int(np.sum(~np.isfinite(ys))), flags, str(ys.dtype), float(np.max(dev)),
                    int(np.sum(off)), float(np.min(np.abs(x[off]))) if off.any() else None)
    return out

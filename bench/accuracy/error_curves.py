"""ULP error against the input, point by point, for the report's error-vs-input figures.

The audit keeps only a row's summary and worst points; a figure needs every point.  This
re-evaluates the audit's own ``core`` and ``wide`` domains (the working range and magnitudes
over the whole finite range, both signs) with the same point count, so the exact values come
from the audit's cache, and measures each implementation with the audit's own
``evaluate_points``: one definition of the error for the table and the figure.

What is plotted against: x for elementwise kernels, the gate input b for gated ones (the
nonlinearity; a is only multiplied), the element x_i of the row for row-wise ones.
"""

from dataclasses import dataclass, field

import numpy as np

from actbench_ulp.accuracy.audit import batches, evaluate_points
from actbench_ulp.core.exact import Cache, resolve_exact

__all__ = ["CURVE_DOMAINS", "Curve", "curves_for", "work_for"]

CURVE_DOMAINS = ("core", "wide")
WORST = 3  # worst points marked per implementation


@dataclass
class Curve:
    """One implementation's errors on one case and dtype: ``x`` the plotted input,
    ``ulps`` the error (inf where a special value is wrong), ``worst`` the worst points as
    (x, ulp, the audit's description in hex); ``error`` set when the implementation failed;
    ``wrong_dtype`` says when its results were of another dtype, rounded and then measured."""

    impl: str
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    ulps: np.ndarray = field(default_factory=lambda: np.empty(0))
    worst: list = field(default_factory=list)
    error: str = ""
    wrong_dtype: str = ""


def _plotted_input(case, batch) -> np.ndarray:
    arg = batch.args[1] if case.activation.kind == "gated" else batch.args[0]
    return np.ravel(arg).astype(np.float64)


def work_for(case, dtype: str, n: int) -> list:
    """The batches a curve evaluates: the audit's ``core`` and ``wide`` domains of ``n``
    points (their ``task``s are what ``resolve_exact`` needs)."""
    return [b for domain in CURVE_DOMAINS for b in batches(case, dtype, domain, n)]


def curves_for(case, impls, work: list, exact: dict | None = None) -> list[Curve]:
    """One ``Curve`` per implementation in ``impls`` that has a kernel for ``case``, on the
    batches ``work`` (``work_for``); exact values from ``exact`` (key -> Exact, as
    ``resolve_exact`` returns) or computed here."""
    if exact is None:
        exact = resolve_exact([b.task for b in work], Cache(None))
    x = np.concatenate([_plotted_input(case, b) for b in work])
    out = []
    for impl in impls:
        kernel = impl.kernel(case)
        if kernel is None:
            continue
        pts = evaluate_points(kernel, work, exact)
        if pts.error:
            out.append(Curve(impl.name, error=pts.error))
            continue
        # NaN from ulp_error where the special values agree (e.g. an overflow to inf that the
        # exact value also rounds to) is no error; a mismatch is drawn as infinitely wrong
        ulps = np.where(pts.kinds != "", np.inf, np.nan_to_num(pts.ulps, nan=0.0, posinf=np.inf))
        top = np.argsort(-np.nan_to_num(ulps, nan=np.inf), kind="stable")[:WORST]
        worst = [(float(x[i]), float(ulps[i]), work[pts.where[i][0]].describe(pts.where[i][1]))
                 for i in top]
        out.append(Curve(impl.name, x, ulps, worst, wrong_dtype=pts.wrong_dtype))
    return out

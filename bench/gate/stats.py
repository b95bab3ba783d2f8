"""Statistics for comparing two sets of timing samples: pure numpy/scipy, no I/O.

A slowdown is called only when three things agree: the new samples rank above the base ones
(one-sided Mann–Whitney U, which assumes nothing about the shape of timing distributions and
shrugs off the long right tail that a shared machine adds), the p-values stay significant
after Benjamini–Hochberg control of the false discovery rate over every benchmark compared,
and the ratio of medians is at least a minimum effect. The last is what makes the gate quiet
under drift: with hundreds of samples a 2 % shift between two runs is "significant", but it
is not a regression anyone should be paged for.

The test treats every round as an independent sample. Rounds of one run are not: they share
the run's machine state, and the variance between runs is the larger one. So the p-values
are smaller than they should be and the false discovery rate is nominal; what actually
keeps unchanged code from failing is the effect threshold beyond the baseline's own
run-to-run spread and the gate's rerun of what it flags (``actbench_ulp.gate.compare``). The rank test
still earns its place: it stops a large but unstable difference of medians (a few slow
rounds) from counting.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

__all__ = ["MIN_SAMPLES", "ShiftTest", "bh_adjust", "paired_log_ratio", "shift_test", "verdicts"]

# below this many samples a side, a one-sided U test cannot reach p < 0.01 (4 vs 4: p >= 1/70)
MIN_SAMPLES = 5


@dataclass(frozen=True)
class ShiftTest:
    ratio: float  # median(new) / median(base)
    p_slower: float  # one-sided: new samples tend to be larger
    p_faster: float
    n_base: int
    n_new: int


def shift_test(base, new) -> ShiftTest:
    """Ratio of medians and one-sided Mann–Whitney U p-values of ``new`` against ``base``."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    base, new = base[np.isfinite(base)], new[np.isfinite(new)]
    if len(base) < 1 or len(new) < 1:
        raise ValueError("shift_test needs at least one finite sample on each side")
    ratio = float(np.median(new) / np.median(base))
    if min(len(base), len(new)) < MIN_SAMPLES:
        return ShiftTest(ratio, float("nan"), float("nan"), len(base), len(new))
    slower = _st.mannwhitneyu(new, base, alternative="greater").pvalue
    faster = _st.mannwhitneyu(new, base, alternative="less").pvalue
    return ShiftTest(ratio, float(slower), float(faster), len(base), len(new))


def bh_adjust(p) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values); NaN (untestable) stays NaN and does
    not count towards the number of hypotheses."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = _st.false_discovery_control(p[ok], method="bh")
    return q


def verdicts(ratio, q_slower, q_faster, alpha: float, threshold, faster_at=None) -> np.ndarray:
    """'slower' / 'faster' where both the FDR-controlled test and the effect size say so
    (ratio at least ``threshold``, or at most ``faster_at``, by default its inverse; scalars
    or one per row), 'untestable' where there were too few samples, else 'same'."""
    ratio = np.asarray(ratio, dtype=float)
    threshold = np.broadcast_to(np.asarray(threshold, dtype=float), ratio.shape)
    faster_at = 1 / threshold if faster_at is None else np.broadcast_to(
        np.asarray(faster_at, dtype=float), ratio.shape)
    q_slower = np.asarray(q_slower, dtype=float)
    q_faster = np.asarray(q_faster, dtype=float)
    out = np.full(ratio.shape, "same", dtype=object)
    out[~np.isfinite(q_slower)] = "untestable"
    out[(q_slower <= alpha) & (ratio >= threshold)] = "slower"
    out[(q_faster <= alpha) & (ratio <= faster_at)] = "faster"
    return out


def paired_log_ratio(d, level: float = 0.95) -> dict:
    """The paired summary of log ratios ``d`` (one per pair of runs): ``pairs``,
    ``paired_ratio`` = exp(mean), its ``level`` interval ``paired_low``/``paired_high``
    (Student's t, n - 1 degrees of freedom) and the one-sided ``paired_p_slower`` of mean > 0;
    NaN where fewer than two pairs (or no spread) leave them undefined."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    out = {"pairs": n, "paired_ratio": float(np.exp(d.mean())) if n else float("nan"),
           "paired_low": float("nan"), "paired_high": float("nan"),
           "paired_p_slower": float("nan")}
    if n < 2:
        return out
    se = d.std(ddof=1) / np.sqrt(n)
    if se > 0:
        half = _st.t.ppf(0.5 + level / 2, n - 1) * se
        out.update(paired_low=float(np.exp(d.mean() - half)),
                   paired_high=float(np.exp(d.mean() + half)),
                   paired_p_slower=float(_st.t.sf(d.mean() / se, n - 1)))
    return out

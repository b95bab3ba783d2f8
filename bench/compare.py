"""Compare two result sets: accuracy exactly, speed statistically. Tables in, tables out.

Accuracy (row by row: implementation × activation × variant × direction × dtype × domain):
a row *regresses* when it gains a special-value mismatch, starts raising, or its max ULP grows
beyond its budget. Any of our rows out of budget in the new set fails the comparison as well
(whether or not it already did in the base): a gate must never pass what the audit fails.
Peers (numpy-seed, scipy, torch) fail it only by regressing.

Speed (benchmark by benchmark): each round's time is divided by a yardstick timed right
beside it in the same run — ``np.copyto`` of the same bytes for a memory-bound kernel, a
scalar libm loop for a compute-bound one — so that the state of a shared machine at that
moment (a busy neighbour, a clock change) divides out; the normalised samples of base and new
go through ``bench.stats``, and a benchmark is *slower* when the Benjamini–Hochberg-controlled
one-sided Mann–Whitney U test and the minimum effect agree.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import stats
from .resultset import ACCURACY_KEY, SPEED_KEY, ResultsError, ResultSet

__all__ = ["DEFAULT_ALPHA", "DEFAULT_MIN_EFFECT", "NORMALIZE", "Comparison", "compare",
           "compare_accuracy", "compare_speed", "yardstick"]

DEFAULT_ALPHA = 0.05  # false discovery rate over all benchmarks compared
# Measured: over repeated runs of unchanged code on this project's shared 2-core machine the
# ratio of medians of one benchmark between two runs stayed within ±7 % (README, "Gate"); a
# regression must be larger than that drift to be worth failing a build.
DEFAULT_MIN_EFFECT = 0.10
NORMALIZE = ("auto", "copy", "cpu", "none")
MEMORY_BOUND = 2.0  # within this multiple of the copy's time a kernel is limited by memory
PEERS = ("numpy-seed", "scipy", "torch", "np.copyto")  # their speed is reported, never gated


@dataclass
class Comparison:
    base: ResultSet
    new: ResultSet
    accuracy: pd.DataFrame | None = None
    speed: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(int(df["failing"].sum()) for df in (self.accuracy, self.speed) if df is not None)

    @property
    def compared(self) -> bool:
        return self.accuracy is not None or self.speed is not None


def _fmt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4g}"


def _accuracy_row(r) -> tuple[str, bool, str]:
    """(verdict, failing, reason) for one joined row."""
    ours = r.impl == "ours"
    if r.side == "left_only":
        return "missing", ours, "in the base, not in the new results"
    new_bad = r.status_new in ("failed", "error")
    if r.side == "right_only":
        return ("added", ours and new_bad,
                f"new row{': out of budget' if new_bad else ''}")
    reasons = []
    if r.special_mismatches_new > r.special_mismatches_base:
        reasons.append(f"special-value mismatches {r.special_mismatches_base} → "
                       f"{r.special_mismatches_new}")
    if r.status_new == "error" and r.status_base != "error":
        reasons.append(f"now raises: {r.error_new}")
    ulp_b, ulp_n, budget = r.max_ulp_base, r.max_ulp_new, r.budget_max_ulp_new
    grew = np.isfinite(ulp_n) and (not np.isfinite(ulp_b) or ulp_n > ulp_b)
    if grew and np.isfinite(budget) and ulp_n > budget:
        reasons.append(f"max ULP {_fmt(ulp_b)} → {_fmt(ulp_n)} > budget {budget:g}")
    if reasons:
        return "regressed", True, "; ".join(reasons)
    if new_bad:
        return "out of budget", ours, (f"max ULP {_fmt(ulp_n)} > budget {_fmt(budget)}"
                                       if r.status_new == "failed" else f"raises: {r.error_new}")
    if grew and np.isfinite(ulp_b):
        return "worse", False, f"max ULP {_fmt(ulp_b)} → {_fmt(ulp_n)} (within budget {_fmt(budget)})"
    if np.isfinite(ulp_b) and np.isfinite(ulp_n) and ulp_n < ulp_b:
        return "better", False, f"max ULP {_fmt(ulp_b)} → {_fmt(ulp_n)}"
    return "same", False, ""


def compare_accuracy(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per audit row of either set: verdict, whether it fails, why, budget changes."""
    cols = ["max_ulp", "special_mismatches", "budget_max_ulp", "status", "error", "budget_reason"]
    j = base[[*ACCURACY_KEY, *cols]].merge(new[[*ACCURACY_KEY, *cols, "worst_points"]],
                                           on=ACCURACY_KEY, how="outer",
                                           suffixes=("_base", "_new"), indicator="side")
    for c in ("special_mismatches_base", "special_mismatches_new"):
        j[c] = j[c].fillna(0).astype(int)
    out = [_accuracy_row(r) for r in j.itertuples(index=False)]
    j["verdict"] = [o[0] for o in out]
    j["failing"] = [o[1] for o in out]
    j["reason"] = [o[2] for o in out]
    bb, bn = j["budget_max_ulp_base"], j["budget_max_ulp_new"]
    j["budget_change"] = np.where(bn > bb, "loosened", np.where(bn < bb, "tightened", ""))
    j = j.rename(columns={"max_ulp_base": "base_max_ulp", "max_ulp_new": "new_max_ulp",
                          "budget_max_ulp_base": "base_budget", "budget_max_ulp_new": "budget",
                          "budget_reason_new": "budget_reason"})
    keep = [*ACCURACY_KEY, "base_max_ulp", "new_max_ulp", "base_budget", "budget",
            "budget_change", "budget_reason", "verdict", "failing", "reason", "worst_points"]
    order = j["failing"].map({True: 0, False: 1})
    return j.assign(_o=order).sort_values("_o", kind="stable")[keep].reset_index(drop=True)


def _run_copy(speed: pd.DataFrame, label: str) -> pd.Series:
    """Per benchmark, the seconds the run's own np.copyto benchmark takes for its bytes (for
    files without the yardsticks timed beside each benchmark)."""
    copies = speed[speed["impl"] == "np.copyto"]
    per_byte = {(r.dtype, r.size, r.threads): float(np.median(r.samples)) / r.bytes
                for r in copies.itertuples()}
    out = []
    for r in speed.itertuples():
        k = (r.dtype, r.size, r.threads)
        if np.isfinite(r.copy_s):
            out.append(r.copy_s)
        elif k in per_byte:
            out.append(per_byte[k] * r.bytes)
        else:
            raise ResultsError(f"{label}: no np.copyto timing at {r.dtype}, size {r.size}, "
                               f"{r.threads} thread(s) to normalise {r.activation} by; rerun "
                               "actbench bench or use --normalize none")
    return pd.Series(out, index=speed.index, dtype=float)


def yardstick(base_median: float, base_copy: float, normalize: str) -> str:
    """Which same-moment yardstick divides a benchmark's times: under ``auto``, the copy of
    its bytes when it runs within twice the copy's time (memory-bound: it moves with the
    memory system), else the libm loop (compute-bound: it moves with the CPU's speed)."""
    if normalize != "auto":
        return normalize
    return "copy" if base_median < MEMORY_BOUND * base_copy else "cpu"


def compare_speed(base: pd.DataFrame, new: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA,
                  min_effect: float = DEFAULT_MIN_EFFECT, normalize: str = "auto",
                  labels=("base", "new")) -> pd.DataFrame:
    """One row per benchmark of either set (the copy itself excluded): raw medians, the ratio
    of normalised medians, p- and BH q-values both ways, verdict, whether it fails."""
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}")
    if normalize in ("auto", "copy"):
        base = base.assign(copy_s=_run_copy(base, labels[0]))
        new = new.assign(copy_s=_run_copy(new, labels[1]))
    base, new = base[base["impl"] != "np.copyto"], new[new["impl"] != "np.copyto"]
    cols = [*SPEED_KEY, "samples", "copy_s", "cpu_s"]
    j = base[cols].merge(new[[*cols, "max_ulp"]], on=SPEED_KEY, how="outer",
                         suffixes=("_base", "_new"), indicator="side")
    n = len(j)
    res = {k: np.full(n, np.nan) for k in ("base_ns", "new_ns", "ratio", "raw_ratio",
                                           "p_slower", "p_faster")}
    counts = {"n_base": np.zeros(n, int), "n_new": np.zeros(n, int)}
    used = np.full(n, "", dtype=object)
    for i, r in enumerate(j.itertuples(index=False)):
        if r.side != "both":
            side = r.samples_base if r.side == "left_only" else r.samples_new
            res["base_ns" if r.side == "left_only" else "new_ns"][i] = \
                np.median(side) / r.size * 1e9
            continue
        b, nw = r.samples_base, r.samples_new
        used[i] = yardstick(float(np.median(b)), r.copy_s_base, normalize)
        if used[i] != "none":
            ref_b, ref_n = getattr(r, f"{used[i]}_s_base"), getattr(r, f"{used[i]}_s_new")
            if not (np.isfinite(ref_b) and np.isfinite(ref_n)):
                raise ResultsError(f"{r.activation}.{r.direction} {r.dtype}: no {used[i]} "
                                   "yardstick in one of the result sets (written by an older "
                                   "actbench bench?); use --normalize copy or none")
            b, nw = b / ref_b, nw / ref_n
        t = stats.shift_test(b, nw)
        res["base_ns"][i] = np.median(r.samples_base) / r.size * 1e9
        res["new_ns"][i] = np.median(r.samples_new) / r.size * 1e9
        res["ratio"][i], res["p_slower"][i], res["p_faster"][i] = t.ratio, t.p_slower, t.p_faster
        res["raw_ratio"][i] = res["new_ns"][i] / res["base_ns"][i]
        counts["n_base"][i], counts["n_new"][i] = t.n_base, t.n_new
    out = j[SPEED_KEY].assign(**res, **counts, normalized_by=used)
    out["q_slower"] = stats.bh_adjust(out["p_slower"])
    out["q_faster"] = stats.bh_adjust(out["p_faster"])
    verdict = stats.verdicts(out["ratio"], out["q_slower"], out["q_faster"], alpha, min_effect)
    verdict[(j["side"] == "left_only").to_numpy()] = "missing"
    verdict[(j["side"] == "right_only").to_numpy()] = "added"
    out["verdict"] = verdict
    gated = ~out["impl"].isin(PEERS)
    out["failing"] = gated & ((out["verdict"] == "slower")
                              | ((out["verdict"] == "missing") & (out["impl"] == "ours")))
    out["max_ulp"] = j["max_ulp"].to_numpy()
    cols = [*SPEED_KEY, "base_ns", "new_ns", "raw_ratio", "normalized_by", "ratio", "p_slower",
            "q_slower", "p_faster", "q_faster", "n_base", "n_new", "verdict", "failing", "max_ulp"]
    order = out["failing"].map({True: 0, False: 1})
    return out.assign(_o=order).sort_values(["_o", "ratio"], ascending=[True, False],
                                            kind="stable")[cols].reset_index(drop=True)


def _notes(base: ResultSet, new: ResultSet) -> list[str]:
    notes = []
    if base.machine and new.machine and base.machine != new.machine:
        notes.append(f"different machines: base {base.machine}, new {new.machine} — speed ratios "
                     "are normalised by each run's copy roofline, but compute-bound kernels do "
                     "not scale with memory bandwidth; record a baseline on the gating machine")
    for rs, side in ((base, "base"), (new, "new")):
        meta = rs.audit_meta or rs.speed_meta or {}
        if meta.get("dirty"):
            notes.append(f"the {side} results come from a working tree with uncommitted changes")
    if base.audit_meta and new.audit_meta:
        for k in ("profile", "filters"):
            if base.audit_meta.get(k) != new.audit_meta.get(k):
                notes.append(f"the audits differ in {k}: base {base.audit_meta.get(k)}, "
                             f"new {new.audit_meta.get(k)}")
    return notes


def compare(base: ResultSet, new: ResultSet, *, alpha: float = DEFAULT_ALPHA,
            min_effect: float = DEFAULT_MIN_EFFECT, normalize: str = "auto") -> Comparison:
    c = Comparison(base, new, notes=_notes(base, new),
                   settings={"alpha": alpha, "min_effect": min_effect, "normalize": normalize})
    if base.audit is not None and new.audit is not None:
        c.accuracy = compare_accuracy(base.audit, new.audit)
    elif base.audit is not None or new.audit is not None:
        c.notes.append(f"accuracy not compared: no audit.csv in "
                       f"{(new if base.audit is not None else base).path}")
    if base.speed is not None and new.speed is not None:
        c.speed = compare_speed(base.speed, new.speed, alpha=alpha, min_effect=min_effect,
                                normalize=normalize, labels=(str(base.path), str(new.path)))
    elif base.speed is not None or new.speed is not None:
        c.notes.append(f"speed not compared: no speed-raw.json in "
                       f"{(new if base.speed is not None else base).path}")
    return c

"""Compare two result sets: accuracy exactly, speed statistically. Tables in, tables out.

Accuracy (row by row: implementation × activation × variant × direction × dtype × domain):
a row *regresses* when it gains a special-value mismatch, starts raising, or its max ULP grows
beyond its budget. Any of our rows out of budget in the new set fails the comparison as well
(whether or not it already did in the base): a gate must never pass what the audit fails.
Peers (numpy-seed, scipy, torch, jax) fail it only by regressing.

Speed (benchmark by benchmark): the rounds of each run are divided by that run's drift —
the median, over every compute-bound (or memory-bound) benchmark, of its median against the
baseline — so that a machine running 7 % faster this hour divides out, and the drift itself
is judged as a row of its own (every kernel slower at once). Yardsticks of the same run
(``np.copyto`` of the same bytes, a scalar libm loop) are the alternatives; on a loaded
machine they move independently of the kernels, so dividing by them adds noise. The rounds then
go through ``actbench_ulp.gate.stats``,
and a benchmark is *slower* when the Benjamini–Hochberg-controlled one-sided Mann–Whitney U
test says so and the ratio of medians passes a threshold: the minimum effect beyond the
slowest of the base's own repeated runs. The gate then reruns what it flagged (``confirm``).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from actbench_ulp.core.peers import BUILTIN
from actbench_ulp.core.resultset import ACCURACY_KEY, SPEED_KEY, ResultsError, ResultSet
from actbench_ulp.gate import stats

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_EFFECT",
    "DEFAULT_MIN_EFFECT_MEMORY",
    "NORMALIZE",
    "Comparison",
    "compare",
    "compare_accuracy",
    "compare_speed",
    "confirm",
    "fmt",
    "yardstick",
]

DEFAULT_ALPHA = 0.05  # false discovery rate over all benchmarks compared
# Minimum effects, beyond the drift the baseline's own runs show, set from the A/A experiment
# on a shared 2-core machine (python tools/gate_experiment.py --baseline DIR --runs 10; README
# "The gate under noise"): after dividing out each run's drift, compute-bound kernels stay
# within 7 % of the baseline (p99; single-run bursts are dismissed by the gate's rerun), so
# 10 % catches a 25 % slowdown; memory-bound ones (within twice the copy of their bytes) move
# by up to 66 % against their class's drift, for minutes at a time, so a memory-bound
# slowdown under 50 % beyond their run-to-run spread cannot be told from the machine's own
# noise, while an extra pass over the array (about +100 %) still shows.
DEFAULT_MIN_EFFECT = 0.10
DEFAULT_MIN_EFFECT_MEMORY = 0.50
NORMALIZE = ("drift", "none", "run", "beside")
MIN_DRIFT_BENCHMARKS = 5
MEMORY_BOUND = 2.0  # within this multiple of the copy's time a kernel is limited by memory
# their speed is reported, never gated: every built-in peer, whichever is added next
PEERS = (*(name for name in BUILTIN if name != "ours"), "np.copyto")


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


def fmt(v, spec=".4g") -> str:
    """A number for people; "—" where there is none."""
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def fmt_size(n) -> str:
    """An element count as people write it: 1e5, 1e7."""
    return f"{int(n):.0e}".replace("e+0", "e").replace("e+", "e")


def _accuracy_row(r) -> tuple[str, bool, str]:
    """(verdict, failing, reason) for one joined row."""
    ours = r.impl == "ours"
    if r.side == "left_only":
        return "missing", ours, "in the base, not in the new results"
    new_bad = r.status_new in ("failed", "error", "wrong_dtype")
    if r.side == "right_only":
        return ("added", ours and new_bad,
                f"new row{': out of budget' if new_bad else ''}")
    reasons = []
    if r.special_mismatches_new > r.special_mismatches_base:
        reasons.append(f"special-value mismatches {r.special_mismatches_base} → "
                       f"{r.special_mismatches_new}")
    if r.status_new == "error" and r.status_base != "error":
        reasons.append(f"now raises: {r.error_new}")
    if r.status_new == "wrong_dtype" and r.status_base not in ("error", "wrong_dtype"):
        reasons.append(f"now {r.error_new}")
    ulp_b, ulp_n, budget = r.max_ulp_base, r.max_ulp_new, r.budget_max_ulp_new
    # a row that raised in the base had no error to grow from: measuring it now (e.g. a
    # wrong-dtype result, once an error, now rounded and audited) is no regression
    grew = (np.isfinite(ulp_n) and r.status_base != "error"
            and (not np.isfinite(ulp_b) or ulp_n > ulp_b))
    if grew and np.isfinite(budget) and ulp_n > budget:
        reasons.append(f"max ULP {fmt(ulp_b)} → {fmt(ulp_n)} > budget {budget:g}")
    if reasons:
        return "regressed", True, "; ".join(reasons)
    if new_bad:
        why = {"failed": f"max ULP {fmt(ulp_n)} > budget {fmt(budget)}",
               "wrong_dtype": f"{r.error_new} (max ULP {fmt(ulp_n)})"}
        return "out of budget", ours, why.get(r.status_new, f"raises: {r.error_new}")
    if grew and np.isfinite(ulp_b):
        return "worse", False, f"max ULP {fmt(ulp_b)} → {fmt(ulp_n)} (within budget {fmt(budget)})"
    if np.isfinite(ulp_b) and np.isfinite(ulp_n) and ulp_n < ulp_b:
        return "better", False, f"max ULP {fmt(ulp_b)} → {fmt(ulp_n)}"
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


def _yardsticks(speed: pd.DataFrame, label: str) -> pd.DataFrame:
    """Per benchmark and run: the copy time of its bytes and the libm loop's time, both
    beside it (``beside``) and as the run's median over all its benchmarks (``run``: one
    figure per run for the state of the machine, steadier than any single measurement)."""
    df = speed.copy()
    copies = df[df["impl"] == "np.copyto"]
    own = {(r.repeat, r.dtype, r.size, r.threads): float(np.median(r.samples)) / r.bytes
           for r in copies.itertuples()}
    per_byte = df["copy_s"] / df["bytes"]
    missing = per_byte.isna()
    if missing.any():  # files without the yardsticks: the run's own copy benchmark
        per_byte[missing] = [own.get((r.repeat, r.dtype, r.size, r.threads), np.nan)
                             for r in df[missing].itertuples()]
    if per_byte[df["impl"] != "np.copyto"].isna().any():
        r = df[per_byte.isna()].iloc[0]
        raise ResultsError(f"{label}: no copy timing at {r.dtype}, size {r.size} to normalise "
                           f"{r.activation} by; rerun actbench bench or use --normalize none")
    df["beside_copy"] = per_byte * df["bytes"]
    df["beside_cpu"] = df["cpu_s"]
    run_byte = per_byte.groupby(df["repeat"]).transform("median")
    df["run_copy"] = run_byte * df["bytes"]
    df["run_cpu"] = df["cpu_s"].groupby(df["repeat"]).transform("median")
    return df


def yardstick(base_median: float, base_copy: float) -> str:
    """A kernel that runs within twice the copy of its bytes is memory-bound (it moves with
    the memory system); any other is compute-bound (it moves with the CPU's speed)."""
    return "copy" if base_median < MEMORY_BOUND * base_copy else "cpu"


def _normalized(runs: pd.DataFrame, normalize: str, kind: str) -> list[np.ndarray]:
    if normalize == "none":
        return list(runs["samples"])
    col = f"{normalize}_{kind}"
    if not np.isfinite(runs[col]).all():
        r = runs.iloc[0]
        raise ResultsError(f"{r.activation}.{r.direction} {r.dtype}: no {kind} yardstick in the "
                           "results (written by an older actbench bench?); use --normalize none")
    return [s / ref for s, ref in zip(runs["samples"], runs[col], strict=True)]


def compare_speed(base: pd.DataFrame, new: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA,
                  min_effect: float = DEFAULT_MIN_EFFECT,
                  min_effect_memory: float = DEFAULT_MIN_EFFECT_MEMORY, normalize: str = "drift",
                  labels=("base", "new"), drift: dict | None = None) -> pd.DataFrame:
    """One row per benchmark of either set (the copy itself excluded): raw medians, the ratio
    of normalised medians, p- and BH q-values both ways, the threshold, verdict, failing.

    Every run of a benchmark is normalised (by default by that run's drift, the median
    change of every benchmark of its class; ``drift`` supplies both sides' drift from a
    fuller comparison — its ``attrs["drift"]`` — for a rerun of a few benchmarks) and the runs
    are pooled. The
    threshold a slowdown must reach is (1 + min_effect, or min_effect_memory for a kernel
    within twice the copy of its bytes) times how far the base's slowest run
    sat above the pooled median (``faster_at`` likewise from its fastest run): a benchmark
    whose runs of the same code spread by 20 % cannot be called 10 % slower from one more run
    that lands inside that spread.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}")
    base, new = _yardsticks(base, labels[0]), _yardsticks(new, labels[1])
    base, new = base[base["impl"] != "np.copyto"], new[new["impl"] != "np.copyto"]
    gb, gn = base.groupby(SPEED_KEY, sort=False), new.groupby(SPEED_KEY, sort=False)
    keys = list(dict.fromkeys([*gb.groups, *gn.groups]))
    if not keys:
        raise ResultsError(f"{labels[0]} and {labels[1]} hold no benchmark to compare")
    bound = {k: "memory" if yardstick(float(np.median(np.concatenate(list(g["samples"])))),
                                      float(g["beside_copy"].median())) == "copy" else "compute"
             for k, g in gb}
    given = drift
    drift = _drift(gb, gn, bound) if normalize == "drift" else None
    if drift is not None and given is not None:  # the drift measured by a fuller comparison
        drift["base"] = {rc: given["base"].get(rc, 1.0) for rc in drift["base"]}
        drift["new"] = {rc: given["new_class"].get(rc[1], 1.0) for rc in drift["new"]}
    rows = []
    for key in keys:
        row = dict(zip(SPEED_KEY, key, strict=True))
        b = gb.get_group(key) if key in gb.groups else None
        n = gn.get_group(key) if key in gn.groups else None
        for side, g in (("base", b), ("new", n)):
            row[f"{side}_ns"] = (np.median(np.concatenate(list(g["samples"]))) / row["size"] * 1e9
                                 if g is not None else np.nan)
            row[f"{side}_runs"] = len(g) if g is not None else 0
        row["max_ulp"] = n["max_ulp"].iloc[0] if n is not None else None
        if b is None or n is None:
            row["verdict"] = "missing" if n is None else "added"
            rows.append(row)
            continue
        row["bound"] = bound[key]
        kind = "copy" if bound[key] == "memory" else "cpu"
        effect = min_effect_memory if kind == "copy" else min_effect
        if normalize == "drift":
            row["normalized_by"] = f"{bound[key]} drift"
            nb = [r.samples / drift["base"][(r.repeat, bound[key])] for r in b.itertuples()]
            nn = [r.samples / drift["new"][(r.repeat, bound[key])] for r in n.itertuples()]
        else:
            row["normalized_by"] = "none" if normalize == "none" else f"{kind} ({normalize})"
            nb, nn = _normalized(b, normalize, kind), _normalized(n, normalize, kind)
        pooled = np.concatenate(nb)
        medians = np.array([np.median(s) for s in nb]) / np.median(pooled)
        t = stats.shift_test(pooled, np.concatenate(nn))
        row.update(ratio=t.ratio, raw_ratio=row["new_ns"] / row["base_ns"], p_slower=t.p_slower,
                   p_faster=t.p_faster, n_base=t.n_base, n_new=t.n_new,
                   base_spread=medians.max() / medians.min(),
                   threshold=(1 + effect) * max(1.0, medians.max()),
                   faster_at=min(1.0, medians.min()) / (1 + effect))
        rows.append(row)
    cols = [*SPEED_KEY, "drift", "bound", "base_ns", "new_ns", "raw_ratio", "normalized_by", "ratio",
            "base_spread", "threshold", "faster_at", "p_slower", "q_slower", "p_faster", "q_faster",
            "base_runs", "new_runs", "n_base", "n_new", "verdict", "failing", "max_ulp"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out[["verdict", "normalized_by", "bound"]] = out[["verdict", "normalized_by", "bound"]].astype(object)
    out["q_slower"] = stats.bh_adjust(out["p_slower"])
    out["q_faster"] = stats.bh_adjust(out["p_faster"])
    tested = out["verdict"].isna()
    out.loc[tested, "verdict"] = stats.verdicts(out.loc[tested, "ratio"],
                                                out.loc[tested, "q_slower"],
                                                out.loc[tested, "q_faster"], alpha,
                                                out.loc[tested, "threshold"],
                                                out.loc[tested, "faster_at"])
    if drift is not None and given is None:
        out = pd.concat([out, _drift_rows(drift, keys, min_effect, min_effect_memory)],
                        ignore_index=True)
    # a drift row (``_drift_rows``) judges a whole class of kernels, not one benchmark
    out["drift"] = out["drift"].eq(True)
    gated = ~out["impl"].isin(PEERS)
    out["failing"] = gated & ((out["verdict"] == "slower")
                              | ((out["verdict"] == "missing") & (out["impl"] == "ours")))
    order = out["failing"].map({True: 0, False: 1})
    out = out.assign(_o=order).sort_values(["_o", "ratio"], ascending=[True, False],
                                           kind="stable").drop(columns="_o").reset_index(drop=True)
    if drift is not None:
        out.attrs["drift"] = {"base": drift["base"], "new_class": {
            c: float(np.median([v for (_, cc), v in drift["new"].items() if cc == c]))
            for c in ("compute", "memory") if any(cc == c for (_, cc) in drift["new"])}}
    return out


def _drift(gb, gn, bound) -> dict:
    """How fast the machine ran in each run, per class of kernel (compute- or memory-bound):
    the median over every benchmark of the class of its median in that run over its median
    across the base's runs. Benchmarks of one class move together (within a run their ratios
    to the baseline have an IQR of ±2 % while the whole run moves by ±7 %), so dividing this
    out leaves each kernel's own change; a change to every kernel at once shows in the drift
    itself, which is judged on its own (``_drift_rows``)."""
    # our kernels (and a user's) only: a peer's speed must not move the gated verdicts
    common = [k for k in gb.groups if k in gn.groups and k[SPEED_KEY.index("impl")] not in PEERS]
    ref = {k: float(np.median([np.median(s) for s in gb.get_group(k)["samples"]])) for k in common}
    out = {}
    for side, g in (("base", gb), ("new", gn)):
        ratios = {}
        for k in common:
            for r in g.get_group(k).itertuples():
                ratios.setdefault((r.repeat, bound[k]), []).append(np.median(r.samples) / ref[k])
        # too few benchmarks in a class to tell its drift from one kernel's own change
        out[side] = {rc: float(np.median(v)) if len(v) >= MIN_DRIFT_BENCHMARKS else 1.0
                     for rc, v in ratios.items()}
    out["gated"] = {c: sum(1 for k in common if bound[k] == c) >= MIN_DRIFT_BENCHMARKS
                    for c in ("compute", "memory")}
    # a class with no common benchmark in some run: nothing to divide by
    for side, g in (("base", gb), ("new", gn)):
        for k in g.groups:
            if k in bound:
                for r in g.get_group(k)["repeat"]:
                    out[side].setdefault((r, bound[k]), 1.0)
    return out


def _drift_rows(drift: dict, keys, min_effect: float, min_effect_memory: float) -> pd.DataFrame:
    """One row per class: the new run's drift against the base, judged like a benchmark
    (against the base's own run-to-run drift plus the minimum effect). All kernels of a class
    slower at once is either a regression of them all or a slower machine; either way the
    gate cannot vouch for speed and says so."""
    rows = []
    sizes = {k[SPEED_KEY.index("size")] for k in keys}
    size = sizes.pop() if len(sizes) == 1 else 0  # 0: pooled over several sizes
    threads = keys[0][SPEED_KEY.index("threads")]
    for c in ("compute", "memory"):
        new = [v for (_, cc), v in drift["new"].items() if cc == c]
        base = [v for (_, cc), v in drift["base"].items() if cc == c]
        if not new or not base or not drift["gated"].get(c):
            continue
        effect = min_effect_memory if c == "memory" else min_effect
        ratio = float(np.median(new))
        threshold = (1 + effect) * max(1.0, max(base))
        faster_at = min(1.0, min(base)) / (1 + effect)
        verdict = "slower" if ratio >= threshold else "faster" if ratio <= faster_at else "same"
        rows.append({"impl": "ours", "activation": "*", "variant": "*", "drift": True,
                     "direction": "*", "dtype": "*", "size": size, "threads": threads,
                     "bound": c, "normalized_by": "—", "ratio": ratio, "raw_ratio": ratio,
                     "threshold": threshold, "faster_at": faster_at,
                     "base_spread": max(base) / min(base), "verdict": verdict})
    return pd.DataFrame(rows)


def confirm(first: pd.DataFrame, again: pd.DataFrame) -> pd.DataFrame:
    """The gate's second look: a benchmark stays *slower* only if an independent rerun (a
    fresh process, later) compared with the same base says so too. A neighbour's burst that
    slows one run of one benchmark does not repeat; a real slowdown does."""
    out = first.copy()
    again = again.set_index(SPEED_KEY)
    out["confirm_ratio"] = np.nan
    for i, r in out[out["verdict"] == "slower"].iterrows():
        key = tuple(r[k] for k in SPEED_KEY)
        if key in again.index:
            out.loc[i, "confirm_ratio"] = again.loc[key, "ratio"]
            held = again.loc[key, "verdict"] == "slower"
        else:
            held = True  # not rerun: keep the first verdict
        if not held:
            out.loc[i, ["verdict", "failing"]] = ["unconfirmed", False]
    return out


def _notes(base: ResultSet, new: ResultSet) -> list[str]:
    notes = []
    if base.machine and new.machine and base.machine != new.machine:
        notes.append(f"different machines: base {base.machine}, new {new.machine} — the drift "
                     "row absorbs a uniformly faster or slower machine, but kernels do not all "
                     "scale alike across CPUs; record a baseline on the gating machine")
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
            min_effect: float = DEFAULT_MIN_EFFECT,
            min_effect_memory: float = DEFAULT_MIN_EFFECT_MEMORY,
            normalize: str = "drift") -> Comparison:
    c = Comparison(base, new, notes=_notes(base, new),
                   settings={"alpha": alpha, "min_effect": min_effect,
                             "min_effect_memory": min_effect_memory, "normalize": normalize})
    if base.audit is not None and new.audit is not None and len(base.audit) + len(new.audit):
        c.accuracy = compare_accuracy(base.audit, new.audit)
    elif base.audit is not None or new.audit is not None:
        c.notes.append(f"accuracy not compared: no audit.csv in "
                       f"{(new if base.audit is not None else base).path}")
    if base.speed is not None and new.speed is not None:
        c.speed = compare_speed(base.speed, new.speed, alpha=alpha, min_effect=min_effect,
                                min_effect_memory=min_effect_memory, normalize=normalize,
                                labels=(str(base.path), str(new.path)))
    elif base.speed is not None or new.speed is not None:
        c.notes.append(f"speed not compared: no speed-raw.json in "
                       f"{(new if base.speed is not None else base).path}")
    return c

"""The speed table: pytest-benchmark's JSON turned into one row per benchmark, with every
ratio taken against measurements from the same run; and from it and the audit, the fastest
of our variants within the standard accuracy target against the faster of torch and jax
(``best_within_target``)."""

import numpy as np
import pandas as pd

from actbench_ulp.accuracy.table import KERNEL_KEY, worst_error
from actbench_ulp.core.budgets import target

__all__ = ["BEST_COLUMNS", "BEST_PEERS", "SPEED_COLUMNS", "best_within_target", "speed_table"]

SPEED_COLUMNS = [
    "impl", "activation", "variant", "direction", "kind", "dtype", "size", "row_length",
    "threads", "median_s", "iqr_s", "noise", "rounds", "runs", "drift", "ns_per_element", "gb_per_s",
    "roofline_fraction",
    "time_vs_copy", "speedup_vs_numpy_seed", "speedup_vs_torch", "speedup_vs_jax", "max_ulp",
    "first_call_s",
    "thread_speedup", "thread_speedup_noise",
]


def _over_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per benchmark over its runs (``actbench bench --repeat``): the median of the
    runs' medians, their median noise, all rounds, and ``drift``, the slowest run's median
    over the fastest's."""
    key = [c for c in ("impl", "activation", "variant", "direction", "kind", "dtype", "size",
                       "threads") if c in df]
    g = df.groupby(key, sort=False, dropna=False)
    out = g.agg(median_s=("median_s", "median"), iqr_s=("iqr_s", "median"),
                noise=("noise", "median"), rounds=("rounds", "sum"), runs=("repeat", "nunique"),
                fastest=("median_s", "min"), slowest=("median_s", "max"),
                first_call_s=("first_call_s", "max"), bytes=("bytes", "first"),
                max_ulp=("max_ulp", "first"),
                **{c: (c, "first") for c in ("elements", "row_length") if c in df},
                **{c: (c, "median") for c in ("thread_speedup", "thread_speedup_noise") if c in df})
    out["drift"] = out.pop("slowest") / out.pop("fastest")
    return out.reset_index()


def speed_table(bench_json: dict) -> pd.DataFrame:
    """``noise`` is IQR/median of the rounds (median over runs); ``drift`` the spread of the
    runs' medians (1 for a single run); ``roofline_fraction`` is GB/s over the same-run
    ``np.copyto`` GB/s at that dtype and size; ``time_vs_copy`` is the kernel's median over
    the copy's, scaled to the same bytes; speedups are the peer's median over this row's;
    ``thread_speedup`` (runs with more than one thread) is 1 thread's time over all threads',
    interleaved within the run (median over runs)."""
    rows = []
    for b in bench_json.get("benchmarks", []):
        info, stats = b.get("extra_info", {}), b["stats"]
        rows.append({**info, "repeat": info.get("repeat", 0), "median_s": stats["median"],
                     "iqr_s": stats["iqr"], "rounds": stats["rounds"],
                     "noise": stats["iqr"] / stats["median"]})
    if not rows:
        return pd.DataFrame(columns=SPEED_COLUMNS)
    df = _over_runs(pd.DataFrame(rows))
    # per element of the input actually timed (rows of a given length may not fill size)
    elements = df["elements"].fillna(df["size"]) if "elements" in df else df["size"]
    df["ns_per_element"] = df["median_s"] / elements * 1e9
    df["gb_per_s"] = df["bytes"] / df["median_s"] / 1e9
    copy = df[df["impl"] == "np.copyto"].set_index(["dtype", "size"])
    key = list(zip(df["dtype"], df["size"], strict=True))
    copy_gbps = np.array([copy["gb_per_s"].get(k, np.nan) for k in key])
    copy_s_per_byte = np.array([copy["median_s"].get(k, np.nan) / copy["bytes"].get(k, np.nan)
                                if k in copy.index else np.nan for k in key])
    df["roofline_fraction"] = df["gb_per_s"] / copy_gbps
    df["time_vs_copy"] = df["median_s"] / (copy_s_per_byte * df["bytes"])
    case = ["activation", "direction", "dtype", "size"]
    for peer, col in (("numpy-seed", "speedup_vs_numpy_seed"), ("torch", "speedup_vs_torch"),
                      ("jax", "speedup_vs_jax")):
        ref = df[df["impl"] == peer].set_index(case)["median_s"]
        df[col] = [ref.get(tuple(r), np.nan) for r in df[case].itertuples(index=False)] / \
            df["median_s"]
    for col in SPEED_COLUMNS:
        if col not in df:
            df[col] = None
    return df[SPEED_COLUMNS]


BEST_PEERS = ("torch", "jax")
BEST_COLUMNS = [
    "activation", "kind", "direction", "dtype", "size", "row_length", "target_ulp",
    "variant", "max_ulp", "max_over", "ns_per_element", "noise",
    "peer", "peer_max_ulp", "peer_ns_per_element", "peer_noise", "ratio_vs_peer", "excluded",
]
# one table row per timed case: row-wise kernels are timed at one row length per run, kept
# in the key so that runs at several lengths stay apart
_CASE = ["activation", "kind", "direction", "dtype", "size", "row_length"]


def _why_not(worst: float | None, limit: float) -> str | None:
    """Why a variant with this audited worst error cannot count, or None if it can."""
    if worst is None:
        return "unaudited"
    if np.isnan(worst):
        return "error in the audit"  # it raised on some domain: its error is unknown
    if np.isinf(worst):
        return "special-value mismatch"
    return f"{worst:.3g} ULP" if worst > limit else None


def _swept(audit: pd.DataFrame) -> set:
    """The kernels (``KERNEL_KEY``) whose audit holds a complete exhaustive sweep: every input
    of the dtype, so their max ULP is proved rather than a sampled lower bound."""
    if not len(audit) or "domain" not in audit or "n" not in audit:
        return set()
    done = audit[(audit["domain"] == "exhaustive") & (audit["status"] != "error")
                 & (pd.to_numeric(audit["n"], errors="coerce") >= 2.0**32)]
    return {tuple(r) for r in done[KERNEL_KEY].itertuples(index=False)}


def best_within_target(speed: pd.DataFrame, audit: pd.DataFrame) -> pd.DataFrame:
    """One row per timed case of ours (activation × direction × dtype × size, and row length
    for row-wise kernels): the fastest of our variants whose audited worst error (the largest
    max ULP over every audited domain, the exhaustive sweep's included: ``table.worst_error``)
    is within the standard target (``budgets.target``: forward 1 ULP, every other direction 2,
    in float32), not merely within its own budget, which may be looser; its ns/element and
    noise; the faster of torch and jax in the same run, and ``ratio_vs_peer``, ours over the
    peer's ns/element (below 1: ours is faster); ``peer_max_ulp`` that peer's worst audited
    error where the audit has its rows (``actbench audit --impl torch``: NaN where not), since a
    peer's speed may come from accuracy it gives away.  ``max_over`` says whether that max ULP
    covers all inputs (a complete exhaustive sweep in the audit) or is sampled, a lower bound
    (the sampled domains put the float32 fast derivatives under 2 ULP, all inputs at 2.4-3.9).
    ``excluded`` names each variant left out,
    and why: over the target (its max ULP), a special-value mismatch, an error in the audit,
    or unaudited (no audit row for it at that dtype).  ``speed`` is ``speed_table``'s;
    ``audit`` the audit table (``audit.csv`` read by ``resultset.read_audit``)."""
    worst = worst_error(audit) if len(audit) else pd.Series(dtype=float)
    worst = {k: float(v) for k, v in worst.items()}
    swept = _swept(audit)
    timed = speed[speed["impl"].isin(["ours", *BEST_PEERS])]
    rows = []
    for key, group in timed.groupby(_CASE, sort=False, dropna=False):
        case = dict(zip(_CASE, key, strict=True))
        ours = group[group["impl"] == "ours"]
        if ours.empty:
            continue
        limit = target(case["dtype"], case["direction"])
        excluded, within = [], []
        for r in ours.itertuples(index=False):
            w = worst.get(tuple(getattr(r, k) for k in KERNEL_KEY))
            why = _why_not(w, limit)
            if why is None:
                over = "all inputs" if tuple(getattr(r, k) for k in KERNEL_KEY) in swept else "sampled"
                within.append((r.ns_per_element, r.variant, w, r.noise, over))
            else:
                excluded.append(f"{r.variant} ({why})")
        best = min(within, key=lambda t: t[0], default=(np.nan, "", np.nan, np.nan, ""))
        peers = group[group["impl"].isin(BEST_PEERS)]
        peer = peers.loc[peers["ns_per_element"].idxmin()] if len(peers) else None
        peer_ns = float(peer["ns_per_element"]) if peer is not None else np.nan
        peer_worst = (worst.get(tuple(peer[k] for k in KERNEL_KEY), np.nan) if peer is not None
                      else np.nan)
        rows.append({**case, "target_ulp": limit, "variant": best[1], "max_ulp": best[2],
                     "max_over": best[4], "ns_per_element": best[0], "noise": best[3],
                     "peer": peer["impl"] if peer is not None else "",
                     "peer_max_ulp": peer_worst, "peer_ns_per_element": peer_ns,
                     "peer_noise": float(peer["noise"]) if peer is not None else np.nan,
                     "ratio_vs_peer": best[0] / peer_ns, "excluded": "; ".join(excluded)})
    best = pd.DataFrame(rows, columns=BEST_COLUMNS)
    # whole numbers, blank where there is none (elementwise and gated kernels have no rows)
    return best.astype({"size": "int64", "row_length": "Int64"})

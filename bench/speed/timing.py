"""The speed table: pytest-benchmark's JSON turned into one row per benchmark, with every
ratio taken against measurements from the same run."""

import numpy as np
import pandas as pd

__all__ = ["SPEED_COLUMNS", "speed_table"]

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

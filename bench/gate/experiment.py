"""Is the gate quiet on unchanged code, and does it catch real regressions? Measured.

    python -m actbench.gate.experiment --baseline results/baseline --runs 10

runs ``actbench gate`` against one baseline of the unchanged code, ``--runs`` times in each of
three arms, interleaved (aa, slow, inaccurate, aa, …) so that the machine's drift over the
experiment hits every arm alike:

- ``aa``: the code as it is; every failing gate is a false alarm;
- ``slow``: one kernel (``--target``, default sigmoid's forward) made 25 % slower: after its
  result it evaluates itself once more on the first quarter of its input;
- ``inaccurate``: the same kernel computed the naive way in its own precision,
  ``1/(1+exp(-x))``, which underflows to 0 where sigmoid is still a subnormal.

The injections are applied by importing this module with ``ACTBENCH_INJECT`` set: in the
gate's own process (the audit) and, through ``PYTEST_ADDOPTS=-p actbench.gate.experiment``, in
its benchmark subprocess. actbench itself knows nothing of them.

Writes ``runs.csv`` (one row per gate run), ``ratios.csv`` (every benchmark's ratio in every
run, under both normalisations, for the drift analysis) and ``summary.md`` under ``--out``.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["inject", "main"]

ARMS = ("aa", "slow", "inaccurate")
SLOWDOWN = 0.25
_CHILD = ("import sys, actbench.gate.experiment; from actbench.cli import main; "
          "sys.exit(main(sys.argv[1:]))")


def _slowed(kernel):
    def slow(*args, **kwargs):
        result = kernel(*args, **kwargs)
        quarter = tuple(a[..., : max(1, a.shape[-1] // 4)] if hasattr(a, "shape") else a
                        for a in args)
        kernel(*quarter, **{k: v for k, v in kwargs.items() if k != "out"})
        return result

    return slow


def _naive_sigmoid(x, out=None):
    x = np.asarray(x)
    one = x.dtype.type(1)
    with np.errstate(all="ignore"):
        y = one / (one + np.exp(-x))
    if out is not None:
        out[...] = y
        return out
    return y


def inject(spec: str) -> None:
    """Apply ``kind:activation:direction`` (kind: slow or inaccurate) to our catalog kernel."""
    from actbench.core import catalog

    kind, act, direction = spec.split(":")
    variant = catalog.CATALOG[act].variants[0]
    if kind == "slow":
        variant.kernels[direction] = _slowed(variant.kernels[direction])
    elif kind == "inaccurate":
        if (act, direction) != ("sigmoid", "forward"):
            raise ValueError("the inaccurate injection is sigmoid's forward")
        variant.kernels[direction] = _naive_sigmoid
    else:
        raise ValueError(f"unknown injection {kind!r}")


if os.environ.get("ACTBENCH_INJECT"):
    inject(os.environ["ACTBENCH_INJECT"])


def _run(arm: str, i: int, args, out: Path) -> dict:
    run_dir = out / f"{arm}-{i:02d}"
    env = dict(os.environ)
    env.pop("ACTBENCH_INJECT", None)
    if arm != "aa":
        env["ACTBENCH_INJECT"] = f"{arm}:{args.target}"
        env["PYTEST_ADDOPTS"] = (env.get("PYTEST_ADDOPTS", "") + " -p actbench.gate.experiment").strip()
    cmd = [sys.executable, "-c", _CHILD, "gate", "--baseline", args.baseline, "--out",
           str(run_dir), "--jobs", str(args.jobs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"gate run {arm}-{i} ended with {proc.returncode}:\n{proc.stderr[-3000:]}")
    act, direction = args.target.split(":")
    acc = pd.read_csv(run_dir / "compare-accuracy.csv", keep_default_na=False)
    spd = pd.read_csv(run_dir / "compare-speed.csv", keep_default_na=False)
    target_acc = (acc["activation"] == act) & (acc["direction"] == direction)
    target_spd = (spd["activation"] == act) & (spd["direction"] == direction)
    fail_acc = acc[acc["failing"].astype(str) == "True"]
    fail_spd = spd[spd["failing"].astype(str) == "True"]
    others = spd[~target_spd]
    return {
        "arm": arm, "run": i, "exit": proc.returncode, "seconds": round(seconds, 1),
        "accuracy_failing": len(fail_acc), "speed_failing": len(fail_spd),
        "target_accuracy_caught": bool((target_acc & (acc["failing"].astype(str) == "True")).any()),
        "target_speed_caught": bool((target_spd & (spd["failing"].astype(str) == "True")).any()),
        "unconfirmed": int((spd["verdict"] == "unconfirmed").sum()),
        "false_alarms": int(len(fail_spd[~target_spd.loc[fail_spd.index]])
                            + len(fail_acc[~target_acc.loc[fail_acc.index]])),
        "target_ratio": "; ".join(f"{r.dtype} {float(r.ratio):.3f}"
                                  for r in spd[target_spd].itertuples()),
        "max_other_ratio": float(pd.to_numeric(others["ratio"]).max()),
        "min_other_ratio": float(pd.to_numeric(others["ratio"]).min()),
        "failing": "; ".join(f"{r.activation}.{r.direction} {r.dtype}"
                             for r in pd.concat([fail_acc, fail_spd]).itertuples()),
    }


def _ratios(out: Path, baseline: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Every benchmark's ratio in every run under both normalisations (the same samples)."""
    from actbench.core.resultset import load
    from actbench.gate.compare import compare_speed

    base = load(baseline).speed
    frames = []
    for r in runs.itertuples():
        new = load(out / f"{r.arm}-{r.run:02d}").speed
        for norm in ("drift", "none", "run", "beside"):
            c = compare_speed(base, new, normalize=norm)
            frames.append(c[["activation", "direction", "dtype", "ratio", "threshold", "q_slower",
                             "verdict"]]
                          .assign(arm=r.arm, run=r.run, normalize=norm))
    return pd.concat(frames, ignore_index=True)


def _summary(runs: pd.DataFrame, ratios: pd.DataFrame, args) -> str:
    lines = [f"# Gate experiment: {args.runs} runs per arm against {args.baseline}", "",
             f"Injected kernel: {args.target}; slowdown {SLOWDOWN:.0%}; default gate settings.", "",
             "| arm | runs | gate failed | target caught | false alarms (other rows) | "
             "flags the rerun dismissed |",
             "|---|---:|---:|---:|---:|---:|"]
    for arm, g in runs.groupby("arm", sort=False):
        caught = (g["target_speed_caught"] if arm == "slow" else g["target_accuracy_caught"]
                  if arm == "inaccurate" else pd.Series([False] * len(g)))
        lines.append(f"| {arm} | {len(g)} | {int((g['exit'] == 1).sum())} | "
                     f"{'—' if arm == 'aa' else int(caught.sum())} | {int(g['false_alarms'].sum())} | "
                     f"{int(g['unconfirmed'].sum())} |")
    lines += ["", "Drift of unchanged benchmarks between baseline and run (ratio of medians; "
              "all arms, the injected kernel left out), and how many a single run (before the "
              "gate's rerun) would flag under each normalisation:", "",
              "| normalisation | benchmarks × runs | median | p1 | p99 | min | max | flagged |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    act, direction = args.target.split(":")
    keep = ~((ratios["activation"] == act) & (ratios["direction"] == direction))
    for norm, g in ratios[keep].groupby("normalize"):
        r = g["ratio"].astype(float)
        lines.append(f"| {norm} | {len(r)} | {r.median():.3f} | {r.quantile(0.01):.3f} | "
                     f"{r.quantile(0.99):.3f} | {r.min():.3f} | {r.max():.3f} | "
                     f"{int((g['verdict'] == 'slower').sum())} |")
    t = ratios[~keep & (ratios["arm"] == "slow")]
    if len(t):
        lines += ["", "Injected slowdown as measured (ratio of medians, per dtype):", ""]
        for (norm, dtype), g in t.groupby(["normalize", "dtype"]):
            r = g["ratio"].astype(float)
            lines.append(f"- {norm}, {dtype}: median {r.median():.3f}, min {r.min():.3f}, "
                         f"flagged {int((g['verdict'] == 'slower').sum())}/{len(g)}")
    lines += ["", f"Gate run time: median {runs['seconds'].median():.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    from actbench.core.results import write_atomic

    p = argparse.ArgumentParser(prog="python -m actbench.gate.experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, metavar="DIR",
                   help="a baseline of the unchanged code (actbench gate --record)")
    p.add_argument("--runs", type=int, default=10, metavar="N", help="gate runs per arm")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of aa,slow,inaccurate")
    p.add_argument("--target", default="sigmoid:forward", metavar="ACTIVATION:DIRECTION")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="results/gate-experiment", metavar="DIR")
    args = p.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    if set(arms) - set(ARMS) or args.runs < 1:
        p.error(f"--arms takes {', '.join(ARMS)}; --runs at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(args.runs):
        for arm in arms:
            rows.append(_run(arm, i, args, out))
            r = rows[-1]
            print(f"{arm:>10} {i:2d}: exit {r['exit']} failing [{r['failing']}] target "
                  f"{r['target_ratio']} others {r['min_other_ratio']:.3f}..{r['max_other_ratio']:.3f} "
                  f"({r['seconds']} s)", flush=True)
            runs = pd.DataFrame(rows)
            write_atomic(out / "runs.csv", runs.to_csv(index=False))
    ratios = _ratios(out, args.baseline, runs)
    write_atomic(out / "ratios.csv", ratios.to_csv(index=False))
    md = _summary(runs, ratios, args)
    write_atomic(out / "summary.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

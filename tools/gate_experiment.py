"""Is the gate quiet on unchanged code, and does it catch real regressions? Measured.

Research script (not installed with actbench); run it from a checkout with actbench installed:

    python tools/gate_experiment.py --baseline DIR --runs 10   # a baseline recorded on this machine
    python tools/gate_experiment.py --against HEAD --runs 20 [--activation ...]

It runs ``actbench gate`` against one baseline of the unchanged code, ``--runs`` times in each of
three arms, interleaved (aa, slow, inaccurate, aa, …) so that the machine's drift over the
experiment hits every arm alike:

- ``aa``: the code as it is; every failing gate is a false alarm;
- ``slow``: one kernel (``--target``, default sigmoid's forward) made 25 % slower: after its
  result it evaluates itself once more on the first quarter of its input;
- ``inaccurate``: the same kernel computed the naive way in its own precision,
  ``1/(1+exp(-x))``, which underflows to 0 where sigmoid is still a subnormal.

The gate's processes find this module as ``gate_experiment``, with ``tools/`` on their
``PYTHONPATH``. With ``--baseline`` the injections are applied by importing it with
``ACTBENCH_INJECT`` set: in the gate's own process (the audit) and, through
``PYTEST_ADDOPTS=-p gate_experiment``, in its benchmark subprocess. With ``--against REV`` each
arm is a changed copy of REV, as a commit would be: REV exported, the arm's change (an import
of this module's ``inject``) appended to its ``bench/core/catalog.py`` (so the compiled kernels
stay cached) and installed apart; each run is ``actbench gate --against REV`` with that copy
as the new side, while a busy process (``--neighbour``, on by default) keeps the other core
loaded. actbench itself knows nothing of the injections.

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
_CHILD = ("import sys, gate_experiment; from actbench_ulp.cli import main; "
          "sys.exit(main(sys.argv[1:]))")
TOOLS = Path(__file__).resolve().parent  # on the gate's PYTHONPATH: its processes import us


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


def inject(spec: str, catalog: dict | None = None) -> None:
    """Apply ``kind:activation:direction`` (kind: slow or inaccurate) to our kernel in
    ``catalog`` (the installed ``CATALOG`` if None; a changed copy of a revision passes its own,
    whatever its import package)."""
    if catalog is None:
        from actbench_ulp.core.catalog import CATALOG as catalog

    kind, act, direction = spec.split(":")
    variant = catalog[act].variants[0]
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


def _with_tools(env: dict, *first: str) -> dict:
    """``env`` with ``first`` and then ``tools/`` at the front of PYTHONPATH."""
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*first, str(TOOLS), env.get("PYTHONPATH")) if p)
    return env


def _run(arm: str, i: int, args, out: Path) -> dict:
    run_dir = out / f"{arm}-{i:02d}"
    env = _with_tools(dict(os.environ))
    env.pop("ACTBENCH_INJECT", None)
    if arm != "aa":
        env["ACTBENCH_INJECT"] = f"{arm}:{args.target}"
        env["PYTEST_ADDOPTS"] = (env.get("PYTEST_ADDOPTS", "") + " -p gate_experiment").strip()
    cmd = [sys.executable, "-c", _CHILD, "gate", "--baseline", args.baseline, "--out",
           str(run_dir), "--jobs", str(args.jobs)]
    return _gate_row(arm, i, cmd, env, None, run_dir, args)


# --against REV: each arm a changed copy of REV, installed apart, gated against REV itself
_ARM_PATCH = """

# --- tools/gate_experiment.py: this arm's change -----------------------------------------------
from gate_experiment import inject as _inject  # noqa: E402

_inject({spec!r}, CATALOG)
"""


def _arm_sites(args, out: Path) -> tuple[dict, str, Path]:
    """Each arm's copy of --against REV installed apart (built once, kept under --out): REV
    itself for aa, REV with the arm's injection appended to its catalog for the others."""
    from actbench_ulp.gate import against

    sha, top = against.resolve(args.against)
    sites = {}
    for arm in args.arm_list:
        def edit(src, spec=f"{arm}:{args.target}"):
            with open(src / "bench" / "core" / "catalog.py", "a", encoding="utf-8") as f:
                f.write(_ARM_PATCH.format(spec=spec))

        sites[arm] = against.install(args.against, sha, top, out / "sites" / f"{arm}-{sha[:12]}",
                                     sys.stderr, None if arm == "aa" else edit)
    return sites, sha, top


def _run_against(arm: str, i: int, args, out: Path, sites: dict, top: Path) -> dict:
    run_dir = out / f"{arm}-{i:02d}"
    env = _with_tools({k: v for k, v in os.environ.items() if k != "ACTBENCH_INJECT"},
                      str(sites[arm]))
    cmd = [sys.executable, "-m", "actbench_ulp", "gate", "--against", args.against, "--out",
           str(run_dir), "--jobs", str(args.jobs), *args.selection]
    return _gate_row(arm, i, cmd, env, top, run_dir, args)


def _gate_row(arm, i, cmd, env, cwd, run_dir: Path, args) -> dict:
    """Run one gate and summarise it: exit, what failed, the target's ratios, other ratios."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"gate run {arm}-{i} ended with {proc.returncode}:\n{proc.stderr[-3000:]}")
    act, direction = args.target.split(":")
    acc = pd.read_csv(run_dir / "compare-accuracy.csv", keep_default_na=False)
    spd = pd.read_csv(run_dir / "compare-speed.csv", keep_default_na=False)
    # the injections change the accurate variant (the catalog's first)
    target_acc = ((acc["activation"] == act) & (acc["direction"] == direction)
                  & (acc["variant"] == "accurate"))
    target_spd = ((spd["activation"] == act) & (spd["direction"] == direction)
                  & (spd["variant"] == "accurate"))
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
        "max_other_ratio": float(pd.to_numeric(others["ratio"], errors="coerce").max()),
        "min_other_ratio": float(pd.to_numeric(others["ratio"], errors="coerce").min()),
        "failing": "; ".join(f"{r.activation}.{r.direction} {r.dtype}"
                             for r in pd.concat([fail_acc, fail_spd]).itertuples()),
        **_paired_verdicts(spd, target_spd),
    }


def _paired_verdicts(spd: pd.DataFrame, target: pd.Series) -> dict:
    """What the paired test would have said on the same timings (gates against a revision
    only): the paired ratios over rounds timed back to back, BH over their one-sided p-values,
    the same thresholds; before any rerun. Recorded beside the rank test's verdicts to choose
    between them."""
    if "paired_p_slower" not in spd.columns:
        return {}
    from actbench_ulp.gate import stats

    drift = spd["drift"].eq(True) if "drift" in spd else False
    ours = spd["impl"].eq("ours") & ~drift
    p = pd.to_numeric(spd["paired_p_slower"], errors="coerce").where(ours)
    q = pd.Series(stats.bh_adjust(p), index=spd.index)
    ratio = pd.to_numeric(spd["paired_ratio"], errors="coerce")
    flagged = (q <= 0.05) & (ratio >= pd.to_numeric(spd["threshold"], errors="coerce"))
    rank = spd["verdict"].isin(["slower", "unconfirmed"])
    return {"paired_flagged_others": int((flagged & ~target).sum()),
            "paired_target_flagged": bool((flagged & target).any()),
            "rank_flagged_others": int((rank & ~target).sum()),
            "rank_target_flagged": bool((rank & target).any()),
            "target_paired": "; ".join(f"{r.dtype} {_num(r.paired_ratio):.3f} "
                                       f"[{_num(r.paired_low):.3f}, {_num(r.paired_high):.3f}]"
                                       for r in spd[target].itertuples())}


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _ratios(out: Path, baseline: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Every benchmark's ratio in every run under both normalisations (the same samples)."""
    from actbench_ulp.core.resultset import load
    from actbench_ulp.gate.compare import compare_speed

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
    against = (f"--against {args.against}, timed in alternation" if args.against
               else args.baseline)
    lines = [f"# Gate experiment: {args.runs} runs per arm against {against}", "",
             f"Injected kernel: {args.target}; slowdown {SLOWDOWN:.0%}; default gate settings"
             f"{'; selection ' + ' '.join(args.selection) if args.selection else ''}"
             f"{'; a busy process on the other core throughout' if args.neighbour else ''}.", "",
             "| arm | runs | gate failed | target caught | false alarms (other rows) | "
             "flags the rerun dismissed |",
             "|---|---:|---:|---:|---:|---:|"]
    for arm, g in runs.groupby("arm", sort=False):
        caught = (g["target_speed_caught"] if arm == "slow" else g["target_accuracy_caught"]
                  if arm == "inaccurate" else pd.Series([False] * len(g)))
        lines.append(f"| {arm} | {len(g)} | {int((g['exit'] == 1).sum())} | "
                     f"{'—' if arm == 'aa' else int(caught.sum())} | {int(g['false_alarms'].sum())} | "
                     f"{int(g['unconfirmed'].sum())} |")
    lines += ["", ("Unchanged benchmarks, new ÷ base (ratio of medians, each session ÷ its "
                   "drift; all arms, the injected kernel left out), and how many the gate's "
                   "first comparison flagged (before its rerun):" if args.against else
                   "Drift of unchanged benchmarks between baseline and run (ratio of medians; "
                   "all arms, the injected kernel left out), and how many a single run (before "
                   "the gate's rerun) would flag under each normalisation:"), "",
              "| normalisation | benchmarks × runs | median | p1 | p99 | min | max | flagged |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    act, direction = args.target.split(":")
    keep = ~((ratios["activation"] == act) & (ratios["direction"] == direction)
             & (ratios["variant"].fillna("accurate") == "accurate" if "variant" in ratios
                else True))
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
    if "paired_flagged_others" in runs:
        lines += ["", "Rank test (the gate's verdict) against the paired test, on the same first "
                  "runs before the rerun: false flags (other rows, all runs) and runs whose "
                  "target was flagged:", "",
                  "| arm | rank: false flags | rank: target flagged | paired: false flags | "
                  "paired: target flagged |", "|---|---:|---:|---:|---:|"]
        for arm, g in runs.groupby("arm", sort=False):
            lines.append(f"| {arm} | {int(g['rank_flagged_others'].sum())} | "
                         f"{int(g['rank_target_flagged'].sum())}/{len(g)} | "
                         f"{int(g['paired_flagged_others'].sum())} | "
                         f"{int(g['paired_target_flagged'].sum())}/{len(g)} |")
    lines += ["", f"Gate run time: median {runs['seconds'].median():.0f} s "
              f"(min {runs['seconds'].min():.0f}, max {runs['seconds'].max():.0f}).", ""]
    return "\n".join(lines)


def _ratios_against(out: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """Every benchmark's ratio before the rerun (drift-normalised, and paired with its
    interval) in every gate against a revision, from the gate's own compare-speed.csv."""
    # a drift row judges a class of kernels: `drift` and `bound` say which
    cols = ["activation", "variant", "direction", "dtype", "drift", "bound", "ratio", "threshold",
            "q_slower", "verdict", "paired_ratio", "paired_low", "paired_high", "paired_p_slower"]
    frames = []
    for r in runs.itertuples():
        c = pd.read_csv(out / f"{r.arm}-{r.run:02d}" / "compare-speed.csv")
        frames.append(c.reindex(columns=cols).assign(arm=r.arm, run=r.run,
                                                      normalize="drift, alternated"))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    from actbench_ulp.core.results import write_atomic

    p = argparse.ArgumentParser(prog="python tools/gate_experiment.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", metavar="DIR",
                       help="a baseline of the unchanged code (actbench gate --record)")
    which.add_argument("--against", metavar="REV",
                       help="gate changed copies of this git revision against it (gate --against)")
    p.add_argument("--runs", type=int, default=10, metavar="N", help="gate runs per arm")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of aa,slow,inaccurate")
    p.add_argument("--target", default="sigmoid:forward", metavar="ACTIVATION:DIRECTION")
    p.add_argument("--activation", help="with --against: the gate's selection (default: all)")
    p.add_argument("--dtype", help="with --against: the gate's selection")
    p.add_argument("--size", help="with --against: the gate's selection")
    p.add_argument("--interleave", type=int, default=None,
                   help="with --against: the gate's timing sessions")
    p.add_argument("--no-neighbour", dest="neighbour", action="store_false",
                   help="with --against: no busy process on the other core")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="results/gate-experiment", metavar="DIR")
    p.add_argument("--summary-only", action="store_true",
                   help="no new runs: summarise the runs already in --out (an interrupted "
                   "experiment keeps every finished run in runs.csv)")
    args = p.parse_args(argv)
    args.arm_list = [a for a in args.arms.split(",") if a]
    if set(args.arm_list) - set(ARMS) or args.runs < 1:
        p.error(f"--arms takes {', '.join(ARMS)}; --runs at least 1")
    args.selection = [x for k in ("activation", "dtype", "size", "interleave")
                      if getattr(args, k) is not None for x in (f"--{k}", str(getattr(args, k)))]
    if not args.against:
        args.neighbour = False
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        runs = pd.read_csv(out / "runs.csv")
        args.runs = int(runs.groupby("arm").size().max())
        return _finish(out, runs, args)
    if args.against:
        sites, _, top = _arm_sites(args, out)
    neighbour = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                 if args.neighbour else None)
    rows = []
    try:
        for i in range(args.runs):
            for arm in args.arm_list:
                rows.append(_run_against(arm, i, args, out, sites, top) if args.against
                            else _run(arm, i, args, out))
                r = rows[-1]
                print(f"{arm:>10} {i:2d}: exit {r['exit']} failing [{r['failing']}] target "
                      f"{r['target_ratio']} others {r['min_other_ratio']:.3f}..{r['max_other_ratio']:.3f} "
                      f"({r['seconds']} s)", flush=True)
                runs = pd.DataFrame(rows)
                write_atomic(out / "runs.csv", runs.to_csv(index=False))
    finally:
        if neighbour is not None:
            neighbour.kill()
    return _finish(out, runs, args)


def _finish(out: Path, runs: pd.DataFrame, args) -> int:
    from actbench_ulp.core.results import write_atomic

    ratios = _ratios_against(out, runs) if args.against else _ratios(out, args.baseline, runs)
    write_atomic(out / "ratios.csv", ratios.to_csv(index=False))
    md = _summary(runs, ratios, args)
    write_atomic(out / "summary.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

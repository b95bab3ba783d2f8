"""``actbench gate --against REV``: gate this checkout against a git revision, both measured
here and now, their timing runs interleaved (``actbench.gate.against``)."""

import shutil
import tempfile
from pathlib import Path

from actbench.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, flatten, writable_dir
from actbench.cli.gating import _compare_and_report, _comparison, _load_results, replace_results
from actbench.core.exact import default_cache_dir

__all__ = ["cmd_gate_against"]


def _fail(code: int) -> int:
    return EXIT_USAGE if code == EXIT_USAGE else EXIT_FAIL


def _timed(bench_argv, dirs, sites, audits, runs, work: Path, err, what="timing",
           rounds=None, max_time=None) -> int | None:
    """Both sides' interleaved timing runs (in scratch directories under ``work``), each side
    merged into its directory in ``dirs``; an exit code on failure, else None."""
    from actbench.gate import against
    from actbench.gate import runs as gate_runs

    done = {"base": [], "new": []}
    scratch = {side: Path(tempfile.mkdtemp(prefix=f".{side}-runs-", dir=work)) for side in done}
    try:
        for side in against.order(runs):
            d = scratch[side] / f"run{len(done[side])}"
            argv = gate_runs.interleaved_argv(bench_argv, d, audits[side],
                                              rounds or against.RUN_ROUNDS,
                                              max_time or against.RUN_MAX_TIME)
            code = against.run_side(argv, sites[side],
                                    f"{what}, {side} run {len(done[side]) + 1} of {runs}", err)
            if code != EXIT_OK:
                return _fail(code)
            done[side].append(d)
        for side, run_dirs in done.items():
            against.merge_runs(run_dirs, dirs[side])
        return None
    finally:
        for d in scratch.values():
            shutil.rmtree(d, ignore_errors=True)


def _with_paired(c, base_rs, new_rs):
    from actbench.core.resultset import SPEED_KEY
    from actbench.gate import against

    if c.speed is None:
        return
    bound = {tuple(r[k] for k in SPEED_KEY): r["bound"] for _, r in c.speed.iterrows()
             if isinstance(r["bound"], str)}
    pairs = against.paired(base_rs.speed, new_rs.speed, bound)
    attrs = c.speed.attrs
    c.speed = c.speed.merge(pairs, on=list(SPEED_KEY), how="left")
    c.speed.attrs = attrs


def _confirm(c, bench_argv, dirs, sites, work: Path, args, err) -> int | None:
    """Rerun the flagged benchmarks on both sides, interleaved again, and keep the slowdowns
    that this second comparison shows too. Both sides are measured afresh side by side, so
    the rerun is compared unnormalised: a few flagged kernels' common slowdown must not be
    divided out as if it were the machine's."""
    from actbench.gate import against
    from actbench.gate.compare import compare_speed, confirm
    from actbench.gate.runs import confirm_argv

    flagged = c.speed[(c.speed["verdict"] == "slower")
                      & ~c.speed["activation"].str.startswith("(every")]
    if flagged.empty:
        return None
    again = {side: work / f"confirm-{side}" for side in dirs}
    narrowed = confirm_argv(bench_argv, flagged, again["new"])
    print(f"actbench gate: {len(flagged)} benchmark(s) slower; confirming, interleaved again",
          file=err)
    audits = {side: (d / "audit.csv" if (d / "audit.csv").exists() else None)
              for side, d in dirs.items()}
    # a few benchmarks: each run is mostly its start-up, so fewer, longer runs
    code = _timed(narrowed, again, sites, audits, against.CONFIRM_RUNS, work, err, "confirming",
                  rounds=10, max_time=0.125)
    if code is not None:
        return code
    b = _load_results(again["base"], "the confirmation's base runs").speed
    n = _load_results(again["new"], "the confirmation's new runs").speed
    rerun = compare_speed(b, n, alpha=args.alpha, min_effect=args.min_effect,
                          min_effect_memory=args.min_effect_memory, normalize="none")
    attrs = c.speed.attrs
    c.speed = confirm(c.speed, rerun)
    c.speed.attrs = attrs
    c.settings["confirmed"] = True
    for d in again.values():
        shutil.rmtree(d, ignore_errors=True)
    return None


def cmd_gate_against(args, common, out, err):
    from actbench.gate import against
    from actbench.gate import runs as gate_runs

    if args.record:
        raise UsageError("--record goes with --baseline; --against needs no stored baseline")
    if args.interleave < 2:
        raise UsageError("--interleave must be at least 2: one run a side has no pairs")
    try:
        sha, top = against.resolve(args.against)
    except against.BaseRevisionError as exc:
        raise UsageError(str(exc)) from None
    out_dir = Path(args.out)
    writable_dir(args.out, "--out")
    run_dir = Path(tempfile.mkdtemp(prefix=".gate-", dir=out_dir))
    try:
        try:
            site = against.base_site(args.against, sha, top, default_cache_dir(), err)
        except against.BaseRevisionError as exc:
            print(f"actbench gate: {exc}", file=err)
            return EXIT_USAGE
        dirs = {"base": run_dir / "base", "new": run_dir}
        sites = {"base": site, "new": None}
        filters = {"activation": flatten(args.activation) or None,
                   "dtype": flatten(args.dtype) or None, "size": flatten(args.size) or None}
        audit_argv, bench_argv = gate_runs.record_argvs(
            run_dir, filters, common, accuracy=args.only != "speed", speed=args.only != "accuracy")
        if audit_argv is not None:
            for side in ("base", "new"):
                argv = _with_out(audit_argv, dirs[side])
                code = against.run_side(argv, sites[side], f"accuracy, {side}", err)
                if code not in (EXIT_OK, EXIT_FAIL):
                    return _fail(code)
        if bench_argv is not None:
            audits = {side: (dirs[side] / "audit.csv" if audit_argv is not None else None)
                      for side in dirs}
            code = _timed(bench_argv, dirs, sites, audits, args.interleave, run_dir, err)
            if code is not None:
                return code
        against.stamp(dirs["base"], args.against, sha)
        base_rs = _load_results(dirs["base"], f"the base revision's results ({args.against})")
        new_rs = _load_results(dirs["new"], "the new results")
        base_rs.path = out_dir / "base"
        new_rs.path = out_dir
        c = _comparison(base_rs, new_rs, args)
        c.notes.insert(0, f"base: {args.against} ({sha[:12]}), built apart and measured on this "
                          f"machine in this job, {args.interleave} timing runs a side interleaved")
        _with_paired(c, base_rs, new_rs)
        if c.speed is not None and args.confirm and (c.speed["verdict"] == "slower").any():
            code = _confirm(c, bench_argv, dirs, sites, run_dir, args, err)
            if code is not None:
                return code
        code = _compare_and_report(base_rs, new_rs, args, out, err, "actbench gate", run_dir, c)
        replace_results(run_dir, out_dir)
        return code
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _with_out(argv: list[str], out: Path) -> list[str]:
    argv = list(argv)
    i = argv.index("--out")
    argv[i + 1] = str(out)
    return argv

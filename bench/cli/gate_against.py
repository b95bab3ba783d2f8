"""``actbench gate --against REV``: gate this checkout against a git revision, both measured
here and now, their kernels timed in alternation (``actbench_ulp.gate.against``,
``actbench_ulp.gate.alternate``)."""

import shutil
import tempfile
from pathlib import Path

from actbench_ulp.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    flatten,
    parse_sizes,
    pick_names,
    writable_dir,
)
from actbench_ulp.cli.gating import _compare_and_report, _comparison, _load_results, replace_results
from actbench_ulp.core.exact import default_cache_dir

__all__ = ["cmd_gate_against"]


def _selection(args) -> dict:
    """The workers' selection: the gate's filters (names checked here, as ``actbench bench``
    checks them), the stored baseline's sizes and dtypes otherwise, one thread."""
    from actbench_ulp.core import catalog
    from actbench_ulp.gate import alternate
    from actbench_ulp.gate.runs import GATE_FILTERS, GATE_TIMING

    sizes = parse_sizes(args.size) or GATE_FILTERS["size"]
    if min(sizes) < 1:
        raise UsageError("--size must be positive")
    return {"activation": pick_names(args.activation, list(catalog.CATALOG), "activation"),
            "variant": None, "direction": None,
            "dtype": pick_names(args.dtype, list(catalog.DTYPES), "dtype") or GATE_FILTERS["dtype"],
            "size": sizes, "row_length": 1000, "round_s": alternate.ROUND_S,
            "threads": GATE_TIMING["threads"]}


def _timed(selection, dirs, sessions, rounds, sites, work: Path, err, what="timing",
           only=None, audits=None) -> int | None:
    """Both sides timed in alternation (``actbench_ulp.gate.alternate``), each written into its
    directory in ``dirs`` as ``actbench bench`` writes a run, with the worst errors of the
    audit in its directory in ``audits`` (default ``dirs``); an exit code on failure, else
    None: 1 where the new side's worker failed (the change broke a kernel), 2 where the
    base's did (nothing to judge the change by)."""
    from actbench_ulp.accuracy.table import worst_errors_from
    from actbench_ulp.gate import alternate

    try:
        timed = alternate.alternate(selection, sites, sessions, rounds, work, err, what, only)
    except alternate.TimingError as exc:
        print(f"actbench gate: {what}: {exc}", file=err)
        return EXIT_USAGE if exc.side == "base" else EXIT_FAIL
    meta = {"threads": selection["threads"], "rounds": rounds, "repeat": sessions,
            "min_time": selection["round_s"], "max_time": alternate.BENCHMARK_S,
            "timing": "alternating: base and new benchmark by benchmark, a session a repeat",
            "filters": {k: selection[k] for k in ("activation", "dtype", "size")}
            | {"impl": ["ours"]}}
    for side, d in dirs.items():
        alternate.write_side(timed[side], d, meta,
                             worst_errors_from((audits or dirs)[side] / "audit.csv"))
    return None


def _with_paired(c, base_rs, new_rs):
    from actbench_ulp.core.resultset import SPEED_KEY
    from actbench_ulp.gate import against

    if c.speed is None:
        return
    bound = {tuple(r[k] for k in SPEED_KEY): r["bound"] for _, r in c.speed.iterrows()
             if isinstance(r["bound"], str)}
    pairs = against.paired(base_rs.speed, new_rs.speed, bound)
    attrs = c.speed.attrs
    c.speed = c.speed.merge(pairs, on=list(SPEED_KEY), how="left")
    c.speed.attrs = attrs


def _confirm(c, selection, dirs, sites, work: Path, args, err) -> int | None:
    """Time the flagged benchmarks again in a fresh pair of workers, alternating, and keep
    the slowdowns that this second comparison shows too. Both sides are measured afresh side
    by side, so the rerun is compared unnormalised: a few flagged kernels' common slowdown
    must not be divided out as if it were the machine's."""
    from actbench_ulp.core.resultset import SPEED_KEY
    from actbench_ulp.gate import alternate
    from actbench_ulp.gate.compare import compare_speed, confirm

    flagged = c.speed[(c.speed["verdict"] == "slower") & ~c.speed["drift"]]
    if flagged.empty:
        return None
    again = {side: work / f"confirm-{side}" for side in dirs}
    narrowed = {**selection, **{k: list(dict.fromkeys(flagged[k]))
                                for k in ("activation", "variant", "direction", "dtype")}}
    only = {tuple(r[k] for k in SPEED_KEY) for _, r in flagged.iterrows()}
    print(f"actbench gate: {len(flagged)} benchmark(s) slower; confirming in a fresh pair of "
          "workers", file=err)
    code = _timed(narrowed, again, 1, alternate.CONFIRM_ROUNDS, sites, work, err,
                  "confirming", only, audits=dirs)
    if code is not None:
        return code
    b = _load_results(again["base"], "the confirmation's base timing").speed
    n = _load_results(again["new"], "the confirmation's new timing").speed
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
    from actbench_ulp.gate import against
    from actbench_ulp.gate import runs as gate_runs

    if args.record:
        raise UsageError("--record goes with --baseline; --against needs no stored baseline")
    if args.interleave < 2:
        raise UsageError("--interleave must be at least 2: the base's spread between sessions "
                         "sets the gate's threshold")
    selection = _selection(args) if args.only != "accuracy" else None
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
        audit_argv, _ = gate_runs.record_argvs(run_dir, filters, common,
                                               accuracy=args.only != "speed", speed=False)
        if audit_argv is not None:
            for side in ("base", "new"):
                argv = _with_out(audit_argv, dirs[side])
                code = against.run_side(argv, sites[side], f"accuracy, {side}", err)
                if code not in (EXIT_OK, EXIT_FAIL):
                    return EXIT_USAGE if code == EXIT_USAGE else EXIT_FAIL
        if selection is not None:
            from actbench_ulp.gate import alternate

            code = _timed(selection, dirs, args.interleave, alternate.ROUNDS, sites, run_dir, err)
            if code is not None:
                return code
        against.stamp(dirs["base"], args.against, sha)
        base_rs = _load_results(dirs["base"], f"the base revision's results ({args.against})")
        new_rs = _load_results(dirs["new"], "the new results")
        base_rs.path = out_dir / "base"
        new_rs.path = out_dir
        c = _comparison(base_rs, new_rs, args)
        c.notes.insert(0, f"base: {args.against} ({sha[:12]}), built apart and measured on this "
                          f"machine in this job, timed in alternation benchmark by benchmark in "
                          f"{args.interleave} sessions")
        _with_paired(c, base_rs, new_rs)
        if c.speed is not None and args.confirm and (c.speed["verdict"] == "slower").any():
            code = _confirm(c, selection, dirs, sites, run_dir, args, err)
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

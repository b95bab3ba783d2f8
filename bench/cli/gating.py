"""The commands on stored results: ``actbench compare``, ``gate`` and ``report``."""

import os
import tempfile
import time
from pathlib import Path

from actbench_ulp.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, flatten, writable_dir
from actbench_ulp.core.exact import default_cache_dir

__all__ = ["GATE_FILES", "cmd_compare", "cmd_gate", "cmd_report", "replace_results"]

GATE_FILES = ("audit.csv", "audit.json", "speed.csv", "speed.json", "speed-raw.json",
              "speed-best.csv", "speed-best.json", "compare-accuracy.csv", "compare-speed.csv",
              "gate.md")


def _check_compare_options(args):
    if not 0 < args.alpha < 1:
        raise UsageError("--alpha must lie between 0 and 1")
    if args.min_effect < 0 or args.min_effect_memory < 0:
        raise UsageError("--min-effect and --min-effect-memory must not be negative")


def _publish(md: str, args, err):
    """The Markdown summary to --markdown and, in a GitHub Actions job, the step summary."""

    from actbench_ulp.core.results import write_atomic

    if args.markdown:
        write_atomic(Path(args.markdown), md)
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        try:
            with open(step, "a", encoding="utf-8") as f:
                f.write(md + "\n")
        except OSError as exc:
            print(f"actbench: cannot append to $GITHUB_STEP_SUMMARY ({step}): {exc}", file=err)


def _comparison(base_rs, new_rs, args):
    from actbench_ulp.core.resultset import ResultsError
    from actbench_ulp.gate.compare import compare

    try:
        c = compare(base_rs, new_rs, alpha=args.alpha, min_effect=args.min_effect,
                    min_effect_memory=args.min_effect_memory, normalize=args.normalize)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    if not c.compared:
        raise UsageError(f"nothing to compare: {base_rs.path} and {new_rs.path} share neither "
                         "accuracy nor speed results")
    return c


def _compare_and_report(base_rs, new_rs, args, out, err, title, out_dir=None, c=None):

    from actbench_ulp.core.results import write_atomic
    from actbench_ulp.gate import summary

    c = c or _comparison(base_rs, new_rs, args)
    md = summary.markdown(c, title=title)
    if out_dir is not None:
        out_dir = Path(out_dir)
        for name, df in (("accuracy", c.accuracy), ("speed", c.speed)):
            if df is not None:
                write_atomic(out_dir / f"compare-{name}.csv", df.to_csv(index=False))
        write_atomic(out_dir / f"{title.split()[-1]}.md", md)
    try:
        print(md, file=out)
    except BrokenPipeError:  # `actbench gate | head`: the verdict still decides the exit status
        pass
    _publish(md, args, err)
    return EXIT_FAIL if c.failures else EXIT_OK


def _load_results(path, what):
    from actbench_ulp.core.resultset import ResultsError, load

    try:
        return load(path)
    except ResultsError as exc:
        raise UsageError(f"{what}: {exc}") from None


def cmd_compare(args, out, err):
    _check_compare_options(args)
    base_rs, new_rs = _load_results(args.base, "BASE"), _load_results(args.new, "NEW")
    if args.out:
        writable_dir(args.out, "--out")
    return _compare_and_report(base_rs, new_rs, args, out, err, "actbench compare", args.out)


def _gate_step(argv, err, what) -> int:
    """One actbench command of the gate, its table output swallowed (the gate reports)."""
    import io

    print(f"actbench gate: {what} actbench {' '.join(argv)}", file=err)
    from actbench_ulp.cli import main  # the gate runs actbench's own commands in-process

    return main(argv, out=io.StringIO(), err=err)


def _gate_record(args, baseline, common, out, err):
    """Record into a scratch directory beside the baseline and move the files in only when
    every run succeeded: a failed recording never replaces a good baseline."""
    import shutil

    from actbench_ulp.gate import runs as gate

    writable_dir(baseline, "--baseline")
    run_dir = Path(tempfile.mkdtemp(prefix=".record-", dir=baseline))
    try:
        filters = {"activation": flatten(args.activation) or None,
                   "dtype": flatten(args.dtype) or None, "size": flatten(args.size) or None}
        argvs = gate.record_argvs(run_dir, filters, common, accuracy=args.only != "speed",
                                  speed=args.only != "accuracy")
        for argv in argvs:
            if argv is None:
                continue
            code = _gate_step(argv, err, "recording with")
            if code == EXIT_USAGE:
                return code
            if code != EXIT_OK:
                print(f"actbench gate: the baseline's {argv[0]} failed (exit {code}): nothing "
                      f"recorded, {baseline} left as it was", file=err)
                return EXIT_FAIL
        for f in run_dir.iterdir():
            os.replace(f, baseline / f.name)
        print(f"recorded a baseline in {baseline}: "
              f"{', '.join(sorted(p.name for p in baseline.iterdir() if not p.name.startswith('.')))}",
              file=out)
        return EXIT_OK
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _gate_confirm(c, base_rs, bench_argv, run_dir, args, err):
    """Rerun the benchmarks the first run flagged as slower, in a fresh process, and keep
    only the slowdowns that the second run shows as well (``compare.confirm``)."""
    import shutil

    from actbench_ulp.gate.compare import compare_speed, confirm
    from actbench_ulp.gate.runs import confirm_argv

    # the drift rows judge the whole run; only single benchmarks are rerun
    flagged = c.speed[(c.speed["verdict"] == "slower") & ~c.speed["drift"]]
    if flagged.empty:
        return None
    again_dir = run_dir / "confirm"
    argv = confirm_argv(bench_argv, flagged, again_dir)
    code = _gate_step(argv, err, f"{len(flagged)} benchmark(s) slower; confirming with")
    if code != EXIT_OK:
        print("actbench gate: the confirmation run failed", file=err)
        return EXIT_FAIL if code != EXIT_USAGE else code
    again = _load_results(again_dir, "the gate's confirmation run").speed
    again_cmp = compare_speed(base_rs.speed, again, alpha=args.alpha,
                              min_effect=args.min_effect,
                              min_effect_memory=args.min_effect_memory, normalize=args.normalize,
                              drift=c.speed.attrs.get("drift"))
    c.speed = confirm(c.speed, again_cmp)
    c.settings["confirmed"] = True
    shutil.rmtree(again_dir, ignore_errors=True)
    return None


def replace_results(run_dir: Path, out_dir: Path) -> None:
    """Move a finished gate's files from ``run_dir`` into ``out_dir``: the new set replaces the
    last gate's whole set (no stale audit beside a new timing; a directory, such as the base's
    results of ``--against``, replaced whole)."""
    import shutil

    for name in GATE_FILES:
        if not (run_dir / name).exists():
            (out_dir / name).unlink(missing_ok=True)
    for f in run_dir.iterdir():
        if f.is_dir():
            shutil.rmtree(out_dir / f.name, ignore_errors=True)
        os.replace(f, out_dir / f.name)


def cmd_gate(args, out, err):
    import shutil

    from actbench_ulp.gate import runs as gate

    _check_compare_options(args)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    common = ["--jobs", str(args.jobs)] + (["--no-cache"] if args.no_cache else []) + \
        (["--cache", args.cache] if args.cache else [])
    if args.against is not None:
        from actbench_ulp.cli.gate_against import cmd_gate_against

        return cmd_gate_against(args, common, out, err)
    baseline = Path(args.baseline)
    if args.record:
        return _gate_record(args, baseline, common, out, err)
    if args.activation or args.dtype or args.size or args.only:
        raise UsageError("the gate reruns the baseline's own selection; --activation, --dtype, "
                         "--size and --only go with --record")
    if not baseline.is_dir():
        raise UsageError(f"no baseline at {baseline}: record one with actbench gate --baseline "
                         f"{baseline} --record")
    base_rs = _load_results(baseline, "--baseline")
    out_dir = Path(args.out)
    b, o = baseline.resolve(), out_dir.resolve()
    if o == b or b in o.parents or o in b.parents:
        raise UsageError(f"--out {args.out} and --baseline {args.baseline} overlap: the gate's new "
                         "results would overwrite the baseline")
    writable_dir(args.out, "--out")
    # run into a fresh directory so that results of an earlier gate can never be compared
    run_dir = Path(tempfile.mkdtemp(prefix=".gate-", dir=out_dir))
    try:
        audit_argv, bench_argv = gate.rerun_argvs(base_rs.audit_meta if base_rs.audit is not None
                                                  else None,
                                                  base_rs.speed_meta if base_rs.speed is not None
                                                  else None, run_dir, common)
        for argv in (audit_argv, bench_argv):
            if argv is None:
                continue
            code = _gate_step(argv, err, "running")
            if code == EXIT_USAGE:
                return code
            if argv[0] == "bench" and code != EXIT_OK:
                print("actbench gate: the benchmark run failed", file=err)
                return EXIT_FAIL
        new_rs = _load_results(run_dir, "the gate's new results")
        new_rs.path = out_dir  # where its files are about to be
        c = _comparison(base_rs, new_rs, args)
        if c.speed is not None and args.confirm and (c.speed["verdict"] == "slower").any():
            code = _gate_confirm(c, base_rs, bench_argv, run_dir, args, err)
            if code is not None:
                return code
        code = _compare_and_report(base_rs, new_rs, args, out, err, "actbench gate", run_dir, c)
        replace_results(run_dir, out_dir)
        return code
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def cmd_report(args, out, err):
    from tqdm import tqdm

    from actbench_ulp.core import resultset
    from actbench_ulp.core.exact import Cache
    from actbench_ulp.report import document
    from actbench_ulp.report.build import build

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.pages is not None:
        from actbench_ulp.report.pages import write_pages

        writable_dir(args.pages, "--pages")
        for path in write_pages(args.results, args.pages):
            print(f"wrote {path}", file=out)
        return 0
    rs = resultset.load(args.results)
    writable_dir(args.out, "--out")
    cache_dir = None if args.no_cache else (args.cache or default_cache_dir())
    if cache_dir is not None:
        writable_dir(cache_dir, "the cache directory")
    start = time.perf_counter()

    def exact_progress(total):
        return tqdm(total=total, desc="exact values", unit="pt", file=err, disable=None)

    rep = build(rs, Cache(cache_dir), args.jobs, exact_progress)
    document.render_figures(rep, lambda figs: tqdm(figs, desc="figures", unit="fig", file=err,
                                                 disable=None))
    html_path = document.write(rep, args.out)
    for text in rep.notices:
        print(f"note: {text}", file=out)
    print(f"wrote {html_path} and {Path(args.out) / 'report.md'} with {len(rep.figures)} figures "
          f"in {time.perf_counter() - start:.0f} s", file=out)
    return 0

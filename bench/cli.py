"""``actbench``: list the catalog, audit kernels against exact references, time them, compare
two result sets and gate on a stored baseline.

Exit status: 0 every audited row is within budget (compare/gate: nothing regressed), 1 some
row is not (compare/gate: a regression), 2 usage error (unknown name, malformed budget file or
result set, bad option).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from . import catalog
from .budgets import DEFAULT_BUDGETS, BudgetError, load_budgets
from .domains import DOMAINS, PROFILES, SIXTEEN_BIT
from .errors import ResultsError
from .exact import default_cache_dir
from .regressions import DEFAULT_FILE as DEFAULT_REGRESSIONS

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
GATE_FILES = ("audit.csv", "audit.json", "speed.csv", "speed.json", "speed-raw.json",
              "compare-accuracy.csv", "compare-speed.csv", "gate.md")


class UsageError(Exception):
    pass


def _names(values, known, what):
    """Flatten repeated and comma-separated options; reject unknown names."""
    if not values:
        return None
    names = _flatten(values)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return names


def _variants():
    return list(dict.fromkeys(v.name for a in catalog.CATALOG.values() for v in a.variants))


def _parser():
    p = argparse.ArgumentParser(
        prog="actbench",
        description="Accuracy audit and timing of activation kernels against exact mpmath "
        "references, comparison of result sets and a CI gate.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list activations, kinds, directions, variants, dtypes and domains")
    a = sub.add_parser(
        "audit",
        help="audit kernels against exact references and check the budgets",
        description="Audit every selected kernel (ours, and any --impl) on every selected dtype "
        "and domain. Filters take names, repeated or comma-separated. Exit 0: all rows within "
        "budget; 1: some row is not (or an implementation raised); 2: usage error.",
    )
    a.add_argument("--activation", action="append", metavar="NAME")
    a.add_argument("--variant", action="append", metavar="NAME")
    a.add_argument("--direction", action="append", metavar="NAME",
                   help=", ".join(catalog.DIRECTIONS))
    a.add_argument("--dtype", action="append", metavar="NAME",
                   help=", ".join((*catalog.DTYPES, *SIXTEEN_BIT)) + " (default: float32, float64)")
    a.add_argument("--domain", action="append", metavar="NAME",
                   help=", ".join(DOMAINS) + " (default: the profile's)")
    a.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="quick: special, thresholds, core, wide (2,000 points), regressions; "
                   "full: 20,000 points and bits as well")
    a.add_argument("--points", type=int, default=None, metavar="N",
                   help="points in the random domains (core, wide, bits); default: the profile's")
    a.add_argument("--impl", action="append", metavar="NAME",
                   help="implementation to audit: ours (default), numpy-seed, scipy, torch, or "
                   "module:function (with a single --activation); repeat to compare")
    a.add_argument("--impl-derivative", metavar="MODULE:FUNCTION",
                   help="the derivative (or row-wise VJP) of a module:function implementation")
    _exact_value_options(a)
    a.add_argument("--budgets", default=str(DEFAULT_BUDGETS), metavar="FILE",
                   help="budget file (default: the packaged bench/budgets.toml)")
    a.add_argument("--regressions", default=str(DEFAULT_REGRESSIONS), metavar="FILE",
                   help="worst-input regression file replayed as the regressions domain")
    a.add_argument("--record-regressions", action="store_true",
                   help="add the worst input of each of our failing rows to the regression file")
    a.add_argument("--out", default="results", metavar="DIR",
                   help="write audit.csv and audit.json here (default: results)")
    b = sub.add_parser(
        "bench",
        help="time kernels and peers with pytest-benchmark, beside np.copyto of the same bytes",
        description="Run the pytest-benchmark suite (bench/benchmarks) and write speed.csv, the "
        "raw pytest-benchmark JSON (speed-raw.json) and speed.json (metadata). Filters as for "
        "audit; the thread count is pinned (NUMBA_NUM_THREADS, torch) before anything starts.",
    )
    b.add_argument("--activation", action="append", metavar="NAME")
    b.add_argument("--variant", action="append", metavar="NAME",
                   help="our variants to time (default: all; peers run once per activation)")
    b.add_argument("--direction", action="append", metavar="NAME")
    b.add_argument("--dtype", action="append", metavar="NAME", help="float32, float64")
    b.add_argument("--size", action="append", metavar="N",
                   help="elements per call (default: 1000, 100000, 1000000, 10000000)")
    b.add_argument("--impl", action="append", metavar="NAME",
                   help="ours (default), numpy-seed, scipy, torch, or module:function (with a "
                   "single --activation); repeat to compare")
    b.add_argument("--impl-derivative", metavar="MODULE:FUNCTION",
                   help="the derivative (or row-wise VJP) of a module:function implementation")
    b.add_argument("--threads", type=int, default=1, metavar="N", help="threads (default 1)")
    b.add_argument("--max-time", type=float, default=0.1, metavar="S",
                   help="pytest-benchmark's --benchmark-max-time per benchmark (default 0.1)")
    b.add_argument("--rounds", type=int, default=5, metavar="N",
                   help="at least this many rounds per benchmark (default 5; the gate's "
                   "baselines use 20 so that a rank test has samples to work with)")
    b.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run the whole suite N times, each in a fresh process (default 1; the "
                   "gate's baselines use 5, so that the spread between runs is known)")
    b.add_argument("--min-time", type=float, default=0.000005, metavar="S",
                   help="pytest-benchmark's --benchmark-min-time: calls are repeated within a "
                   "round until it lasts this long (default 5e-6)")
    b.add_argument("--audit", default=None, metavar="FILE",
                   help="audit table whose max ULP travels with each timing (default: "
                   "audit.csv in --out, if present)")
    b.add_argument("--out", default="results", metavar="DIR",
                   help="write speed.csv, speed-raw.json and speed.json here (default: results)")
    c = sub.add_parser(
        "compare",
        help="compare two result sets: accuracy exactly, speed with a rank test",
        description="Compare the results in NEW with those in BASE (directories written by "
        "actbench audit and/or bench). Accuracy: a row fails when it gains a special-value "
        "mismatch, starts raising, or its max ULP grows beyond its budget; any of our rows out "
        "of budget fails too. Speed: each run's round times are divided by its drift (the "
        "median change of every compute- or memory-bound benchmark, judged on its own); a "
        "benchmark is slower when a one-sided Mann-Whitney U "
        "test, Benjamini-Hochberg-controlled over all benchmarks, and the minimum effect agree. "
        "Prints a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set). Exit 0: "
        "nothing regressed; 1: something did; 2: unreadable or incomparable results.",
    )
    c.add_argument("base", metavar="BASE")
    c.add_argument("new", metavar="NEW")
    _compare_options(c)
    c.add_argument("--out", metavar="DIR", default=None,
                   help="also write compare-accuracy.csv, compare-speed.csv and compare.md here")
    g = sub.add_parser(
        "gate",
        help="rerun a stored baseline's audit and benchmarks, compare, exit 1 on a regression",
        description="With --record: audit everything (quick profile) and time our kernels "
        "(1e5 elements, float32 and float64, 20+ rounds, 1 thread) into the baseline directory. "
        "Without: rerun exactly what the baseline holds (same selection, profile, sizes, "
        "rounds, threads) into --out and compare as actbench compare does. Exit 0 / 1 / 2.",
    )
    g.add_argument("--baseline", required=True, metavar="DIR", help="the baseline directory")
    g.add_argument("--record", action="store_true",
                   help="record a new baseline into DIR instead of comparing with it")
    g.add_argument("--only", choices=("accuracy", "speed"), default=None,
                   help="with --record: record only the audit or only the timings")
    g.add_argument("--activation", action="append", metavar="NAME", help="with --record")
    g.add_argument("--dtype", action="append", metavar="NAME", help="with --record")
    g.add_argument("--size", action="append", metavar="N", help="with --record (default 1e5)")
    g.add_argument("--out", default="results/gate", metavar="DIR",
                   help="where the new results and gate.md go (default results/gate)")
    g.add_argument("--no-confirm", dest="confirm", action="store_false",
                   help="fail on the first run's slowdowns; by default a flagged benchmark is "
                   "rerun in a fresh process and fails only if the rerun is slower too")
    _exact_value_options(g)
    _compare_options(g)
    r = sub.add_parser(
        "report",
        help="write an HTML report and a Markdown summary with figures from stored results",
        description="Read the results in --results (actbench audit and/or bench) and write "
        "report.html (self-contained: figures inlined), report.md and figures/*.png into --out: "
        "the seed report's findings measured and its figures from our kernels, ULP error "
        "against the input for every audited kernel and implementation, speed charts with the "
        "copy roofline, speed against accuracy, the result tables (failing rows first) and the "
        "run metadata. Works with only accuracy or only speed results and says what is "
        "missing. Exit 0: written; 2: unreadable results or unwritable output.",
    )
    r.add_argument("--results", default="results", metavar="DIR",
                   help="directory written by actbench audit and/or bench (default: results)")
    r.add_argument("--out", default="results/report", metavar="DIR",
                   help="where report.html, report.md and figures/ go (default: results/report)")
    _exact_value_options(r)
    return p


def _exact_value_options(p):
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="processes computing exact values (default: all cores)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help=f"exact-value cache (default: $ACTBENCH_CACHE or {default_cache_dir()})")
    p.add_argument("--no-cache", action="store_true", help="compute every exact value afresh")


def _compare_options(p):
    from .compare import DEFAULT_ALPHA, DEFAULT_MIN_EFFECT, DEFAULT_MIN_EFFECT_MEMORY, NORMALIZE

    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, metavar="Q",
                   help=f"false discovery rate over all benchmarks (default {DEFAULT_ALPHA})")
    p.add_argument("--min-effect", type=float, default=DEFAULT_MIN_EFFECT, metavar="F",
                   help="smallest slowdown that counts, beyond the slowest baseline run, as a "
                   f"fraction (default {DEFAULT_MIN_EFFECT})")
    p.add_argument("--min-effect-memory", type=float, default=DEFAULT_MIN_EFFECT_MEMORY,
                   metavar="F", help="the same for memory-bound kernels (within twice the copy "
                   f"of their bytes; default {DEFAULT_MIN_EFFECT_MEMORY}: their drift between "
                   "runs of unchanged code reached 66 %% on this project's machine)")
    p.add_argument("--normalize", choices=NORMALIZE, default="drift",
                   help="divide each run's round times by its drift (default: the median change "
                   "of every compute- or memory-bound benchmark against the baseline; the drift "
                   "itself is judged as a row of its own), not at all (none), or by a yardstick: "
                   "np.copyto of the same bytes / a scalar libm loop, as the run's median (run) "
                   "or timed beside each benchmark (beside)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown summary here")


def _cmd_list(out):
    width = max(len(", ".join(v.name for v in a.variants)) for a in catalog.CATALOG.values())
    print(f"{'activation':<12} {'kind':<12} {'directions':<20} {'variants':<{width}} parameters",
          file=out)
    for act in catalog.CATALOG.values():
        params = ", ".join(f"{k}={v!r}" for k, v in act.params.items())
        if act.kind == "gated":
            params = f"y = a·{act.gate}(b); also {act.name}(x, dim=-1)"
        elif act.kind == "rowwise":
            params = "axis=-1, temperature=1.0 (softmax of x/temperature)"
        variants = ", ".join(v.name for v in act.variants)
        print(f"{act.name:<12} {act.kind:<12} {', '.join(act.directions):<20} {variants:<{width}} "
              f"{params or '-'}", file=out)
        if act.kinks:
            print(f"{'':<12} conventions: {act.kinks}", file=out)
    print(f"\ndtypes:  {', '.join(catalog.DTYPES)} (elementwise also {', '.join(SIXTEEN_BIT)})",
          file=out)
    print(f"domains: {', '.join(DOMAINS)}", file=out)
    print("variants:", file=out)
    methods = {}
    for act in catalog.CATALOG.values():
        for v in act.variants:
            methods.setdefault(v.name, (v.method, v.dtypes))
    for name, (method, dtypes) in methods.items():
        takes = f" [{', '.join(dtypes)} only]" if dtypes else ""
        print(f"  {name}{takes}: {method}", file=out)
    print("implementations: ours, numpy-seed, scipy, torch (if installed), module:function",
          file=out)
    return EXIT_OK


def _impls(args, acts, err):
    from . import peers

    names = _flatten(args.impl) or ["ours"]
    user = [n for n in names if ":" in n]
    if user and (not acts or len(acts) != 1):
        raise UsageError(f"--impl {user[0]} is one activation's function: give exactly one "
                         "--activation")
    if args.impl_derivative and not user:
        raise UsageError("--impl-derivative goes with an --impl module:function")
    impls = []
    for name in dict.fromkeys(names):
        try:
            impls.append(peers.resolve(name, args.impl_derivative if ":" in name else None))
        except peers.PeerUnavailable as exc:
            print(f"actbench: {exc}; its rows are skipped", file=err)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not impls:
        raise UsageError("none of the requested implementations is available")
    return impls


def _writable_dir(path, what):
    """Create ``path`` if needed and check a file can be written there, before any work."""
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".actbench-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"{what} {path!r} is not a writable directory: {exc.strerror or exc}") from None


def _flatten(values):
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def _cmd_audit(args, out, err):
    from . import audit, results, table  # heavy imports (numba kernels) only when auditing
    from .exact import Cache
    from .regressions import RegressionError, Regressions

    acts = _names(args.activation, list(catalog.CATALOG), "activation")
    variants = _names(args.variant, _variants(), "variant")
    directions = _names(args.direction, list(catalog.DIRECTIONS), "direction")
    dtypes = _names(args.dtype, [*catalog.DTYPES, *SIXTEEN_BIT], "dtype") or list(catalog.DTYPES)
    profile = PROFILES[args.profile]
    domains = _names(args.domain, list(DOMAINS), "domain") or list(profile["domains"])
    points = profile["points"] if args.points is None else args.points
    if points < 1:
        raise UsageError("--points must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if "exhaustive" in domains and not set(dtypes) & set(SIXTEEN_BIT):
        raise UsageError("the exhaustive domain needs --dtype float16 or bfloat16")
    budgets = load_budgets(args.budgets)
    try:
        regressions = Regressions(args.regressions)
    except RegressionError as exc:
        raise UsageError(str(exc)) from None
    selection = list(catalog.cases(acts, variants, directions))
    if not selection:
        raise UsageError("the filters select no catalog row")
    impls = _impls(args, acts, err)
    _writable_dir(args.out, "--out")
    cache_dir = None if args.no_cache else (args.cache or default_cache_dir())
    if cache_dir is not None:
        _writable_dir(cache_dir, "the cache directory")
    cache = Cache(cache_dir)
    start = time.perf_counter()
    show = err.isatty()

    def progress(row, done=[0]):  # noqa: B006 - a counter local to this call
        done[0] += 1
        if show:
            print(f"\raudited {done[0]} rows", end="", file=err, flush=True)

    def exact_progress(total):
        from tqdm import tqdm

        # a progress bar only where the work is worth watching (~1 s per 20,000 points)
        return tqdm(total=total, desc="exact values", unit="pt", file=err,
                    disable=None if total > 20000 else True)

    rows = audit.run_audit(selection, dtypes, domains, budgets, points, progress, impls=impls,
                           cache=cache, jobs=args.jobs, regressions=regressions,
                           exact_progress=exact_progress)
    if show:
        print(file=err)
    if not rows:
        narrow = sorted({f"{c.variant.name} takes {', '.join(c.variant.dtypes)} only"
                         for c in selection if c.variant.dtypes})
        raise UsageError("nothing to audit: the selected activations have no row in these dtypes "
                         "and domains (16-bit dtypes are for elementwise activations; "
                         + "".join(f"{n}; " for n in narrow)
                         + "the regressions domain has entries only where something once failed)")
    df = table.to_frame(rows)
    elapsed = time.perf_counter() - start
    csv_path, _ = results.write_table(
        df, args.out, "audit", budgets=budgets.source, seconds=round(elapsed, 1),
        profile=args.profile, jobs=args.jobs, impls=[i.name for i in impls],
        impl_derivative=args.impl_derivative,
        cache={"dir": str(cache.directory) if cache.directory else None, "hits": cache.hits,
               "misses": cache.misses, "corrupt": cache.corrupt},
        filters={"activation": acts, "variant": variants, "direction": directions,
                 "dtype": dtypes, "domain": domains, "points": points},
    )
    print(table.render(df), file=out)
    failing = df[table.failed(df)]
    if args.record_regressions:
        added = _record(failing, selection, regressions)
        print(f"recorded {added} new input(s) in {regressions.path}", file=out)
    print(f"\n{len(df)} rows, {len(failing)} failed, {elapsed:.1f} s "
          f"(exact values: {cache.hits} cached, {cache.misses} computed); wrote {csv_path}",
          file=out)
    return EXIT_FAIL if len(failing) else EXIT_OK


def _record(failing, selection, regressions) -> int:
    import json

    by_key = {(c.activation.name, c.direction): c for c in selection}
    added = 0
    for r in failing[failing["impl"] == "ours"].itertuples():
        pts = json.loads(r.worst_points)
        if pts:
            why = f"{pts[0]['kind']}: got {pts[0]['got']} want {pts[0]['want']} ({pts[0]['ulp']:.4g} ulp)"
            added += regressions.add(by_key[(r.activation, r.direction)], r.dtype, pts[0], why)
    if added:
        regressions.save()
    return added


def _cmd_bench(args, out, err):
    import json
    import subprocess

    from . import results, speed

    acts = _names(args.activation, list(catalog.CATALOG), "activation")
    variants = _names(args.variant, _variants(), "variant")
    directions = _names(args.direction, list(catalog.DIRECTIONS), "direction")
    dtypes = _names(args.dtype, list(catalog.DTYPES), "dtype")
    impls = [i.name for i in _impls(args, acts, err)]
    try:
        sizes = [int(float(v)) for v in _flatten(args.size)] or None
    except ValueError:
        raise UsageError(f"--size takes whole numbers, got {args.size}") from None
    if ((sizes and min(sizes) < 1) or args.threads < 1 or args.max_time <= 0
            or args.rounds < 1 or args.min_time <= 0 or args.repeat < 1):
        raise UsageError("--size, --threads, --max-time, --rounds, --min-time and --repeat must "
                         "be positive")
    _writable_dir(args.out, "--out")
    if args.audit is None:
        args.audit = str(Path(args.out) / "audit.csv")
    chosen = [c for c in catalog.cases(acts, variants, directions)
              if any(c.takes(dt) for dt in dtypes or catalog.DTYPES)]
    if not chosen and "ours" in impls:
        raise UsageError("the filters select no catalog row that takes these dtypes")
    config = {"activation": acts, "variant": variants, "direction": directions, "dtype": dtypes,
              "size": sizes, "impl": impls, "impl_derivative": args.impl_derivative, "audit": args.audit}
    env = {**os.environ, "ACTBENCH_BENCH": json.dumps(config),
           "NUMBA_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    suite = Path(__file__).with_name("benchmarks") / "test_speed.py"
    raw = None
    for repeat in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            raw_path = Path(tmp) / "raw.json"
            cmd = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
                   "-o", "addopts=", "-W", "error", "--benchmark-json", str(raw_path),
                   f"--benchmark-min-rounds={args.rounds}",
                   f"--benchmark-max-time={args.max_time}",
                   f"--benchmark-min-time={args.min_time}",
                   "--benchmark-disable-gc", "--benchmark-columns=median,iqr,rounds"]
            if args.repeat > 1 and err.isatty():
                print(f"\rbenchmark run {repeat + 1} of {args.repeat}", end="", file=err, flush=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0 or not raw_path.exists():
                print(proc.stdout[-4000:], proc.stderr[-2000:], file=err)
                print("actbench: the benchmark suite failed", file=err)
                return EXIT_FAIL
            run = json.loads(raw_path.read_text())
        # each repeat is a fresh process (fresh allocations, fresh machine moment): the spread
        # between them is what `actbench compare` needs to tell drift from a regression
        for b in run["benchmarks"]:
            b["extra_info"]["repeat"] = repeat
            # 6 significant digits: rounds last >= 5 µs, the clock resolves ~50 ns; a 17-digit
            # float per round made a five-run baseline 3 MB
            b["stats"]["data"] = [float(f"{v:.6g}") for v in b["stats"]["data"]]
        if raw is None:
            raw = run
        else:
            raw["benchmarks"] += run["benchmarks"]
    if args.repeat > 1 and err.isatty():
        print(file=err)
    table = speed.speed_table(raw)
    results.write_atomic(Path(args.out) / "speed-raw.json", json.dumps(raw) + "\n")
    csv_path, _ = results.write_table(table, args.out, "speed", threads=args.threads,
                                      max_time=args.max_time, rounds=args.rounds,
                                      repeat=args.repeat,
                                      min_time=args.min_time, filters=config,
                                      impl_derivative=args.impl_derivative,
                                      raw="speed-raw.json",
                                      machine_info=raw.get("machine_info"))
    import pandas as pd

    shown = table[["impl", "activation", "variant", "direction", "dtype", "size", "ns_per_element",
                   "time_vs_copy", "speedup_vs_numpy_seed", "speedup_vs_torch", "noise",
                   "max_ulp", *(["thread_speedup"] if args.threads > 1 else [])]]
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.float_format", lambda v: f"{v:.3g}"):
        print(shown.to_string(index=False), file=out)
    print(f"\n{len(table)} benchmarks, {args.threads} thread(s); wrote {csv_path}", file=out)
    return EXIT_OK


def _check_compare_options(args):
    if not 0 < args.alpha < 1:
        raise UsageError("--alpha must lie between 0 and 1")
    if args.min_effect < 0 or args.min_effect_memory < 0:
        raise UsageError("--min-effect and --min-effect-memory must not be negative")


def _publish(md: str, args, err):
    """The Markdown summary to --markdown and, in a GitHub Actions job, the step summary."""

    from .results import write_atomic

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
    from .compare import compare
    from .resultset import ResultsError

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

    from . import summary
    from .results import write_atomic

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
    from .resultset import ResultsError, load

    try:
        return load(path)
    except ResultsError as exc:
        raise UsageError(f"{what}: {exc}") from None


def _cmd_compare(args, out, err):
    _check_compare_options(args)
    base_rs, new_rs = _load_results(args.base, "BASE"), _load_results(args.new, "NEW")
    if args.out:
        _writable_dir(args.out, "--out")
    return _compare_and_report(base_rs, new_rs, args, out, err, "actbench compare", args.out)


def _gate_step(argv, err, what) -> int:
    """One actbench command of the gate, its table output swallowed (the gate reports)."""
    import io

    print(f"actbench gate: {what} actbench {' '.join(argv)}", file=err)
    return main(argv, out=io.StringIO(), err=err)


def _gate_record(args, baseline, common, out, err):
    """Record into a scratch directory beside the baseline and move the files in only when
    every run succeeded: a failed recording never replaces a good baseline."""
    import shutil

    from . import gate

    _writable_dir(baseline, "--baseline")
    run_dir = Path(tempfile.mkdtemp(prefix=".record-", dir=baseline))
    try:
        filters = {"activation": _flatten(args.activation) or None,
                   "dtype": _flatten(args.dtype) or None, "size": _flatten(args.size) or None}
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

    from .compare import compare_speed, confirm
    from .gate import confirm_argv

    # the drift rows judge the whole run; only single benchmarks are rerun
    flagged = c.speed[(c.speed["verdict"] == "slower")
                      & ~c.speed["activation"].str.startswith("(every")]
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


def _cmd_gate(args, out, err):
    import shutil

    from . import gate

    _check_compare_options(args)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    common = ["--jobs", str(args.jobs)] + (["--no-cache"] if args.no_cache else []) + \
        (["--cache", args.cache] if args.cache else [])
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
    _writable_dir(args.out, "--out")
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
        # the new set replaces the last gate's whole set: no stale audit beside a new timing
        for name in GATE_FILES:
            if not (run_dir / name).exists():
                (out_dir / name).unlink(missing_ok=True)
        for f in run_dir.iterdir():
            os.replace(f, out_dir / f.name)
        return code
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _cmd_report(args, out, err):
    from tqdm import tqdm

    from . import report, resultset
    from .exact import Cache

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    rs = resultset.load(args.results)
    _writable_dir(args.out, "--out")
    cache_dir = None if args.no_cache else (args.cache or default_cache_dir())
    if cache_dir is not None:
        _writable_dir(cache_dir, "the cache directory")
    start = time.perf_counter()

    def exact_progress(total):
        return tqdm(total=total, desc="exact values", unit="pt", file=err, disable=None)

    rep = report.build(rs, Cache(cache_dir), args.jobs, exact_progress)
    report.render_figures(rep, lambda figs: tqdm(figs, desc="figures", unit="fig", file=err,
                                                 disable=None))
    html_path = report.write(rep, args.out)
    for text in rep.notices:
        print(f"note: {text}", file=out)
    print(f"wrote {html_path} and {Path(args.out) / 'report.md'} with {len(rep.figures)} figures "
          f"in {time.perf_counter() - start:.0f} s", file=out)
    return 0


def main(argv=None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list(out)
        if args.command == "bench":
            return _cmd_bench(args, out, err)
        if args.command == "compare":
            return _cmd_compare(args, out, err)
        if args.command == "gate":
            return _cmd_gate(args, out, err)
        if args.command == "report":
            return _cmd_report(args, out, err)
        return _cmd_audit(args, out, err)
    except (UsageError, BudgetError, ResultsError) as exc:
        print(f"actbench: error: {exc}", file=err)
        return EXIT_USAGE
    except BrokenPipeError:  # `actbench list | head`: the reader left, nothing is wrong
        return EXIT_OK
    except OSError as exc:  # an unwritable --markdown or output file, a full disk
        print(f"actbench: error: {exc.filename or ''}: {exc.strerror or exc}", file=err)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

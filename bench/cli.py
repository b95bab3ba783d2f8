"""``actbench``: list the catalog, audit kernels against exact references.

Exit status: 0 every audited row is within budget, 1 some row is not, 2 usage error
(unknown name, malformed budget file, bad option).
"""

import argparse
import os
import sys
import tempfile
import time

from . import catalog
from .budgets import DEFAULT_BUDGETS, BudgetError, load_budgets
from .domains import DOMAINS, PROFILES, SIXTEEN_BIT
from .exact import default_cache_dir
from .regressions import DEFAULT_FILE as DEFAULT_REGRESSIONS

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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
        description="Accuracy audit of activation kernels against exact mpmath references.",
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
    a.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="processes computing exact values (default: all cores)")
    a.add_argument("--cache", default=None, metavar="DIR",
                   help=f"exact-value cache (default: $ACTBENCH_CACHE or {default_cache_dir()})")
    a.add_argument("--no-cache", action="store_true", help="compute every exact value afresh")
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
    b.add_argument("--direction", action="append", metavar="NAME")
    b.add_argument("--dtype", action="append", metavar="NAME", help="float32, float64")
    b.add_argument("--size", action="append", metavar="N",
                   help="elements per call (default: 1000, 100000, 1000000, 10000000)")
    b.add_argument("--impl", action="append", metavar="NAME",
                   help="ours (default), numpy-seed, scipy, torch; repeat to compare")
    b.add_argument("--threads", type=int, default=1, metavar="N", help="threads (default 1)")
    b.add_argument("--max-time", type=float, default=0.1, metavar="S",
                   help="pytest-benchmark's --benchmark-max-time per benchmark (default 0.1)")
    b.add_argument("--audit", default="results/audit.csv", metavar="FILE",
                   help="audit table whose max ULP travels with each timing (default: "
                   "results/audit.csv, if present)")
    b.add_argument("--out", default="results", metavar="DIR",
                   help="write speed.csv, speed-raw.json and speed.json here (default: results)")
    return p


def _cmd_list(out):
    print(f"{'activation':<12} {'kind':<12} {'directions':<20} {'variants':<10} parameters", file=out)
    for act in catalog.CATALOG.values():
        params = ", ".join(f"{k}={v!r}" for k, v in act.params.items())
        if act.kind == "gated":
            params = f"y = a·{act.gate}(b); also {act.name}(x, dim=-1)"
        elif act.kind == "rowwise":
            params = "axis=-1, temperature=1.0 (softmax of x/temperature)"
        variants = ", ".join(v.name for v in act.variants)
        print(f"{act.name:<12} {act.kind:<12} {', '.join(act.directions):<20} {variants:<10} "
              f"{params or '-'}", file=out)
        if act.kinks:
            print(f"{'':<12} conventions: {act.kinks}", file=out)
    print(f"\ndtypes:  {', '.join(catalog.DTYPES)} (elementwise also {', '.join(SIXTEEN_BIT)})",
          file=out)
    print(f"domains: {', '.join(DOMAINS)}", file=out)
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
        raise UsageError("nothing to audit: the selected activations have no row in these dtypes "
                         "and domains (16-bit dtypes are for elementwise activations; the "
                         "regressions domain has entries only where something once failed)")
    df = table.to_frame(rows)
    elapsed = time.perf_counter() - start
    csv_path, _ = results.write_table(
        df, args.out, "audit", budgets=budgets.source, seconds=round(elapsed, 1),
        profile=args.profile, jobs=args.jobs, impls=[i.name for i in impls],
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
    from pathlib import Path

    from . import results, speed

    acts = _names(args.activation, list(catalog.CATALOG), "activation")
    directions = _names(args.direction, list(catalog.DIRECTIONS), "direction")
    dtypes = _names(args.dtype, list(catalog.DTYPES), "dtype")
    impls = _flatten(args.impl) or ["ours"]
    unknown = [i for i in impls if i not in ("ours", "numpy-seed", "scipy", "torch")]
    if unknown:
        raise UsageError(f"unknown implementation {unknown[0]!r}; known: ours, numpy-seed, "
                         "scipy, torch")
    try:
        sizes = [int(float(v)) for v in _flatten(args.size)] or None
    except ValueError:
        raise UsageError(f"--size takes whole numbers, got {args.size}") from None
    if (sizes and min(sizes) < 1) or args.threads < 1 or args.max_time <= 0:
        raise UsageError("--size, --threads and --max-time must be positive")
    _writable_dir(args.out, "--out")
    config = {"activation": acts, "direction": directions, "dtype": dtypes, "size": sizes,
              "impl": impls, "audit": args.audit}
    env = {**os.environ, "ACTBENCH_BENCH": json.dumps(config),
           "NUMBA_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    suite = Path(__file__).with_name("benchmarks") / "test_speed.py"
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.json"
        cmd = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", "-W", "error", "--benchmark-json", str(raw_path),
               "--benchmark-min-rounds=5", f"--benchmark-max-time={args.max_time}",
               "--benchmark-disable-gc", "--benchmark-columns=median,iqr,rounds"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not raw_path.exists():
            print(proc.stdout[-4000:], proc.stderr[-2000:], file=err)
            print("actbench: the benchmark suite failed", file=err)
            return EXIT_FAIL
        raw = json.loads(raw_path.read_text())
    table = speed.speed_table(raw)
    results.write_atomic(Path(args.out) / "speed-raw.json", json.dumps(raw, indent=1) + "\n")
    csv_path, _ = results.write_table(table, args.out, "speed", threads=args.threads,
                                      max_time=args.max_time, filters=config,
                                      raw="speed-raw.json",
                                      machine_info=raw.get("machine_info"))
    import pandas as pd

    shown = table[["impl", "activation", "direction", "dtype", "size", "ns_per_element",
                   "time_vs_copy", "speedup_vs_numpy_seed", "speedup_vs_torch", "noise",
                   "max_ulp"]]
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.float_format", lambda v: f"{v:.3g}"):
        print(shown.to_string(index=False), file=out)
    print(f"\n{len(table)} benchmarks, {args.threads} thread(s); wrote {csv_path}", file=out)
    return EXIT_OK


def main(argv=None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list(out)
        if args.command == "bench":
            return _cmd_bench(args, out, err)
        return _cmd_audit(args, out, err)
    except (UsageError, BudgetError) as exc:
        print(f"actbench: error: {exc}", file=err)
        return EXIT_USAGE
    except BrokenPipeError:  # `actbench list | head`: the reader left, nothing is wrong
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

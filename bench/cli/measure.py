"""The measuring commands: ``actbench list``, ``audit`` and ``bench``."""

import os
import sys
import tempfile
import time
from pathlib import Path

from actbench_ulp import kernels
from actbench_ulp.cli.common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    parse_sizes,
    pick_names,
    resolve_impls,
    variant_names,
    writable_dir,
)
from actbench_ulp.core import catalog
from actbench_ulp.core.budgets import load_budgets
from actbench_ulp.core.domains import DOMAINS, PROFILES, SIXTEEN_BIT
from actbench_ulp.core.exact import default_cache_dir

__all__ = ["cmd_audit", "cmd_bench", "cmd_list"]


def _peer_summary(act) -> str:
    """The peers that write ``act``, with the parameter values some have it at only."""
    said = []
    for peer, by_direction in act.peers.items():
        only = by_direction.get("forward") and by_direction["forward"].only
        if only:
            at = ", ".join(f"{k}={v:g}" for k, v in only.items())
            peer += f" (at {'the defaults' if only == act.params else at} only)"
        said.append(peer)
    return ", ".join(said)


def cmd_list(out):
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
        if act.peers:
            print(f"{'':<12} peers: {_peer_summary(act)}", file=out)
        if act.declared_by:
            print(f"{'':<12} declared by {act.declared_by}", file=out)
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
    print("implementations: ours, numpy-seed, scipy, torch and jax (if installed), module:function",
          file=out)
    print("  module:function may take and return NumPy, torch, JAX, CuPy or array-API arrays "
          "(--impl-library auto|numpy|torch|jax|cupy|MODULE); --impl-derivative autograd "
          "differentiates it with torch or JAX", file=out)
    return EXIT_OK


def cmd_audit(args, out, err):
    # heavy imports (numba kernels) only when auditing
    from actbench_ulp.accuracy import audit, exhaustive, table
    from actbench_ulp.accuracy import selection as selection_checks
    from actbench_ulp.core import results
    from actbench_ulp.core.exact import Cache
    from actbench_ulp.core.regressions import RegressionError, Regressions, regressions_file_is_installed

    acts = pick_names(args.activation, list(catalog.CATALOG), "activation")
    variants = pick_names(args.variant, variant_names(), "variant")
    directions = pick_names(args.direction, list(catalog.DIRECTIONS), "direction")
    dtypes = pick_names(args.dtype, [*catalog.DTYPES, *SIXTEEN_BIT], "dtype") or list(catalog.DTYPES)
    profile = PROFILES[args.profile]
    domains = pick_names(args.domain, list(DOMAINS), "domain") or list(profile["domains"])
    points = profile["points"] if args.points is None else args.points
    try:
        selection_checks.at_least_one(points, "--points")
        selection_checks.at_least_one(args.jobs, "--jobs")
        selection_checks.at_least_one(args.sweep_stride, "--sweep-stride")
        if args.sweep_chunk is not None:
            selection_checks.at_least_one(args.sweep_chunk, "--sweep-chunk")
        selection_checks.check_domains(domains, dtypes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    budgets = load_budgets(args.budgets)
    if args.record_regressions and regressions_file_is_installed(args.regressions):
        raise UsageError(f"--record-regressions would write into the installed actbench package "
                         f"({args.regressions}); record into a file of your own with --regressions FILE")
    try:
        regressions = Regressions(args.regressions)
    except RegressionError as exc:
        raise UsageError(str(exc)) from None
    selection = list(catalog.cases(acts, variants, directions))
    if not selection:
        raise UsageError("the filters select no catalog row")
    impls = resolve_impls(args, acts, err)
    writable_dir(args.out, "--out")
    cache_dir = None if args.no_cache else (args.cache or default_cache_dir())
    if cache_dir is not None:
        writable_dir(cache_dir, "the cache directory")
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

    def sweep_progress(total, initial, desc):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit="input", unit_scale=True,
                    file=err, disable=None, smoothing=0.05)

    executor, client = _executor(args, err)
    # kept for the metadata: the client is closed before the results are written
    scheduler = client.scheduler.address if client is not None else None
    try:
        rows = audit.run_audit(selection, dtypes, domains, budgets, points, progress, impls=impls,
                               cache=cache, jobs=args.jobs, regressions=regressions,
                               exact_progress=exact_progress, executor=executor,
                               stride=args.sweep_stride, sweep_progress=sweep_progress,
                               chunk_points=args.sweep_chunk,
                               search_swept=bool(args.domain) or profile["search_swept"])
    except exhaustive.SweepInterrupted as exc:
        print(f"\ninterrupted: {exc}", file=err)
        return EXIT_INTERRUPTED
    finally:
        if client is not None:
            client.close()
    if show:
        print(file=err)
    if not rows:
        raise UsageError(selection_checks.nothing_to_audit(selection))
    df = table.to_frame(rows)
    elapsed = time.perf_counter() - start
    compiled = kernels.compile_stats()
    csv_path, _ = results.write_table(
        df, args.out, "audit", budgets=budgets.source, seconds=round(elapsed, 1),
        profile=args.profile, jobs=args.jobs, impls=[i.name for i in impls],
        peer_names=[i.name for i in impls],
        impl_derivative=args.impl_derivative, impl_library=args.impl_library,
        cache={"dir": str(cache.directory) if cache.directory else None, "hits": cache.hits,
               "misses": cache.misses, "corrupt": cache.corrupt},
        filters={"activation": acts, "variant": variants, "direction": directions,
                 "dtype": dtypes, "domain": domains, "points": points,
                 "sweep_stride": args.sweep_stride,
                 # only where given: a baseline recorded without it compares equal
                 **({"sweep_chunk": args.sweep_chunk} if args.sweep_chunk else {})},
        scheduler=scheduler, kernels_compiled=compiled,
    )
    print(table.render(df, verbose=args.verbose), file=out)
    failing = df[table.failed(df)]
    if args.record_regressions:
        added = _record(failing, selection, regressions)
        print(f"recorded {added} new input(s) in {regressions.path}", file=out)
    print(f"\n{len(df)} rows, {len(failing)} failed, {elapsed:.1f} s "
          f"(exact values: {cache.hits} cached, {cache.misses} computed; kernels: "
          f"{compiled['compiled']} compiled in {compiled['seconds']:.1f} s, {compiled['loaded']} "
          f"loaded from the cache in {compiled['load_seconds']:.1f} s); wrote {csv_path}"
          f"{'' if args.verbose else ' (every row; --verbose prints a line for each kernel)'}",
          file=out)
    return EXIT_FAIL if len(failing) else EXIT_OK


def _executor(args, err):
    """(executor, client): the Dask cluster of --scheduler or $DASK_SCHEDULER_ADDRESS, else
    (None, None): run_audit then uses a local pool of --jobs processes."""
    from actbench_ulp.core import executors

    address = executors.scheduler_address(args.scheduler)
    if address is None:
        return None, None
    try:
        executor, client = executors.connect(address)
    except executors.ClusterError as exc:
        raise UsageError(str(exc)) from None
    workers = executors.worker_count(executor)
    print(f"actbench: running on the Dask cluster at {address} ({workers} worker thread(s))",
          file=err)
    return executor, client


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


def cmd_bench(args, out, err):
    import json
    import subprocess

    from actbench_ulp.core import results
    from actbench_ulp.speed import timing as speed

    acts = pick_names(args.activation, list(catalog.CATALOG), "activation")
    variants = pick_names(args.variant, variant_names(), "variant")
    directions = pick_names(args.direction, list(catalog.DIRECTIONS), "direction")
    dtypes = pick_names(args.dtype, list(catalog.DTYPES), "dtype")
    impls = [i.name for i in resolve_impls(args, acts, err)]
    sizes = parse_sizes(args.size) or None
    if args.row_length < 1:
        raise UsageError(f"--row-length must be at least 1, got {args.row_length}")
    if ((sizes and min(sizes) < 1) or args.threads < 1 or args.max_time <= 0
            or args.rounds < 1 or args.min_time <= 0 or args.repeat < 1):
        raise UsageError("--size, --threads, --max-time, --rounds, --min-time and --repeat must "
                         "be positive")
    writable_dir(args.out, "--out")
    named_audit = args.audit is not None
    if args.audit is None:
        args.audit = [str(Path(args.out) / "audit.csv")]
    audit = _bench_audit(args.audit, named_audit)
    chosen = [c for c in catalog.cases(acts, variants, directions)
              if any(c.takes(dt) for dt in dtypes or catalog.DTYPES)]
    if not chosen and "ours" in impls:
        raise UsageError("the filters select no catalog row that takes these dtypes")
    config = {"activation": acts, "variant": variants, "direction": directions, "dtype": dtypes,
              "size": sizes, "impl": impls, "impl_derivative": args.impl_derivative,
              "impl_library": args.impl_library, "audit": args.audit,
              "row_length": args.row_length}
    # PJRT_NPROC sizes XLA's CPU thread pools (JAX): without it an elementwise kernel runs on
    # several threads, even with XLA_FLAGS=--xla_cpu_multi_thread_eigen=false (jax 0.10)
    env = {**os.environ, "ACTBENCH_BENCH": json.dumps(config),
           "NUMBA_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads),
           "PJRT_NPROC": str(args.threads)}
    suite = Path(__file__).resolve().parents[1] / "speed" / "benchmarks" / "test_speed.py"
    raw = None
    for repeat in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            raw_path = Path(tmp) / "raw.json"
            # hypothesis's plugin (installed with the test extra) is slow to load, a large share
            # of a short run, and the suite has no property test
            cmd = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
                   "-p", "no:hypothesispytest",
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
            # float per round would make a five-run baseline megabytes
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
                                      impl_library=args.impl_library,
                                      raw="speed-raw.json",
                                      machine_info=raw.get("machine_info"),
                                      peer_names=impls)  # timed in the suite's process
    import pandas as pd

    shown = table[["impl", "activation", "variant", "direction", "dtype", "size", "ns_per_element",
                   "time_vs_copy", "speedup_vs_numpy_seed", "speedup_vs_torch", "speedup_vs_jax", "noise",
                   "max_ulp", *(["thread_speedup"] if args.threads > 1 else [])]]
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.float_format", lambda v: f"{v:.3g}"):
        print(shown.to_string(index=False), file=out)
    print(f"\n{len(table)} benchmarks, {args.threads} thread(s); wrote {csv_path}", file=out)
    if "ours" in impls:
        _best(table, audit, args, config, acts, dtypes, out)
    return EXIT_OK


def _bench_audit(paths, named: bool):
    """The audit tables whose worst errors decide which of our variants are within the accuracy
    target, read before anything is timed and stacked (a kernel's worst is its worst over all
    of them): a corrupt one stops the run here, naming the file, rather than in the suite's
    collection. None where the default one (audit.csv in --out) is absent; a file named with
    --audit that is absent is a usage error (a typo, most likely)."""
    import pandas as pd

    from actbench_ulp.core.resultset import read_audit

    tables = []
    for path in paths:
        if not Path(path).exists():
            if named:
                raise UsageError(f"--audit {path}: no such file; make it with actbench audit --out "
                                 "DIR and give DIR/audit.csv")
            continue
        tables.append(read_audit(path))
        _warn_if_audited_elsewhere(path)
    return pd.concat(tables, ignore_index=True) if tables else None


def _warn_if_audited_elsewhere(path) -> None:
    """A kernel may be chosen by the CPU (tanh's table needs AVX-512F) and a peer's dispatch
    follows it: an audit compiled for another vector width may not describe what runs here."""
    import json

    from actbench_ulp.kernels import _target

    try:
        then = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))["compiler_target"]
        then_bits, now = then["vector_bits"], _target.describe()
    except (OSError, ValueError, KeyError, TypeError):
        return  # no metadata beside it (a hand-made table): nothing to compare
    if then_bits != now["vector_bits"]:
        print(f"actbench: warning: {path} was audited with kernels compiled for "
              f"{then.get('cpu_name')} ({then_bits}-bit vectors), this run compiles for "
              f"{now['cpu_name']} ({now['vector_bits']}-bit): its max ULP may be another "
              "kernel's", file=sys.stderr)


BEST = "speed-best"


def _best(table, audit, args, config, acts, dtypes, out) -> None:
    """The fastest of our variants within the standard accuracy target against the faster of
    torch and jax (``speed.timing.best_within_target``): written beside speed.csv and printed,
    one line per timed case. Without an audit, how to make one instead, and an earlier run's
    speed-best is removed: it would sit beside a speed.csv it does not describe."""
    import pandas as pd

    from actbench_ulp.core import results
    from actbench_ulp.core.budgets import target
    from actbench_ulp.speed.timing import best_within_target

    if audit is None:
        stale = [p for p in (Path(args.out) / f"{BEST}.csv", Path(args.out) / f"{BEST}.json")
                 if p.exists()]
        for p in stale:
            p.unlink()
        select = "".join(f" --{k} {','.join(v)}" for k, v in (("activation", acts), ("dtype", dtypes))
                         if v)
        print(f"\nno audit table at {', '.join(args.audit)}, so no table of our fastest variant "
              f"within the accuracy target ({BEST}.csv): make one first with `actbench audit{select} --out "
              f"{args.out}`, then rerun actbench bench"
              + (f" (removed the earlier {BEST}.csv, another run's)" if stale else ""), file=out)
        return
    best = best_within_target(table, audit)
    csv_path, _ = results.write_table(best, args.out, BEST, audit=args.audit, speed="speed.csv",
                                      threads=args.threads, filters=config)
    shown = best.rename(columns={"ns_per_element": "ns/el", "peer_ns_per_element": "peer ns/el",
                                 "ratio_vs_peer": "ours/peer"})
    shown["row_length"] = shown["row_length"].astype("string").fillna("-")  # to_string prints <NA>
    # constant over the run (one dtype, size, row length): said once above the table instead
    same = [c for c in ("dtype", "size", "row_length") if shown[c].nunique(dropna=False) == 1]
    where = [f"{c} {v}" for c in same if len(shown) and (v := shown[c].iloc[0]) != "-"]
    targets = "; ".join(f"{dt}: forward <= {target(dt, 'forward'):g} ULP, other directions <= "
                        f"{target(dt, 'vjp'):g}" for dt in dict.fromkeys(best["dtype"]))
    print(f"\nfastest of ours within the accuracy target ({targets}), against the faster of torch "
          f"and jax" + (f"; {', '.join(where)}" if where else "") + ":", file=out)
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 80,
                           "display.float_format", lambda v: f"{v:.3g}"):
        print(shown.drop(columns=["kind", "target_ulp", *same]).to_string(index=False, na_rep="-"),
              file=out)
    print(f"wrote {csv_path}", file=out)

"""The command line: every command's options and help (``actbench COMMAND --help``)."""

import argparse
import os

from actbench_ulp.core import catalog
from actbench_ulp.core.budgets import DEFAULT_BUDGETS
from actbench_ulp.core.domains import DOMAINS, PROFILES, SIXTEEN_BIT
from actbench_ulp.core.regressions import DEFAULT_FILE as DEFAULT_REGRESSIONS

__all__ = ["IMPL_LIBRARY_HELP", "parser"]

IMPL_LIBRARY_HELP = (
    "the array library a module:function takes and returns: auto (default: detected from the "
    "function's module and the modules it uses, else NumPy, else each installed framework), "
    "numpy, torch, jax, cupy, or the module of any array-API library (e.g. array_api_strict); "
    "inputs are converted to it and checked bit for bit, results converted back")


def parser():
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
                   help="quick: special, thresholds, core, wide (2,000 points), regressions, and "
                   "search (float64, and gated and row-wise float32; --domain search asks for "
                   "it in float32 elementwise too); "
                   "full: 20,000 points and bits as well; exhaustive: every input of float32 "
                   "and the 16-bit dtypes (2**32 per float32 kernel, with a progress bar)")
    a.add_argument("--points", type=int, default=None, metavar="N",
                   help="points in the random domains (core, wide, bits); default: the profile's")
    a.add_argument("--impl", action="append", metavar="NAME",
                   help="implementation to audit: ours (default), numpy-seed, scipy, torch, jax, "
                   "or module:function (with a single --activation); repeat to compare")
    a.add_argument("--impl-derivative", metavar="MODULE:FUNCTION",
                   help="the derivative (or row-wise VJP) of a module:function implementation, "
                   "or 'autograd': its framework (torch, jax) differentiates it, gated d_a and "
                   "d_b as well")
    a.add_argument("--impl-library", default="auto", metavar="NAME", help=IMPL_LIBRARY_HELP)
    a.add_argument("--sweep-stride", type=int, default=1, metavar="N",
                   help="the exhaustive float32 domain takes every N-th bit pattern (default 1: "
                   "all 2**32; an odd N reaches every last bit)")
    a.add_argument("--sweep-chunk", type=int, default=None, metavar="N",
                   help="inputs per chunk of an exhaustive sweep, the unit that is stored, "
                   "resumed after an interruption and sent to a worker (default 2**23; at "
                   "least one binade: 2**23 / stride)")
    _exact_value_options(a)
    a.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the exhaustive sweeps' chunks and the exact values on the Dask "
                   "cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786; default "
                   "$DASK_SCHEDULER_ADDRESS, else a local pool of --jobs processes); needs "
                   "pip install 'actbench-ulp[dask]'")
    a.add_argument("--budgets", default=str(DEFAULT_BUDGETS), metavar="FILE",
                   help="budget file (default: the packaged bench/core/budgets.toml)")
    a.add_argument("--regressions", default=str(DEFAULT_REGRESSIONS), metavar="FILE",
                   help="worst-input regression file replayed as the regressions domain")
    a.add_argument("--verbose", action="store_true",
                   help="print every kernel's line (each variant, direction and dtype, its "
                   "maximum on every domain) instead of one line per activation")
    a.add_argument("--record-regressions", action="store_true",
                   help="add the worst input of each of our failing rows to the regression file")
    a.add_argument("--out", default="results", metavar="DIR",
                   help="write audit.csv and audit.json here (default: results)")
    b = sub.add_parser(
        "bench",
        help="time kernels and peers with pytest-benchmark, beside np.copyto of the same bytes",
        description="Run the pytest-benchmark suite (bench/speed/benchmarks) and write speed.csv, the "
        "raw pytest-benchmark JSON (speed-raw.json) and speed.json (metadata). Filters as for "
        "audit; the thread count is pinned (NUMBA_NUM_THREADS, torch, PJRT_NPROC for jax) before "
        "anything starts.",
    )
    b.add_argument("--activation", action="append", metavar="NAME")
    b.add_argument("--variant", action="append", metavar="NAME",
                   help="our variants to time (default: all; peers run once per activation)")
    b.add_argument("--direction", action="append", metavar="NAME")
    b.add_argument("--dtype", action="append", metavar="NAME", help="float32, float64")
    b.add_argument("--size", action="append", metavar="N",
                   help="elements per call (default: 1000, 100000, 1000000, 10000000)")
    b.add_argument("--row-length", type=int, default=1000, metavar="N",
                   help="row-wise kernels: elements per row (default 1000); a call takes "
                   "size // N rows (at least one; a size below N is one row of size)")
    b.add_argument("--impl", action="append", metavar="NAME",
                   help="ours (default), numpy-seed, scipy, torch, jax, or module:function (with "
                   "a single --activation); repeat to compare")
    b.add_argument("--impl-derivative", metavar="MODULE:FUNCTION",
                   help="the derivative (or row-wise VJP) of a module:function implementation, "
                   "or 'autograd'")
    b.add_argument("--impl-library", default="auto", metavar="NAME", help=IMPL_LIBRARY_HELP)
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
    b.add_argument("--audit", action="append", default=None, metavar="FILE",
                   help="audit table whose max ULP travels with each timing (default: "
                   "audit.csv in --out, if present); repeat to count several (e.g. the default "
                   "audit and an exhaustive one): a kernel's worst over all of them")
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
        help="compare with a git revision measured here (--against) or a stored baseline "
        "(--baseline), exit 1 on a regression",
        description="With --against REV: build that git revision apart (git archive and pip "
        "install into the cache; your checkout is not touched), audit both it and this "
        "checkout, time both on this machine benchmark by benchmark in alternation (two worker "
        "processes, base and new within milliseconds of each other), and compare; no stored "
        "baseline, so it holds on any runner. With --baseline DIR --record: "
        "audit everything (quick profile) and time our kernels (1e5 elements, float32 and "
        "float64, 20+ rounds, 1 thread) into DIR. With --baseline DIR alone: rerun exactly what "
        "the baseline holds (same selection, profile, sizes, rounds, threads) into --out and "
        "compare as actbench compare does; only meaningful on the machine that recorded it. "
        "Exit 0: no regression; 1: a regression (or a failed run); 2: bad input.",
    )
    which = g.add_mutually_exclusive_group(required=True)
    which.add_argument("--against", metavar="REV",
                       help="a git revision of this checkout (origin/main, HEAD~1, a tag, a "
                       "commit) to gate against, measured here and now")
    which.add_argument("--baseline", metavar="DIR", help="a stored baseline directory")
    g.add_argument("--interleave", type=int, default=3, metavar="N",
                   help="with --against: timing sessions, each a fresh pair of worker "
                   "processes timing every benchmark 20 rounds a side in alternation (fewer, "
                   "down to 5, where 20 would take over 0.1 s); the base's spread between "
                   "sessions sets the threshold (default 3)")
    g.add_argument("--record", action="store_true",
                   help="record a new baseline into DIR instead of comparing with it")
    g.add_argument("--only", choices=("accuracy", "speed"), default=None,
                   help="with --record or --against: only the audit or only the timings")
    g.add_argument("--activation", action="append", metavar="NAME",
                   help="with --record or --against (default: all)")
    g.add_argument("--dtype", action="append", metavar="NAME",
                   help="with --record or --against (default: float32, float64)")
    g.add_argument("--size", action="append", metavar="N",
                   help="with --record or --against (default 1e5)")
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
    r.add_argument("--pages", default=None, metavar="DIR",
                   help="instead, write the documentation's measured pages (Markdown tables "
                   "headed by the command, commit and machine that produced them) into DIR "
                   "from the result sets committed under --results: exhaustive, "
                   "exhaustive-torch, sampled-float32, search-float64, speed-float32, "
                   "speed-rows-float32 (actbench report --pages docs/results)")
    _exact_value_options(r)
    return p


def _exact_value_options(p):
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="processes computing exact values and exhaustive sweeps "
                   "(default: all cores)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="exact-value cache (default: $ACTBENCH_CACHE, else $XDG_CACHE_HOME/actbench, "
                   "else ~/.cache/actbench)")
    p.add_argument("--no-cache", action="store_true", help="compute every exact value afresh")


def _compare_options(p):
    from actbench_ulp.gate.compare import (
        DEFAULT_ALPHA,
        DEFAULT_MIN_EFFECT,
        DEFAULT_MIN_EFFECT_MEMORY,
        NORMALIZE,
    )

    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, metavar="Q",
                   help=f"false discovery rate over all benchmarks (default {DEFAULT_ALPHA})")
    p.add_argument("--min-effect", type=float, default=DEFAULT_MIN_EFFECT, metavar="F",
                   help="smallest slowdown that counts, beyond the slowest baseline run, as a "
                   f"fraction (default {DEFAULT_MIN_EFFECT})")
    p.add_argument("--min-effect-memory", type=float, default=DEFAULT_MIN_EFFECT_MEMORY,
                   metavar="F", help="the same for memory-bound kernels (within twice the copy "
                   f"of their bytes; default {DEFAULT_MIN_EFFECT_MEMORY}: memory bandwidth drifts "
                   "more than compute between runs of unchanged code on a shared machine)")
    p.add_argument("--normalize", choices=NORMALIZE, default="drift",
                   help="divide each run's round times by its drift (default: the median change "
                   "of every compute- or memory-bound benchmark against the baseline; the drift "
                   "itself is judged as a row of its own), not at all (none), or by a yardstick: "
                   "np.copyto of the same bytes / a scalar libm loop, as the run's median (run) "
                   "or timed beside each benchmark (beside)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown summary here")

"""``actbench``: list the catalog, audit kernels against exact references.

Exit status: 0 every audited row is within budget, 1 some row is not, 2 usage error
(unknown name, malformed budget file, bad option).
"""

import argparse
import sys
import time

from . import catalog
from .budgets import DEFAULT_BUDGETS, BudgetError, load_budgets
from .domains import DOMAINS

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _names(values, known, what):
    """Flatten repeated and comma-separated options; reject unknown names."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
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
        description="Audit every selected kernel on every selected dtype and domain. "
        "Filters take names, repeated or comma-separated. Exit 0: all rows within budget; "
        "1: some row is not; 2: usage error.",
    )
    a.add_argument("--activation", action="append", metavar="NAME")
    a.add_argument("--variant", action="append", metavar="NAME")
    a.add_argument("--direction", action="append", metavar="NAME",
                   help=", ".join(catalog.DIRECTIONS))
    a.add_argument("--dtype", action="append", metavar="NAME", help="float32, float64")
    a.add_argument("--domain", action="append", metavar="NAME", help=", ".join(DOMAINS))
    a.add_argument("--points", type=int, default=None, metavar="N",
                   help="points in the random domains (core, wide); default 2000")
    a.add_argument("--budgets", default=str(DEFAULT_BUDGETS), metavar="FILE",
                   help="budget file (default: the packaged bench/budgets.toml)")
    a.add_argument("--out", default="results", metavar="DIR",
                   help="write audit.csv and audit.json here (default: results)")
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
    print(f"\ndtypes:  {', '.join(catalog.DTYPES)}", file=out)
    print(f"domains: {', '.join(DOMAINS)}", file=out)
    return EXIT_OK


def _cmd_audit(args, out, err):
    from . import audit, results, table  # heavy imports (numba kernels) only when auditing

    acts = _names(args.activation, list(catalog.CATALOG), "activation")
    variants = _names(args.variant, _variants(), "variant")
    directions = _names(args.direction, list(catalog.DIRECTIONS), "direction")
    dtypes = _names(args.dtype, list(catalog.DTYPES), "dtype") or list(catalog.DTYPES)
    domains = _names(args.domain, list(DOMAINS), "domain") or list(DOMAINS)
    if args.points is not None and args.points < 1:
        raise UsageError("--points must be at least 1")
    budgets = load_budgets(args.budgets)
    selection = list(catalog.cases(acts, variants, directions))
    if not selection:
        raise UsageError("the filters select no catalog row")
    start = time.perf_counter()
    total = len(selection) * len(dtypes) * len(domains)
    show = err.isatty()

    def progress(row, done=[0]):  # noqa: B006 - a counter local to this call
        done[0] += 1
        if show:
            print(f"\raudited {done[0]}/{total} rows", end="", file=err, flush=True)

    rows = audit.run_audit(selection, dtypes, domains, budgets, args.points, progress)
    if show:
        print(file=err)
    df = table.to_frame(rows)
    elapsed = time.perf_counter() - start
    csv_path, _ = results.write_table(
        df, args.out, "audit", budgets=budgets.source, seconds=round(elapsed, 1),
        filters={"activation": acts, "variant": variants, "direction": directions,
                 "dtype": dtypes, "domain": domains, "points": args.points},
    )
    print(table.render(df), file=out)
    failed = int((~df["passed"].astype(bool)).sum())
    print(f"\n{len(df)} rows, {failed} failed, {elapsed:.1f} s; wrote {csv_path}", file=out)
    return EXIT_FAIL if failed else EXIT_OK


def main(argv=None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list(out)
        return _cmd_audit(args, out, err)
    except (UsageError, BudgetError) as exc:
        print(f"actbench: error: {exc}", file=err)
        return EXIT_USAGE
    except BrokenPipeError:  # `actbench list | head`: the reader left, nothing is wrong
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

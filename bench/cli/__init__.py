"""``actbench``: list the catalog, audit kernels against exact references, time them, compare
two result sets and gate on a stored baseline.

Exit status: 0 every audited row is within budget (compare/gate: nothing regressed), 1 some
row is not (compare/gate: a regression), 2 usage error (unknown name, malformed budget file or
result set, bad option).

Modules: ``parser`` (options and help), ``common`` (what the commands share), ``measure``
(list, audit, bench), ``gating`` (compare, gate, report).
"""

import sys

from actbench_ulp.cli.common import EXIT_OK, EXIT_USAGE, UsageError
from actbench_ulp.cli.gating import cmd_compare, cmd_gate, cmd_report
from actbench_ulp.cli.measure import cmd_audit, cmd_bench, cmd_list
from actbench_ulp.cli.parser import parser
from actbench_ulp.core.budgets import BudgetError
from actbench_ulp.core.declared import DeclarationError, check_entry_points
from actbench_ulp.core.errors import ResultsError
from actbench_ulp.core.results import checkout_state_at_start

__all__ = ["main"]


def main(argv=None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    with checkout_state_at_start():
        return _dispatch(args, out, err)


def _dispatch(args, out, err) -> int:
    try:
        check_entry_points()  # an installed package's broken declaration: said once, by name
        if args.command == "list":
            return cmd_list(out)
        if args.command == "bench":
            return cmd_bench(args, out, err)
        if args.command == "compare":
            return cmd_compare(args, out, err)
        if args.command == "gate":
            return cmd_gate(args, out, err)
        if args.command == "report":
            return cmd_report(args, out, err)
        return cmd_audit(args, out, err)
    except (UsageError, BudgetError, ResultsError, DeclarationError) as exc:
        print(f"actbench: error: {exc}", file=err)
        return EXIT_USAGE
    except BrokenPipeError:  # `actbench list | head`: the reader left, nothing is wrong
        return EXIT_OK
    except OSError as exc:  # an unwritable --markdown or output file, a full disk
        print(f"actbench: error: {exc.filename or ''}: {exc.strerror or exc}", file=err)
        return EXIT_USAGE



if __name__ == "__main__":
    sys.exit(main())

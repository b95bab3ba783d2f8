"""What every actbench command shares: exit codes, the usage error, name filters, the
implementations named by --impl, and the check that an output directory is writable."""

import os
import tempfile

from actbench_ulp.core import catalog

__all__ = ["EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE",
           "UsageError", "flatten", "parse_sizes", "pick_names", "resolve_impls",
           "variant_names", "writable_dir"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


class UsageError(Exception):
    pass


def pick_names(values, known, what):
    """Repeated and comma-separated options, checked (``selection.pick``); None when not given."""
    from actbench_ulp.accuracy.selection import pick

    try:
        return pick(values, known, what) or None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def variant_names():
    return list(dict.fromkeys(v.name for a in catalog.CATALOG.values() for v in a.variants))


def resolve_impls(args, acts, err):
    from actbench_ulp.core import peers

    names = flatten(args.impl) or ["ours"]
    user = [n for n in names if ":" in n]
    if user and (not acts or len(acts) != 1):
        raise UsageError(f"--impl {user[0]} is one activation's function: give exactly one "
                         "--activation")
    if args.impl_derivative and not user:
        raise UsageError("--impl-derivative goes with an --impl module:function")
    library = getattr(args, "impl_library", "auto") or "auto"
    if library != "auto" and not user:
        raise UsageError("--impl-library goes with an --impl module:function")
    impls = []
    for name in dict.fromkeys(names):
        try:
            impls.append(peers.resolve(name, args.impl_derivative if ":" in name else None,
                                       library if ":" in name else "auto"))
        except peers.PeerUnavailable as exc:
            print(f"actbench: {exc}; its rows are skipped", file=err)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not impls:
        raise UsageError("none of the requested implementations is available")
    return impls


def writable_dir(path, what):
    """Create ``path`` if needed and check a file can be written there, before any work."""
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".actbench-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"{what} {path!r} is not a writable directory: {exc.strerror or exc}") from None


def flatten(values):
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def parse_sizes(values) -> list[int]:
    """``--size`` values (repeated, comma-separated, ``1e5`` allowed) as whole numbers."""
    try:
        return [int(float(v)) for v in flatten(values)]
    except ValueError:
        raise UsageError(f"--size takes whole numbers, got {values}") from None

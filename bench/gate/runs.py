"""What ``actbench gate`` runs: the command lines that record a baseline, and the ones that
repeat a stored baseline's selection exactly (from its metadata), so that base and new
measure the same rows and benchmarks the same way."""

from pathlib import Path

__all__ = ["GATE_FILTERS", "GATE_TIMING", "audit_argv", "bench_argv", "confirm_argv",
           "record_argvs", "rerun_argvs"]

# The timing a baseline is recorded with. 1e5 elements: large enough that every kernel's
# loop dominates the call overhead, small enough that each benchmark gets >= 20 rounds of
# >= 1 ms in 0.25 s (the slowest kernels, the row-wise ones at a few hundred ns/element, need
# tens of ms a round). Five runs, each a fresh process: on a shared machine one benchmark's
# median can move by ±20 % between runs of unchanged code, and the comparison needs to know
# by how much.
GATE_FILTERS = {"size": [100_000], "dtype": ["float32", "float64"], "impl": ["ours"]}
GATE_TIMING = {"threads": 1, "max_time": 0.25, "rounds": 20, "min_time": 0.001, "repeat": 5}


def _filters(filters: dict, keys) -> list[str]:
    argv = []
    for k in keys:
        v = filters.get(k)
        if v:
            argv += [f"--{k}", ",".join(map(str, v))]
    return argv


def audit_argv(meta: dict, out: Path, common: list[str]) -> list[str]:
    """An audit of the same selection, profile, points and implementations as ``meta``."""
    filters = meta.get("filters") or {}
    argv = ["audit", "--out", str(out), "--profile", meta.get("profile", "quick"),
            *_filters(filters, ("activation", "variant", "direction", "dtype", "domain"))]
    if filters.get("points"):
        argv += ["--points", str(filters["points"])]
    if filters.get("sweep_stride", 1) != 1:  # a sampled exhaustive float32 domain
        argv += ["--sweep-stride", str(filters["sweep_stride"])]
    impls = meta.get("impls") or ["ours"]
    argv += ["--impl", ",".join(impls)]
    if meta.get("impl_derivative"):
        argv += ["--impl-derivative", meta["impl_derivative"]]
    if meta.get("impl_library", "auto") != "auto":
        argv += ["--impl-library", meta["impl_library"]]
    return argv + common


def bench_argv(meta: dict, out: Path, audit_csv: Path | None, repeat: int | None = None) -> list[str]:
    """A timing run of the same benchmarks, sizes, threads and rounds as ``meta`` (``repeat``
    times: a baseline is recorded in several runs, a gate measures once)."""
    filters = meta.get("filters") or {}
    argv = ["bench", "--out", str(out),
            *_filters(filters, ("activation", "direction", "dtype", "size", "impl")),
            "--threads", str(meta.get("threads", 1))]
    for k in ("max_time", "rounds", "min_time"):
        if meta.get(k) is not None:
            argv += [f"--{k.replace('_', '-')}", str(meta[k])]
    if repeat:
        argv += ["--repeat", str(repeat)]
    if meta.get("impl_derivative"):
        argv += ["--impl-derivative", meta["impl_derivative"]]
    if meta.get("impl_library", "auto") != "auto":
        argv += ["--impl-library", meta["impl_library"]]
    if audit_csv is not None:
        argv += ["--audit", str(audit_csv)]
    return argv


def record_argvs(out: Path, filters: dict, common: list[str], accuracy: bool, speed: bool):
    """(audit argv or None, bench argv or None) that record a baseline into ``out``."""
    audit = None
    if accuracy:
        audit = audit_argv({"filters": {k: filters.get(k) for k in ("activation", "dtype")},
                            "impls": filters.get("impl") or ["ours"]}, out, common)
    bench = None
    if speed:
        meta = {**GATE_TIMING, "filters": {**GATE_FILTERS, **{k: v for k, v in filters.items() if v}}}
        bench = bench_argv(meta, out, out / "audit.csv" if accuracy else None, meta["repeat"])
    return audit, bench


def rerun_argvs(audit_meta: dict | None, speed_meta: dict | None, out: Path, common: list[str],
                repeat: int = 1):
    """(audit argv or None, bench argv or None) repeating a baseline's runs into ``out``."""
    audit = audit_argv(audit_meta, out, common) if audit_meta is not None else None
    bench = (bench_argv(speed_meta, out, out / "audit.csv" if audit else None, repeat)
             if speed_meta is not None else None)
    return audit, bench


def _without(argv: list[str], options) -> list[str]:
    """``argv`` less each of ``options`` and its value."""
    argv = list(argv)
    for opt in options:
        while opt in argv:
            i = argv.index(opt)
            del argv[i:i + 2]
    return argv


def confirm_argv(bench: list[str], flagged, out: Path) -> list[str]:
    """The gate's bench command line narrowed to the flagged benchmarks' activations,
    directions and dtypes (``flagged``: rows with those columns), writing to ``out``."""
    argv = _without(bench, ("--activation", "--direction", "--dtype", "--out", "--audit"))
    return [*argv, "--out", str(out),
            "--activation", ",".join(dict.fromkeys(flagged["activation"])),
            "--direction", ",".join(dict.fromkeys(flagged["direction"])),
            "--dtype", ",".join(dict.fromkeys(flagged["dtype"]))]

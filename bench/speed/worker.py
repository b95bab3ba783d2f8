"""A timing worker: one long-lived process holding one version's kernels, timing a benchmark
each time it is asked, so that two versions can be timed benchmark by benchmark in alternation
(``actbench.gate.alternate``).

The gate runs this file's *source* (``python -c``) under each side's ``PYTHONPATH``: the new
side's worker code with the base revision's ``actbench`` modules, so both sides time exactly
the same inputs the same way, whatever the base's own timing code was. It therefore imports
nothing of actbench but the catalog's public API (``cases``, ``Case.kernel``, ``takes``,
``label``, the activation's ``kind``, ``core`` and ``params``). ``inputs`` is also what
``actbench bench``'s suite times, so a gate and a stored baseline time the same arrays.

Protocol, one JSON object a line on stdin, one answer a line on stdout:

- ``{"op": "setup", "activation": [...] | null, "variant": ..., "direction": ..., "dtype": [...],
  "size": [...], "row_length": 1000, "round_s": 0.001}``: builds every selected benchmark
  (and ``np.copyto`` of each dtype and size), warms it, sizes its round to about ``round_s``
  and answers ``{"benchmarks": [{"id", "round_s", "extra_info"}, ...]}``;
- ``{"op": "time", "id": I}``: one round of benchmark I, answered as ``{"t": seconds per
  call}``;
- end of input: exit. A failure answers ``{"error": "..."}`` and exits 1.
"""

import gc
import json
import math
import sys
import time

import numpy as np

__all__ = ["inputs", "serve"]

YARDSTICK_CALLS = 11


def inputs(case, dtype, size, rng, row_length=1000):
    """(args, kwargs) of one benchmark: uniform over the activation's core range; rows of
    ``row_length`` (a cotangent too for a VJP) for row-wise kernels, two arrays for gated."""
    act = case.activation
    lo, hi = act.core
    if act.kind == "elementwise":
        return (rng.uniform(lo, hi, size).astype(dtype),), {**act.params}
    if act.kind == "gated":
        return (rng.uniform(lo, hi, size).astype(dtype),
                rng.uniform(lo, hi, size).astype(dtype)), {}
    length = min(size, row_length)
    x = rng.uniform(lo, hi, (max(1, size // length), length)).astype(dtype)
    args = (x, rng.uniform(-1, 1, x.shape).astype(dtype)) if case.direction == "vjp" else (x,)
    return args, {"temperature": 1.0}


def _libm_loop():
    """The compute yardstick ``actbench bench`` times beside every benchmark: a scalar libm
    loop (compiled here, uncached: it is the same loop on both sides)."""
    import numba

    @numba.njit(cache=False)
    def loop(x, out):
        for i in range(x.size):
            out[i] = math.exp(x[i])

    x = np.linspace(-5.0, 5.0, 4096)
    out = np.empty_like(x)
    loop(x, out)
    return lambda: loop(x, out)


def _per_call(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def _yardsticks(nbytes: int, dtype: str, cpu) -> tuple[float, float]:
    """Median times of ``np.copyto`` of ``nbytes`` and of the libm loop, as ``actbench
    bench`` records them (``copy_s``, ``cpu_s``)."""
    src = np.ones(max(1, nbytes // 2 // np.dtype(dtype).itemsize), dtype=dtype)
    dst = np.empty_like(src)
    copies = [_per_call(lambda: np.copyto(dst, src), 1) for _ in range(YARDSTICK_CALLS)]
    cpus = [_per_call(cpu, 1) for _ in range(YARDSTICK_CALLS)]
    return float(np.median(copies)), float(np.median(cpus))


def _calls_per_round(call, round_s: float) -> tuple[int, float]:
    """Calls that make a round of about ``round_s`` (at least one), and that round's time."""
    once = min(_per_call(call, 1) for _ in range(3))
    calls = max(1, round(round_s / once))
    return calls, calls * once


def _setup(cmd: dict) -> tuple[list, list]:
    from actbench.core import catalog

    cpu = _libm_loop()
    threads = int(cmd.get("threads", 1))
    round_s = float(cmd.get("round_s", 0.001))
    runs, described = [], []

    def add(call, info):
        calls, seconds = _calls_per_round(call, round_s)
        info["copy_s"], info["cpu_s"] = _yardsticks(info["bytes"], info["dtype"], cpu)
        info["calls_per_round"] = calls
        described.append({"id": len(runs), "round_s": seconds, "extra_info": info})
        runs.append((call, calls))

    for dtype in cmd["dtype"]:
        for size in cmd["size"]:
            src = np.random.default_rng(0).uniform(-1, 1, size).astype(dtype)
            dst = np.empty_like(src)
            add(lambda dst=dst, src=src: np.copyto(dst, src),
                {"impl": "np.copyto", "activation": "copy", "variant": "-", "direction": "-",
                 "kind": "copy", "dtype": dtype, "size": size, "bytes": 2 * src.nbytes,
                 "elements": size, "row_length": None, "threads": threads, "max_ulp": 0.0,
                 "first_call_s": 0.0})
    for case in catalog.cases(cmd.get("activation"), cmd.get("variant"), cmd.get("direction")):
        for dtype in filter(case.takes, cmd["dtype"]):
            for size in cmd["size"]:
                args, kwargs = inputs(case, dtype, size, np.random.default_rng(size),
                                      int(cmd.get("row_length", 1000)))
                kernel = case.kernel
                start = time.perf_counter()
                with np.errstate(all="ignore"):
                    result = kernel(*args, **kwargs)  # includes any compilation
                first = time.perf_counter() - start
                kw = {**kwargs, "out": np.empty_like(result)}

                def call(kernel=kernel, args=args, kw=kw):
                    with np.errstate(all="ignore"):
                        kernel(*args, **kw)

                add(call, {"impl": "ours", "activation": case.activation.name,
                           "variant": case.variant.name, "direction": case.direction,
                           "kind": case.activation.kind, "dtype": dtype, "size": size,
                           "bytes": int(sum(a.nbytes for a in args) + result.nbytes),
                           "elements": int(args[0].size),
                           "row_length": (int(args[0].shape[-1])
                                          if case.activation.kind == "rowwise" else None),
                           "threads": threads, "max_ulp": None, "first_call_s": first})
    return runs, described


def serve(stdin=sys.stdin, stdout=sys.stdout) -> int:
    """Answer the protocol's requests until stdin ends."""
    runs = []

    def answer(obj):
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    for line in stdin:
        try:
            cmd = json.loads(line)
            if cmd["op"] == "setup":
                runs, described = _setup(cmd)
                gc.collect()
                gc.disable()  # as pytest-benchmark's --benchmark-disable-gc
                answer({"benchmarks": described})
            elif cmd["op"] == "time":
                call, calls = runs[cmd["id"]]
                answer({"t": _per_call(call, calls)})
            else:
                raise ValueError(f"unknown op {cmd['op']!r}")
        except Exception as exc:  # the driver reports it, naming the side
            answer({"error": f"{type(exc).__name__}: {exc}"})
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(serve())

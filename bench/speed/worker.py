"""A timing worker: one long-lived process holding one version's kernels, timing a benchmark
each time it is asked, so that two versions can be timed benchmark by benchmark in alternation
(``actbench_ulp.gate.alternate``).

The gate runs this file's *source* (``python -c``) under each side's ``PYTHONPATH``: the new
side's worker code with the base revision's ``actbench`` modules, so both sides time exactly
the same inputs the same way, whatever the base's own timing code was. It therefore imports
nothing of actbench but the catalog's public API (``cases``, ``Case.kernel``, ``takes``,
``activation.kind``, ``core``, ``params`` and ``name``, ``variant.name``, ``direction``).
``inputs`` and the yardsticks are also what ``actbench bench``'s suite times, so a gate and a
stored baseline time the same arrays against the same references.

Protocol, one JSON object a line on stdin, one answer a line (on the process's original
stdout; anything else printing there goes to stderr):

- ``{"op": "setup", "activation": [...] | null, "variant": ..., "direction": ..., "dtype": [...],
  "size": [...], "row_length": 1000, "round_s": 0.001, "threads": 1}``: lists every selected
  benchmark (and ``np.copyto`` of each dtype and size), allocating nothing:
  ``{"benchmarks": [{"id", "held_bytes", "extra_info"}, ...]}``;
- ``{"op": "load", "ids": [...]}``: frees what was loaded, builds these benchmarks' arrays,
  calls each once (compiling if need be: ``first_call_s``) and sizes its round to about
  ``round_s``: ``{"loaded": {id: {"first_call_s", "calls_per_round", "round_s"}}}``;
- ``{"op": "yardsticks"}``: ``np.copyto`` of each loaded benchmark's bytes and a scalar libm
  loop, timed as ``actbench bench`` times them beside each benchmark:
  ``{"yardsticks": {id: [copy_s, cpu_s]}}``;
- ``{"op": "time", "id": I}``: one round of loaded benchmark I: ``{"t": seconds per call}``;
- end of input: exit. A failure answers ``{"error": "..."}`` (the traceback on stderr) and
  exits 1.
"""

import gc
import json
import math
import os
import sys
import time
import traceback

import numpy as np

__all__ = ["YARDSTICK_CALLS", "inputs", "libm_loop", "serve", "shapes", "yardstick_times"]

YARDSTICK_CALLS = 11


def shapes(case, size, row_length=1000) -> list[tuple]:
    """The shapes of one benchmark's input arrays (its output has the first one's): ``size``
    elements; rows of ``row_length`` for row-wise kernels (a cotangent too for a VJP), two
    arrays for gated ones."""
    kind = case.activation.kind
    if kind == "elementwise":
        return [(size,)]
    if kind == "gated":
        return [(size,), (size,)]
    length = min(size, row_length)
    shape = (max(1, size // length), length)
    return [shape, shape] if case.direction == "vjp" else [shape]


def inputs(case, dtype, size, rng, row_length=1000):
    """(args, kwargs) of one benchmark: uniform over the activation's core range (a VJP's
    cotangent over [-1, 1]), the activation's parameters, a row-wise kernel's temperature 1."""
    act = case.activation
    ranges = [act.core, (-1, 1) if act.kind == "rowwise" else act.core]
    arrays = tuple(rng.uniform(*ranges[i], shape).astype(dtype)
                   for i, shape in enumerate(shapes(case, size, row_length)))
    if act.kind == "rowwise":
        return arrays, {"temperature": 1.0}
    return arrays, ({**act.params} if act.kind == "elementwise" else {})


def libm_loop():
    """The compute yardstick: a scalar libm loop over 4096 points, as a no-argument call
    (compiled here, uncached: the same loop wherever it runs)."""
    import numba

    @numba.njit(cache=False)
    def loop(x, out):
        for i in range(x.size):
            out[i] = math.exp(x[i])

    x = np.linspace(-5.0, 5.0, 4096)
    out = np.empty_like(x)
    loop(x, out)
    return lambda: loop(x, out)


def yardstick_times(nbytes: int, dtype, cpu, calls: int = YARDSTICK_CALLS):
    """(copy times, libm loop times), ``calls`` of each, interleaved: ``np.copyto`` of
    ``nbytes`` (half read, half written: what an elementwise kernel moves) and ``cpu()``."""
    src = np.ones(max(1, nbytes // 2 // np.dtype(dtype).itemsize), dtype=dtype)
    dst = np.empty_like(src)
    times = ([], [])
    for _ in range(calls):
        t = time.perf_counter()
        np.copyto(dst, src)
        times[0].append(time.perf_counter() - t)
        t = time.perf_counter()
        cpu()
        times[1].append(time.perf_counter() - t)
    return times


def _per_call(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


class _Benchmarks:
    """The selected benchmarks (described at setup) and the loaded ones (arrays held)."""

    def __init__(self, cmd: dict):
        try:
            from actbench_ulp.core import catalog
        except ImportError as exc:
            raise ImportError(f"this revision has no actbench catalog to time ({exc})") from exc
        self.row_length = int(cmd.get("row_length", 1000))
        self.round_s = float(cmd.get("round_s", 0.001))
        threads = int(cmd.get("threads", 1))
        self.specs, self.described, self.loaded = [], [], {}
        self.cpu = None

        def add(spec, info, held):
            self.described.append({"id": len(self.specs), "held_bytes": held, "extra_info": info})
            self.specs.append(spec)

        for dtype in cmd["dtype"]:
            item = np.dtype(dtype).itemsize
            for size in cmd["size"]:
                add(("copy", dtype, size),
                    {"impl": "np.copyto", "activation": "copy", "variant": "-", "direction": "-",
                     "kind": "copy", "dtype": dtype, "size": size, "bytes": 2 * size * item,
                     "elements": size, "row_length": None, "threads": threads, "max_ulp": 0.0},
                    2 * size * item)
        for case in catalog.cases(cmd.get("activation"), cmd.get("variant"), cmd.get("direction")):
            for dtype in filter(case.takes, cmd["dtype"]):
                item = np.dtype(dtype).itemsize
                for size in cmd["size"]:
                    arrays = shapes(case, size, self.row_length)
                    elements = math.prod(arrays[0])
                    held = (sum(math.prod(s) for s in arrays) + elements) * item
                    add((case, dtype, size),
                        {"impl": "ours", "activation": case.activation.name,
                         "variant": case.variant.name, "direction": case.direction,
                         "kind": case.activation.kind, "dtype": dtype, "size": size,
                         "bytes": held, "elements": elements,
                         "row_length": arrays[0][-1] if case.activation.kind == "rowwise" else None,
                         "threads": threads, "max_ulp": None}, held)

    def load(self, ids) -> dict:
        self.loaded = {}
        gc.collect()
        answer = {}
        for i in ids:
            spec = self.specs[i]
            try:
                call, first = self._build(*spec)
                once = min(_per_call(call, 1) for _ in range(3))
            except Exception as exc:
                label = "np.copyto" if spec[0] == "copy" else spec[0].label
                raise RuntimeError(f"{label} {spec[1]} size {spec[2]}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            calls = max(1, round(self.round_s / once))
            self.loaded[i] = (call, calls)
            answer[i] = {"first_call_s": first, "calls_per_round": calls, "round_s": calls * once}
        return answer

    def _build(self, case, dtype, size):
        if case == "copy":
            src = np.random.default_rng(0).uniform(-1, 1, size).astype(dtype)
            dst = np.empty_like(src)
            np.copyto(dst, src)
            return (lambda: np.copyto(dst, src)), 0.0
        args, kwargs = inputs(case, dtype, size, np.random.default_rng(size), self.row_length)
        kernel = case.kernel
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            result = kernel(*args, **kwargs)  # includes any compilation
        first = time.perf_counter() - start
        kw = {**kwargs, "out": np.empty_like(result)}

        def call():
            with np.errstate(all="ignore"):
                kernel(*args, **kw)

        return call, first

    def yardsticks(self) -> dict:
        if self.cpu is None:
            self.cpu = libm_loop()
        out = {}
        for i in self.loaded:
            info = self.described[i]["extra_info"]
            copies, cpus = yardstick_times(info["bytes"], info["dtype"], self.cpu)
            out[i] = [float(np.median(copies)), float(np.median(cpus))]
        return out


def serve(stdin, stdout) -> int:
    """Answer the protocol's requests until stdin ends."""
    bench = None

    def answer(obj):
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    for line in stdin:
        try:
            cmd = json.loads(line)
            if cmd["op"] == "setup":
                bench = _Benchmarks(cmd)
                answer({"benchmarks": bench.described})
            elif cmd["op"] == "load":
                gc.enable()
                loaded = bench.load(cmd["ids"])
                gc.collect()
                gc.disable()  # while timing, as pytest-benchmark's --benchmark-disable-gc
                answer({"loaded": loaded})
            elif cmd["op"] == "yardsticks":
                answer({"yardsticks": bench.yardsticks()})
            elif cmd["op"] == "time":
                call, calls = bench.loaded[cmd["id"]]
                answer({"t": _per_call(call, calls)})
            else:
                raise ValueError(f"unknown op {cmd['op']!r}")
        except Exception as exc:  # the driver reports it, naming the side
            traceback.print_exc()
            answer({"error": f"{type(exc).__name__}: {exc}"})
            return 1
    return 0


if __name__ == "__main__":
    # answers go to the original stdout alone: whatever the timed revision prints (a warning,
    # a C library's message) goes to stderr instead of into the protocol
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.exit(serve(sys.stdin, answers))

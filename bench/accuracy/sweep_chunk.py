"""One chunk of the exhaustive float32 sweep, measured where it runs (a pool process or a
Dask worker); ``actbench_ulp.accuracy.exhaustive`` schedules the chunks and merges them.

The bit patterns are cut into chunks of whole binades (2**23 patterns share a sign and an
exponent), a chunk per task; ``--sweep-stride N`` takes every N-th pattern instead (the default
tests run every 4099th).  A task runs the implementation and the oracle on its chunk, block by
block, measures it (``oracle.scan``), and returns a small summary with the points mpmath may
need to settle (``exhaustive.confirm`` picks among them and calls mpmath).
Memory is bounded by the block (``BLOCK`` inputs: about 20 MiB of arrays per process), not by
the chunk or the chunk count.
"""

import os
import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from actbench_ulp.accuracy import oracle
from actbench_ulp.core.executors import single_thread

__all__ = ["BINADE", "BINADES", "Chunk", "Job", "chunks", "impl_spec", "run_chunk"]

BINADE = 1 << 23  # bit patterns per binade of one sign
BINADES = 1 << 9  # 2 signs x 256 exponents
BLOCK = 1 << 19  # inputs per kernel call: a block's arrays (~1 MiB) stay in the cache
TARGET_POINTS = 1 << 23  # inputs per task: big enough to amortise mpmath, small in memory


@dataclass(frozen=True)
class Chunk:
    """Bit patterns ``lo <= b < hi`` with ``b % stride == 0``: what one task measures."""

    index: int
    lo: int
    hi: int
    stride: int

    @property
    def first(self) -> int:
        return -(-self.lo // self.stride) * self.stride

    @property
    def size(self) -> int:
        return max(0, -(-(self.hi - self.first) // self.stride))


def chunks(stride: int = 1, target: int = TARGET_POINTS) -> list[Chunk]:
    """The tasks of a sweep with ``stride``: whole binades, about ``target`` inputs each (at
    least one binade)."""
    per = 1
    while per < BINADES and per * BINADE // stride < target:
        per *= 2
    span = per * BINADE
    return [Chunk(i, lo, lo + span, stride) for i, lo in enumerate(range(0, 1 << 32, span))]


# --- what a task needs, picklable for a process pool or a Dask worker ----------------------


def impl_spec(impl) -> tuple:
    """A picklable description of ``impl`` that ``_resolve`` turns back into it in a worker:
    the built-in name, a ``module:function`` spec, or the user's callables themselves."""
    from actbench_ulp.core.peers import BUILTIN, UserImpl

    if impl.name in BUILTIN and type(impl) is BUILTIN[impl.name]:
        return ("builtin", impl.name)
    if isinstance(impl, UserImpl):
        spec = getattr(impl, "spec", None)
        if spec is not None:
            return ("spec", *spec)
        return ("callables", impl.name, impl.forward, impl.derivative, impl.library)
    return ("object", impl)


@cache
def _resolve_cached(spec: tuple):
    return _resolve(spec)


def _resolve(spec: tuple):
    from actbench_ulp.core.peers import BUILTIN, UserImpl

    kind, *rest = spec
    if kind == "builtin":
        return BUILTIN[rest[0]]()
    if kind == "spec":
        return UserImpl.from_spec(*rest)
    if kind == "callables":
        return UserImpl(*rest)
    return rest[0]


@dataclass(frozen=True)
class Job:
    """One chunk of one sweep."""

    impl: tuple
    activation: str
    variant: str
    direction: str
    chunk: Chunk
    bound: float  # the oracle's bound, float64 ULP
    declaration: object = None  # a declared activation's Declaration: a pool process registers it


def _case(job: Job):
    from actbench_ulp.core.catalog import Case
    from actbench_ulp.core.declared import ensure

    act = ensure(job.activation, job.declaration)
    return Case(act, act.variant(job.variant), job.direction)


def machine_code() -> dict:
    """What picks the machine code that computes a sweep: the CPU our kernels are compiled for
    (Numba's target: the table-driven tanh exists only with AVX-512F), the host CPU (torch's
    dispatch follows it), and the settings that override a peer's choice."""
    from llvmlite import binding as llvm
    from numba.core import codegen

    from actbench_ulp.kernels import _target

    return {"compiled_for": list(_target.target()),
            "host": [llvm.get_host_cpu_name(), codegen.get_host_cpu_features()],
            "env": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "XLA_FLAGS")}}


def run_chunk(job: Job, oracle_kernel=None) -> dict:
    """Measure one chunk (in a worker): the summary ``exhaustive.confirm`` merges.
    ``oracle_kernel`` replaces the oracle (the tests plant a wrong one)."""
    from actbench_ulp.accuracy.audit import call_kernel

    single_thread()
    start = time.perf_counter()
    case = _case(job)
    act = case.activation
    kernel = _resolve_cached(job.impl).kernel(case)
    if oracle_kernel is None:
        from actbench_ulp.core.declared import oracle as catalog_oracle

        oracle_kernel = catalog_oracle(act, job.direction)[0]
    delta = oracle.delta_for(job.bound)
    bound_mant = int(np.ceil(job.bound))
    chunk = job.chunk
    counters, floats = oracle.tallies()
    binmax = np.full(BINADES, -1.0)
    hist = np.zeros(oracle.HIST_BINS, np.int64)
    top = np.full((oracle.TOP_ROWS, 4), -1.0)
    deferred = np.empty((oracle.MAX_DEFERRED, 4))
    mism = np.empty((oracle.MISMATCH_KEPT, 4))
    cands = np.empty((2 * oracle.MAX_CANDIDATES, 4))
    spot = np.sort(np.random.default_rng(chunk.index).integers(
        0, chunk.size, min(oracle.SPOT_CHECKS, chunk.size)))
    spots = []
    scratch = np.zeros(1)
    x_bits, x64 = np.empty(BLOCK, np.uint32), np.empty(BLOCK)
    work = np.empty((2, BLOCK))
    nan_inputs = 0
    warned, notes = [], []
    # block by block: a block's inputs, results, oracle values and errors stay in the cache
    for offset in range(0, chunk.size, BLOCK):
        size = min(BLOCK, chunk.size - offset)
        first = chunk.first + offset * chunk.stride
        xb, x64b = x_bits[:size], x64[:size]
        nan_inputs += int(oracle.inputs(first, chunk.stride, xb, x64b))
        # NumPy's floating-point warnings silenced: overflow in a peer's exp is what the sweep
        # measures, not news
        with np.errstate(all="ignore"):
            got, problem, warning, note = call_kernel(kernel, (xb.view(np.float32),), act.params)
        if warning:
            warned.append(warning)
        if note:
            notes.append(note)
        if problem:
            return {"index": chunk.index, "n": chunk.size, "error": problem,
                    "warnings": "; ".join(dict.fromkeys(warned)), "wrong_dtype": ""}
        got = np.ascontiguousarray(got, dtype=np.float32)
        with np.errstate(all="ignore"):
            ref = np.ascontiguousarray(oracle_kernel(x64b, **act.params), np.float64)
        oracle.scan(offset, first, chunk.stride, got, ref, delta, bound_mant, work[:, :size],
                    binmax, hist, top, deferred, mism, cands, counters, floats, scratch,
                    scratch.view(np.int64))
        # random points for testing the oracle's bound, as measured in their block
        spots += [(i, got[i - offset], ref[i - offset]) for i in spot if offset <= i < offset + size]
    c = dict(zip(oracle.COUNTERS, counters.tolist(), strict=True))
    out = {"index": chunk.index, "n": chunk.size, "error": "", "machine_code": machine_code(),
           "warnings": "; ".join(dict.fromkeys(warned)), "wrong_dtype": "; ".join(dict.fromkeys(notes))}
    c["nan_inputs"] = nan_inputs
    del c["mismatches_kept"], c["candidates"], c["top_kept"]
    kept_top = top[:counters[10]]
    cut = float(floats[3])  # the largest proven lower bound: the maximum's upper bound reaches it
    count, unchecked, _ = oracle._prune(cands, int(counters[9]), float(floats[4]), cut)
    candidates = cands[:count]
    candidates = candidates[np.argsort(candidates[:, 0], kind="stable")]
    out.update(
        counters=c, sum_ulp=float(floats[0]), max_abs=float(floats[1]),
        max_rel=float(floats[2]), hist=[[int(b), int(hist[b])] for b in np.flatnonzero(hist)],
        binmax=[[int(b), float(binmax[b])] for b in np.flatnonzero(binmax >= 0)],
        max_lower=cut, unchecked_upper=unchecked,
        candidates=[_record(chunk, *p, "upper") for p in candidates],
        top=[_record(chunk, *p, "ulp") for p in kept_top],
        deferred=[_record(chunk, *p) for p in deferred[:min(c["deferred"], len(deferred))]],
        mismatches=[_record(chunk, *p) for p in mism[:min(counters[8], mism.shape[0])]],
        spot=[_record(chunk, i, g, r) for i, g, r in spots],
        seconds=round(time.perf_counter() - start, 3))
    return out


def _record(chunk, index, g, r, extra=None, name=None) -> dict:
    """A point for mpmath to settle: its bit pattern, our result and the oracle's."""
    rec = {"bits": chunk.first + int(index) * chunk.stride, "got": float(g), "oracle": float(r)}
    if name:
        rec[name] = float(extra)
    return rec

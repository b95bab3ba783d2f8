"""Speed of every catalog kernel and its peers, beside ``np.copyto`` of the same bytes.

Run through ``actbench bench`` (which pins the thread count before Numba starts and turns
the JSON into the speed table).  Selection comes from the environment, set by that command:
ACTBENCH_BENCH = JSON {"activation": [...], "variant": [...], "direction": [...], "dtype": [...],
"size": [...], "impl": [...], "impl_derivative": "module:function" or null,
"audit": "path/to/audit.csv"}.

Every benchmark warms its kernel first: the first call (which includes any JIT compilation
and, for a callable in an array library, finding that library and checking the conversion of
its inputs once) is timed once and kept as ``first_call_s`` in ``extra_info``, apart from the
steady state, which calls it on its library's own arrays.
Outputs are preallocated wherever the implementation takes ``out=``. Around each benchmark
two yardsticks are timed (``copy_s``, ``cpu_s`` in ``extra_info``) for ``actbench compare``.
With more than one thread, each benchmark also times one thread against all of them,
interleaved round by round in the same process (``thread_speedup``: the median of the rounds'
ratios; ``thread_speedup_noise``: their IQR over that median).
"""

import json
import os
import time

import numba
import numpy as np
import pytest

from actbench_ulp.accuracy.table import worst_errors_from
from actbench_ulp.core import arrays, catalog, peers
from actbench_ulp.speed.worker import inputs, libm_loop, yardstick_times

CONFIG = json.loads(os.environ.get("ACTBENCH_BENCH", "{}"))
SIZES = [int(s) for s in CONFIG.get("size") or (10**3, 10**5, 10**6, 10**7)]
DTYPES = CONFIG.get("dtype") or list(catalog.DTYPES)
IMPLS = CONFIG.get("impl") or ["ours"]
THREADS = int(os.environ.get("NUMBA_NUM_THREADS", "1"))
ROW_LENGTH = int(CONFIG.get("row_length") or 1000)


MAX_ULP = worst_errors_from(CONFIG.get("audit"))

try:  # torch pins its own intra-op threads
    import torch

    torch.set_num_threads(THREADS)
except ImportError:
    torch = None
# JAX sizes its CPU thread pool once, from PJRT_NPROC (set by actbench bench), and computes in
# float64 only with x64 on; imported only when timed, being slow to import
if "jax" in IMPLS:
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        pass  # peers.resolve("jax") raises PeerUnavailable below: its benchmarks are skipped
SPEEDUP_ROUNDS = 11


def _set_threads(library: str, n: int) -> None:
    """Numba's threads, and torch's where the timed callable runs in torch (the torch peer's or
    a user's); JAX's pool is sized once per process (PJRT_NPROC)."""
    numba.set_num_threads(n)
    if library == "torch" and torch is not None:
        torch.set_num_threads(n)


def _thread_speedup(library: str, run) -> dict:
    """1 thread against THREADS in alternating rounds (which goes first alternates too), so
    that both see the same moments of this shared machine; each thread count is called once
    first, untimed (a kernel's serial loop may not have been compiled yet)."""
    for n in (1, THREADS):
        _set_threads(library, n)
        run()
    ratios = []
    for r in range(SPEEDUP_ROUNDS):
        times = {}
        for n in ((1, THREADS) if r % 2 else (THREADS, 1)):
            _set_threads(library, n)
            start = time.perf_counter()
            run()
            times[n] = time.perf_counter() - start
        ratios.append(times[1] / times[THREADS])
    _set_threads(library, THREADS)
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {"thread_speedup": float(median), "thread_speedup_noise": float((q3 - q1) / median)}


def _on_device(impl, case, args):
    """JAX timed as it is used: inputs already JAX arrays, the jitted function waited for
    (``block_until_ready``: JAX dispatches asynchronously), so the NumPy conversions the audit
    needs stay out of the timing (the warm-up call compiles)."""
    run = impl.device_kernel(case)
    return (lambda *a, **kw: run(*a, **kw).block_until_ready()), tuple(map(impl.to_device, args))


def _natives(kernel, args, kwargs):
    """A callable in an array library (the torch peer's, a user's ``module:function``) timed as
    the JAX peer is: on its library's own arrays, converted and checked bit for bit once by
    ``prepare`` (which finds the library, if need be, with one call), and waited for where the
    library is asynchronous; the audit's per-call conversions and checks stay out of the timing.
    Returns the callable, its inputs and the library's name."""
    with np.errstate(all="ignore"):
        call, natives = kernel.prepare(*args, **kwargs)
    return call, tuple(natives), kernel.lib.name


def _params():
    acts = CONFIG.get("activation")
    dirs = CONFIG.get("direction")
    out = []
    for impl_name in IMPLS:
        try:
            impl = peers.resolve(impl_name,
                                 CONFIG.get("impl_derivative") if ":" in impl_name else None,
                                 (CONFIG.get("impl_library") or "auto") if ":" in impl_name else "auto")
        except peers.PeerUnavailable:
            continue
        selection = list(catalog.cases(acts, CONFIG.get("variant"), dirs))
        for case in selection:
            if impl.kernel(case) is None or (
                    impl.name != "ours" and not catalog.runs_for_peers(case, selection)):
                continue
            for dtype in filter(case.takes, DTYPES):
                for size in SIZES:
                    out.append(pytest.param(impl, case, dtype, size,
                                            id=f"{impl.name}-{case.label}-{dtype}-{size}"))
    # one case's implementations back to back (ours, then each peer), case after case, so
    # that the machine's drift over the run falls on all of them alike rather than on
    # whichever implementation's turn came late
    catalog_order = {name: i for i, name in enumerate(catalog.CATALOG)}
    return sorted(out, key=lambda p: (catalog_order.get(p.values[1].activation.name, 0),
                                      p.values[1].direction, p.values[2], p.values[3]))


@pytest.mark.parametrize(("impl", "case", "dtype", "size"), _params())
def test_kernel(benchmark, impl, case, dtype, size):
    kernel = impl.kernel(case)
    args, kwargs = inputs(case, dtype, size, np.random.default_rng(size), ROW_LENGTH)
    nbytes_in = sum(a.nbytes for a in args)
    elements, row_length = int(args[0].size), int(args[0].shape[-1])
    takes_out = impl.name == "ours"
    library = impl.name  # whose threads are pinned
    if impl.name == "jax":
        kernel, args = _on_device(impl, case, args)
    start = time.perf_counter()
    if isinstance(kernel, arrays.ArrayCallable | arrays.Autograd):
        kernel, args, library = _natives(kernel, args, kwargs)
    with np.errstate(all="ignore"):
        result = kernel(*args, **kwargs)  # warm-up: includes any JIT compilation
    first = time.perf_counter() - start
    if takes_out:
        kwargs = {**kwargs, "out": np.empty_like(result)}

    def run():
        with np.errstate(all="ignore"):
            return kernel(*args, **kwargs)

    nbytes = nbytes_in + np.asarray(arrays.to_numpy(result)).nbytes
    before = _references(nbytes, dtype)
    benchmark.extra_info.update(
        impl=impl.name, activation=case.activation.name,
        variant=case.variant.name if impl.name == "ours" else "-", direction=case.direction,
        kind=case.activation.kind, dtype=dtype, size=size, bytes=nbytes,
        elements=elements, row_length=row_length if case.activation.kind == "rowwise" else None,
        first_call_s=first, threads=THREADS,
        max_ulp=MAX_ULP.get((impl.name, case.activation.name,
                             case.variant.name if impl.name == "ours" else "-", case.direction,
                             dtype)),
    )
    benchmark(run)
    if THREADS > 1 and library != "jax":  # its thread pool is fixed for the process
        benchmark.extra_info.update(_thread_speedup(library, run))
    after = _references(nbytes, dtype)
    benchmark.extra_info.update(copy_s=float(np.median(before[0] + after[0])),
                                cpu_s=float(np.median(before[1] + after[1])))


_CPU = None


def _references(nbytes, dtype):
    """Two yardsticks timed right before and after each benchmark, so that a comparison
    across runs can divide out the state of this shared machine at that moment: np.copyto of
    the benchmark's bytes (memory) and a scalar libm loop (compute; what our kernels do)."""
    global _CPU
    if _CPU is None:
        _CPU = libm_loop()
    return yardstick_times(nbytes, dtype, _CPU)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_copy_roofline(benchmark, dtype, size):
    """np.copyto of the bytes an elementwise kernel moves: this machine's memory roofline."""
    src = np.random.default_rng(0).uniform(-1, 1, size).astype(dtype)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    benchmark.extra_info.update(impl="np.copyto", activation="copy", variant="-",
                                direction="-", kind="copy", dtype=dtype, size=size,
                                bytes=src.nbytes + dst.nbytes, first_call_s=0.0,
                                threads=THREADS, max_ulp=0.0)
    benchmark(np.copyto, dst, src)

"""Where parallel work runs: a local process pool, or an existing Dask cluster.

Both are ``concurrent.futures.Executor``s, so the exact-value tasks (``exact.resolve_exact``)
and the exhaustive float32 sweep's chunks (``actbench_ulp.accuracy.exhaustive``) are submitted the
same way wherever they run.  A Dask cluster is reached through ``dask.distributed``'s
``Client.get_executor()``; its workers need actbench installed in the same version.

This module imports nothing heavy at load time: a pool's workers unpickle ``init_worker``
from here before anything imports Numba, so the thread settings it makes take effect.
"""

import os
import pickle
import signal
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from actbench_ulp.core import DISTRIBUTION

__all__ = ["DASK_HINT", "SCHEDULER_ENV", "ClusterError", "completed", "connect", "init_worker",
           "local_pool", "picklable", "scheduler_address", "single_thread", "worker_count"]

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
DASK_HINT = f"pip install '{DISTRIBUTION}[dask]' (dask.distributed)"

# One thread per process: the pool's processes are the parallelism, and threads inside each
# would fight them for the same cores (Numba's kernels thread large arrays; torch and XLA
# start a thread per core).  Numba's count is set at run time (``single_thread``): the
# forkserver may have imported it already, and Numba refuses a NUMBA_NUM_THREADS that differs
# from the one its thread pool started with.
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "PJRT_NPROC": "1"}


class ClusterError(RuntimeError):
    """The Dask scheduler cannot be used: dask.distributed missing, or no scheduler there."""


def init_worker(owner: int | None = None) -> None:
    """Runs first in each pool process, before Numba, torch or JAX are imported there.  With
    ``owner`` (the pid of the process that made the pool), a watchdog ends this process once
    the owner is gone: a pool process is a child of the forkserver, not of the owner, and
    would stay behind after the owner is killed, holding its memory (hundreds of MB with
    torch loaded).  Ctrl-C is the owner's to handle: a terminal sends SIGINT to the whole
    process group, and pool processes interrupted in the middle of a task print tracebacks
    and can leave the owner waiting on a broken pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(_ONE_THREAD)
    if owner is not None:
        import threading

        threading.Thread(target=_exit_without, args=(owner,), daemon=True,
                         name="actbench-owner-watchdog").start()


def _exit_without(owner: int) -> None:
    import time

    while True:
        time.sleep(1.0)
        if not _alive(owner):
            os._exit(1)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed owner that its parent has not reaped yet is a zombie,
    which signal 0 still reaches (and its parent, waiting for the pipes this process holds,
    would wait for ever)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): signal 0's answer


def single_thread() -> None:
    """For work that may land in a process that already imported Numba or torch (a Dask
    worker): one thread for what it runs."""
    import sys

    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def picklable(obj) -> bool:
    """Whether ``obj`` can reach a pool process (a lambda or a local function cannot)."""
    try:
        pickle.dumps(obj)
    except Exception:  # PicklingError, AttributeError, TypeError: whatever the object raises
        return False
    return True


def local_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` fresh processes (forkserver: no inherited threads or locks), one thread each."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("forkserver"),
                               initializer=init_worker, initargs=(os.getpid(),))


def completed(executor: Executor, fn, items: list):
    """Yield (k, fn(items[k])) as each finishes in ``executor``; what has not started is
    cancelled when the caller stops early (Ctrl-C, an error), so that nothing runs on for
    results no one will read."""
    futures = {executor.submit(fn, item): k for k, item in enumerate(items)}
    try:
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        for fut in futures:
            fut.cancel()


def scheduler_address(given: str | None) -> str | None:
    """The scheduler to use: the one given, else ``$DASK_SCHEDULER_ADDRESS``, else none."""
    return given or os.environ.get(SCHEDULER_ENV) or None


def connect(address: str, timeout: float = 10.0) -> tuple[Executor, object]:
    """(executor, client) for the Dask scheduler at ``address``; ``ClusterError`` naming the
    problem when dask.distributed is missing or nothing answers there."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(f"--scheduler needs dask.distributed: {DASK_HINT}") from None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
    if not client.scheduler_info().get("workers"):
        client.close()
        raise ClusterError(f"the Dask scheduler at {address!r} has no workers; start some with "
                           f"`dask worker {address}`")
    return client.get_executor(pure=False), client


def worker_count(executor) -> int:
    """How many tasks ``executor`` runs at once (for sizing the work into chunks)."""
    if isinstance(executor, ProcessPoolExecutor):
        return executor._max_workers
    client = getattr(executor, "_client", None)
    if client is not None:
        return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
    return 1

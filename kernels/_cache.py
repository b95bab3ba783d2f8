"""The compiled kernels' on-disk cache, keyed so that no stale code can run.

Numba's own ``cache=True`` checks only the file that defines a function: a kernel whose loop
inlines a helper from another file (``_simd32`` uses ``_simd``'s, ``_rowwise`` uses
``_accurate``'s) would be served stale after that helper changed.  Here every cached function
of a package lives in one directory named by a hash of

- the bytes of every ``*.py`` and ``*.npy`` file of the package (the kernels' sources and
  constants, and their tables),
- the versions of Python, Numba, llvmlite, NumPy and mpmath (constants are computed with it),
- the CPU name and features Numba compiles for (``_target.target()``: the host's, or those
  ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` set),

so editing any kernel file, upgrading Numba, moving to another CPU or compiling for another
one starts a new, empty directory, and nothing compiled from other sources or for another
target is ever looked up.  Within a directory
each function has its own index file under a unique name: the kernel factories build many
loops from one closure, which Numba would otherwise tell apart only by pickling the closure's
cells (a Numba dispatcher pickles with a fresh UUID each process, so it would never hit).

The directory is ``<package>-<key>`` under ``$ACTBENCH_NUMBA_CACHE`` if set, else under
``numba/`` in ``$ACTBENCH_CACHE`` (default ``~/.cache/actbench``); ``ACTBENCH_NUMBA_CACHE=off``
disables it, and so does ``NUMBA_CACHE_LOCATOR_CLASSES`` (Numba would then pick its own
locators, keyed by one file).
If the directory cannot be written the kernels simply compile in memory; an entry that cannot
be read (a damaged file) is reported with a ``RuntimeWarning`` naming it, removed, and
compiled again.

``stats()`` is the time this process spent compiling (Numba's ``numba:compile`` events,
outermost only) and how many functions, and how many were loaded from this cache and in how
long.
"""

import functools
import glob
import hashlib
import os
import sys
import threading
import time
import typing
import warnings
from pathlib import Path

import llvmlite
import mpmath
import numba
import numpy as np
from numba.core import caching, event

from . import _target

__all__ = ["KernelCache", "cache_directory", "cache_root", "cached", "source_key", "stats"]

DISABLED = ("off", "0", "no", "false")


def cache_root() -> Path:
    """Where actbench keeps its caches: $ACTBENCH_CACHE, else $XDG_CACHE_HOME/actbench or
    ~/.cache/actbench (the exact values live there too)."""
    env = os.environ.get("ACTBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "actbench"


@functools.cache
def source_key(package_dir: str) -> str:
    """The hash naming a package's cache directory (see the module docstring)."""
    h = hashlib.sha256()
    for path in sorted([*Path(package_dir).glob("*.py"), *Path(package_dir).glob("*.npy")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    versions = (sys.version, numba.__version__, llvmlite.__version__, np.__version__,
                mpmath.__version__, *_target.target())
    h.update(repr(versions).encode())
    return h.hexdigest()[:20]


def cache_directory(package_dir: str) -> Path | None:
    """The cache directory of the package at ``package_dir``; None when caching is off."""
    env = os.environ.get("ACTBENCH_NUMBA_CACHE")
    if env and env.lower() in DISABLED:
        return None
    base = Path(env) if env else cache_root() / "numba"
    return base / f"{Path(package_dir).name}-{source_key(package_dir)}"


class _Locator(caching._CacheLocator):
    """Numba's locator protocol, pointed at the keyed directory; the stamp is the key."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file  # Numba's check_cachable names it when it refuses a result
        self._package = str(Path(py_file).resolve().parent)
        self._path = cache_directory(self._package)

    def get_cache_path(self):
        return str(self._path)

    def get_source_stamp(self):
        return source_key(self._package)

    def get_disambiguator(self):
        return "k"  # the function's unique name says the rest

    @classmethod
    def from_function(cls, py_func, py_file):
        self = cls(py_func, py_file)
        if self._path is None:
            return None
        try:
            self.ensure_cache_path()
        except OSError:  # not writable: compile in memory
            return None
        return self


class _Impl(caching.CompileResultCacheImpl):
    _locator_classes: typing.ClassVar[list] = [_Locator]


class KernelCache(caching.FunctionCache):
    """Numba's function cache in the keyed directory, indexed by signature, target and the
    function's unique name (the directory's key already covers every source, the closure's
    included)."""

    _impl_class = _Impl

    def _index_key(self, sig, codegen):
        return (sig, codegen.magic_tuple(), self._py_func.__qualname__)

    def load_overload(self, sig, target_context):
        t0 = time.perf_counter()
        try:
            data = super().load_overload(sig, target_context)
        except Exception as exc:  # any damaged entry (index or data): say so, drop it, recompile
            base = self._impl.filename_base
            warnings.warn(f"actbench: the compiled-kernel cache of {self._py_func.__qualname__} "
                          f"({Path(self._cache_path) / base}.*) is unreadable "
                          f"({type(exc).__name__}: {exc}); removing it and compiling again",
                          RuntimeWarning, stacklevel=2)
            for path in Path(self._cache_path).glob(f"{glob.escape(base)}.*"):
                path.unlink(missing_ok=True)
            return None
        if data is not None:
            with _lock:
                _totals["load_seconds"] += time.perf_counter() - t0
                _totals["loaded"] += 1
        return data


_names: dict = {}


def cached(dispatcher, name: str | None = None):
    """Give an ``njit`` dispatcher the keyed disk cache, under ``name`` (default: its qualified
    name; the loops built by one factory need one each, unique within their file).  Returns
    it."""
    func = dispatcher.py_func
    name = name or func.__qualname__
    owner = _names.setdefault((func.__code__.co_filename, name), func)
    if owner is not func:
        raise ValueError(f"two cached kernels are both named {name!r}")
    func.__qualname__ = name
    if os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):  # Numba's locators would replace ours
        return dispatcher
    try:
        dispatcher._cache = KernelCache(func)
    except RuntimeError:  # no locator: caching is off or the directory is not writable
        pass
    return dispatcher


# --- how long this process spent compiling (or loading) kernels --------------------------

_lock = threading.Lock()
_depth = threading.local()
_totals = {"seconds": 0.0, "compiled": 0, "load_seconds": 0.0, "loaded": 0}


class _Timer(event.Listener):
    """Sums the outermost ``numba:compile`` events (nested ones are inside them)."""

    def on_start(self, ev):
        d = getattr(_depth, "n", 0)
        _depth.n = d + 1
        if d == 0:
            _depth.t0 = time.perf_counter()

    def on_end(self, ev):
        _depth.n -= 1
        if _depth.n == 0:
            with _lock:
                _totals["seconds"] += time.perf_counter() - _depth.t0
                _totals["compiled"] += 1


event.register("numba:compile", _Timer())


def stats() -> dict:
    """This process so far: seconds compiling and functions compiled (outermost requests),
    seconds loading and functions loaded from the cache, and the kernels' cache directory."""
    directory = cache_directory(str(Path(__file__).resolve().parent))
    return {**_totals, "directory": None if directory is None else str(directory)}

"""Exact values for the audit's batches: cached on disk, computed in a process pool.

A ``Task`` names a reference and holds the inputs it needs; its key hashes the reference's
fingerprint (its source and helpers, see ``reference.fingerprint``), the inputs' bytes (so
any change to a domain changes exactly the keys of the batches it changes), the dtype, the
working precisions and the cache schema.  The same exact values then serve every
implementation and every later run.

Cache entries are ``.npz`` files written atomically (temporary file, then rename) holding
the values and a SHA-256 of them; an entry that cannot be read, has the wrong shape or a
wrong checksum is reported, recomputed and rewritten, never used.
"""

import hashlib
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from actbench_ulp import reference
from actbench_ulp.core.executors import completed, local_pool, picklable
from actbench_ulp.kernels._cache import cache_root
from actbench_ulp.reference.fingerprint import fingerprint

__all__ = ["CACHE_SCHEMA", "Cache", "Task", "default_cache_dir", "resolve_exact"]

CACHE_SCHEMA = 1
CHUNK = 1024  # elements per pool job: small enough to balance two cores, big enough to amortise


def default_cache_dir() -> Path:
    """$ACTBENCH_CACHE, else $XDG_CACHE_HOME/actbench or ~/.cache/actbench: the kernels'
    compiled code is kept there too (under numba/)."""
    return cache_root()


def _registry(kind):
    return {"elementwise": reference.REFERENCES, "gated": reference.GATED,
            "rowwise": reference.ROWWISE}[kind]


@dataclass(frozen=True)
class Task:
    """The exact values of reference ``ref_name`` (of ``kind``) at ``arrays``."""

    kind: str
    ref_name: str
    arrays: tuple
    params: dict = field(default_factory=dict)
    tau: float | None = None
    # the reference itself, for one declared outside actbench (``core.declared``): a pool
    # process that never saw its registration computes from this; shipped ones go by name
    ref: object = None

    def __post_init__(self):
        if self.ref is not None and _registry(self.kind).get(self.ref_name) is self.ref:
            object.__setattr__(self, "ref", None)  # shipped: a pool process finds it by name

    def function(self):
        """The reference: ``ref``, or the shipped one named ``ref_name``."""
        return self.ref if self.ref is not None else _registry(self.kind)[self.ref_name]

    @property
    def size(self) -> int:
        return int(self.arrays[0].size)

    @cached_property
    def key(self) -> str:
        """Computed once per task: the audit looks each batch up after resolve_exact keyed it."""
        ref = self.function()
        h = hashlib.sha256()
        h.update(f"schema={CACHE_SCHEMA} {self.kind} {self.ref_name} {fingerprint(ref)}".encode())
        h.update(f" {self.arrays[0].dtype.name} {reference.working_precisions(self.arrays[0].dtype)}"
                 f" max={reference.MAX_PRECISION} params={sorted(self.params.items())!r}"
                 f" tau={self.tau!r}".encode())
        for a in self.arrays:
            h.update(f" {a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def compute(self) -> reference.Exact:
        ref = self.function()
        if self.kind == "rowwise":
            x, *g = self.arrays
            return reference.evaluate_rows(ref, x, g[0] if g else None, self.tau)
        return reference.evaluate(ref, *self.arrays, params=self.params)

    def chunks(self):
        """Pieces for the pool (rows stay whole: a row's values depend on each other)."""
        if self.kind == "rowwise" or self.size <= CHUNK:
            return [self]
        flat = [a.ravel() for a in self.arrays]
        return [Task(self.kind, self.ref_name, tuple(a[i:i + CHUNK] for a in flat), self.params,
                     self.tau, self.ref) for i in range(0, self.size, CHUNK)]


def _compute_arrays(task: Task):
    ex = task.compute()
    return ex.want.astype(np.float64), ex.hi, ex.lo


class Cache:
    """Content-addressed store of exact values; ``directory=None`` disables it."""

    def __init__(self, directory=None, report=None):
        self.directory = Path(directory) if directory else None
        self.hits = self.misses = 0
        self.corrupt: list[str] = []
        self.report = report or (lambda msg: print(f"actbench: {msg}", file=sys.stderr))

    def _path(self, key):
        return self.directory / key[:2] / f"{key}.npz"

    @staticmethod
    def _checksum(key, want, hi, lo):
        h = hashlib.sha256(key.encode())
        for a in (want, hi, lo):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()

    def load_array(self, key):
        """A lone array stored under ``key`` (``store_array``), or None."""
        hit = self._read(key, None)
        return None if hit is None else hit[0]

    def store_array(self, key, values):
        values = np.asarray(values, dtype=np.float64)
        self.store(key, values, np.zeros_like(values), np.zeros_like(values))

    def load(self, key, task: Task):
        return self._read(key, task.arrays[0].shape)

    def _read(self, key, shape):
        if self.directory is None:
            self.misses += 1
            return None
        path = self._path(key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            # our own handle: np.load leaks its file when a truncated archive makes it raise
            with open(path, "rb") as fh:
                f = np.load(fh, allow_pickle=False)
                if not isinstance(f, np.lib.npyio.NpzFile):
                    raise ValueError("not an .npz archive")
                with f:
                    want, hi, lo, stored = f["want"], f["hi"], f["lo"], str(f["checksum"])
            shape = want.shape if shape is None else shape
            if want.shape != shape or hi.shape != shape or lo.shape != shape:
                raise ValueError(f"shape {want.shape}, expected {shape}")
            if stored != self._checksum(key, want, hi, lo):
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            self.corrupt.append(str(path))
            self.report(f"cache entry {path} is corrupt ({exc}); recomputing it")
            self.misses += 1
            return None
        self.hits += 1
        return want, hi, lo

    def store(self, key, want, hi, lo):
        """Write an entry; a cache that cannot be written is reported, not fatal."""
        if self.directory is None:
            return
        path = self._path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, want=want, hi=hi, lo=lo,
                         checksum=np.array(self._checksum(key, want, hi, lo)))
            os.replace(tmp, path)
        except OSError as exc:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            self.report(f"cannot write cache entry {path}: {exc.strerror or exc}")


def resolve_exact(tasks: list[Task], cache: Cache, jobs: int = 1, progress=None,
                  executor=None) -> dict:
    """key -> Exact for every task: from the cache, else computed, in ``executor`` (a
    ``concurrent.futures.Executor``: a process pool or a Dask cluster, see ``executors``)
    when one is given, else in ``jobs`` processes."""
    results, todo, by_key = {}, {}, {}
    for task in tasks:
        key = task.key
        if key in by_key:
            continue
        by_key[key] = task
        hit = cache.load(key, task)
        if hit is None:
            todo[key] = task
        else:
            results[key] = hit
    pieces = [(key, i, chunk) for key, task in todo.items() for i, chunk in enumerate(task.chunks())]
    total = sum(chunk.size for _, _, chunk in pieces)
    bar = progress(total) if progress and total else None
    parts: dict = {key: {} for key in todo}
    # a declared reference made of lambdas or local functions cannot reach a pool: here then
    here = any(t.ref is not None and not picklable(t.ref) for t in todo.values())
    if executor is not None and pieces and not here:
        _gather(executor, pieces, parts, bar)
    elif jobs > 1 and len(pieces) > 1 and not here:
        with local_pool(jobs) as pool:
            _gather(pool, pieces, parts, bar)
    else:
        for key, i, chunk in pieces:
            parts[key][i] = _compute_arrays(chunk)
            if bar:
                bar.update(chunk.size)
    if bar:
        bar.close()
    for key, task in todo.items():
        got = [parts[key][i] for i in range(len(parts[key]))]
        shape = task.arrays[0].shape
        want, hi, lo = (np.concatenate([g[j].ravel() for g in got]).reshape(shape)
                        for j in range(3))
        cache.store(key, want, hi, lo)
        results[key] = (want, hi, lo)
    return {key: _as_exact(by_key[key].arrays[0], *v) for key, v in results.items()}


def _gather(pool, pieces, parts, bar):
    for k, arrays in completed(pool, _compute_arrays, [chunk for *_, chunk in pieces]):
        key, i, chunk = pieces[k]
        parts[key][i] = arrays
        if bar:
            bar.update(chunk.size)


def _as_exact(x, want, hi, lo):
    return reference.Exact(x=x, want=want.astype(x.dtype), hi=hi, lo=lo)

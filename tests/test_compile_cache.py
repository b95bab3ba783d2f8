"""The compiled kernels' disk cache (kernels/_cache.py): warm processes load instead of
compiling, and a change to any source file, a helper's included, is recompiled, never served
stale.  Each run is a fresh process, since a process keeps what it has compiled in memory."""

import json
import os
import subprocess
import sys

from actbench_ulp.kernels import _cache, _target

HELPER = """
from numba import njit


@njit
def bump(x):
    return x + 1.0
"""

KERNEL = """
from numba import njit

from actbench_ulp.kernels._cache import cached

from .helper import bump


def _loop(x, out):
    for i in range(x.size):
        out[i] = bump(x[i])


loop = cached(njit(_loop), "loop")
"""

RUN_TOY = """
import json, numpy as np
from toy import kernel
from actbench_ulp.kernels._cache import stats
out = np.empty(3)
kernel.loop(np.arange(3.0), out)
print(json.dumps({"out": out.tolist(), **stats()}))
"""


def _run(code, cwd, cache_dir, stderr=None, env=None):
    env = {**os.environ, "ACTBENCH_NUMBA_CACHE": str(cache_dir), **(env or {})}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    if stderr is not None:
        stderr.append(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _toy_package(tmp_path):
    """The toy package (a kernel calling a helper in another file) and an empty cache
    directory beside it: (the package's folder, the cache's)."""
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text(HELPER)
    (pkg / "kernel.py").write_text(KERNEL)
    return pkg, tmp_path / "cache"


def test_a_helper_changed_in_another_file_recompiles_its_caller(tmp_path):
    pkg, cache_dir = _toy_package(tmp_path)

    cold = _run(RUN_TOY, tmp_path, cache_dir)
    warm = _run(RUN_TOY, tmp_path, cache_dir)
    assert cold["out"] == warm["out"] == [1.0, 2.0, 3.0]
    assert (cold["compiled"], cold["loaded"]) == (1, 0)
    assert (warm["compiled"], warm["loaded"]) == (0, 1)  # served from disk

    # kernel.py is untouched; Numba's own cache=True would check only its stamp and serve the
    # old code, returning x + 1 still
    (pkg / "helper.py").write_text(HELPER.replace("x + 1.0", "x + 2.0"))
    changed = _run(RUN_TOY, tmp_path, cache_dir)
    assert changed["out"] == [2.0, 3.0, 4.0]
    assert (changed["compiled"], changed["loaded"]) == (1, 0)
    assert len(list(cache_dir.glob("toy-*"))) == 2  # the old key's directory and the new one

    # a damaged entry is named, removed and compiled again; the result is still right
    (index,) = [p for p in cache_dir.glob("toy-*/*.nbi") if p.stat().st_mtime == max(
        q.stat().st_mtime for q in cache_dir.glob("toy-*/*.nbi"))]
    index.write_bytes(index.read_bytes()[:20])
    stderr = []
    damaged = _run(RUN_TOY, tmp_path, cache_dir, stderr)
    assert damaged["out"] == [2.0, 3.0, 4.0]
    assert (damaged["compiled"], damaged["loaded"]) == (1, 0)
    assert "is unreadable" in stderr[0] and "loop" in stderr[0]
    again = _run(RUN_TOY, tmp_path, cache_dir)
    assert (again["compiled"], again["loaded"]) == (0, 1)


def test_the_key_covers_every_source_file_and_the_versions(tmp_path, monkeypatch):
    for name, text in (("a.py", "x = 1\n"), ("b.py", "y = 2\n")):
        (tmp_path / name).write_text(text)
    keys = {_cache.source_key(str(tmp_path))}
    (tmp_path / "b.py").write_text("y = 3\n")
    _cache.source_key.cache_clear()
    keys.add(_cache.source_key(str(tmp_path)))
    monkeypatch.setattr(_cache.numba, "__version__", "0.0.0")
    _cache.source_key.cache_clear()
    keys.add(_cache.source_key(str(tmp_path)))
    _cache.source_key.cache_clear()
    assert len(keys) == 3


def test_the_key_covers_the_target_numba_compiles_for(tmp_path, monkeypatch):
    # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES as Numba read them (numba.core.config): each target,
    # the host's name with the named CPU's own features included, has its own directory
    (tmp_path / "a.py").write_text("x = 1\n")
    keys = set()
    for name, features in ((None, None), ("skylake-avx512", ""), ("haswell", ""),
                           (_target.llvm.get_host_cpu_name(), ""), ("haswell", "+avx2,-avx512f")):
        monkeypatch.setattr(_target.config, "CPU_NAME", name)
        monkeypatch.setattr(_target.config, "CPU_FEATURES", features)
        _cache.source_key.cache_clear()
        keys.add(_cache.source_key(str(tmp_path)))
    _cache.source_key.cache_clear()
    assert len(keys) == 5


def test_code_compiled_for_another_target_is_never_loaded(tmp_path):
    """A process compiling for another CPU (tests/test_vector_width.py's AVX-512 run, say)
    writes its own directory: it loads nothing of the host's, and the host's code stays."""
    _, cache_dir = _toy_package(tmp_path)
    other = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}  # AVX2, no AVX-512
    host = _run(RUN_TOY, tmp_path, cache_dir)
    elsewhere = _run(RUN_TOY, tmp_path, cache_dir, env=other)
    assert (host["compiled"], elsewhere["compiled"], elsewhere["loaded"]) == (1, 1, 0)
    assert elsewhere["directory"] != host["directory"]
    assert len(list(cache_dir.glob("toy-*"))) == 2
    again = _run(RUN_TOY, tmp_path, cache_dir)
    assert (again["compiled"], again["loaded"]) == (0, 1)
    assert _run(RUN_TOY, tmp_path, cache_dir, env=other)["loaded"] == 1


RUN_KERNELS = """
import json, numpy as np
from actbench_ulp import kernels
x = np.linspace(-3, 3, 64)
outs = [kernels.gelu(x), kernels.elu(x, alpha=0.5), kernels.glu(x, x[::-1]),
        kernels.sigmoid_simd(x), kernels.tanh_simd_f32(x.astype(np.float32)),
        kernels.softmax(x.reshape(8, 8)), kernels.softmax_fast(x.reshape(8, 8)),
        kernels.softmax_vjp_fast(x.reshape(8, 8).astype(np.float32), x.reshape(8, 8).astype(np.float32)),
        kernels.glu_fast(x, x[::-1])]
print(json.dumps({"out": [o.astype(float).tolist() for o in outs], **kernels.compile_stats()}))
"""


def test_a_warm_process_compiles_none_of_our_kernels(tmp_path):
    """One kernel from each compiled module (accurate, gated, simd, simd_f32, row-wise, fast
    row-wise, fast gated): the second process loads every one of them and compiles nothing."""
    cold = _run(RUN_KERNELS, tmp_path, tmp_path / "cache")
    warm = _run(RUN_KERNELS, tmp_path, tmp_path / "cache")
    assert cold["compiled"] >= 9 and cold["loaded"] == 0
    assert warm["compiled"] == 0 and warm["loaded"] >= 9
    assert warm["out"] == cold["out"]
    assert warm["directory"].startswith(str(tmp_path / "cache"))


def test_caching_can_be_switched_off(tmp_path):
    env = {**os.environ, "ACTBENCH_NUMBA_CACHE": "off"}
    done = subprocess.run(
        [sys.executable, "-c", "from actbench_ulp import kernels; print(kernels.compile_stats())"],
        env=env, capture_output=True, text=True, timeout=300, check=True)
    assert "'directory': None" in done.stdout


def _dispatchers():
    """Every Numba dispatcher of actbench_ulp.kernels: module globals, the kernel tables, the
    ufuncs' loops and the closures of the drivers."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from actbench_ulp import kernels

    found = {}

    def walk(obj, where, depth):
        if depth > 4:
            return
        if isinstance(obj, CPUDispatcher):
            if id(obj) not in found:
                found[id(obj)] = (where, obj)
                for cell in obj.py_func.__closure__ or ():
                    walk(cell.cell_contents, f"{where}.<closure>", depth + 1)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{where}[{k!r}]", depth + 1)
        elif isinstance(obj, (tuple, list)):
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]", depth + 1)
        elif not isinstance(obj, type) and type(obj).__module__.startswith("actbench_ulp.kernels"):
            for k, v in vars(obj).items():
                walk(v, f"{where}.{k}", depth + 1)

    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"actbench_ulp.kernels.{info.name}")
        for name, value in vars(module).items():
            walk(value, f"{info.name}.{name}", 0)
    return list(found.values())


def test_every_kernel_function_states_its_fastmath():
    """Numba compiles a function whose fastmath is unset with its caller's flags, and caches
    it so: a fast variant's contracting loop that compiled the accurate row-wise kernel first
    changed log_softmax's float64 result by an ULP for every later caller.  So none is unset."""
    dispatchers = _dispatchers()
    assert len(dispatchers) > 600  # the ufuncs' scalars and loops, the SIMD loops, the drivers
    unset = sorted(where for where, d in dispatchers if "fastmath" not in d.targetoptions)
    assert not unset, unset


def test_the_accurate_kernel_is_the_same_whoever_compiles_it_first(tmp_path):
    """The case that showed it: the fast log_softmax's row function reaches the accurate kernel
    (a NaN row) before anything else compiled it; the accurate float64 row must keep its bits."""
    code = f"""
import numpy as np
from actbench_ulp import kernels
kernels.log_softmax_fast(np.array([[1.0, np.nan]], np.float32))
row = [float.fromhex(v) for v in {ROW!r}]
print(kernels.log_softmax(np.array([row]), temperature=2.0)[0, 0].hex())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "ACTBENCH_NUMBA_CACHE": "off"}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    # the accurate kernel's own value, 0.503 ULP from the exact one; the contracted code gave
    # the other neighbour (...f07), which is how the audit's maximum moved
    assert done.stdout.strip() == "-0x1.0b7accd1f2f08p+0"


ROW = ["0x1.14fbcda2dd3eap+3", "-0x1.3c1afccd0d55p+2", "-0x1.28fbbe2605b5cp+3", "0x1.e42af74354a5p+1",
       "0x1.2bd741147bb54p+3", "0x1.4d1eedeb84358p+2", "-0x1.939b8bbd342fcp+2", "0x1.33f7f6d01cd9p+2"]

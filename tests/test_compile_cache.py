"""The compiled kernels' disk cache (kernels/_cache.py): warm processes load instead of
compiling, and a change to any source file, a helper's included, is recompiled, never served
stale.  Each run is a fresh process, since a process keeps what it has compiled in memory."""

import json
import os
import subprocess
import sys

from actbench.kernels import _cache, _target

HELPER = """
from numba import njit


@njit
def bump(x):
    return x + 1.0
"""

KERNEL = """
from numba import njit

from actbench.kernels._cache import cached

from .helper import bump


def _loop(x, out):
    for i in range(x.size):
        out[i] = bump(x[i])


loop = cached(njit(_loop), "loop")
"""

RUN_TOY = """
import json, numpy as np
from toy import kernel
from actbench.kernels._cache import stats
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
from actbench import kernels
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
        [sys.executable, "-c", "from actbench import kernels; print(kernels.compile_stats())"],
        env=env, capture_output=True, text=True, timeout=300, check=True)
    assert "'directory': None" in done.stdout

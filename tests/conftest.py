import os

import pytest
from hypothesis import settings

from actbench_ulp.kernels._cache import cache_root

# The kernels' compiled code is keyed by every kernel source (kernels/_cache.py), so tests and
# the CLIs they start share the user's warm cache safely, even though each test's exact-value
# cache is private (below).
os.environ.setdefault("ACTBENCH_NUMBA_CACHE", str(cache_root() / "numba"))

# reproducible in CI: the same examples every run (a failure is then always reproducible), and
# no per-example deadline (the first call of a kernel may load it from Numba's cache)
settings.register_profile("actbench", derandomize=True, deadline=None, max_examples=200)
settings.load_profile("actbench")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # the CLI's default exact-value cache lives in the user's home; tests keep their own
    monkeypatch.setenv("ACTBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "actbench-cache"))

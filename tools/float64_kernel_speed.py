"""ns/element of the accurate float64 kernels of the exponential family and glu/swiglu at
2**20 elements (uniform in [-10, 10]), median of 15 calls, one thread, as JSON:

    python tools/float64_kernel_speed.py after.json
    PYTHONPATH=<a package tree of another revision> python tools/float64_kernel_speed.py before.json

(the before/after figures of the double-double rewrite came from a worktree of bb777b6 laid out
as an ``actbench`` package on PYTHONPATH, then from HEAD)."""
import json
import os
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
import numpy as np

from actbench_ulp.core.catalog import CATALOG

NAMES = ["elu", "celu", "selu", "sigmoid", "log_sigmoid", "tanh", "softsign", "softplus", "silu",
         "mish", "gelu", "gelu_tanh", "hardswish", "glu", "swiglu", "geglu"]
rng = np.random.default_rng(0)
x = rng.uniform(-10, 10, 1 << 20)
a = rng.uniform(-3, 3, 1 << 20)
out = {}
for n in NAMES:
    act = CATALOG[n]
    for d in act.directions:
        f = act.variant("accurate").kernel(d)
        args = (x,) if act.kind == "elementwise" else (a, x)
        kw = dict(act.params)
        f(*args, **kw)
        ts = []
        for _ in range(15):
            t = time.perf_counter()
            f(*args, **kw)
            ts.append(time.perf_counter() - t)
        out[f"{n}.{d}"] = np.median(ts) / x.size * 1e9
with open(sys.argv[1], "w") as fh:
    json.dump(out, fh)

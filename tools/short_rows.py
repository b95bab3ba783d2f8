"""Short float32 rows across rows or along them: ns/element of ``_rowwise_short`` and of
``_rowwise_fast`` at each row length, one thread, 2**20 elements, median of 11 calls.

Research script (not installed with actbench): where the two cross is ``SHORT_MAX``.

    python tools/short_rows.py 8 16 32 48 64 96 128
"""

import sys
import time

import numba
import numpy as np

from actbench_ulp.kernels import _rowwise_fast, _rowwise_short


def _median_seconds(kernel, args, reps=11):
    kernel(*args)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        kernel(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(lengths):
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("length  kernel            across  along  (ns/element)")
    for n in lengths:
        x = (rng.standard_normal(((1 << 20) // n, n)) * 3).astype(np.float32)
        g = rng.standard_normal(x.shape).astype(np.float32)
        out = np.empty_like(x)
        for name in ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp"):
            args = ((x, g) if name.endswith("_vjp") else (x,)) + (1.0, out)
            across = _median_seconds(_rowwise_short.KERNELS[name][0], args)
            along = _median_seconds(_rowwise_fast.KERNELS[name, "float32"][0], args)
            print(f"{n:6d}  {name:16s} {across / x.size * 1e9:7.2f} {along / x.size * 1e9:6.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [8, 16, 32, 48, 64])

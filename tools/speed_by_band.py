"""ns/element of our float32 kernels by input band: finds the bands where a kernel is many
times slower than elsewhere (a subnormal operand makes Intel's vector units take a microcode
assist, and one such lane slows the whole vector; only a result that is itself subnormal
should).  Research script (not installed with actbench); a time, so run it on a quiet machine
and read ratios within one run.

    python tools/speed_by_band.py gelu,gelu_tanh simd_f32 forward,derivative --span 1.5
    python tools/speed_by_band.py glu fast forward,d_a,d_b

Each band draws its inputs uniformly inside it (gated kernels: a and b from the same band);
a band more than 2x the median is marked SLOW.
"""

import argparse
import itertools
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from actbench_ulp.core.catalog import CATALOG


def per_element(call, n: int, reps: int = 5, inner: int = 20) -> float:
    call()
    best = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            call()
        best.append((time.perf_counter() - t) / inner / n * 1e9)
    return min(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("activations", help="comma-separated")
    parser.add_argument("variants", help="comma-separated")
    parser.add_argument("directions", help="comma-separated")
    parser.add_argument("--span", type=float, default=1.5, help="bands cover span × the core range")
    parser.add_argument("--bands", type=int, default=30)
    parser.add_argument("--size", type=int, default=1 << 16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name in args.activations.split(","):
        act = CATALOG[name]
        lo, hi = (args.span * v for v in act.core)
        edges = np.linspace(lo, hi, args.bands + 1)
        for variant in args.variants.split(","):
            try:
                kernels = act.variant(variant)
            except KeyError:
                continue
            for direction in args.directions.split(","):
                kernel = kernels.kernel(direction)
                times = []
                for left, right in itertools.pairwise(edges):
                    x = rng.uniform(left, right, args.size).astype(np.float32)
                    if act.kind == "gated":
                        y = rng.uniform(left, right, args.size).astype(np.float32)
                        times.append(per_element(lambda x=x, y=y, k=kernel: k(y, x), args.size))
                    else:
                        times.append(per_element(lambda x=x, k=kernel, p=act.params: k(x, **p), args.size))
                times = np.array(times)
                median = float(np.median(times))
                slow = [f"[{edges[i]:.3g}, {edges[i + 1]:.3g}] {times[i] / median:.1f}x"
                        for i in np.flatnonzero(times > 2 * median)]
                print(f"{name} {variant} {direction}: median {median:.2f} ns/element"
                      + (f"; SLOW: {', '.join(slow)}" if slow else ""))


if __name__ == "__main__":
    main()

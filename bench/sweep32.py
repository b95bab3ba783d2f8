"""Every float32 input of a float32 kernel: ``python -m bench.sweep32 sigmoid.simd_f32 ...``.

The audit measures against mpmath, on samples; 2**32 mpmath evaluations are out of reach.
This sweep runs a float32 kernel variant on all 2**32 bit patterns and measures it against
the float64 ``simd`` kernel of the same activation and direction, whose error (its budget,
at most 8 float64 ULP) is below 2**-26 of a float32 ULP: enough to give the float32 kernel's
worst error to ~1e-8 ULP.  ULP is taken at the reference value, clamped at the smallest
subnormal, as in ``bench.metrics``; NaN, infinities and the sign of a zero result (the
reference rounded to float32) must match exactly.  ~1-4 minutes per kernel on this project's
2-core machine (the kernels use Numba's threads on these 2**24-element chunks).
"""

import argparse
import math
import sys
import time

import numba
import numpy as np

from . import catalog

__all__ = ["sweep"]

CHUNK = 1 << 24


@numba.njit(error_model="numpy", cache=False)
def _tally(x, got, want, stats, worst):
    """stats: max ULP, > 0.5, > 1, > 2 ULP, NaN / inf / zero-sign mismatches; worst: its x."""
    for i in range(x.size):
        r = want[i]
        v = np.float64(got[i])
        if r != r or v != v:
            if not (r != r and v != v):
                stats[4] += 1
                worst[1] = x[i]
            continue
        if math.isinf(r) or math.isinf(v):
            if r != v:
                stats[5] += 1
                worst[1] = x[i]
            continue
        rounded = np.float64(np.float32(r))
        if rounded == 0.0 and v == 0.0:
            if math.copysign(1.0, rounded) != math.copysign(1.0, v):
                stats[6] += 1
                worst[1] = x[i]
            continue
        exponent = math.frexp(abs(r))[1] if r != 0.0 else -149
        err = abs(v - r) / math.ldexp(1.0, max(exponent - 1, -126) - 23)
        if err > stats[0]:
            stats[0] = err
            worst[0] = x[i]
        stats[1] += err > 0.5
        stats[2] += err > 1.0
        stats[3] += err > 2.0


def sweep(case: catalog.Case, stride: int = 1) -> dict:
    """The worst error of ``case``'s float32 kernel over every ``stride``-th bit pattern."""
    act = case.activation
    if act.kind != "elementwise" or not case.takes("float32"):
        raise ValueError(f"{case.label}: not an elementwise kernel that takes float32")
    if case.variant.name == "simd":
        raise ValueError(f"{case.label}: the reference is this kernel itself (sweep another variant)")
    if stride < 1:
        raise ValueError(f"--stride must be a positive whole number, got {stride}")
    reference = act.variant("simd").kernel(case.direction)
    kernel = case.kernel
    stats, worst = np.zeros(7), np.zeros(2, np.float32)
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        for lo in range(0, 1 << 32, CHUNK * stride):
            bits = np.arange(lo, min(lo + CHUNK * stride, 1 << 32), stride, dtype=np.uint64)
            x = bits.astype(np.uint32).view(np.float32)
            _tally(x, kernel(x, **act.params), reference(x.astype(np.float64), **act.params),
                   stats, worst)
    special = int(stats[4] + stats[5] + stats[6])
    return {"kernel": case.label, "inputs": len(range(0, 1 << 32, stride)), "max_ulp": float(stats[0]),
            "worst_x": float(worst[0]).hex(), "over_half": int(stats[1]), "over_1": int(stats[2]),
            "over_2": int(stats[3]), "nan_mismatches": int(stats[4]), "inf_mismatches": int(stats[5]),
            "zero_sign_mismatches": int(stats[6]),
            "special_mismatch_x": float(worst[1]).hex() if special else "-",
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sweep32", description=__doc__.split("\n\n")[1])
    p.add_argument("kernels", nargs="+", metavar="ACTIVATION.VARIANT[.DIRECTION]",
                   help="e.g. sigmoid.simd_f32 (both directions) or silu.simd_f32_fast.derivative")
    p.add_argument("--stride", type=int, default=1,
                   help="every N-th bit pattern (default: all); an odd N reaches every last bit")
    args = p.parse_args(argv)
    for spec in args.kernels:
        parts = spec.split(".")
        if len(parts) not in (2, 3) or parts[0] not in catalog.CATALOG:
            p.error(f"{spec!r}: expected ACTIVATION.VARIANT[.DIRECTION] of the catalog")
        act = catalog.CATALOG[parts[0]]
        try:
            variant = act.variant(parts[1])
        except KeyError as exc:
            p.error(str(exc.args[0]))
        for direction in parts[2:] or act.directions:
            if direction not in act.directions:
                p.error(f"{spec!r}: {act.name}'s directions are {', '.join(act.directions)}")
            try:
                result = sweep(catalog.Case(act, variant, direction), args.stride)
            except (ValueError, KeyError) as exc:
                p.error(str(exc))
            print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

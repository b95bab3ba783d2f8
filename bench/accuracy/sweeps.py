"""Every float32 input of a float32 kernel: ``python -m actbench.accuracy.sweeps sigmoid.simd_f32 ...``.

The audit measures against mpmath, on samples; 2**32 mpmath evaluations are out of reach.
This sweep runs a float32 kernel variant on all 2**32 bit patterns and measures it against
the float64 ``simd`` kernel of the same activation and direction, whose error (its budget,
at most 8 float64 ULP) is below 2**-26 of a float32 ULP: enough to give the float32 kernel's
worst error to ~1e-8 ULP.  The errors are ``bench.metrics``' (ULP at the reference value,
clamped at the smallest subnormal; special values against the reference rounded to float32,
which must match exactly).  A few minutes per kernel on this project's 2-core machine (the
kernels use Numba's threads on these 2**22-element chunks).
"""

import argparse
import sys
import time

import numpy as np

from actbench.core import catalog, metrics

__all__ = ["errors", "sweep"]

CHUNK = 1 << 22


def errors(got: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ulps, bad, kinds) of float32 ``got`` against the float64 ``ref``: ULP errors (NaN where
    a special value is wrong, or where an infinity or NaN is right), the indices of the
    special-value mismatches and their kinds (``metrics.MISMATCH_KINDS``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.astype(np.float32)
        ulps = metrics.ulp_error(got, ref, 0.0, np.float32)
    # only non-finite values and zeros can be special-value mismatches
    special = np.flatnonzero(~np.isfinite(got) | ~np.isfinite(want) | (want == 0))
    kinds = metrics.mismatch_kind(got[special], want[special])
    wrong = kinds != ""
    bad = special[wrong]
    ulps[bad] = np.nan
    return ulps, bad, kinds[wrong]


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
    worst_ulp, worst_x, special_x = 0.0, 0.0, None
    over = dict.fromkeys((0.5, 1.0, 2.0), 0)
    mismatches = dict.fromkeys(metrics.MISMATCH_KINDS, 0)
    start = time.perf_counter()
    for lo in range(0, 1 << 32, CHUNK * stride):
        bits = np.arange(lo, min(lo + CHUNK * stride, 1 << 32), stride, dtype=np.uint64)
        x = bits.astype(np.uint32).view(np.float32)
        with np.errstate(all="ignore"):
            got = kernel(x, **act.params)
            ref = reference(x.astype(np.float64), **act.params)
        ulps, bad, kinds = errors(got, ref)
        if bad.size:
            special_x = special_x if special_x is not None else float(x[bad[0]])
            for kind in kinds:
                mismatches[kind] += 1
        if not np.isnan(ulps).all():
            i = int(np.nanargmax(ulps))
            if ulps[i] > worst_ulp:
                worst_ulp, worst_x = float(ulps[i]), float(x[i])
        with np.errstate(invalid="ignore"):
            for bound in over:
                over[bound] += int(np.count_nonzero(ulps > bound))
    return {"kernel": case.label, "inputs": len(range(0, 1 << 32, stride)), "max_ulp": worst_ulp,
            "worst_x": worst_x.hex(), "over_half": over[0.5], "over_1": over[1.0],
            "over_2": over[2.0], "nan_mismatches": mismatches["nan"],
            "inf_mismatches": mismatches["infinity"],
            "zero_sign_mismatches": mismatches["zero_sign"],
            "special_mismatch_x": special_x.hex() if special_x is not None else "-",
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m actbench.accuracy.sweeps",
                                description=__doc__.split("\n\n")[1])
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

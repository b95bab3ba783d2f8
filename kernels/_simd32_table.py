"""tanh in float32 from a table of per-interval polynomials, looked up inside the vector registers.

``_simd32``'s tanh forms exp(-2|x|) and divides: a division and ~55 vector instructions per 16
elements.  Here |x| picks one of 32 intervals from its bits and tanh(|x|) = c0h + (c0l + c1·t +
t²·R(t)), t = |x| - c_j, R of degree 4 (``reference/tablefit.py``, which derives the table and
bounds the model at 0.06 ULP): no division, nine table lookups, six fused multiply-adds;
0.616 ULP at most over all 2**32 inputs (the exhaustive audit, results/exhaustive).  A
lookup is one AVX-512 instruction (vpermi2ps: 16 lanes indexing 32 floats held in two
registers), which LLVM's loop vectorizer never emits from scalar code, so the loop is written
as vector IR: 16 lanes an iteration, the remainder as one more vector through masked loads
and stores, so that every element takes the same path and gets the same bits wherever it
sits.  On a CPU without AVX-512F ``AVAILABLE`` is False and tanh keeps ``_simd32``'s kernel
(a lookup would be a gather or four permutes there).

Special values: ±inf give ±1 (|x| > ``ONE_FROM`` selects 1: past 32 the last interval's t
grows, and inf·0 would be NaN).  Below 2**-12 tanh(x) rounds to x: those lanes, ±0 among
them, compute on 2**-12 and select |x|, so no lane forms a subnormal t² (Intel microcodes
subnormal operands: one such lane slows the whole vector); the selection is unordered, so a
NaN |x| is kept too.  The sign is copied last.  ``AVAILABLE`` reads the compile target's
features: an empty ``NUMBA_CPU_FEATURES`` (the named CPU's own set, which llvmlite does not
list) counts as without AVX-512F.
"""

from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from . import _target
from ._cache import cached
from ._dd64 import llvm_call
from ._simd import _prefer_512_bit_vectors

__all__ = ["AVAILABLE", "LOOPS", "TABLE"]

TABLE = np.load(Path(__file__).with_name("tanh_table.npy"))
# reference/tablefit.py's layout: rows center, c0h, c0l, c1, r4 .. r0 of 32 intervals
_CENTER, _C0H, _C0L, _C1 = 0, 1, 2, 3
_R = tuple(range(4, TABLE.shape[0]))
_BASE_BITS = 0x3E000000  # reference/tablefit.py's BASE, 2**-3: the first interval's bits
_SHIFT = 21  # 2**21 bit patterns an interval: four a binade (two mantissa bits)
_TINY = np.float32(2.0**-12)
_ONE_FROM = np.float32(10.0)  # reference/tablefit.py's ONE_FROM
_LANES = 16
_BLOCK = 1 << 14  # elements a thread's block (a multiple of 16)

AVAILABLE = bool((_target.extensions(_target.target()[1]) or {}).get("avx512f"))

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_VF = ir.VectorType(_F32, _LANES)
_VI = ir.VectorType(_I32, _LANES)


def _splat(value, kind):
    return ir.Constant(kind, [value] * _LANES)


def _tanh16(builder, x):
    """tanh of 16 lanes, as the module docstring says."""
    bits = builder.bitcast(x, _VI)
    abits = builder.and_(bits, _splat(0x7FFFFFFF, _VI))
    ax = builder.bitcast(abits, _VF)
    j = builder.ashr(builder.sub(abits, _splat(_BASE_BITS, _VI)), _splat(_SHIFT, _VI))
    j = llvm_call(builder, "llvm.smax.v16i32", _VI, [j, _splat(0, _VI)])
    j = llvm_call(builder, "llvm.smin.v16i32", _VI, [j, _splat(TABLE.shape[1] - 1, _VI)])

    def lookup(row):
        lo = ir.Constant(_VF, [float(v) for v in TABLE[row, :_LANES]])
        hi = ir.Constant(_VF, [float(v) for v in TABLE[row, _LANES:]])
        return llvm_call(builder, "llvm.x86.avx512.vpermi2var.ps.512", _VF, [lo, j, hi])

    def fma(a, b, c):
        return llvm_call(builder, "llvm.fma.v16f32", _VF, [a, b, c])

    ac = llvm_call(builder, "llvm.maxnum.v16f32", _VF, [ax, _splat(float(_TINY), _VF)])
    t = builder.fsub(ac, lookup(_CENTER))
    r = lookup(_R[0])
    for row in _R[1:]:
        r = fma(r, t, lookup(row))
    s = fma(builder.fmul(t, t), r, lookup(_C0L))
    y = builder.fadd(lookup(_C0H), fma(t, lookup(_C1), s))
    y = builder.select(builder.fcmp_ordered(">", ax, _splat(float(_ONE_FROM), _VF)),
                       _splat(1.0, _VF), y)
    # unordered: a NaN |x| keeps itself
    y = builder.select(builder.fcmp_unordered("<", ax, _splat(float(_TINY), _VF)), ax, y)
    return llvm_call(builder, "llvm.copysign.v16f32", _VF, [y, x])


@intrinsic
def _tanh_span(typingctx, x, out, start, stop):
    """out[start:stop] = tanh(x[start:stop]): whole vectors, then the rest as one vector whose
    lanes past stop are neither loaded (they compute tanh(0)) nor stored.  x and out must be
    contiguous 1-D float32 arrays: the code addresses their memory directly."""
    row = types.Array(types.float32, 1, "C")
    if not (isinstance(x, types.Array) and isinstance(out, types.Array)
            and x.dtype == out.dtype == types.float32 and x.ndim == out.ndim == 1
            and x.layout == out.layout == "C" and isinstance(start, types.Integer)
            and isinstance(stop, types.Integer)):
        raise TypingError(f"the table-driven tanh takes {row} arrays, got {x} and {out}")

    def codegen(context, builder, signature, args):
        xa = context.make_array(signature.args[0])(context, builder, args[0])
        oa = context.make_array(signature.args[1])(context, builder, args[1])
        start, stop = args[2], args[3]
        lanes = context.get_constant(types.intp, _LANES)
        whole = builder.add(start, builder.mul(builder.sdiv(builder.sub(stop, start), lanes), lanes))

        def pointers(i):
            return (builder.bitcast(builder.gep(xa.data, [i]), _VF.as_pointer()),
                    builder.bitcast(builder.gep(oa.data, [i]), _VF.as_pointer()))

        with cgutils.for_range_slice(builder, start, whole, lanes) as (i, _):
            src, dst = pointers(i)
            builder.store(_tanh16(builder, builder.load(src, align=4)), dst, align=4)
        with builder.if_then(builder.icmp_signed("<", whole, stop)):
            src, dst = pointers(whole)
            left = builder.trunc(builder.sub(stop, whole), _I32)
            mask = builder.icmp_signed("<", ir.Constant(_VI, list(range(_LANES))),
                                       builder.shuffle_vector(
                                           builder.insert_element(ir.Constant(_VI, ir.Undefined),
                                                                  left, ir.Constant(_I32, 0)),
                                           ir.Constant(_VI, ir.Undefined),
                                           ir.Constant(_VI, [0] * _LANES)))
            four = ir.Constant(_I32, 4)
            v = llvm_call(builder, "llvm.masked.load.v16f32.p0", _VF,
                      [src, four, mask, _splat(0.0, _VF)])
            llvm_call(builder, "llvm.masked.store.v16f32.p0", ir.VoidType(),
                  [_tanh16(builder, v), dst, four, mask])
        return context.get_dummy_value()
    return types.none(x, out, start, stop), codegen


def _loops():
    @njit(error_model="numpy", fastmath={"contract"})
    def serial(x, out):
        _prefer_512_bit_vectors()
        _tanh_span(x, out, 0, x.size)

    # blocks of _BLOCK: one contiguous range each, so the threaded result has the serial bits
    @njit(error_model="numpy", parallel=True, fastmath={"contract"})
    def parallel(x, out):
        for b in prange((x.size + _BLOCK - 1) // _BLOCK):
            _prefer_512_bit_vectors()
            _tanh_span(x, out, b * _BLOCK, min(x.size, (b + 1) * _BLOCK))

    return {threads: cached(loop, f"tanh_table.{loop.py_func.__name__}")
            for threads, loop in ((False, serial), (True, parallel))}


# merged into _simd32.KERNELS, whose run() drives them (this module is not dispatched itself)
LOOPS = {"tanh": _loops()} if AVAILABLE else {}

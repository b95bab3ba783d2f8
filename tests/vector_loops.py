"""The float32 hot loops, compiled fresh for the target this process compiles for, and the
vector width of their machine code.

tests/test_vector_width.py runs ``python -m tests.vector_loops`` under other targets'
``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` (Numba reads them once, when it is imported), which
prints one JSON object: the target, the widest vector LLVM gives it (``_target.vector_bits``),
and for each loop whether it is marked for 512-bit vectors, the widest register its packed
floating-point arithmetic uses (bits) and the most float32 lanes of a vector in its IR.

The loops are the serial ones: a threaded loop runs the same scalar, with the same mark, in a
``prange`` body that takes seconds more to compile.  Each is a fresh copy (Numba shows no code
of a function loaded from the disk cache), compiled for its signature, the one the kernels
call it with, without running it.
"""

import functools
import json
import re
import sys
import time

import numba
from numba import types

from actbench_ulp.kernels import (
    _gated_fast,
    _rowwise_fast,
    _rowwise_short,
    _simd,
    _simd32,
    _simd32_expm1,
    _simd32_gelu_tanh,
    _target,
)

ROW = types.Array(types.float32, 1, "C")
MATRIX = types.Array(types.float32, 2, "C")
BUFFER = types.Array(types.float64, 2, "C")  # the row kernels' exp buffer is float64 for every dtype
VECTOR = types.Array(types.float64, 1, "C")  # a row of BUFFER: the short rows' per-row values

# packed (…ps / …pd) arithmetic, compares and blends. Moves are left out (a struct copy may use
# a wide register in code that computes nothing in vectors), and so is logic: andps / xorps on
# xmm registers are also how scalar code takes |x| and -x
_PACKED = re.compile(r"^\s+v?(?:add|sub|mul|div|min|max|sqrt|fn?m(?:add|sub)\d*|cmp\w*|blendm?v?)p[sd]\s"
                     r"[^\n]*%([xyz])mm", re.M)
_BITS = {"x": 128, "y": 256, "z": 512}
_MARK = '"prefer-vector-width"="512"'


def loops() -> list:
    """(name, dispatcher, signature) of every float32 hot loop: ``_simd``'s float32 flavour,
    ``_simd32``, ``_simd32_expm1``, ``_simd32_gelu_tanh``, ``_gated_fast``'s float32 loops and
    ``_rowwise_fast``'s float32 row bodies (the drivers only call them row by row), and
    ``_rowwise_short``'s passes across rows and its blocks."""
    f32 = types.float32
    out = [(f"simd.{n}", k[("float32", False)], (ROW, ROW, types.float64, types.float64))
           for n, k in _simd.KERNELS.items()]
    out += [(f"simd32.{n}", k[False], (ROW, ROW)) for n, k in _simd32.KERNELS.items()]
    out += [(f"simd32_expm1.{n}", k[False], (ROW, ROW, f32, f32, f32, f32))
            for n, k in _simd32_expm1.KERNELS.items()]
    out += [(f"simd32_gelu_tanh.{n}", k[False], (ROW, ROW)) for n, k in _simd32_gelu_tanh.KERNELS.items()]
    out += [(f"gated_fast.{n}", k[("float32", False)], (ROW, ROW, ROW))
            for n, k in _gated_fast.KERNELS.items()]
    for (name, dtype), (serial, _) in _rowwise_fast.KERNELS.items():
        if dtype == "float32":
            cells = dict(zip(serial.py_func.__code__.co_freevars, serial.py_func.__closure__, strict=True))
            grad = (MATRIX,) if name.endswith("_vjp") else ()
            out.append((f"rowwise_fast.{name}", cells["body"].cell_contents,
                        (MATRIX, *grad, types.float64, MATRIX, BUFFER, types.int64)))
    i64, f64, short = types.int64, types.float64, _rowwise_short
    out += [("rowwise_short.exps", short._exps,
             (BUFFER, i64, i64, VECTOR, f64, types.boolean, types.boolean, BUFFER, VECTOR, VECTOR,
              VECTOR)),
            ("rowwise_short.row_max", short._row_max, (BUFFER, i64, i64, VECTOR)),
            ("rowwise_short.column_sum", short._column_sum, (BUFFER, i64, i64, VECTOR))]
    for name in ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp"):
        grad, buffers = ((MATRIX,), (BUFFER,) * 4) if name.endswith("_vjp") else ((), (BUFFER,) * 3)
        out.append((f"rowwise_short.{name}", getattr(short, f"_{name}_block"),
                    (MATRIX, *grad, f64, MATRIX, i64, i64, *buffers)))
    return out


@functools.cache
def fresh(loop):
    """An uncached copy of a loop's dispatcher with its own options, one a process: the tests
    that read a loop's code (here, tests/test_simd.py and its float32 siblings) share its
    compiles."""
    return numba.njit(**{k: v for k, v in loop.targetoptions.items() if k != "nopython"})(loop.py_func)


def _body(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i)]


def measure(loop, sig) -> dict:
    """The loop's own function (not its CPython wrapper, not the callees linked in): marked or
    not, the widest register of its packed arithmetic in bits (0: none), the most float32
    lanes of a vector in its optimized IR (0: none)."""
    loop = fresh(loop)
    loop.compile(sig)
    symbol = loop.overloads[sig].fndesc.mangled_name
    asm = _body(loop.inspect_asm(sig), f"\n{symbol}:", "\n.Lfunc_end")
    ir = loop.inspect_llvm(sig)
    define = re.search(rf'^define [^\n]*@"?{re.escape(symbol)}"?\([^\n]*', ir, re.M).group(0)
    group = re.search(r"#(\d+) {$", define)  # none for a function without attributes
    attributes = re.search(rf"^attributes #{group.group(1)} = {{[^\n]*}}", ir, re.M).group(0) if group else ""
    function = _body(ir, define, "\n}\n")
    return {"marked": _MARK in attributes,
            "bits": max((_BITS[r] for r in _PACKED.findall(asm)), default=0),
            "lanes": max((int(n) for n in re.findall(r"<(\d+) x float>", function)), default=0)}


def main() -> None:
    start = time.perf_counter()
    measured = {name: measure(loop, sig) for name, loop, sig in loops()}
    name, features = _target.target()
    json.dump({"target": [name, features], "vector_bits": _target.vector_bits(name, features),
               "loops": measured, "seconds": round(time.perf_counter() - start, 1)}, sys.stdout)


if __name__ == "__main__":
    main()

"""Instructions per element by single-stepping one call under gdb (``instructions_per_element``'s
``ours-here``, ``torch-here`` and its table's row-wise and torch counts).

One call, built as the speed benchmarks time it, runs between two marker system calls; gdb
steps the thread from one to the other, counting instructions and naming the function of
every 16th.  At three sizes, the slope is the instructions per element, whatever code runs.
"""

import collections
import json
import os
import re
import subprocess
import sys
import tempfile

# one call, built as the speed benchmarks time it (torch: on its own tensors, autograd for a
# derivative; ours: the variant's kernel into a given output), between two close(-4242) system
# calls: the stepping counter's markers.  argv: implementation, activation, variant (ours),
# direction, size.  (jax is not counted so: XLA computes on threads of its own, which a
# stepped thread does not see.)
_MARKED_CALL = """
import os, sys
import numpy as np
from actbench_ulp.core import catalog, peers
from actbench_ulp.speed.worker import inputs

name, activation, variant, direction, n = sys.argv[1:5] + [int(sys.argv[5])]
case = next(catalog.cases([activation], [variant] if name == "ours" else None, [direction]))
args, kwargs = inputs(case, "float32", n, np.random.default_rng(n))
if name == "torch":
    impl = peers.resolve("torch")
    impl.torch.set_num_threads(1)
    fn, natives = impl.kernel(case).prepare(*args, **kwargs)
else:
    fn, natives = case.kernel, args
    kwargs["out"] = case.kernel(*args, **kwargs)
def call():
    fn(*natives, **kwargs)
call()
call()


def marker():
    # close() of a descriptor no process has: found by its argument, not by being the first
    try:
        os.close(-4242)
    except OSError:
        pass


marker()
call()
marker()
"""
# run by gdb: single-steps the thread from the first marker to the second, counting
# instructions (a rep-prefixed string instruction as one) and those that name a 256- or
# 512-bit register, and names the function of every 16th (a JIT's code has no symbol).  Calls into
# the vDSO's clocks run unstepped ("finish"): stepped, their retry loops never end, and they
# cost the same at every size
_STEP = r"""
import collections, json, os, gdb
MARK = (-4242) % 2**32  # close() takes an int: the low half of rdi
gdb.execute("set pagination off")
gdb.execute("catch syscall close")


def at_mark():
    return int(gdb.parse_and_eval("$rdi")) % 2**32 == MARK


gdb.execute("run", to_string=True)
while not at_mark():  # every close() stops twice, at its entry and its return
    gdb.execute("continue", to_string=True)
gdb.execute("continue", to_string=True)  # the marker's return
gdb.execute("delete")
inf = gdb.selected_inferior()
vdso = [tuple(int(v, 16) for v in line.split()[0].split("-"))
        for line in open(f"/proc/{inf.pid}/maps") if "[vdso]" in line][0]
STRING_OPS = {0xA4, 0xA5, 0xA6, 0xA7, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF}


def rep_length(code):
    # the length of a rep-prefixed string instruction (memcpy's rep movsb), else 0: stepi
    # takes one of its iterations at a time, where it is one instruction
    if code[0] not in (0xF2, 0xF3):
        return 0
    i = 2 if 0x40 <= code[1] <= 0x4F else 1  # a REX prefix
    return i + 1 if code[i] in STRING_OPS else 0


count, functions, vector = 0, collections.Counter(), 0
arch = gdb.selected_frame().architecture()
pc = int(gdb.parse_and_eval("$pc"))
while True:
    asm = arch.disassemble(pc)[0]["asm"]
    vector += "%ymm" in asm or "%zmm" in asm  # a 256- or 512-bit vector instruction
    if length := rep_length(bytes(inf.read_memory(pc, 3))):
        thread = gdb.selected_thread().num  # not another thread's pass through the same copy
        gdb.execute(f"tbreak *{pc + length} thread {thread}", to_string=True)
        gdb.execute("continue", to_string=True)
    else:
        gdb.execute("stepi", to_string=True)
    count += 1
    pc = int(gdb.parse_and_eval("$pc"))
    if vdso[0] <= pc < vdso[1]:
        gdb.execute("finish", to_string=True)
        continue
    if count % 16 == 0:
        where = gdb.execute("info symbol $pc", to_string=True)
        functions[where.split(" in section")[0].rsplit(" + ", 1)[0].strip()
                  if " in section" in where else "code without a symbol (a JIT's)"] += 16
    if (bytes(inf.read_memory(pc, 2)) == b"\x0f\x05" and int(gdb.parse_and_eval("$rax")) == 3
            and at_mark()):
        break
json.dump({"count": count, "functions": functions, "vector": vector},
          open(os.environ["STEP_OUT"], "w"))
gdb.execute("kill")
"""


def _short(function: str) -> str:
    """A readable name for a C++ symbol: ATen's vectorized loops are lambdas of a kernel,
    named by the kernel and the instruction set it was built for; a Numba function by its
    qualified name; any other without its return type, template arguments and parameters."""
    if numba_name := re.match(r"actbench_ulp::kernels::(\w+)::([\w:]+?)\[abi:", function):
        return f"{numba_name.group(1)}.{numba_name.group(2).replace('::', '.')}"
    kernel = re.search(r"(\w+_kernel(?:_impl)?)\(at::TensorIterator", function)
    isa = re.search(r"at::(?:native|vec)::(AVX512|AVX2|DEFAULT)::", function)
    if kernel:
        return f"ATen {isa.group(1) + ' ' if isa else ''}{kernel.group(1)}"
    if "::" not in function:  # a C symbol, or the name given to code without one
        return function
    name = function.replace("(anonymous namespace)::", "")
    while re.search(r"<[^<>]*>", name):
        name = re.sub(r"<[^<>]*>", "", name)
    return re.sub(r"\(.*", "", name).split()[-1]


# a stepped call that has not reached its second marker in this long never will (a few
# hundred thousand steps take minutes)
_STEP_TIMEOUT_S = 3600


def _proportional(slopes: list[float]) -> bool:
    # a call's fixed part varies by a thousand instructions or so from run to run
    return min(slopes) >= 0.1 and max(slopes) - min(slopes) <= max(0.1 * min(slopes), 0.1)


def _step_at(name: str, case: tuple[str, str, str], sizes: tuple[int, ...],
             tmp: str) -> tuple[list[dict], list[float]]:
    """Each size's stepped call (from ``tmp``'s call.py and step.py), and the slopes between
    consecutive sizes."""
    activation, variant, direction = case
    runs = []
    for n in sizes:
        out = os.path.join(tmp, f"{activation}.{direction}.{n}.json")
        # one thread, so that no pool thread spins while this one is stepped
        env = {**os.environ, "STEP_OUT": out, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        done = subprocess.run(["gdb", "-batch", "-x", os.path.join(tmp, "step.py"), "--args",
                               sys.executable, os.path.join(tmp, "call.py"), name, activation,
                               variant, direction, str(n)], env=env, capture_output=True, text=True,
                              timeout=_STEP_TIMEOUT_S)
        if done.returncode or not os.path.exists(out):
            raise SystemExit(f"{name} {activation} {direction}: stepping failed\n"
                             f"{done.stderr[-2000:]}")
        with open(out) as f:
            runs.append(json.load(f))
    counts = [r["count"] for r in runs]
    return runs, [(counts[k + 1] - counts[k]) / (sizes[k + 1] - sizes[k])
                  for k in range(len(sizes) - 1)]


def stepped(name: str, cases: list[tuple[str, str, str]],
            sizes: tuple[int, ...] = (4096, 16384, 65536)) -> list[dict]:
    """Kernels as this CPU runs them (torch's AVX-512 code where it has it, unlike callgrind):
    the instructions one call executes, counted by single-stepping it under gdb, at several
    sizes; the slope is the instructions per element, whatever the code (a library's, a JIT's).
    Where the count does not grow in proportion, once more at four times the sizes.  The
    functions whose steps grow with the size are the ones doing the elements.  ``name``:
    torch or ours; ``cases``: (activation, variant, direction), the variant ours only."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "call.py"), "w") as f:
            f.write(_MARKED_CALL)
        with open(os.path.join(tmp, "step.py"), "w") as f:
            f.write(_STEP)
        for case in cases:
            activation, _, direction = case
            label = f"{name} {activation} {direction}"
            counted = sizes
            runs, slopes = _step_at(name, case, counted, tmp)
            if not _proportional(slopes):
                counted = tuple(4 * n for n in sizes)
                runs, slopes = _step_at(name, case, counted, tmp)
            if not _proportional(slopes):
                # not proportional: the work happened on another thread, or not per element
                raise SystemExit(f"{label}: instructions do not grow in proportion to the size "
                                 f"({', '.join(f'{s:.3f}' for s in slopes)} per element)")
            counts = [r["count"] for r in runs]
            growth = collections.Counter(runs[-1]["functions"])
            growth.subtract(runs[0]["functions"])
            grown = counts[-1] - counts[0]
            # the two functions with most of the growth (a few percent is sampling's noise)
            top = [(_short(f), c / grown) for f, c in growth.most_common(2) if c >= 0.05 * grown]
            code = "; ".join(f"{f} ({share:.0%})" for f, share in top)
            vector = (runs[-1]["vector"] - runs[0]["vector"]) / (counted[-1] - counted[0])
            print(f"{label} (this CPU, stepped): {slopes[-1]:.2f} instructions per element "
                  f"({vector:.2f} in 256- or 512-bit vectors); {code}")
            rows.append({"activation": activation, "direction": direction,
                         "per_element": slopes[-1], "vector_per_element": vector, "code": code})
    return rows

"""Instructions per element: ours from the generated code, a peer's by counting its execution.

Research script (not installed with actbench).  It explains a speed gap by work per element,
which, unlike a time, does not depend on the machine's load:

- ours: the largest vector loop in the assembly of a fresh (uncached) compile of a kernel's
  serial float32 loop, divided by its lanes.  Compile for another CPU with Numba's settings,
  e.g. ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2,+fma,+f16c,+popcnt,+bmi2``;
- torch on this CPU (``torch-here``): one call, built as the speed benchmarks time it (autograd
  for a derivative), single-stepped under gdb from one marker system call to the next, at
  three sizes; the slope is its instructions per element, whatever code it dispatches (MKL's,
  Sleef's, a oneDNN JIT's), and the functions whose steps grow with the size name that code.
  Needs gdb and ptrace; a minute a forward, several for a derivative, whose autograd
  allocations may keep it from growing in proportion (then it says so).  jax computes on
  XLA's own threads, which a stepped thread does not see, so it is not counted;
- torch on AVX2 (``torch``): ``valgrind --tool=callgrind`` counts every instruction of a
  process; the difference between 1 and 1 + REPS calls on N elements, over REPS·N, is torch's
  per element (valgrind hides AVX-512, so torch runs its AVX2 code: compare with our AVX2
  compile).

    python tools/instructions_per_element.py ours _simd32 gelu tanh
    python tools/instructions_per_element.py torch-here gelu tanh:derivative
    python tools/instructions_per_element.py torch gelu tanh
    python tools/instructions_per_element.py table --out results/speed-float32

``table`` counts the float32 kernels that trail the peers on the speed page (our 512-bit and
256-bit (AVX2) compiles, torch's forwards on this CPU and on AVX2) into ``instructions.csv``
in ``--out``, with the run's metadata (``instructions.json``, as every result file's), from
which ``actbench report --pages`` adds the "why" table to that page.
"""

import argparse
import collections
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile

_TORCH_CALL = """
import sys, numpy as np, torch
torch.set_num_threads(1)
f = {"gelu": torch.nn.functional.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
     "silu": torch.nn.functional.silu, "elu": torch.nn.functional.elu,
     "softplus": torch.nn.functional.softplus, "mish": torch.nn.functional.mish,
     "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh")}[sys.argv[1]]
x = torch.from_numpy(np.random.default_rng(0).uniform(-10, 10, int(sys.argv[2])).astype(np.float32))
for _ in range(int(sys.argv[3])):
    f(x)
"""


_WIDTH = {"zmm": 3, "ymm": 2, "xmm": 1}


def vector_loop(asm: str) -> list[str]:
    """The instructions of the loop (a block ending in a backward jump, holding no other loop)
    in the widest vector registers, the largest of those: the vector body, not the scalar
    remainder (whose scalar arithmetic also names xmm registers), nor a loop around it."""
    lines = asm.splitlines()
    labels = {m.group(1): i for i, line in enumerate(lines) if (m := re.match(r"^(\.LBB\S+):", line))}
    spans = []
    for i, line in enumerate(lines):
        m = re.match(r"\s+j\w+\s+(\.LBB\S+)", line)
        if m and labels.get(m.group(1), i) < i:
            spans.append((labels[m.group(1)], i))
    best: list[str] = []
    rank = (0, 0)
    for start, end in spans:
        if any(start <= s and e <= end and (s, e) != (start, end) for s, e in spans):
            continue
        body = [s.strip() for s in lines[start:end + 1]
                if s.startswith("\t") and not s.strip().startswith(".")]
        width = max((w for r, w in _WIDTH.items() for s in body if r in s), default=0)
        if (width, len(body)) > rank:
            best, rank = body, (width, len(body))
    return best


def ours(module: str, names: list[str]) -> list[dict]:
    import numba
    import numpy as np

    mod = importlib.import_module(f"actbench_ulp.kernels.{module}")
    rows = []
    for name in names:
        loop = mod.KERNELS[name][False]
        fresh = numba.njit(error_model="numpy", fastmath={"contract"})(loop.py_func)
        x = np.linspace(-5, 5, 64, dtype=np.float32)
        fresh(x, np.empty_like(x))
        body = vector_loop(fresh.inspect_asm(fresh.signatures[0]))
        lanes = 16 if any("zmm" in s for s in body) else 8 if any("ymm" in s for s in body) else 4
        ops = collections.Counter(s.split()[0] for s in body)
        fma = sum(v for k, v in ops.items() if "fma" in k or "fnm" in k or "fms" in k)
        print(f"{module}.{name}: {len(body)} instructions a loop of {lanes} lanes = "
              f"{len(body) / lanes:.2f} per element (divisions {ops['vdivps']}, fma {fma})")
        rows.append({"kernel": name, "lanes": lanes, "instructions": len(body),
                     "per_element": len(body) / lanes, "divisions": ops["vdivps"], "fma": fma})
    return rows


def torch_counts(names: list[str], n: int = 1 << 20, reps: int = 5) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "call.py")
        with open(script, "w") as f:
            f.write(_TORCH_CALL)
        for name in names:
            totals = []
            for calls in (1, 1 + reps):
                out = os.path.join(tmp, f"cg.{calls}")
                subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                sys.executable, script, name, str(n), str(calls)],
                               check=True, capture_output=True)
                totals.append(int(re.search(r"^totals: (\d+)", open(out).read(), re.M).group(1)))
            per = (totals[1] - totals[0]) / (reps * n)
            print(f"torch.{name} (AVX2 under valgrind): {per:.2f} instructions per element")
            rows.append({"kernel": name, "per_element": per})
    return rows



# one torch call, built as the speed benchmarks time it (on torch's own tensors, autograd for
# a derivative), between two close(-4242) system calls: the stepping counter's markers.  argv:
# activation, direction, size.  (jax is not counted so: XLA computes on threads of its own,
# which a stepped thread does not see.)
_MARKED_CALL = """
import os, sys
import numpy as np
from actbench_ulp.core import catalog, peers
from actbench_ulp.speed.worker import inputs

activation, direction, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
case = next(catalog.cases([activation], None, [direction]))
impl = peers.resolve("torch")
impl.torch.set_num_threads(1)
args, kwargs = inputs(case, "float32", n, np.random.default_rng(n))
fn, natives = impl.kernel(case).prepare(*args, **kwargs)
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
# instructions, and names the function of every 16th (a JIT's code has no symbol).  Calls into
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
count, functions = 0, collections.Counter()
while True:
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
json.dump({"count": count, "functions": functions}, open(os.environ["STEP_OUT"], "w"))
gdb.execute("kill")
"""


def _short(function: str) -> str:
    """A readable name for a C++ symbol: ATen's vectorized loops are lambdas of a kernel,
    named by the kernel and the instruction set it was built for."""
    kernel = re.search(r"(\w+_kernel)\(at::TensorIteratorBase", function)
    isa = re.search(r"at::native::(AVX512|AVX2|DEFAULT)::", function)
    return f"ATen {isa.group(1) + ' ' if isa else ''}{kernel.group(1)}" if kernel else function


def torch_stepped(cases: list[tuple[str, str]],
                  sizes: tuple[int, ...] = (4096, 16384, 65536)) -> list[dict]:
    """torch's kernels as this CPU runs them (AVX-512 where it has it,
    unlike callgrind): the instructions one call executes, counted by single-stepping it under
    gdb, at several sizes; the slope is the instructions per element, whatever the code (a
    library's, a JIT's).  The functions whose steps grow with the size are the ones doing the
    elements.  ``cases``: (activation, direction) pairs."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script, stepper = os.path.join(tmp, "call.py"), os.path.join(tmp, "step.py")
        with open(script, "w") as f:
            f.write(_MARKED_CALL)
        with open(stepper, "w") as f:
            f.write(_STEP)
        for activation, direction in cases:
            runs = []
            for n in sizes:
                out = os.path.join(tmp, f"{activation}.{direction}.{n}.json")
                # one thread, so that no pool thread spins while this one is stepped
                env = {**os.environ, "STEP_OUT": out, "OMP_NUM_THREADS": "1"}
                done = subprocess.run(["gdb", "-batch", "-x", stepper, "--args", sys.executable,
                                       script, activation, direction, str(n)], env=env,
                                      capture_output=True, text=True)
                if done.returncode or not os.path.exists(out):
                    raise SystemExit(f"torch {activation} {direction}: stepping failed\n"
                                     f"{done.stderr[-2000:]}")
                with open(out) as f:
                    runs.append(json.load(f))
            counts = [r["count"] for r in runs]
            slopes = [(counts[k + 1] - counts[k]) / (sizes[k + 1] - sizes[k])
                      for k in range(len(sizes) - 1)]
            label = f"torch {activation} {direction}"
            # a call's fixed part varies by a thousand instructions or so from run to run (the
            # slope over the larger span is the one reported, to ~0.03 an element)
            if min(slopes) < 0.1 or max(slopes) > 1.1 * min(slopes):
                # not proportional: the work happened on another thread, or not per element
                raise SystemExit(f"{label}: instructions do not grow in proportion to the size "
                                 f"({', '.join(f'{s:.3f}' for s in slopes)} per element)")
            growth = collections.Counter(runs[-1]["functions"])
            growth.subtract(runs[0]["functions"])
            grown = counts[-1] - counts[0]
            # the two functions with most of the growth (a few percent is sampling's noise)
            top = [(_short(f), c / grown) for f, c in growth.most_common(2) if c >= 0.05 * grown]
            code = "; ".join(f"{f} ({share:.0%})" for f, share in top)
            print(f"{label} (this CPU, stepped): {slopes[-1]:.2f} instructions per element; {code}")
            rows.append({"activation": activation, "direction": direction,
                         "per_element": slopes[-1], "code": code})
    return rows


# the speed page's float32 misses among the elementwise kernels: (module, our kernel, the
# activation and direction, torch's name for the forward)
_TABLE = [("_simd32", "sigmoid", "sigmoid", "forward", "sigmoid"),
          ("_simd32", "d_sigmoid", "sigmoid", "derivative", None),
          ("_simd32", "tanh", "tanh", "forward", "tanh"),
          ("_simd32", "d_tanh", "tanh", "derivative", None),
          ("_simd32", "silu", "silu", "forward", "silu"),
          ("_simd32", "d_silu", "silu", "derivative", None),
          ("_simd32", "gelu", "gelu", "forward", "gelu"),
          ("_simd32", "d_gelu", "gelu", "derivative", None),
          ("_simd32_gelu_tanh", "gelu_tanh", "gelu_tanh", "forward", "gelu_tanh"),
          ("_simd32_gelu_tanh", "d_gelu_tanh", "gelu_tanh", "derivative", None)]
_AVX2 = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma,+f16c,+popcnt,+bmi2"}


def _ours_in_process(module: str, names: list[str], env: dict) -> list[dict]:
    """``ours`` in a fresh process: Numba reads its CPU settings once, at import."""
    import json

    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
            "import instructions_per_element as t; "
            f"print('JSON' + json.dumps(t.ours({module!r}, {names!r})))")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.split("JSON", 1)[1])


def table(out: str) -> None:
    """``_TABLE`` counted into ``out``/instructions.csv, the run's metadata beside it."""
    import json

    import pandas as pd

    from actbench_ulp.core.results import run_metadata, write_atomic

    rows = {(m, k): {"activation": a, "direction": d} for m, k, a, d, _ in _TABLE}
    for label, env in (("ours_512", {}), ("ours_avx2", _AVX2)):
        for module in dict.fromkeys(m for m, *_ in _TABLE):
            names = [k for m, k, *_ in _TABLE if m == module]
            for r in _ours_in_process(module, names, env):
                rows[(module, r["kernel"])].update({f"{label}_per_element": r["per_element"],
                                                    f"{label}_lanes": r["lanes"]})
    # the forwards: autograd's derivatives cost minutes each under gdb, and its allocations
    # keep their counts from growing in proportion to the size
    by_case = {(a, d): (m, k) for m, k, a, d, t in _TABLE if t}
    for r in torch_stepped(list(by_case)):
        rows[by_case[r["activation"], r["direction"]]].update(
            {"torch_here_per_element": r["per_element"], "torch_here_code": r["code"]})
    torch_names = {t: (m, k) for m, k, _, _, t in _TABLE if t}
    for r in torch_counts(list(torch_names)):
        rows[torch_names[r["kernel"]]]["torch_avx2_per_element"] = r["per_element"]
    write_atomic(os.path.join(out, "instructions.csv"), pd.DataFrame(rows.values()).to_csv(index=False))
    # the command as a reader runs it (a script, not an installed command)
    meta = run_metadata(peer_names=["torch"],
                        argv=["python", "tools/instructions_per_element.py", *sys.argv[1:]])
    write_atomic(os.path.join(out, "instructions.json"), json.dumps(meta, indent=2) + "\n")
    print(f"wrote {os.path.join(out, 'instructions.csv')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("who", choices=["ours", "torch", "torch-here", "table"])
    parser.add_argument("names", nargs="*", help="ours: MODULE NAME...; torch: NAME... (forwards); "
                        "torch-here: ACTIVATION[:DIRECTION]... (forward unless given)")
    parser.add_argument("--out", default="results/speed-float32",
                        help="table: the directory of instructions.csv and instructions.json")
    args = parser.parse_args()
    if args.who == "ours":
        ours(args.names[0], args.names[1:])
    elif args.who == "torch":
        torch_counts(args.names)
    elif args.who == "torch-here":
        torch_stepped([tuple(f"{n}:forward".split(":")[:2]) for n in args.names])
    else:
        table(args.out)


if __name__ == "__main__":
    main()

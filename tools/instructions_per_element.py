"""Instructions per element: ours and the peers', from generated code or by counting execution.

Research script (not installed with actbench).  It explains a speed gap by work per element,
which, unlike a time, does not depend on the machine's load:

- ours (``ours``): the largest vector loop in the assembly Numba generates afresh (no cache)
  for the call the speed benchmarks time, over the elements one pass covers.  Compile for
  another CPU with Numba's settings, e.g. ``NUMBA_CPU_NAME=haswell
  NUMBA_CPU_FEATURES=+avx2,+fma,+f16c,+popcnt,+bmi2``;
- by stepping (``ours-here``, ``torch-here``): one call, built as the speed benchmarks time it
  (torch: autograd for a derivative), single-stepped under gdb from one marker system call to
  the next, at three sizes; the slope is its instructions per element, whatever code runs
  (MKL's, Sleef's, a oneDNN JIT's, our row-wise kernels' library calls), and the functions
  whose steps grow with the size name that code.  Needs gdb and ptrace; minutes a case.  An
  autograd derivative's allocations may keep it from growing in proportion (then it says so);
- jax (``jax``): the code XLA generates for the call (the object files ``--xla_dump_to``
  writes): per kernel (fusion), its innermost loops in its widest vector registers, summed.
  XLA computes on threads of its own, which a stepped thread does not see; where it hands part
  of the call to a library (custom fusions: the row-wise reductions) that part is not in them,
  and the call is not counted;
- torch on AVX2 (``torch``): ``valgrind --tool=callgrind`` counts every instruction of a
  process; the difference between 1 and 1 + REPS calls on N elements, over REPS·N, is torch's
  per element (valgrind hides AVX-512, so torch runs its AVX2 code: compare with our AVX2
  compile).  Its counts have moved by up to 3× between runs; ``table`` leaves them out.

    python tools/instructions_per_element.py ours gelu tanh:derivative glu:d_b@fast
    python tools/instructions_per_element.py ours-here softmax@fast
    python tools/instructions_per_element.py jax gelu_tanh tanh:derivative
    python tools/instructions_per_element.py torch-here gelu softmax
    python tools/instructions_per_element.py torch gelu tanh
    python tools/instructions_per_element.py table --out results/speed-float32

``table`` counts every float32 miss of a speed table (``--speed``, default the committed
results/speed-float32/speed-best.csv: rows where our fastest variant within target trails the
fastest peer), ours and that peer, into ``instructions.csv`` in ``--out``, with the run's
metadata (``instructions.json``, as every result file's), from which ``actbench report
--pages`` adds the "why" table to that page.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

from step_count import stepped

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


_LANES = {"zmm": 16, "ymm": 8, "xmm": 4}  # float32 lanes of a register


def _numba_listing(asm: str) -> tuple[list[str], dict[int, int]]:
    """A Numba function's assembly (AT&T, ``.LBB`` labels) as its instructions and its backward
    jumps (the index of each jump -> the index it jumps to)."""
    ins, label_at, jumps = [], {}, {}
    for line in asm.splitlines():
        if m := re.match(r"^(\.LBB\S+):", line):
            label_at[m.group(1)] = len(ins)
        elif line.startswith("\t") and not line.strip().startswith("."):
            ins.append(line.strip())
    for i, text in enumerate(ins):
        m = re.match(r"j\w+\s+(\.LBB\S+)", text)
        if m and label_at.get(m.group(1), i + 1) <= i:
            jumps[i] = label_at[m.group(1)]
    return ins, jumps


def _object_listing(path: str) -> tuple[list[str], dict[int, int]]:
    """An object file's code (objdump, addresses for labels), as ``_numba_listing``."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                          capture_output=True, text=True).stdout
    addrs, ins, section = [], [], ""
    for line in text.splitlines():
        if line.startswith("Disassembly of section"):  # each section's addresses start at 0
            section = line
        elif m := re.match(r"^\s*([0-9a-f]+):\s+(\S.*)$", line):
            addrs.append((section, int(m.group(1), 16)))
            ins.append(re.sub(r"\s+", " ", m.group(2)).replace(", ", ","))
    at = {a: i for i, a in enumerate(addrs)}
    jumps = {}
    for i, text in enumerate(ins):
        m = re.match(r"j\w+ ([0-9a-f]+)\b", text)
        target = (addrs[i][0], int(m.group(1), 16)) if m else None
        if target in at and at[target] <= i:
            jumps[i] = at[target]
    return ins, jumps


def innermost_loops(ins: list[str], jumps: dict[int, int]) -> list[list[str]]:
    """The loops that hold no other loop: from a backward jump's target to the jump."""
    spans = [(start, end) for end, start in jumps.items()]
    return [ins[start:end + 1] for start, end in spans
            if not any(start <= s and e <= end and (s, e) != (start, end) for s, e in spans)]


# packed (…ps / …pd) arithmetic, compares and blends: a scalar loop may name a vector register
# too (a spill, a constant), but computes nothing in one
_PACKED = re.compile(r"^v?(?:add|sub|mul|div|min|max|sqrt|fn?m(?:add|sub)\d*|cmp\w*|blendm?v?)"
                     r"p[sd]\b.*%([xyz])mm")


def lanes(body: list[str]) -> int:
    """float32 lanes of the widest vector the loop computes in (1: none)."""
    return max((_LANES[m.group(1) + "mm"] for s in body if (m := _PACKED.match(s))), default=1)


def _immediate(text: str) -> int:
    """A step's size from its immediate: objdump prints a negative one (LLVM steps by 128 as
    ``sub $-128``) as its 64-bit two's complement, 0xffffffffffffff80."""
    value = int(text, 0)
    return abs(value - (1 << 64) if value >= 1 << 63 else value)


def elements_per_iteration(body: list[str]) -> int:
    """Elements one pass of a loop covers: its counter's step (a register stepped by a
    constant and tested for the exit), where the counter indexes elements
    (``(base,%reg,4)``), or the step over the element's bytes, where it is a byte offset
    (``(base,%reg)``, ``(%reg)``: the kernels counted are float32); the vector's lanes where
    no counter reads so."""
    for i, text in enumerate(body):
        m = re.match(r"(add|sub)q?\s+\$(-?(?:0x)?[0-9a-f]+),\s*%(\w+)$", text)
        # the counter: stepped, then tested (compared, or the step's own flags at the jump)
        if not m or not (body[i + 1:i + 2] == body[-1:] or any(
                t.startswith("cmp") and f"%{m.group(3)}" in t for t in body)):
            continue
        step, reg = _immediate(m.group(2)), m.group(3)
        for other in body:
            if re.search(rf"\(%\w+,%{reg},[248]\)", other):
                return step  # counts elements
            if re.search(rf"\(%\w+,%{reg}(,1)?\)|\(%{reg}[,)]", other):
                return max(1, step // 4)  # counts bytes of float32 elements
    return lanes(body)


def vector_loop(loops: list[list[str]]) -> list[str]:
    """Of the innermost loops, the largest computing in the widest vectors: the vector body,
    not the scalar remainder nor scalar code that keeps a vector register."""
    return max(loops, key=lambda body: (lanes(body), len(body)), default=[])


def per_element(body: list[str]) -> float:
    return len(body) / elements_per_iteration(body)


def vector_per_element(body: list[str]) -> float:
    """The loop's instructions that name a 256- or 512-bit register, per element: those that
    take the core's vector units at their widest (a 512-bit one takes two of its three)."""
    return sum("%ymm" in s or "%zmm" in s for s in body) / elements_per_iteration(body)


# our kernel for one case, called as the speed benchmarks call it (below the size that takes
# threads), compiled afresh (no cache: a loaded function has no assembly) with every outermost
# function Numba compiles for the call kept; argv: activation, variant, direction
_OURS_CALL = """
import json, os, sys
import numpy as np
from numba.core import event
from actbench_ulp.core import catalog
from actbench_ulp.speed.worker import inputs
activation, variant, direction = sys.argv[1:4]
case = next(catalog.cases([activation], [variant], [direction]))
compiled, depth = [], [0]
class Outermost(event.Listener):
    def on_start(self, ev):
        if depth[0] == 0:
            compiled.append(ev.data["dispatcher"])
        depth[0] += 1
    def on_end(self, ev):
        depth[0] -= 1
event.register("numba:compile", Outermost())
args, kwargs = inputs(case, "float32", 4000, np.random.default_rng(0))
with np.errstate(all="ignore"):
    case.kernel(*args, **kwargs)
print("ASM" + json.dumps([d.inspect_asm(s) for d in compiled for s in d.signatures]))
"""


def ours(activation: str, variant: str, direction: str, env: dict | None = None) -> dict:
    """Our kernel's vector loop, from the code Numba generates (for this CPU, or for the CPU
    that ``env``'s NUMBA_CPU_NAME / NUMBA_CPU_FEATURES name), in a fresh process: Numba reads
    its CPU settings once, at import."""
    done = subprocess.run([sys.executable, "-c", _OURS_CALL, activation, variant, direction],
                          env={**os.environ, **(env or {}), "ACTBENCH_NUMBA_CACHE": "off",
                               "NUMBA_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"ours {activation} {direction}: {done.stderr[-2000:]}")
    asms = json.loads(done.stdout.split("ASM", 1)[1])
    body = vector_loop([loop for asm in asms for loop in innermost_loops(*_numba_listing(asm))])
    if not body:
        raise SystemExit(f"ours {activation} {direction}: no loop in Numba's code")
    ops = collections.Counter(s.split()[0] for s in body)
    row = {"instructions": len(body), "lanes": lanes(body), "per_element": per_element(body),
           "vector_per_element": vector_per_element(body), "divisions": ops["vdivps"],
           "fma": sum(v for k, v in ops.items() if "fma" in k or "fnm" in k or "fms" in k)}
    print(f"ours {activation} {direction} ({variant}): {row['instructions']} instructions a loop "
          f"of {elements_per_iteration(body)} elements = {row['per_element']:.2f} per element "
          f"({row['lanes']} lanes; divisions {row['divisions']}, fma {row['fma']})")
    return row


# one jax call, built as the speed benchmarks time it (the jitted function on JAX arrays),
# compiled with XLA dumping its object code; prints the object files this call compiled.
# argv: activation, direction, size, the dump directory
_JAX_CALL = """
import os, sys
import numpy as np
from actbench_ulp.core import catalog, peers
from actbench_ulp.speed.worker import inputs
activation, direction, n, dump = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
case = next(catalog.cases([activation], None, [direction]))
impl = peers.resolve("jax")
args, kwargs = inputs(case, "float32", n, np.random.default_rng(n))
natives = tuple(map(impl.to_device, args))
before = set(os.listdir(dump)) if os.path.isdir(dump) else set()
impl.device_kernel(case)(*natives, **kwargs).block_until_ready()
new = set(os.listdir(dump)) - before
print("OBJ" + "\\n".join(sorted(f for f in new if f.endswith((".o", "cpu_after_optimizations.txt")))))
"""


def jax_counts(activation: str, direction: str, n: int = 1 << 20) -> dict:
    """jax's work per element from the code XLA generates for the call the speed benchmarks
    time (its object files, dumped by ``--xla_dump_to``): in each of the call's kernels (XLA's
    fusions), the innermost loops in its widest vector registers, each over its elements a
    pass, summed (a vectorized remainder at the same width would count twice: it says how many
    loops it took).  XLA sizes its thread partitions by PJRT_NPROC, set to 1 as the
    benchmarks run it."""
    with tempfile.TemporaryDirectory() as dump:
        flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump}".strip()
        done = subprocess.run([sys.executable, "-c", _JAX_CALL, activation, direction, str(n), dump],
                              env={**os.environ, "XLA_FLAGS": flags, "PJRT_NPROC": "1"},
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise SystemExit(f"jax {activation} {direction}: {done.stderr[-2000:]}")
        files = list(filter(None, done.stdout.split("OBJ", 1)[1].split("\n")))
        for name in files:
            if name.endswith(".txt") and "kind=kCustom" in open(os.path.join(dump, name)).read():
                # a custom fusion runs a library's code (XNNPACK's successor, for reductions
                # and exp), which no object file of the call holds
                print(f"jax {activation} {direction}: XLA runs part of it in a library (custom "
                      "fusions): not counted")
                return {"per_element": None, "vector_per_element": None,
                        "code": "library code (XLA's custom fusions)"}
        total, vector, kernels = 0.0, 0.0, []
        for name in (f for f in files if f.endswith(".o")):
            loops = innermost_loops(*_object_listing(os.path.join(dump, name)))
            width = max(map(lanes, loops), default=1)
            wide = [body for body in loops if lanes(body) == width > 1]
            if wide:
                total += sum(map(per_element, wide))
                vector += sum(map(vector_per_element, wide))
                loops_taken = f", {len(wide)} loops" if len(wide) > 1 else ""
                kernels.append(f"{name.rsplit('obj-file.', 1)[-1].removesuffix('.o')} "
                               f"({width * 32} bit{loops_taken})")
    if not kernels:
        raise SystemExit(f"jax {activation} {direction}: no vector loop in XLA's code")
    code = "; ".join(kernels)
    print(f"jax {activation} {direction} (XLA's code): {total:.2f} instructions per element; {code}")
    return {"per_element": total, "vector_per_element": vector, "code": code}


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



_AVX2 = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma,+f16c,+popcnt,+bmi2"}
# stepping sizes: elementwise and gated calls at a few instructions an element, row-wise ones
# (rows of 1000) at ten or more, where the same number of steps covers fewer elements
_SIZES = {"rowwise": (4000, 8000, 16000)}
_ELEMENTS = (4096, 16384, 32768)


def _step_sizes(activation: str) -> tuple[int, ...]:
    """The sizes an activation's calls are stepped at: the table's and the command line's."""
    from actbench_ulp.core import catalog

    return _SIZES.get(catalog.CATALOG[activation].kind, _ELEMENTS)


def _counted(count, *args, **kwargs) -> dict:
    """One count, or its failure kept as the row's reason (a long table goes on)."""
    try:
        return count(*args, **kwargs)
    except (SystemExit, Exception) as exc:  # any failure is this row's reason, not the run's
        lines = [line for line in str(exc).splitlines() if line.strip()] or [repr(exc)]
        reason = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
        print(reason, file=sys.stderr)
        return {"per_element": None, "vector_per_element": None, "code": f"not counted: {reason}"}


def _stepped_one(name: str, case: tuple[str, str, str], sizes: tuple[int, ...]) -> dict:
    return stepped(name, [case], sizes)[0]


def _miss_row(m) -> dict:
    """One miss of the speed table (a row of speed-best.csv) counted: ours and its peer."""
    case = (m.activation, m.variant, m.direction)
    sizes = _step_sizes(m.activation)
    row = {"activation": m.activation, "direction": m.direction, "variant": m.variant,
           "ratio_vs_peer": m.ratio_vs_peer, "peer": m.peer}
    if m.kind == "rowwise":  # several passes a row, with library calls: stepped
        r = _counted(_stepped_one, "ours", case, sizes)
        row.update(ours_per_element=r["per_element"], ours_counted="stepped",
                   ours_vector_per_element=r["vector_per_element"], ours_code=r["code"])
    else:
        for label, env in (("ours", None), ("ours_avx2", _AVX2)):
            r = _counted(ours, *case, env)
            row.update({f"{label}_per_element": r["per_element"],
                        f"{label}_vector_per_element": r["vector_per_element"],
                        f"{label}_lanes": r.get("lanes")})
            if r["per_element"] is None:  # the reason, on the page
                row["ours_code"] = "; ".join(filter(None, [row.get("ours_code"), r["code"]]))
        row["ours_counted"] = "generated code"
    if m.peer == "jax":
        r = _counted(jax_counts, m.activation, m.direction)
        row.update(peer_counted="generated code (XLA)")
    else:
        r = _counted(_stepped_one, "torch", (m.activation, "", m.direction), sizes)
        row.update(peer_counted="stepped")
    row.update(peer_per_element=r["per_element"], peer_vector_per_element=r["vector_per_element"],
               peer_code=r["code"])
    return row


def table(out: str, speed: str, jobs: int = 1) -> None:
    """Every float32 miss of the speed table ``speed`` (speed-best.csv: our fastest variant
    within target slower than the fastest peer) counted into ``out``/instructions.csv, the
    run's metadata beside it: ours from the code Numba generates (for this CPU and for AVX2)
    where the kernel is one loop, else stepped; the peer as it runs here (torch stepped, jax
    from XLA's code).  Not callgrind's counts of torch's AVX2 code: those of one build have
    moved by up to 3× between runs."""
    import pandas as pd

    from actbench_ulp.core.results import run_metadata, write_atomic

    best = pd.read_csv(speed)
    misses = best[(best.dtype == "float32") & (best.ratio_vs_peer > 1.0)]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:  # the counts run as processes
        rows = list(pool.map(_miss_row, misses.itertuples()))
    columns = ["activation", "direction", "variant", "ratio_vs_peer", "ours_per_element",
               "ours_vector_per_element", "ours_lanes", "ours_counted", "ours_code",
               "ours_avx2_per_element", "ours_avx2_vector_per_element", "ours_avx2_lanes", "peer",
               "peer_per_element", "peer_vector_per_element", "peer_counted", "peer_code"]
    write_atomic(os.path.join(out, "instructions.csv"),
                 pd.DataFrame(rows, columns=columns).to_csv(index=False))
    # the command as a reader runs it (a script, not an installed command)
    meta = run_metadata(peer_names=["torch", "jax"],
                        argv=["python", "tools/instructions_per_element.py", *sys.argv[1:]])
    meta["speed"] = speed
    write_atomic(os.path.join(out, "instructions.json"), json.dumps(meta, indent=2) + "\n")
    print(f"wrote {os.path.join(out, 'instructions.csv')}")


def _case(spec: str) -> tuple[str, str, str]:
    """ACTIVATION[:DIRECTION][@VARIANT] -> (activation, variant, direction)."""
    spec, _, variant = spec.partition("@")
    activation, _, direction = spec.partition(":")
    return activation, variant or "simd_f32", direction or "forward"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("who", choices=["ours", "ours-here", "jax", "torch", "torch-here", "table"])
    parser.add_argument("names", nargs="*",
                        help="ACTIVATION[:DIRECTION][@VARIANT]... (forward, simd_f32 unless "
                             "given; torch: forwards only)")
    parser.add_argument("--out", default="results/speed-float32",
                        help="table: the directory of instructions.csv and instructions.json")
    parser.add_argument("--speed", default="results/speed-float32/speed-best.csv",
                        help="table: the speed table whose misses it counts")
    parser.add_argument("--jobs", type=int, default=1,
                        help="table: misses counted at once (each stepping takes a core)")
    args = parser.parse_args()
    from actbench_ulp.core import catalog

    cases = [_case(n) for n in args.names]
    for activation, variant, direction in cases:
        ours_variant = [variant] if args.who.startswith("ours") else None
        if next(catalog.cases([activation], ours_variant, [direction]), None) is None:
            parser.error(f"no catalog case {activation}, direction {direction}"
                         + (f", variant {variant}" if ours_variant else "")
                         + " (`actbench list` names them)")
    if args.who == "table" and not os.path.isfile(args.speed):
        parser.error(f"--speed {args.speed}: no such speed table (actbench bench writes "
                     "speed-best.csv)")
    if args.who == "ours":
        for case in cases:
            ours(*case)
    elif args.who == "ours-here":
        for case in cases:
            stepped("ours", [case], _step_sizes(case[0]))
    elif args.who == "jax":
        for activation, _, direction in cases:
            jax_counts(activation, direction)
    elif args.who == "torch":
        torch_counts([activation for activation, *_ in cases])
    elif args.who == "torch-here":
        for case in cases:
            stepped("torch", [case], _step_sizes(case[0]))
    else:
        table(args.out, args.speed, args.jobs)


if __name__ == "__main__":
    main()

"""Instructions per element: ours from the generated code, a peer's from callgrind.

Research script (not installed with actbench).  It explains a speed gap by work per element,
which, unlike a time, does not depend on the machine's load:

- ours: the largest vector loop in the assembly of a fresh (uncached) compile of a kernel's
  serial float32 loop, divided by its lanes.  Compile for another CPU with Numba's settings,
  e.g. ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2,+fma,+f16c,+popcnt,+bmi2``;
- torch: ``valgrind --tool=callgrind`` counts every instruction of a process; the difference
  between 1 and 1 + REPS calls on N elements, over REPS·N, is torch's per element (valgrind
  hides AVX-512, so torch runs its AVX2 code: compare with our AVX2 compile).

    python tools/instructions_per_element.py ours _simd32 gelu tanh
    python tools/instructions_per_element.py torch gelu tanh
"""

import argparse
import collections
import importlib
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
    """The instructions of the loop (a block ending in a backward jump) in the widest vector
    registers, the largest of those: the vector body, not the scalar remainder (whose scalar
    arithmetic also names xmm registers)."""
    lines = asm.splitlines()
    labels = {m.group(1): i for i, line in enumerate(lines) if (m := re.match(r"^(\.LBB\S+):", line))}
    best: list[str] = []
    rank = (0, 0)
    for i, line in enumerate(lines):
        m = re.match(r"\s+j\w+\s+(\.LBB\S+)", line)
        if m and labels.get(m.group(1), i) < i:
            body = [s.strip() for s in lines[labels[m.group(1)]:i + 1]
                    if s.startswith("\t") and not s.strip().startswith(".")]
            width = max((w for r, w in _WIDTH.items() for s in body if r in s), default=0)
            if (width, len(body)) > rank:
                best, rank = body, (width, len(body))
    return best


def ours(module: str, names: list[str]) -> None:
    import numba
    import numpy as np

    mod = importlib.import_module(f"actbench_ulp.kernels.{module}")
    for name in names:
        loop = mod.KERNELS[name][False]
        fresh = numba.njit(error_model="numpy", fastmath={"contract"})(loop.py_func)
        x = np.linspace(-5, 5, 64, dtype=np.float32)
        fresh(x, np.empty_like(x))
        body = vector_loop(fresh.inspect_asm(fresh.signatures[0]))
        lanes = 16 if any("zmm" in s for s in body) else 8 if any("ymm" in s for s in body) else 4
        ops = collections.Counter(s.split()[0] for s in body)
        print(f"{module}.{name}: {len(body)} instructions a loop of {lanes} lanes = "
              f"{len(body) / lanes:.2f} per element (divisions {ops['vdivps']}, fma "
              f"{sum(v for k, v in ops.items() if 'fma' in k or 'fnm' in k or 'fms' in k)})")


def torch_counts(names: list[str], n: int = 1 << 20, reps: int = 5) -> None:
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
            print(f"torch.{name} (AVX2 under valgrind): {(totals[1] - totals[0]) / (reps * n):.2f} "
                  "instructions per element")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("who", choices=["ours", "torch"])
    parser.add_argument("names", nargs="+", help="ours: MODULE NAME...; torch: NAME...")
    args = parser.parse_args()
    if args.who == "ours":
        ours(args.names[0], args.names[1:])
    else:
        torch_counts(args.names)


if __name__ == "__main__":
    main()

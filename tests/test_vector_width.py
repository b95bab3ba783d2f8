"""The vector width of the kernels' machine code.  Compiled for an AVX-512 CPU (a subprocess
with Numba's ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``, whatever this machine is), every
float32 hot loop marked for 512-bit vectors computes in zmm registers; compiled for this
machine, in the widest registers its CPU has and never wider (no AVX-512 code on a CPU
without it).  tests/vector_loops.py lists, compiles and measures the loops.

Run under ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``, the checks of "this machine" check the
CPU they name, so an AVX2-only machine is simulated by ``NUMBA_CPU_NAME=haswell`` with an AVX2
machine's feature string (both: see kernels/_target.py)."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from actbench_ulp.kernels import _simd, _target
from tests import vector_loops

ROOT = Path(__file__).resolve().parents[1]
# the CPU names, features and registers read here are x86's
pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="x86-64 vector registers")

# loops left to LLVM's own preference for the CPU (256-bit vectors on AVX-512 CPUs of this
# kind) instead of marked for 512: _simd's float32 flavour, computed in float64, two registers
# a value (kernels/_simd.py, _loops), except its float32-native loops (_NATIVE32), marked
UNMARKED = ("simd.",)
NATIVE32 = tuple(f"simd.{name}" for name in _simd._NATIVE32)

# An AVX-512 CPU whose LLVM tuning prefers 256-bit vectors, as this project's machines' does
# (on one without that preference the loops would get zmm whether or not the mark works): the
# first AVX-512 server CPU, whose subsets (F, CD, BW, DQ, VL) later ones have.  NUMBA_CPU_FEATURES empty takes
# its own features; unset, the host's would override them (kernels/_target.py).  The disk
# cache is off: nothing compiled for it may reach the host's cache (which is keyed by the
# target anyway).
AVX512 = {"NUMBA_CPU_NAME": "skylake-avx512", "NUMBA_CPU_FEATURES": "", "ACTBENCH_NUMBA_CACHE": "off"}


def _failures(measured: dict, bits: int) -> list[str]:
    """What is wrong with the loops' code on a target whose widest vector is ``bits``."""
    bad = []
    for name, m in measured.items():
        unmarked = name.startswith(UNMARKED) and name not in NATIVE32
        if m["marked"] == unmarked:  # a mark lost, or a new one to list here
            bad.append(f"{name}: {'' if m['marked'] else 'not '}marked for 512-bit vectors")
        # vector code at all, and none wider than the target has: a marked loop in its widest
        # registers (16 float32 lanes with AVX-512F, 8 with AVX, 4 with SSE; the row kernels'
        # float64 arithmetic half as many), an unmarked one in what LLVM's tuning prefers
        if not 0 < m["bits"] <= bits or (m["marked"] and m["bits"] != bits):
            bad.append(f"{name}: packed arithmetic at most {m['bits']} bits wide, target {bits}")
    return bad


def _expected_bits() -> int:
    """The widest vector of the CPU this process compiles for, from its features where they
    are listed (the host's, or NUMBA_CPU_FEATURES'), else (empty: the named CPU's own set)
    from LLVM."""
    on = _target.extensions(_target.target()[1])
    return _target.width_from_features(on) if on is not None else _target.vector_bits()


@pytest.mark.parametrize(("cpu", "features", "bits"), [
    ("x86-64", "", 128), ("nehalem", "", 128),  # SSE only
    ("sandybridge", "", 256), ("haswell", "", 256),  # AVX (float vectors of 256 bits), AVX2
    ("skylake-avx512", "", 512), ("znver4", "", 512),  # AVX-512F, on Intel's tuning and AMD's
    ("x86-64", "+avx,+avx2,+fma", 256),  # features given turn the CPU's own on
    ("skylake-avx512", "-avx512f", 256),  # ... and off
])
def test_llvm_gives_the_width_of_the_features(cpu, features, bits):
    assert _target.vector_bits(cpu, features) == bits


def test_a_cpu_name_alone_keeps_the_hosts_features():
    # why the AVX-512 run sets both variables: Numba passes the host's full feature list
    # (+/- each) with NUMBA_CPU_NAME alone, and it overrides what the named CPU has
    host = _target.target()[1]
    assert _target.vector_bits("haswell", host) == _target.vector_bits("skylake-avx512", host) \
        == _target.width_from_features(_target.extensions(host))


@pytest.mark.skipif(_target.vector_bits() == 512,
                    reason="this machine's CPU has AVX-512: test_this_machine_gets_its_own_width "
                    "checks the same loops at 512 bits, on a CPU whose tuning also prefers 256")
def test_an_avx512_target_gets_512_bit_vectors():
    # ~90 fresh compiles, 45 s on a 2-core machine; the limit only stops a hung run
    done = subprocess.run([sys.executable, "-m", "tests.vector_loops"], cwd=ROOT,
                          env={**os.environ, **AVX512}, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    run = json.loads(done.stdout)
    assert run["target"] == ["skylake-avx512", ""] and run["vector_bits"] == 512
    assert len(run["loops"]) == len(vector_loops.loops())
    bad = _failures(run["loops"], 512)
    assert not bad, "\n".join(bad)


def test_this_machine_gets_its_own_width():
    bits = _expected_bits()
    assert _target.vector_bits() == bits  # LLVM's answer, which the run metadata records
    measured = {name: vector_loops.measure(loop, sig) for name, loop, sig in vector_loops.loops()}
    bad = _failures(measured, bits)
    assert not bad, "\n".join(bad)

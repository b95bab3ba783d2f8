"""The CPU the kernels are compiled for, as Numba's compiler sees it.

Numba's JIT compiles for the host, unless ``NUMBA_CPU_NAME`` names another CPU; its features
are the host's (llvmlite's ``get_host_cpu_features()``, with every ``avx*`` off when
``NUMBA_ENABLE_AVX=0``) unless ``NUMBA_CPU_FEATURES`` gives them.  Both must be set to compile
for another CPU: with the name alone the host's full feature list (``+avx512f``, ``-amx-tile``,
...) still overrides what the named CPU has, and an empty ``NUMBA_CPU_FEATURES`` takes the
named CPU's own set (``numba.core.codegen.JITCPUCodegen``).

``target()`` is that pair; ``vector_bits()`` the widest vector register a kernel gets on it
(a loop marked ``_simd._prefer_512_bit_vectors``); ``describe()`` both, and the vector
extensions, for a run's metadata.  ``_cache`` keys its directory on ``target()``.
"""

import functools

from llvmlite import binding as llvm
from numba.core import codegen, config

__all__ = ["EXTENSIONS", "describe", "extensions", "target", "vector_bits", "width_from_features"]

# the features that decide the kernels' vector code (SSE4.2 and AVX2's integer ops, FMA) and
# those a reader of a result file may ask about (AVX-512's subsets, its half floats, AMX)
EXTENSIONS = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq",
              "avx512fp16", "avx512bf16", "amx-tile", "amx-bf16", "amx-int8", "amx-fp16")


def target() -> tuple[str, str]:
    """(CPU name, feature string) that Numba's JIT compiles for in this process; the feature
    string is ``+name,-name,...`` or empty (the named CPU's own features)."""
    name = config.CPU_NAME or llvm.get_host_cpu_name()
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    return name, features


def extensions(features: str) -> dict | None:
    """The ``EXTENSIONS`` a feature string turns on or off (absent ones are off), or None for
    an empty string: the CPU's own set, which llvmlite cannot list."""
    if not features:
        return None
    given = {f[1:]: f[0] == "+" for f in features.split(",") if f[:1] in "+-" and len(f) > 1}
    return {name: given.get(name, False) for name in EXTENSIONS}


def width_from_features(on: dict) -> int:
    """The widest float vector register these features give, in bits: 512 with AVX-512F, 256
    with AVX (AVX2 adds integer ops and FMA, not width), else SSE's 128."""
    return 512 if on.get("avx512f") else 256 if on.get("avx") else 128


# one add of 16 floats in a function that asks for 512-bit vectors (as the kernels' loops do;
# "min-legal-vector-width" keeps LLVM from splitting it by its tuning's preference alone): the
# registers it is compiled to are the widest the target has
_PROBE = """
define void @probe(ptr %p) #0 {
  %x = load <16 x float>, ptr %p, align 64
  %y = fadd <16 x float> %x, %x
  store <16 x float> %y, ptr %p, align 64
  ret void
}
attributes #0 = { nounwind "prefer-vector-width"="512" "min-legal-vector-width"="512" }
"""


@functools.cache
def vector_bits(name: str | None = None, features: str | None = None) -> int:
    """The widest vector register, in bits, LLVM gives a loop marked for 512-bit vectors on
    CPU ``name`` with ``features`` (default: ``target()``), asked of LLVM itself (a few
    milliseconds): 512, 256 or 128 on x86; 128 on any other machine."""
    if name is None:
        name, features = target()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    machine = llvm.Target.from_default_triple().create_target_machine(cpu=name, features=features or "")
    module = llvm.parse_assembly(_PROBE)
    module.triple = machine.triple
    asm = machine.emit_assembly(module)
    return 512 if "%zmm" in asm else 256 if "%ymm" in asm else 128


def describe() -> dict:
    """The compiler's target for a run's metadata: the CPU name and where it came from, the
    vector extensions (None where ``NUMBA_CPU_FEATURES`` is empty: the CPU's own set), and
    the widest vector in bits the kernels get."""
    name, features = target()
    return {"cpu_name": name, "cpu_name_from": "NUMBA_CPU_NAME" if config.CPU_NAME else "host",
            "features_from": "NUMBA_CPU_FEATURES" if config.CPU_FEATURES is not None else "host",
            "extensions": extensions(features), "vector_bits": vector_bits(name, features)}

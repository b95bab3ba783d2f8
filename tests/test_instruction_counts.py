"""tools/instructions_per_element.py's reading of machine code (a research script, not
installed): which loop is the vector body and how many elements one pass covers, in Numba's
assembly and in objdump's listing of XLA's object files.  The listings are excerpts of real
ones (our float32 sigmoid, jax's tanh derivative), cut to the lines that decide."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import instructions_per_element as ipe

# Numba: a scalar remainder loop (xmm) and the 16-lane body, counter in elements
NUMBA = """\
f:
.LBB0_3:
\tvmovss\t(%rcx,%rax,4), %xmm0
\tvaddss\t%xmm1, %xmm0, %xmm0
\tvmovss\t%xmm0, (%rdx,%rax,4)
\tincq\t%rax
\tcmpq\t%rax, %rsi
\tjne\t.LBB0_3
.LBB0_6:
\tvmovups\t(%rcx,%r9,4), %zmm19
\t.p2align\t4
\tvfmadd231ps\t%zmm5, %zmm22, %zmm20
\tvdivps\t%zmm24, %zmm12, %zmm21
\tvmovups\t%zmm24, (%rax,%r9,4)
\taddq\t$16, %r9
\tcmpq\t%r9, %r12
\tjne\t.LBB0_6
\tretq
"""

# objdump of XLA's code: an 8-lane body unrolled four times (32 elements a pass)
OBJDUMP = """\
0000000000000000 <multiply_add_fusion>:
   0:\tpush   %rbp
 110:\tvmovups (%rax,%rdx,4),%ymm16
 117:\tvmovups 0x20(%rax,%rdx,4),%ymm17
 11e:\tvfmadd231ps %ymm4,%ymm16,%ymm17
 124:\tvmovups %ymm17,(%rcx,%rdx,4)
 12b:\tadd    $0x20,%rdx
 12f:\tcmp    $0x80000,%rdx
 136:\tjne    110 <multiply_add_fusion+0x110>
 13c:\tret
"""


def test_numba_listing_takes_the_vector_body_not_the_remainder():
    body = ipe.vector_loop(ipe.innermost_loops(*ipe._numba_listing(NUMBA)))
    # the directive is not an instruction; the body runs from its label to its jump
    assert body[0].startswith("vmovups") and body[-1].startswith("jne") and len(body) == 7
    assert ipe.lanes(body) == 16 and ipe.elements_per_iteration(body) == 16
    assert ipe.per_element(body) == 7 / 16


def test_objdump_listing_counts_an_unrolled_pass(tmp_path, monkeypatch):
    class Done:
        stdout = OBJDUMP
    monkeypatch.setattr(ipe.subprocess, "run", lambda *a, **k: Done())
    loops = ipe.innermost_loops(*ipe._object_listing(str(tmp_path / "kernel.o")))
    assert len(loops) == 1 and len(loops[0]) == 7
    # 8 lanes, but the counter steps 32 elements: four vectors a pass
    assert ipe.lanes(loops[0]) == 8 and ipe.elements_per_iteration(loops[0]) == 32


def test_a_byte_counter_is_divided_by_the_element_size():
    body = ["vmovups (%rax,%rcx),%ymm0", "vmovups %ymm0,(%rbx,%rcx)", "add $0x40,%rcx",
            "cmp $0x400,%rcx", "jne 10"]
    assert ipe.elements_per_iteration(body) == 16
    # the kernels counted are float32: a float32 load widened to doubles still steps 4 bytes
    widened = ["vcvtps2pd (%rax,%rcx),%zmm0", "add $0x20,%rcx", "jne 10"]
    assert ipe.elements_per_iteration(widened) == 8


def test_scalar_code_that_keeps_a_vector_register_is_not_the_vector_body():
    # a fix-up loop reloading a spilled 256-bit constant, its stack adjusted by a constant: no
    # packed arithmetic (so not a vector loop) and no counter (the stack pointer is not tested)
    fixup = ["vmovups 192(%rsp),%ymm0", "vaddss %xmm1,%xmm0,%xmm0", "addq $192,%rsp",
             "movq (%rsp),%rax", "jmp 40"]
    body = ["vmovups (%r14,%rbp,4),%ymm13", "vmulps %ymm13,%ymm12,%ymm12",
            "vmovups %ymm12,(%rbx,%rbp,4)", "addq $8,%rbp", "cmpq %rbp,%r13", "jne 10"]
    assert ipe.lanes(fixup) == 1 and ipe.vector_loop([fixup, body]) == body
    assert ipe.elements_per_iteration(body) == 8


def test_a_negative_step_as_objdump_prints_it():
    # LLVM steps a byte counter by 128 as `sub $-128`, which objdump prints in 64 bits
    body = ["vmovups (%rax,%rcx),%ymm0", "vmulps %ymm0,%ymm1,%ymm0", "vmovups %ymm0,(%rbx,%rcx)",
            "sub $0xffffffffffffff80,%rcx", "jne 10"]
    assert ipe.elements_per_iteration(body) == 32


def test_objdump_addresses_restart_in_each_section(monkeypatch):
    # .text's jump to its address 4 is not a jump back to .ltext's instruction at 4
    listing = ("Disassembly of section .ltext:\n 0:\tvaddps %ymm0,%ymm1,%ymm1\n"
               " 4:\tadd $0x8,%rdx\n 8:\tjne 0 <b>\n"
               "Disassembly of section .text:\n 0:\tnop\n 8:\tjne 4 <a+0x4>\n")

    class Done:
        stdout = listing
    monkeypatch.setattr(ipe.subprocess, "run", lambda *a, **k: Done())
    _, jumps = ipe._object_listing("kernel.o")
    assert jumps == {2: 0}  # .ltext's loop only

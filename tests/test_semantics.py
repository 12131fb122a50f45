"""The instruction semantics written once (emulator.isa.Semantics) and the field extractors it reads.

- Each field extractor of emulator.fields against the encoding worked out bit by bit from the field's
  position in the Book E instruction formats, on random words.
- A Semantics form's two derived functions: the decoded handler and the translator's lines, run on
  twin FlatCpus, give the same next pc and registers (branch targets folded to constants, the memory
  macros as the core's loads and stores, record forms with CR0).
- Every instruction of the integer table has a translator template except the few written as
  handlers only, so the table cannot silently fall back to handler calls in translated blocks.

Imports: the emulator package and tests/support/flatcpu.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from emulator import fields
from emulator.isa import Semantics
from emulator.ops_integer import SPECS
from tests.support.flatcpu import FlatCpu

M = 0xFFFFFFFF
HANDLER_ONLY = {"twi", "tw", "lwarx", "stwcx."}


def _bits(word: int, first: int, last: int) -> int:
    """Bits first..last of ``word`` in the architecture's numbering (bit 0 is the most significant)."""
    width = last - first + 1
    return (word >> (31 - last)) & ((1 << width) - 1)


def _sign_extend(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


@pytest.mark.parametrize("seed", range(4))
def test_field_extractors_read_their_bits(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        word = rng.randrange(1 << 32)
        assert fields.primary(word) == _bits(word, 0, 5)
        for extractor in (fields.rd, fields.rs, fields.to, fields.bo, fields.crbd, fields.frt, fields.crbt):
            assert extractor(word) == _bits(word, 6, 10), extractor.__name__
        for extractor in (fields.ra, fields.bi, fields.crba, fields.fra):
            assert extractor(word) == _bits(word, 11, 15), extractor.__name__
        for extractor in (fields.rb, fields.sh, fields.crbb, fields.frb):
            assert extractor(word) == _bits(word, 16, 20), extractor.__name__
        for extractor in (fields.mb, fields.bc, fields.frc):
            assert extractor(word) == _bits(word, 21, 25), extractor.__name__
        assert fields.me(word) == _bits(word, 26, 30)
        assert fields.crfd(word) == _bits(word, 6, 8)
        assert fields.crfs(word) == _bits(word, 11, 13)
        assert fields.long_compare(word) == bool(_bits(word, 10, 10))
        assert fields.one_field(word) == bool(_bits(word, 11, 11))
        assert fields.fxm(word) == _bits(word, 12, 19)
        assert fields.spr(word) == _bits(word, 16, 20) << 5 | _bits(word, 11, 15)
        assert fields.xo10(word) == _bits(word, 21, 30)
        assert fields.xo9(word) == _bits(word, 22, 30)
        assert fields.xo11(word) == _bits(word, 21, 31)
        assert fields.uimm(word) == _bits(word, 16, 31)
        assert fields.simm(word) == _sign_extend(_bits(word, 16, 31), 16)
        assert fields.branch_offset(word) == _sign_extend(_bits(word, 6, 29), 24) * 4
        assert fields.branch_displacement(word) == _sign_extend(_bits(word, 16, 29), 14) * 4
        assert fields.oe(word) == bool(_bits(word, 21, 21))
        assert fields.rc(word) == fields.lk(word) == bool(_bits(word, 31, 31))
        assert fields.aa(word) == bool(_bits(word, 30, 30))
        assert fields.tlbilx_type(word) == _bits(word, 9, 10)
        assert fields.wrteei_enable(word) == bool(_bits(word, 16, 16))
        assert fields.flm(word) == _bits(word, 7, 14)
        assert fields.mtfsf_all(word) == bool(_bits(word, 6, 6))
        assert fields.fpscr_upper(word) == bool(_bits(word, 15, 15))
        assert fields.fpscr_immediate(word) == _bits(word, 16, 19)


def _run_source(lines: list[str], cpu: FlatCpu, pc: int) -> int:
    """The translator's lines run as a function over the core, with the macros as its loads/stores."""
    source = "\n".join(["def run(cpu, gpr, LOAD8, LOAD16, LOAD32, STORE8, STORE16, STORE32):",
                        *("    " + line for line in lines), f"    return {(pc + 4) & M}"])
    namespace: dict[str, Any] = {}
    exec(compile(source, "<lines>", "exec"), namespace)
    result: int = namespace["run"](cpu, cpu.gpr, cpu.load8, cpu.load16, cpu.load32, cpu.store8, cpu.store16,
                                   cpu.store32)
    return result


def _state(cpu: FlatCpu) -> tuple[object, ...]:
    return list(cpu.gpr), cpu.cr, cpu.xer, cpu.lr, cpu.ctr


FORMS = [
    # A pc-relative conditional branch with link that decrements CTR: folded targets, both paths.
    (Semantics("branch", ("cpu.lr = {next}", "n = cpu.ctr = (cpu.ctr - 1) & 4294967295",
                          "if n != 0 and cpu.cr & {bit}:",
                          "    return (({pc} + {displacement}) & 4294967295)", "return {next}")),
     {"bit": 1 << 29, "displacement": -0x20}),
    # A load through the memory macro, with rA updated after it and a byte-reversing step.
    (Semantics("load", ("ea = (gpr[{ra}] + {displacement}) & 4294967295", "v = LOAD32(ea)",
                        "v = int.from_bytes(v.to_bytes(4, 'big'), 'little')", "gpr[{ra}] = ea",
                        "gpr[{rd}] = v")),
     {"ra": 4, "rd": 5, "displacement": 8}),
    # A store, then a record form writing CR0 from the scratch result.
    (Semantics("store", ("ea = gpr[{ra}]", "v = gpr[{rs}] & 0xFFFF", "STORE16(ea, v)")), {"ra": 4, "rs": 6}),
    (Semantics("and", ("r = gpr[{ra}] = gpr[{rs}] & {imm}",
                       "cpu.cr = (cpu.cr & 268435455) | (2147483648 if r & 2147483648 else 1073741824 if r "
                       "else 536870912) | ((cpu.xer >> 3) & 268435456)")),
     {"ra": 7, "rs": 8, "imm": 0xFF00}),
]


@pytest.mark.parametrize(("form", "values"), FORMS, ids=[form.name for form, _ in FORMS])
def test_handler_and_translator_lines_agree(form: Semantics, values: dict[str, int]) -> None:
    rng = random.Random(form.name)
    pc = 0x2000
    lines = form.source(values, pc)
    for line in lines:
        assert "{" not in line, line                            # every field became a constant
        if line.strip().startswith("return "):
            assert line.strip()[7:].isdigit(), line             # the translator reads targets as numbers
    handler = form.handler(values)
    for _ in range(200):
        by_handler, by_lines = FlatCpu(), FlatCpu()
        state = [rng.choice([0, 1, M, 0x80000000, rng.randrange(1 << 32)]) for _ in range(32)]
        state[4] = 0x1000 + 4 * rng.randrange(64)              # a base address inside FlatCpu's memory
        cr, xer, ctr = rng.randrange(1 << 32), rng.randrange(1 << 32) & 0xE000007F, rng.choice([1, 2, 5])
        for cpu in (by_handler, by_lines):
            cpu.gpr[:] = state
            cpu.cr, cpu.xer, cpu.ctr, cpu.lr = cr, xer, ctr, 0
            cpu.store32(0x1000, 0x11223344)
        assert handler(by_handler, pc) == _run_source(lines, by_lines, pc)
        assert _state(by_handler) == _state(by_lines)
        assert by_handler.load32(state[4]) == by_lines.load32(state[4])


def test_every_integer_instruction_has_a_template_but_the_handler_only_ones() -> None:
    without = {spec.mnemonic for spec in SPECS if spec.emit is None}
    assert without == HANDLER_ONLY


def test_a_form_is_compiled_once_not_per_word() -> None:
    form = Semantics("add_immediate", ("gpr[{rd}] = (gpr[{ra}] + {imm}) & 4294967295",))
    first, second = form.handler({"rd": 1, "ra": 2, "imm": 3}), form.handler({"rd": 4, "ra": 5, "imm": -6})
    assert first is not second and first.__code__ is second.__code__
    cpu = FlatCpu()
    cpu.gpr[2], cpu.gpr[5] = 10, 10
    assert (first(cpu, 0x100), second(cpu, 0x100)) == (0x104, 0x104)
    assert (cpu.gpr[1], cpu.gpr[4]) == (13, 4)

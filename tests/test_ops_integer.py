"""Per-instruction tests of the user-level integer ISA (emulator.ops_integer through emulator.isa).

Each case runs one instruction on FlatCpu and checks every register it may change and that nothing
else changed. Expected values are worked out by hand from the PowerPC Book E definitions (comments
give the arithmetic); words come from binutils (`powerpc-linux-gnu-as -me500`), except invalid forms
that the assembler refuses, which are hand-encoded.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator import decoder, isa
from emulator.exceptions import (
    ESR_PIL,
    ESR_PPR,
    ESR_PTR,
    ESR_ST,
    IVOR_ALIGNMENT,
    IVOR_DATA_STORAGE,
    IVOR_PROGRAM,
    Interrupt,
)
from tests.support import assemble_lines
from tests.support.flatcpu import FlatCpu

SO, OV, CA = 0x80000000, 0x40000000, 0x20000000          # XER
LT, GT, EQ, SO0 = 0x80000000, 0x40000000, 0x20000000, 0x10000000   # CR0
PC = 0x1000
DATA = 0x2000

Case = tuple[str | int, dict[str, Any], dict[str, Any]]

ARITHMETIC: list[Case] = [
    ("add 3,4,5", {"r4": 1, "r5": 2}, {"r3": 3}),
    ("add 3,4,5", {"r4": 0xFFFFFFFF, "r5": 2}, {"r3": 1}),                       # no CA for add
    ("add. 3,4,5", {"r4": 0xFFFFFFFF, "r5": 1}, {"r3": 0, "cr": EQ}),
    ("add. 3,4,5", {"r4": 1, "r5": 1, "xer": SO}, {"r3": 2, "cr": GT | SO0}),    # SO copied to CR0
    ("addo 3,4,5", {"r4": 0x7FFFFFFF, "r5": 1}, {"r3": 0x80000000, "xer": SO | OV}),
    ("addo 3,4,5", {"r4": 1, "r5": 1, "xer": SO | OV}, {"r3": 2, "xer": SO}),    # OV cleared, SO sticky
    ("addo. 3,4,5", {"r4": 0x80000000, "r5": 0x80000000}, {"r3": 0, "xer": SO | OV, "cr": EQ | SO0}),
    ("addc 3,4,5", {"r4": 0xFFFFFFFF, "r5": 1}, {"r3": 0, "xer": CA}),
    ("addc 3,4,5", {"r4": 0x7FFFFFFF, "r5": 1, "xer": CA}, {"r3": 0x80000000, "xer": 0}),
    ("addco. 3,4,5", {"r4": 0x80000000, "r5": 0xFFFFFFFF},
     {"r3": 0x7FFFFFFF, "xer": SO | OV | CA, "cr": GT | SO0}),
    ("adde 3,4,5", {"r4": 1, "r5": 2, "xer": CA}, {"r3": 4, "xer": 0}),
    ("adde 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0, "xer": CA}, {"r3": 0, "xer": CA}),
    ("addeo. 3,4,5", {"r4": 0x7FFFFFFF, "r5": 0, "xer": CA},
     {"r3": 0x80000000, "xer": SO | OV, "cr": LT | SO0}),
    ("addme 3,4", {"r4": 5}, {"r3": 4, "xer": CA}),                              # 5 + 0xFFFFFFFF carries
    ("addme 3,4", {"r4": 0}, {"r3": 0xFFFFFFFF}),
    ("addme 3,4", {"r4": 0, "xer": CA}, {"r3": 0, "xer": CA}),
    ("addmeo 3,4", {"r4": 0x80000000}, {"r3": 0x7FFFFFFF, "xer": SO | OV | CA}),
    ("addze 3,4", {"r4": 0xFFFFFFFF, "xer": CA}, {"r3": 0, "xer": CA}),
    ("addze 3,4", {"r4": 5}, {"r3": 5}),
    ("addzeo 3,4", {"r4": 0x7FFFFFFF, "xer": CA}, {"r3": 0x80000000, "xer": SO | OV}),
    ("subf 3,4,5", {"r4": 3, "r5": 10}, {"r3": 7}),                             # rB - rA
    ("subf. 3,4,5", {"r4": 10, "r5": 3}, {"r3": 0xFFFFFFF9, "cr": LT}),
    ("subfo 3,4,5", {"r4": 1, "r5": 0x80000000}, {"r3": 0x7FFFFFFF, "xer": SO | OV}),
    ("subfc 3,4,5", {"r4": 3, "r5": 10}, {"r3": 7, "xer": CA}),                 # no borrow -> CA=1
    ("subfc 3,4,5", {"r4": 10, "r5": 3, "xer": CA}, {"r3": 0xFFFFFFF9, "xer": 0}),
    ("subfc 3,4,5", {"r4": 5, "r5": 5}, {"r3": 0, "xer": CA}),
    ("subfe 3,4,5", {"r4": 3, "r5": 10}, {"r3": 6, "xer": CA}),                 # 10 - 3 - 1
    ("subfe 3,4,5", {"r4": 3, "r5": 10, "xer": CA}, {"r3": 7, "xer": CA}),
    ("subfme 3,4", {"r4": 0, "xer": CA}, {"r3": 0xFFFFFFFF, "xer": CA}),
    ("subfme 3,4", {"r4": 0xFFFFFFFF}, {"r3": 0xFFFFFFFF}),
    ("subfze 3,4", {"r4": 0, "xer": CA}, {"r3": 0, "xer": CA}),
    ("subfze 3,4", {"r4": 1}, {"r3": 0xFFFFFFFE}),
    ("subfzeo 3,4", {"r4": 0x80000000, "xer": CA}, {"r3": 0x80000000, "xer": SO | OV}),
    ("neg 3,4", {"r4": 5, "xer": CA}, {"r3": 0xFFFFFFFB}),                       # CA untouched
    ("neg 3,4", {"r4": 0}, {"r3": 0}),
    ("nego. 3,4", {"r4": 0x80000000}, {"r3": 0x80000000, "xer": SO | OV, "cr": LT | SO0}),
    ("addi 3,4,-1", {"r4": 0}, {"r3": 0xFFFFFFFF}),
    ("addi 3,0,-2", {"r0": 5}, {"r3": 0xFFFFFFFE}),                             # rA=0 reads as 0
    ("addis 3,4,-32768", {"r4": 1}, {"r3": 0x80000001}),
    ("addis 3,0,0x1234", {"r0": 7}, {"r3": 0x12340000}),
    ("addic 3,4,1", {"r4": 0xFFFFFFFF}, {"r3": 0, "xer": CA}),
    ("addic 3,4,-1", {"r4": 0, "xer": CA}, {"r3": 0xFFFFFFFF, "xer": 0}),
    ("addic 3,4,-1", {"r4": 1}, {"r3": 0, "xer": CA}),
    ("addic. 3,4,-1", {"r4": 1}, {"r3": 0, "xer": CA, "cr": EQ}),
    ("subfic 3,4,10", {"r4": 3}, {"r3": 7, "xer": CA}),
    ("subfic 3,4,0", {"r4": 0}, {"r3": 0, "xer": CA}),
    ("subfic 3,4,0", {"r4": 1, "xer": CA}, {"r3": 0xFFFFFFFF, "xer": 0}),
    ("mulli 3,4,-3", {"r4": 5}, {"r3": 0xFFFFFFF1}),
    ("mulli 3,4,7", {"r4": 0x80000000}, {"r3": 0x80000000}),                    # 7 * 2^31 mod 2^32
    ("mullw 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0xFFFFFFFF}, {"r3": 1}),
    ("mullwo 3,4,5", {"r4": 0x10000, "r5": 0x10000}, {"r3": 0, "xer": SO | OV}),
    ("mullwo. 3,4,5", {"r4": 0xFFFFFFFF, "r5": 2, "xer": OV}, {"r3": 0xFFFFFFFE, "xer": 0, "cr": LT}),
    ("mullwo 3,4,5", {"r4": 0x8000, "r5": 0x10000}, {"r3": 0x80000000, "xer": SO | OV}),   # +2^31
    ("mullwo 3,4,5", {"r4": 0xFFFF8000, "r5": 0x10000}, {"r3": 0x80000000}),             # -2^31 fits
    ("mulhw 3,4,5", {"r4": 0xFFFFFFFF, "r5": 1}, {"r3": 0xFFFFFFFF}),
    ("mulhw. 3,4,5", {"r4": 0x80000000, "r5": 0x80000000}, {"r3": 0x40000000, "cr": GT}),  # 2^62
    ("mulhwu 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0xFFFFFFFF}, {"r3": 0xFFFFFFFE}),
    ("mulhwu 3,4,5", {"r4": 0x10000, "r5": 0x10000}, {"r3": 1}),
    ("divw 3,4,5", {"r4": 0xFFFFFFF9, "r5": 2}, {"r3": 0xFFFFFFFD}),           # -7/2 = -3 (truncate)
    ("divw 3,4,5", {"r4": 7, "r5": 0xFFFFFFFE}, {"r3": 0xFFFFFFFD}),
    ("divw 3,4,5", {"r4": 7, "r5": 0}, {"r3": 7}),                             # QEMU: dividend
    ("divwo 3,4,5", {"r4": 7, "r5": 0}, {"r3": 7, "xer": SO | OV}),
    ("divwo. 3,4,5", {"r4": 0x80000000, "r5": 0xFFFFFFFF},
     {"r3": 0x80000000, "xer": SO | OV, "cr": LT | SO0}),
    ("divwo 3,4,5", {"r4": 6, "r5": 3, "xer": SO | OV}, {"r3": 2, "xer": SO}),
    ("divwu 3,4,5", {"r4": 0xFFFFFFFE, "r5": 2}, {"r3": 0x7FFFFFFF}),
    ("divwuo 3,4,5", {"r4": 5, "r5": 0}, {"r3": 5, "xer": SO | OV}),
    ("divwu. 3,4,5", {"r4": 1, "r5": 2}, {"r3": 0, "cr": EQ}),
]

LOGICAL: list[Case] = [
    ("and. 3,4,5", {"r4": 0xF0F0F0F0, "r5": 0x0FF00FF0}, {"r3": 0x00F000F0, "cr": GT}),
    ("andc 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0x0000FFFF}, {"r3": 0xFFFF0000}),
    ("andc. 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0x0000FFFF}, {"r3": 0xFFFF0000, "cr": LT}),
    ("eqv 3,4,5", {"r4": 0x12345678, "r5": 0x12345678}, {"r3": 0xFFFFFFFF}),
    ("nand. 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0xFFFFFFFF}, {"r3": 0, "cr": EQ}),
    ("nor 3,4,4", {}, {"r3": 0xFFFFFFFF}),                                      # not
    ("or 3,4,5", {"r4": 0x0F00, "r5": 0x00F0}, {"r3": 0x0FF0}),
    ("or. 3,4,5", {"xer": SO}, {"cr": EQ | SO0}),
    ("mr 3,4", {"r4": 0xDEADBEEF}, {"r3": 0xDEADBEEF}),
    ("mr. 3,4", {"r4": 0xDEADBEEF}, {"r3": 0xDEADBEEF, "cr": LT}),
    ("orc 3,4,5", {"r5": 0xFFFF0000}, {"r3": 0x0000FFFF}),
    ("xor 3,4,5", {"r4": 0xFF00FF00, "r5": 0x0FF00FF0}, {"r3": 0xF0F0F0F0}),
    ("xor. 3,4,4", {"r4": 0x1234}, {"r3": 0, "cr": EQ}),
    ("ori 3,4,0xffff", {"r4": 0x12340000}, {"r3": 0x1234FFFF}),
    ("oris 3,4,0xffff", {"r4": 0x1234}, {"r3": 0xFFFF1234}),
    ("xori 3,4,0xff", {"r4": 0x0F}, {"r3": 0xF0}),
    ("xoris 3,4,0x8000", {}, {"r3": 0x80000000}),
    ("andi. 3,4,0x8000", {"r4": 0xFFFFFFFF}, {"r3": 0x8000, "cr": GT}),            # zero-extended
    ("andi. 3,4,0", {"r4": 0xFFFFFFFF, "xer": SO}, {"r3": 0, "cr": EQ | SO0}),
    ("andis. 3,4,0x8000", {"r4": 0xFFFFFFFF}, {"r3": 0x80000000, "cr": LT}),
    ("nop", {"r0": 1}, {}),
    ("cntlzw 3,4", {}, {"r3": 32}),
    ("cntlzw 3,4", {"r4": 1}, {"r3": 31}),
    ("cntlzw. 3,4", {"r4": 0x80000000}, {"r3": 0, "cr": EQ}),
    ("cntlzw. 3,4", {"r4": 0}, {"r3": 32, "cr": GT}),
    ("extsb 3,4", {"r4": 0x80}, {"r3": 0xFFFFFF80}),
    ("extsb 3,4", {"r4": 0x1234567F}, {"r3": 0x7F}),
    ("extsb. 3,4", {"r4": 0xFF}, {"r3": 0xFFFFFFFF, "cr": LT}),
    ("extsh 3,4", {"r4": 0x8000}, {"r3": 0xFFFF8000}),
    ("extsh. 3,4", {"r4": 0xFFFF7FFF}, {"r3": 0x7FFF, "cr": GT}),
    ("slw 3,4,5", {"r4": 1, "r5": 31}, {"r3": 0x80000000}),
    ("slw 3,4,5", {"r4": 1, "r5": 32}, {"r3": 0}),                 # rB[26:31] = 32 -> 0
    ("slw 3,4,5", {"r4": 1, "r5": 64}, {"r3": 1}),                 # only 6 bits of rB count
    ("slw. 3,4,5", {"r4": 3, "r5": 31}, {"r3": 0x80000000, "cr": LT}),
    ("srw 3,4,5", {"r4": 0x80000000, "r5": 31}, {"r3": 1}),
    ("srw 3,4,5", {"r4": 0x80000000, "r5": 63}, {"r3": 0}),
    ("sraw 3,4,5", {"r4": 0x80000000, "r5": 31}, {"r3": 0xFFFFFFFF}),   # only zeros shifted out
    ("sraw 3,4,5", {"r4": 0x80000001, "r5": 31}, {"r3": 0xFFFFFFFF, "xer": CA}),
    ("sraw 3,4,5", {"r4": 0x80000000, "r5": 32}, {"r3": 0xFFFFFFFF, "xer": CA}),
    ("sraw 3,4,5", {"r4": 0x7FFFFFFF, "r5": 32, "xer": CA}, {"r3": 0, "xer": 0}),
    ("sraw 3,4,5", {"r4": 0xFFFFFFFE, "r5": 1}, {"r3": 0xFFFFFFFF}),   # only zeros shifted out
    ("sraw 3,4,5", {"r4": 0xFFFFFFFF, "r5": 0, "xer": CA}, {"r3": 0xFFFFFFFF, "xer": 0}),
    ("sraw. 3,4,5", {"r4": 3, "r5": 1}, {"r3": 1, "cr": GT}),
    ("srawi 3,4,4", {"r4": 0xFFFFFFF0}, {"r3": 0xFFFFFFFF}),
    ("srawi 3,4,4", {"r4": 0xFFFFFFF1}, {"r3": 0xFFFFFFFF, "xer": CA}),
    ("srawi. 3,4,0", {"r4": 0x80000000, "xer": CA}, {"r3": 0x80000000, "xer": 0, "cr": LT}),
    ("rotlwi 3,4,8", {"r4": 0x12345678}, {"r3": 0x34567812}),
    ("clrlwi 3,4,24", {"r4": 0x12345678}, {"r3": 0x78}),
    ("slwi 3,4,4", {"r4": 0x12345678}, {"r3": 0x23456780}),
    ("srwi 3,4,4", {"r4": 0x12345678}, {"r3": 0x01234567}),
    ("clrrwi 3,4,2", {"r4": 0xFFFFFFFF}, {"r3": 0xFFFFFFFC}),
    ("rlwinm 3,4,0,31,0", {"r4": 0xFFFFFFFF}, {"r3": 0x80000001}),          # wrapping mask
    ("rlwinm. 3,4,0,0,0", {"r4": 0x80000000}, {"r3": 0x80000000, "cr": LT}),
    ("rlwimi 3,4,8,16,23", {"r3": 0xAAAAAAAA, "r4": 0xFF}, {"r3": 0xAAAAFFAA}),
    ("rlwimi. 3,4,0,0,31", {"r3": 0xAAAAAAAA, "r4": 0}, {"r3": 0, "cr": EQ}),
    ("rlwnm 3,4,5,0,31", {"r4": 0x80000001, "r5": 33}, {"r3": 3}),            # rB & 31 = 1
    ("rlwnm. 3,4,5,28,31", {"r4": 0xF0000000, "r5": 4}, {"r3": 0xF, "cr": GT}),
    ("rotlw 3,4,5", {"r4": 0x12345678, "r5": 0}, {"r3": 0x12345678}),
]

COMPARE_AND_CR: list[Case] = [
    ("cmpw 3,4", {"r3": 0xFFFFFFFF, "r4": 1, "cr": 0xFFFFFFFF}, {"cr": 0x8FFFFFFF}),
    ("cmplw 3,4", {"r3": 0xFFFFFFFF, "r4": 1}, {"cr": GT}),
    ("cmpw 7,3,4", {"r3": 5, "r4": 5, "xer": SO}, {"cr": 0x3}),
    ("cmpwi 3,-1", {"r3": 0xFFFFFFFF}, {"cr": EQ}),
    ("cmpwi 2,3,0", {"r3": 0x80000000}, {"cr": 0x00800000}),
    ("cmplwi 1,3,0xffff", {"r3": 0x10000}, {"cr": 0x04000000}),
    ("cmplwi 3,0xffff", {"r3": 0xFFFF}, {"cr": EQ}),                            # UIMM not sign-extended
    ("cmpwi 3,-32768", {"r3": 0x7FFFFFFF}, {"cr": GT}),
    ("cmpwi 3,0", {"r3": 0, "cr": 0xF0000000, "xer": SO}, {"cr": EQ | SO0}),
    ("crand 0,1,2", {"cr": 0x60000000}, {"cr": 0xE0000000}),
    ("crand 0,1,2", {"cr": 0xC0000000}, {"cr": 0x40000000}),
    ("crandc 31,1,2", {"cr": 0x40000000}, {"cr": 0x40000001}),
    ("creqv 5,5,5", {}, {"cr": 0x04000000}),
    ("crnand 0,0,0", {"cr": 0x80000000}, {"cr": 0}),
    ("crnor 3,4,5", {}, {"cr": 0x10000000}),
    ("cror 10,0,31", {"cr": 1}, {"cr": 0x00200001}),
    ("crorc 0,1,2", {}, {"cr": 0x80000000}),
    ("crxor 6,6,6", {"cr": 0xFFFFFFFF}, {"cr": 0xFDFFFFFF}),
    ("mcrf 7,0", {"cr": 0xA0000000}, {"cr": 0xA000000A}),
    ("mcrf 0,7", {"cr": 0x0000000F}, {"cr": 0xF000000F}),
    ("mcrxr 2", {"xer": 0xE000007F}, {"cr": 0x00E00000, "xer": 0x7F}),
    ("mfcr 3", {"cr": 0x12345678}, {"r3": 0x12345678}),
    ("mfocrf 3,0x20", {"cr": 0x12345678, "r3": 0xFFFFFFFF}, {"r3": 0x00300000}),   # field 2 only
    (0x7C700026 | (0x30 << 12), {"cr": 0x12345678, "r3": 0xDEAD}, {}),   # mfocrf naming 2 fields: no-op
    ("mtcrf 0xff,3", {"r3": 0x12345678}, {"cr": 0x12345678}),
    ("mtcrf 0x81,3", {"r3": 0xFFFFFFFF}, {"cr": 0xF000000F}),
    ("mtocrf 0x20,3", {"r3": 0xFFFFFFFF}, {"cr": 0x00F00000}),
    (0x7C700120 | (0x21 << 12), {"r3": 0xFFFFFFFF}, {}),                  # mtocrf naming 2 fields: no-op
    ("isel 3,4,5,2", {"cr": EQ, "r4": 1, "r5": 2}, {"r3": 1}),
    ("isel 3,4,5,2", {"r4": 1, "r5": 2}, {"r3": 2}),
    ("isel 3,0,5,0", {"cr": LT, "r0": 9, "r5": 2}, {"r3": 0}),                  # rA=0 reads as 0
    ("isel 3,4,5,31", {"cr": 1, "r4": 1, "r5": 2}, {"r3": 1}),
]

BRANCHES: list[Case] = [
    ("b .+8", {}, {"pc": PC + 8}),
    ("b .-4", {}, {"pc": PC - 4}),
    ("ba 0x100", {}, {"pc": 0x100}),
    (0x4BFFFE02, {}, {"pc": 0xFFFFFE00}),                                       # ba -0x200
    ("bl .+16", {}, {"pc": PC + 16, "lr": PC + 4}),
    ("bla 0x200", {}, {"pc": 0x200, "lr": PC + 4}),
    ("beq .+8", {"cr": EQ}, {"pc": PC + 8}),
    ("beq .+8", {}, {"pc": PC + 4}),
    ("beq .-8", {"cr": EQ}, {"pc": PC - 8}),
    ("bne .+8", {}, {"pc": PC + 8}),
    ("bgt 1,.+8", {"cr": 0x04000000}, {"pc": PC + 8}),
    ("bdnz .+8", {"ctr": 2}, {"pc": PC + 8, "ctr": 1}),
    ("bdnz .+8", {"ctr": 1}, {"pc": PC + 4, "ctr": 0}),
    ("bdnz .+8", {"ctr": 0}, {"pc": PC + 8, "ctr": 0xFFFFFFFF}),
    ("bdz .+8", {"ctr": 1}, {"pc": PC + 8, "ctr": 0}),
    ("bdnzt 2,.+8", {"ctr": 2, "cr": EQ}, {"pc": PC + 8, "ctr": 1}),
    ("bdnzt 2,.+8", {"ctr": 2}, {"pc": PC + 4, "ctr": 1}),
    ("bdzf 2,.+8", {"ctr": 1}, {"pc": PC + 8, "ctr": 0}),
    ("bdzf 2,.+8", {"ctr": 1, "cr": EQ}, {"pc": PC + 4, "ctr": 0}),
    ("bcl 20,31,.+4", {}, {"pc": PC + 4, "lr": PC + 4}),
    ("bcla 12,2,0x40", {"cr": EQ}, {"pc": 0x40, "lr": PC + 4}),
    ("bnel .+8", {"cr": EQ}, {"pc": PC + 4, "lr": PC + 4}),                      # LR set even if not taken
    ("blr", {"lr": 0x2003}, {"pc": 0x2000}),
    ("blrl", {"lr": 0x2000}, {"pc": 0x2000, "lr": PC + 4}),
    ("beqlr", {"lr": 0x2000, "cr": EQ}, {"pc": 0x2000}),
    ("beqlr", {"lr": 0x2000}, {"pc": PC + 4}),
    ("bdnzlr", {"lr": 0x2000, "ctr": 1}, {"pc": PC + 4, "ctr": 0}),
    ("bdnzlr", {"lr": 0x2000, "ctr": 5}, {"pc": 0x2000, "ctr": 4}),
    ("bctr", {"ctr": 0x3001}, {"pc": 0x3000}),
    ("bctrl", {"ctr": 0x3000}, {"pc": 0x3000, "lr": PC + 4}),
    ("bnectr", {"ctr": 0x3000, "cr": EQ}, {"pc": PC + 4}),
]

TRAPS: list[tuple[str, dict[str, Any], bool]] = [
    ("trap", {}, True),
    ("tweq 3,4", {"r3": 5, "r4": 5}, True),
    ("tweq 3,4", {"r3": 5, "r4": 6}, False),
    ("twlt 3,4", {"r3": 0xFFFFFFFF, "r4": 0}, True),
    ("twllt 3,4", {"r3": 0xFFFFFFFF, "r4": 0}, False),
    ("twlgt 3,4", {"r3": 0xFFFFFFFF, "r4": 0}, True),
    ("twgt 3,4", {"r3": 0xFFFFFFFF, "r4": 0}, False),
    ("twgti 3,5", {"r3": 6}, True),
    ("twgti 3,5", {"r3": 5}, False),
    ("twi 0,3,0", {}, False),
    ("twnei 3,0", {"r3": 0}, False),
    ("twnei 3,0", {"r3": 1}, True),
    ("twlti 3,-1", {"r3": 0xFFFFFFFE}, True),
]

MEMORY = bytes.fromhex("11223344 55667788 80018002 99aabbcc")

LOADS_STORES: list[Case] = [
    ("lwz 3,4(4)", {"r4": DATA}, {"r3": 0x55667788}),
    ("lwz 3,-4(4)", {"r4": DATA + 8}, {"r3": 0x55667788}),
    ("lwz 3,0x2004(0)", {"r0": 0x100}, {"r3": 0x55667788}),
    ("lwzu 3,4(4)", {"r4": DATA}, {"r3": 0x55667788, "r4": DATA + 4}),
    ("lwzx 3,4,5", {"r4": DATA, "r5": 4}, {"r3": 0x55667788}),
    ("lwzx 3,0,5", {"r0": 0x100, "r5": DATA}, {"r3": 0x11223344}),
    ("lwzux 3,4,5", {"r4": DATA, "r5": 4}, {"r3": 0x55667788, "r4": DATA + 4}),
    ("lbz 3,1(4)", {"r4": DATA}, {"r3": 0x22}),
    ("lbzu 3,8(4)", {"r4": DATA}, {"r3": 0x80, "r4": DATA + 8}),
    ("lbzx 3,4,5", {"r4": DATA, "r5": 15}, {"r3": 0xCC}),
    ("lbzux 3,4,5", {"r4": DATA, "r5": 3}, {"r3": 0x44, "r4": DATA + 3}),
    ("lhz 3,2(4)", {"r4": DATA}, {"r3": 0x3344}),
    ("lhzu 3,8(4)", {"r4": DATA}, {"r3": 0x8001, "r4": DATA + 8}),
    ("lhzx 3,4,5", {"r4": DATA, "r5": 10}, {"r3": 0x8002}),
    ("lhzux 3,4,5", {"r4": DATA, "r5": 1}, {"r3": 0x2233, "r4": DATA + 1}),     # misaligned is fine
    ("lha 3,8(4)", {"r4": DATA}, {"r3": 0xFFFF8001}),
    ("lha 3,0(4)", {"r4": DATA}, {"r3": 0x1122}),
    ("lhau 3,10(4)", {"r4": DATA}, {"r3": 0xFFFF8002, "r4": DATA + 10}),
    ("lhax 3,4,5", {"r4": DATA, "r5": 8}, {"r3": 0xFFFF8001}),
    ("lhaux 3,4,5", {"r4": DATA, "r5": 8}, {"r3": 0xFFFF8001, "r4": DATA + 8}),
    ("lhbrx 3,4,5", {"r4": DATA, "r5": 0}, {"r3": 0x2211}),
    ("lwbrx 3,4,5", {"r4": DATA, "r5": 0}, {"r3": 0x44332211}),
    ("lmw 29,0(4)", {"r4": DATA + 4}, {"r29": 0x55667788, "r30": 0x80018002, "r31": 0x99AABBCC}),
    (0xB8630008, {"r3": DATA}, {"r3": 0x80018002, "r4": 0x99AABBCC,  # lmw 3,8(3)
                                  **{f"r{n}": 0 for n in range(5, 32)}}),     # rA in range: loaded value
    ("stw 3,4(4)", {"r3": 0xDEADBEEF, "r4": DATA}, {"mem": {DATA + 4: "deadbeef"}}),
    ("stwu 1,-16(1)", {"r1": DATA + 16}, {"r1": DATA, "mem": {DATA: f"{DATA + 16:08x}"}}),  # old rA stored
    ("stwx 3,4,5", {"r3": 0x01020304, "r4": DATA, "r5": 12}, {"mem": {DATA + 12: "01020304"}}),
    ("stwux 3,4,5", {"r3": 0x01020304, "r4": DATA, "r5": 12},
     {"r4": DATA + 12, "mem": {DATA + 12: "01020304"}}),
    ("stb 3,0(4)", {"r3": 0x12345678, "r4": DATA}, {"mem": {DATA: "78223344"}}),
    ("stbu 3,1(4)", {"r3": 0x12345678, "r4": DATA}, {"r4": DATA + 1, "mem": {DATA: "11783344"}}),
    ("stbx 3,4,5", {"r3": 0xAB, "r4": DATA, "r5": 3}, {"mem": {DATA: "112233ab"}}),
    ("stbux 3,4,5", {"r3": 0xAB, "r4": DATA, "r5": 2}, {"r4": DATA + 2, "mem": {DATA: "1122ab44"}}),
    ("sth 3,2(4)", {"r3": 0x12345678, "r4": DATA}, {"mem": {DATA: "11225678"}}),
    ("sthu 3,2(4)", {"r3": 0x12345678, "r4": DATA}, {"r4": DATA + 2, "mem": {DATA: "11225678"}}),
    ("sthx 3,4,5", {"r3": 0xBEEF, "r4": DATA, "r5": 1}, {"mem": {DATA: "11beef44"}}),
    ("sthux 3,4,5", {"r3": 0xBEEF, "r4": DATA, "r5": 1}, {"r4": DATA + 1, "mem": {DATA: "11beef44"}}),
    ("sthbrx 3,4,5", {"r3": 0x12345678, "r4": DATA, "r5": 0}, {"mem": {DATA: "78563344"}}),
    ("stwbrx 3,4,5", {"r3": 0x12345678, "r4": DATA, "r5": 0}, {"mem": {DATA: "78563412"}}),
    ("stmw 30,0(4)", {"r4": DATA, "r30": 0xA1A2A3A4, "r31": 0xB1B2B3B4},
     {"mem": {DATA: "a1a2a3a4b1b2b3b4"}}),
    ("lwarx 3,4,5", {"r4": DATA, "r5": 4}, {"r3": 0x55667788, "reservation": DATA + 4}),
    ("stwcx. 3,0,4", {"r3": 0xCAFEF00D, "r4": DATA, "reservation": DATA},
     {"cr": EQ, "reservation": None, "mem": {DATA: "cafef00d"}}),
    ("stwcx. 3,0,4", {"r3": 0xCAFEF00D, "r4": DATA, "xer": SO, "cr": 0xFFFFFFFF},
     {"cr": 0x1FFFFFFF, "mem": {DATA: "11223344"}}),                            # no reservation: no store
    ("stwcx. 3,0,4", {"r3": 0xCAFEF00D, "r4": DATA, "reservation": DATA + 4},
     {"cr": 0, "reservation": None, "mem": {DATA: "11223344", DATA + 4: "55667788"}}),
]

ALL_TEXT = sorted({case[0] for table in (ARITHMETIC, LOGICAL, COMPARE_AND_CR, BRANCHES, LOADS_STORES)
                   for case in table if isinstance(case[0], str)} | {case[0] for case in TRAPS})
WORDS = dict(zip(ALL_TEXT, assemble_lines(tuple(ALL_TEXT)), strict=True))


def _word(instruction: str | int) -> int:
    return instruction if isinstance(instruction, int) else WORDS[instruction]


def _cpu(setup: dict[str, Any]) -> FlatCpu:
    cpu = FlatCpu()
    cpu.memory[DATA:DATA + len(MEMORY)] = MEMORY
    for name, value in setup.items():
        if name.startswith("r") and name[1:].isdigit():
            cpu.gpr[int(name[1:])] = value
        else:
            setattr(cpu, name, value)
    return cpu


def _run_case(instruction: str | int, setup: dict[str, Any], expected: dict[str, Any]) -> None:
    cpu = _cpu(setup)
    before = _cpu(setup)
    word = _word(instruction)
    cpu.store32(PC, word)
    next_pc = cpu.step(PC)
    assert next_pc == expected.get("pc", PC + 4), f"pc 0x{next_pc:08x}"
    for n in range(32):
        want = expected.get(f"r{n}", before.gpr[n])
        assert cpu.gpr[n] == want, f"r{n} = 0x{cpu.gpr[n]:08x}, expected 0x{want:08x}"
    for name in ("cr", "xer", "lr", "ctr", "reservation"):
        want = expected.get(name, getattr(before, name))
        got = getattr(cpu, name)
        assert got == want, f"{name} = {got if got is None else hex(got)}, expected {want}"
    for address, data in expected.get("mem", {}).items():
        assert cpu.memory[address:address + len(data) // 2].hex() == data
    before.store32(PC, word)
    untouched = [a for a in range(0, len(cpu.memory), 4)
                 if cpu.memory[a:a + 4] != before.memory[a:a + 4]
                 and not any(start <= a < start + len(data) // 2
                             for start, data in expected.get("mem", {}).items())]
    assert untouched == [], f"unexpected stores at {[hex(a) for a in untouched]}"


def _ids(table: list[Case]) -> list[str]:
    return [f"{case[0] if isinstance(case[0], str) else hex(case[0])}-{index}"
            for index, case in enumerate(table)]


@pytest.mark.parametrize(("instruction", "setup", "expected"), ARITHMETIC, ids=_ids(ARITHMETIC))
def test_arithmetic(instruction: str, setup: dict[str, Any], expected: dict[str, Any]) -> None:
    _run_case(instruction, setup, expected)


@pytest.mark.parametrize(("instruction", "setup", "expected"), LOGICAL, ids=_ids(LOGICAL))
def test_logical_shift_rotate(instruction: str, setup: dict[str, Any], expected: dict[str, Any]) -> None:
    _run_case(instruction, setup, expected)


@pytest.mark.parametrize(("instruction", "setup", "expected"), COMPARE_AND_CR, ids=_ids(COMPARE_AND_CR))
def test_compare_and_cr(instruction: str, setup: dict[str, Any], expected: dict[str, Any]) -> None:
    _run_case(instruction, setup, expected)


@pytest.mark.parametrize(("instruction", "setup", "expected"), BRANCHES, ids=_ids(BRANCHES))
def test_branches(instruction: str, setup: dict[str, Any], expected: dict[str, Any]) -> None:
    _run_case(instruction, setup, expected)


@pytest.mark.parametrize(("instruction", "setup", "expected"), LOADS_STORES, ids=_ids(LOADS_STORES))
def test_loads_and_stores(instruction: str, setup: dict[str, Any], expected: dict[str, Any]) -> None:
    _run_case(instruction, setup, expected)


@pytest.mark.parametrize(("instruction", "setup", "traps"), TRAPS)
def test_traps(instruction: str, setup: dict[str, Any], traps: bool) -> None:
    cpu = _cpu(setup)
    cpu.store32(PC, _word(instruction))
    if traps:
        with pytest.raises(Interrupt) as caught:
            cpu.step(PC)
        assert (caught.value.ivor, caught.value.esr) == (IVOR_PROGRAM, ESR_PTR)
    else:
        assert cpu.step(PC) == PC + 4


ILLEGAL_FORMS = {
    "lwzu rA=rD": 0x84840004,
    "lwzu rA=0": 0x84600004,
    "lbzux rA=rD": 0x7C6318EE,
    "stwu rA=0": 0x94600004,
    "sthux rA=0": 0x7C60236E,
    "cmp L=1": 0x7C232000,
    "cmpli L=1": 0x28230001,
    "mulhwo": 0x7C642E96,
    "bcctr decrementing CTR": 0x4E000420,
    "all zeros": 0x00000000,
    "primary 1": 0x04000000,
    "op 31 unknown xo 1": 0x7C000002,
}


@pytest.mark.parametrize("word", ILLEGAL_FORMS.values(), ids=ILLEGAL_FORMS.keys())
def test_invalid_forms_are_illegal_instructions(word: int) -> None:
    cpu = _cpu({"r3": 7, "r4": DATA})
    cpu.store32(PC, word)
    with pytest.raises(Interrupt) as caught:
        cpu.step(PC)
    assert (caught.value.ivor, caught.value.esr) == (IVOR_PROGRAM, ESR_PIL)
    assert cpu.gpr[3] == 7 and cpu.gpr[4] == DATA


@pytest.mark.parametrize(("instruction", "is_store"), [
    ("lwarx 3,0,4", False), ("stwcx. 3,0,4", True), ("lmw 30,0(4)", False), ("stmw 30,0(4)", True)])
def test_misaligned_atomic_and_multiple_raise_alignment(instruction: str, is_store: bool) -> None:
    cpu = _cpu({"r4": DATA + 2, "reservation": DATA + 2})
    cpu.store32(PC, assemble_lines((instruction,))[0])
    with pytest.raises(Interrupt) as caught:
        cpu.step(PC)
    assert caught.value.ivor == IVOR_ALIGNMENT
    assert caught.value.dear == DATA + 2
    assert caught.value.esr == (ESR_ST if is_store else 0)
    assert cpu.gpr[30] == 0 and cpu.memory[DATA:DATA + 16] == MEMORY


@pytest.mark.parametrize("instruction", ["lwzu 3,0(4)", "lhaux 3,4,5", "lmw 20,0(4)", "lwarx 3,4,5"])
def test_faulting_load_writes_no_register(instruction: str) -> None:
    outside = 0x00FFFF00   # beyond FlatCpu's 64 KiB
    cpu = _cpu({"r3": 0x33, "r4": outside, "r5": 0, "r20": 0x20})
    cpu.store32(PC, assemble_lines((instruction,))[0])
    with pytest.raises(Interrupt) as caught:
        cpu.step(PC)
    assert caught.value.ivor == IVOR_DATA_STORAGE
    assert (cpu.gpr[3], cpu.gpr[4], cpu.gpr[20], cpu.reservation) == (0x33, outside, 0x20, None)


def test_stmw_stores_every_register_to_the_top() -> None:
    cpu = _cpu({f"r{n}": 0x1000 * n + n for n in range(32)} | {"r1": DATA})
    cpu.store32(PC, assemble_lines(("stmw 20,0(1)",))[0])
    cpu.step(PC)
    assert [cpu.load32(DATA + 4 * i) for i in range(12)] == [0x1000 * n + n for n in range(20, 32)]


def test_lwarx_then_stwcx_sequence_and_lost_reservation() -> None:
    cpu = FlatCpu()
    cpu.gpr[4] = DATA
    cpu.store32(DATA, 41)
    # Atomic increment: lwarx; addi; stwcx.; then a second stwcx. fails (reservation consumed).
    program = assemble_lines(("lwarx 3,0,4", "addi 3,3,1", "stwcx. 3,0,4", "mfcr 5", "stwcx. 4,0,4",
                              "mfcr 6"))
    cpu.run(list(program), address=PC)
    assert cpu.load32(DATA) == 42
    assert cpu.gpr[5] == EQ and cpu.gpr[6] == 0


def test_loop_with_bdnz_counts_down() -> None:
    cpu = FlatCpu()
    cpu.ctr = 10
    program = assemble_lines(("li 3,0", "addi 3,3,3", "bdnz .-4"))
    cpu.run(list(program), address=PC)
    assert (cpu.gpr[3], cpu.ctr, cpu.instructions) == (30, 0, 21)


def test_decoder_mnemonics_models_and_cycles() -> None:
    assert decoder.mnemonic(WORDS["addo. 3,4,5"]) == "add"
    assert decoder.mnemonic(WORDS["stwcx. 3,0,4"]) == "stwcx."
    assert decoder.mnemonic(WORDS["isel 3,4,5,2"]) == "isel"
    assert decoder.mnemonic(0) is None
    assert decoder.models_for(WORDS["lwz 3,4(4)"]) == frozenset({"e500v2", "e500mc"})
    spec, _handler, cycles = decoder.decode(WORDS["divw 3,4,5"], "e500v2")
    assert spec is not None and spec.mnemonic == "divw" and cycles == spec.cycles > 1
    assert decoder.decode(WORDS["lwz 3,4(4)"], "e500mc")[2] > decoder.decode(WORDS["add 3,4,5"], "e500mc")[2]
    assert decoder.decode(WORDS["add 3,4,5"], "no-such-core")[1] is isa.illegal
    assert decoder.disassemble(WORDS["addo. 3,4,5"]).startswith("addo. 3,4,5")


def test_every_integer_spec_decodes_to_itself() -> None:
    from emulator.ops_integer import SPECS

    for spec in SPECS:
        word = spec.primary << 26
        if spec.xo is not None:
            word |= spec.xo << 1   # the A-form XO sits in the low 5 bits of the same field
        word |= (3 << 21) | (4 << 16) | (5 << 11)   # rA != 0 and != rD so update forms are valid
        assert decoder.lookup(word) is spec, spec.mnemonic
        assert spec.available_on("e500v2") and spec.available_on("e500mc")


def test_privileged_wrapper_raises_ppr_in_problem_state() -> None:
    calls = []

    def supervisor_only(cpu: isa.HandlerCpu, pc: int) -> int:
        calls.append(pc)
        return pc + 4

    wrapped = isa.privileged_only(supervisor_only)
    cpu = FlatCpu()
    assert wrapped(cpu, PC) == PC + 4
    cpu.msr = 0x4000
    with pytest.raises(Interrupt) as caught:
        wrapped(cpu, PC)
    assert (caught.value.ivor, caught.value.esr, calls) == (IVOR_PROGRAM, ESR_PPR, [PC])

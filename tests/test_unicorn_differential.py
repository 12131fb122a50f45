"""Differential test: random user-level integer instruction sequences on Unicorn (QEMU's e500v2) and on
this project's ISA (emulator.isa through FlatCpu), comparing GPRs, CR, XER, LR, CTR and memory.

Sequences mix every arithmetic/logical/rotate/compare/CR instruction with every OE/Rc form, loads and
stores (D-form, indexed, update, byte-reversed, stmw, lmw last), lwarx/stwcx. blocks, forward
conditional branches (all BO values, LK) and, in some sequences, bclr/bcctr to the end and a final
tw/twi. Register conventions keep memory accesses inside a scratch area: r29 is a stable aligned base,
r30 a small aligned index, r31 a base that update forms move; random destinations are r0..r28.

Unicorn quirk: its XER register id reads/writes only the low XER bits (SO/OV/CA live apart inside
QEMU), so XER is set with a `mtxer` prologue and read with an `mfxer` epilogue run on Unicorn only.
Seeded and reproducible (E500_DIFF_SEED, E500_DIFF_INSTRUCTIONS override the defaults).
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass

from unicorn import UC_ARCH_PPC, UC_HOOK_INTR, UC_MODE_BIG_ENDIAN, UC_MODE_PPC32, Uc
from unicorn import ppc_const as uc_ppc

from emulator.decoder import disassemble, mnemonic
from emulator.exceptions import ESR_PTR, IVOR_PROGRAM, Interrupt
from emulator.ops_integer import SPECS
from tests.support.flatcpu import FlatCpu

MEMORY_SIZE = 0x40000
SCRATCH_END = 0x30000          # memory compared after every sequence (code lives above it)
CODE = 0x30000
PROLOGUE = 0x3F000             # mtxer r0
EPILOGUE = 0x3F100             # mfxer r0
STABLE_BASE = 0x20000          # r29
MOVING_BASE_START = 0x20000    # r31
SEED = int(os.environ.get("E500_DIFF_SEED", "500"))
TARGET_INSTRUCTIONS = int(os.environ.get("E500_DIFF_INSTRUCTIONS", "120000"))
SEQUENCE_LENGTH = 120
M = 0xFFFFFFFF

EDGE_VALUES = [0, 1, 2, 3, 31, 32, 33, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFF8000, 0x55555555]
XER_FLAGS = [0, 0x20000000, 0x40000000, 0x80000000, 0xC0000000, 0xA0000000, 0xE0000000, 0x60000000]

XO_ARITHMETIC = {"add": (266, True), "addc": (10, True), "adde": (138, True), "addme": (234, False),
                 "addze": (202, False), "subf": (40, True), "subfc": (8, True), "subfe": (136, True),
                 "subfme": (232, False), "subfze": (200, False), "neg": (104, False),
                 "mullw": (235, True), "divw": (491, True), "divwu": (459, True)}
X_LOGICAL = {"and": 28, "andc": 60, "eqv": 284, "nand": 476, "nor": 124, "or": 444, "orc": 412,
             "xor": 316, "slw": 24, "srw": 536, "sraw": 792}
X_UNARY = {"cntlzw": 26, "extsb": 954, "extsh": 922}
CR_LOGICAL = [33, 129, 193, 225, 257, 289, 417, 449]
D_LOAD_STORE = [32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45]      # lwz .. sthu
UPDATE_D = {33, 35, 37, 39, 41, 43, 45}
X_LOAD_STORE = [23, 55, 87, 119, 151, 183, 215, 247, 279, 311, 343, 375, 407, 439, 534, 790, 662, 918]
UPDATE_X = {55, 119, 183, 247, 311, 375, 439}


def _xo(xo: int, rd: int, ra: int, rb: int, oe: int, rc: int) -> int:
    return (31 << 26) | (rd << 21) | (ra << 16) | (rb << 11) | (oe << 10) | (xo << 1) | rc


def _x(xo: int, rs: int, ra: int, rb: int, rc: int = 0, primary: int = 31) -> int:
    return (primary << 26) | (rs << 21) | (ra << 16) | (rb << 11) | (xo << 1) | rc


def _d(primary: int, rd: int, ra: int, imm: int) -> int:
    return (primary << 26) | (rd << 21) | (ra << 16) | (imm & 0xFFFF)


class Generator:
    """Random instruction words following the register conventions of the module docstring."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def dest(self) -> int:
        return self.rng.randrange(29)

    def src(self) -> int:
        return self.rng.randrange(32)

    def imm16(self) -> int:
        rng = self.rng
        return rng.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, rng.randrange(0x10000)])

    def simple(self) -> int:
        """One non-branch, non-memory instruction."""
        rng = self.rng
        kind = rng.randrange(12)
        if kind <= 2:
            name = rng.choice(list(XO_ARITHMETIC))
            xo, uses_rb = XO_ARITHMETIC[name]
            return _xo(xo, self.dest(), self.src(), self.src() if uses_rb else 0, rng.randrange(2),
                       rng.randrange(2))
        if kind == 3:
            return _xo(rng.choice([75, 11]), self.dest(), self.src(), self.src(), 0, rng.randrange(2))
        if kind == 4:   # D-form arithmetic, logical immediates, compares with immediates
            primary = rng.choice([7, 8, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 10, 11])
            if primary in (10, 11):
                return _d(primary, rng.randrange(8) << 2, self.src(), self.imm16())
            return _d(primary, self.dest() if primary < 24 else self.src(),
                      self.src() if primary < 24 else self.dest(), self.imm16())
        if kind == 5:
            return _x(rng.choice(list(X_LOGICAL.values())), self.src(), self.dest(), self.src(),
                      rng.randrange(2))
        if kind == 6:
            if rng.randrange(3) == 0:   # srawi
                return _x(824, self.src(), self.dest(), rng.randrange(32), rng.randrange(2))
            return _x(rng.choice(list(X_UNARY.values())), self.src(), self.dest(), 0, rng.randrange(2))
        if kind == 7:   # rlwimi / rlwinm / rlwnm
            primary = rng.choice([20, 21, 23])
            shift = self.src() if primary == 23 else rng.randrange(32)
            return ((primary << 26) | (self.src() << 21) | (self.dest() << 16) | (shift << 11)
                    | (rng.randrange(32) << 6) | (rng.randrange(32) << 1) | rng.randrange(2))
        if kind == 8:   # cmp / cmpl
            return _x(rng.choice([0, 32]), rng.randrange(8) << 2, self.src(), self.src())
        if kind == 9:   # CR logical and mcrf
            if rng.randrange(5) == 0:
                return _x(0, rng.randrange(8) << 2, rng.randrange(8) << 2, 0, primary=19)
            return _x(rng.choice(CR_LOGICAL), rng.randrange(32), rng.randrange(32), rng.randrange(32),
                      primary=19)
        if kind == 10:  # mfcr/mfocrf, mtcrf/mtocrf, mcrxr
            choice = rng.randrange(5)
            one_field = 1 << rng.randrange(8)
            fxm = one_field if rng.randrange(3) else rng.randrange(256)
            if choice == 0:
                return _x(19, self.dest(), 0, 0)
            if choice == 1:
                return _x(19, self.dest(), 0x10 | (fxm >> 4), (fxm & 0xF) << 1)
            if choice == 2:
                return _x(144, self.src(), fxm >> 4, (fxm & 0xF) << 1)
            if choice == 3:
                return _x(144, self.src(), 0x10 | (fxm >> 4), (fxm & 0xF) << 1)
            return _x(512, rng.randrange(8) << 2, 0, 0)
        # isel, tw/twi that never trap (TO=0)
        choice = rng.randrange(3)
        if choice == 0:
            return (31 << 26) | (self.dest() << 21) | (self.src() << 16) | (self.src() << 11) | (
                rng.randrange(32) << 6) | (15 << 1)
        if choice == 1:
            return _x(4, 0, self.src(), self.src())
        return _d(3, 0, self.src(), self.imm16())

    def memory(self) -> list[int]:
        rng = self.rng
        kind = rng.randrange(6)
        if kind <= 1:
            primary = rng.choice(D_LOAD_STORE)
            is_update = primary in UPDATE_D
            base = 31 if is_update else rng.choice([29, 31])
            displacement = rng.randrange(-0x40, 0x40) if is_update else rng.randrange(-0x200, 0x200)
            register = self.dest() if primary not in (36, 37, 38, 39, 44, 45) else self.src()
            return [_d(primary, register, base, displacement)]
        if kind <= 3:
            xo = rng.choice(X_LOAD_STORE)
            base = 31 if xo in UPDATE_X else rng.choice([0, 29, 31])
            is_store = xo in (151, 183, 215, 247, 407, 439, 662, 918)
            return [_x(xo, self.src() if is_store else self.dest(), base, 30)]
        if kind == 4:   # stmw
            return [_d(47, rng.randrange(32), 29, rng.randrange(-0x40, 0x40) * 4)]
        # lwarx ... stwcx. on the stable address, or a lone stwcx. (no reservation: fails)
        block = []
        if rng.randrange(4):
            block.append(_x(20, self.dest(), 29, 30))
            block.extend(self.simple() for _ in range(rng.randrange(3)))
        block.append(_x(150, self.src(), 29, 30, 1))
        return block


@dataclass
class Sequence:
    words: list[int]
    gpr: list[int]
    cr: int
    xer: int
    lr: int
    ctr: int
    memory: bytes


def make_sequence(rng: random.Random, generator: Generator) -> Sequence:
    returns_to_end = rng.randrange(4) == 0   # bclr/bcctr targets are LR = CTR = end
    words: list[int] = []
    branch_slots: list[int] = []
    while len(words) < SEQUENCE_LENGTH:
        roll = rng.randrange(20)
        if roll < 12:
            words.append(generator.simple())
        elif roll < 17:
            words.extend(generator.memory())
        elif roll < 19:
            branch_slots.append(len(words))
            words.append(0)   # patched below once the sequence length is known
        else:
            words.append(generator.simple())
    end = CODE + 4 * len(words)
    for slot in branch_slots:
        pc = CODE + 4 * slot
        skip = 8 if slot + 1 < len(words) else 4
        kind = rng.randrange(6)
        if returns_to_end and kind == 0:
            words[slot] = _x(16, rng.choice([4, 5, 12, 13, 20]), rng.randrange(32), 0, primary=19)
        elif returns_to_end and kind == 1:
            words[slot] = _x(528, rng.choice([4, 12, 20]), rng.randrange(32), 0, primary=19)
        elif kind == 2:
            words[slot] = (18 << 26) | (skip & 0x03FFFFFC) | (0 if returns_to_end else rng.randrange(2))
        else:
            bo = rng.randrange(32)
            if returns_to_end:
                bo |= 0x04     # no CTR decrement: CTR must stay = end for bcctr
            link = 0 if returns_to_end else rng.randrange(2)
            words[slot] = (16 << 26) | (bo << 21) | (rng.randrange(32) << 16) | skip | link
        assert pc + skip <= end
    if rng.randrange(4) == 0:   # lmw as the last instruction (it overwrites the base registers)
        words.append(_d(46, rng.randrange(32), 29, rng.randrange(-0x40, 0x40) * 4))
    elif rng.randrange(3) == 0:   # a final trap that may or may not fire
        to = rng.randrange(32)
        words.append(_x(4, to, generator.src(), generator.src()) if rng.randrange(2)
                     else _d(3, to, generator.src(), generator.imm16()))
    end = CODE + 4 * len(words)
    gpr = [rng.choice(EDGE_VALUES) if rng.randrange(2) else rng.getrandbits(32) for _ in range(32)]
    gpr[29] = STABLE_BASE
    gpr[30] = rng.randrange(0x40) * 4
    gpr[31] = MOVING_BASE_START
    lr = end if returns_to_end else rng.getrandbits(32)
    ctr = end if returns_to_end else rng.choice([0, 1, 2, 3, rng.getrandbits(32)])
    memory = rng.randbytes(SCRATCH_END)
    return Sequence(words, gpr, rng.getrandbits(32), rng.choice(XER_FLAGS), lr, ctr, memory)


@dataclass
class Outcome:
    gpr: list[int]
    cr: int
    xer: int
    lr: int
    ctr: int
    trapped: bool
    memory: bytes


class UnicornRunner:
    def __init__(self) -> None:
        self.uc = Uc(UC_ARCH_PPC, UC_MODE_PPC32 | UC_MODE_BIG_ENDIAN)
        self.uc.ctl_set_cpu_model(uc_ppc.UC_CPU_PPC32_E500V2_V30)
        self.uc.mem_map(0, MEMORY_SIZE)
        self.uc.mem_write(PROLOGUE, struct.pack(">I", 0x7C0103A6))   # mtxer r0
        self.uc.mem_write(EPILOGUE, struct.pack(">I", 0x7C0102A6))   # mfxer r0
        self.interrupts: list[int] = []
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)

    def _on_interrupt(self, uc: Uc, number: int, _user_data: object) -> None:
        self.interrupts.append(number)
        uc.emu_stop()

    def run(self, sequence: Sequence) -> Outcome:
        uc = self.uc
        code = b"".join(struct.pack(">I", word) for word in sequence.words)
        uc.mem_write(0, sequence.memory)
        uc.mem_write(CODE, code)
        uc.ctl_remove_cache(CODE, CODE + len(code) + 4)
        uc.reg_write(uc_ppc.UC_PPC_REG_0, sequence.xer)
        uc.emu_start(PROLOGUE, PROLOGUE + 4)
        for n, value in enumerate(sequence.gpr):
            uc.reg_write(uc_ppc.UC_PPC_REG_0 + n, value)
        uc.reg_write(uc_ppc.UC_PPC_REG_CR, sequence.cr)
        uc.reg_write(uc_ppc.UC_PPC_REG_LR, sequence.lr)
        uc.reg_write(uc_ppc.UC_PPC_REG_CTR, sequence.ctr)
        self.interrupts.clear()
        uc.emu_start(CODE, CODE + len(code), count=10 * len(sequence.words))
        trapped = bool(self.interrupts)
        gpr = [uc.reg_read(uc_ppc.UC_PPC_REG_0 + n) for n in range(32)]
        outcome = Outcome(gpr, uc.reg_read(uc_ppc.UC_PPC_REG_CR), 0, uc.reg_read(uc_ppc.UC_PPC_REG_LR),
                          uc.reg_read(uc_ppc.UC_PPC_REG_CTR), trapped, bytes(uc.mem_read(0, SCRATCH_END)))
        self.interrupts.clear()
        uc.emu_start(EPILOGUE, EPILOGUE + 4)
        outcome.xer = uc.reg_read(uc_ppc.UC_PPC_REG_0)
        return outcome


def run_flat(sequence: Sequence, cpu: FlatCpu) -> Outcome:
    cpu.memory[0:SCRATCH_END] = sequence.memory
    cpu.gpr[:] = sequence.gpr
    cpu.cr, cpu.xer, cpu.lr, cpu.ctr = sequence.cr, sequence.xer, sequence.lr, sequence.ctr
    cpu.reservation = None
    trapped = False
    try:
        cpu.run(sequence.words, address=CODE, max_steps=10 * len(sequence.words))
    except Interrupt as interrupt:
        assert (interrupt.ivor, interrupt.esr) == (IVOR_PROGRAM, ESR_PTR), "unexpected interrupt"
        trapped = True
    return Outcome(list(cpu.gpr), cpu.cr, cpu.xer, cpu.lr, cpu.ctr, trapped, bytes(cpu.memory[:SCRATCH_END]))


def _differences(expected: Outcome, got: Outcome) -> list[str]:
    lines = [f"r{n}: unicorn 0x{a:08x} ours 0x{b:08x}"
             for n, (a, b) in enumerate(zip(expected.gpr, got.gpr, strict=True)) if a != b]
    for name in ("cr", "xer", "lr", "ctr"):
        a, b = getattr(expected, name), getattr(got, name)
        if a != b:
            lines.append(f"{name}: unicorn 0x{a:08x} ours 0x{b:08x}")
    if expected.trapped != got.trapped:
        lines.append(f"trapped: unicorn {expected.trapped} ours {got.trapped}")
    if expected.memory != got.memory:
        first = next(i for i in range(SCRATCH_END) if expected.memory[i] != got.memory[i])
        lines.append(f"memory differs first at 0x{first:x}")
    return lines


def test_random_sequences_match_unicorn_e500v2() -> None:
    rng = random.Random(SEED)
    generator = Generator(rng)
    unicorn = UnicornRunner()
    cpu = FlatCpu(memory_size=MEMORY_SIZE)
    executed = sequences = traps = 0
    generated: set[str | None] = set()
    while executed < TARGET_INSTRUCTIONS:
        sequence = make_sequence(rng, generator)
        before = cpu.instructions
        expected = unicorn.run(sequence)
        got = run_flat(sequence, cpu)
        differences = _differences(expected, got)
        if differences:
            listing = "\n".join(f"  0x{CODE + 4 * i:08x}: {disassemble(word)}"
                                for i, word in enumerate(sequence.words))
            initial = " ".join(f"r{n}=0x{v:08x}" for n, v in enumerate(sequence.gpr))
            raise AssertionError(
                f"seed {SEED}, sequence {sequences} differs:\n" + "\n".join(differences)
                + f"\ninitial: {initial} cr=0x{sequence.cr:08x} xer=0x{sequence.xer:08x}"
                f" lr=0x{sequence.lr:08x} ctr=0x{sequence.ctr:08x}\n{listing}")
        executed += cpu.instructions - before
        generated.update(mnemonic(word) for word in sequence.words)
        sequences += 1
        traps += got.trapped
    print(f"unicorn differential: {executed} instructions in {sequences} sequences ({traps} trapped),"
          f" seed {SEED}")
    assert traps > 0 and sequences > 100
    assert {spec.mnemonic for spec in SPECS} <= generated, "instructions never generated"

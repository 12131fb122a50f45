"""Lockstep differential harness: one guest ELF under QEMU (the oracle) and under our e500 core.

Both machines boot the same ELF in QEMU's ``ppce500 -kernel`` state and are single-stepped together
(QEMU through its gdbstub, see tests/support/qemu_rsp.py; ours through ``machine.cpu.step()``).
After every step r0-r31, pc, msr, cr, lr, ctr and xer are compared; on the e500mc, after every FPU
instruction also the FPR it writes and the FPSCR; a set of SPRs is compared at checkpoints (after
interrupt entries, rfi and mtspr) and once after boot. The first difference is
reported with the step number, the instruction (objdump's disassembly plus our decoder's) and the
differing registers. A run ends when both power off.

Where QEMU 7.2 is known to differ from the e500 manual (reference e500-core.md section 9) the
harness does not treat the difference as ours to fix: every such case is listed ONCE, in
``QEMU_DEVIATIONS`` below, with the mask or rule that implements it. tests/test_lockstep_qemu.py
checks the manual's behaviour on our core for each of them.

Timers: QEMU's time base follows the host clock (no ``-icount``), ours follows the cycle counter, so
timer interrupts land on different instructions. Guests wait for timer interrupts on a single
self-branch (``b .``, see src/timer_asm.S) whose state does not change while it spins; the "idle
spin" rule lets whichever side is spinning run alone until its interrupt arrives. Time-base and DEC
reads are copied from QEMU into our core (rule "time reads"). QEMU is stepped with sstep flags
ENABLE only (not NOIRQ|NOTIMER, QEMU's default), otherwise its DEC never fires while stepping.

Imports: the standard library, emulator.board/emulator.isa (the core under test) and
tests/support/qemu_rsp.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from support.qemu_machine import QEMU_CPU
from support.qemu_rsp import CORE_REGISTER_NAMES, SSTEP_ENABLE, QemuExitedError, QemuGdb

# -- register indices in the compared block (QEMU's `g` order) --------------------------------------
PC_INDEX = CORE_REGISTER_NAMES.index("pc")
MSR_INDEX = CORE_REGISTER_NAMES.index("msr")

# -- instruction words and fields the rules look at ---------------------------------------------------
IDLE_SPIN_WORD = 0x48000000          # `b .`: a guest's wait-for-interrupt loop
PRIMARY_SHIFT = 26
OPCODE_31 = 31
OPCODE_19 = 19
XO_MFSPR = 339
XO_MTSPR = 467
XO_MFTB = 371
XO_EHPRIV = 270
XO_RFI = 50
XO_TLBWE = 978

MSR_CE = 0x00020000
MSR_ME = 0x00001000
MSR_DE = 0x00000200
SRR1_PROGRAM_TRAP_FLAG = 0x00020000      # QEMU's classic SRR1 reason bit for a trap
SRR1_PROGRAM_ILLEGAL_FLAG = 0x00080000   # ... and for an illegal instruction

SPR_DEC = 22
SPR_TBL = 268
SPR_TBU = 269
SPR_DBCR0 = 308
DBCR0_IDM = 0x40000000
DBCR0_IAC_DAC_TRAP = 0x01FF0000          # TRAP, IAC1-4, DAC1R/W, DAC2R/W

# Our model name -> QEMU's -cpu name. QEMU's plain "e500v2" alias is e500v2_v22 (PVR 0x80210022);
# our e500v2 (and the ppce500 machine's default CPU) is e500v2_v30.
QEMU_CPU_NAMES: dict[str, str] = QEMU_CPU

# SPR name (QEMU's power-spr.xml spelling) -> SPR number, for the SPRs the harness compares.
SPR_NUMBERS: dict[str, int] = {
    "srr0": 26, "srr1": 27, "csrr0": 58, "csrr1": 59, "dear": 61, "esr": 62, "ivpr": 63,
    "sprg0": 272, "sprg1": 273, "sprg2": 274, "sprg3": 275, "usprg0": 256, "pir": 286, "pvr": 287,
    "svr": 1023, "tcr": 340, "dbcr0": 308,
    "mas0": 624, "mas1": 625, "mas2": 626, "mas3": 627, "mas4": 628, "mas6": 630, "mas7": 944, "pid": 48,
    **{f"ivor{n}": 400 + n for n in range(16)},
}
CHECKPOINT_SPRS = ("srr0", "srr1", "esr", "ivpr", "sprg0", "sprg1", "sprg2", "sprg3", "tcr")
BOOT_SPRS = ("pvr", "pir", "ivpr", "esr", "tcr", "dbcr0", "mas0", "mas1", "mas2", "mas3", "mas4", "mas6",
             "pid", "usprg0")
IVOR_SPRS = tuple(f"ivor{n}" for n in range(16))


# =====================================================================================================
# Known QEMU deviations from the manual: the ONE place where they are listed and handled.
# =====================================================================================================
@dataclass(frozen=True)
class QemuDeviation:
    name: str
    manual: str       # what the e500 manual says (and our core does; checked by a unit test)
    qemu: str         # what QEMU 7.2 does instead
    handling: str     # what the harness does about it


QEMU_DEVIATIONS: tuple[QemuDeviation, ...] = (
    QemuDeviation(
        "interrupt_entry_msr",
        "non-critical interrupts keep MSR[CE], MSR[DE] and MSR[ME]",
        "only ME is kept (CE and DE are cleared)",
        "MSR[CE] and MSR[DE] are masked out of the MSR and SRR1/CSRR1 comparison"),
    QemuDeviation(
        "program_srr1_flags",
        "SRR1 is a plain copy of the MSR on a program interrupt",
        "ORs 0x00020000 (trap) / 0x00080000 (illegal) into SRR1; 0x00020000 is MSR[CE] once rfi restores it",
        "those bits are masked out of SRR1 compares, out of a GPR read from SRR1 by mfspr, and "
        "(with interrupt_entry_msr) MSR[CE] is not compared"),
    QemuDeviation(
        "dec_below_zero",
        "with TCR[ARE]=0 the decrementer stops at 0",
        "DEC keeps counting below zero",
        "DEC reads are time reads: QEMU's value is copied into our core (see TIME_READ_SPRS)"),
    QemuDeviation(
        "mtmsr_me",
        "mtmsr sets MSR[ME] like any other implemented bit",
        "MSR[ME] written by mtmsr reads back as 0",
        "MSR[ME] is masked out of the MSR and SRR1/CSRR1 comparison"),
    QemuDeviation(
        "ehpriv",
        "e500mc: ehpriv raises the embedded hypervisor privilege interrupt (IVOR41); e500v2: illegal",
        "program interrupt with ESR[PIL] on both models",
        "the comparison ends (reported as unsupported) when a guest executes ehpriv"),
    QemuDeviation(
        "debug_events",
        "IAC, DAC and TRAP debug events set DBSR and interrupt when DBCR0[IDM] and MSR[DE] are set",
        "not modelled: no DBSR bit, no debug interrupt, tw still gives a program interrupt",
        "the comparison ends (reported as unsupported) once the guest enables IDM with IAC/DAC/TRAP"),
    QemuDeviation(
        "fpscr_fr",
        "FPSCR[FR] is set when a rounded result's fraction was incremented (Power ISA 4.3.6)",
        "FR is never set",
        "FR is masked out of FPSCR compares and then copied from QEMU into our FPSCR (rule 'fpscr "
        "sync'), so that a later mffs reads the same value on both sides"),
    QemuDeviation(
        "single_denormal_class",
        "a single-precision result that is denormal in single format has FPRF class denormal "
        "(the frsp model of the Power ISA appendix)",
        "classifies it by its double format: normal",
        "FPRF's C bit (what tells denormal from normal) is not compared when our result is such a "
        "value, then copied from QEMU (rule 'fpscr sync')"),
    QemuDeviation(
        "compare_fi",
        "fcmpu and fcmpo alter only CR, FPCC, FX, VXSNAN and VXVC: FPSCR[FI] keeps its value",
        "clears FI",
        "FI is not compared after fcmpu/fcmpo, then copied from QEMU (rule 'fpscr sync')"),
    QemuDeviation(
        "fres_zero",
        "fres of +-0 gives +-infinity (and ZX, like a divide by zero)",
        "gives +-0.5 (with ZX)",
        "when we give +-infinity where QEMU gives +-0.5 after fres, QEMU's value is copied into our FPR "
        "and FPRF is not compared, then synchronised (rule 'fpscr sync'): the guest goes on alike"),
    QemuDeviation(
        "fnmadd_rounding",
        "fnmadd/fnmsub[s] round the sum to the target precision, then negate it (Power ISA 2.03+)",
        "rounds the negated sum: a different result in the two directed rounding modes",
        "with FPSCR[RN] toward +inf or -inf, the target FPR and FPSCR of fnmadd/fnmsub[s] are not "
        "compared but copied from QEMU (rule 'fnm directed')"),
    QemuDeviation(
        "mtfsb1_fx",
        "mtfsb1 that turns an exception bit on sets FPSCR[FX] too (the usual 0 -> 1 rule)",
        "leaves FX alone",
        "FX is not compared after mtfsb1, then copied from QEMU (rule 'fpscr sync')"),
    QemuDeviation(
        "fp_exception_enables",
        "with an FPSCR exception enable set: an enabled invalid operation or divide by zero leaves the "
        "target alone; the program interrupt comes only when MSR[FE0]/[FE1] ask for it",
        "with MSR[FE0,FE1]=0 it writes the result anyway, and mtfsb1 of an enable whose exception is "
        "pending takes a program interrupt",
        "the comparison ends (reported as unsupported) once the guest sets an FPSCR enable bit"),
    QemuDeviation(
        "tlbsx_miss",
        "a tlbsx that finds nothing leaves MAS2[EPN] = the searched page and proposes the TLB0 victim "
        "without moving the victim hint on (only a TLB error interrupt or tlbwe does)",
        "MAS2[EPN] = 0, and its one global victim counter advances at every miss",
        "not compared: the mmu corpus guest never reads MAS0/MAS2 after a tlbsx miss"),
)
FPSCR_ENABLES = 0x000000F8
SIGN_BIT_64 = 1 << 63
FPSCR_FX = 0x80000000
XO_MTFSB1 = 38
XO_FNMSUB, XO_FNMADD = 30, 31
RN_DIRECTED = (2, 3)
INFINITY_BITS = 0x7FF0000000000000
HALF_BITS = 0x3FE0000000000000
FPSCR_FPRF = 0x0001F000
FPSCR_FR = 0x00040000
FPSCR_FI = 0x00020000
XO_FRES = 24
FPSCR_CLASS_C = 0x00010000
XO_FCMPU = 0
XO_FCMPO = 32
FPSCR_COMPARE_MASK = 0xFFFFFFFF & ~FPSCR_FR

MSR_COMPARE_MASK = 0xFFFFFFFF & ~(MSR_CE | MSR_DE | MSR_ME)   # interrupt_entry_msr, mtmsr_me, program_srr1
SRR1_COMPARE_MASK = MSR_COMPARE_MASK & ~(SRR1_PROGRAM_TRAP_FLAG | SRR1_PROGRAM_ILLEGAL_FLAG)
SPR_COMPARE_MASKS: dict[str, int] = {"srr1": SRR1_COMPARE_MASK, "csrr1": SRR1_COMPARE_MASK}
SRR1_SPR_NUMBER = SPR_NUMBERS["srr1"]
# Timing, not deviations: QEMU's time base runs on the host clock, ours on cycles.
TIME_READ_SPRS = frozenset({SPR_DEC, SPR_TBL, SPR_TBU})
# SPRs never compared at checkpoints because they are time-dependent: TSR (DIS sets on time), DEC.
IDLE_SPIN_LIMIT = 2_000_000          # solo steps allowed on one side while it waits for its timer


def spr_field(word: int) -> int:
    field_bits = (word >> 11) & 0x3FF
    return ((field_bits & 0x1F) << 5) | (field_bits >> 5)


def is_x_form(word: int, primary: int, xo: int) -> bool:
    return word >> PRIMARY_SHIFT == primary and (word >> 1) & 0x3FF == xo


OPCODE_FP_DOUBLE = 63
OPCODE_FP_SINGLE = 59
FP_LOADS_D_FORM = range(48, 52)              # lfs lfsu lfd lfdu
FP_STORES_D_FORM = range(52, 56)             # stfs stfsu stfd stfdu
FP_LOADS_X_FORM = frozenset({535, 567, 599, 631})                # lfsx lfsux lfdx lfdux
FP_STORES_X_FORM = frozenset({663, 695, 727, 759, 983})          # stfsx .. stfiwx
# fcmpu fcmpo mtfsb1 mcrfs mtfsb0 mtfsfi mtfsf
FP_NO_TARGET_X_FORM = frozenset({0, 32, 38, 64, 70, 134, 711})
XO_MFFS = 583


def fp_instruction(word: int) -> tuple[bool, int | None]:
    """(is an FPU instruction, the FPR it writes or None)."""
    primary = word >> PRIMARY_SHIFT
    target = (word >> 21) & 0x1F
    if primary in FP_LOADS_D_FORM:
        return True, target
    if primary in FP_STORES_D_FORM:
        return True, None
    if primary == OPCODE_31:
        xo = (word >> 1) & 0x3FF
        if xo in FP_LOADS_X_FORM:
            return True, target
        return xo in FP_STORES_X_FORM, None
    if primary == OPCODE_FP_SINGLE:
        return True, target
    if primary == OPCODE_FP_DOUBLE:
        xo = (word >> 1) & 0x3FF
        return True, (None if xo in FP_NO_TARGET_X_FORM and (word >> 1) & 0x1F < 18 else target)
    return False, None


def compare_mask(register_index: int) -> int:
    return MSR_COMPARE_MASK if register_index == MSR_INDEX else 0xFFFFFFFF


# =====================================================================================================
# Result types
# =====================================================================================================
@dataclass
class Divergence:
    step: int
    pc: int                                   # address of the instruction just executed (ours)
    word: int | None
    disassembly: str
    differences: list[tuple[str, int | None, int | None]]   # (register, qemu, ours)
    note: str = ""

    def report(self, elf: Path) -> str:
        lines = [f"lockstep divergence in {elf.name} at step {self.step}"
                 + (f" ({self.note})" if self.note else ""),
                 f"  instruction at 0x{self.pc:08x}: {self.disassembly}",
                 f"  {'register':<10} {'qemu':>12} {'ours':>12}"]
        for name, qemu_value, our_value in self.differences:
            q = "-" if qemu_value is None else f"0x{qemu_value:08x}"
            o = "-" if our_value is None else f"0x{our_value:08x}"
            lines.append(f"  {name:<10} {q:>12} {o:>12}")
        return "\n".join(lines)


@dataclass
class LockstepResult:
    elf: Path
    model: str
    steps: int = 0                     # steps executed on both sides and compared
    solo_steps: int = 0                # idle-spin / interrupt-entry steps taken by one side alone
    powered_off: bool = False
    divergence: Divergence | None = None
    unsupported: str | None = None     # a QEMU deviation that ended the comparison early
    qemu_uart: bytes = b""
    our_uart: bytes = b""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.divergence is None and (self.powered_off or self.unsupported is not None)

    def report(self) -> str:
        if self.divergence is not None:
            return self.divergence.report(self.elf)
        status = "powered off" if self.powered_off else (self.unsupported or "did not finish")
        return f"{self.elf.name} [{self.model}]: {self.steps} steps (+{self.solo_steps} solo), {status}"


# =====================================================================================================
# Our side
# =====================================================================================================
class OurSide:
    """Our core behind the same small interface the harness uses for QEMU."""

    def __init__(self, elf: Path, model: str) -> None:
        from emulator.board import Machine  # deferred: the harness module imports without the core

        self.uart = bytearray()
        self.machine: Any = Machine(model, uart_out=self.uart.extend)
        self.machine.load_elf(str(elf))
        self.machine.reset()
        self.cpu: Any = self.machine.cpu
        self.has_fpu = model == "e500mc"
        self.powered_off = False

    def registers(self) -> list[int]:
        cpu = self.cpu
        return [*cpu.gpr, cpu.pc, cpu.msr, cpu.cr, cpu.lr, cpu.ctr, cpu.xer]

    def step(self) -> None:
        stop = self.cpu.step()
        # The power-off GPIO store completes; the core reports it at the next boundary.
        if stop.kind.name == "POWER_OFF" or self.machine.bus.poweroff_status is not None:
            self.powered_off = True
        elif stop.kind.name not in ("BUDGET", "HOST_DEBUG"):
            raise RuntimeError(f"our core stopped: {stop}")

    def fetch_word(self, ea: int) -> int | None:
        pa = self.cpu.translate_debug(ea)
        if pa is None:
            return None
        value: int = self.machine.bus.peek(pa, 4)
        return value

    def read_spr(self, name: str) -> int:
        value: int = self.cpu.read_spr(SPR_NUMBERS[name])
        return value

    def read_fp(self, fpr: int | None) -> tuple[int | None, int]:
        """(the FPR ``fpr`` or None, the FPSCR)."""
        return (None if fpr is None else self.cpu.fpr[fpr]), self.cpu.fpscr

    def vectors(self) -> set[int]:
        ivpr = self.read_spr("ivpr") & 0xFFFF0000
        return {ivpr | (self.read_spr(name) & 0xFFF0) for name in IVOR_SPRS}


def disassemble(elf: Path, pc: int, word: int | None) -> str:
    """objdump's view of the instruction at ``pc`` (with its symbol), plus our decoder's."""
    text = ""
    try:
        dump = subprocess.run(
            ["powerpc-linux-gnu-objdump", "-d", f"--start-address=0x{pc:x}", f"--stop-address=0x{pc + 4:x}",
             str(elf)], capture_output=True, text=True, timeout=30).stdout
        symbol = next((line for line in dump.splitlines() if line.endswith(">:")), "")
        insn = next((line.split("\t", 2)[-1] for line in dump.splitlines()
                     if line.strip().startswith(f"{pc:x}:")), "")
        text = f"{insn.strip()}  {symbol.split(' ', 1)[-1] if symbol else ''}".strip()
    except (OSError, subprocess.SubprocessError):
        text = ""
    ours = ""
    if word is not None:
        try:
            from emulator.decoder import disassemble as our_disassemble

            ours = f"  [ours: {our_disassemble(word)}]"
        except ImportError:
            ours = f"  [0x{word:08x}]"
    return (text or "(no objdump)") + ours


# =====================================================================================================
# The lockstep loop
# =====================================================================================================
def run_lockstep(elf: Path | str, model: str, max_steps: int = 2_000_000,
                 progress: Callable[[int], None] | None = None) -> LockstepResult:
    """Run ``elf`` on both machines until power-off, the first divergence or ``max_steps``."""
    elf = Path(elf)
    result = LockstepResult(elf, model)
    ours = OurSide(elf, model)
    uart_path = Path(f"/tmp/lockstep-uart-{elf.stem}-{id(result):x}.txt")
    qemu = QemuGdb(elf, QEMU_CPU_NAMES[model], sstep_flags=SSTEP_ENABLE, serial=f"file:{uart_path}")
    try:
        _run(result, ours, qemu, max_steps, progress)
    finally:
        qemu.close()
        result.our_uart = bytes(ours.uart)
        if uart_path.exists():
            result.qemu_uart = uart_path.read_bytes()
            uart_path.unlink()
    return result


def _compare(qemu_regs: list[int], our_regs: list[int]) -> list[tuple[str, int | None, int | None]]:
    differences: list[tuple[str, int | None, int | None]] = []
    for index, (q, o) in enumerate(zip(qemu_regs, our_regs, strict=True)):
        if q != o:
            mask = compare_mask(index)
            if (q ^ o) & mask:
                differences.append((CORE_REGISTER_NAMES[index], q, o))
    return differences


Differences = list[tuple[str, int | None, int | None]]


def _single_denormal(bits: int) -> bool:
    """A non-zero value below single precision's normal range that double format holds as normal."""
    exponent = (bits >> 52) & 0x7FF
    return 0 < exponent < 1023 - 126


def _compare_fp(qemu: QemuGdb, ours: OurSide, word: int) -> Differences:
    """After an FPU instruction: its target FPR and the FPSCR (e500mc)."""
    is_fp, target = fp_instruction(word)
    if not is_fp:
        return []
    numbers = qemu.spr_numbers()
    our_fpr, our_fpscr = ours.read_fp(target)
    fres_of_zero = False
    if (word >> PRIMARY_SHIFT in (OPCODE_FP_SINGLE, OPCODE_FP_DOUBLE)
            and (word >> 1) & 0x1F in (XO_FNMSUB, XO_FNMADD) and our_fpscr & 3 in RN_DIRECTED
            and target is not None):
        # Rule "fnm directed" (deviation fnmadd_rounding): the guest goes on with QEMU's result.
        ours.cpu.fpr[target] = qemu.read_register(numbers[f"f{target}"])
        ours.cpu.fpscr = qemu.read_register(numbers["fpscr"])
        return []
    qemu_fpscr = qemu.read_register(numbers["fpscr"])
    differences: Differences = []
    if target is not None:
        qemu_fpr = qemu.read_register(numbers[f"f{target}"])
        if (word >> PRIMARY_SHIFT == OPCODE_FP_SINGLE and (word >> 1) & 0x1F == XO_FRES
                and our_fpr is not None and our_fpr & ~SIGN_BIT_64 == INFINITY_BITS
                and qemu_fpr == (our_fpr & SIGN_BIT_64) | HALF_BITS):
            ours.cpu.fpr[target] = our_fpr = qemu_fpr       # deviation "fres_zero"
            fres_of_zero = True
        if qemu_fpr != our_fpr:
            differences.append((f"f{target}", qemu_fpr, our_fpr))
    mask = FPSCR_COMPARE_MASK & ~(FPSCR_FPRF if fres_of_zero else 0)
    if our_fpr is not None and _single_denormal(our_fpr) and (
            word >> PRIMARY_SHIFT == OPCODE_FP_SINGLE or our_fpscr & FPSCR_CLASS_C):
        mask &= ~FPSCR_CLASS_C                  # deviation "single_denormal_class"
    if is_x_form(word, OPCODE_FP_DOUBLE, XO_FCMPU) or is_x_form(word, OPCODE_FP_DOUBLE, XO_FCMPO):
        mask &= ~FPSCR_FI                       # deviation "compare_fi"
    if is_x_form(word, OPCODE_FP_DOUBLE, XO_MTFSB1):
        mask &= ~FPSCR_FX                       # deviation "mtfsb1_fx"
    if (qemu_fpscr ^ our_fpscr) & mask:
        differences.append(("fpscr", qemu_fpscr, our_fpscr))
    else:
        # Rule "fpscr sync": the masked status bits are copied from QEMU, so that a later mffs (and
        # the guest's computation on it) sees the same FPSCR on both sides.
        ours.cpu.fpscr = (our_fpscr & mask) | (qemu_fpscr & ~mask)
    return differences


def _compare_sprs(qemu: QemuGdb, ours: OurSide, names: tuple[str, ...]) -> Differences:
    differences: Differences = []
    for name in names:
        q = qemu.read_spr(name)
        o = ours.read_spr(name)
        if (q ^ o) & SPR_COMPARE_MASKS.get(name, 0xFFFFFFFF):
            differences.append((name, q, o))
    return differences


def _unsupported_reason(word: int | None, ours: OurSide) -> str | None:
    """The QEMU deviations that end the comparison (see QEMU_DEVIATIONS: ehpriv, debug_events)."""
    if word is not None and is_x_form(word, OPCODE_31, XO_EHPRIV):
        return "unsupported: ehpriv (QEMU deviation 'ehpriv')"
    dbcr0 = ours.read_spr("dbcr0")
    if dbcr0 & DBCR0_IDM and dbcr0 & DBCR0_IAC_DAC_TRAP:
        return "unsupported: guest IAC/DAC/TRAP debug events (QEMU deviation 'debug_events')"
    return None


def _run(result: LockstepResult, ours: OurSide, qemu: QemuGdb, max_steps: int,
         progress: Callable[[int], None] | None) -> None:
    boot_differences = _compare(qemu.read_core_registers(), ours.registers())
    boot_differences += _compare_sprs(qemu, ours, BOOT_SPRS)
    if boot_differences:
        result.divergence = Divergence(0, ours.cpu.pc, None, "(boot state)", boot_differences)
        return
    vectors = ours.vectors()
    previous_word: int | None = None
    for step in range(1, max_steps + 1):
        pc = ours.cpu.pc
        word = ours.fetch_word(pc)
        # The unsupported deviations can only start at an ehpriv or right after an mtspr (DBCR0).
        if (word is not None and is_x_form(word, OPCODE_31, XO_EHPRIV)) or (
                previous_word is not None and is_x_form(previous_word, OPCODE_31, XO_MTSPR)):
            reason = _unsupported_reason(word, ours)
            if reason is not None:
                result.unsupported = reason
                return
        previous_word = word
        qemu_off = False
        try:
            qemu.step()
        except QemuExitedError:
            qemu_off = True
        ours.step()
        if ours.powered_off and not qemu_off:
            qemu_off = _qemu_exits_soon(qemu)
        if qemu_off or ours.powered_off:
            if qemu_off and ours.powered_off:
                result.powered_off = True
                result.steps = step
                return
            side = "QEMU" if qemu_off else "our core"
            result.divergence = Divergence(step, pc, word, disassemble(result.elf, pc, word),
                                           [], note=f"only {side} powered off")
            return
        qemu_regs = qemu.read_core_registers()
        our_regs = ours.registers()
        if qemu_regs[PC_INDEX] != our_regs[PC_INDEX]:
            qemu_regs, our_regs = _resynchronise(result, ours, qemu, qemu_regs, our_regs, vectors)
        if word is not None and _is_time_read(word):
            # Rule "time reads": the destination register holds a host-clock value in QEMU.
            target = (word >> 21) & 0x1F
            ours.cpu.gpr[target] = qemu_regs[target]
            our_regs[target] = qemu_regs[target]
        if word is not None and is_x_form(word, OPCODE_31, XO_MFSPR) and spr_field(word) == SRR1_SPR_NUMBER:
            target = (word >> 21) & 0x1F
            if not (qemu_regs[target] ^ our_regs[target]) & SRR1_COMPARE_MASK:
                qemu_regs[target] = our_regs[target]     # deviation "program_srr1_flags"
        differences = _compare(qemu_regs, our_regs)
        if not differences and ours.has_fpu and word is not None:
            differences = _compare_fp(qemu, ours, word)
            if not differences and ours.cpu.fpscr & FPSCR_ENABLES:
                result.steps = step
                result.unsupported = ("unsupported: FPSCR exception enables "
                                      "(QEMU deviation 'fp_exception_enables')")
                return
        checkpoint = our_regs[PC_INDEX] in vectors or (word is not None and (
            is_x_form(word, OPCODE_31, XO_MTSPR) or is_x_form(word, OPCODE_19, XO_RFI)
            or is_x_form(word, OPCODE_31, XO_TLBWE)))
        if not differences and checkpoint:
            differences = _compare_sprs(qemu, ours, CHECKPOINT_SPRS)
            if word is not None and is_x_form(word, OPCODE_31, XO_MTSPR):
                vectors = ours.vectors()
        if differences:
            result.steps = step - 1
            result.divergence = Divergence(step, pc, word, disassemble(result.elf, pc, word), differences)
            return
        result.steps = step
        if progress is not None and step % 10_000 == 0:
            progress(step)
    result.notes.append(f"stopped after max_steps={max_steps}")


def _qemu_exits_soon(qemu: QemuGdb, tries: int = 50) -> bool:
    """QEMU handles the power-off GPIO's shutdown request in its main loop, after answering the `s`
    that performed the store: give it a moment (a few more steps of the guest's final spin)."""
    for _ in range(tries):
        try:
            qemu.step()
        except QemuExitedError:
            return True
        time.sleep(0.01)
    return False


def _is_time_read(word: int) -> bool:
    if word >> PRIMARY_SHIFT != OPCODE_31:
        return False
    xo = (word >> 1) & 0x3FF
    return xo in (XO_MFSPR, XO_MFTB) and spr_field(word) in TIME_READ_SPRS


def _resynchronise(result: LockstepResult, ours: OurSide, qemu: QemuGdb, qemu_regs: list[int],
                   our_regs: list[int], vectors: set[int]) -> tuple[list[int], list[int]]:
    """Timing rules, applied when the PCs differ after a step (see the module docstring).

    - idle spin: a side sitting on `b .` runs alone until its (timer) interrupt takes it away;
    - interrupt entry: our ``step()`` takes a pending asynchronous interrupt and executes the
      handler's first instruction in one call, QEMU stops on the vector: QEMU steps once more.
    """
    for _round in range(4):
        if qemu_regs[PC_INDEX] == our_regs[PC_INDEX]:
            break
        our_pc, qemu_pc = our_regs[PC_INDEX], qemu_regs[PC_INDEX]
        if ours.fetch_word(our_pc) == IDLE_SPIN_WORD:
            for _ in range(IDLE_SPIN_LIMIT):
                ours.step()
                result.solo_steps += 1
                if ours.cpu.pc != our_pc:
                    break
            our_regs = ours.registers()
        elif ours.fetch_word(qemu_pc) == IDLE_SPIN_WORD:
            for _ in range(IDLE_SPIN_LIMIT):
                qemu.step()
                result.solo_steps += 1
                qemu_regs = qemu.read_core_registers()
                if qemu_regs[PC_INDEX] != qemu_pc:
                    break
        elif qemu_pc in vectors and our_pc != qemu_pc:
            qemu.step()
            result.solo_steps += 1
            qemu_regs = qemu.read_core_registers()
        else:
            break
    return qemu_regs, our_regs


def model_for(elf: Path | str) -> str:
    """The core model an ELF was built for, from its name (``<guest>[-<opt>]-<model>.elf``)."""
    stem = Path(elf).stem
    for model in QEMU_CPU_NAMES:
        if stem.endswith(f"-{model}"):
            return model
    raise ValueError(f"{elf}: cannot tell the CPU model from the file name")


def run_many(elves: list[Path], jobs: int = 2, max_steps: int = 2_000_000) -> list[LockstepResult]:
    """Lockstep several ELFs concurrently: each run mostly waits on QEMU's socket, so threads overlap."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda elf: run_lockstep(elf, model_for(elf), max_steps), elves))


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="QEMU lockstep over guest ELFs")
    parser.add_argument("elves", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    start = time.monotonic()
    results = run_many(args.elves, args.jobs, args.max_steps)
    failed = 0
    for result in results:
        print(result.report())
        if result.ok and result.qemu_uart != result.our_uart:
            print(f"  UART differs: qemu {result.qemu_uart!r} ours {result.our_uart!r}")
        failed += not result.ok
    total = sum(result.steps for result in results)
    print(f"lockstep: {total} steps in {time.monotonic() - start:.1f}s, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

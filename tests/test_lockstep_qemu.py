"""QEMU lockstep fidelity tests.

1. The RSP client against a real QEMU (boot registers, SPR numbering, single-step).
2. For every known QEMU deviation listed in tests/lockstep/harness.py (QEMU_DEVIATIONS), a test that
   our core follows the manual where QEMU does not, so masking the difference in the lockstep loses
   nothing.
3. The lockstep itself: every example guest (examples/bin) and a selection of the corpus
   (tests/lockstep/bin) stepped under QEMU and our core, compared after every step; fails with the
   divergence report. At least 200k lockstep steps in total; the total is printed.

Imports: pytest, the standard library, emulator.board/emulator.models (the core under test) and the
harness/RSP client in tests/.
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from lockstep import harness  # noqa: E402
from support.qemu_rsp import SSTEP_ENABLE, QemuExitedError, QemuGdb  # noqa: E402

from emulator.board import Machine  # noqa: E402
from emulator.models import MSR_CE, MSR_DE, MSR_EE, MSR_ME  # noqa: E402

REPO = TESTS.parent
# The echo guest waits for UART input, which arrives at host-timing-dependent steps on QEMU; it is
# compared with QEMU on its output instead (tests/test_run_mode.py). So is the pic guest, whose MPIC
# timer interrupts follow host time on QEMU (tests/test_pic_guest.py).
# The Linux kernels (linux-*.elf) are ~40 M instructions to power-off, far beyond a lockstep run; their
# check against QEMU is the console comparison of tests/test_linux.py.
# The smp guest walks the device tree word by word: it runs here since the board lays the tree out as
# QEMU's libfdt does (its multi-core runs are compared on their output, tests/test_smp_guest.py).
EXAMPLES = sorted(elf for elf in (REPO / "examples" / "bin").glob("*.elf")
                  if not elf.name.startswith(("echo-", "pic-", "linux-")))
CORPUS_DIR = TESTS / "lockstep" / "bin"
MIN_TOTAL_STEPS = 200_000

# The corpus slice run in CI: every guest at one optimisation level per model, rotating levels so each
# of -O0/-O2/-Os and both models appear (the full 48-ELF corpus takes ~4x longer: run
# `python tests/lockstep/harness.py tests/lockstep/bin/*.elf` by hand).
CI_CORPUS = [
    "sort-O2-e500v2", "hash-Os-e500v2", "strings-O2-e500v2", "arith64-Os-e500v2", "switch-O0-e500v2",
    "recursion-Os-e500v2", "setjmp-O0-e500v2", "timer-O2-e500v2",
    "sort-Os-e500mc", "hash-O2-e500mc", "strings-Os-e500mc", "arith64-O2-e500mc", "switch-O2-e500mc",
    "recursion-O2-e500mc", "setjmp-Os-e500mc", "timer-O0-e500mc",
    "mmu-O2-e500v2", "mmu-Os-e500mc", "cache-O2-e500v2", "cache-Os-e500mc", "float-O2-e500mc",
    "abi-O2-e500v2", "abi-Os-e500mc",
]

# Instruction words used by the deviation tests (reference e500-core.md section 4).
NOP = 0x60000000
SC = 0x44000002
TRAP = 0x7FE00008            # tw 31,0,0
ILLEGAL = 0x00000000
EHPRIV = 0x7C00021C
TLBSX_R0_R3 = 0x7C001F24     # tlbsx 0,r3
MTMSR_R3 = 0x7C600124
MFMSR_R4 = 0x7C8000A6
MFSPR_R5_DEC = 0x7CB602A6    # mfspr r5, 22

SPR_SRR0, SPR_SRR1, SPR_CSRR0, SPR_ESR, SPR_IVPR = 26, 27, 58, 62, 63
SPR_DEC, SPR_TSR, SPR_TCR = 22, 336, 340
SPR_DBSR, SPR_DBCR0, SPR_IAC1 = 304, 308, 312
SPR_IVOR0, SPR_IVOR41 = 400, 435
SPR_MAS0, SPR_MAS1, SPR_MAS2, SPR_MAS4 = 624, 625, 626, 628
ESR_PIL, ESR_PTR = 0x08000000, 0x02000000
TSR_DIS = 0x08000000
DBCR0_IDM, DBCR0_IAC1 = 0x40000000, 0x00800000
DBSR_IAC1 = 0x00800000

CODE = 0x00010000            # where the deviation tests place their instructions
HANDLERS = 0x00020000        # IVPR; IVORn = n * 0x100 (each handler is a `b .`)
IDLE = 0x48000000


# -- helpers ------------------------------------------------------------------------------------------
def bare_machine(model: str, words: list[int], msr: int = 0) -> Machine:
    """Our machine in the -kernel boot mapping, with ``words`` at CODE and spinning handlers."""
    machine = Machine(model)
    machine.reset()
    cpu = machine.cpu
    for ivor in range(42):
        machine.bus.write_bytes(HANDLERS + ivor * 0x100, IDLE.to_bytes(4, "big"))
    for index, word in enumerate(words):
        machine.bus.write_bytes(CODE + 4 * index, word.to_bytes(4, "big"))
    cpu.write_spr(SPR_IVPR, HANDLERS)
    for ivor in range(16):
        cpu.write_spr(SPR_IVOR0 + ivor, ivor * 0x100)
    if model == "e500mc":
        cpu.write_spr(SPR_IVOR41, 41 * 0x100)
    cpu.msr = msr
    cpu.pc = CODE
    return machine


def vector(ivor: int) -> int:
    return HANDLERS + ivor * 0x100


def qemu_session(elf: Path, model: str) -> QemuGdb:
    return QemuGdb(elf, harness.QEMU_CPU_NAMES[model], sstep_flags=SSTEP_ENABLE)


# -- 1. the RSP client --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_rsp_client_boot_state_and_step(model: str) -> None:
    elf = REPO / "examples" / "bin" / f"hello-{model}.elf"
    ours = harness.OurSide(elf, model)
    with qemu_session(elf, model) as qemu:
        registers = qemu.read_core_registers()
        assert registers == ours.registers()            # QEMU's -kernel boot state == ours
        assert registers[harness.PC_INDEX] == ours.machine.entry
        assert qemu.read_spr("pvr") == ours.read_spr("pvr")
        qemu.step()
        assert qemu.read_core_registers()[harness.PC_INDEX] == ours.machine.entry + 4
        entry_word = ours.fetch_word(ours.machine.entry)
        assert entry_word is not None
        assert qemu.read_memory(ours.machine.entry, 4) == entry_word.to_bytes(4, "big")


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_every_spr_both_machines_name_has_qemus_boot_value(model: str) -> None:
    """At the entry point, each SPR QEMU's gdbstub shows and we also have holds the same value."""
    from emulator.kvm import Vcpu

    elf = REPO / "examples" / "bin" / f"hello-{model}.elf"
    ours = harness.OurSide(elf, model)
    vcpu = Vcpu(ours.machine)
    names = set(vcpu.register_names())
    with qemu_session(elf, model) as qemu:
        shared = sorted(name for name in qemu.spr_numbers() if name in names and name != "pc")
        theirs = {name: qemu.read_spr(name) for name in shared}
    assert len(shared) >= 100, shared
    mine = {name: vcpu.get_reg(name) for name in shared}
    assert {name: (theirs[name], mine[name]) for name in shared if theirs[name] != mine[name]} == {}


def test_rsp_client_reports_power_off() -> None:
    elf = REPO / "examples" / "bin" / "hello-e500v2.elf"
    with qemu_session(elf, "e500v2") as qemu, pytest.raises(QemuExitedError):
        for _ in range(200_000):
            qemu.step()


# -- 2. the manual's behaviour on our core, for each masked QEMU deviation -------------------------------
def check_interrupt_entry_msr(model: str) -> None:
    machine = bare_machine(model, [SC], msr=MSR_CE | MSR_DE | MSR_ME | MSR_EE)
    machine.cpu.step()
    cpu = machine.cpu
    assert cpu.pc == vector(8)
    assert cpu.msr == MSR_CE | MSR_DE | MSR_ME          # EE cleared, CE/DE/ME kept
    assert cpu.read_spr(SPR_SRR1) == MSR_CE | MSR_DE | MSR_ME | MSR_EE


def check_program_srr1_flags(model: str) -> None:
    for word, esr in ((TRAP, ESR_PTR), (ILLEGAL, ESR_PIL)):
        machine = bare_machine(model, [word], msr=MSR_EE | MSR_ME)
        machine.cpu.step()
        cpu = machine.cpu
        assert cpu.pc == vector(6)
        assert cpu.read_spr(SPR_SRR0) == CODE
        assert cpu.read_spr(SPR_SRR1) == MSR_EE | MSR_ME     # a plain copy, no reason flags
        assert cpu.read_spr(SPR_ESR) == esr


def check_dec_below_zero(model: str) -> None:
    machine = bare_machine(model, [NOP] * 200 + [MFSPR_R5_DEC])
    cpu = machine.cpu
    cpu.write_spr(SPR_TCR, 0)          # ARE = 0, no interrupt enable
    cpu.write_spr(SPR_DEC, 20)
    for _ in range(201):
        cpu.step()
    assert cpu.gpr[5] == 0             # stopped at zero
    assert cpu.read_spr(SPR_TSR) & TSR_DIS


def check_mtmsr_me(model: str) -> None:
    machine = bare_machine(model, [MTMSR_R3, MFMSR_R4])
    cpu = machine.cpu
    cpu.gpr[3] = MSR_ME | MSR_CE
    cpu.step()
    cpu.step()
    assert cpu.gpr[4] == MSR_ME | MSR_CE


def check_ehpriv(model: str) -> None:
    machine = bare_machine(model, [EHPRIV])
    machine.cpu.step()
    cpu = machine.cpu
    if model == "e500mc":
        assert cpu.pc == vector(41)                     # embedded hypervisor privilege
    else:
        assert cpu.pc == vector(6)
        assert cpu.read_spr(SPR_ESR) == ESR_PIL


def check_debug_events(model: str) -> None:
    machine = bare_machine(model, [NOP, NOP, NOP], msr=MSR_DE)
    cpu = machine.cpu
    cpu.write_spr(SPR_IAC1, CODE + 8)
    cpu.write_spr(SPR_DBCR0, DBCR0_IDM | DBCR0_IAC1)
    for _ in range(3):
        cpu.step()
    assert cpu.pc == vector(15)
    assert cpu.read_spr(SPR_DBSR) & DBSR_IAC1
    save_register = 574 if model == "e500mc" else SPR_CSRR0      # DSRR0 / CSRR0
    assert cpu.read_spr(save_register) == CODE + 8              # IAC: the instruction is not executed


FADD_F0_F1_F2 = 0xFC01102A
FMULS_F0_F1_F2 = 0xEC0100B2      # fmuls f0, f1, f2
FCMPU_CR0_F1_F2 = 0xFC011000
MSR_FP = 0x00002000
FPSCR_FR, FPSCR_FI, FPSCR_FPRF_SHIFT = 0x00040000, 0x00020000, 12


def float_machine(model: str, words: list[int], fprs: dict[int, float], fpscr: int = 0) -> Machine | None:
    """A bare machine with the FPU on and ``fprs`` loaded; None on the e500v2, whose FPU words are
    illegal (checked here too, since that is the e500v2 side of every FPU deviation)."""
    machine = bare_machine(model, words, msr=MSR_FP)
    cpu = machine.cpu
    if model == "e500v2":
        cpu.step()
        assert cpu.pc == vector(6) and cpu.read_spr(SPR_ESR) == ESR_PIL
        return None
    for index, number in fprs.items():
        cpu.fpr[index] = int.from_bytes(struct.pack(">d", number), "big")
    cpu.fpscr = fpscr
    for _ in words:
        cpu.step()
    return machine


def check_fpscr_fr(model: str) -> None:
    machine = float_machine(model, [FADD_F0_F1_F2], {1: 1.0, 2: 0.1})
    if machine is not None:      # 1 + 0.1 rounds up to the double nearest 1.1: FR
        assert machine.cpu.fpscr & (FPSCR_FR | FPSCR_FI) == FPSCR_FR | FPSCR_FI


def check_single_denormal_class(model: str) -> None:
    machine = float_machine(model, [FMULS_F0_F1_F2], {1: 2.0 ** -140, 2: 0.5})
    if machine is not None:      # 2**-141 is a single-precision denormal: FPRF "+denormal" (0x14)
        assert (machine.cpu.fpscr >> FPSCR_FPRF_SHIFT) & 0x1F == 0x14


def check_compare_fi(model: str) -> None:
    machine = float_machine(model, [FCMPU_CR0_F1_F2], {1: 1.0, 2: 2.0}, fpscr=FPSCR_FI)
    if machine is not None:
        assert machine.cpu.fpscr & FPSCR_FI and machine.cpu.cr >> 28 == 8


FRES_F0_F1 = 0xEC000830          # fres f0, f1


def check_fres_zero(model: str) -> None:
    machine = float_machine(model, [FRES_F0_F1], {1: -0.0})
    if machine is not None:
        assert machine.cpu.fpr[0] == 0xFFF0000000000000 and machine.cpu.fpscr & 0x04000000   # -inf, ZX


FNMADD_F0_F1_F3_F2 = 0xFC0110FE  # fnmadd f0, f1, f3, f2


def check_fnmadd_rounding(model: str) -> None:
    # 1 + 2**-60 rounded toward +inf is 1 + 2**-52, negated; QEMU rounds -(1 + 2**-60) up: -1.
    machine = float_machine(model, [FNMADD_F0_F1_F3_F2], {1: 2.0 ** -30, 3: 2.0 ** -30, 2: 1.0}, fpscr=2)
    if machine is not None:
        assert machine.cpu.fpr[0] == int.from_bytes(struct.pack(">d", -(1 + 2.0 ** -52)), "big")


MTFSB1_OX = 0xFC60004C          # mtfsb1 3


def check_mtfsb1_fx(model: str) -> None:
    machine = float_machine(model, [MTFSB1_OX], {})
    if machine is not None:
        assert machine.cpu.fpscr == 0x90000000          # OX and, by the 0 -> 1 rule, FX


FDIV_F0_F1_F2 = 0xFC011024
FPSCR_ZE, FPSCR_ZX, ESR_FP, MSR_FE0 = 0x10, 0x04000000, 0x01000000, 0x00000800


def check_fp_exception_enables(model: str) -> None:
    machine = float_machine(model, [FDIV_F0_F1_F2], {0: 42.0, 1: 1.0, 2: 0.0}, fpscr=FPSCR_ZE)
    if machine is None:
        return
    cpu = machine.cpu                   # ignore-exceptions mode: no interrupt, the target kept
    assert cpu.pc == CODE + 4 and cpu.fpr[0] == int.from_bytes(struct.pack(">d", 42.0), "big")
    assert cpu.fpscr & FPSCR_ZX
    machine = bare_machine(model, [FDIV_F0_F1_F2], msr=MSR_FP | MSR_FE0)
    cpu = machine.cpu
    cpu.fpr[1] = int.from_bytes(struct.pack(">d", 1.0), "big")
    cpu.fpscr = FPSCR_ZE
    cpu.step()                          # precise mode: the program interrupt, ESR[FP], at the fdiv
    assert cpu.pc == vector(6) and cpu.read_spr(SPR_ESR) == ESR_FP and cpu.read_spr(SPR_SRR0) == CODE


def check_tlbsx_miss(model: str) -> None:
    machine = bare_machine(model, [TLBSX_R0_R3, TLBSX_R0_R3])
    cpu = machine.cpu
    cpu.gpr[3] = 0x0ABC5123            # nothing maps it (the boot mapping covers the first 64 MiB)
    cpu.write_spr(SPR_MAS4, 0x08)      # TLBSELD = 0, default attribute I
    for _ in range(2):
        cpu.step()
        assert cpu.read_spr(SPR_MAS2) == 0x0ABC5000 | 0x08
        assert cpu.read_spr(SPR_MAS0) == 1          # ESEL 0, NV 1 after either search
        assert not cpu.read_spr(SPR_MAS1) & 0x80000000   # V = 0


MANUAL_CHECKS: dict[str, Callable[[str], None]] = {
    "tlbsx_miss": check_tlbsx_miss,
    "fp_exception_enables": check_fp_exception_enables,
    "mtfsb1_fx": check_mtfsb1_fx,
    "fnmadd_rounding": check_fnmadd_rounding,
    "fres_zero": check_fres_zero,
    "fpscr_fr": check_fpscr_fr,
    "single_denormal_class": check_single_denormal_class,
    "compare_fi": check_compare_fi,
    "interrupt_entry_msr": check_interrupt_entry_msr,
    "program_srr1_flags": check_program_srr1_flags,
    "dec_below_zero": check_dec_below_zero,
    "mtmsr_me": check_mtmsr_me,
    "ehpriv": check_ehpriv,
    "debug_events": check_debug_events,
}


def test_every_qemu_deviation_has_a_manual_check() -> None:
    assert {deviation.name for deviation in harness.QEMU_DEVIATIONS} == set(MANUAL_CHECKS)


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
@pytest.mark.parametrize("deviation", [deviation.name for deviation in harness.QEMU_DEVIATIONS])
def test_our_core_follows_the_manual_where_qemu_deviates(deviation: str, model: str) -> None:
    MANUAL_CHECKS[deviation](model)


# -- 3. the lockstep ----------------------------------------------------------------------------------
def test_lockstep_examples_and_corpus_against_qemu() -> None:
    corpus = [CORPUS_DIR / f"{name}.elf" for name in CI_CORPUS]
    elves = EXAMPLES + corpus
    assert len(EXAMPLES) >= 8 and all(elf.exists() for elf in corpus)
    start = time.monotonic()
    results = harness.run_many(elves, jobs=3)
    total = sum(result.steps for result in results)
    print(f"lockstep: {total} steps over {len(results)} guests in {time.monotonic() - start:.0f}s")
    failures = []
    for result in results:
        print(result.report())
        if not result.ok:
            failures.append(result.report())
        elif result.powered_off and result.qemu_uart != result.our_uart:
            failures.append(f"{result.elf.name}: UART output differs\n  qemu: {result.qemu_uart!r}\n"
                            f"  ours: {result.our_uart!r}")
    assert not failures, "\n\n".join(failures)
    assert total >= MIN_TOTAL_STEPS
    # The FPU guest is compared to its power-off (not cut short as unsupported).
    assert [result.powered_off for result in results if result.elf.name.startswith("float-")] == [True]

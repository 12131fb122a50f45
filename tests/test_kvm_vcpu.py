"""The KVM-shaped vCPU (emulator.kvm.Vcpu) on the real board and core: one test per exit kind.

Guest programs are tiny assembler snippets built with powerpc-linux-gnu-as/ld, written into RAM
through ``Vcpu.write_memory`` at BASE (the boot TLB1[0] maps EA 0 -> PA 0) and run with the pc set
there. Exit fields are read back from ``kvm_run`` at the raw uapi offsets with ``struct``, not with
the construct declarations under test.
"""

from __future__ import annotations

import errno
import functools
import random
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from emulator import kvm
from emulator.board import Machine
from emulator.exceptions import ESR_PTR
from emulator.kvm import KvmError, Vcpu
from emulator.mmu import MAS1_V, MAS3_SR, MAS3_SW, MAS3_SX, SPR_MAS0, SPR_MAS1, SPR_MAS2, SPR_MAS3, SPR_MAS7
from emulator.models import SW_BREAK_EHPRIV_1, SW_BREAK_TRAP

BASE = 0x10000
DATA = 0x20000
PROGRAM_VECTOR = 0x700
SYSCALL_VECTOR = 0x900
MODELS = ["e500v2", "e500mc"]

ENABLE = kvm.KVM_GUESTDBG_ENABLE
SINGLESTEP = kvm.KVM_GUESTDBG_SINGLESTEP
USE_SW_BP = kvm.KVM_GUESTDBG_USE_SW_BP
USE_HW_BP = kvm.KVM_GUESTDBG_USE_HW_BP
BREAKPOINT = kvm.KVMPPC_DEBUG_BREAKPOINT
WATCH_READ = kvm.KVMPPC_DEBUG_WATCH_READ
WATCH_WRITE = kvm.KVMPPC_DEBUG_WATCH_WRITE

# Raw kvm_run offsets (uapi), independent of emulator.kvm's construct declarations.
OFF_IMMEDIATE_EXIT = 1
OFF_EXIT_REASON = 8
OFF_EXIT_UNION = 32


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
@functools.cache
def assemble(source: str, base: int, model: str) -> bytes:
    """Assemble a snippet linked at ``base`` and return its raw bytes."""
    cpu_flag = "-me500mc" if model == "e500mc" else "-me500"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "t.S").write_text("    .text\n    .globl _start\n_start:\n" + source + "\n")
        subprocess.run(["powerpc-linux-gnu-as", cpu_flag, "-mregnames", "-o", work / "t.o", work / "t.S"],
                       check=True, capture_output=True)
        subprocess.run(["powerpc-linux-gnu-ld", f"-Ttext={base:#x}", "-o", work / "t.elf", work / "t.o"],
                       check=True, capture_output=True)
        subprocess.run(["powerpc-linux-gnu-objcopy", "-O", "binary", "-j", ".text", work / "t.elf",
                        work / "t.bin"], check=True, capture_output=True)
        return (work / "t.bin").read_bytes()


def word(source: str) -> int:
    """The encoding of one instruction."""
    return int.from_bytes(assemble(source, 0, "e500v2")[:4], "big")


def make_vcpu(model: str = "e500v2", sw_break: str = "auto") -> Vcpu:
    machine = Machine(model)
    machine.reset()  # boot state: TLB1[0] maps EA 0 -> PA 0, MSR = 0 (supervisor)
    return Vcpu(machine, sw_break=sw_break)  # type: ignore[arg-type]


def load(vcpu: Vcpu, source: str, base: int = BASE, *, set_pc: bool = True) -> None:
    vcpu.write_memory(base, assemble(source, base, vcpu.model.name))
    if set_pc:
        vcpu.set_reg("pc", base)
        for n in range(32):  # the boot state puts the device tree and ePAPR magic in r3/r6/r7
            vcpu.set_reg(f"r{n}", 0)


def install_vectors(vcpu: Vcpu) -> None:
    """Program interrupt -> PROGRAM_VECTOR (r9 = 0x77, spin); system call -> SYSCALL_VECTOR (spin)."""
    vcpu.set_reg("ivpr", 0)
    vcpu.set_reg("ivor6", PROGRAM_VECTOR)
    vcpu.set_reg("ivor8", SYSCALL_VECTOR)
    load(vcpu, "li r9, 0x77\n1: b 1b", PROGRAM_VECTOR, set_pc=False)
    load(vcpu, "li r10, 0x88\n1: b 1b", SYSCALL_VECTOR, set_pc=False)


def guest_debug(control: int, points: list[tuple[int, int, int]] | tuple[()] = ()) -> bytes:
    """struct kvm_guest_debug with ``points`` = [(addr, type, length)] in bp[0..]."""
    entries = [dict(addr=addr, type=kind, reserved=length) for addr, kind, length in points]
    entries += [dict(addr=0, type=0, reserved=0)] * (16 - len(entries))
    return kvm.kvm_guest_debug.build(dict(control=control, pad=0, arch=dict(bp=entries)))


def exit_reason(vcpu: Vcpu) -> int:
    return int(struct.unpack_from(">I", vcpu.kvm_run, OFF_EXIT_REASON)[0])


def debug_exit(vcpu: Vcpu) -> tuple[int, int]:
    """(debug.arch.address, debug.arch.status) of the last exit."""
    assert exit_reason(vcpu) == kvm.KVM_EXIT_DEBUG
    address, status = struct.unpack_from(">QI", vcpu.kvm_run, OFF_EXIT_UNION)
    return int(address), int(status)


STRAIGHT_LINE = """
    li r3, 1
    li r4, 2
    li r5, 3
    li r6, 4
    li r7, 5
1:  b 1b
"""


def test_toolchain_present() -> None:
    assert shutil.which("powerpc-linux-gnu-as") is not None


# ----------------------------------------------------------------------------------------------
# hardware breakpoints and watchpoints
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_iac_exit_before_the_instruction(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, STRAIGHT_LINE)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(BASE + 8, BREAKPOINT, 0)]))
    assert vcpu.run(1000) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 8, BREAKPOINT)
    assert vcpu.get_reg("pc") == BASE + 8
    assert vcpu.get_regs(["r3", "r4", "r5"]) == [1, 2, 0]  # the instruction at the IAC did not run
    assert vcpu.last_exit is not None and vcpu.last_exit.status == BREAKPOINT
    # Without the breakpoint the guest carries on from the same pc.
    vcpu.set_guest_debug(guest_debug(0))
    assert vcpu.run(3) == kvm.KVM_EXIT_INTR
    assert vcpu.get_regs(["r5", "r6", "r7"]) == [3, 4, 5]


LOAD_STORE = """
    lis r3, 0x2
    li r5, 0x55
    lwz r4, 0(r3)
    stw r5, 0(r3)
    lbz r6, 9(r3)
    stw r5, 14(r3)
1:  b 1b
"""


@pytest.mark.parametrize("model", MODELS)
def test_dac_read_exit(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, LOAD_STORE)
    vcpu.write_memory(DATA, bytes.fromhex("11223344"))
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA, WATCH_READ, 0)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA, WATCH_READ)
    assert vcpu.get_reg("pc") == BASE + 8          # at the lwz
    assert vcpu.get_reg("r4") == 0                 # the load was not performed


@pytest.mark.parametrize("model", MODELS)
def test_dac_write_exit(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, LOAD_STORE)
    vcpu.write_memory(DATA, bytes.fromhex("11223344"))
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA, WATCH_WRITE, 0)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA, WATCH_WRITE)
    assert vcpu.get_reg("pc") == BASE + 12         # the read at BASE+8 passed, the stw stopped
    assert vcpu.get_reg("r4") == 0x11223344
    assert vcpu.read_memory(DATA, 4) == bytes.fromhex("11223344")  # store not performed


def test_dac_access_reports_read_then_write() -> None:
    vcpu = make_vcpu()
    load(vcpu, LOAD_STORE)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA, WATCH_READ | WATCH_WRITE, 0)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA, WATCH_READ)
    assert vcpu.get_reg("pc") == BASE + 8
    # Step past the load with the watch off, then the store hits it as a write.
    vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP))
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA, WATCH_READ | WATCH_WRITE, 0)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA, WATCH_WRITE)
    assert vcpu.get_reg("pc") == BASE + 12


def test_wide_watch_uses_reserved_as_length_and_clamps_the_address() -> None:
    vcpu = make_vcpu()
    load(vcpu, LOAD_STORE)
    # 16 bytes from DATA+8: the lwz/stw at DATA do not touch it, lbz 9(r3) does.
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA + 8, WATCH_READ | WATCH_WRITE, 16)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA + 9, WATCH_READ)
    assert vcpu.get_reg("pc") == BASE + 16
    # A watch that starts inside a store: the reported address is clamped into the watched range.
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA + 16, WATCH_WRITE, 2)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA + 16, WATCH_WRITE)  # stw r5, 14(r3) writes DATA+14..17
    assert vcpu.get_reg("pc") == BASE + 20


# ----------------------------------------------------------------------------------------------
# single step
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_single_step_reports_the_next_pc(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, STRAIGHT_LINE)
    vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP))
    for n in range(1, 4):
        before = vcpu.cpu.instructions
        assert vcpu.run() == kvm.KVM_EXIT_DEBUG
        assert debug_exit(vcpu) == (BASE + 4 * n, 0)
        assert vcpu.get_reg("pc") == BASE + 4 * n
        assert vcpu.cpu.instructions == before + 1
    assert vcpu.get_regs(["r3", "r4", "r5", "r6"]) == [1, 2, 3, 0]


@pytest.mark.parametrize("model", MODELS)
def test_single_step_into_an_interrupt_vector(model: str) -> None:
    vcpu = make_vcpu(model)
    install_vectors(vcpu)
    load(vcpu, "li r3, 1\nsc\nli r4, 2")
    vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP))
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 4, 0)
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG            # the sc: stops at the system-call vector
    assert debug_exit(vcpu) == (SYSCALL_VECTOR, 0)
    assert vcpu.get_reg("pc") == SYSCALL_VECTOR
    assert vcpu.get_reg("srr0") == BASE + 8
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG            # first handler instruction
    assert debug_exit(vcpu) == (SYSCALL_VECTOR + 4, 0)
    assert vcpu.get_reg("r10") == 0x88


def test_single_step_over_a_guest_trap_lands_in_the_program_vector() -> None:
    vcpu = make_vcpu()
    install_vectors(vcpu)
    load(vcpu, "tw 31,0,0\nli r4, 2")
    vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP | USE_SW_BP))
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (PROGRAM_VECTOR, 0)
    assert vcpu.get_reg("srr0") == BASE
    assert vcpu.get_reg("esr") == ESR_PTR


# ----------------------------------------------------------------------------------------------
# soft breakpoints
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_soft_breakpoint_exit(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, STRAIGHT_LINE)
    original = vcpu.read_memory(BASE + 8, 4)
    vcpu.insert_sw_breakpoint(BASE + 8)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    vcpu.kvm_run[OFF_EXIT_UNION + 8:OFF_EXIT_UNION + 12] = b"\xff\xff\xff\xff"  # stale status
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 8, 0)            # status reset to 0
    assert vcpu.get_reg("pc") == BASE + 8               # not advanced past the breakpoint
    assert vcpu.get_regs(["r3", "r4", "r5"]) == [1, 2, 0]
    assert vcpu.read_memory(BASE + 8, 4) == original    # memory shows the original instruction
    assert vcpu.sw_breakpoints[BASE + 8].original == int.from_bytes(original, "big")
    # Running again without removing it stops again at the same place (pc not advanced).
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 8, 0)
    vcpu.remove_sw_breakpoint(BASE + 8)
    assert vcpu.run(1) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r5") == 3


@pytest.mark.parametrize(("model", "sw_break", "opcode"), [
    ("e500v2", "auto", SW_BREAK_TRAP),
    ("e500v2", "trap", SW_BREAK_TRAP),
    ("e500mc", "auto", SW_BREAK_EHPRIV_1),
    ("e500mc", "ehpriv", SW_BREAK_EHPRIV_1),
    ("e500mc", "trap", SW_BREAK_TRAP),
])
def test_debug_inst_selection_and_exit(model: str, sw_break: str, opcode: int) -> None:
    vcpu = make_vcpu(model, sw_break)
    assert vcpu.debug_inst == opcode
    load(vcpu, STRAIGHT_LINE)
    vcpu.insert_sw_breakpoint(BASE + 4)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 4, 0)


def test_ehpriv_rejected_on_e500v2() -> None:
    with pytest.raises(ValueError, match="ehpriv"):
        make_vcpu("e500v2", "ehpriv")
    with pytest.raises(ValueError, match="sw_break"):
        make_vcpu("e500v2", "illegal")


SELF_MODIFYING = """
    lis r8, 0x1
    ori r8, r8, 16
    stw r6, 0(r8)
    nop
    li r7, 1
1:  b 1b
"""


@pytest.mark.parametrize("model", MODELS)
def test_guest_store_to_a_patched_word_updates_the_original(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, SELF_MODIFYING)
    new_instruction = word("li r7, 99")
    vcpu.set_reg("r6", new_instruction)
    vcpu.insert_sw_breakpoint(BASE + 16)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG           # the breakpoint still fires after the store
    assert debug_exit(vcpu) == (BASE + 16, 0)
    assert vcpu.read_memory(BASE + 16, 4) == new_instruction.to_bytes(4, "big")
    assert vcpu.sw_breakpoints[BASE + 16].original == new_instruction
    vcpu.remove_sw_breakpoint(BASE + 16)
    assert vcpu.run(1) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r7") == 99                      # the stored instruction runs, not the old one


def test_debugger_write_over_a_breakpoint_keeps_it_armed() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    vcpu.insert_sw_breakpoint(BASE + 8)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    vcpu.write_memory(BASE + 4, word("li r4, 40").to_bytes(4, "big") + word("li r5, 50").to_bytes(4, "big"))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 8, 0)
    assert vcpu.get_reg("r4") == 40                      # the write before it was seen by fetch
    assert vcpu.sw_breakpoints[BASE + 8].original == word("li r5, 50")
    vcpu.remove_sw_breakpoint(BASE + 8)
    assert vcpu.run(1) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r5") == 50


@pytest.mark.parametrize("model", MODELS)
def test_guest_own_trap_goes_to_the_guest(model: str) -> None:
    vcpu = make_vcpu(model, "trap")
    install_vectors(vcpu)
    load(vcpu, "li r3, 1\ntw 31,0,0\nli r4, 2\nli r5, 3\n1: b 1b")
    vcpu.insert_sw_breakpoint(BASE + 12)                 # a different address is in the table
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    assert vcpu.run(50) == kvm.KVM_EXIT_INTR             # no debug exit for the guest's trap
    assert vcpu.get_reg("r9") == 0x77                    # the guest's IVOR6 handler ran
    assert vcpu.get_reg("esr") == ESR_PTR
    assert vcpu.get_reg("srr0") == BASE + 4
    assert vcpu.get_reg("r4") == 0


def test_without_use_sw_bp_a_table_address_traps_to_the_guest() -> None:
    vcpu = make_vcpu("e500v2")
    install_vectors(vcpu)
    load(vcpu, STRAIGHT_LINE)
    vcpu.insert_sw_breakpoint(BASE + 4)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    vcpu.set_guest_debug(guest_debug(0))                 # !ENABLE: the guest owns the facility again
    assert vcpu.run(50) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("srr0") == BASE + 4
    assert vcpu.get_reg("esr") == ESR_PTR


def test_soft_breakpoints_are_reference_counted() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    vcpu.insert_sw_breakpoint(BASE + 8)
    vcpu.insert_sw_breakpoint(BASE + 8)
    assert vcpu.sw_breakpoints[BASE + 8].count == 2
    vcpu.remove_sw_breakpoint(BASE + 8)
    assert vcpu.sw_breakpoints[BASE + 8].count == 1
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG           # one reference left: still armed
    assert debug_exit(vcpu) == (BASE + 8, 0)
    vcpu.remove_sw_breakpoint(BASE + 8)
    assert BASE + 8 not in vcpu.sw_breakpoints
    assert vcpu.run(3) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r7") == 5
    with pytest.raises(KvmError) as failure:
        vcpu.remove_sw_breakpoint(BASE + 8)
    assert failure.value.errno == errno.ENOENT


def test_soft_breakpoint_errors() -> None:
    vcpu = make_vcpu()
    with pytest.raises(KvmError) as failure:
        vcpu.insert_sw_breakpoint(0x80000000)            # not mapped by the boot TLB
    assert failure.value.errno == errno.EFAULT
    with pytest.raises(KvmError) as failure:
        vcpu.insert_sw_breakpoint(BASE + 2)
    assert failure.value.errno == errno.EINVAL
    with pytest.raises(KvmError) as failure:
        vcpu.remove_sw_breakpoint(BASE)
    assert failure.value.errno == errno.ENOENT
    assert vcpu.sw_breakpoints == {}


# ----------------------------------------------------------------------------------------------
# power-off, budget, immediate_exit
# ----------------------------------------------------------------------------------------------
POWER_OFF = """
    lis r3, 0x1001
    mtspr 624, r3
    lis r3, 0xC000
    ori r3, r3, 0x0500
    mtspr 625, r3
    lis r3, 0xE000
    ori r3, r3, 0x000A
    mtspr 626, r3
    lis r3, 0xE000
    ori r3, r3, 0x0005
    mtspr 627, r3
    li r3, 0x000F
    mtspr 944, r3
    isync
    tlbwe
    isync
    lis r3, 0xE00F
    ori r3, r3, 0xF000
    lis r4, 0x8000
    stw r4, 0(r3)
    ori r4, r4, 42
    stw r4, 8(r3)
1:  b 1b
"""


@pytest.mark.parametrize("model", MODELS)
def test_power_off_is_a_shutdown_system_event(model: str) -> None:
    vcpu = make_vcpu(model)
    load(vcpu, POWER_OFF)
    assert vcpu.run() == kvm.KVM_EXIT_SYSTEM_EVENT
    event_type, ndata, status = struct.unpack_from(">IIQ", vcpu.kvm_run, OFF_EXIT_UNION)
    assert (event_type, ndata, status) == (kvm.KVM_SYSTEM_EVENT_SHUTDOWN, 1, 42)
    # The guest mapped CCSR at 0xE0000000: the debugger reads GPDAT through bus.peek.
    assert vcpu.read_memory(0xE00FF008, 4) == (0x80000000 | 42).to_bytes(4, "big")
    assert vcpu.read_ram(0xE00FF008, 4) is None         # device registers are never "RAM" to keep
    assert vcpu.run(10) == kvm.KVM_EXIT_SYSTEM_EVENT    # stays off
    vcpu.reset()                                        # the boot state of the (empty) image
    assert vcpu.get_reg("pc") == vcpu.machine.entry
    assert vcpu.machine.bus.poweroff_status is None


def test_budget_exit_is_intr_at_a_clean_boundary() -> None:
    vcpu = make_vcpu()
    load(vcpu, "1: addi r3, r3, 1\nb 1b")
    before = vcpu.cpu.instructions
    assert vcpu.run(1001) == kvm.KVM_EXIT_INTR
    assert exit_reason(vcpu) == kvm.KVM_EXIT_INTR
    assert vcpu.cpu.instructions - before == 1001
    assert vcpu.get_reg("r3") == 501
    assert vcpu.get_reg("pc") == BASE + 4


def test_immediate_exit_returns_at_once() -> None:
    vcpu = make_vcpu()
    load(vcpu, "1: addi r3, r3, 1\nb 1b")
    vcpu.kvm_run[OFF_IMMEDIATE_EXIT] = 1
    assert vcpu.run() == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r3") == 0
    vcpu.kvm_run[OFF_IMMEDIATE_EXIT] = 0
    assert vcpu.run(10) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r3") == 5


def test_exit_union_is_cleared_between_exits() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(BASE + 4, BREAKPOINT, 0)]))
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 4, BREAKPOINT)
    vcpu.set_guest_debug(guest_debug(0))
    assert vcpu.run(1) == kvm.KVM_EXIT_INTR
    assert bytes(vcpu.kvm_run[OFF_EXIT_UNION:OFF_EXIT_UNION + 256]) == bytes(256)


# ----------------------------------------------------------------------------------------------
# KVM_SET_GUEST_DEBUG errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("points", "code"), [
    ([(BASE, BREAKPOINT, 0), (BASE + 4, BREAKPOINT, 0), (BASE + 8, BREAKPOINT, 0)], errno.ENOSPC),
    ([(DATA, WATCH_READ, 0), (DATA + 8, WATCH_WRITE, 0), (DATA + 16, WATCH_WRITE, 0)], errno.ENOSPC),
    ([(DATA, WATCH_WRITE, 64), (DATA + 128, WATCH_WRITE, 0)], errno.ENOSPC),   # wide watch takes both DACs
    ([(DATA, 0x10, 0)], errno.EINVAL),
    ([(DATA, WATCH_WRITE | 0x1, 0)], errno.EINVAL),
    ([(0xFFFFFFF0, WATCH_WRITE, 0x20)], errno.EINVAL),
])
def test_set_guest_debug_errors_leave_the_configuration_unchanged(
        points: list[tuple[int, int, int]], code: int) -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(BASE + 12, BREAKPOINT, 0)]))
    with pytest.raises(KvmError) as failure:
        vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, points))
    assert failure.value.errno == code
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG           # the previous breakpoint is still in force
    assert debug_exit(vcpu) == (BASE + 12, BREAKPOINT)


def test_set_guest_debug_uses_every_slot_and_all_sixteen_entries() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    points = [(0, 0, 0)] * 10 + [(BASE + 16, BREAKPOINT, 0), (DATA, WATCH_READ, 0),
                                 (BASE + 8, BREAKPOINT, 0), (DATA + 64, WATCH_WRITE, 0)]
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, points))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 8, BREAKPOINT)
    state = vcpu.describe_debug_state()
    assert "IAC slots: 2/2" in state
    assert "DAC slots: 2/2" in state


def test_set_guest_debug_rejects_a_wrong_size_and_unknown_control_bits() -> None:
    vcpu = make_vcpu()
    with pytest.raises(KvmError) as failure:
        vcpu.set_guest_debug(bytes(263))
    assert failure.value.errno == errno.EINVAL
    with pytest.raises(KvmError) as failure:
        vcpu.set_guest_debug(guest_debug(ENABLE | 0x00040000))
    assert failure.value.errno == errno.EINVAL


def test_hw_points_ignored_without_use_hw_bp() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    vcpu.set_guest_debug(guest_debug(ENABLE, [(BASE + 8, BREAKPOINT, 0)]))
    assert vcpu.run(5) == kvm.KVM_EXIT_INTR
    assert vcpu.get_reg("r7") == 5


# ----------------------------------------------------------------------------------------------
# registers, memory, introspection
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_register_access_by_name(model: str) -> None:
    vcpu = make_vcpu(model)
    names = vcpu.register_names()
    for required in ["r0", "r31", "pc", "msr", "cr", "lr", "ctr", "xer", "srr0", "esr", "dbcr0", "iac1",
                     "dac2", "ivor15", "mas1", "pid0", "sprg7", "tbl", "pvr"]:
        assert required in names
    if model == "e500v2":
        assert {"ev0h", "ev31h", "acc", "spefscr"} <= set(names)
        assert "f0" not in names
    else:
        assert {"f0", "f31", "fpscr"} <= set(names)
        assert "ev0h" not in names
    for index, name in enumerate(["r5", "lr", "ctr", "cr", "srr0", "sprg3", "usprg0"]):
        value = 0x12345678 + index * 0x1111
        vcpu.set_reg(name, value)
        assert vcpu.get_reg(name) == value
    assert vcpu.get_regs(["r5", "lr"]) == [0x12345678, 0x12345678 + 0x1111]
    assert vcpu.get_reg("pvr") == vcpu.model.pvr
    with pytest.raises(KeyError):
        vcpu.get_reg("r32")
    with pytest.raises(KeyError):
        vcpu.set_reg("nosuchspr", 1)


def test_register_names_cover_the_stub_register_table() -> None:
    from gdbstub.registers import RegisterTable  # the stub's single register table

    for model in MODELS:
        vcpu = make_vcpu(model)
        table = RegisterTable(model, frozenset(vcpu.register_names()))
        for reg in table.registers:
            vcpu.get_reg(reg.key)


def test_memory_access_errors_and_page_crossing() -> None:
    vcpu = make_vcpu()
    payload = bytes(range(256)) * 40                     # 10 KiB across three pages
    vcpu.write_memory(DATA - 100, payload)
    assert vcpu.read_memory(DATA - 100, len(payload)) == payload
    assert vcpu.machine.bus.ram[DATA - 100:DATA - 100 + len(payload)] == payload
    assert vcpu.read_ram(DATA, 4) == payload[100:104] and vcpu.read_ram(DATA, 0) == b""
    assert vcpu.read_ram(DATA - 100, 100) == payload[:100]
    assert vcpu.read_ram(DATA - 100, 104) is None        # crosses a page: read_memory's job
    boot_map_end = 0x04000000                            # TLB1[0] of the boot state: 64 MiB at EA 0
    assert vcpu.read_ram(boot_map_end - 4, 4) is not None
    assert vcpu.read_ram(0x80000000, 4) is None and vcpu.read_ram(0xFFFFFFFC, 8) is None
    with pytest.raises(KvmError) as failure:
        vcpu.read_memory(0x80000000, 4)
    assert failure.value.errno == errno.EFAULT
    with pytest.raises(KvmError) as failure:
        vcpu.write_memory(0x80000000, b"\0")
    assert failure.value.errno == errno.EFAULT


def test_describe_debug_state_and_last_exit() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    assert "owned by the guest" in vcpu.describe_debug_state()
    vcpu.insert_sw_breakpoint(BASE + 8)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    vcpu.run()
    state = vcpu.describe_debug_state()
    assert "owned by the debugger" in state and "USE_SW_BP" in state
    assert f"{BASE + 8:#010x}" in state
    assert "KVM_EXIT_DEBUG" in state
    assert vcpu.last_exit is not None
    assert (vcpu.last_exit.reason, vcpu.last_exit.address, vcpu.last_exit.status) == (
        kvm.KVM_EXIT_DEBUG, BASE + 8, 0)


def test_reset_keeps_debugger_breakpoints() -> None:
    vcpu = make_vcpu()
    load(vcpu, STRAIGHT_LINE)
    vcpu.insert_sw_breakpoint(BASE + 8)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    vcpu.reset()
    load(vcpu, STRAIGHT_LINE)                            # no image: RAM was cleared, put the code back
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (BASE + 8, 0)


def test_zero_length_watch_covers_the_aligned_word() -> None:
    vcpu = make_vcpu()
    load(vcpu, LOAD_STORE)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_HW_BP, [(DATA + 2, WATCH_READ, 0)]))
    assert vcpu.run(100) == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (DATA, WATCH_READ)        # lwz at DATA touches the watched word
    assert vcpu.get_reg("pc") == BASE + 8


@pytest.mark.parametrize("model", MODELS)
def test_example_guest_breakpoint_at_main_then_power_off(model: str) -> None:
    output: list[bytes] = []
    machine = Machine(model, uart_out=output.append)
    machine.load_elf(str(Path(__file__).parent.parent / "examples" / "bin" / f"hello-{model}.elf"))
    vcpu = Vcpu(machine)
    main = machine.symbols["main"]
    vcpu.insert_sw_breakpoint(main)
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG
    assert debug_exit(vcpu) == (main, 0)
    assert vcpu.get_reg("pc") == main
    vcpu.remove_sw_breakpoint(main)
    assert vcpu.run() == kvm.KVM_EXIT_SYSTEM_EVENT
    assert struct.unpack_from(">IIQ", vcpu.kvm_run, OFF_EXIT_UNION) == (kvm.KVM_SYSTEM_EVENT_SHUTDOWN, 1, 3)
    assert b"Hello from e500!" in b"".join(output)


def test_budget_larger_than_one_slice_is_exact() -> None:
    vcpu = make_vcpu()
    load(vcpu, "1: addi r3, r3, 1\nb 1b")
    before = vcpu.cpu.instructions
    assert vcpu.run(40_001) == kvm.KVM_EXIT_INTR
    assert vcpu.cpu.instructions - before == 40_001
    assert vcpu.get_reg("r3") == 20_001


def test_immediate_exit_from_another_thread_stops_an_unbounded_run() -> None:
    import threading

    vcpu = make_vcpu()
    load(vcpu, "1: addi r3, r3, 1\nb 1b")
    timer = threading.Timer(0.05, vcpu.kvm_run.__setitem__, (OFF_IMMEDIATE_EXIT, 1))
    timer.start()
    try:
        assert vcpu.run() == kvm.KVM_EXIT_INTR
    finally:
        timer.cancel()
    assert vcpu.get_reg("r3") > 0
    assert vcpu.get_reg("pc") in (BASE, BASE + 4)


DECREMENTER_VECTOR = 0xA00


@pytest.mark.parametrize("model", MODELS)
def test_single_step_stops_on_the_vector_of_a_decrementer_interrupt(model: str) -> None:
    vcpu = make_vcpu(model)
    vcpu.set_reg("ivpr", 0)
    vcpu.set_reg("ivor10", DECREMENTER_VECTOR)
    load(vcpu, "li r11, 0x55\n1: b 1b", DECREMENTER_VECTOR, set_pc=False)
    load(vcpu, "1: addi r3, r3, 1\n b 1b")
    vcpu.set_reg("tcr", 0x04000000)        # DIE
    vcpu.set_reg("msr", 0x00008000)        # EE
    vcpu.set_reg("dec", 40)
    vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP))
    for _ in range(200):
        before = vcpu.cpu.instructions
        assert vcpu.run() == kvm.KVM_EXIT_DEBUG
        address, status = debug_exit(vcpu)
        if address == DECREMENTER_VECTOR:
            break
        assert vcpu.cpu.instructions == before + 1
    else:
        raise AssertionError("the decrementer interrupt was never stepped into")
    # The step that entered the interrupt executed nothing: pc is the vector, the handler has not run.
    assert vcpu.cpu.instructions == before and status == 0
    assert vcpu.get_reg("pc") == DECREMENTER_VECTOR and vcpu.get_reg("r11") == 0
    assert vcpu.get_reg("srr0") in (BASE, BASE + 4) and vcpu.get_reg("srr1") & 0x8000
    assert vcpu.run() == kvm.KVM_EXIT_DEBUG and vcpu.get_reg("r11") == 0x55   # next step runs it


def test_breakpoint_gdb_toggles_at_every_stop_leaves_no_garbage_and_no_recompiling() -> None:
    """gdb inserts its breakpoints before each continue and removes them at each stop. Each change
    invalidates the code built from that word: that must neither pile up bookkeeping nor recompile the
    loop around the breakpoint at every stop."""
    vcpu = make_vcpu()
    load(vcpu, "li r3, 0\n1: addi r3, r3, 1\n addi r4, r3, 3\n xor r5, r4, r3\n b 1b")
    loop_head = BASE + 4
    cpu = vcpu.cpu
    assert vcpu.run(5000) == kvm.KVM_EXIT_INTR                  # hot: the loop is translated
    assert loop_head in cpu._blocks
    translations = 0
    original = cpu._translate_block

    def counting(pc: int) -> object:
        nonlocal translations
        translations += 1
        return original(pc)

    cpu._translate_block = counting                           # type: ignore[method-assign]
    sizes = []
    rounds = 320
    for _ in range(rounds):
        vcpu.insert_sw_breakpoint(loop_head)
        vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP))
        assert vcpu.run() == kvm.KVM_EXIT_DEBUG and vcpu.get_reg("pc") == loop_head
        vcpu.remove_sw_breakpoint(loop_head)
        vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP))
        assert vcpu.run() == kvm.KVM_EXIT_DEBUG and vcpu.get_reg("pc") == loop_head + 4
        sizes.append(sum(len(users) for users in cpu._code_index.values()))
    assert vcpu.get_reg("r3") == 5000 // 4 + rounds
    assert sizes[-1] == sizes[rounds // 4]                     # bookkeeping stays the same size
    # No block holds the breakpoint's word, so the loop around it stays translated (was 2 per stop).
    assert translations <= 2
    assert loop_head + 4 in cpu._blocks and loop_head not in cpu._blocks


@pytest.mark.parametrize("model", MODELS)
def test_batch_register_reads_match_single_reads(model: str) -> None:
    """get_regs compiles its reads (plain SPR storage, the guest's debug registers and the MMU's are
    read without the SPR dispatch): every register must read as get_reg reads it."""
    vcpu = make_vcpu(model)
    load(vcpu, "1: addi r3, r3, 1\n b 1b")
    vcpu.run(1000)                                   # time base and decrementer move on
    rng = random.Random(7)
    names = vcpu.register_names()
    for name in names:
        if name not in ("pc", "msr"):
            vcpu.set_reg(name, rng.getrandbits(32))
    assert vcpu.get_regs(names) == [vcpu.get_reg(name) for name in names]
    assert any(value for value in vcpu.get_regs(names)[64:])


def test_debugger_reads_follow_tlb_changes() -> None:
    """The debugger's per-page translations are forgotten when the guest rewrites or drops a mapping."""
    vcpu = make_vcpu()
    mmu = vcpu.cpu.mmu
    vcpu.write_memory(0x200000, b"\x11\x22\x33\x44")
    vcpu.write_memory(0x300000, b"\x55\x66\x77\x88")

    def map_page(rpn: int, valid: bool = True) -> None:
        mmu.write_spr(SPR_MAS0, (1 << 28) | (5 << 16))        # TLB1 entry 5
        mmu.write_spr(SPR_MAS1, (MAS1_V if valid else 0) | (1 << 8))   # 4 KiB
        mmu.write_spr(SPR_MAS2, 0x40000000)
        mmu.write_spr(SPR_MAS3, rpn | MAS3_SR | MAS3_SW | MAS3_SX)
        mmu.write_spr(SPR_MAS7, 0)
        mmu.tlbwe()

    map_page(0x200000)
    assert vcpu.read_memory(0x40000000, 4) == b"\x11\x22\x33\x44"
    assert vcpu.read_ram(0x40000002, 2) == b"\x33\x44"
    map_page(0x300000)
    assert vcpu.read_memory(0x40000000, 4) == b"\x55\x66\x77\x88"
    assert vcpu.read_ram(0x40000000, 4) == b"\x55\x66\x77\x88"
    map_page(0x300000, valid=False)
    assert vcpu.read_ram(0x40000000, 4) is None
    with pytest.raises(KvmError):
        vcpu.read_memory(0x40000000, 4)



EVERY_EVENT = """
    li r3, 1
    li r4, 2
    lis r8, DATA@h
    stw r3, 0(r8)
    lwz r5, 4(r8)
1:  b 1b
""".replace("DATA", str(DATA))


@pytest.mark.parametrize("model", MODELS)
def test_each_debug_event_of_the_core_gets_its_uapi_status(model: str) -> None:
    """The core names its debug event; the vCPU gives it the uapi status (a soft breakpoint and a single
    step both carry status 0) and keeps the event's name for ``monitor debug``."""
    vcpu = make_vcpu(model)
    load(vcpu, EVERY_EVENT)
    vcpu.insert_sw_breakpoint(BASE + 4)
    points = [(BASE + 8, BREAKPOINT, 0), (DATA, WATCH_WRITE, 0), (DATA + 4, WATCH_READ, 0)]
    vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP | USE_HW_BP, points))
    expected = [((BASE + 4, 0), "soft breakpoint"), ((BASE + 8, BREAKPOINT), "breakpoint"),
                ((DATA, WATCH_WRITE), "write watch"), ((DATA + 4, WATCH_READ), "read watch")]
    for exit_values, detail in expected:
        assert vcpu.run(1000) == kvm.KVM_EXIT_DEBUG
        assert debug_exit(vcpu) == exit_values
        assert vcpu.last_exit is not None and vcpu.last_exit.detail == detail
        # Step past the reported instruction with nothing armed but the step, as gdb does.
        if detail == "soft breakpoint":
            vcpu.remove_sw_breakpoint(BASE + 4)
        vcpu.set_guest_debug(guest_debug(ENABLE | SINGLESTEP))
        pc = vcpu.get_reg("pc")
        assert vcpu.run(1000) == kvm.KVM_EXIT_DEBUG
        assert debug_exit(vcpu) == (pc + 4, 0)
        assert vcpu.last_exit is not None and vcpu.last_exit.detail == "single step"
        vcpu.set_guest_debug(guest_debug(ENABLE | USE_SW_BP | USE_HW_BP, points))


@pytest.mark.parametrize("model", MODELS)
def test_kvm_regs_carry_the_registers_the_table_places_there(model: str) -> None:
    vcpu = make_vcpu(model)
    raw = bytearray(vcpu.get_kvm_regs())
    assert len(raw) == 392
    assert struct.unpack_from(">Q", raw, 0)[0] == vcpu.get_reg("pc")
    values = {"pc": BASE + 0x40, "cr": 0x24000000, "ctr": 7, "lr": BASE + 8, "xer": 0x20000000,
              "msr": 0x00021000, "srr0": 0x1234, "srr1": 0x5678, "pid": 3}
    values.update({f"sprg{n}": 0x100 + n for n in range(8)})
    layout = list(values)
    for index, name in enumerate(layout):
        struct.pack_into(">Q", raw, 8 * index, values[name])
    for n in range(32):
        struct.pack_into(">Q", raw, 136 + 8 * n, 0x1000 * n + 1)
    vcpu.set_kvm_regs(bytes(raw))
    names = {"pid": "pid0"}
    for name, value in values.items():
        assert vcpu.get_reg(names.get(name, name)) == value, name
    assert vcpu.get_regs([f"r{n}" for n in range(32)]) == [0x1000 * n + 1 for n in range(32)]
    assert vcpu.get_kvm_regs() == bytes(raw)
    with pytest.raises(KvmError) as error:
        vcpu.set_kvm_regs(bytes(391))
    assert error.value.errno == errno.EINVAL


def test_the_vcpu_shows_the_machine_around_it() -> None:
    # What `monitor info tlb` / `info pic`, qXfer:exec-file and the memory map read, through the vCPU.
    image = Path(__file__).resolve().parent.parent / "examples" / "bin" / "hello-e500v2.elf"
    machine = Machine("e500v2")
    machine.load_elf(str(image))
    machine.reset()
    vcpu = Vcpu(machine)
    tlb = vcpu.describe_tlb().splitlines()
    assert tlb and tlb[0].startswith("TLB1[0] EA 0x00000000 -> PA 0x000000000 size ")
    assert vcpu.describe_pic().startswith("MPIC at CCSR+0x40000: ")
    assert vcpu.image_path() == str(image)
    assert vcpu.ram_size() == machine.bus.ram_size
    empty = make_vcpu()
    empty.machine.mmu.reset()
    assert empty.describe_tlb() == "no valid TLB entries\n"
    assert empty.image_path() is None

"""Unit tests of the e500 core (emulator.cpu): interrupt entry/exit, memory paths, fetch/decode cache,
patch overlay, power-off, machine check, wait state and determinism of run(N) vs N steps.

Programs are hand-written assembly built with powerpc-linux-gnu-as. Helpers here (assemble, make_cpu)
are also used by test_ops_system.py, test_timers.py and test_debug_facility.py.
Imports: pytest, the standard library and the emulator package.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

from emulator.bus import CCSR_BASE, PhysicalBus
from emulator.cpu import (
    SPR_CSRR0,
    SPR_DEAR,
    SPR_ESR,
    SPR_IVPR,
    SPR_MCSRR0,
    SPR_SRR0,
    SPR_SRR1,
    Cpu,
    StopKind,
)
from emulator.debug import HostDebug
from emulator.exceptions import (
    ESR_PIL,
    ESR_PPR,
    ESR_PTR,
    ESR_ST,
    IVOR_DATA_TLB_ERROR,
    IVOR_INSTRUCTION_TLB_ERROR,
    IVOR_MACHINE_CHECK,
    IVOR_PROGRAM,
    IVOR_SYSTEM_CALL,
    DebugEvent,
    Interrupt,
)
from emulator.mmu import Mmu
from emulator.models import MSR_CE, MSR_DE, MSR_EE, MSR_ME, MSR_PR

CODE_BASE = 0x1000
RAM_SIZE = 4 << 20
IVPR = 0x00100000
MAS3_ALL = 0x3F


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
@functools.cache
def assemble(source: str, model: str = "e500v2") -> bytes:
    """Assemble ``source`` (position independent: only relative branches) into raw big-endian words."""
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, raw = Path(tmp, "t.s"), Path(tmp, "t.o"), Path(tmp, "t.bin")
        src.write_text(".text\n" + source + "\n")
        cpu_flag = "-me500" if model == "e500v2" else "-me500mc"
        subprocess.run(["powerpc-linux-gnu-as", cpu_flag, "-o", str(obj), str(src)], check=True,
                       capture_output=True)
        subprocess.run(["powerpc-linux-gnu-objcopy", "-O", "binary", "-j", ".text", str(obj), str(raw)],
                       check=True, capture_output=True)
        return raw.read_bytes()


def make_cpu(source: str = "", model: str = "e500v2", *, at: int = CODE_BASE,
             vectors: dict[int, str] | None = None) -> Cpu:
    """A Cpu on a real bus/MMU with 16 MiB of EA 0 mapped flat, CCSR at EA 0xE0000000, IVPR set and
    every IVOR n pointing at IVPR + 0x100 * (n+1) (a `b .` there unless ``vectors`` gives code)."""
    bus = PhysicalBus(ram_size=RAM_SIZE)
    mmu = Mmu(model)
    mmu.set_entry(1, 0, mas1=0x80000000 | (7 << 8), mas2=0, mas3=MAS3_ALL)          # 16 MiB
    mmu.set_entry(1, 1, mas1=0x80000000 | (5 << 8), mas2=0xE000000A, mas3=(CCSR_BASE & 0xFFFFF000) | 0x05,
                  mas7=CCSR_BASE >> 32)                                             # 1 MiB CCSR
    mmu.set_entry(1, 2, mas1=0x80000000 | (5 << 8), mas2=0x90000000, mas3=0x3F, mas7=0x8)   # nothing there
    cpu = Cpu(model, bus, mmu)
    cpu.write_spr(SPR_IVPR, IVPR)
    for ivor in cpu.model.ivors:
        cpu.write_spr(cpu._ivor_spr(ivor), 0x100 * (ivor + 1))
        code = (vectors or {}).get(ivor, "b .")
        load(cpu, IVPR + 0x100 * (ivor + 1), assemble(code, model))
    if source:
        load(cpu, at, assemble(source, model))
    cpu.pc = at
    return cpu


def load(cpu: Cpu, pa: int, data: bytes) -> None:
    cpu.bus.ram[pa:pa + len(data)] = data
    cpu.invalidate_physical(pa, len(data))


def vector(cpu: Cpu, ivor: int) -> int:
    return IVPR + 0x100 * (ivor + 1)


def state(cpu: Cpu) -> dict[str, object]:
    """Everything architectural, for determinism comparisons."""
    return {"gpr": list(cpu.gpr), "pc": cpu.pc, "msr": cpu.msr, "cr": cpu.cr, "lr": cpu.lr, "ctr": cpu.ctr,
            "xer": cpu.xer, "sprs": dict(cpu.sprs), "instructions": cpu.instructions, "cycles": cpu.cycles,
            "tsr": cpu.timers.tsr, "tcr": cpu.timers.tcr, "dec": cpu.timers.dec(cpu.cycles),
            "tb": cpu.timers.tb(cpu.cycles)}


# ---------------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------------
def test_budget_counts_instructions_and_cycles() -> None:
    cpu = make_cpu("li 3,1\naddi 3,3,1\naddi 3,3,1\nb .")
    stop = cpu.run(10)
    assert stop.kind is StopKind.BUDGET
    assert cpu.gpr[3] == 3
    assert cpu.instructions == 10
    assert cpu.cycles == 10
    assert cpu.pc == CODE_BASE + 12


def test_system_call_saves_next_pc_and_keeps_ce_me_de() -> None:
    for model in ("e500v2", "e500mc"):
        cpu = make_cpu("sc\nnop", model)
        cpu.msr = MSR_CE | MSR_ME | MSR_DE | MSR_EE | MSR_PR
        cpu._select_context()
        cpu.run(1)
        assert cpu.pc == vector(cpu, IVOR_SYSTEM_CALL)
        assert cpu.sprs[SPR_SRR0] == CODE_BASE + 4
        assert cpu.sprs[SPR_SRR1] == MSR_CE | MSR_ME | MSR_DE | MSR_EE | MSR_PR
        assert cpu.msr == MSR_CE | MSR_ME | MSR_DE
        assert cpu.instructions == 1


def test_illegal_instruction_is_program_pil_at_the_instruction() -> None:
    cpu = make_cpu(".long 0\nnop")
    cpu.write_spr(SPR_ESR, 0x12345678)
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_PROGRAM)
    assert cpu.sprs[SPR_SRR0] == CODE_BASE
    assert cpu.sprs[SPR_ESR] == ESR_PIL
    assert cpu.instructions == 0   # the faulting instruction did not retire but used the budget


def test_privileged_instruction_in_user_mode_is_ppr() -> None:
    cpu = make_cpu("mfmsr 3")
    cpu.set_msr(MSR_PR)
    cpu.run(1)
    assert cpu.sprs[SPR_ESR] == ESR_PPR
    assert cpu.sprs[SPR_SRR1] == MSR_PR
    assert cpu.msr == 0


def test_rfi_returns_to_srr0_with_srr1() -> None:
    cpu = make_cpu("sc\nli 4,7\nb .", vectors={IVOR_SYSTEM_CALL: "li 5,9\nrfi"})
    cpu.set_msr(MSR_EE)
    cpu.run(4)
    assert cpu.gpr[5] == 9 and cpu.gpr[4] == 7
    assert cpu.msr == MSR_EE
    assert cpu.pc == CODE_BASE + 8


def test_data_tlb_miss_sets_dear_esr_and_mas() -> None:
    cpu = make_cpu("lis 3,0x4000\nstw 4,8(3)")
    cpu.mmu.mas4 = 0x00000100  # TSIZED = 4K
    cpu.run(2)
    assert cpu.pc == vector(cpu, IVOR_DATA_TLB_ERROR)
    assert cpu.sprs[SPR_DEAR] == 0x40000008
    assert cpu.sprs[SPR_ESR] == ESR_ST
    assert cpu.sprs[SPR_SRR0] == CODE_BASE + 4
    assert cpu.mmu.mas2 & 0xFFFFF000 == 0x40000000


def test_instruction_tlb_miss() -> None:
    cpu = make_cpu("lis 3,0x4000\nmtctr 3\nbctr")
    cpu.pc = 0x40000000
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_INSTRUCTION_TLB_ERROR)
    assert cpu.sprs[SPR_SRR0] == 0x40000000


def test_bus_error_is_a_machine_check() -> None:
    cpu = make_cpu("lis 3,0x9000\nlwz 4,0(3)")
    cpu.set_msr(MSR_ME)
    cpu.run(2)
    assert cpu.pc == vector(cpu, IVOR_MACHINE_CHECK)
    assert cpu.sprs[SPR_MCSRR0] == CODE_BASE + 4
    assert cpu.msr == 0
    cpu2 = make_cpu("lis 3,0x9000\nlwz 4,0(3)")
    assert cpu2.run(2).kind is StopKind.CHECKSTOP


def test_power_off_gpio_stops_after_the_store() -> None:
    source = """
        lis 3,0xE00F
        ori 3,3,0xF000
        lis 4,0x8000
        stw 4,0(3)
        ori 4,4,5
        stw 4,8(3)
        li 6,1
    """
    cpu = make_cpu(source)
    stop = cpu.run(100)
    assert stop.kind is StopKind.POWER_OFF
    assert stop.status == 5
    assert cpu.pc == CODE_BASE + 24
    assert cpu.gpr[6] == 0


def test_self_modifying_code_is_seen() -> None:
    # Run the loop once (decoding `li 5,1`), then overwrite it with `li 5,2` and run again.
    source = """
        li 5,1
        lwz 6,0x100(0)
        stw 6,0x1000(0)
        b .
    """
    cpu = make_cpu(source)
    load(cpu, 0x100, assemble("li 5,2"))
    cpu.run(4)
    assert cpu.gpr[5] == 1
    cpu.pc = CODE_BASE
    cpu.run(1)
    assert cpu.gpr[5] == 2


def test_patch_overlay_only_visible_to_fetch() -> None:
    cpu = make_cpu("li 3,1\nli 3,2\nb .")
    cpu.patch_instruction(CODE_BASE + 4, cpu.model.sw_break_opcode)
    cpu.sw_dispatch[CODE_BASE + 4] = CODE_BASE + 4
    cpu.set_host_debug(HostDebug(enabled=True, sw_breakpoints=True))
    stop = cpu.run(10)
    assert stop.kind is StopKind.HOST_DEBUG and stop.address == CODE_BASE + 4
    assert stop.event is DebugEvent.SOFT_BREAKPOINT
    assert cpu.pc == CODE_BASE + 4
    assert cpu.load32(CODE_BASE + 4) == 0x38600002
    cpu.unpatch_instruction(CODE_BASE + 4)
    cpu.run(1)
    assert cpu.gpr[3] == 2


def test_guest_trap_without_debugger_is_program_ptr() -> None:
    cpu = make_cpu("trap")
    cpu.run(1)
    assert cpu.sprs[SPR_ESR] == ESR_PTR
    assert cpu.sprs[SPR_SRR0] == CODE_BASE


def test_wait_with_nothing_enabled_stops_idle() -> None:
    cpu = make_cpu("wait\nb .", "e500mc")
    stop = cpu.run(5)
    assert stop.kind is StopKind.IDLE
    assert cpu.pc == CODE_BASE + 4


def test_critical_input_uses_csrr_and_clears_ee() -> None:
    cpu = make_cpu("b .")
    cpu.set_msr(MSR_CE | MSR_EE | MSR_ME)
    cpu.run(3)
    cpu.set_critical_input(True)
    cpu.run(1)
    assert cpu.sprs[SPR_CSRR0] == CODE_BASE
    assert cpu.msr == MSR_ME


def test_fault_loop_still_uses_the_budget() -> None:
    cpu = make_cpu("b .")
    cpu.write_spr(SPR_IVPR, 0x40000000)    # every vector is unmapped: ITLB miss forever
    cpu.pc = 0x40000000
    assert cpu.run(50).kind is StopKind.BUDGET
    assert cpu.instructions == 0


def test_guest_faults_never_escape_run() -> None:
    cpu = make_cpu("".join(f".long {w:#x}\n" for w in (0xFFFFFFFF, 0x00000000, 0x7C0007A4)))
    cpu.set_msr(MSR_PR)
    for _ in range(5):
        cpu.run(3)   # program interrupts go to the vector loop; nothing raises


def test_interrupt_exception_type_is_internal() -> None:
    assert issubclass(Interrupt, Exception)


def test_run_n_equals_n_steps_with_decrementer() -> None:
    source = """
        li 3,0
        li 4,100
        mtspr 54,4      # DECAR
        mtspr 22,4      # DEC
        lis 5,0x0440    # TCR: DIE | ARE
        mtspr 340,5
        wrteei 1
    1:  addi 3,3,1
        b 1b
    """
    handler = """
        addi 7,7,1
        lis 8,0x0800
        mtspr 336,8     # clear TSR[DIS]
        rfi
    """
    one = make_cpu(source, vectors={10: handler})
    two = make_cpu(source, vectors={10: handler})
    one.run(1000)
    for _ in range(1000):
        two.step()
    assert one.gpr[7] >= 5
    assert state(one) == state(two)

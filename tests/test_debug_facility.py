"""Debug facility tests: host IAC/DAC/single-step/soft-breakpoint exits and guest IAC/DAC/TRAP/ICMP
debug interrupts (CSRR on e500v2, DSRR on e500mc), DBSR w1c, slot validation.
Imports: pytest, the emulator package and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

import pytest
from test_cpu_core import CODE_BASE, make_cpu, vector

from emulator.cpu import SPR_CSRR0, SPR_DSRR0, StopKind
from emulator.debug import (
    DBCR0_DAC1W,
    DBCR0_IAC1,
    DBCR0_IC,
    DBCR0_IDM,
    DBCR0_TRAP,
    DBSR_DAC1W,
    DBSR_IAC1,
    DBSR_IC,
    DBSR_IDE,
    DBSR_TRAP,
    DataWatch,
    HostDebug,
)
from emulator.exceptions import IVOR_DEBUG, IVOR_SYSTEM_CALL, DebugEvent
from emulator.models import MSR_DE

PROGRAM = """
    li 3,0x2000
    li 4,1
    stw 4,0(3)
    lwz 5,4(3)
    addi 4,4,1
    b .
"""


def test_host_iac_exits_before_the_instruction() -> None:
    cpu = make_cpu(PROGRAM)
    cpu.set_host_debug(HostDebug(enabled=True, iac=[CODE_BASE + 8]))
    stop = cpu.run(100)
    assert (stop.kind, stop.address, stop.event) == (
        StopKind.HOST_DEBUG, CODE_BASE + 8, DebugEvent.BREAKPOINT)
    assert cpu.pc == CODE_BASE + 8 and cpu.instructions == 2
    assert cpu.load32(0x2000) == 0


def test_host_dac_write_and_read_clamped_access_not_performed() -> None:
    cpu = make_cpu(PROGRAM)
    cpu.set_host_debug(HostDebug(enabled=True, dac=[DataWatch(0x2002, 0x2003, read=False, write=True)]))
    stop = cpu.run(100)
    assert (stop.address, stop.event) == (0x2002, DebugEvent.WATCH_WRITE)
    assert cpu.pc == CODE_BASE + 8 and cpu.load32(0x2000) == 0
    cpu = make_cpu(PROGRAM)
    cpu.set_host_debug(HostDebug(enabled=True, dac=[DataWatch(0x2000, 0x2008, read=True, write=False)]))
    stop = cpu.run(100)
    assert (stop.address, stop.event, cpu.pc) == (0x2004, DebugEvent.WATCH_READ, CODE_BASE + 12)
    assert cpu.bus.ram[0x2003] == 1


def test_host_single_step_reports_next_pc_and_vector() -> None:
    cpu = make_cpu("li 3,1\nsc")
    cpu.set_host_debug(HostDebug(enabled=True, single_step=True))
    stop = cpu.run(100)
    assert (stop.kind, stop.address, cpu.instructions) == (StopKind.HOST_DEBUG, CODE_BASE + 4, 1)
    assert stop.event is DebugEvent.SINGLE_STEP
    stop = cpu.run(100)
    assert stop.address == vector(cpu, IVOR_SYSTEM_CALL) == cpu.pc
    assert stop.event is DebugEvent.SINGLE_STEP


def test_slot_validation() -> None:
    cpu = make_cpu()
    with pytest.raises(ValueError):
        cpu.set_host_debug(HostDebug(enabled=True, iac=[0, 4, 8]))
    with pytest.raises(ValueError):
        cpu.set_host_debug(HostDebug(enabled=True, dac=[DataWatch(0, 8, True, True),
                                                        DataWatch(16, 17, True, False)]))
    cpu.set_host_debug(HostDebug(enabled=True, dac=[DataWatch(0, 8, True, True)]))


@pytest.mark.parametrize(("model", "save"), [("e500v2", SPR_CSRR0), ("e500mc", SPR_DSRR0)])
def test_guest_iac_debug_interrupt(model: str, save: int) -> None:
    cpu = make_cpu(PROGRAM, model)
    cpu.write_spr(312, CODE_BASE + 8)
    cpu.write_spr(308, DBCR0_IDM | DBCR0_IAC1)
    cpu.set_msr(MSR_DE)
    cpu.run(3)
    assert cpu.pc == vector(cpu, IVOR_DEBUG)
    assert cpu.sprs[save] == CODE_BASE + 8
    assert cpu.read_spr(304) & DBSR_IAC1
    assert cpu.read_spr(308) == DBCR0_IDM | DBCR0_IAC1
    cpu.write_spr(304, DBSR_IAC1)          # w1c
    assert cpu.read_spr(304) == 0


def test_guest_dac_with_de_clear_is_delayed_until_de_set() -> None:
    cpu = make_cpu(PROGRAM + "\n")
    cpu.write_spr(316, 0x2000)
    cpu.write_spr(308, DBCR0_IDM | DBCR0_DAC1W)
    cpu.run(3)
    assert cpu.load32(0x2000) == 1           # access completed
    assert cpu.read_spr(304) == DBSR_DAC1W | DBSR_IDE
    cpu.set_msr(MSR_DE)
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_DEBUG)


def test_guest_trap_event_and_icmp() -> None:
    cpu = make_cpu("trap")
    cpu.write_spr(308, DBCR0_IDM | DBCR0_TRAP)
    cpu.set_msr(MSR_DE)
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_DEBUG) and cpu.sprs[SPR_CSRR0] == CODE_BASE
    assert cpu.read_spr(304) & DBSR_TRAP
    cpu = make_cpu(PROGRAM)
    cpu.write_spr(308, DBCR0_IDM | DBCR0_IC)
    cpu.set_msr(MSR_DE)
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_DEBUG) and cpu.sprs[SPR_CSRR0] == CODE_BASE + 4
    assert cpu.read_spr(304) & DBSR_IC


def test_guest_registers_virtualised_while_host_owns() -> None:
    cpu = make_cpu(PROGRAM)
    cpu.set_host_debug(HostDebug(enabled=True, single_step=True))
    cpu.write_spr(308, DBCR0_IDM | DBCR0_IAC1)
    assert cpu.read_spr(308) == DBCR0_IDM | DBCR0_IAC1

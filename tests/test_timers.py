"""Timer facility tests (emulator.timers via the core): DEC with/without auto-reload at exact cycle
counts, TSR write-one-to-clear, FIT bit selection, watchdog state machine and reset stop, priorities.
Imports: the emulator package and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

from test_cpu_core import make_cpu

from emulator.cpu import SPR_SRR0, StopKind
from emulator.exceptions import IVOR_DECREMENTER, IVOR_EXTERNAL_INPUT, IVOR_FIXED_INTERVAL_TIMER
from emulator.models import MSR_CE, MSR_EE
from emulator.timers import (
    TCR_ARE,
    TCR_DIE,
    TCR_FIE,
    TCR_WRC,
    TSR_DIS,
    TSR_ENW,
    TSR_FIS,
    TSR_WIS,
    Timers,
)


def test_dec_counts_down_and_stops_at_zero_without_are() -> None:
    timers = Timers()
    timers.write_dec(0, 10)
    assert timers.dec(3) == 7
    assert timers.next_event_cycle() == 10
    timers.advance(9)
    assert not timers.tsr & TSR_DIS
    timers.advance(10)
    assert timers.tsr & TSR_DIS
    assert timers.dec(50) == 0


def test_dec_auto_reload_from_decar() -> None:
    timers = Timers()
    timers.write_tcr(0, TCR_ARE)
    timers.write_decar(0, 5)
    timers.write_dec(0, 3)
    assert timers.dec(3) == 5          # 1 -> 0 reloads DECAR
    assert timers.dec(4) == 4
    timers.advance(3)
    timers.write_tsr(3, TSR_DIS)       # w1c
    assert not timers.tsr & TSR_DIS
    assert timers.next_event_cycle() == 8


def test_fit_bit_selection_and_edge() -> None:
    timers = Timers()
    # FP=3, FPEXT=15 -> index 63 -> TB bit 0 rises at every odd TB value.
    timers.write_tcr(0, 0x03000000 | (15 << 13) | TCR_FIE)
    assert timers.next_event_cycle() == 1
    timers.advance(1)
    assert timers.tsr & TSR_FIS
    assert timers.pending_interrupt(MSR_EE) == IVOR_FIXED_INTERVAL_TIMER


def test_watchdog_state_machine_and_reset() -> None:
    cpu = make_cpu("b .")
    # WP=3, WPEXT=15 -> TB bit 0: an expiry every 2 ticks; WRC=2.
    cpu.write_spr(340, 0xC0000000 | (15 << 17) | 0x20000000)
    stop = cpu.run(100)
    assert stop.kind is StopKind.WATCHDOG_RESET and stop.status == 2
    assert cpu.timers.tsr & (TSR_ENW | TSR_WIS) == TSR_ENW | TSR_WIS
    assert cpu.timers.tcr & TCR_WRC


def test_decrementer_interrupt_lands_on_exact_instruction() -> None:
    source = """
        li 4,50
        mtspr 22,4
        lis 5,0x0400
        mtspr 340,5
        wrteei 1
    1:  addi 3,3,1
        b 1b
    """
    cpu = make_cpu(source)
    cpu.run(50)
    assert cpu.pc != 0x100000 + 0x100 * (IVOR_DECREMENTER + 1)
    cpu.run(1)
    # DEC=50 written at cycle 1 (1 cycle per instruction here) expires at cycle 51: the interrupt is
    # taken right after the 51st instruction, before the 52nd.
    assert cpu.pc == 0x100000 + 0x100 * (IVOR_DECREMENTER + 1)
    assert cpu.instructions == 51
    assert cpu.sprs[SPR_SRR0] == 0x1000 + 20
    assert cpu.gpr[3] == 23


def test_priority_external_before_decrementer() -> None:
    timers = Timers()
    timers.tcr = TCR_DIE
    timers.tsr = TSR_DIS
    timers.external_input = True
    assert timers.pending_interrupt(MSR_EE) == IVOR_EXTERNAL_INPUT
    assert timers.pending_interrupt(MSR_CE) is None


def test_wait_skips_time_to_the_decrementer() -> None:
    cpu = make_cpu("""
        li 4,1000
        mtspr 22,4
        lis 5,0x0400
        mtspr 340,5
        wrteei 1
        wait
        b .
    """, "e500mc")
    stop = cpu.run(7)
    assert stop.kind is StopKind.BUDGET
    assert cpu.cycles >= 1001
    assert cpu.sprs[SPR_SRR0] == 0x1000 + 24

"""Timer facility tests (emulator.timers via the core): DEC with/without auto-reload at exact cycle
counts, TSR write-one-to-clear, FIT bit selection, watchdog state machine and reset stop, priorities.
Imports: the emulator package and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

import pytest
from test_cpu_core import assemble, make_cpu

from emulator.cpu import SPR_SRR0, StopKind
from emulator.exceptions import IVOR_DECREMENTER, IVOR_EXTERNAL_INPUT, IVOR_FIXED_INTERVAL_TIMER
from emulator.models import MSR_CE, MSR_EE
from emulator.timers import (
    TCR_ARE,
    TCR_DIE,
    TCR_FIE,
    TCR_WRC,
    TIMEBASE_HZ,
    TSR_DIS,
    TSR_ENW,
    TSR_FIS,
    TSR_WIS,
    Timers,
    icount_rate,
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


def test_wait_with_events_it_cannot_take_goes_straight_to_the_watchdog_reset() -> None:
    # MSR[EE]=0 and a decrementer expiring every tick: nothing but the watchdog's reset can end the
    # wait, many ticks later. The core jumps to it (three watchdog expiries) in one boundary, with
    # the decrementer's expiries applied on the way, instead of visiting each of them.
    cpu = make_cpu("""
        li 4,1
        mtspr 22,4
        mtspr 54,4
        wait
        b .
    """, "e500mc")
    # TCR: WP=2 with WPEXT=11 (TB bit 17: an expiry every 2^18 ticks, more decrementer expiries than
    # a wait visits one by one), WRC=3, DIE, ARE.
    cpu.write_spr(340, 0x80000000 | (11 << 17) | 0x30000000 | TCR_DIE | TCR_ARE)
    cpu.timers.write_decar(cpu.cycles, 1)
    stop = cpu.run(10)
    assert stop.kind is StopKind.WATCHDOG_RESET and stop.status == 3
    assert cpu.timers.tsr & TSR_DIS and cpu.timers.tsr & (TSR_ENW | TSR_WIS) == TSR_ENW | TSR_WIS
    assert cpu.timers.next_wake_cycle(0) is None    # reset requested: nothing left to wait for


def test_next_wake_cycle_counts_only_events_that_could_interrupt() -> None:
    timers = Timers()
    timers.write_tcr(0, TCR_DIE)
    timers.write_dec(0, 10)
    assert timers.next_wake_cycle(0) is None                 # EE=0: the decrementer cannot interrupt
    assert timers.next_wake_cycle(MSR_EE) == 10
    timers.write_tcr(0, TCR_FIE | 0x03000000 | (15 << 13))  # FIT on TB bit 0; DIE off
    assert timers.next_wake_cycle(MSR_EE) == 1
    assert timers.next_wake_cycle(MSR_CE) is None


# --- the guest clock: QEMU's -icount rule -----------------------------------------------------------
def test_icount_rate_is_an_exact_fraction_of_400_mhz() -> None:
    assert icount_rate(0) == (2, 5)               # 1 ns per instruction: 0.4 ticks
    assert icount_rate(8) == (512, 5)             # 256 ns: 102.4 ticks
    assert icount_rate(10) == (2048, 5)
    with pytest.raises(ValueError):
        icount_rate(31)


@pytest.mark.parametrize("shift", [0, 3, 8, 12])
def test_time_base_and_decrementer_follow_the_icount_shift(shift: int) -> None:
    timers = Timers()
    timers.set_rate(*icount_rate(shift))
    for cycles in (0, 1, 7, 1000, 123457):
        assert timers.tb(cycles) == cycles * (1 << shift) * TIMEBASE_HZ // 1_000_000_000
    timers.write_dec(0, 1000)
    event = timers.next_event_cycle()
    # The first cycle count at which DEC has counted its 1000 ticks, not one earlier.
    assert timers.tb(event) >= 1000 > timers.tb(event - 1)
    timers.advance(event - 1)
    assert not timers.tsr & TSR_DIS
    timers.advance(event)
    assert timers.tsr & TSR_DIS
    timers.reset()
    assert timers.rate == icount_rate(shift)      # the rate belongs to the machine, not to reset


def test_guest_sees_the_device_tree_frequency() -> None:
    """A guest timing a known instruction count with mftb gets timebase-frequency * guest time."""
    from emulator.board import Machine
    machine = Machine("e500mc", icount_shift=7)
    machine.reset()                               # the boot mapping of the first 64 MiB
    cpu = machine.cpu
    source = "mftb 3\n" + "nop\n" * 99 + "mftb 4\nb ."
    machine.bus.write_bytes(0x1000, assemble(source, "e500mc"))
    cpu.pc = 0x1000
    cpu.run(101)
    elapsed_ns = 100 * (1 << 7)                   # 100 instructions between the two reads
    assert cpu.gpr[4] - cpu.gpr[3] == elapsed_ns * TIMEBASE_HZ // 1_000_000_000   # 5120 ticks


def test_wait_reaches_a_one_second_decrementer_without_running_the_idle_time() -> None:
    cpu = make_cpu("""
        lis 4,0x17d8
        ori 4,4,0x4000
        mtspr 22,4
        lis 5,0x0400
        mtspr 340,5
        wrteei 1
        wait
        b .
    """, "e500mc")
    cpu.timers.set_rate(*icount_rate(8))          # DEC = 400,000,000 ticks: one guest second
    stop = cpu.run(7)
    assert stop.kind is StopKind.BUDGET
    assert cpu.instructions == 7 and cpu.sprs[SPR_SRR0] == 0x1000 + 28
    assert cpu.timers.tb(cpu.cycles) >= 400_000_000


@pytest.mark.parametrize("translate", [True, False])
def test_time_base_poll_loop_runs_translated_and_ends_like_single_steps(translate: bool) -> None:
    """The udelay shape: read TBU/TBL/TBU, compare with a target, loop. Run translated (a region with
    the time-base template) and single-stepped, the end state is the same."""
    source = """
        lis 9,0
        ori 9,9,50000
    1:  mfspr 3,269
        mfspr 4,268
        mfspr 5,269
        cmpw 3,5
        bne 1b
        cmplw 4,9
        blt 1b
        b .
    """
    fast, slow = make_cpu(source, "e500v2"), make_cpu(source, "e500v2")
    for cpu in (fast, slow):
        cpu.timers.set_rate(*icount_rate(3))      # 3.2 ticks per cycle
    fast.block_translation = translate
    fast.translate_after = 0
    fast.run(20_000)
    for _ in range(20_000):
        slow.step()
    assert (fast.pc, fast.gpr[:10], fast.cr, fast.cycles) == (slow.pc, slow.gpr[:10], slow.cr, slow.cycles)
    assert fast.gpr[4] >= 50000 and fast.pc == 0x1000 + 36
    if translate:
        assert any(block[0] is not None for block in fast._blocks.values())

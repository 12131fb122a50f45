"""MPIC register semantics (emulator.mpic) through the bus, the ns16550's interrupt logic, and their
delivery to the core: priorities, masking, task priority, IACK/EOI nesting, spurious vector, level
re-assertion, global timers on the cycle count, IPIs on several CPUs, proxy mode (EPR), and precise
delivery after a device store, a ``wrteei`` and a host byte, on translated and decoded paths alike;
random register traffic never raises; ``monitor info pic``.

Imports: pytest, hypothesis, the emulator package, gdbstub (session and target, for the monitor
command) and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cpu_core import CODE_BASE, make_cpu, vector

from emulator.board import connect_mpic
from emulator.bus import CCSR_BASE, PhysicalBus
from emulator.cpu import SPR_EPR, SPR_SRR0, Cpu
from emulator.exceptions import IVOR_CRITICAL_INPUT, IVOR_EXTERNAL_INPUT
from emulator.models import MSR_CE, MSR_EE
from emulator.mpic import CYCLES_PER_TIMER_TICK, GPIO_SOURCE, TIMER0, UART_SOURCE, Mpic

MPIC = CCSR_BASE + 0x40000
UART0 = CCSR_BASE + 0x4500
UART1 = CCSR_BASE + 0x4600
FRR, GCR, VIR, SPVR = 0x1000, 0x1020, 0x1080, 0x10E0
IPI0_IVPR = 0x10A0
TIMER0_TCCR, TIMER0_TBCR, TIMER0_TVPR, TIMER0_TDR = 0x1100, 0x1110, 0x1120, 0x1130
MSIR0, MSISR, MSIIR = 0x1600, 0x1720, 0x1740
CTPR, WHOAMI, IACK, EOI = 0x20080, 0x20090, 0x200A0, 0x200B0
IPIDR0 = 0x20040
MASK = 0x80000000
ACTIVITY = 0x40000000
SENSE = 0x00400000
SPURIOUS = 0xFFFF


def ivpr(source: int) -> int:
    return 0x10000 + 0x20 * source


def idr(source: int) -> int:
    return 0x10010 + 0x20 * source


def ilr(source: int) -> int:
    return 0x10018 + 0x20 * source


class Board:
    """The bus's MPIC with recorded output lines, registers accessed by offset."""

    def __init__(self, num_cpus: int = 1) -> None:
        self.bus = PhysicalBus(ram_size=1 << 20)
        self.cycles = 0
        if num_cpus != 1:
            self.bus.mpic = Mpic(num_cpus)
        self.mpic = self.bus.mpic
        self.mpic.clock = lambda: self.cycles
        self.int_lines = [False] * num_cpus
        self.cint_lines = [False] * num_cpus
        for cpu in range(num_cpus):
            self.mpic.connect_cpu(cpu, lambda level, n=cpu: self.int_lines.__setitem__(n, level),
                                  lambda level, n=cpu: self.cint_lines.__setitem__(n, level))

    def read(self, offset: int) -> int:
        return self.mpic.read(offset, 4)

    def write(self, offset: int, value: int) -> None:
        self.mpic.write(offset, 4, value)

    def source(self, number: int, priority: int, vector: int, *, level: bool | None = None) -> None:
        sense = SENSE if level else 0
        self.write(ivpr(number), (priority << 16) | vector | sense)
        self.write(idr(number), 1)

    @property
    def int_line(self) -> bool:
        return self.int_lines[0]


@pytest.fixture
def board() -> Board:
    return Board()


# --- identification and reset -----------------------------------------------------------------------------
def test_identification_and_reset_values(board: Board) -> None:
    assert board.read(0x0) == 0x00400402                    # BRR1: FSL MPIC 4.2
    assert board.read(FRR) == 0x00C30002                     # 196 sources, 1 CPU, version 1.2
    assert board.read(VIR) == 0 and board.read(GCR) == 0
    assert board.read(CTPR) == 15 and board.read(WHOAMI) == 0 and board.read(SPVR) == 0xFFFF
    assert board.read(ivpr(UART_SOURCE)) == 0x80800000      # internal: masked, active-high polarity
    assert board.read(ivpr(3)) == MASK and board.read(idr(3)) == 1
    assert board.read(TIMER0_TVPR) == MASK and board.read(TIMER0_TBCR) == 0x80000000
    assert board.read(IACK) == SPURIOUS
    # The source and CPU blocks read all-ones where nothing is defined; the summary block reads 0.
    assert board.read(0x10004) == 0xFFFFFFFF and board.read(0x200C0) == 0xFFFFFFFF
    assert board.read(0x3800) == 0
    # The end of the timer window aliases the timers, as QEMU decodes it.
    board.write(0x1200 + 0x20, (3 << 16) | 0x61)
    assert board.read(TIMER0_TVPR) == (3 << 16) | 0x61
    assert board.read(0x12F0) == board.read(0x1130 + 3 * 0x40)
    # Byte access to a word register, and accesses that cross a register boundary.
    assert board.mpic.read(FRR + 1, 1) == 0xC3
    assert board.mpic.read(FRR + 2, 4) == 0x0002FFFF
    board.mpic.write(SPVR + 2, 4, 0x00AB0000)
    assert board.read(SPVR) == 0x00AB


def test_ivpr_writable_bits(board: Board) -> None:
    board.write(ivpr(UART_SOURCE), 0xFFFFFFFF)
    assert board.read(ivpr(UART_SOURCE)) == 0x808FFFFF      # sense reads 0 on internal sources
    board.write(ivpr(5), 0xFFFFFFFF)
    assert board.read(ivpr(5)) == 0x80CFFFFF                # external: sense and polarity kept
    board.write(TIMER0_TVPR, 0xFFFFFFFF)
    assert board.read(TIMER0_TVPR) == 0x800FFFFF            # timers: no sense, no polarity
    board.write(SPVR, 0x12345678)
    assert board.read(SPVR) == 0x5678


def test_gcr_reset_and_modes(board: Board) -> None:
    board.source(UART_SOURCE, 5, 0x42)
    board.write(CTPR, 3)
    board.write(GCR, 0x20000000)
    assert board.read(GCR) == 0x20000000                    # mixed
    board.write(GCR, 0xE0000000)
    assert board.read(GCR) == 0                             # reset completes at once
    assert board.read(ivpr(UART_SOURCE)) == 0x80800000 and board.read(CTPR) == 15


# --- delivery ---------------------------------------------------------------------------------------------
def test_priority_masking_and_task_priority(board: Board) -> None:
    mpic = board.mpic
    board.source(20, 4, 0x20)
    board.source(21, 6, 0x21)
    board.source(22, 6, 0x22)
    mpic.set_irq(20, True)
    assert not board.int_line                               # CTPR 15 hides everything
    board.write(CTPR, 4)
    assert not board.int_line                               # priority must exceed CTPR
    board.write(CTPR, 3)
    assert board.int_line
    assert board.read(ivpr(20)) & ACTIVITY
    board.write(ivpr(20), MASK | (4 << 16) | 0x20)
    assert not board.int_line and not board.read(ivpr(20)) & ACTIVITY
    board.write(ivpr(20), (4 << 16) | 0x20)
    mpic.set_irq(22, True)
    mpic.set_irq(21, True)
    assert board.read(IACK) == 0x21                         # highest priority, lowest number on a tie
    board.write(EOI, 0)
    mpic.set_irq(21, False)
    assert board.read(IACK) == 0x22
    board.write(EOI, 0)
    mpic.set_irq(22, False)
    assert board.read(IACK) == 0x20
    board.write(EOI, 0)


def test_priority_zero_is_never_delivered(board: Board) -> None:
    board.source(30, 0, 0x30)
    board.write(CTPR, 0)
    board.mpic.set_irq(30, True)
    assert not board.int_line and board.read(IACK) == SPURIOUS


def test_iack_eoi_nesting(board: Board) -> None:
    mpic = board.mpic
    board.write(CTPR, 0)
    board.source(1, 3, 0x01)                                # edge
    board.source(2, 6, 0x02)
    board.source(3, 2, 0x03)
    mpic.set_irq(1, True)
    assert board.int_line
    assert board.read(IACK) == 0x01
    assert not board.int_line                               # in service at 3
    mpic.set_irq(3, True)
    assert not board.int_line and board.read(IACK) == SPURIOUS   # 2 does not preempt 3
    mpic.set_irq(2, True)
    assert board.int_line                                   # 6 does
    assert board.read(IACK) == 0x02
    assert mpic.destinations[0].in_service == {1, 2}
    board.write(EOI, 0)                                     # retires 2 (the highest) first
    assert mpic.destinations[0].in_service == {1}
    assert not board.int_line
    board.write(EOI, 0)
    assert board.int_line and board.read(IACK) == 0x03
    board.write(EOI, 0)
    board.write(EOI, 0)                                     # nothing in service: ignored
    assert not board.int_line and board.read(IACK) == SPURIOUS


def test_edge_source_needs_a_new_edge(board: Board) -> None:
    mpic = board.mpic
    board.write(CTPR, 0)
    board.source(4, 5, 0x04)
    mpic.set_irq(4, True)
    assert board.read(IACK) == 0x04
    board.write(EOI, 0)
    assert not board.int_line                               # the line is still high, but no new edge
    mpic.set_irq(4, False)
    mpic.set_irq(4, True)
    assert board.int_line


def test_level_source_is_raised_again_after_eoi(board: Board) -> None:
    mpic = board.mpic
    board.write(CTPR, 0)
    board.source(5, 5, 0x05, level=True)
    mpic.set_irq(5, True)
    assert board.read(IACK) == 0x05
    assert not board.int_line
    # The same source, still pending, is not higher than itself in service: spurious (OpenPIC rule).
    assert board.read(IACK) == SPURIOUS
    board.write(EOI, 0)
    assert board.int_line                                   # still asserted: raised again
    assert board.read(IACK) == 0x05
    mpic.set_irq(5, False)
    board.write(EOI, 0)
    assert not board.int_line


def test_critical_output_and_ilr(board: Board) -> None:
    board.source(UART_SOURCE, 1, 0x42)
    board.write(ilr(UART_SOURCE), 1)
    assert board.read(ilr(UART_SOURCE)) == 1
    board.mpic.set_irq(UART_SOURCE, True)
    assert board.cint_lines[0] and not board.int_line       # ignores CTPR, no IACK needed
    board.mpic.set_irq(UART_SOURCE, False)
    assert not board.cint_lines[0]


def test_msi_registers(board: Board) -> None:
    board.write(CTPR, 0)
    board.source(224 + 2, 5, 0xE2)
    board.write(MSIIR, (2 << 29) | (7 << 24))
    assert board.read(MSISR) == 0x4
    assert board.int_line and board.read(IACK) == 0xE2
    assert board.read(MSIR0 + 0x20) == 1 << 7
    assert board.read(MSIR0 + 0x20) == 0                    # clear on read, the source drops
    board.write(EOI, 0)
    assert not board.int_line


def test_ipis_on_several_cpus() -> None:
    board = Board(num_cpus=2)
    assert board.read(FRR) == 0x00C30102
    assert board.mpic.read(0x21090, 4) == 1                 # CPU 1's WHOAMI
    board.write(IPI0_IVPR, (7 << 16) | 0x70)
    board.write(CTPR, 0)
    board.mpic.write(0x21080, 4, 0)                          # CPU 1's CTPR
    board.write(IPIDR0, 0b11)
    assert board.int_lines == [True, True]
    assert board.read(IACK) == 0x70
    assert board.int_lines == [False, True]                  # each CPU acknowledges its own copy
    assert board.mpic.read(0x210A0, 4) == 0x70
    assert board.int_lines == [False, False]


# --- global timers ------------------------------------------------------------------------------------------
def test_timer_counts_on_the_cycle_clock(board: Board) -> None:
    board.write(CTPR, 0)
    board.write(TIMER0_TVPR, (7 << 16) | 0x60)
    board.write(TIMER0_TDR, 1)
    board.write(TIMER0_TBCR, 10)                             # start: 10 ticks
    assert board.mpic.next_event_cycle() == 10 * CYCLES_PER_TIMER_TICK
    board.cycles = 3 * CYCLES_PER_TIMER_TICK + 5
    assert board.read(TIMER0_TCCR) == 7
    board.cycles = 10 * CYCLES_PER_TIMER_TICK - 1
    board.mpic.advance(board.cycles)
    assert not board.int_line
    board.cycles += 1
    board.mpic.advance(board.cycles)
    assert board.int_line
    assert board.read(TIMER0_TCCR) == 0x80000000 | 10        # reloaded, TOG toggled
    assert board.mpic.next_event_cycle() == 20 * CYCLES_PER_TIMER_TICK
    assert board.read(IACK) == 0x60
    board.write(EOI, 0)
    board.write(TIMER0_TBCR, 0x80000000 | 10)                # count inhibit: stops, count reads 0
    assert board.read(TIMER0_TCCR) == 0x80000000
    assert board.mpic.next_event_cycle() is None


def test_masked_timer_catches_up_lazily(board: Board) -> None:
    board.write(TIMER0_TBCR, 4)
    assert board.mpic.next_event_cycle() is None             # masked: no event for the core
    board.cycles = 3 * 4 * CYCLES_PER_TIMER_TICK + CYCLES_PER_TIMER_TICK   # three expiries and a tick
    assert board.read(TIMER0_TCCR) == 0x80000000 | 3         # TOG toggled three times
    assert board.read(TIMER0_TVPR) & ACTIVITY == 0           # masked: pending but not active
    board.write(TIMER0_TVPR, (7 << 16) | 0x60)
    board.write(TIMER0_TDR, 1)
    board.write(CTPR, 0)
    assert board.int_line                                    # the expiry left it pending


# --- the UART's interrupt ---------------------------------------------------------------------------------
def test_uart_interrupt_identification_and_line() -> None:
    bus = PhysicalBus(ram_size=1 << 20)
    levels: list[bool] = []
    uart = bus.uart0
    uart.irq = levels.append
    bus.write(UART0 + 1, 1, 0x02)                           # ETBEI: THRE interrupt at once
    assert levels == [True] and bus.read(UART0 + 2, 1) == 0x02
    assert levels == [True, False]                          # reading IIR acknowledged THRE
    assert bus.read(UART0 + 2, 1) == 0x01
    bus.write(UART0 + 1, 1, 0x02)                           # unchanged ETBEI: no re-arm
    assert bus.read(UART0 + 2, 1) == 0x01
    bus.write(UART0, 1, ord("x"))                           # a sent byte empties THR again
    assert levels[-1] is True
    uart.feed(b"ab")
    bus.write(UART0 + 1, 1, 0x03)
    assert bus.read(UART0 + 2, 1) == 0x04                    # received data beats THRE
    assert bus.read(UART0 + 2, 1) == 0x04                    # and is not acknowledged by IIR
    assert bus.read(UART0, 1) == ord("a") and bus.read(UART0, 1) == ord("b")
    assert bus.read(UART0 + 2, 1) == 0x02
    bus.write(UART0 + 1, 1, 0x00)
    assert levels[-1] is False
    # FIFO with trigger level 4 and one byte: character timeout.
    bus.write(UART0 + 2, 1, 0x41)
    assert bus.read(UART0 + 2, 1) == 0xC1
    uart.feed(b"z")
    bus.write(UART0 + 1, 1, 0x01)
    assert bus.read(UART0 + 2, 1) == 0xCC
    uart.feed(b"123")
    assert bus.read(UART0 + 2, 1) == 0xC4
    bus.write(UART0 + 2, 1, 0x43)                            # clear the receive FIFO
    assert bus.read(UART0 + 2, 1) == 0xC1 and bus.read(UART0 + 5, 1) == 0x60


def test_uart_loopback_modem_status_and_receive_interrupt() -> None:
    bus = PhysicalBus(ram_size=1 << 20)
    bus.write(UART0 + 4, 1, 0x1A)                           # loop | OUT2 | RTS
    assert bus.read(UART0 + 6, 1) & 0xF0 == 0x90            # DCD | CTS, as the 8250 probe expects
    bus.write(UART0 + 1, 1, 0x01)
    bus.write(UART0, 1, ord("q"))
    assert bus.uart0.irq_level and bus.read(UART0 + 2, 1) == 0x04


def test_both_uarts_share_source_42(board: Board) -> None:
    board.write(CTPR, 0)
    board.source(UART_SOURCE, 5, 0x42)
    bus = board.bus
    bus.write(UART0 + 1, 1, 0x02)
    bus.write(UART1 + 1, 1, 0x02)
    assert board.int_line
    bus.write(UART0 + 1, 1, 0x00)
    assert board.read(ivpr(UART_SOURCE)) & ACTIVITY         # UART1 still asserts the shared line
    bus.write(UART1 + 1, 1, 0x00)
    assert not board.int_line and not board.read(ivpr(UART_SOURCE)) & ACTIVITY
    assert board.read(ivpr(GPIO_SOURCE)) == 0x80800000       # GPIO's source: wired, never asserted here


# --- delivery to the core ---------------------------------------------------------------------------------
def make_board_cpu(source: str, *, translate: bool, model: str = "e500v2") -> Cpu:
    """A core on a bus whose MPIC is wired as the board wires it; UART source 42 at priority 5."""
    cpu = make_cpu(source, model)
    connect_mpic(cpu.bus.mpic, cpu)
    cpu.translate_after = 0
    cpu.block_translation = translate
    mpic = cpu.bus.mpic
    mpic.write(ivpr(UART_SOURCE), 4, (5 << 16) | 0x42)
    mpic.write(CTPR, 4, 0)
    return cpu


STORE_IER = """
    lis 3,0xE000
    ori 3,3,0x4500
    li 4,2
    li 5,0
    addi 5,5,1
    addi 5,5,1
    stb 4,1(3)          # IER = ETBEI: the UART raises its line at once
    addi 5,5,1
    addi 5,5,1
    b .
"""


@pytest.mark.parametrize("translate", [True, False])
def test_device_store_interrupts_right_after_the_store(translate: bool) -> None:
    cpu = make_board_cpu(STORE_IER, translate=translate)
    cpu.set_msr(MSR_EE)
    cpu.run(50)
    assert cpu.sprs[SPR_SRR0] == CODE_BASE + 7 * 4
    assert cpu.gpr[5] == 2
    assert cpu.pc == vector(cpu, IVOR_EXTERNAL_INPUT)
    assert cpu.bus.mpic.destinations[0].int_level           # not acknowledged (not proxy mode)


WRTEEI = """
    lis 3,0xE000
    ori 3,3,0x4500
    li 4,2
    stb 4,1(3)
    li 5,7
    wrteei 1
    li 5,8
    b .
"""


@pytest.mark.parametrize("translate", [True, False])
def test_wrteei_takes_a_pending_interrupt_at_once(translate: bool) -> None:
    cpu = make_board_cpu(WRTEEI, translate=translate)
    cpu.run(50)
    assert cpu.sprs[SPR_SRR0] == CODE_BASE + 6 * 4
    assert cpu.gpr[5] == 7


def test_proxy_mode_loads_epr_on_the_interrupt() -> None:
    cpu = make_board_cpu(STORE_IER, translate=True)
    mpic = cpu.bus.mpic
    mpic.write(GCR, 4, 0x60000000)
    cpu.set_msr(MSR_EE)
    cpu.run(50)
    assert cpu.pc == vector(cpu, IVOR_EXTERNAL_INPUT)
    assert cpu.read_spr(SPR_EPR) == 0x42
    assert mpic.destinations[0].in_service == {UART_SOURCE}  # the core's acknowledge was the IACK
    assert not mpic.destinations[0].int_level


def test_host_byte_raises_received_data_interrupt() -> None:
    cpu = make_board_cpu("b .", translate=True)
    cpu.bus.write(UART0 + 1, 1, 0x01)
    cpu.set_msr(MSR_EE)
    cpu.run(10)
    assert cpu.pc == CODE_BASE                                # nothing received yet
    cpu.bus.uart0.feed(b"k")
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_EXTERNAL_INPUT)
    assert cpu.sprs[SPR_SRR0] == CODE_BASE


def test_critical_source_enters_critical_input() -> None:
    cpu = make_board_cpu(STORE_IER, translate=True)
    cpu.bus.mpic.write(ilr(UART_SOURCE), 4, 1)
    cpu.set_msr(MSR_CE)
    cpu.run(50)
    assert cpu.pc == vector(cpu, IVOR_CRITICAL_INPUT)


TIMER_LOOP = """
    lis 9,0xE004
    li 4,100
    stw 4,0x1110(9)     # timer 0 base count 100 ticks: starts counting
    li 5,0
1:  addi 5,5,1
    b 1b
"""


def _timer_cpu(translate: bool) -> Cpu:
    cpu = make_board_cpu(TIMER_LOOP, translate=translate)
    mpic = cpu.bus.mpic
    mpic.write(TIMER0_TVPR, 4, (7 << 16) | 0x60)
    mpic.write(TIMER0_TDR, 4, 1)
    cpu.set_msr(MSR_EE)
    return cpu


def test_timer_interrupt_is_precise_and_deterministic() -> None:
    # The store that starts the timer is the third instruction (at cycle 2), so it expires at cycle
    # 2 + 100 * 16 = 1602, which the first instruction boundary at or after it sees: after `li 5,0`
    # and 799 rounds of the loop, the next `addi` not yet executed. Translated regions, the decoded
    # path and single steps agree.
    entries = []
    for translate in (True, False):
        cpu = _timer_cpu(translate)
        for _ in range(100):
            if cpu.pc == vector(cpu, IVOR_EXTERNAL_INPUT):
                break
            cpu.run(37)
        entries.append((cpu.sprs[SPR_SRR0], cpu.gpr[5]))
        # One long run: only the store's own notice (no new run call) can schedule the expiry.
        cpu = _timer_cpu(translate)
        cpu.run(5000)
        entries.append((cpu.sprs[SPR_SRR0], cpu.gpr[5]))
    stepped = _timer_cpu(False)
    for _ in range(3000):
        if stepped.pc == vector(stepped, IVOR_EXTERNAL_INPUT):
            break
        stepped.step()
    entries.append((stepped.sprs[SPR_SRR0], stepped.gpr[5]))
    assert 1602 <= stepped.cycles < 1604
    assert entries == [(CODE_BASE + 16, 799)] * 5
    assert TIMER0 in stepped.bus.mpic._active


def test_idle_core_wakes_on_a_timer() -> None:
    cpu = make_board_cpu("""
        lis 9,0xE004
        li 4,50
        stw 4,0x1110(9)
        wait
        li 5,1
    """, translate=True, model="e500mc")
    mpic = cpu.bus.mpic
    mpic.write(TIMER0_TVPR, 4, (7 << 16) | 0x60)
    mpic.write(TIMER0_TDR, 4, 1)
    cpu.set_msr(MSR_EE)
    cpu.run(100)
    assert cpu.pc == vector(cpu, IVOR_EXTERNAL_INPUT)
    assert cpu.cycles >= 2 + 50 * CYCLES_PER_TIMER_TICK


def test_machine_describes_the_pic() -> None:
    from emulator.board import Machine

    machine = Machine()
    machine.bus.write(MPIC + ivpr(UART_SOURCE), 4, (5 << 16) | 0x42)
    machine.bus.write(MPIC + TIMER0_TBCR, 4, 1000)
    machine.bus.write(MPIC + ivpr(UART_SOURCE + 1), 4, MASK | (5 << 16) | 0x43)
    text = machine.describe_pic()
    assert "(1 masked idle sources with a vector or priority set are not shown)" in text
    assert " 43 internal27" not in text
    assert "GCR 0x00000000 (pass-through)" in text
    assert "cpu0: CTPR 15, INT low" in text
    assert " 42 internal26" in text and "0x42" in text
    assert "timer0: TBCR 0x000003e8" in text and "running" in text


def test_monitor_info_pic() -> None:
    from emulator.board import Machine
    from emulator.kvm import Vcpu
    from gdbstub.session import Session
    from gdbstub.target import Target

    machine = Machine()
    machine.bus.write(MPIC + ivpr(UART_SOURCE), 4, (5 << 16) | 0x42)
    session = Session(Target(Vcpu(machine), "e500v2"))
    assert "info pic" in session.monitor("help")
    text = session.monitor("info pic")
    assert text == machine.describe_pic()
    assert " 42 internal26" in text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["read", "write", "peek"]),
                          st.one_of(st.integers(0, 0x3FFFF), st.sampled_from(
                              [FRR, GCR, SPVR, IPI0_IVPR, 0x1200, 0x130C, MSIIR, IACK, EOI, CTPR, IPIDR0,
                               ivpr(42), idr(42), ilr(42), 0x3FFFC, 0x210A0])),
                          st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFFFFFF)), max_size=40))
def test_any_mpic_access_is_a_register_access_never_an_exception(
        accesses: list[tuple[str, int, int, int]]) -> None:
    board = Board()
    for kind, offset, size, value in accesses:
        board.cycles += 97
        if kind == "write":
            board.mpic.write(offset, size, value & ((1 << (8 * size)) - 1))
        else:
            result = getattr(board.mpic, kind)(offset, size)
            assert 0 <= result < 1 << (8 * size)
        board.mpic.advance(board.cycles)
    assert board.mpic.describe()

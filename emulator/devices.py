"""Memory-mapped devices of the QEMU ``ppce500`` board's CCSR window: the ns16550 UARTs and the
MPC8xxx GPIO block whose pin 0 powers the machine off.

Every device implements :class:`MmioDevice`: ``read``/``write`` are guest accesses (reads may have side
effects, e.g. popping the UART receive queue), ``peek`` is a debugger read that never changes state.
Offsets are relative to the device's base; multi-byte accesses are big-endian.

Imports: standard library only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

# --- CCSR placement on ppce500 (reference section 7) --------------------------------------------------
UART0_OFFSET = 0x4500
UART1_OFFSET = 0x4600
UART_WINDOW = 0x100
GPIO_OFFSET = 0xFF000
GPIO_WINDOW = 0x1000

# --- ns16550 registers (byte offsets, regshift 0) and bits ---------------------------------------------
UART_RBR_THR_DLL = 0
UART_IER_DLM = 1
UART_IIR_FCR = 2
UART_LCR = 3
UART_MCR = 4
UART_LSR = 5
UART_MSR = 6
UART_SCR = 7
LCR_DLAB = 0x80
LSR_DR = 0x01
LSR_THRE = 0x20
LSR_TEMT = 0x40
IER_RDI = 0x01
IER_THRI = 0x02
IIR_NO_INTERRUPT = 0x01
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_FIFO_ENABLED = 0xC0
FCR_FIFO_ENABLE = 0x01
FCR_CLEAR_RX = 0x02
MCR_LOOPBACK = 0x10
MSR_DEFAULT = 0xB0  # DCD | DSR | CTS, as QEMU's serial model reports

# --- MPC8xxx GPIO registers ---------------------------------------------------------------------------
GPIO_GPDIR = 0x00
GPIO_GPODR = 0x04
GPIO_GPDAT = 0x08
GPIO_GPIER = 0x0C
GPIO_GPIMR = 0x10
GPIO_GPICR = 0x14
GPIO_POWER_OFF_PIN = 0x80000000  # pin 0
EXIT_STATUS_MASK = 0xFF


class MmioDevice(Protocol):
    """A device mapped into the CCSR window."""

    def read(self, offset: int, size: int) -> int: ...
    def write(self, offset: int, size: int, value: int) -> None: ...
    def peek(self, offset: int, size: int) -> int: ...
    def reset(self) -> None: ...


class Ns16550Uart:
    """ns16550 UART, byte registers. Transmit is instant: LSR always shows THRE|TEMT.

    Output goes to ``uart_out(bytes)`` one byte per THR write; input is queued with ``feed``.
    There is no interrupt controller on this board model, so IIR only reports what would be pending.
    """

    def __init__(self, uart_out: Callable[[bytes], object] | None = None) -> None:
        self.uart_out = uart_out
        self.input: deque[int] = deque()
        self.reset()

    def reset(self) -> None:
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.divisor = 0
        self.thr_interrupt_pending = False
        self.input.clear()

    def feed(self, data: bytes) -> None:
        """Queue bytes for the guest to read from RBR."""
        self.input.extend(data)

    def _register(self, offset: int, consume: bool) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == UART_RBR_THR_DLL:
            if dlab:
                return self.divisor & 0xFF
            if not self.input:
                return 0
            return self.input.popleft() if consume else self.input[0]
        if offset == UART_IER_DLM:
            return (self.divisor >> 8) & 0xFF if dlab else self.ier
        if offset == UART_IIR_FCR:
            fifo_bits = IIR_FIFO_ENABLED if self.fcr & FCR_FIFO_ENABLE else 0
            if self.ier & IER_RDI and self.input:
                return fifo_bits | IIR_RDI
            if self.ier & IER_THRI and self.thr_interrupt_pending:
                if consume:
                    self.thr_interrupt_pending = False  # reading IIR acknowledges THRE
                return fifo_bits | IIR_THRI
            return fifo_bits | IIR_NO_INTERRUPT
        if offset == UART_LCR:
            return self.lcr
        if offset == UART_MCR:
            return self.mcr
        if offset == UART_LSR:
            return LSR_THRE | LSR_TEMT | (LSR_DR if self.input else 0)
        if offset == UART_MSR:
            return MSR_DEFAULT
        if offset == UART_SCR:
            return self.scr
        return 0

    def _write_register(self, offset: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if offset == UART_RBR_THR_DLL:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
            elif self.mcr & MCR_LOOPBACK:
                self.input.append(value)
            else:
                if self.uart_out is not None:
                    self.uart_out(bytes((value,)))
                self.thr_interrupt_pending = True
        elif offset == UART_IER_DLM:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | (value << 8)
            else:
                self.ier = value & 0x0F
                self.thr_interrupt_pending = bool(self.ier & IER_THRI)
        elif offset == UART_IIR_FCR:
            self.fcr = value
            if value & FCR_CLEAR_RX:
                self.input.clear()
        elif offset == UART_LCR:
            self.lcr = value
        elif offset == UART_MCR:
            self.mcr = value & 0x1F
        elif offset == UART_SCR:
            self.scr = value
        # LSR and MSR are read-only.

    def read(self, offset: int, size: int) -> int:
        value = 0
        for byte_offset in range(offset, offset + size):
            value = (value << 8) | self._register(byte_offset, consume=True)
        return value

    def peek(self, offset: int, size: int) -> int:
        value = 0
        for byte_offset in range(offset, offset + size):
            value = (value << 8) | self._register(byte_offset, consume=False)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        for index in range(size):
            self._write_register(offset + index, (value >> (8 * (size - 1 - index))) & 0xFF)


class Mpc8xxxGpio:
    """MPC8xxx GPIO block. Driving output pin 0 from low to high powers the board off (as QEMU's
    ppce500 wires it); ``on_power_off(status)`` gets the low 8 bits of that GPDAT write.

    Registers are 32-bit; narrower accesses read/write the addressed bytes of the register.
    """

    def __init__(self, on_power_off: Callable[[int], None]) -> None:
        self.on_power_off = on_power_off
        self.reset()

    def reset(self) -> None:
        self.registers = {GPIO_GPDIR: 0, GPIO_GPODR: 0, GPIO_GPDAT: 0, GPIO_GPIER: 0, GPIO_GPIMR: 0,
                          GPIO_GPICR: 0}

    def peek(self, offset: int, size: int) -> int:
        register = offset & ~3
        word = self.registers.get(register, 0)
        shift = 8 * (4 - (offset - register) - size)
        if shift < 0:  # an access crossing a register boundary: compose byte by byte
            return int.from_bytes(bytes(self.peek(offset + i, 1) for i in range(size)), "big")
        return (word >> shift) & ((1 << (8 * size)) - 1)

    read = peek  # GPIO reads have no side effects

    def write(self, offset: int, size: int, value: int) -> None:
        register = offset & ~3
        if register not in self.registers:
            return
        shift = 8 * (4 - (offset - register) - size)
        if shift < 0:
            for index in range(size):
                self.write(offset + index, 1, (value >> (8 * (size - 1 - index))) & 0xFF)
            return
        field = ((1 << (8 * size)) - 1) << shift
        old = self.registers[register]
        new = (old & ~field) | ((value << shift) & field)
        if register == GPIO_GPIER:
            self.registers[register] = old & ~((value << shift) & field)  # write-1-to-clear
            return
        self.registers[register] = new
        if register == GPIO_GPDAT:
            rising = new & ~old & self.registers[GPIO_GPDIR]
            if rising & GPIO_POWER_OFF_PIN:
                self.on_power_off(new & EXIT_STATUS_MASK)

"""Memory-mapped devices of the QEMU ``ppce500`` board's CCSR window: the ns16550 UARTs and the
MPC8xxx GPIO block whose pin 0 powers the machine off. (The interrupt controller they signal is in
:mod:`emulator.mpic`.)

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
LSR_OE = 0x02
LSR_BI = 0x10
LSR_THRE = 0x20
LSR_TEMT = 0x40
LSR_ERRORS = 0x1E            # OE | PE | FE | BI: what raises a receiver-line-status interrupt
IER_RDI = 0x01               # ERBFI: received data available (and character timeout)
IER_THRI = 0x02              # ETBEI: transmitter holding register empty
IER_RLSI = 0x04              # ELSI: receiver line status
IER_MSI = 0x08               # EDSSI: modem status
IIR_NO_INTERRUPT = 0x01
IIR_MSI = 0x00
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_RLSI = 0x06
IIR_CTI = 0x0C               # character timeout: data below the FIFO trigger level
IIR_ID_MASK = 0x0F
IIR_FIFO_ENABLED = 0xC0
FCR_FIFO_ENABLE = 0x01
RX_FIFO_DEPTH = 16
FCR_CLEAR_RX = 0x02
FCR_CLEAR_TX = 0x04
FCR_STORED = 0xC9            # FE, DMA mode and the trigger level; the clear bits self-clear
FCR_TRIGGER_SHIFT = 6
FIFO_TRIGGER_LEVELS = (1, 4, 8, 14)
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
    """ns16550A UART, byte registers, with its interrupt output (``irq(level)``, called on changes).

    Output goes to ``uart_out(bytes)`` one byte per THR write and transmission is instantaneous, as in
    QEMU: THRE and TEMT are always set and a THR write leaves a THRE interrupt pending at once. Input
    is queued with ``feed`` (the queue is the receive FIFO and has no size limit, so it never
    overruns). The interrupt identification follows QEMU's serial model, with priorities receiver
    line status > character timeout > received data > THRE > modem status; the THRE interrupt is
    cleared by reading IIR while it is the one shown, or by writing THR, and is re-armed when IER[ETBEI]
    goes from 0 to 1 while THRE is set (Linux's 8250 driver probes the UART for exactly this). With the
    FIFO on and fewer bytes than the trigger level, the character timeout is reported at once instead
    of after four character times (this model has no notion of line speed).
    """

    def __init__(self, uart_out: Callable[[bytes], object] | None = None,
                 irq: Callable[[bool], None] | None = None) -> None:
        self.uart_out = uart_out
        self.irq = irq
        self.input: deque[int] = deque()
        self.irq_level = False
        self.reset()

    def reset(self) -> None:
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.divisor = 0
        self.lsr_errors = 0
        self.thr_interrupt_pending = False
        self.input.clear()
        self._update_irq()

    def receive_room(self) -> int:
        """Bytes the receiver takes now, as QEMU's serial model accepts input: none while it holds
        any, else one with the FIFO off or sixteen with it on."""
        if self.input:
            return 0
        return RX_FIFO_DEPTH if self.fcr & FCR_FIFO_ENABLE else 1

    def feed(self, data: bytes) -> None:
        """Queue bytes for the guest to read from RBR (raises the received-data interrupt if enabled)."""
        self.input.extend(data)
        self._update_irq()

    # -- interrupt identification ------------------------------------------------------------------
    def interrupt_id(self) -> int:
        """IIR bits 0-3: the highest-priority pending interrupt, or IIR_NO_INTERRUPT."""
        ier = self.ier
        if ier & IER_RLSI and self.lsr_errors:
            return IIR_RLSI
        if ier & IER_RDI and self.input:
            if self.fcr & FCR_FIFO_ENABLE and len(self.input) < self._trigger_level():
                return IIR_CTI
            return IIR_RDI
        if ier & IER_THRI and self.thr_interrupt_pending:
            return IIR_THRI
        return IIR_NO_INTERRUPT  # modem status never changes on this board (MSR deltas stay 0)

    def _trigger_level(self) -> int:
        return FIFO_TRIGGER_LEVELS[self.fcr >> FCR_TRIGGER_SHIFT & 3]

    def _update_irq(self) -> None:
        level = self.interrupt_id() != IIR_NO_INTERRUPT
        if level != self.irq_level:
            self.irq_level = level
            if self.irq is not None:
                self.irq(level)

    def _modem_status(self) -> int:
        if not self.mcr & MCR_LOOPBACK:
            return MSR_DEFAULT
        # Loopback: OUT2 -> DCD, OUT1 -> RI, DTR -> DSR, RTS -> CTS (the 8250 driver's probe checks this).
        mcr = self.mcr
        return (mcr & 0x0C) << 4 | (mcr & 0x02) << 3 | (mcr & 0x01) << 5

    # -- registers ---------------------------------------------------------------------------------
    def _register(self, offset: int, consume: bool) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == UART_RBR_THR_DLL:
            if dlab:
                return self.divisor & 0xFF
            if not self.input:
                return 0
            if not consume:
                return self.input[0]
            value = self.input.popleft()
            self._update_irq()
            return value
        if offset == UART_IER_DLM:
            return (self.divisor >> 8) & 0xFF if dlab else self.ier
        if offset == UART_IIR_FCR:
            fifo_bits = IIR_FIFO_ENABLED if self.fcr & FCR_FIFO_ENABLE else 0
            ident = self.interrupt_id()
            if consume and ident == IIR_THRI:
                self.thr_interrupt_pending = False  # reading IIR acknowledges THRE
                self._update_irq()
            return fifo_bits | ident
        if offset == UART_LCR:
            return self.lcr
        if offset == UART_MCR:
            return self.mcr
        if offset == UART_LSR:
            value = LSR_THRE | LSR_TEMT | (LSR_DR if self.input else 0) | self.lsr_errors
            if consume and self.lsr_errors & (LSR_BI | LSR_OE):
                self.lsr_errors &= ~(LSR_BI | LSR_OE)
                self._update_irq()
            return value
        if offset == UART_MSR:
            return self._modem_status()
        if offset == UART_SCR:
            return self.scr
        return 0

    def _write_register(self, offset: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if offset == UART_RBR_THR_DLL:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
                return
            if self.mcr & MCR_LOOPBACK:
                self.input.append(value)
            elif self.uart_out is not None:
                self.uart_out(bytes((value,)))
            self.thr_interrupt_pending = True   # sent at once: THR is empty again
        elif offset == UART_IER_DLM:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | (value << 8)
                return
            changed = (self.ier ^ value) & IER_THRI
            self.ier = value & 0x0F
            if changed:
                self.thr_interrupt_pending = bool(self.ier & IER_THRI)  # THRE is always set here
        elif offset == UART_IIR_FCR:
            if (value ^ self.fcr) & FCR_FIFO_ENABLE:
                value |= FCR_CLEAR_RX | FCR_CLEAR_TX   # switching the FIFOs on or off empties them
            if value & FCR_CLEAR_RX:
                self.input.clear()
            if value & FCR_CLEAR_TX:
                self.thr_interrupt_pending = True
            self.fcr = value & FCR_STORED
        elif offset == UART_LCR:
            self.lcr = value
        elif offset == UART_MCR:
            self.mcr = value & 0x1F
        elif offset == UART_SCR:
            self.scr = value
        # LSR and MSR are read-only.
        self._update_irq()

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

    def __init__(self, on_power_off: Callable[[int], None],
                 irq: Callable[[bool], None] | None = None) -> None:
        self.on_power_off = on_power_off
        self.irq = irq
        self.irq_level = False
        self.reset()

    def reset(self) -> None:
        self.registers = {GPIO_GPDIR: 0, GPIO_GPODR: 0, GPIO_GPDAT: 0, GPIO_GPIER: 0, GPIO_GPIMR: 0,
                          GPIO_GPICR: 0}
        self._update_irq()

    def _update_irq(self) -> None:
        # The block's interrupt is the OR of the unmasked event bits. No input pin of this board is ever
        # driven, so GPIER stays 0 and the line stays low; it is wired for completeness.
        level = bool(self.registers[GPIO_GPIER] & self.registers[GPIO_GPIMR])
        if level != self.irq_level:
            self.irq_level = level
            if self.irq is not None:
                self.irq(level)

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
            self._update_irq()
            return
        self.registers[register] = new
        if register == GPIO_GPIMR:
            self._update_irq()
        if register == GPIO_GPDAT:
            rising = new & ~old & self.registers[GPIO_GPDIR]
            if rising & GPIO_POWER_OFF_PIN:
                self.on_power_off(new & EXIT_STATUS_MASK)

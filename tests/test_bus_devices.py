"""Tests for emulator.bus and emulator.devices: RAM access, CCSR decoding, BusError, block access,
the ns16550 UART and the power-off GPIO.

Imports: pytest and emulator.bus / emulator.devices.
"""

from __future__ import annotations

import pytest

from emulator.bus import CCSR_BASE, CCSR_SIZE, BusError, PhysicalBus

UART0 = CCSR_BASE + 0x4500
UART1 = CCSR_BASE + 0x4600
GPIO = CCSR_BASE + 0xFF000
RAM_SIZE = 1 << 20


@pytest.fixture
def output() -> list[bytes]:
    return []


@pytest.fixture
def bus(output: list[bytes]) -> PhysicalBus:
    return PhysicalBus(RAM_SIZE, output.append)


def test_ram_is_big_endian_and_zero_initialised(bus: PhysicalBus) -> None:
    assert bus.read(0x1000, 4) == 0
    bus.write(0x1000, 4, 0x11223344)
    assert bus.read(0x1000, 1) == 0x11
    assert bus.read(0x1002, 2) == 0x3344
    assert bytes(bus.ram[0x1000:0x1004]) == b"\x11\x22\x33\x44"
    bus.write(0x1001, 1, 0x1AB)  # truncated to the access size
    assert bus.read(0x1000, 4) == 0x11AB3344
    bus.write(0x1002, 2, 0xFFFF_BEEF)
    assert bus.peek(0x1000, 4) == 0x11ABBEEF
    bus.write(RAM_SIZE - 4, 4, 0xCAFEF00D)
    assert bus.read(RAM_SIZE - 4, 4) == 0xCAFEF00D


@pytest.mark.parametrize("pa", [RAM_SIZE, RAM_SIZE - 2, 0x8000_0000, CCSR_BASE - 4, CCSR_BASE + CCSR_SIZE,
                                0xF_FFFF_FFFC])
def test_unmapped_addresses_raise_bus_error(bus: PhysicalBus, pa: int) -> None:
    with pytest.raises(BusError):
        bus.read(pa, 4)
    with pytest.raises(BusError):
        bus.write(pa, 4, 0)
    with pytest.raises(BusError):
        bus.peek(pa, 4)


def test_unimplemented_ccsr_reads_zero_and_ignores_writes(bus: PhysicalBus) -> None:
    for pa in (CCSR_BASE, CCSR_BASE + 0x80000, CCSR_BASE + CCSR_SIZE - 4):  # (the MPIC is at 0x40000)
        bus.write(pa, 4, 0xFFFFFFFF)
        assert bus.read(pa, 4) == 0


def test_block_access(bus: PhysicalBus) -> None:
    data = bytes(range(256)) * 16
    bus.write_bytes(0x2000, data)
    assert bus.read_bytes(0x2000, len(data)) == data
    assert bus.read(0x2004, 4) == 0x04050607
    assert bus.read_bytes(0, 0) == b""
    with pytest.raises(BusError):
        bus.read_bytes(RAM_SIZE - 8, 16)
    with pytest.raises(BusError):
        bus.write_bytes(RAM_SIZE - 8, bytes(16))
    with pytest.raises(BusError):
        bus.read_bytes(0x4000_0000, 4)
    # A block read in CCSR goes through peek: it does not consume UART input.
    bus.uart0.feed(b"xy")
    assert bus.read_bytes(UART0, 8)[0] == ord("x")
    assert bus.read(UART0, 1) == ord("x")


def test_clear_ram(bus: PhysicalBus) -> None:
    bus.write_bytes(0, b"\xff" * 8192)
    bus.write(RAM_SIZE - 4, 4, 0xFFFFFFFF)
    bus.clear_ram()
    assert bus.read_bytes(0, 8192) == bytes(8192)
    assert bus.read(RAM_SIZE - 4, 4) == 0


def test_ram_size_validation() -> None:
    with pytest.raises(ValueError):
        PhysicalBus(0)
    with pytest.raises(ValueError):
        PhysicalBus(1000)


def test_register_device_rejects_overlap(bus: PhysicalBus) -> None:
    with pytest.raises(ValueError):
        bus.register_device(0x4500, 0x100, bus.uart1)


# --- UART ---------------------------------------------------------------------------------------------
def test_uart_transmit_and_line_status(bus: PhysicalBus, output: list[bytes]) -> None:
    for byte in b"hi\n":
        assert bus.read(UART0 + 5, 1) & 0x20  # THRE before every byte
        bus.write(UART0, 1, byte)
    assert b"".join(output) == b"hi\n"
    assert bus.read(UART0 + 5, 1) == 0x60
    bus.write(UART1, 1, ord("!"))
    assert output[-1] == b"!"


def test_uart_receive_queue_and_peek(bus: PhysicalBus) -> None:
    bus.uart0.feed(b"ab")
    assert bus.read(UART0 + 5, 1) == 0x61  # DR
    assert bus.peek(UART0, 1) == ord("a")
    assert bus.peek(UART0, 1) == ord("a")  # peek does not consume
    assert bus.read(UART0, 1) == ord("a")
    assert bus.read(UART0, 1) == ord("b")
    assert bus.read(UART0 + 5, 1) == 0x60
    assert bus.read(UART0, 1) == 0


def test_uart_divisor_latch_and_plain_registers(bus: PhysicalBus, output: list[bytes]) -> None:
    bus.write(UART0 + 3, 1, 0x83)  # DLAB | 8N1
    bus.write(UART0, 1, 0x1A)
    bus.write(UART0 + 1, 1, 0x02)
    assert bus.read(UART0, 1) == 0x1A and bus.read(UART0 + 1, 1) == 0x02
    assert output == []  # THR write with DLAB set only loads the divisor
    bus.write(UART0 + 3, 1, 0x03)
    assert bus.read(UART0 + 3, 1) == 0x03
    assert bus.read(UART0 + 1, 1) == 0  # IER again
    bus.write(UART0 + 1, 1, 0x05)
    assert bus.read(UART0 + 1, 1) == 0x05
    bus.write(UART0 + 7, 1, 0x5A)
    assert bus.read(UART0 + 7, 1) == 0x5A
    bus.write(UART0 + 4, 1, 0x03)
    assert bus.read(UART0 + 4, 1) == 0x03
    assert bus.read(UART0 + 6, 1) == 0xB0
    bus.write(UART0 + 3, 1, 0x83)
    assert bus.read(UART0, 1) == 0x1A  # divisor survived
    # A 16-bit read covers two byte registers.
    assert bus.read(UART0, 2) == 0x1A02


def test_uart_iir_and_fifo_control(bus: PhysicalBus) -> None:
    assert bus.read(UART0 + 2, 1) == 0x01
    bus.write(UART0 + 2, 1, 0x07)  # enable + clear FIFOs
    assert bus.read(UART0 + 2, 1) == 0xC1
    bus.write(UART0 + 1, 1, 0x02)  # THRI
    assert bus.peek(UART0 + 2, 1) == 0xC2
    assert bus.read(UART0 + 2, 1) == 0xC2
    assert bus.read(UART0 + 2, 1) == 0xC1  # reading IIR acknowledged it
    bus.uart0.feed(b"z")
    bus.write(UART0 + 1, 1, 0x01)
    assert bus.read(UART0 + 2, 1) == 0xC4
    bus.write(UART0 + 2, 1, 0x03)  # clear the receive FIFO
    assert bus.read(UART0 + 5, 1) == 0x60


def test_uart_loopback(bus: PhysicalBus, output: list[bytes]) -> None:
    bus.write(UART0 + 4, 1, 0x10)
    bus.write(UART0, 1, ord("q"))
    assert output == []
    assert bus.read(UART0, 1) == ord("q")


# --- GPIO power-off -----------------------------------------------------------------------------------
def test_gpio_power_off_with_status(bus: PhysicalBus) -> None:
    bus.write(GPIO, 4, 0x80000000)            # GPDIR: pin 0 output
    assert bus.read(GPIO, 4) == 0x80000000
    assert bus.poweroff_status is None
    bus.write(GPIO + 8, 4, 0x80000000 | 0x2A)
    assert bus.poweroff_status == 0x2A
    assert bus.read(GPIO + 8, 4) == 0x8000002A
    bus.reset()
    assert bus.poweroff_status is None
    assert bus.read(GPIO, 4) == 0


def test_gpio_power_off_status_zero(bus: PhysicalBus) -> None:
    bus.write(GPIO, 4, 0x80000000)
    bus.write(GPIO + 8, 4, 0x80000000)
    assert bus.poweroff_status == 0


def test_gpio_needs_output_direction_and_a_rising_edge(bus: PhysicalBus) -> None:
    bus.write(GPIO + 8, 4, 0x80000001)        # pin 0 still an input: nothing happens
    assert bus.poweroff_status is None
    bus.write(GPIO, 4, 0x80000000)
    bus.write(GPIO + 8, 4, 0x80000001)        # already high: no edge, as in QEMU
    assert bus.poweroff_status is None
    bus.write(GPIO + 8, 4, 0)
    bus.write(GPIO + 8, 4, 0x80000007)
    assert bus.poweroff_status == 7
    bus.write(GPIO + 8, 4, 0)
    bus.write(GPIO + 8, 4, 0x80000009)        # the first power-off status sticks
    assert bus.poweroff_status == 7


def test_gpio_other_registers(bus: PhysicalBus) -> None:
    for offset in (4, 0x10, 0x14):
        bus.write(GPIO + offset, 4, 0x12345678)
        assert bus.read(GPIO + offset, 4) == 0x12345678
    assert bus.read(GPIO + 0x0C, 4) == 0
    bus.gpio.registers[0x0C] = 0xF0
    bus.write(GPIO + 0x0C, 4, 0x30)           # GPIER is write-1-to-clear
    assert bus.read(GPIO + 0x0C, 4) == 0xC0
    bus.write(GPIO, 1, 0x80)                  # byte write to the top of GPDIR
    assert bus.read(GPIO, 4) == 0x80000000
    assert bus.read(GPIO + 0x40, 4) == 0      # unimplemented GPIO offset


def test_gpio_byte_write_powers_off(bus: PhysicalBus) -> None:
    bus.write(GPIO, 4, 0x80000000)
    bus.write(GPIO + 8, 1, 0x80)
    assert bus.poweroff_status == 0

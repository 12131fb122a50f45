"""The PCI controller and the global utilities block of the ppce500 CCSR (emulator.soc), driven
through the physical bus as a guest's loads and stores would (big-endian bus, the config-data window
little-endian as on QEMU). The values of the host bridge's header were read from QEMU 7.2 through
U-Boot's ``pci display``; tests/test_uboot.py compares U-Boot's own ``pci`` output on both machines.

Imports: pytest and emulator.bus / emulator.soc / emulator.board.
"""

from __future__ import annotations

import pytest

from emulator.board import Machine
from emulator.bus import CCSR_BASE, PhysicalBus

CFG_ADDR = CCSR_BASE + 0x8000
CFG_DATA = CCSR_BASE + 0x8004
GUTS = CCSR_BASE + 0xE0000


def swap32(value: int) -> int:
    return int.from_bytes(value.to_bytes(4, "little"), "big")


def config_read(bus: PhysicalBus, bus_number: int, devfn: int, register: int) -> int:
    """What U-Boot's in_le32 after out_be32 to CFG_ADDR reads."""
    bus.write(CFG_ADDR, 4, 0x80000000 | bus_number << 16 | devfn << 8 | register)
    return swap32(bus.read(CFG_DATA, 4))


@pytest.fixture
def bus() -> PhysicalBus:
    return PhysicalBus(1 << 20)


def test_host_bridge_header_as_qemu(bus: PhysicalBus) -> None:
    expected = {0x00: 0x00301957, 0x04: 0x00000000, 0x08: 0x0B200000, 0x0C: 0, 0x10: 0,
                0x2C: 0x11001AF4, 0x3C: 0}
    for register, value in expected.items():
        assert config_read(bus, 0, 0, register) == value, hex(register)
    # Sub-word reads through the window: the byte at CFG_DATA+n is config byte n of the dword.
    bus.write(CFG_ADDR, 4, 0x80000000)
    assert bus.read(CFG_DATA, 1) == 0x57 and bus.read(CFG_DATA + 2, 2) == 0x3000   # device id, LE
    assert bus.read(CFG_ADDR, 4) == 0x80000000


def test_absent_devices_buses_and_disabled_cycles_read_all_ones(bus: PhysicalBus) -> None:
    for bus_number, devfn in ((0, 8), (0, 0x88), (0, 1), (1, 0)):
        assert config_read(bus, bus_number, devfn, 0) == 0xFFFFFFFF
    bus.write(CFG_ADDR, 4, 0x00000000)           # enable bit clear
    assert bus.read(CFG_DATA, 4) == 0xFFFFFFFF


def test_bar_sizing_command_and_read_only_fields(bus: PhysicalBus) -> None:
    bus.write(CFG_ADDR, 4, 0x80000010)
    bus.write(CFG_DATA, 4, 0xFFFFFFFF)           # size the BAR
    assert swap32(bus.read(CFG_DATA, 4)) == 0xFFF00000          # 1 MiB memory BAR
    bus.write(CFG_DATA, 4, swap32(0xE0000000))
    assert config_read(bus, 0, 0, 0x10) == 0xE0000000
    bus.write(CFG_ADDR, 4, 0x80000004)
    bus.write(CFG_DATA, 4, swap32(0xFFFF0006))   # status is not writable, command is
    assert config_read(bus, 0, 0, 0x04) == 0x00000006
    bus.write(CFG_ADDR, 4, 0x80000004)
    bus.write(CFG_DATA, 4, 0xFFFFFFFF)
    assert config_read(bus, 0, 0, 0x04) == 0x00000547   # IO MEM MASTER PARITY SERR INTX_DISABLE
    bus.write(CFG_ADDR, 4, 0x80000000)
    bus.write(CFG_DATA, 4, 0)                    # vendor/device are read-only
    assert config_read(bus, 0, 0, 0) == 0x00301957
    for register in (0x14, 0x18, 0x30):          # no other BAR, no expansion ROM
        bus.write(CFG_ADDR, 4, 0x80000000 | register)
        bus.write(CFG_DATA, 4, 0xFFFFFFFF)
        assert config_read(bus, 0, 0, register) == 0
    bus.reset()
    assert config_read(bus, 0, 0, 0x10) == 0


def test_atmu_window_registers_keep_writes_and_read_as_qemu(bus: PhysicalBus) -> None:
    base = CCSR_BASE + 0x8C20                    # outbound window 1: POTAR, POTEAR, POWBAR, -, POWAR
    for offset, value in ((0x0, 0xE0000), (0x4, 0x1), (0x8, 0xC00000), (0x10, 0x8004401C)):
        bus.write(base + offset, 4, value)
    assert [bus.read(base + offset, 4) for offset in (0x0, 0x4, 0x8, 0xC)] == [0xE0000, 0x1, 0xC00000, 0]
    assert bus.read(base + 0x10, 4) == 0xE0000   # QEMU picks by address bits 3:2: POWAR reads as POTAR
    inbound = CCSR_BASE + 0x8DE0                 # inbound window 1: PITAR, -, PIWBAR, PIWBEAR, PIWAR
    bus.write(inbound + 0x10, 4, 0xA0F5501E)
    bus.write(inbound + 0x8, 4, 0x123)
    assert bus.read(inbound + 0x8, 4) == 0x123 and bus.read(inbound + 0x10, 4) == 0
    bus.write(CCSR_BASE + 0x8C00, 4, 0x55)       # window 0 is not one QEMU models
    assert bus.read(CCSR_BASE + 0x8C00, 4) == 0
    bus.write(CCSR_BASE + 0x8E20, 4, 0x77)       # gasket timer
    assert bus.read(CCSR_BASE + 0x8E24, 4) == 0x77


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_guts_pvr_svr_and_reset_request(model: str) -> None:
    machine = Machine(model)
    bus = machine.bus
    assert bus.read(GUTS + 0xA0, 4) == machine.model.pvr
    assert bus.read(GUTS + 0xA4, 4) == machine.model.svr
    assert bus.read(GUTS + 0x00, 4) == 0 and bus.read(GUTS + 0xA2, 2) == machine.model.pvr & 0xFFFF
    bus.write(GUTS + 0xB0, 4, 0x1)               # not the reset bit
    assert not bus.reset_requested
    bus.write(GUTS + 0xB0, 4, 0x2)
    assert bus.reset_requested
    bus.reset()
    assert not bus.reset_requested


def test_a_guest_store_to_rstcr_stops_the_core_for_a_system_reset() -> None:
    from test_cpu_core import make_cpu

    from emulator.cpu import StopKind
    cpu = make_cpu("lis 3,0xE00E\nli 4,2\nstw 4,0xB0(3)\nnop\nnop")   # CCSR is at EA 0xE0000000 here
    stop = cpu.run(5)
    assert stop.kind is StopKind.SYSTEM_RESET and cpu.instructions == 3 and cpu.pc == 0x1000 + 12

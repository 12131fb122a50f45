"""CCSR blocks of QEMU's ``ppce500`` board that firmware and kernels read at boot, answering as QEMU
7.2 does: the PCI host controller (config-space window, ATMU window registers, the host bridge's
config header) and the global utilities block (GUTS: PVR/SVR copies, reset control).

What QEMU gives, and so what is modelled here:

- PCI controller at CCSR+0x8000 (QEMU hw/pci-host/ppce500.c). CFG_ADDR (+0) is a big-endian
  register; CFG_DATA (+4..+7) is the little-endian window onto the config dword CFG_ADDR selects
  (enable bit 31, bus 23:16, devfn 15:8, register 7:2), so a guest's 32-bit load sees it
  byte-swapped, as on QEMU. Bus 0 devfn 0 is the host bridge (vendor 0x1957 Freescale, device
  0x0030, class 0x0B20 "processor/PowerPC", subsystem 0x1AF4:0x1100, BAR0 a 1 MiB memory BAR); every
  other device and bus answers all-ones ("no device"). The outbound/inbound window and gasket
  registers at +0xC00 keep what is written; reads pick the register by address bits 3:2, as
  QEMU does (so POWAR/PIWAR read back as POTAR/PITAR there). Windows are not mapped: no PCI device
  exists behind them.
- GUTS at CCSR+0xE0000 (QEMU hw/ppc/mpc8544_guts.c): PVR (+0xA0) and SVR (+0xA4) read the core's
  registers, RSTCR (+0xB0) bit 0x2 asks for a system reset; everything else reads 0.
- The L2 cache controller (CCSR+0x20000) and the local bus controller are not modelled by QEMU
  either: they read as the bus's unimplemented-register 0 (U-Boot prints "L2: disabled" on both).

Imports: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable

PCI_OFFSET = 0x8000
PCI_WINDOW = 0x1000
GUTS_OFFSET = 0xE0000
GUTS_WINDOW = 0x1000

_CFG_ADDR = 0x0
_CFG_DATA = 0x4
_CFG_ENABLE = 0x80000000
_REG_BASE = 0xC00
_OUTBOUND_WINDOWS = frozenset({0x20, 0x40, 0x60, 0x80})       # OW1-OW4, relative to _REG_BASE
_INBOUND_WINDOWS = frozenset({0x1A0, 0x1C0, 0x1E0})           # IW3, IW2, IW1
_GASKET_TIMER = 0x220
_OUTBOUND_READ = frozenset({0x0, 0x4, 0x8})                  # POTAR, POTEAR, POWBAR by bits 3:2
_OUTBOUND_WRITE = frozenset({0x0, 0x4, 0x8, 0x10})           # ... and POWAR
_INBOUND_READ = frozenset({0x0, 0x8, 0xC})                   # PITAR, PIWBAR, PIWBEAR
_INBOUND_WRITE = frozenset({0x0, 0x8, 0xC, 0x10})            # ... and PIWAR

# The host bridge's config header as QEMU 7.2 builds it (read through U-Boot's `pci display`).
PCI_VENDOR_FREESCALE = 0x1957
PCI_DEVICE_MPC8533E = 0x0030
PCI_CLASS_PROCESSOR_POWERPC = 0x0B20
_SUBSYSTEM_VENDOR = 0x1AF4       # QEMU's default subsystem IDs
_SUBSYSTEM_ID = 0x1100
_BAR0_SIZE = 1 << 20             # the BAR aliases the 1 MiB CCSR window
_COMMAND_WRITABLE = 0x0547       # IO, MEM, MASTER, PARITY, SERR, INTX_DISABLE
_CONFIG_SIZE = 256

GUTS_PVR = 0xA0
GUTS_SVR = 0xA4
GUTS_RSTCR = 0xB0
RSTCR_RESET = 0x2


def _host_bridge_config() -> bytearray:
    config = bytearray(_CONFIG_SIZE)
    config[0:4] = (PCI_VENDOR_FREESCALE | PCI_DEVICE_MPC8533E << 16).to_bytes(4, "little")
    config[0x0A:0x0C] = PCI_CLASS_PROCESSOR_POWERPC.to_bytes(2, "little")
    config[0x2C:0x30] = (_SUBSYSTEM_VENDOR | _SUBSYSTEM_ID << 16).to_bytes(4, "little")
    return config


def _write_mask() -> bytearray:
    """Which bits of the host bridge's config space a guest can change (QEMU's wmask)."""
    mask = bytearray(_CONFIG_SIZE)
    mask[0x04:0x06] = _COMMAND_WRITABLE.to_bytes(2, "little")
    mask[0x0C] = 0xFF                                         # cache line size
    mask[0x10:0x14] = ((~(_BAR0_SIZE - 1)) & 0xFFFFFFF0).to_bytes(4, "little")   # BAR0 address bits
    mask[0x3C] = 0xFF                                         # interrupt line
    return mask


_WRITE_MASK = _write_mask()


class E500PciHost:
    """The ppce500 PCI controller's register window (see the module docstring)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.config_address = 0
        self.bridge_config = _host_bridge_config()
        self.window_registers: dict[int, int] = {}
        self.gasket_timer = 0

    # -- config space ---------------------------------------------------------------------------
    def _config_target(self) -> int | None:
        """Config offset of the dword CFG_ADDR selects on the host bridge, or None (no device)."""
        address = self.config_address
        if not address & _CFG_ENABLE or (address >> 8) & 0xFFFF:   # bus 0, devfn 0 only
            return None
        return address & 0xFC

    def _config_read(self, byte: int, size: int) -> int:
        offset = self._config_target()
        if offset is None:
            return (1 << (8 * size)) - 1
        start = offset + byte
        return int.from_bytes(self.bridge_config[start:start + size], "little")

    def _config_write(self, byte: int, size: int, value: int) -> None:
        offset = self._config_target()
        if offset is None:
            return
        data = value.to_bytes(size, "little")
        for index in range(size):
            at = offset + byte + index
            keep = ~_WRITE_MASK[at] & 0xFF
            self.bridge_config[at] = (self.bridge_config[at] & keep) | (data[index] & _WRITE_MASK[at])

    # -- window registers -------------------------------------------------------------------------
    def _register_read(self, offset: int) -> int:
        relative = offset - _REG_BASE
        window, field = relative & 0xFE0, relative & 0xC
        if window == _GASKET_TIMER:
            return self.gasket_timer
        if (window in _OUTBOUND_WINDOWS and field in _OUTBOUND_READ) or (
                window in _INBOUND_WINDOWS and field in _INBOUND_READ):
            return self.window_registers.get(window | field, 0)
        return 0

    def _register_write(self, offset: int, value: int) -> None:
        relative = offset - _REG_BASE
        window, field = relative & 0xFE0, relative & 0x1F
        if window == _GASKET_TIMER:
            self.gasket_timer = value
        elif (window in _OUTBOUND_WINDOWS and field in _OUTBOUND_WRITE) or (
                window in _INBOUND_WINDOWS and field in _INBOUND_WRITE):
            self.window_registers[window | field] = value

    # -- MmioDevice ---------------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if _CFG_DATA <= offset < _CFG_DATA + 4:
            # Little-endian window: the bytes at CFG_DATA+n are config bytes n, n+1, ... in order,
            # so the big-endian bus value is their little-endian number byte-swapped.
            value = self._config_read(offset - _CFG_DATA, size)
            return int.from_bytes(value.to_bytes(size, "little"), "big")
        if offset < _CFG_DATA:
            return (self.config_address >> (8 * (4 - offset - size))) & ((1 << (8 * size)) - 1)
        if offset >= _REG_BASE and size == 4:
            return self._register_read(offset)
        return 0

    peek = read   # no read side effects

    def write(self, offset: int, size: int, value: int) -> None:
        if _CFG_DATA <= offset < _CFG_DATA + 4:
            little = int.from_bytes(value.to_bytes(size, "big"), "little")
            self._config_write(offset - _CFG_DATA, size, little)
        elif offset == _CFG_ADDR and size == 4:
            self.config_address = value
        elif offset >= _REG_BASE and size == 4:
            self._register_write(offset, value)


class Mpc8544Guts:
    """Global utilities: PVR/SVR copies and the reset control register (``on_reset()`` on RSTCR).

    ``pvr``/``svr`` are the core's values; the board sets them once it knows its core model.
    """

    def __init__(self, on_reset: Callable[[], None], pvr: int = 0, svr: int = 0) -> None:
        self.on_reset = on_reset
        self.pvr = pvr
        self.svr = svr

    def reset(self) -> None:
        pass   # no state: the registers QEMU models are the core's or write-only

    def read(self, offset: int, size: int) -> int:
        register = offset & ~3
        if register == GUTS_PVR:
            value = self.pvr
        elif register == GUTS_SVR:
            value = self.svr
        else:
            return 0
        shift = 8 * (4 - (offset - register) - size)
        return (value >> shift) & ((1 << (8 * size)) - 1) if shift >= 0 else 0

    peek = read

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == GUTS_RSTCR and size == 4 and value & RSTCR_RESET:
            self.on_reset()

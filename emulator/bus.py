"""The physical address space of the QEMU ``ppce500`` board: RAM at PA 0 and the 1 MiB CCSR window
at PA 0xF_E000_0000 holding the UARTs, the power-off GPIO, the PCI controller, the global utilities
and the MPIC (reference section 7), with the devices' interrupt signals wired to the MPIC's sources
as QEMU wires them.

Other devices may sit outside CCSR in windows of their own (:meth:`PhysicalBus.register_window`: the
spin table of the secondary cores).

RAM is an anonymous private ``mmap`` so untouched pages cost no resident memory and ``clear_ram`` can
hand pages back to the kernel instead of writing zeros. Accesses are big-endian. Anything outside RAM,
CCSR and the windows raises :class:`BusError`; unimplemented CCSR registers read as 0 and ignore writes.

Imports: standard library, :mod:`emulator.devices`, :mod:`emulator.soc` and :mod:`emulator.mpic`.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable

from emulator.devices import (
    GPIO_OFFSET,
    GPIO_WINDOW,
    UART0_OFFSET,
    UART1_OFFSET,
    UART_WINDOW,
    MmioDevice,
    Mpc8xxxGpio,
    Ns16550Uart,
)
from emulator.mpic import GPIO_SOURCE, MPIC_OFFSET, MPIC_WINDOW, UART_SOURCE, Mpic
from emulator.soc import GUTS_OFFSET, GUTS_WINDOW, PCI_OFFSET, PCI_WINDOW, E500PciHost, Mpc8544Guts

CCSR_BASE = 0xF_E000_0000
CCSR_SIZE = 0x10_0000
DEFAULT_RAM_SIZE = 128 << 20
_DEVICE_BLOCK_SHIFT = 8  # devices are placed on 256-byte granules of the CCSR window

_STRUCTS = {1: struct.Struct(">B"), 2: struct.Struct(">H"), 4: struct.Struct(">I"), 8: struct.Struct(">Q")}


class BusError(Exception):
    """Nothing is mapped at that physical address (or an access runs off the end of RAM)."""


class PhysicalBus:
    """RAM plus CCSR devices. ``poweroff_status`` becomes the exit status once the guest powers off."""

    def __init__(self, ram_size: int = DEFAULT_RAM_SIZE,
                 uart_out: Callable[[bytes], object] | None = None, num_cpus: int = 1) -> None:
        if ram_size <= 0 or ram_size % mmap.PAGESIZE:
            raise ValueError(f"RAM size must be a positive multiple of {mmap.PAGESIZE} bytes")
        if ram_size > CCSR_BASE:
            raise ValueError("RAM would overlap the CCSR window")
        self.ram_size = ram_size
        self.ram = mmap.mmap(-1, ram_size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.poweroff_status: int | None = None
        self._device_blocks: dict[int, tuple[MmioDevice, int]] = {}
        self._devices: list[MmioDevice] = []
        self.mpic = Mpic(num_cpus)
        # Devices outside CCSR (the spin table): (base PA, size, device).
        self._windows: list[tuple[int, int, MmioDevice]] = []
        self.uart0 = Ns16550Uart(uart_out, irq=self._uart_irq)
        self.uart1 = Ns16550Uart(uart_out, irq=self._uart_irq)
        self.gpio = Mpc8xxxGpio(self._power_off, irq=lambda level: self.mpic.set_irq(GPIO_SOURCE, level))
        # The MPIC first: resetting the bus resets it before the devices lower their lines into it.
        self.register_device(MPIC_OFFSET, MPIC_WINDOW, self.mpic)
        self.register_device(UART0_OFFSET, UART_WINDOW, self.uart0)
        self.register_device(UART1_OFFSET, UART_WINDOW, self.uart1)
        self.register_device(GPIO_OFFSET, GPIO_WINDOW, self.gpio)
        self.pci = E500PciHost()
        self.guts = Mpc8544Guts(self._request_reset)
        self.register_device(PCI_OFFSET, PCI_WINDOW, self.pci)
        self.register_device(GUTS_OFFSET, GUTS_WINDOW, self.guts)
        # Set by GUTS RSTCR: the core stops after the store and the board restarts its image.
        self.reset_requested = False

    # --- wiring --------------------------------------------------------------------------------------
    def register_device(self, ccsr_offset: int, size: int, device: MmioDevice) -> None:
        """Map ``device`` at CCSR + ccsr_offset for ``size`` bytes (256-byte granules)."""
        first = ccsr_offset >> _DEVICE_BLOCK_SHIFT
        last = (ccsr_offset + size - 1) >> _DEVICE_BLOCK_SHIFT
        if ccsr_offset % (1 << _DEVICE_BLOCK_SHIFT) or ccsr_offset + size > CCSR_SIZE or size <= 0:
            raise ValueError(f"bad CCSR device window {ccsr_offset:#x}+{size:#x}")
        for block in range(first, last + 1):
            if block in self._device_blocks:
                raise ValueError(f"CCSR offset {block << _DEVICE_BLOCK_SHIFT:#x} is already mapped")
            self._device_blocks[block] = (device, ccsr_offset)
        self._devices.append(device)

    def register_window(self, base: int, size: int, device: MmioDevice) -> None:
        """Map ``device`` at PA ``base`` for ``size`` bytes, outside RAM and CCSR."""
        end = base + size
        if base < self.ram_size or (base < CCSR_BASE + CCSR_SIZE and end > CCSR_BASE) or any(
                base < other + other_size and other < end for other, other_size, _ in self._windows):
            raise ValueError(f"window {base:#x}+{size:#x} overlaps RAM, CCSR or another window")
        self._windows.append((base, size, device))
        self._devices.append(device)

    def _uart_irq(self, level: bool) -> None:
        # Both UARTs share source 42 (QEMU e500.c); the shared line is the OR of the two.
        del level
        self.mpic.set_irq(UART_SOURCE, self.uart0.irq_level or self.uart1.irq_level)

    def _power_off(self, status: int) -> None:
        if self.poweroff_status is None:
            self.poweroff_status = status

    def _request_reset(self) -> None:
        self.reset_requested = True

    def reset(self) -> None:
        """Device state back to power-on; RAM is left alone (see ``clear_ram``)."""
        self.poweroff_status = None
        self.reset_requested = False
        for device in self._devices:
            device.reset()

    def clear_ram(self) -> None:
        """Zero all of RAM, returning the pages to the kernel where possible."""
        try:
            self.ram.madvise(mmap.MADV_DONTNEED)  # private anonymous pages read back as zeros
        except (AttributeError, OSError):
            chunk = bytes(1 << 20)
            for start in range(0, self.ram_size, len(chunk)):
                end = min(start + len(chunk), self.ram_size)
                self.ram[start:end] = chunk[:end - start]

    # --- scalar accesses --------------------------------------------------------------------------------
    def _device_at(self, pa: int) -> tuple[MmioDevice | None, int]:
        offset = pa - CCSR_BASE
        if not 0 <= offset < CCSR_SIZE:
            for base, size, device in self._windows:
                if base <= pa < base + size:
                    return device, pa - base
            raise BusError(f"no memory or device at physical address {pa:#x}")
        mapping = self._device_blocks.get(offset >> _DEVICE_BLOCK_SHIFT)
        if mapping is None:
            return None, 0
        device, base = mapping
        return device, offset - base

    def read(self, pa: int, size: int) -> int:
        """Guest read of 1/2/4 bytes, big-endian (device reads may have side effects)."""
        if pa + size <= self.ram_size:
            return _STRUCTS[size].unpack_from(self.ram, pa)[0]
        device, offset = self._device_at(pa)
        return device.read(offset, size) if device is not None else 0

    def peek(self, pa: int, size: int) -> int:
        """Debugger read: like ``read`` but devices are not disturbed."""
        if pa + size <= self.ram_size:
            return _STRUCTS[size].unpack_from(self.ram, pa)[0]
        device, offset = self._device_at(pa)
        return device.peek(offset, size) if device is not None else 0

    def write(self, pa: int, size: int, value: int) -> None:
        """Guest write of 1/2/4 bytes, big-endian; value is truncated to the access size."""
        if pa + size <= self.ram_size:
            _STRUCTS[size].pack_into(self.ram, pa, value & ((1 << (8 * size)) - 1))
            return
        device, offset = self._device_at(pa)
        if device is not None:
            device.write(offset, size, value & ((1 << (8 * size)) - 1))

    # --- block accesses (debugger, ELF loader) -------------------------------------------------------------
    def read_bytes(self, pa: int, length: int) -> bytes:
        """Read a block without side effects (RAM by slicing; CCSR bytes through ``peek``)."""
        if length <= 0:
            return b""
        if pa + length <= self.ram_size:
            return self.ram[pa:pa + length]
        if pa < self.ram_size:
            raise BusError(f"block {pa:#x}+{length:#x} runs past the end of RAM")
        self._device_at(pa + length - 1)  # the whole block must lie in CCSR
        return bytes(self.peek(pa + index, 1) for index in range(length))

    def write_bytes(self, pa: int, data: bytes) -> None:
        """Write a block (RAM by slicing; CCSR byte by byte as guest writes)."""
        if not data:
            return
        end = pa + len(data)
        if end <= self.ram_size:
            self.ram[pa:end] = data
            return
        if pa < self.ram_size:
            raise BusError(f"block {pa:#x}+{len(data):#x} runs past the end of RAM")
        self._device_at(pa)
        self._device_at(end - 1)
        for index, byte in enumerate(data):
            self.write(pa + index, 1, byte)

    def is_accessible(self, pa: int, length: int) -> bool:
        """True when [pa, pa+length) lies entirely in RAM or entirely in the CCSR window, so a block
        access to it cannot fail part way."""
        if pa >= 0 and pa + length <= self.ram_size:
            return True
        offset = pa - CCSR_BASE
        return offset >= 0 and offset + length <= CCSR_SIZE

    def is_ram(self, pa: int, length: int = 1) -> bool:
        """True when [pa, pa+length) lies entirely in RAM."""
        return pa >= 0 and pa + length <= self.ram_size

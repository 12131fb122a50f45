"""The ePAPR spin table of QEMU's ``ppce500`` machine, where secondary cores wait to be released.

QEMU (hw/ppc/ppce500_spin.c) models the table as a device at PA 0xF_EF00_0000 instead of running
firmware on the secondary cores: they stay halted from reset, and the device tree's
``cpu-release-addr`` of core ``i`` points at entry ``i``. An entry is 32 bytes, big-endian:

- ``addr`` (u64 at +0): 1 after reset; the boot program writes the secondary's entry address here;
- ``r3`` (u64 at +8): the secondary's r3 (reset value: the core's index);
- a reserved u32 (+16) and ``pir`` (u32 at +20, reset value: the core's index).

A guest write to an entry whose ``addr`` then has bit 0 clear releases that core (QEMU's spin_kick):
the board maps the 64 MiB around ``addr`` in the core's TLB1 entry 1 and starts it at ``addr`` within
that mapping with r3 from the entry (:meth:`SpinTable.release` calls the board back). Writes to the
boot core's entry change nothing, as in QEMU; bytes outside the table's entries read as 0.

Imports: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable

SPIN_TABLE_PA = 0xF_EF00_0000
SPIN_ENTRY_SIZE = 0x20
SPIN_MAX_CPUS = 32                    # QEMU's table size (its MAX_CPUS)
SPIN_TABLE_SIZE = SPIN_ENTRY_SIZE * SPIN_MAX_CPUS
RELEASE_MAP_SIZE = 64 << 20           # what a released core finds mapped around its entry address
_ADDR, _R3, _PIR = 0, 8, 20


class SpinTable:
    """The table's bytes and the release rule. ``release(core, addr, r3)`` is the board's callback."""

    def __init__(self, num_cpus: int, release: Callable[[int, int, int], None]) -> None:
        self.num_cpus = num_cpus
        self._release = release
        self._bytes = bytearray(SPIN_TABLE_SIZE)
        self.reset()

    def reset(self) -> None:
        self._bytes[:] = bytes(SPIN_TABLE_SIZE)
        for index in range(SPIN_MAX_CPUS):
            base = index * SPIN_ENTRY_SIZE
            self._bytes[base + _ADDR:base + _ADDR + 8] = (1).to_bytes(8, "big")
            self._bytes[base + _R3:base + _R3 + 8] = index.to_bytes(8, "big")
            self._bytes[base + _PIR:base + _PIR + 4] = index.to_bytes(4, "big")

    def entry(self, index: int) -> tuple[int, int, int]:
        """(addr, r3, pir) of core ``index``'s entry."""
        base = index * SPIN_ENTRY_SIZE
        data = self._bytes
        return (int.from_bytes(data[base + _ADDR:base + _ADDR + 8], "big"),
                int.from_bytes(data[base + _R3:base + _R3 + 8], "big"),
                int.from_bytes(data[base + _PIR:base + _PIR + 4], "big"))

    def read(self, offset: int, size: int) -> int:
        return self.peek(offset, size)

    def peek(self, offset: int, size: int) -> int:
        if offset + size > SPIN_TABLE_SIZE:
            return 0
        return int.from_bytes(self._bytes[offset:offset + size], "big")

    def write(self, offset: int, size: int, value: int) -> None:
        index = offset // SPIN_ENTRY_SIZE
        if offset + size > SPIN_TABLE_SIZE or index == 0 or index >= self.num_cpus:
            return      # the boot core does not spin; entries of absent cores are not wired
        self._bytes[offset:offset + size] = value.to_bytes(size, "big")
        addr, r3, _pir = self.entry(index)
        if not addr & 1:
            self._release(index, addr, r3)

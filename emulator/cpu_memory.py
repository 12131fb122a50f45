"""The core's memory access: loads, stores and instruction fetch through the MMU.

Data accesses go through per-page caches (EA page -> RAM offset) for RAM pages that no watch covers;
everything else takes the slow path: host and guest watches (DAC), translation (a miss or a protection
fault is a data TLB error / data storage interrupt), page-crossing accesses byte by byte with every
byte translated first, and the physical bus (a bus error is a machine check). Fetch translates, reads
through the soft-breakpoint overlay and decodes into the code cache, with IAC checks wrapped around
the handlers of watched addresses. ``translate_debug`` is the debugger's side-effect-free translation.

A room of :class:`emulator.cpu.Cpu` (a mixin: the state it works on is the core's, declared in
:class:`emulator.cpu_types.CoreRoom`). Imports: standard library and the emulator core modules.
"""

from __future__ import annotations

import struct

from emulator.bus import BusError
from emulator.cpu_types import (
    MCSR_BUS_IAERR,
    MCSR_BUS_RAERR,
    MCSR_BUS_WAERR,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    U16,
    U32,
    U64,
    CoreRoom,
    Handler,
)
from emulator.debug import DBSR_IDE
from emulator.exceptions import (
    ESR_ST,
    IVOR_ALIGNMENT,
    IVOR_DATA_STORAGE,
    IVOR_DATA_TLB_ERROR,
    IVOR_DEBUG,
    IVOR_INSTRUCTION_STORAGE,
    IVOR_INSTRUCTION_TLB_ERROR,
    DebugEvent,
    HostDebugEvent,
    Interrupt,
)
from emulator.mmu import Access, ProtectionFault, TlbMiss
from emulator.models import MSR_DE, MSR_PR

# Big-endian layouts of 1 to 32 words, for lmw/stmw (indexed by the word count).
_WORDS = [struct.Struct(f">{count}I") for count in range(33)]


class MemoryAccess(CoreRoom):
    """The memory access room of the core (see the module docstring)."""

    def load8(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None:
            return self._ram[base | (ea & PAGE_MASK)]
        return self._slow_load(ea, 1)

    def load16(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFE:
            return U16.unpack_from(self._ram, base | (ea & PAGE_MASK))[0]
        return self._slow_load(ea, 2)

    def load32(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFC:
            return U32.unpack_from(self._ram, base | (ea & PAGE_MASK))[0]
        return self._slow_load(ea, 4)

    def load64(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFF8:
            return U64.unpack_from(self._ram, base | (ea & PAGE_MASK))[0]
        return self._slow_load(ea, 8)

    def store8(self, ea: int, value: int) -> None:
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None:
            self._ram[base | (ea & PAGE_MASK)] = value & 0xFF
            return
        self._slow_store(ea, 1, value & 0xFF)

    def store16(self, ea: int, value: int) -> None:
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFE:
            U16.pack_into(self._ram, base | (ea & PAGE_MASK), value & 0xFFFF)
            return
        self._slow_store(ea, 2, value & 0xFFFF)

    def store32(self, ea: int, value: int) -> None:
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFC:
            U32.pack_into(self._ram, base | (ea & PAGE_MASK), value & 0xFFFFFFFF)
            return
        self._slow_store(ea, 4, value & 0xFFFFFFFF)

    def store64(self, ea: int, value: int) -> None:
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFF8:
            U64.pack_into(self._ram, base | (ea & PAGE_MASK), value & 0xFFFFFFFFFFFFFFFF)
            return
        self._slow_store(ea, 8, value & 0xFFFFFFFFFFFFFFFF)

    def load_words(self, ea: int, count: int) -> list[int]:
        """``count`` words from ``ea`` on, as that many :meth:`load32` calls in order read them (lmw):
        one slice when all lie on one page of the RAM page cache, where no load can fault or be
        watched; otherwise word by word, so a fault is as precise as theirs. An ``ea`` that is not
        word aligned raises lmw's alignment interrupt before any access."""
        if ea & 3:
            raise Interrupt(IVOR_ALIGNMENT, esr=0, dear=ea)
        offset = ea & PAGE_MASK
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and offset + 4 * count <= PAGE_SIZE:
            return list(_WORDS[count].unpack_from(self._ram, base | offset))
        return [self.load32((ea + 4 * index) & 0xFFFFFFFF) for index in range(count)]

    def store_words(self, ea: int, values: list[int]) -> None:
        """The words ``values`` (32-bit) from ``ea`` on, as that many :meth:`store32` calls in order
        store them (stmw): one slice on one cached writable RAM page (which holds no code and no
        watch), else word by word. An ``ea`` that is not word aligned raises stmw's alignment
        interrupt (ESR[ST]) before any access."""
        if ea & 3:
            raise Interrupt(IVOR_ALIGNMENT, esr=ESR_ST, dear=ea)
        offset = ea & PAGE_MASK
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and offset + 4 * len(values) <= PAGE_SIZE:
            _WORDS[len(values)].pack_into(self._ram, base | offset, *values)
            return
        for value in values:
            self.store32(ea, value)
            ea = (ea + 4) & 0xFFFFFFFF

    def store_zeros(self, ea: int, size: int) -> None:
        """``size`` zero bytes (a multiple of 4) from the word-aligned ``ea`` on, as ``size // 4``
        :meth:`store32` calls of 0 in order (dcbz): one slice on one cached writable RAM page."""
        offset = ea & PAGE_MASK
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and offset + size <= PAGE_SIZE:
            start = base | offset
            self._ram[start:start + size] = bytes(size)
            return
        for index in range(0, size, 4):
            self.store32((ea + index) & 0xFFFFFFFF, 0)

    def _translate_data(self, ea: int, access: Access, is_write: bool) -> int:
        msr = self.msr
        try:
            return self.mmu.translate(ea, access, msr)
        except TlbMiss:
            self.mmu.load_miss_defaults(ea, access, msr)
            raise Interrupt(IVOR_DATA_TLB_ERROR, esr=ESR_ST if is_write else 0, dear=ea) from None
        except ProtectionFault:
            raise Interrupt(IVOR_DATA_STORAGE, esr=ESR_ST if is_write else 0, dear=ea) from None

    def _page_cacheable(self, ea: int, pa: int) -> bool:
        return (pa + PAGE_MASK < self._ram_size and not self._all_data_slow
                and (ea >> PAGE_SHIFT) not in self._watched_pages)

    def _check_watches(self, ea: int, size: int, is_write: bool) -> None:
        for watch in self._host_watches:
            if (watch.write if is_write else watch.read) and ea < watch.end_exclusive \
                    and ea + size > watch.start:
                address = min(max(ea, watch.start), watch.end_exclusive - 1)
                raise HostDebugEvent(DebugEvent.WATCH_WRITE if is_write else DebugEvent.WATCH_READ, address)
        guest = self.guest_debug
        bits = guest.dac_hits(ea, size, is_write, self.msr)
        if bits:
            if self.msr & MSR_DE:
                guest.dbsr |= bits
                raise Interrupt(IVOR_DEBUG)
            # Delayed (imprecise) event: the access completes; the interrupt comes when DE is set.
            guest.dbsr |= bits | DBSR_IDE

    def _slow_load(self, ea: int, size: int) -> int:
        ea &= 0xFFFFFFFF
        if self._dac_active:
            self._check_watches(ea, size, False)
        if (ea & PAGE_MASK) + size > PAGE_SIZE:
            return self._split_load(ea, size)
        pa = self._translate_data(ea, Access.READ, False)
        if self._page_cacheable(ea, pa):
            self._read_pages[ea >> PAGE_SHIFT] = pa & ~PAGE_MASK
            return int.from_bytes(self._ram[pa:pa + size], "big")
        return self._physical_read(pa, size, ea)

    def _split_load(self, ea: int, size: int) -> int:
        # A misaligned access that crosses a page: translate every byte first (precise fault).
        addresses = [self._translate_data((ea + i) & 0xFFFFFFFF, Access.READ, False) for i in range(size)]
        value = 0
        for i, pa in enumerate(addresses):
            value = (value << 8) | self._physical_read(pa, 1, ea + i)
        return value

    def _slow_store(self, ea: int, size: int, value: int) -> None:
        ea &= 0xFFFFFFFF
        if self._dac_active:
            self._check_watches(ea, size, True)
        if (ea & PAGE_MASK) + size > PAGE_SIZE:
            addresses = [self._translate_data((ea + i) & 0xFFFFFFFF, Access.WRITE, True) for i in range(size)]
            for i, pa in enumerate(addresses):
                self._physical_write(pa, 1, (value >> (8 * (size - 1 - i))) & 0xFF, ea + i)
            return
        pa = self._translate_data(ea, Access.WRITE, True)
        if self._page_cacheable(ea, pa):
            if (pa >> PAGE_SHIFT) not in self._code_pages:
                self._write_pages[ea >> PAGE_SHIFT] = pa & ~PAGE_MASK
            else:
                self._code_write_pages[ea >> PAGE_SHIFT] = pa & ~PAGE_MASK
        self._physical_write(pa, size, value, ea)

    def _physical_read(self, pa: int, size: int, ea: int) -> int:
        if pa + size <= self._ram_size:
            return int.from_bytes(self._ram[pa:pa + size], "big")
        try:
            return self.bus.read(pa, size)
        except BusError:
            raise self._machine_check(pa, MCSR_BUS_RAERR) from None

    def _physical_write(self, pa: int, size: int, value: int, ea: int) -> None:
        if pa + size <= self._ram_size:
            if self._code_pages and (pa >> PAGE_SHIFT) in self._code_pages:
                self.invalidate_physical(pa, size)
            self._ram[pa:pa + size] = value.to_bytes(size, "big")
            return
        try:
            self.bus.write(pa, size, value)
        except BusError:
            raise self._machine_check(pa, MCSR_BUS_WAERR) from None
        status = self.bus.poweroff_status
        if status is not None:
            self._poweroff = status
            self._event_at = 0
        if getattr(self.bus, "reset_requested", False):
            self._event_at = 0       # the boundary after this store reports the system reset

    def translate_debug(self, ea: int) -> int | None:
        """Data-space translation for the debugger: no interrupts, no MAS updates, no DAC checks.

        Tries a read in the current mode first (the usual case, answered from the MMU's page cache);
        only a protection fault falls back to supervisor read and then fetch permission.
        """
        ea &= 0xFFFFFFFF
        msr = self.msr
        translate = self.mmu.translate
        try:
            return translate(ea, Access.READ, msr)
        except TlbMiss:
            return None
        except ProtectionFault:
            pass
        supervisor = msr & ~MSR_PR
        for access in (Access.READ, Access.FETCH):
            try:
                return translate(ea, access, supervisor)
            except TlbMiss:
                return None
            except ProtectionFault:
                continue
        return None

    def _fetch_decode(self, pc: int) -> tuple[Handler, int]:
        msr = self.msr
        try:
            pa = self.mmu.translate(pc, Access.FETCH, msr)
        except TlbMiss:
            self.mmu.load_miss_defaults(pc, Access.FETCH, msr)
            raise Interrupt(IVOR_INSTRUCTION_TLB_ERROR) from None
        except ProtectionFault:
            raise Interrupt(IVOR_INSTRUCTION_STORAGE, esr=0) from None
        word = self._patches.get(pa)
        in_ram = pa + 4 <= self._ram_size
        if word is None:
            if in_ram:
                word = U32.unpack_from(self._ram, pa)[0]
            else:
                try:
                    word = self.bus.read(pa, 4)
                except BusError:
                    raise self._machine_check(pa, MCSR_BUS_IAERR) from None
        entry = self._word_decode_cache.get(word)
        if entry is None:
            _spec, handler, cycles = self._decode(word, self.model.name)
            entry = self._word_decode_cache[word] = (handler, cycles)
        if self._iac_every_fetch or pc in self._iac_addresses:
            entry = (self._iac_wrapper(entry[0]), entry[1])
        if in_ram:
            decoded = self._decoded
            decoded[pc] = entry
            self._register_code((pa,), decoded, (pc,))
            page = pa >> PAGE_SHIFT
            self._fetch_pages[pc >> PAGE_SHIFT] = page
            count = self._code_pages.get(page)
            if count is None:
                # The page now holds code: stores to it must take the slow path to invalidate.
                base = page << PAGE_SHIFT
                for context in self._contexts.values():
                    stale = [k for k, v in context.write_pages.items() if v == base]
                    for k in stale:
                        del context.write_pages[k]
                count = 0
            self._code_pages[page] = count + 1
        return entry

    def _iac_wrapper(self, handler: Handler) -> Handler:
        def check_iac(cpu: CoreRoom, pc: int) -> int:
            host = cpu.host_debug
            if host.enabled and pc in [a & ~3 for a in host.iac]:
                raise HostDebugEvent(DebugEvent.BREAKPOINT, pc)
            guest = cpu.guest_debug
            bits = guest.iac_hits(pc, cpu.msr)
            if bits:
                if cpu.msr & MSR_DE:
                    guest.dbsr |= bits
                    raise Interrupt(IVOR_DEBUG)
                guest.dbsr |= bits | DBSR_IDE
            return handler(cpu, pc)
        return check_iac

"""The e500 core: architectural state, the run loop, precise interrupts, SPRs, memory access, debug.

``Cpu(model, bus, mmu)`` executes pre-decoded instruction handlers (from :mod:`emulator.isa`) out of
a decode cache keyed by effective address, one cache set per translation context (MSR[PR|IS|DS]).
Data accesses go through per-page caches (EA page -> RAM offset) for RAM pages that no watch covers;
everything else takes the slow path through :class:`emulator.mmu.Mmu` and the physical bus.
Time base and timers derive from the cycle counter (see :mod:`emulator.timers`), so N single steps and
one ``run(N)`` end in identical state. Guest faults never escape ``run``; they become interrupts.

Deviations from QEMU (we follow the e500 manual / Book E): MSR on interrupt entry keeps CE/ME/DE for
non-critical interrupts (QEMU keeps only ME); SRR1 on a program interrupt is a plain MSR copy; the
debug interrupt uses CSRR0/1 on e500v2 and DSRR0/1 on e500mc (QEMU writes both); IAC/DAC/TRAP debug
events are modelled; DEC stops at 0 with TCR[ARE]=0. A bus error (access to unmapped physical space)
is a machine check (MCSRR0/1, MCAR, MCSR bus-error bits; checkstop stop when MSR[ME]=0).

Imports: standard library, the other ``emulator`` core modules (never ``gdbstub`` or ``trio``).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from emulator.bus import BusError
from emulator.debug import (
    DBCR0_IC,
    DBCR0_IDM,
    DBCR0_TRAP,
    DBSR_EVENTS,
    DBSR_IC,
    DBSR_IDE,
    DBSR_TRAP,
    SPR_DAC1,
    SPR_DAC2,
    SPR_DBCR0,
    SPR_DBCR1,
    SPR_DBCR2,
    SPR_DBSR,
    SPR_IAC1,
    SPR_IAC2,
    GuestDebug,
    HostDebug,
)
from emulator.exceptions import (
    ESR_PTR,
    ESR_ST,
    IVOR_CRITICAL_DOORBELL,
    IVOR_CRITICAL_INPUT,
    IVOR_DATA_STORAGE,
    IVOR_DATA_TLB_ERROR,
    IVOR_DEBUG,
    IVOR_DOORBELL,
    IVOR_EXTERNAL_INPUT,
    IVOR_HYPERVISOR_PRIVILEGE,
    IVOR_INSTRUCTION_STORAGE,
    IVOR_INSTRUCTION_TLB_ERROR,
    IVOR_MACHINE_CHECK,
    IVOR_NAMES,
    IVOR_PROGRAM,
    IVOR_WATCHDOG,
    DebugEvent,
    HostDebugEvent,
    Interrupt,
    PowerOff,
)
from emulator.isa import XER_WRITABLE
from emulator.mmu import Access, ProtectionFault, TlbMiss
from emulator.models import (
    MODELS,
    MSR_CE,
    MSR_DE,
    MSR_DS,
    MSR_EE,
    MSR_IS,
    MSR_ME,
    MSR_PR,
    MSR_WE,
    CpuModel,
)
from emulator.sprs import (
    SPR_ATBL,
    SPR_ATBU,
    SPR_BBEAR,
    SPR_BBTAR,
    SPR_BUCSR,
    SPR_CSRR0,
    SPR_CSRR1,
    SPR_CTR,
    SPR_DEAR,
    SPR_DSRR0,
    SPR_DSRR1,
    SPR_EPCR,
    SPR_EPLC,
    SPR_EPR,
    SPR_EPSC,
    SPR_ESR,
    SPR_HID1,
    SPR_IVPR,
    SPR_L1CFG0,
    SPR_L1CFG1,
    SPR_L1CSR0,
    SPR_L1CSR1,
    SPR_L2CSR0,
    SPR_LPIDR,
    SPR_LR,
    SPR_MCAR,
    SPR_MCSR,
    SPR_MCSRR0,
    SPR_MCSRR1,
    SPR_MSRP,
    SPR_PIR,
    SPR_PVR,
    SPR_SPEFSCR,
    SPR_SPRG0,
    SPR_SPRG3R,
    SPR_SPRG8,
    SPR_SPRG9,
    SPR_SRR0,
    SPR_SRR1,
    SPR_USPRG0,
    SPR_XER,
    ivor_spr,
)
from emulator.timers import (
    SPR_DEC,
    SPR_DECAR,
    SPR_TBL_READ,
    SPR_TBL_WRITE,
    SPR_TBU_READ,
    SPR_TBU_WRITE,
    SPR_TCR,
    SPR_TSR,
    Timers,
)
from emulator.translate import (
    MAX_BLOCK_INSTRUCTIONS,
    MAX_REGION_BLOCKS,
    MAX_REGION_INSTRUCTIONS,
    NO_BLOCK,
    Block,
    Instruction,
    Superblock,
    branches_back,
    compile_region,
    ends_block,
    exit_targets,
    falls_through,
    loop_through_entry,
    template_for,
)

Handler = Callable[["Cpu", int], int]
DecodeFn = Callable[[int, str], tuple[Any, Handler, int]]

# What these registers keep of a write, and the self-clearing command bits, as QEMU 7.2 does.
_EPID_CONTEXT_MASK = 0xC00000FF              # EPR | EAS | EPID
_L2CSR0_COMMANDS = 0x00200C00                # L2FI | L2FL | L2LFC complete at once
# MMU SPRs whose writes change translation (PID0-2, MMUCSR0).
_TRANSLATION_SPRS = frozenset({48, 633, 634, 1012})

SPR_PRIVILEGED_BIT = 0x10

# MCSR bus-error bits (Linux reg_booke.h e500 MCSR_BUS_*; UNVERIFIED against the manual).
MCSR_MCP = 0x80000000
MCSR_BUS_IAERR = 0x00000080
MCSR_BUS_RAERR = 0x00000040
MCSR_BUS_WAERR = 0x00000020

# Which save/restore pair each interrupt class uses.
_CRITICAL_IVORS = frozenset({IVOR_CRITICAL_INPUT, IVOR_WATCHDOG, IVOR_CRITICAL_DOORBELL})

PAGE_SHIFT = 12
PAGE_MASK = 0xFFF
PAGE_SIZE = 1 << PAGE_SHIFT
_CONTEXT_BITS = MSR_PR | MSR_IS | MSR_DS
_NEVER = 1 << 80
# Cycles before the next event under which no new block is translated (a block costs at most this).
_TRANSLATE_HORIZON = 1024
# Misses at an address before a block is translated there.
_TRANSLATE_AFTER = 32
# Each time code built at an address is invalidated, the misses it takes to translate there again
# double, up to this many doublings: code that keeps changing (a breakpoint gdb inserts and removes at
# every stop) is translated a few times in all rather than once per change.
_RETRANSLATE_BACKOFF = 10

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class StopKind(enum.Enum):
    BUDGET = "budget exhausted"
    HOST_DEBUG = "host debug exit"
    POWER_OFF = "power-off"
    IDLE = "waiting with no interrupt source that can ever fire"
    WATCHDOG_RESET = "watchdog reset"
    SYSTEM_RESET = "system reset (GUTS RSTCR)"
    CHECKSTOP = "checkstop (machine check with MSR[ME]=0)"


@dataclass(frozen=True)
class UnhandledInterrupt:
    """The first interrupt since reset taken through an IVOR the guest never set: almost always a
    guest with no handler installed, such as an image built for the other core spinning on an
    instruction this one lacks. ``word`` is the instruction at ``pc`` (None if unreadable) and
    ``decodes_on`` the models that implement it."""

    ivor: int
    pc: int
    vector: int
    word: int | None
    decodes_on: tuple[str, ...]

    @property
    def name(self) -> str:
        return IVOR_NAMES.get(self.ivor, f"IVOR{self.ivor}")


@dataclass(frozen=True)
class StopReason:
    """Why ``run``/``step`` returned. ``event`` and ``address`` for HOST_DEBUG (the watched address
    for a watch, else the pc), ``status`` for POWER_OFF (exit status) and WATCHDOG_RESET (TCR[WRC])."""

    kind: StopKind
    address: int = 0
    status: int = 0
    event: DebugEvent | None = None

    def __str__(self) -> str:
        event = f"{self.event.value}, " if self.event is not None else ""
        return f"{self.kind.value} ({event}address={self.address:#x}, status={self.status:#x})"


STOP_BUDGET = StopReason(StopKind.BUDGET)


# A superblock as collected: instructions, templates, their physical addresses, its exit targets.
_Collected = tuple[list[Instruction], list["list[str] | None"], list[int], list[int]]


class _Context:
    """Caches valid for one translation context (MSR[PR|IS|DS] value)."""

    __slots__ = ("blocks", "code_write_pages", "decoded", "read_pages", "superblocks", "write_pages")

    def __init__(self) -> None:
        self.decoded: dict[int, tuple[Handler, int]] = {}
        self.blocks: dict[int, Block] = {}
        # EA -> the superblock collected there (regions share them; dropped with the code they hold)
        self.superblocks: dict[int, _Collected] = {}
        self.read_pages: dict[int, int] = {}
        self.write_pages: dict[int, int] = {}
        # Writable RAM pages that also hold decoded code: a store may go straight to RAM only when
        # its word is not decoded (translated blocks check cpu._code_index first).
        self.code_write_pages: dict[int, int] = {}


class Cpu:
    """One e500 core. See the module docstring and docs/architecture.md."""

    def __init__(self, model: CpuModel | str, bus: Any, mmu: Any, *, decode: DecodeFn | None = None) -> None:
        self.model: CpuModel = MODELS[model] if isinstance(model, str) else model
        self.bus = bus
        self.mmu = mmu
        if decode is None:
            from emulator import isa  # deferred: isa imports the handler modules, which name Cpu

            decode = isa.decode
        self._decode = decode
        self._ram = bus.ram
        self._ram_size: int = bus.ram_size
        self._word_decode_cache: dict[int, tuple[Handler, int]] = {}
        self.sw_dispatch: dict[int, int] = {}
        self._patches: dict[int, int] = {}
        self.host_debug = HostDebug()
        self.guest_debug = GuestDebug()
        self.timers = Timers()
        # Devices with timed events of their own (the MPIC's global timers): each has
        # advance(cycles) and next_event_cycle() -> int | None (None: nothing due), and is
        # consulted only at event boundaries, like the core timers.
        self.event_sources: list[Any] = []
        # Called when the core takes the external input interrupt; a vector it returns goes to EPR
        # (the MPIC's external proxy mode), None leaves EPR alone.
        self.interrupt_acknowledge: Callable[[], int | None] | None = None
        # Translated blocks (emulator.translate) for run(); False keeps run() on the per-instruction path.
        self.block_translation = True
        # Visits of an address (as a possible block start) before a region is translated there:
        # compiling costs about as much as a few hundred decoded instructions. Tests lower it.
        self.translate_after = _TRANSLATE_AFTER
        self._build_spr_table()
        self.reset()

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Architectural reset state (the board then applies the QEMU ``-kernel`` boot state)."""
        # Register files are cleared in place: the vCPU and translated blocks may hold these lists.
        self.gpr: list[int] = getattr(self, "gpr", [0] * 32)
        self.gpr[:] = [0] * 32
        self.gpr_hi: list[int] = getattr(self, "gpr_hi", [0] * 32)
        self.gpr_hi[:] = [0] * 32
        self.acc = 0
        self.spefscr = 0
        self.fpr: list[int] = getattr(self, "fpr", [0] * 32)
        self.fpr[:] = [0] * 32
        self.entered_async_interrupt = False
        self.fpscr = 0
        self.pc = 0xFFFFFFFC
        self.msr = 0
        self.cr = 0
        self.lr = 0
        self.ctr = 0
        self.xer = 0
        self.reservation: int | None = None
        self.instructions = 0
        self.cycles = 0
        self.waiting = False
        self.sprs: dict[int, int] = dict.fromkeys(self._plain_sprs, 0)
        self.sprs[SPR_PIR] = 0
        self.sprs[SPR_EPR] = 0
        # IVORs written since reset, and the first interrupt taken through one that was not.
        self.ivors_set: set[int] = set()
        self.unhandled_interrupt: UnhandledInterrupt | None = None
        self._unhandled_noted = False
        self.guest_debug = GuestDebug()
        self.timers.reset()
        self._poweroff: int | None = None
        self._checkstop = False
        self._event_at = 0
        self._slow = False
        # Set by a translated block before each handler call (see emulator.translate.Block): the
        # instruction's pc, instructions the block completed before it, its cycles (cpu.cycles is then
        # the cycle count at its start).
        self._fault: tuple[int, int, int] = (0, 0, 0)
        self._contexts: dict[int, _Context] = {}
        # PA word -> what was built from it: (id(cache), first key) -> (cache, keys), where a cache is a
        # context's decoded/superblocks/blocks dict keyed by EA. Keyed so that building the same thing
        # again replaces its record instead of piling up stale ones.
        self._code_index: dict[int, dict[tuple[int, int], tuple[dict[int, Any], tuple[int, ...]]]] = {}
        self._code_pages: dict[int, int] = {}   # PA page -> number of decoded words in it
        self._entry_misses: dict[int, int] = {}  # EA -> block-cache misses there (translate when hot)
        self._invalidations: dict[int, int] = {}  # EA -> times what was built there was invalidated
        self._mmu_generation = getattr(self.mmu, "generation", 0)
        self._recompute_debug_state()
        self._select_context()

    @property
    def num_iac(self) -> int:
        return self.model.num_iac

    def set_msr(self, value: int) -> None:
        """Write the MSR as mtmsr/rfi do: keep only implemented bits, switch caches, re-check events."""
        value &= self.model.msr_mask
        old = self.msr
        self.msr = value
        changed = old ^ value
        if changed & _CONTEXT_BITS:
            self._select_context()
        if changed & (MSR_EE | MSR_CE | MSR_DE | MSR_WE | _CONTEXT_BITS):
            self._event_at = 0

    def set_external_input(self, asserted: bool) -> None:
        self.timers.external_input = asserted
        self._event_at = 0

    def set_doorbell(self, *, critical: bool, pending: bool) -> None:
        """msgsnd/msgclr (e500mc): a (critical) doorbell is pending until taken or cleared."""
        if critical:
            self.timers.critical_doorbell = pending
        else:
            self.timers.doorbell = pending
        self._event_at = 0

    def set_critical_input(self, asserted: bool) -> None:
        self.timers.critical_input = asserted
        self._event_at = 0

    def device_events_changed(self) -> None:
        """A device's next timed event moved: re-check events before the next instruction."""
        self._event_at = 0

    def _next_event_cycle(self) -> int:
        event = self.timers.next_event_cycle()
        for source in self.event_sources:
            cycle = source.next_event_cycle()
            if cycle is not None and cycle < event:
                event = cycle
        return event

    def _advance_devices(self) -> None:
        for source in self.event_sources:
            source.advance(self.cycles)

    # ------------------------------------------------------------------------------------------
    # caches
    # ------------------------------------------------------------------------------------------
    def _select_context(self) -> None:
        key = self.msr & _CONTEXT_BITS
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = _Context()
        self._decoded = context.decoded
        self._blocks = context.blocks
        self._read_pages = context.read_pages
        self._write_pages = context.write_pages
        self._code_write_pages = context.code_write_pages
        self._event_at = 0

    def flush_translation_caches(self) -> None:
        """Forget every cached translation and decoded instruction (TLB/PID/debug change)."""
        for context in self._contexts.values():
            context.decoded.clear()
            context.blocks.clear()
            context.superblocks.clear()
            context.read_pages.clear()
            context.write_pages.clear()
            context.code_write_pages.clear()
        self._code_index.clear()
        self._code_pages.clear()
        self._entry_misses.clear()
        self._invalidations.clear()
        self._mmu_generation = getattr(self.mmu, "generation", 0)
        self._event_at = 0

    def _flush_data_caches(self) -> None:
        for context in self._contexts.values():
            context.read_pages.clear()
            context.write_pages.clear()
            context.code_write_pages.clear()

    def translation_changed(self) -> None:
        """Called after tlbwe/tlbivax/MMU SPR writes: drop caches if the MMU says anything changed."""
        if getattr(self.mmu, "generation", 0) != self._mmu_generation:
            self.flush_translation_caches()

    def invalidate_physical(self, pa: int, length: int) -> None:
        """Drop decoded instructions overlapping [pa, pa+length) (debugger/DMA writes, icbi)."""
        if not self._code_pages:
            return
        word = pa & ~3
        end = pa + length
        while word < end:
            if (word >> PAGE_SHIFT) in self._code_pages:
                self._invalidate_code_word(word)
            word += 4

    def _register_code(self, pa_words: Iterable[int], cache: dict[int, Any], keys: tuple[int, ...]) -> None:
        """Record that ``cache[key]`` for each of ``keys`` was built from the words ``pa_words``."""
        record = (cache, keys)
        tag = (id(cache), keys[0])
        code_index = self._code_index
        for pa in pa_words:
            users = code_index.get(pa)
            if users is None:
                code_index[pa] = {tag: record}
            else:
                users[tag] = record

    def _invalidate_code_word(self, pa_word: int) -> None:
        users = self._code_index.pop(pa_word, None)
        if users is None:
            return
        misses = self._entry_misses
        invalidations = self._invalidations
        wait = self.translate_after
        for cache, keys in users.values():
            for ea in keys:
                cache.pop(ea, None)
                # Translating costs more than the few instructions code that keeps changing runs
                # between changes: it must run hot again, for twice as long as the last time.
                times = invalidations.get(ea, 0) + 1
                invalidations[ea] = times
                misses[ea] = wait - (wait << min(times, _RETRANSLATE_BACKOFF))
        self._event_at = 0   # a running translated block must not go on with stale code
        page = pa_word >> PAGE_SHIFT
        remaining = self._code_pages.get(page, 0) - 1
        if remaining <= 0:
            self._code_pages.pop(page, None)
        else:
            self._code_pages[page] = remaining

    def patch_instruction(self, pa: int, word: int) -> None:
        """Fetch-side overlay for a debugger soft breakpoint: only instruction fetch sees ``word``."""
        self._patches[pa & ~3] = word & 0xFFFFFFFF
        self._invalidate_code_word(pa & ~3)

    def unpatch_instruction(self, pa: int) -> None:
        self._patches.pop(pa & ~3, None)
        self._invalidate_code_word(pa & ~3)

    # ------------------------------------------------------------------------------------------
    # debug configuration
    # ------------------------------------------------------------------------------------------
    def set_host_debug(self, cfg: HostDebug) -> None:
        old = self.host_debug
        same_comparators = cfg.iac == old.iac and cfg.dac == old.dac
        if same_comparators and (cfg.enabled == old.enabled or not (cfg.iac or cfg.dac)):
            # Only single-step or the soft-breakpoint flag changed (gdb toggles them around every stop):
            # nothing derived from the comparators changes. _boundary picks up the step flag.
            self.host_debug = cfg
            self._event_at = 0
            return
        cfg.validate(self.model.num_iac, self.model.num_dac)
        self.host_debug = cfg
        self._recompute_debug_state()

    def _recompute_debug_state(self) -> None:
        host, guest = self.host_debug, self.guest_debug
        host_on = host.enabled
        previous_code_view = (getattr(self, "_iac_addresses", None), getattr(self, "_iac_every_fetch", None))
        previous_data_view = (getattr(self, "_watched_pages", None), getattr(self, "_all_data_slow", None))
        self._iac_addresses: frozenset[int] = frozenset(
            [a & ~3 for a in host.iac] if host_on else []) | frozenset(guest.iac_addresses())
        self._iac_every_fetch = guest.iac_needs_every_fetch()
        self._host_watches = list(host.dac) if host_on else []
        watched: set[int] = set()
        all_slow = False
        for watch in self._host_watches:
            watched.update(range(watch.start >> PAGE_SHIFT, ((watch.end_exclusive - 1) >> PAGE_SHIFT) + 1))
        guest_ranges = guest.dac_page_ranges()
        if guest_ranges is None:
            all_slow = True
        else:
            for start, end in guest_ranges:
                first, last = start >> PAGE_SHIFT, (end - 1) >> PAGE_SHIFT
                if last - first > 4096:
                    all_slow = True
                    break
                watched.update(range(first, last + 1))
        self._watched_pages = watched
        self._all_data_slow = all_slow
        self._dac_active = bool(self._host_watches) or guest.dac_enabled()
        # gdb re-arms its breakpoints and toggles single-step around every stop; dropping translated
        # code each time would recompile the hot loop at every `continue`. Decoded/translated code
        # depends only on the IAC addresses, the data page caches only on the watched pages.
        if (self._iac_addresses, self._iac_every_fetch) != previous_code_view:
            self.flush_translation_caches()
        elif (self._watched_pages, self._all_data_slow) != previous_data_view:
            self._flush_data_caches()
        self._event_at = 0

    # ------------------------------------------------------------------------------------------
    # memory access (handlers)
    # ------------------------------------------------------------------------------------------
    def load8(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None:
            return self._ram[base | (ea & PAGE_MASK)]
        return self._slow_load(ea, 1)

    def load16(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFE:
            return _U16.unpack_from(self._ram, base | (ea & PAGE_MASK))[0]
        return self._slow_load(ea, 2)

    def load32(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFC:
            return _U32.unpack_from(self._ram, base | (ea & PAGE_MASK))[0]
        return self._slow_load(ea, 4)

    def load64(self, ea: int) -> int:
        base = self._read_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFF8:
            return _U64.unpack_from(self._ram, base | (ea & PAGE_MASK))[0]
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
            _U16.pack_into(self._ram, base | (ea & PAGE_MASK), value & 0xFFFF)
            return
        self._slow_store(ea, 2, value & 0xFFFF)

    def store32(self, ea: int, value: int) -> None:
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFFC:
            _U32.pack_into(self._ram, base | (ea & PAGE_MASK), value & 0xFFFFFFFF)
            return
        self._slow_store(ea, 4, value & 0xFFFFFFFF)

    def store64(self, ea: int, value: int) -> None:
        base = self._write_pages.get(ea >> PAGE_SHIFT)
        if base is not None and ea & PAGE_MASK <= 0xFF8:
            _U64.pack_into(self._ram, base | (ea & PAGE_MASK), value & 0xFFFFFFFFFFFFFFFF)
            return
        self._slow_store(ea, 8, value & 0xFFFFFFFFFFFFFFFF)

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

    def _machine_check(self, pa: int, cause: int) -> Interrupt:
        self.sprs[SPR_MCAR] = pa & 0xFFFFFFFF
        self.sprs[SPR_MCSR] |= MCSR_MCP | cause
        return Interrupt(IVOR_MACHINE_CHECK)

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

    # ------------------------------------------------------------------------------------------
    # instruction fetch / decode
    # ------------------------------------------------------------------------------------------
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
                word = _U32.unpack_from(self._ram, pa)[0]
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
        def check_iac(cpu: Cpu, pc: int) -> int:
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

    # ------------------------------------------------------------------------------------------
    # traps and special instructions (called by handlers)
    # ------------------------------------------------------------------------------------------
    def trap(self, pc: int) -> None:
        """A tw/twi whose condition is true: debugger breakpoint, guest debug event or program trap."""
        host = self.host_debug
        if host.enabled and host.sw_breakpoints and pc in self.sw_dispatch:
            raise HostDebugEvent(DebugEvent.SOFT_BREAKPOINT, pc)
        guest = self.guest_debug
        if guest.dbcr0 & DBCR0_TRAP and guest.dbcr0 & DBCR0_IDM:
            if self.msr & MSR_DE:
                guest.dbsr |= DBSR_TRAP
                raise Interrupt(IVOR_DEBUG)
            # DE=0: logged as a delayed event and the program interrupt still happens (reference 1.7).
            guest.dbsr |= DBSR_TRAP | DBSR_IDE
        raise Interrupt(IVOR_PROGRAM, esr=ESR_PTR)

    def ehpriv(self, pc: int) -> None:
        """ehpriv: the host's soft breakpoint if in the dispatch table, else hypervisor privilege."""
        host = self.host_debug
        if host.enabled and host.sw_breakpoints and pc in self.sw_dispatch:
            raise HostDebugEvent(DebugEvent.SOFT_BREAKPOINT, pc)
        # E.HV: ehpriv always raises the embedded hypervisor privilege interrupt (QEMU gives PIL).
        raise Interrupt(IVOR_HYPERVISOR_PRIVILEGE)

    def enter_wait(self) -> None:
        self.waiting = True
        self._event_at = 0

    # ------------------------------------------------------------------------------------------
    # interrupts
    # ------------------------------------------------------------------------------------------
    def deliver_interrupt(self, ivor: int, save_pc: int, *, esr: int | None = None,
                          dear: int | None = None) -> None:
        """Enter interrupt ``ivor``: save registers, ESR/DEAR, new MSR, pc = IVPR | IVORn."""
        msr = self.msr
        sprs = self.sprs
        if ivor == IVOR_DEBUG:
            if self.model.debug_uses_dsrr:
                sprs[SPR_DSRR0], sprs[SPR_DSRR1] = save_pc, msr
            else:
                sprs[SPR_CSRR0], sprs[SPR_CSRR1] = save_pc, msr
            new_msr = msr & MSR_ME
        elif ivor in _CRITICAL_IVORS:
            sprs[SPR_CSRR0], sprs[SPR_CSRR1] = save_pc, msr
            new_msr = msr & MSR_ME
        elif ivor == IVOR_MACHINE_CHECK:
            sprs[SPR_MCSRR0], sprs[SPR_MCSRR1] = save_pc, msr
            new_msr = 0
        else:
            sprs[SPR_SRR0], sprs[SPR_SRR1] = save_pc, msr
            new_msr = msr & (MSR_CE | MSR_ME | MSR_DE)
        if esr is not None:
            sprs[SPR_ESR] = esr
        if dear is not None:
            sprs[SPR_DEAR] = dear & 0xFFFFFFFF
        if ivor == IVOR_DOORBELL:
            self.timers.doorbell = False          # taking a doorbell interrupt consumes it
        elif ivor == IVOR_CRITICAL_DOORBELL:
            self.timers.critical_doorbell = False
        self.waiting = False
        self.set_msr(new_msr)
        self.pc = (sprs[SPR_IVPR] & 0xFFFF0000) | (self._ivor(ivor) & 0xFFF0)
        if ivor not in self.ivors_set and not self._unhandled_noted:
            self._note_unhandled(ivor, save_pc)

    def _note_unhandled(self, ivor: int, pc: int) -> None:
        """Record the first interrupt through an unset IVOR (see :class:`UnhandledInterrupt`)."""
        from emulator.isa import decode  # the table imports this module's users; cold path

        self._unhandled_noted = True
        pa = self.translate_debug(pc)
        word = None
        if pa is not None and pa + 4 <= self._ram_size:
            word = _U32.unpack_from(self._ram, pa)[0]
        decodes_on = () if word is None else tuple(
            name for name in MODELS if decode(word, name)[0] is not None)
        self.unhandled_interrupt = UnhandledInterrupt(ivor, pc, self.pc, word, decodes_on)

    def _ivor(self, ivor: int) -> int:
        return self.sprs.get(ivor_spr(ivor), 0)

    def _raise_interrupt_at(self, exc: Interrupt, pc: int) -> StopReason | None:
        """Deliver a synchronous interrupt raised by the instruction at ``pc``."""
        if exc.ivor == IVOR_MACHINE_CHECK and not self.msr & MSR_ME:
            self._checkstop = True
            self.pc = pc
            return StopReason(StopKind.CHECKSTOP, pc)
        self.deliver_interrupt(exc.ivor, (pc + 4) & 0xFFFFFFFF if exc.after else pc,
                               esr=exc.esr, dear=exc.dear)
        return None

    def _pending_async(self) -> int | None:
        msr = self.msr
        guest = self.guest_debug
        if msr & MSR_DE and guest.dbcr0 & DBCR0_IDM and guest.dbsr & DBSR_EVENTS:
            return IVOR_DEBUG
        return self.timers.pending_interrupt(msr)

    # ------------------------------------------------------------------------------------------
    # run loop
    # ------------------------------------------------------------------------------------------
    def _boundary(self) -> StopReason | None:
        """Work done between instructions when an event is due: timers, MMU, pending interrupts."""
        if self._poweroff is not None:
            return StopReason(StopKind.POWER_OFF, self.pc, self._poweroff)
        if self._checkstop:
            return StopReason(StopKind.CHECKSTOP, self.pc)
        if getattr(self.bus, "reset_requested", False):
            return StopReason(StopKind.SYSTEM_RESET, self.pc)
        if getattr(self.mmu, "generation", 0) != self._mmu_generation:
            self.flush_translation_caches()
        timers = self.timers
        timers.advance(self.cycles)
        if timers.reset_request is not None:
            return StopReason(StopKind.WATCHDOG_RESET, self.pc, timers.reset_request)
        if self.event_sources:
            self._advance_devices()
        if self.waiting or self.msr & MSR_WE:
            stop = self._idle_until_interrupt()
            if stop is not None:
                return stop
        ivor = self._pending_async()
        if ivor is not None:
            if ivor == IVOR_EXTERNAL_INPUT and self.interrupt_acknowledge is not None:
                vector = self.interrupt_acknowledge()
                if vector is not None:
                    self.sprs[SPR_EPR] = vector & 0xFFFFFFFF
            self.deliver_interrupt(ivor, self.pc)
            self.entered_async_interrupt = True
        self._event_at = self._next_event_cycle()
        guest = self.guest_debug
        self._slow = (self.host_debug.enabled and self.host_debug.single_step) or bool(
            guest.dbcr0 & DBCR0_IC and guest.dbcr0 & DBCR0_IDM and self.msr & MSR_DE)
        return None

    def _idle_until_interrupt(self) -> StopReason | None:
        timers = self.timers
        for _ in range(100_000):
            if self._pending_async() is not None:
                self.waiting = False
                return None
            # Straight to the next event that could wake the core: those it cannot take (a
            # decrementer with MSR[EE]=0) are applied on the way by advance().
            wake = timers.next_wake_cycle(self.msr)
            if self.msr & MSR_EE:
                for source in self.event_sources:
                    cycle = source.next_event_cycle()
                    if cycle is not None and (wake is None or cycle < wake):
                        wake = cycle
            if wake is None:
                return StopReason(StopKind.IDLE, self.pc)
            self.cycles = max(self.cycles, wake)
            timers.advance(self.cycles)
            if timers.reset_request is not None:
                return StopReason(StopKind.WATCHDOG_RESET, self.pc, timers.reset_request)
            self._advance_devices()
        return STOP_BUDGET

    def step(self) -> StopReason:
        """Execute exactly one instruction (or take one pending interrupt).

        A debugger single step that finds an asynchronous interrupt pending stops on its vector,
        with nothing executed, so the user sees the interrupt being entered.
        """
        self.entered_async_interrupt = False
        stop = self._boundary()
        if stop is not None:
            return stop
        host = self.host_debug
        if self.entered_async_interrupt and host.enabled and host.single_step:
            return StopReason(StopKind.HOST_DEBUG, self.pc, event=DebugEvent.SINGLE_STEP)
        if self.waiting or self.msr & MSR_WE:
            return STOP_BUDGET
        return self._step_one()

    def _step_one(self) -> StopReason:
        pc = self.pc
        entry: tuple[Handler, int] | None = None
        try:
            entry = self._decoded.get(pc)
            if entry is None:
                entry = self._fetch_decode(pc)
            next_pc = entry[0](self, pc)
        except (Interrupt, HostDebugEvent, PowerOff) as exc:
            _used, stop = self._stop_for(exc, pc, 0, 0 if entry is None else entry[1])
            return stop or self._after_step(self.pc, completed=False)
        self.pc = next_pc & 0xFFFFFFFF
        self.instructions += 1
        self.cycles += entry[1]
        return self._after_step(self.pc, completed=True)

    def _after_step(self, next_pc: int, *, completed: bool) -> StopReason:
        guest = self.guest_debug
        if (completed and guest.dbcr0 & DBCR0_IC and guest.dbcr0 & DBCR0_IDM
                and self.msr & MSR_DE):
            guest.dbsr |= DBSR_IC
            self.deliver_interrupt(IVOR_DEBUG, next_pc)
        self._event_at = 0
        host = self.host_debug
        if host.enabled and host.single_step:
            if self._poweroff is not None:
                return StopReason(StopKind.POWER_OFF, self.pc, self._poweroff)
            return StopReason(StopKind.HOST_DEBUG, self.pc, event=DebugEvent.SINGLE_STEP)
        return STOP_BUDGET

    def run(self, max_instructions: int) -> StopReason:
        """Run up to ``max_instructions`` instructions; return why it stopped.

        The budget counts instructions executed or suppressed by a fault; entering an asynchronous
        interrupt costs nothing. ``entered_async_interrupt`` tells a debugger single step that
        stopped on a vector without executing anything (so it used no budget either).
        """
        remaining = max_instructions
        self.entered_async_interrupt = False
        self._event_at = 0
        while True:
            if self.cycles >= self._event_at:
                self.entered_async_interrupt = False
                stop = self._boundary()
                if stop is not None:
                    return stop
                if self.entered_async_interrupt and self._slow:
                    host = self.host_debug
                    if host.enabled and host.single_step:   # stop on the vector, as step() does
                        return StopReason(StopKind.HOST_DEBUG, self.pc, event=DebugEvent.SINGLE_STEP)
            if remaining <= 0:
                return STOP_BUDGET
            if self.waiting or self.msr & MSR_WE:
                self._event_at = 0
                continue
            if self._slow:
                stop = self._step_one()
                remaining -= 1
                if stop is not STOP_BUDGET:
                    return stop
                continue
            done, stop_or_none = self._run_fast(remaining)
            remaining -= done
            if stop_or_none is not None:
                return stop_or_none

    def _run_fast(self, limit: int) -> tuple[int, StopReason | None]:
        """The hot loop over translated blocks. Returns (budget used, stop reason or None).

        A block runs only when all of it ends before the next event cycle and fits the budget;
        otherwise (and where no block may exist) one instruction runs on the decoded path, so every
        stop, event and fault happens at exactly the instruction where single-stepping has it.
        """
        if not self.block_translation or self._iac_every_fetch:
            return self._run_decoded(limit)
        get_block = self._blocks.get
        gpr = self.gpr
        pc = self.pc
        cycles = self.cycles
        event_at = self._event_at
        done = 0
        retired = 0   # instructions completed by blocks, not yet added to self.instructions
        # Where no block starts and none is built yet, the decoded path runs on to the next jump or
        # block start: what it passes on the way was not entered, so it does not count towards
        # translating there (loops are entered at their heads, which branches reach). With
        # translate_after 0 (tests) every miss translates and this never happens.
        run_straight = self._blocks if self.translate_after > 0 else None
        while done < limit:
            block = get_block(pc)
            straight = None
            if block is None:
                misses = self._entry_misses.get(pc, 0)
                if (misses >= self.translate_after and limit - done >= MAX_BLOCK_INSTRUCTIONS
                        and event_at - cycles > _TRANSLATE_HORIZON):
                    block = self._translate_block(pc)
                else:
                    # A run that ends (budget, event) mid-block resumes at an address inside a block:
                    # run on the decoded path to a known block start rather than compile a block for
                    # an entry point that may never recur; recurring entry points get translated.
                    self._entry_misses[pc] = misses + 1
                    block = NO_BLOCK
                    straight = run_straight
            run = block[0]
            end = cycles + block[2]
            if run is None or end >= event_at or done + block[1] > limit:
                self.pc = pc
                self.cycles = cycles
                self.instructions += retired
                retired = 0
                used, stop = self._run_decoded(1 if straight is None else limit - done, straight)
                done += used
                event_at = self._event_at
                if stop is not None or self.cycles >= event_at:
                    return done, stop
                pc = self.pc
                cycles = self.cycles
                continue
            try:
                pc, count, cycles = run(gpr, cycles, event_at, limit - done)
            except (Interrupt, HostDebugEvent, PowerOff) as exc:
                fault_pc, before, fault_cycles = self._fault
                self.instructions += retired + before
                return self._stop_for(exc, fault_pc, done + before, fault_cycles)
            done += count
            retired += count
            # A handler that changed control flow or the event state lowered _event_at (to 0).
            event_at = self._event_at
            if cycles >= event_at:
                break
        self.pc = pc
        self.cycles = cycles
        self.instructions += retired
        return done, None

    def _stop_for(self, exc: Interrupt | HostDebugEvent | PowerOff, pc: int, done: int, cycles: int,
                  ) -> tuple[int, StopReason | None]:
        """The one mapping from what an instruction raised to guest state and a stop reason, for every
        run loop. The instruction at ``pc`` (``cycles`` long) raised ``exc``; ``self.cycles`` and
        ``self.instructions`` are those before it and ``done`` the budget used before it. Returns
        (budget used, stop reason or None when the guest goes on in an interrupt handler)."""
        if isinstance(exc, Interrupt):
            if exc.after:
                self.cycles += cycles
                self.instructions += 1
            self._event_at = 0
            # A faulting instruction uses one unit of budget so a guest stuck in a fault loop still stops.
            return done + 1, self._raise_interrupt_at(exc, pc)
        self.pc = pc
        if isinstance(exc, HostDebugEvent):
            return done, StopReason(StopKind.HOST_DEBUG, exc.address, event=exc.event)
        self._poweroff = exc.status
        return done, StopReason(StopKind.POWER_OFF, pc, exc.status)

    def _translate_block(self, pc: int) -> Block:
        """Build (and cache) the region starting at ``pc``; NO_BLOCK where only single instructions may run.

        The region is the superblock at ``pc`` plus, breadth first, the superblocks at the constant
        targets its exits reach on the same page (up to MAX_REGION_BLOCKS / MAX_REGION_INSTRUCTIONS).
        """
        if pc in self._iac_addresses:
            self._blocks[pc] = NO_BLOCK
            return NO_BLOCK
        pa = self.sw_dispatch.get(pc)
        if pa is not None:
            # A soft breakpoint runs on the decoded path and no block holds its word, so gdb removing
            # and inserting it at every stop leaves the code around it translated. Removing it drops
            # this entry with the rest of what was built from the word.
            self._blocks[pc] = NO_BLOCK
            self._register_code((pa & ~3,), self._blocks, (pc,))
            return NO_BLOCK
        first = self._collect_superblock(pc)
        if first is None:
            return NO_BLOCK   # fetch faults here: the decoded path raises it precisely (not cached)
        superblocks: list[Superblock] = [first[:2]]
        targets = [first[3]]
        physical = list(first[2])
        starts = {pc}
        pending = list(first[3])
        instructions = len(first[0])
        while pending and len(superblocks) < MAX_REGION_BLOCKS and instructions < MAX_REGION_INSTRUCTIONS:
            target = pending.pop(0)
            if (target in starts or target & ~PAGE_MASK != pc & ~PAGE_MASK or target in self._iac_addresses
                    or target in self.sw_dispatch):
                continue
            starts.add(target)
            collected = self._collect_superblock(target)
            if collected is None or instructions + len(collected[0]) > MAX_REGION_INSTRUCTIONS:
                continue
            superblocks.append(collected[:2])
            targets.append(collected[3])
            physical += collected[2]
            instructions += len(collected[0])
            pending += collected[3]
        superblocks = loop_through_entry(superblocks, targets)
        context = self._contexts[self.msr & _CONTEXT_BITS]
        entries = compile_region(superblocks, self, context.read_pages, context.write_pages,
                                 context.code_write_pages, self._code_index, self._ram)
        # The region also serves the loop's other superblocks as entry points (where a run resumes
        # after an event or budget exit), so the same loop is not compiled again from each of them.
        blocks = self._blocks
        stored = []
        for entry in entries:
            if entry.start == pc or entry.start not in blocks:
                blocks[entry.start] = entry
                stored.append(entry.start)
        self._register_code(set(physical), blocks, tuple(stored))
        return entries[0]

    def _collect_superblock(self, pc: int) -> _Collected | None:
        """The straight run of instructions from ``pc`` (with its templates and physical addresses) up
        to a control transfer, a page boundary, an IAC address, a soft breakpoint or
        MAX_BLOCK_INSTRUCTIONS; None when the fetch at ``pc`` itself would fault or is not RAM."""
        superblocks = self._contexts[self.msr & _CONTEXT_BITS].superblocks
        collected = superblocks.get(pc)
        if collected is None:
            collected = self._read_superblock(pc)
            if collected is not None:
                superblocks[pc] = collected
                self._register_code(set(collected[2]), superblocks, (pc,))
        return collected

    def _read_superblock(self, pc: int) -> _Collected | None:
        decoded = self._decoded
        msr = self.msr
        model_name = self.model.name
        instructions: list[Instruction] = []
        templates: list[list[str] | None] = []
        physical: list[int] = []
        ea = pc
        while len(instructions) < MAX_BLOCK_INSTRUCTIONS:
            if instructions and (ea & PAGE_MASK == 0 or ea in self._iac_addresses or ea in self.sw_dispatch):
                break
            # Probe first: a fetch fault must not touch MAS/MCSR state until it really happens.
            try:
                pa = self.mmu.translate(ea, Access.FETCH, msr)
            except (TlbMiss, ProtectionFault):
                break
            if pa + 4 > self._ram_size:   # not RAM-backed: cannot be invalidated, so never translated
                break
            entry = decoded.get(ea)
            if entry is None:
                entry = self._fetch_decode(ea)
            word = self._patches.get(pa)
            if word is None:
                word = _U32.unpack_from(self._ram, pa)[0]
            instruction = Instruction(ea, word, entry[0], entry[1])
            template = template_for(instruction, model_name)
            instructions.append(instruction)
            templates.append(template)
            physical.append(pa)
            ea = (ea + 4) & 0xFFFFFFFF
            if template is not None and ends_block(template) and (
                    not falls_through(instruction, template) or branches_back(template, pc, ea)):
                break
        if not instructions:
            return None
        return instructions, templates, physical, exit_targets((instructions, templates))

    def _run_decoded(self, limit: int, until_block: dict[int, Block] | None = None,
                     ) -> tuple[int, StopReason | None]:
        """The per-instruction loop over the decode cache. Returns (budget used, stop reason or None).

        With ``until_block`` it also ends after a jump (the next pc is not the one after) and where an
        entry of ``until_block`` starts."""
        get = self._decoded.get
        pc = self.pc
        cycles = self.cycles
        done = 0
        entry: tuple[Handler, int] | None = None
        try:
            while done < limit:
                entry = get(pc)
                if entry is None:
                    entry = self._fetch_decode(pc)
                self.cycles = cycles
                following = entry[0](self, pc)
                cycles += entry[1]
                done += 1
                if cycles >= self._event_at:
                    pc = following
                    break
                if until_block is not None and (following != pc + 4 or following in until_block):
                    pc = following
                    break
                pc = following
        except (Interrupt, HostDebugEvent, PowerOff) as exc:
            self.cycles = cycles
            self.instructions += done
            return self._stop_for(exc, pc, done, 0 if entry is None else entry[1])
        self.pc = pc & 0xFFFFFFFF
        self.cycles = cycles
        self.instructions += done
        return done, None

    # ------------------------------------------------------------------------------------------
    # SPRs
    # ------------------------------------------------------------------------------------------
    def _build_spr_table(self) -> None:
        """Per-model SPR readers/writers. Plain SPRs are storage in ``self.sprs``."""
        model = self.model
        plain = [SPR_SRR0, SPR_SRR1, SPR_CSRR0, SPR_CSRR1, SPR_DEAR, SPR_ESR, SPR_IVPR, SPR_USPRG0,
                 *range(SPR_SPRG0, SPR_SPRG0 + 8), SPR_PIR, SPR_MCSRR0, SPR_MCSRR1, SPR_MCAR,
                 SPR_DSRR0, SPR_DSRR1, SPR_HID1, SPR_L1CSR0, SPR_L1CSR1, SPR_BUCSR,
                 SPR_BBEAR, SPR_BBTAR, SPR_SPRG8, SPR_SPRG9, SPR_EPLC, SPR_EPSC]
        if model.has_l2csr0:
            plain.append(SPR_L2CSR0)
        for ivor in model.ivors:
            plain.append(ivor_spr(ivor))
        if model.has_hypervisor:
            plain += [SPR_EPCR, SPR_MSRP, SPR_LPIDR]
        self._plain_sprs = plain
        readers: dict[int, Callable[[], int]] = {}
        writers: dict[int, Callable[[int], None]] = {}
        sprs_of = self._sprs_view
        for spr in plain:
            readers[spr] = (lambda n: lambda: sprs_of()[n])(spr)
            writers[spr] = (lambda n: lambda v: sprs_of().__setitem__(n, v))(spr)
        # SPR -> a Python expression over `cpu` that reads it like its reader (see spr_read_source).
        sources = {spr: f"(cpu.sprs[{spr}] & 0xFFFFFFFF)" for spr in plain}
        storage_readers = dict(readers)
        for offset in range(5):
            readers[SPR_SPRG3R + offset] = (lambda n: lambda: sprs_of()[n])(SPR_SPRG0 + 3 + offset)
        # IVPR and IVORs: low bits are not implemented.
        writers[SPR_IVPR] = lambda v: sprs_of().__setitem__(SPR_IVPR, v & 0xFFFF0000)
        ivors_set = self._ivors_set_view
        for ivor in model.ivors:
            spr = ivor_spr(ivor)

            def write_ivor(value: int, spr: int = spr, ivor: int = ivor) -> None:
                sprs_of()[spr] = value & 0xFFF0
                ivors_set().add(ivor)
            writers[spr] = write_ivor
        writers[SPR_ESR] = lambda v: sprs_of().__setitem__(SPR_ESR, v)
        readers[SPR_MCSR] = lambda: sprs_of()[SPR_MCSR]
        writers[SPR_MCSR] = lambda v: sprs_of().__setitem__(SPR_MCSR, sprs_of()[SPR_MCSR] & ~v)  # w1c
        plain.append(SPR_MCSR)
        # L1CSRn[CFI] and [CLFC] are self-clearing commands.
        writers[SPR_L1CSR0] = lambda v: sprs_of().__setitem__(SPR_L1CSR0, v & ~0x00000102)
        writers[SPR_L1CSR1] = lambda v: sprs_of().__setitem__(SPR_L1CSR1, v & ~0x00000102)
        if model.has_l2csr0:
            writers[SPR_L2CSR0] = lambda v: sprs_of().__setitem__(SPR_L2CSR0, v & ~_L2CSR0_COMMANDS)
        for spr in (SPR_EPLC, SPR_EPSC):
            writers[spr] = (lambda n: lambda v: sprs_of().__setitem__(n, v & _EPID_CONTEXT_MASK))(spr)
        readers[SPR_EPR] = lambda: sprs_of()[SPR_EPR]
        # User-level registers.
        readers[SPR_XER] = lambda: self.xer
        writers[SPR_XER] = lambda v: setattr(self, "xer", v & XER_WRITABLE)
        readers[SPR_LR] = lambda: self.lr
        writers[SPR_LR] = lambda v: setattr(self, "lr", v)
        readers[SPR_CTR] = lambda: self.ctr
        writers[SPR_CTR] = lambda v: setattr(self, "ctr", v)
        if model.has_spe:
            readers[SPR_SPEFSCR] = lambda: self.spefscr
            writers[SPR_SPEFSCR] = lambda v: setattr(self, "spefscr", v)
        # Identification.
        readers[SPR_PVR] = lambda: model.pvr
        readers[1023] = lambda: model.svr
        readers[SPR_L1CFG0] = lambda: model.l1cfg0
        readers[SPR_L1CFG1] = lambda: model.l1cfg1
        # Timers.
        timers = self.timers
        readers[SPR_TBL_READ] = lambda: timers.tb(self.cycles) & 0xFFFFFFFF
        readers[SPR_TBU_READ] = lambda: timers.tb(self.cycles) >> 32
        readers[SPR_ATBL] = readers[SPR_TBL_READ]
        readers[SPR_ATBU] = readers[SPR_TBU_READ]
        writers[SPR_TBL_WRITE] = self._timer_writer(timers.write_tbl)
        writers[SPR_TBU_WRITE] = self._timer_writer(timers.write_tbu)
        readers[SPR_DEC] = lambda: timers.dec(self.cycles)
        writers[SPR_DEC] = self._timer_writer(timers.write_dec)
        writers[SPR_DECAR] = self._timer_writer(timers.write_decar)
        readers[SPR_TCR] = lambda: timers.tcr
        writers[SPR_TCR] = self._timer_writer(timers.write_tcr)
        readers[SPR_TSR] = self._read_tsr
        writers[SPR_TSR] = self._timer_writer(timers.write_tsr)
        # Debug (guest-owned copy, see emulator.debug).
        for spr, name in ((SPR_DBCR0, "dbcr0"), (SPR_DBCR1, "dbcr1"), (SPR_DBCR2, "dbcr2"),
                          (SPR_IAC1, "iac1"), (SPR_IAC2, "iac2"), (SPR_DAC1, "dac1"), (SPR_DAC2, "dac2"),
                          (SPR_DBSR, "dbsr")):
            readers[spr] = (lambda attr: lambda: getattr(self.guest_debug, attr))(name)
            writers[spr] = self._debug_writer(name)
            sources[spr] = f"(cpu.guest_debug.{name} & 0xFFFFFFFF)"
        # MMU registers are the MMU's.
        mmu = self.mmu
        for spr in range(1024):
            if spr not in readers and mmu.handles_spr(spr):
                readers[spr] = (lambda n: lambda: mmu.read_spr(n))(spr)
                writers[spr] = self._mmu_writer(spr)
                sources[spr] = f"(cpu.mmu.read_spr({spr}) & 0xFFFFFFFF)"
        self.spr_readers = readers
        self.spr_writers = writers
        for spr, reader in storage_readers.items():
            if readers[spr] is not reader:      # a plain SPR given another reader after all
                sources.pop(spr, None)
        self._spr_sources = sources

    def spr_read_source(self, spr: int) -> str:
        """A Python expression over ``cpu`` that reads ``spr`` as :meth:`read_spr` does, without its
        dispatch (for code that reads many registers at once, like the debugger's ``g``)."""
        return self._spr_sources.get(spr, f"cpu.read_spr({spr})")

    def _sprs_view(self) -> dict[int, int]:
        return self.sprs

    def _ivors_set_view(self) -> set[int]:
        return self.ivors_set

    _ivor_spr = staticmethod(ivor_spr)

    def _read_tsr(self) -> int:
        # Status bits of events up to this instruction, even between two event boundaries.
        self.timers.advance(self.cycles)
        return self.timers.tsr

    def _timer_writer(self, write: Callable[[int, int], None]) -> Callable[[int], None]:
        def write_timer(value: int) -> None:
            write(self.cycles, value)
            self._event_at = 0
        return write_timer

    def _debug_writer(self, name: str) -> Callable[[int], None]:
        def write_debug(value: int) -> None:
            guest = self.guest_debug
            if name == "dbsr":
                guest.dbsr &= ~value & 0xFFFFFFFF
            else:
                setattr(guest, name, value & 0xFFFFFFFF)
                self._recompute_debug_state()
            self._event_at = 0
        return write_debug

    def _mmu_writer(self, spr: int) -> Callable[[int], None]:
        def write_mmu(value: int) -> None:
            self.mmu.write_spr(spr, value)
            if spr in _TRANSLATION_SPRS:
                self.flush_translation_caches()
            else:
                self.translation_changed()
        return write_mmu

    def read_spr(self, spr: int) -> int:
        """Debugger read: no privilege check; 0 for an unknown SPR."""
        reader = self.spr_readers.get(spr)
        return reader() & 0xFFFFFFFF if reader is not None else 0

    def write_spr(self, spr: int, value: int) -> None:
        """Debugger write: side effects as a guest mtspr (w1c, timers); ignores unknown SPRs."""
        writer = self.spr_writers.get(spr)
        if writer is not None:
            writer(value & 0xFFFFFFFF)


"""What the rooms of the e500 core share: the stop reasons, the translation-context caches, page and
word constants, and :class:`CoreRoom`, the declaration of the core's state every room works on.

:class:`emulator.cpu.Cpu` is composed of rooms (mixins): :mod:`emulator.cpu_memory`,
:mod:`emulator.cpu_interrupts`, :mod:`emulator.cpu_run`, :mod:`emulator.cpu_code` and
:mod:`emulator.cpu_sprs`; the state itself is set by ``Cpu.__init__``/``Cpu.reset``. ``CoreRoom``
declares that state and the methods one room calls in another for the type checker only: at run time
it has no attributes, so an attribute look-up on the core costs what it costs on a single class.

Imports: standard library and the emulator core modules.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.debug import DataWatch, GuestDebug, HostDebug
from emulator.exceptions import IVOR_NAMES, DebugEvent, HostDebugEvent, Interrupt, PowerOff
from emulator.mmu import Access
from emulator.models import MSR_DS, MSR_IS, MSR_PR, CpuModel
from emulator.timers import Timers
from emulator.translate import Block, Instruction

Handler = Callable[["CoreRoom", int], int]
DecodeFn = Callable[[int, str], tuple[Any, Handler, int]]

# MCSR bus-error bits (Linux reg_booke.h e500 MCSR_BUS_*; UNVERIFIED against the manual).
MCSR_MCP = 0x80000000
MCSR_BUS_IAERR = 0x00000080
MCSR_BUS_RAERR = 0x00000040
MCSR_BUS_WAERR = 0x00000020

PAGE_SHIFT = 12
PAGE_MASK = 0xFFF
PAGE_SIZE = 1 << PAGE_SHIFT
# The MSR bits that select a translation context (and so a set of caches).
CONTEXT_BITS = MSR_PR | MSR_IS | MSR_DS

U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")


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
Collected = tuple[list[Instruction], list["list[str] | None"], list[int], list[int]]


class TranslationContext:
    """Caches valid for one translation context (MSR[PR|IS|DS] value)."""

    __slots__ = ("blocks", "code_write_pages", "decoded", "fetch_pages", "read_pages", "superblocks",
                 "write_pages")

    def __init__(self) -> None:
        self.decoded: dict[int, tuple[Handler, int]] = {}
        # EA page -> the PA page its decoded, collected and translated code was fetched from: after a
        # TLB change only the pages that no longer fetch from there are dropped.
        self.fetch_pages: dict[int, int] = {}
        self.blocks: dict[int, Block] = {}
        # EA -> the superblock collected there (regions share them; dropped with the code they hold)
        self.superblocks: dict[int, Collected] = {}
        self.read_pages: dict[int, int] = {}
        self.write_pages: dict[int, int] = {}
        # Writable RAM pages that also hold decoded code: a store may go straight to RAM only when
        # its word is not decoded (translated blocks check cpu._code_index first).
        self.code_write_pages: dict[int, int] = {}


class CoreRoom:
    """The core's state, declared once for every room (set by ``Cpu.__init__`` and ``Cpu.reset``)."""

    model: CpuModel
    bus: Any
    mmu: Any
    timers: Timers
    host_debug: HostDebug
    guest_debug: GuestDebug
    # architectural state
    gpr: list[int]
    gpr_hi: list[int]
    fpr: list[int]
    acc: int
    spefscr: int
    fpscr: int
    pc: int
    msr: int
    cr: int
    lr: int
    ctr: int
    xer: int
    reservation: int | None
    sprs: dict[int, int]
    ivors_set: set[int]
    waiting: bool
    instructions: int
    cycles: int
    # run state
    entered_async_interrupt: bool
    unhandled_interrupt: UnhandledInterrupt | None
    _unhandled_noted: bool
    _poweroff: int | None
    _checkstop: bool
    _event_at: int
    _slow: bool
    _fault: tuple[int, int, int]
    event_sources: list[Any]
    interrupt_acknowledge: Callable[[], int | None] | None
    other_cores: list[Any]
    idle_until: int | None
    # memory and code cache
    _decode: DecodeFn
    _ram: bytearray
    _ram_size: int
    _word_decode_cache: dict[int, tuple[Handler, int]]
    sw_dispatch: dict[int, int]
    _patches: dict[int, int]
    block_translation: bool
    translate_after: int
    _contexts: dict[int, TranslationContext]
    _decoded: dict[int, tuple[Handler, int]]
    _fetch_pages: dict[int, int]
    _blocks: dict[int, Block]
    _read_pages: dict[int, int]
    _write_pages: dict[int, int]
    _code_write_pages: dict[int, int]
    _code_index: dict[int, dict[tuple[int, int], tuple[dict[int, Any], tuple[int, ...]]]]
    _code_pages: dict[int, int]
    _entry_misses: dict[int, int]
    _invalidations: dict[int, int]
    _mmu_generation: int
    # debug configuration as the code cache and memory access see it
    _iac_addresses: frozenset[int]
    _iac_every_fetch: bool
    _host_watches: list[DataWatch]
    _watched_pages: set[int]
    _all_data_slow: bool
    _dac_active: bool
    # SPR access
    _plain_sprs: list[int]
    spr_readers: dict[int, Callable[[], int]]
    spr_writers: dict[int, Callable[[int], None]]
    _spr_sources: dict[int, str]

    if TYPE_CHECKING:
        # The methods of every room, so that one room may call another's.
        def reset(self) -> None: ...
        @property
        def num_iac(self) -> int: ...
        def set_msr(self, value: int) -> None: ...
        def set_external_input(self, asserted: bool) -> None: ...
        def set_doorbell(self, *, critical: bool, pending: bool) -> None: ...
        def set_critical_input(self, asserted: bool) -> None: ...
        def device_events_changed(self) -> None: ...
        def _next_event_cycle(self) -> int: ...
        def _advance_devices(self) -> None: ...
        def _select_context(self) -> None: ...
        def flush_translation_caches(self) -> None: ...
        def _flush_data_caches(self) -> None: ...
        def translation_changed(self) -> None: ...
        def invalidate_physical(self, pa: int, length: int) -> None: ...
        def _register_code(
            self, pa_words: Iterable[int], cache: dict[int, Any], keys: tuple[int, ...]
        ) -> None: ...
        def _invalidate_code_word(self, pa_word: int) -> None: ...
        def patch_instruction(self, pa: int, word: int) -> None: ...
        def unpatch_instruction(self, pa: int) -> None: ...
        def set_host_debug(self, cfg: HostDebug) -> None: ...
        def _recompute_debug_state(self) -> None: ...
        def load8(self, ea: int) -> int: ...
        def load16(self, ea: int) -> int: ...
        def load32(self, ea: int) -> int: ...
        def load64(self, ea: int) -> int: ...
        def store8(self, ea: int, value: int) -> None: ...
        def store16(self, ea: int, value: int) -> None: ...
        def store32(self, ea: int, value: int) -> None: ...
        def store64(self, ea: int, value: int) -> None: ...
        def load_words(self, ea: int, count: int) -> list[int]: ...
        def store_words(self, ea: int, values: list[int]) -> None: ...
        def store_zeros(self, ea: int, size: int) -> None: ...
        def _translate_data(self, ea: int, access: Access, is_write: bool) -> int: ...
        def _page_cacheable(self, ea: int, pa: int) -> bool: ...
        def _check_watches(self, ea: int, size: int, is_write: bool) -> None: ...
        def _slow_load(self, ea: int, size: int) -> int: ...
        def _split_load(self, ea: int, size: int) -> int: ...
        def _slow_store(self, ea: int, size: int, value: int) -> None: ...
        def _physical_read(self, pa: int, size: int, ea: int) -> int: ...
        def _physical_write(self, pa: int, size: int, value: int, ea: int) -> None: ...
        def _machine_check(self, pa: int, cause: int) -> Interrupt: ...
        def translate_debug(self, ea: int) -> int | None: ...
        def _fetch_decode(self, pc: int) -> tuple[Handler, int]: ...
        def _iac_wrapper(self, handler: Handler) -> Handler: ...
        def trap(self, pc: int) -> None: ...
        def ehpriv(self, pc: int) -> None: ...
        def enter_wait(self) -> None: ...
        def deliver_interrupt(
            self, ivor: int, save_pc: int, *, esr: int | None = None, dear: int | None = None
        ) -> None: ...
        def _note_unhandled(self, ivor: int, pc: int) -> None: ...
        def _ivor(self, ivor: int) -> int: ...
        def _raise_interrupt_at(self, exc: Interrupt, pc: int) -> StopReason | None: ...
        def _pending_async(self) -> int | None: ...
        def _boundary(self) -> StopReason | None: ...
        def _idle_until_interrupt(self) -> StopReason | None: ...
        def step(self) -> StopReason: ...
        def _step_one(self) -> StopReason: ...
        def _after_step(self, next_pc: int, *, completed: bool) -> StopReason: ...
        def run(self, max_instructions: int) -> StopReason: ...
        def _run_fast(self, limit: int) -> tuple[int, StopReason | None]: ...
        def _stop_for(
            self, exc: Interrupt | HostDebugEvent | PowerOff, pc: int, done: int, cycles: int
        ) -> tuple[int, StopReason | None]: ...
        def _translate_block(self, pc: int, compiled_only: bool = False) -> Block | None: ...
        def _collect_superblock(self, pc: int) -> Collected | None: ...
        def _read_superblock(self, pc: int) -> Collected | None: ...
        def _run_decoded(
            self, limit: int, until_block: dict[int, Block] | None = None
        ) -> tuple[int, StopReason | None]: ...
        def _build_spr_table(self) -> None: ...
        def spr_read_source(self, spr: int) -> str: ...
        def _sprs_view(self) -> dict[int, int]: ...
        def _ivors_set_view(self) -> set[int]: ...
        def _read_tsr(self) -> int: ...
        def _timer_writer(self, write: Callable[[int, int], None]) -> Callable[[int], None]: ...
        def _debug_writer(self, name: str) -> Callable[[int], None]: ...
        def _mmu_writer(self, spr: int) -> Callable[[int], None]: ...
        def read_spr(self, spr: int) -> int: ...
        def write_spr(self, spr: int, value: int) -> None: ...

"""The e500 core: architectural state, the run loop, precise interrupts, SPRs, memory access, debug.

``Cpu(model, bus, mmu)`` executes pre-decoded instruction handlers (from :mod:`emulator.decoder`) out of
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

The class is composed of rooms, one module each: machine state (here: registers, reset, the inputs
devices drive), :mod:`emulator.cpu_memory` (loads, stores and fetch through the MMU),
:mod:`emulator.cpu_interrupts` (delivery, the one exception-to-stop mapping, the debug configuration),
:mod:`emulator.cpu_run` (the run loops and the event boundary), :mod:`emulator.cpu_code` (decode cache,
translated regions and their invalidation) and :mod:`emulator.cpu_sprs` (the SPR access tables);
:mod:`emulator.cpu_types` declares the state they share. This module also re-exports the names users
of the core import from it (stop reasons, SPR numbers, page constants).

Imports: standard library, the other ``emulator`` core modules (never ``gdbstub`` or ``trio``).
"""

from __future__ import annotations

from typing import Any

from emulator.cpu_code import CodeCache
from emulator.cpu_interrupts import Interrupts
from emulator.cpu_memory import MemoryAccess
from emulator.cpu_run import RunLoops
from emulator.cpu_sprs import SprAccess
from emulator.cpu_types import (
    CONTEXT_BITS,
    MCSR_BUS_IAERR,
    MCSR_BUS_RAERR,
    MCSR_BUS_WAERR,
    MCSR_MCP,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    STOP_BUDGET,
    DecodeFn,
    Handler,
    StopKind,
    StopReason,
    UnhandledInterrupt,
)
from emulator.debug import GuestDebug, HostDebug
from emulator.decoder import decode as decode_instruction
from emulator.models import MODELS, MSR_CE, MSR_DE, MSR_EE, MSR_WE, CpuModel
from emulator.sprs import *  # noqa: F403 (the SPR numbers, re-exported for the core's users)
from emulator.sprs import SPR_EPR, SPR_PIR
from emulator.timers import Timers

__all__ = [
    "MCSR_BUS_IAERR", "MCSR_BUS_RAERR", "MCSR_BUS_WAERR", "MCSR_MCP", "PAGE_MASK", "PAGE_SHIFT", "PAGE_SIZE",
    "STOP_BUDGET", "Cpu", "DecodeFn", "Handler", "StopKind", "StopReason", "UnhandledInterrupt",
]

# Misses at an address before a block is translated there.
_TRANSLATE_AFTER = 32


class Cpu(MemoryAccess, Interrupts, RunLoops, CodeCache, SprAccess):
    """One e500 core. See the module docstring and docs/architecture.md."""

    def __init__(self, model: CpuModel | str, bus: Any, mmu: Any) -> None:
        self.model = MODELS[model] if isinstance(model, str) else model
        self.bus = bus
        self.mmu = mmu
        self._decode = decode_instruction
        self._ram = bus.ram
        self._ram_size = bus.ram_size
        self._word_decode_cache = {}
        self.sw_dispatch = {}
        self._patches = {}
        self.host_debug = HostDebug()
        self.guest_debug = GuestDebug()
        self.timers = Timers()
        # Devices with timed events of their own (the MPIC's global timers): each has
        # advance(cycles) and next_event_cycle() -> int | None (None: nothing due), and is
        # consulted only at event boundaries, like the core timers.
        self.event_sources = []
        # Called when the core takes the external input interrupt; a vector it returns goes to EPR
        # (the MPIC's external proxy mode), None leaves EPR alone.
        self.interrupt_acknowledge = None
        # The other cores of an SMP board: an icbi or msgsnd here reaches them too (both are broadcast).
        self.other_cores = []
        # A core waiting for an interrupt jumps to the next event that can wake it; on an SMP board
        # (not None) only up to this cycle, the board's clock: the other cores' turns come first.
        self.idle_until = None
        # Translated blocks (emulator.translate) for run(); False keeps run() on the per-instruction path.
        self.block_translation = True
        # Visits of an address (as a possible block start) before a region is translated there:
        # compiling costs about as much as a few hundred decoded instructions. Tests lower it.
        self.translate_after = _TRANSLATE_AFTER
        self._build_spr_table()
        self.reset()

    def reset(self) -> None:
        """Architectural reset state (the board then applies the QEMU ``-kernel`` boot state)."""
        # Register files are cleared in place: the vCPU and translated blocks may hold these lists.
        self.gpr = getattr(self, "gpr", [0] * 32)
        self.gpr[:] = [0] * 32
        self.gpr_hi = getattr(self, "gpr_hi", [0] * 32)
        self.gpr_hi[:] = [0] * 32
        self.acc = 0
        self.spefscr = 0
        self.fpr = getattr(self, "fpr", [0] * 32)
        self.fpr[:] = [0] * 32
        self.entered_async_interrupt = False
        self.fpscr = 0
        self.pc = 0xFFFFFFFC
        self.msr = 0
        self.cr = 0
        self.lr = 0
        self.ctr = 0
        self.xer = 0
        self.reservation = None
        self.instructions = 0
        self.cycles = 0
        self.waiting = False
        self.sprs = dict.fromkeys(self._plain_sprs, 0)
        self.sprs[SPR_PIR] = 0
        self.sprs[SPR_EPR] = 0
        # IVORs written since reset, and the first interrupt taken through one that was not.
        self.ivors_set = set()
        self.unhandled_interrupt = None
        self._unhandled_noted = False
        self.guest_debug = GuestDebug()
        self.timers.reset()
        self._poweroff = None
        self._checkstop = False
        self._event_at = 0
        self._slow = False
        # Set by a translated block before each handler call (see emulator.translate.Block): the
        # instruction's pc, instructions the block completed before it, its cycles (cpu.cycles is then
        # the cycle count at its start).
        self._fault = (0, 0, 0)
        self._contexts = {}
        # PA word -> what was built from it: (id(cache), first key) -> (cache, keys), where a cache is a
        # context's decoded/superblocks/blocks dict keyed by EA. Keyed so that building the same thing
        # again replaces its record instead of piling up stale ones.
        self._code_index = {}
        self._code_pages = {}   # PA page -> number of decoded words in it
        self._entry_misses = {}  # EA -> block-cache misses there (translate when hot)
        self._invalidations = {}  # EA -> times what was built there was invalidated
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
        if changed & CONTEXT_BITS:
            self._select_context()
        if changed & (MSR_EE | MSR_CE | MSR_DE | MSR_WE | CONTEXT_BITS):
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

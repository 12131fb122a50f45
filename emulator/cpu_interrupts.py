"""The core's interrupts and debug events: delivery, the exception-to-stop mapping, debug configuration.

``deliver_interrupt`` enters an interrupt (save/restore pair by class, ESR/DEAR, new MSR, IVPR|IVORn);
``_stop_for`` is the one place that turns what an instruction raised (an :class:`Interrupt`, a host
debug event, power-off) into guest state and a stop reason, for every run loop. Traps and ehpriv decide
between the debugger's soft breakpoint, the guest's debug event and a program interrupt; the host and
guest debug configuration decides what the code cache and the memory access must watch.

A room of :class:`emulator.cpu.Cpu` (a mixin: the state it works on is the core's, declared in
:class:`emulator.cpu_types.CoreRoom`). Imports: standard library and the emulator core modules.
"""

from __future__ import annotations

from emulator.cpu_types import MCSR_MCP, PAGE_SHIFT, U32, CoreRoom, StopKind, StopReason, UnhandledInterrupt
from emulator.debug import DBCR0_IDM, DBCR0_TRAP, DBSR_EVENTS, DBSR_IDE, DBSR_TRAP, HostDebug
from emulator.decoder import decode
from emulator.exceptions import (
    ESR_PTR,
    IVOR_CRITICAL_DOORBELL,
    IVOR_CRITICAL_INPUT,
    IVOR_DEBUG,
    IVOR_DOORBELL,
    IVOR_HYPERVISOR_PRIVILEGE,
    IVOR_MACHINE_CHECK,
    IVOR_PROGRAM,
    IVOR_WATCHDOG,
    DebugEvent,
    HostDebugEvent,
    Interrupt,
    PowerOff,
)
from emulator.models import MODELS, MSR_CE, MSR_DE, MSR_ME
from emulator.sprs import (
    SPR_CSRR0,
    SPR_CSRR1,
    SPR_DEAR,
    SPR_DSRR0,
    SPR_DSRR1,
    SPR_ESR,
    SPR_IVPR,
    SPR_MCAR,
    SPR_MCSR,
    SPR_MCSRR0,
    SPR_MCSRR1,
    SPR_SRR0,
    SPR_SRR1,
    ivor_spr,
)

# Which save/restore pair each interrupt class uses.
_CRITICAL_IVORS = frozenset({IVOR_CRITICAL_INPUT, IVOR_WATCHDOG, IVOR_CRITICAL_DOORBELL})


class Interrupts(CoreRoom):
    """The interrupts and debug events room of the core (see the module docstring)."""

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
        self._iac_addresses = frozenset(
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
        self._unhandled_noted = True
        pa = self.translate_debug(pc)
        word = None
        if pa is not None and pa + 4 <= self._ram_size:
            word = U32.unpack_from(self._ram, pa)[0]
        decodes_on = () if word is None else tuple(
            name for name in MODELS if decode(word, name)[0] is not None)
        self.unhandled_interrupt = UnhandledInterrupt(ivor, pc, self.pc, word, decodes_on)

    def _ivor(self, ivor: int) -> int:
        return self.sprs.get(ivor_spr(ivor), 0)

    def _machine_check(self, pa: int, cause: int) -> Interrupt:
        self.sprs[SPR_MCAR] = pa & 0xFFFFFFFF
        self.sprs[SPR_MCSR] |= MCSR_MCP | cause
        return Interrupt(IVOR_MACHINE_CHECK)

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

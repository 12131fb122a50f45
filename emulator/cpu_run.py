"""The core's run loops: ``run``, ``step`` and the event boundary between instructions.

``run`` alternates between the event boundary (timers, devices, MMU changes, pending interrupts, idle
waiting) and a hot loop: over translated regions (``_run_fast``), or instruction by instruction over
the decode cache (``_run_decoded``) where no region may run or a debugger steps (``_step_one``). Every
stop, event and fault happens at exactly the instruction where single-stepping has it.

A room of :class:`emulator.cpu.Cpu` (a mixin: the state it works on is the core's, declared in
:class:`emulator.cpu_types.CoreRoom`). Imports: standard library and the emulator core modules.
"""

from __future__ import annotations

from emulator.cpu_types import STOP_BUDGET, CoreRoom, Handler, StopKind, StopReason
from emulator.debug import DBCR0_IC, DBCR0_IDM, DBSR_IC
from emulator.exceptions import (
    IVOR_DEBUG,
    IVOR_EXTERNAL_INPUT,
    DebugEvent,
    HostDebugEvent,
    Interrupt,
    PowerOff,
)
from emulator.models import MSR_DE, MSR_EE, MSR_WE
from emulator.sprs import SPR_EPR
from emulator.translate import MAX_BLOCK_INSTRUCTIONS, NO_BLOCK, Block, known_region_start

# Cycles before the next event under which no new block is translated (a block costs at most this).
_TRANSLATE_HORIZON = 1024
# The run loops stop at an event boundary at least this often, with or without a timer event due (a
# 64-bit time base puts the furthest watchdog edge 2^64 ticks away). A boundary with nothing due does
# nothing the guest can see.
_EVENT_HORIZON = 1 << 48
# No block starts here and none is built yet: the decoded path runs on to the next jump or block start.
_STRAIGHT = Block(None, 1, NO_BLOCK.cycles, 0)


class RunLoops(CoreRoom):
    """The run loops room of the core (see the module docstring)."""

    def _boundary(self) -> StopReason | None:
        """Work done between instructions when an event is due: timers, MMU, pending interrupts."""
        if self._poweroff is not None:
            return StopReason(StopKind.POWER_OFF, self.pc, self._poweroff)
        if self._checkstop:
            return StopReason(StopKind.CHECKSTOP, self.pc)
        if getattr(self.bus, "reset_requested", False):
            return StopReason(StopKind.SYSTEM_RESET, self.pc)
        self.translation_changed()
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
        self._event_at = min(self._next_event_cycle(), self.cycles + _EVENT_HORIZON)
        guest = self.guest_debug
        self._slow = (self.host_debug.enabled and self.host_debug.single_step) or bool(
            guest.dbcr0 & DBCR0_IC and guest.dbcr0 & DBCR0_IDM and self.msr & MSR_DE)
        return None

    def next_wake_cycle(self) -> int | None:
        """The first cycle at which a timer or device event could wake this waiting core, or None."""
        wake = self.timers.next_wake_cycle(self.msr)
        if self.msr & MSR_EE:
            for source in self.event_sources:
                cycle = source.next_event_cycle()
                if cycle is not None and (wake is None or cycle < wake):
                    wake = cycle
        return wake

    def _idle_until_interrupt(self) -> StopReason | None:
        timers = self.timers
        for _ in range(100_000):
            if self._pending_async() is not None:
                self.waiting = False
                return None
            # Straight to the next event that could wake the core: those it cannot take (a
            # decrementer with MSR[EE]=0) are applied on the way by advance().
            wake = self.next_wake_cycle()
            limit = self.idle_until
            if limit is not None and (wake is None or wake > limit):
                # An SMP core: time is the board's, and passes while the other cores work.
                if self.cycles < limit:
                    self.cycles = limit
                    timers.advance(self.cycles)
                    self._advance_devices()
                return StopReason(StopKind.IDLE, self.pc)
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
        counted = 0   # budget used so far that self.instructions already holds (the decoded path's)
        while done < limit:
            block = get_block(pc)
            if block is None:
                block = self._block_on_miss(pc, limit - done, event_at - cycles)
            # NO_BLOCK's and _STRAIGHT's cycles lie beyond the next event boundary (_EVENT_HORIZON):
            # this one test sends them to the decoded path.
            if cycles + block[2] >= event_at or done + block[1] > limit:
                self.pc = pc
                self.cycles = cycles
                self.instructions += done - counted
                # Where no block starts, run on to the next jump or block start (see _block_on_miss).
                used, stop = self._run_decoded(
                    limit - done if block is _STRAIGHT else 1,
                    self._blocks if block is _STRAIGHT else None)
                done += used
                counted = done
                event_at = self._event_at
                if stop is not None or self.cycles >= event_at:
                    return done, stop
                pc = self.pc
                cycles = self.cycles
                continue
            try:
                # run is None only for NO_BLOCK and _STRAIGHT, which the test above never lets through.
                pc, count, cycles = block[0](gpr, cycles, event_at, limit - done)  # type: ignore[misc]
            except (Interrupt, HostDebugEvent, PowerOff) as exc:
                fault_pc, before, fault_cycles = self._fault
                self.instructions += done - counted + before
                return self._stop_for(exc, fault_pc, done + before, fault_cycles)
            done += count
            # A handler that changed control flow or the event state set _event_at to 0.
            if cycles >= self._event_at:
                break
        self.pc = pc
        self.cycles = cycles
        self.instructions += done - counted
        return done, None

    def _block_on_miss(self, pc: int, budget: int, horizon: int) -> Block:
        """The block to run where none is cached: translated once ``pc`` is hot (and a block fits
        before the next event and in the budget), else :data:`_STRAIGHT`.

        A run that ends (budget, event) mid-block resumes at an address inside a block: the decoded
        path runs on to a known block start or the next jump rather than compile a block for an entry
        point that may never recur; what it passes on the way was not entered, so it does not count
        towards translating there. Recurring entry points get translated. With ``translate_after`` 0
        (tests) every miss translates and the decoded path runs one instruction.
        """
        misses = self._entry_misses.get(pc, 0)
        if budget >= MAX_BLOCK_INSTRUCTIONS and horizon > _TRANSLATE_HORIZON:
            if misses >= self.translate_after:
                block = self._translate_block(pc)
                assert block is not None
                return block
            if misses == 0 and known_region_start(pc):
                # Compiled before (this process, or an earlier boot through the region store): hot
                # then, so most likely now; at no compile cost, the decoded path is skipped.
                block = self._translate_block(pc, compiled_only=True)
                if block is not None:
                    return block
        self._entry_misses[pc] = misses + 1
        return _STRAIGHT if self.translate_after > 0 else NO_BLOCK

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

"""The one owner of every debugger point: gdb's software breakpoints, hardware breakpoints and
watchpoints, with their insert counts, their conditions, and the state of each software breakpoint in
the vCPU (armed, pending on an unmapped page with a borrowed IAC).

``Z``/``z`` change only this bookkeeping (hardware comparators excepted, which are checked against the
core's limits and applied at once, so that gdb hears of a refused one in the reply to its ``Z``).
:meth:`BreakpointManager.flush`, called before each resume, brings the vCPU to the whole set in one
go: gdb sends a ``z0``/``Z0`` pair around every stop, and a pair with no resume between costs the vCPU
nothing. The manager describes the vCPU's debug configuration as a :class:`DebugConfig` in gdb's
terms; the :class:`DebugPort` it is given translates that to the vCPU's own format, in one place.
A breakpoint that is inserted but not hit costs the running guest nothing here: the vCPU's own
dispatch table and comparators find the hits.

Imports: standard library, :mod:`gdbstub.api` (point kinds, stop reasons, errors) and
:mod:`gdbstub.agent` (breakpoint conditions). No emulator code and no I/O.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from gdbstub.agent import AgentError, Condition, compile_condition, evaluate
from gdbstub.api import WATCH_KINDS, WATCH_REASONS, PointKind, StopReason, TargetError

log = logging.getLogger("gdbstub.breakpoints")
# Module names for the two breakpoint kinds: an enum member's look-up costs more than a global's, and
# Z0/z0 pairs around every stop pass here.
_SOFTWARE = PointKind.SOFTWARE
_HARDWARE = PointKind.HARDWARE

_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class Comparator:
    """One hardware compare: an IAC (``kind`` HARDWARE, length 4) or a DAC over a byte range."""

    kind: PointKind
    address: int
    length: int


@dataclass(frozen=True, slots=True)
class DebugConfig:
    """The vCPU's debug configuration: patched software breakpoints in use, the comparators, and
    whether it stops after every instruction."""

    software: bool
    comparators: tuple[Comparator, ...]
    single_step: bool


class DebugPort(Protocol):
    """What the manager needs of the vCPU; ``apply_debug`` raises :class:`TargetError` on refusal."""

    def insert_sw_breakpoint(self, ea: int) -> None: ...
    def remove_sw_breakpoint(self, ea: int) -> None: ...
    def read_ram(self, ea: int, n: int) -> bytes | None: ...
    def apply_debug(self, config: DebugConfig) -> None: ...


@dataclass(frozen=True, slots=True)
class KeptPoints:
    """The points gdb inserted, kept across a reset of the guest (``monitor reset``)."""

    software: dict[int, int]
    hardware: dict[Comparator, int]
    conditions: dict[tuple[PointKind, int], tuple[Condition | None, ...]]


def _compiled(code: bytes) -> Condition | None:
    try:
        return compile_condition(code)
    except AgentError as error:
        log.info("breakpoint condition evaluated by gdb instead: %s", error)
        return None


class BreakpointManager:
    """gdb's points on one vCPU with ``num_iac`` instruction and ``num_dac`` data comparators."""

    def __init__(self, port: DebugPort, num_iac: int, num_dac: int) -> None:
        self._port = port
        self._num_iac = num_iac
        self._num_dac = num_dac
        self.software: dict[int, int] = {}          # address -> insert count
        self.hardware: list[Comparator] = []        # in insertion order: each keeps its slot
        self._hardware_counts: dict[Comparator, int] = {}
        # (kind, address) -> its gdb conditions (None: one gdb sent that this stub cannot evaluate).
        self._conditions: dict[tuple[PointKind, int], tuple[Condition | None, ...]] = {}
        self._false_hits: dict[tuple[PointKind, int], int] = {}    # since the connection began
        # Software breakpoints patched into the vCPU. A reply that leaves within a few microseconds
        # reaches gdb before it sleeps waiting for it, so the patching waits for the resume, whose
        # reply is late anyway.
        self._armed: set[int] = set()
        # Addresses disarmed for the last resume (gdb steps over a breakpoint and inserts it again)
        # and, once the guest stopped, those still armable: a Z0 there needs no check.
        self._disarmed: list[int] = []
        self._armable: set[int] = set()
        # Software breakpoints at addresses nothing maps yet (a kernel's start_kernel seen from its
        # physical entry): nothing can be patched there, so each borrows a free IAC, which compares
        # effective addresses whatever the MMU does, until a flush finds the address mapped.
        self._on_iac: set[int] = set()
        self.single_step = False
        self._applied: DebugConfig | None = None

    # -- gdb's Z and z -------------------------------------------------------------------------------

    def insert(self, kind: PointKind, address: int, size: int,
               conditions: Sequence[bytes] | None = None) -> None:
        """Insert (or count once more) a point. ``conditions``: gdb's agent expressions for a Z0/Z1
        (ConditionalBreakpoints); the guest then stops there only when one of them holds.

        gdb re-sends Z0/Z1 for an inserted breakpoint whose conditions changed; a point that has or
        gets conditions is therefore updated in place, not counted again.
        """
        key = (kind, address)
        if conditions is not None or key in self._conditions:
            if kind not in (_SOFTWARE, _HARDWARE):
                raise TargetError(errno.EINVAL, "conditions only apply to breakpoints")
            inserted = (self.software.get(address, 0) if kind == _SOFTWARE
                        else self._hardware_counts.get(self._comparator(kind, address, size), 0))
            if not inserted:
                self._insert_counted(kind, address, size)
            if conditions:
                self._conditions[key] = tuple(_compiled(code) for code in conditions)
            else:
                self._conditions.pop(key, None)
            return
        self._insert_counted(kind, address, size)

    def _insert_counted(self, kind: PointKind, address: int, size: int) -> None:
        if kind == _SOFTWARE:
            count = self.software.get(address, 0)
            if count == 0 and address not in self._armed and address not in self._armable \
                    and address not in self._on_iac:
                try:
                    self._check_armable(address)    # now, so that gdb hears of a bad address at once
                except TargetError as error:
                    if error.code != errno.EFAULT or not self._iac_free():
                        raise
                    self._on_iac.add(address)
            self.software[address] = count + 1
            return
        comparator = self._comparator(kind, address, size)
        count = self._hardware_counts.get(comparator, 0)
        if count == 0:
            self.hardware.append(comparator)
            try:
                self.apply()
            except TargetError:
                # Nothing of a refused point stays behind: the next resume must not meet it.
                self.hardware.remove(comparator)
                self.apply()
                raise
        self._hardware_counts[comparator] = count + 1

    def remove(self, kind: PointKind, address: int, size: int) -> None:
        if (kind, address) in self._conditions:
            # Inserted once however often gdb updated its conditions.
            self._conditions.pop((kind, address))
            if kind == _SOFTWARE:
                self.software[address] = min(self.software.get(address, 0), 1)
            else:
                comparator = self._comparator(kind, address, size)
                if comparator in self._hardware_counts:
                    self._hardware_counts[comparator] = 1
        if kind == _SOFTWARE:
            count = self.software.get(address, 0)
            if count == 0:
                raise TargetError(errno.EINVAL, f"no breakpoint at {address:#x}")
            if count == 1:
                del self.software[address]    # disarmed at the next flush
                self._on_iac.discard(address)   # its IAC is free for a Z1 at once
            else:
                self.software[address] = count - 1
            return
        comparator = self._comparator(kind, address, size)
        count = self._hardware_counts.get(comparator, 0)
        if count == 0:
            raise TargetError(errno.EINVAL, f"no such hardware point {comparator}")
        if count == 1:
            del self._hardware_counts[comparator]
            self.hardware.remove(comparator)
            self.apply()
        else:
            self._hardware_counts[comparator] = count - 1

    def clear(self) -> None:
        """Forget every point (detach, kill, new connection) and stop single-stepping."""
        self.software.clear()
        self._arm_software()
        self.hardware.clear()
        self._hardware_counts.clear()
        self._conditions.clear()
        self._false_hits.clear()
        self.single_step = False
        self.apply()

    def keep(self) -> KeptPoints:
        return KeptPoints(dict(self.software), dict(self._hardware_counts), dict(self._conditions))

    def restore(self, kept: KeptPoints) -> None:
        """Insert again the points :meth:`keep` saw (after :meth:`clear` and a reset of the vCPU)."""
        self.software.update(kept.software)
        self._arm_software()
        self.hardware = list(kept.hardware)
        self._hardware_counts = dict(kept.hardware)
        self._conditions = dict(kept.conditions)

    def _comparator(self, kind: PointKind, address: int, size: int) -> Comparator:
        if kind == _SOFTWARE:
            raise TargetError(errno.EINVAL, "a software breakpoint takes no comparator")
        if not 0 <= address < 1 << 32:
            raise TargetError(errno.EINVAL, "address beyond 32 bits")
        length = 4 if kind == _HARDWARE else size
        # A watch is a range of the 32-bit address space: at least one byte, not wrapping past 2^32.
        if not 0 < length < 1 << 32 or address + length > 1 << 32:
            raise TargetError(errno.EINVAL, f"bad watch length {size:#x} at {address:#x}")
        return Comparator(kind, address, length)

    def _iac_free(self) -> bool:
        iacs = sum(1 for c in self.hardware if c.kind == _HARDWARE) + len(self._on_iac)
        return iacs < self._num_iac

    def _check_armable(self, address: int) -> None:
        """Raise the TargetError Z0 answers if the vCPU could not arm a software breakpoint there."""
        if address & 3:
            raise TargetError(errno.EINVAL, f"breakpoint address {address:#x} is not word aligned")
        if self._port.read_ram(address, 4) is None:
            raise TargetError(errno.EFAULT, f"no RAM mapped at {address:#x}")

    # -- the vCPU follows ------------------------------------------------------------------------------

    def flush(self, *, single_step: bool) -> None:
        """Before a resume: the vCPU gets every point gdb has inserted and the step mode."""
        self.single_step = single_step
        self._armable.clear()
        self._disarmed.clear()
        self._arm_software()
        self.apply()

    def _arm_software(self) -> None:
        """Make the vCPU's software breakpoints those gdb has inserted."""
        wanted = self.software
        armed = self._armed
        on_iac = self._on_iac
        if len(armed) == len(wanted) and armed.issuperset(wanted) and not on_iac:
            return
        on_iac.intersection_update(wanted)
        for address in armed.difference(wanted):
            # The entry is gone either way; there is nothing to restore on failure.
            with contextlib.suppress(Exception):
                self._port.remove_sw_breakpoint(address)
            armed.discard(address)
            self._disarmed.append(address)
        for address in [a for a in wanted if a not in armed]:
            if address in on_iac and self._port.read_ram(address, 4) is None:
                continue        # still unmapped: stays on its IAC
            try:
                self._port.insert_sw_breakpoint(address)
            except Exception as error:
                if address not in on_iac and self._iac_free():
                    on_iac.add(address)     # unmapped since Z0 (gdb wrote PID, say)
                    continue
                log.warning("dropped the breakpoint at %#x: it can no longer be armed (%s)", address, error)
                del wanted[address]
                on_iac.discard(address)
                self._conditions.pop((_SOFTWARE, address), None)
                continue
            on_iac.discard(address)
            armed.add(address)

    def debug_config(self) -> DebugConfig:
        comparators = tuple(self.hardware)
        if self._on_iac:
            comparators += tuple(Comparator(_HARDWARE, address, 4)
                                 for address in sorted(self._on_iac))
        return DebugConfig(bool(self.software), comparators, self.single_step)

    def apply(self) -> None:
        """Give the vCPU the current comparators and step mode (nothing if it already has them)."""
        if self.hardware or self._on_iac:
            iacs = sum(1 for c in self.hardware if c.kind == _HARDWARE)
            dacs = len(self.hardware) - iacs
            if iacs + len(self._on_iac) > self._num_iac or dacs > self._num_dac:
                raise TargetError(errno.ENOSPC, "out of debug comparators")
        config = self.debug_config()
        if config == self._applied:
            return
        self._port.apply_debug(config)
        self._applied = config

    def vcpu_reset(self) -> None:
        """The vCPU was reset or loaded a new image: it has no debug configuration, and what an address
        translates to may have changed."""
        self._armable.clear()
        self._applied = None

    def port_changed(self) -> None:
        """The port will apply a configuration differently (another core steps): apply it again at
        the next flush even if it is the same."""
        self._applied = None

    def translation_may_change(self) -> None:
        """A register write (MSR, PID...) may change what an address translates to."""
        self._armable.clear()

    def stopped(self) -> None:
        """The guest stopped: note which breakpoints disarmed for the resume could be armed again."""
        if self._disarmed:
            for address in self._disarmed:
                with contextlib.suppress(TargetError):
                    self._check_armable(address)
                    self._armable.add(address)
            self._disarmed.clear()

    # -- stops ---------------------------------------------------------------------------------------

    def instruction_compare_reason(self, address: int) -> StopReason:
        """The reason for an IAC hit at ``address``: a software breakpoint waiting on an IAC for its
        page is still gdb's Z0."""
        if address in self._on_iac and not any(
                c.kind == _HARDWARE and c.address == address for c in self.hardware):
            return StopReason.SWBREAK
        return StopReason.HWBREAK

    def has_software_breakpoint(self, address: int) -> bool:
        return address in self.software

    def watch_reason(self, address: int, *, write: bool) -> StopReason:
        """The Z2/Z3/Z4 gdb inserted that covers ``address``, for a data compare hit."""
        wanted = ((PointKind.WRITE_WATCH, PointKind.ACCESS_WATCH) if write
                  else (PointKind.READ_WATCH, PointKind.ACCESS_WATCH))
        for kinds in (wanted, WATCH_KINDS):
            for comparator in self.hardware:
                if comparator.kind in kinds and \
                        comparator.address <= address < comparator.address + comparator.length:
                    return WATCH_REASONS[comparator.kind]
        return StopReason.AWATCH

    @property
    def has_conditions(self) -> bool:
        return bool(self._conditions)

    def condition_holds(self, kind: PointKind, pc: int, read_register: Callable[[int], int],
                        read_memory: Callable[[int, int], bytes]) -> bool:
        """True unless every condition gdb gave for the breakpoint at ``pc`` evaluates to zero."""
        key = (kind, pc)
        conditions = self._conditions.get(key)
        if conditions is None:
            return True
        for condition in conditions:
            if condition is None:
                return True
            try:
                if evaluate(condition, read_register, read_memory):
                    return True
            except AgentError as error:
                log.debug("condition at %#x reported as true: %s", pc, error)
                return True
        self._false_hits[key] = self._false_hits.get(key, 0) + 1
        return False

    def step_past(self, kind: PointKind, address: int, step: Callable[[], _Result]) -> _Result:
        """Run ``step`` (one instruction) in single-step mode with the breakpoint at ``address`` out of
        the way, for the instruction under a breakpoint whose condition is false; afterwards both are
        as before. A plain call, not a context manager: it runs at every false hit."""
        hardware = self.hardware
        on_iac = kind == _SOFTWARE and address in self._on_iac
        if on_iac:
            self._on_iac.discard(address)
        elif kind == _SOFTWARE:
            self._port.remove_sw_breakpoint(address)
        else:
            self.hardware = [c for c in hardware if c.kind != _HARDWARE or c.address != address]
        try:
            self.single_step = True
            self.apply()
            return step()
        finally:
            if on_iac:
                self._on_iac.add(address)
            elif kind == _SOFTWARE:
                self._port.insert_sw_breakpoint(address)
            else:
                self.hardware = hardware      # same order: the same IAC slots as before
            self.single_step = False
            self.apply()

    # -- monitor -------------------------------------------------------------------------------------

    def describe(self) -> list[str]:
        """Lines for ``monitor debug``: gdb's points and the false conditions skipped so far."""
        self._arm_software()     # the vCPU's table as the next resume will have it

        def conditions(kind: PointKind, address: int) -> str:
            given = self._conditions.get((kind, address))
            if given is None:
                return ""
            return " (conditional" + ("" if all(given) else ", some only gdb can evaluate") + ")"
        lines = ["gdb sw breakpoints: " + (", ".join(f"{a:#x}{conditions(_SOFTWARE, a)}"
                                                     for a in self.software) or "none"),
                 "gdb hw points: " + (", ".join(f"Z{int(c.kind)} {c.address:#x}/{c.length}"
                                               f"{conditions(c.kind, c.address)}"
                                               for c in self.hardware) or "none")]
        if self._false_hits:
            # gdb removes its breakpoints at every stop, so these add up over the whole connection.
            lines.append("false conditions skipped in the stub: " + ", ".join(
                f"Z{int(kind)} {address:#x}: {count}" for (kind, address), count in self._false_hits.items()))
        return lines

"""Adapter between gdb's view of a target and the KVM-shaped :class:`emulator.kvm.Vcpu`.

It owns the debugger bookkeeping a KVM user (QEMU's kvm.c) would own: the counted software breakpoint
set (Vcpu's dispatch table), the list of hardware breakpoints/watchpoints turned into a
``struct kvm_guest_debug`` on every change, and the translation of ``kvm_run`` exits into
:class:`StopEvent` values (signal, stop reason, data address) that :mod:`gdbstub.session` formats.
Registers go through :mod:`gdbstub.registers`; errors surface as :class:`TargetError` with the errno
that becomes the ``E`` reply. No gdb packet syntax and no I/O here.

Imports: standard library, :mod:`emulator.kvm` (uapi constants and construct structures),
:mod:`emulator.models`, :mod:`gdbstub.api` (stop events, errors), :mod:`gdbstub.registers` and
:mod:`gdbstub.agent` (breakpoint conditions).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.kvm import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_INTR,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
    KVM_GUESTDBG_USE_SW_BP,
    KVM_SYSTEM_EVENT_RESET,
    KVMPPC_DEBUG_BREAKPOINT,
    KVMPPC_DEBUG_WATCH_READ,
    KVMPPC_DEBUG_WATCH_WRITE,
    UAPI_BYTE_ORDER,
    field_offset,
    kvm_guest_debug,
    kvm_run,
)
from emulator.models import MODELS
from gdbstub.agent import AgentError, Condition, compile_condition, evaluate
from gdbstub.api import SIGABRT, SIGTRAP, SIGXCPU, StopEvent, TargetError
from gdbstub.registers import REGNUM_PC, RegisterDef, RegisterTable

log = logging.getLogger("gdbstub.target")

KVM_MAX_HW_POINTS = 16   # kvm_guest_debug_arch.bp[]
_DEBUG_BYTES_CACHE_SIZE = 64
# kvm_run fields read on every exit, at offsets derived from emulator.kvm's construct declaration.
_ORDER = ">" if UAPI_BYTE_ORDER == "big" else "<"
_RUN_U64 = struct.Struct(_ORDER + "Q")
_RUN_U32 = struct.Struct(_ORDER + "I")
_OFF_DEBUG_ADDRESS = field_offset(kvm_run, "exit", "debug", "arch", "address")
_OFF_DEBUG_STATUS = field_offset(kvm_run, "exit", "debug", "arch", "status")
_OFF_EVENT_TYPE = field_offset(kvm_run, "exit", "system_event", "type")
_OFF_EVENT_DATA0 = field_offset(kvm_run, "exit", "system_event", "data", 0)

# gdb Z/z types.
Z_SOFTWARE = 0
Z_HARDWARE = 1
Z_WRITE = 2
Z_READ = 3
Z_ACCESS = 4
_WATCH_REASON = {Z_WRITE: "watch", Z_READ: "rwatch", Z_ACCESS: "awatch"}
_Z_TO_KVM = {Z_HARDWARE: KVMPPC_DEBUG_BREAKPOINT, Z_WRITE: KVMPPC_DEBUG_WATCH_WRITE,
             Z_READ: KVMPPC_DEBUG_WATCH_READ, Z_ACCESS: KVMPPC_DEBUG_WATCH_READ | KVMPPC_DEBUG_WATCH_WRITE}

class VcpuLike(Protocol):
    """The part of :class:`emulator.kvm.Vcpu` the adapter uses (docs/architecture.md "The vCPU")."""

    kvm_run: bytearray

    def run(self, max_instructions: int | None = None) -> int: ...
    def set_guest_debug(self, data: bytes) -> None: ...
    def insert_sw_breakpoint(self, ea: int) -> None: ...
    def remove_sw_breakpoint(self, ea: int) -> None: ...
    def get_reg(self, name: str) -> int: ...
    def set_reg(self, name: str, value: int) -> None: ...
    def read_memory(self, ea: int, n: int) -> bytes: ...
    def read_ram(self, ea: int, n: int) -> bytes | None: ...
    def write_memory(self, ea: int, data: bytes) -> None: ...
    def reset(self) -> None: ...


# The stops of every step and breakpoint (immutable, so shared rather than built at each stop).
_TRAP_STOP = StopEvent()
_SWBREAK_STOP = StopEvent(reason="swbreak")
_HWBREAK_STOP = StopEvent(reason="hwbreak")
_INSN_LIMIT_STOP = StopEvent(signal=SIGXCPU, insn_limit=True)


@dataclass(frozen=True, slots=True)
class HwPoint:
    z_type: int
    address: int
    length: int


def _compiled(code: bytes) -> Condition | None:
    try:
        return compile_condition(code)
    except AgentError as error:
        log.info("breakpoint condition evaluated by gdb instead: %s", error)
        return None


def _errno_of(error: Exception, default: int) -> int:
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code:
        return code
    if error.args and isinstance(error.args[0], int):
        return error.args[0]
    return default


class Target:
    """gdb-facing operations on one vCPU."""

    def __init__(self, vcpu: Any, model_name: str) -> None:
        self.vcpu = vcpu
        self.model = MODELS[model_name]
        names = getattr(vcpu, "register_names", None)
        available = frozenset(names()) if callable(names) else None
        self.registers = RegisterTable(model_name, available)
        self._g_keys = [reg.key for reg in self.registers.g_registers]
        self.sw_breakpoints: dict[int, int] = {}     # address -> insert count
        # Addresses armed in the vCPU (patched, in its dispatch table). Z0/z0 change only
        # sw_breakpoints; the vCPU follows at the next resume (_arm_sw_breakpoints). A reply that leaves
        # within a few microseconds reaches gdb before it sleeps waiting for it, and gdb sends a z0/Z0
        # pair around every stop; the patching then happens in vCont, whose reply is late anyway
        # (continue to a breakpoint 2450-2540 -> 2700-2880 /s in alternating runs on the 2-CPU VM).
        self._sw_armed: set[int] = set()
        # Addresses disarmed for the last resume (gdb steps over a breakpoint and inserts it again)
        # and, once the guest stopped, those still armable: a Z0 there needs no check.
        self._sw_disarmed: list[int] = []
        self._sw_armable: set[int] = set()
        # Soft breakpoints at addresses nothing maps yet (a kernel's start_kernel seen from its physical
        # entry): nothing can be patched there, so each borrows a free IAC, which compares effective
        # addresses whatever the MMU does, until a resume finds the address mapped and patches it.
        self._sw_on_iac: set[int] = set()
        self.hw_points: list[HwPoint] = []
        self._hw_counts: dict[HwPoint, int] = {}
        # (Z type, address) -> its gdb conditions (None: one gdb sent that this stub cannot evaluate).
        self._conditions: dict[tuple[int, int], tuple[Condition | None, ...]] = {}
        self._false_hits: dict[tuple[int, int], int] = {}     # since the connection began: `monitor debug`
        self._single_step = False
        self._range: tuple[int, int] | None = None
        self._debug_applied: bytes | None = None
        # construct's build costs about a millisecond and gdb toggles the same few configurations
        # (step on/off, one breakpoint in/out) around every stop.
        self._debug_bytes_cache: dict[tuple[int, tuple[HwPoint, ...]], bytes] = {}
        self.exited: int | None = None             # power-off status once the guest has powered off
        self._take_unhandled: Callable[[], Any] | None = getattr(vcpu, "take_unhandled_interrupt", None)
        # --max-insns: guest instructions allowed from boot (None: no limit), and those counted so far.
        # Counted per slice from the vCPU's own count, so the hot loop pays nothing for it.
        self.insn_limit: int | None = None
        self.insns_run = 0
        self.insn_limit_reached = False
        self._insns_mark = 0       # the vCPU's instruction count at the last look
        self._insns_carry = 0      # counted before a watchdog reset restarted the vCPU's count

    # -- registers -------------------------------------------------------------------------------

    def read_register(self, reg: RegisterDef) -> int:
        try:
            return int(self.vcpu.get_reg(reg.key))
        except Exception as error:
            raise TargetError(errno.EFAULT, f"cannot read {reg.name}: {error}") from error

    def write_register(self, reg: RegisterDef, value: int) -> None:
        self._sw_armable.clear()    # MSR, PID, ... may change what an address translates to
        try:
            self.vcpu.set_reg(reg.key, value)
        except Exception as error:
            raise TargetError(errno.EFAULT, f"cannot write {reg.name}: {error}") from error

    def read_g(self) -> bytes:
        keys = self._g_keys
        get_regs = getattr(self.vcpu, "get_regs", None)
        values = get_regs(keys) if callable(get_regs) else [self.vcpu.get_reg(key) for key in keys]
        return self.registers.encode_g(values)

    def register_reader(self, regs: Sequence[RegisterDef]) -> Callable[[], list[int]]:
        """A function reading ``regs`` in one vCPU call (a stop reply's expedited registers, read at every
        stop); it raises TargetError when the vCPU cannot read them."""
        keys = [reg.key for reg in regs]
        get_regs = getattr(self.vcpu, "get_regs", None)
        vcpu = self.vcpu

        def read() -> list[int]:
            try:
                if callable(get_regs):
                    return list(map(int, get_regs(keys)))
                return [int(vcpu.get_reg(key)) for key in keys]
            except Exception as error:
                raise TargetError(errno.EFAULT, f"cannot read registers: {error}") from error
        return read

    def register_by_regnum(self, regnum: int) -> RegisterDef:
        reg = self.registers.by_regnum.get(regnum)
        if reg is None:
            raise TargetError(errno.EFAULT, f"no register {regnum}")
        return reg

    @property
    def pc(self) -> int:
        return int(self.vcpu.get_reg("pc"))

    # -- memory ----------------------------------------------------------------------------------

    def read_memory(self, address: int, length: int) -> bytes:
        if length == 0:
            return b""
        if address + length > 1 << 32:
            raise TargetError(errno.EFAULT, "address beyond 32 bits")
        try:
            return bytes(self.vcpu.read_memory(address, length))
        except Exception as error:
            raise TargetError(errno.EFAULT, f"read {address:#x}+{length}: {error}") from error

    def read_ram(self, address: int, length: int) -> bytes | None:
        """The bytes at ``address`` if they lie in one RAM page (which only changes when the guest runs or
        is written), else None: the caller then uses :meth:`read_memory`."""
        return self.vcpu.read_ram(address, length)

    def write_memory(self, address: int, data: bytes) -> None:
        if not data:
            return
        if address + len(data) > 1 << 32:
            raise TargetError(errno.EFAULT, "address beyond 32 bits")
        try:
            self.vcpu.write_memory(address, data)
        except Exception as error:
            raise TargetError(errno.EFAULT, f"write {address:#x}+{len(data)}: {error}") from error

    # -- breakpoints and watchpoints -------------------------------------------------------------

    def insert_point(self, z_type: int, address: int, kind: int,
                     conditions: Sequence[bytes] | None = None) -> None:
        """Insert (or count once more) a point. ``conditions``: gdb's agent expressions for a Z0/Z1
        (ConditionalBreakpoints); the guest then stops there only when one of them holds.

        gdb re-sends Z0/Z1 for an inserted breakpoint whose conditions changed; a point that has or
        gets conditions is therefore updated in place, not counted again.
        """
        key = (z_type, address)
        if conditions is not None or key in self._conditions:
            if z_type not in (Z_SOFTWARE, Z_HARDWARE):
                raise TargetError(errno.EINVAL, "conditions only apply to breakpoints")
            inserted = (self.sw_breakpoints.get(address, 0) if z_type == Z_SOFTWARE
                        else self._hw_counts.get(self._hw_point(z_type, address, kind), 0))
            if not inserted:
                self._insert_counted(z_type, address, kind)
            if conditions:
                self._conditions[key] = tuple(_compiled(code) for code in conditions)
            else:
                self._conditions.pop(key, None)
            return
        self._insert_counted(z_type, address, kind)

    def _insert_counted(self, z_type: int, address: int, kind: int) -> None:
        if z_type == Z_SOFTWARE:
            count = self.sw_breakpoints.get(address, 0)
            if count == 0 and address not in self._sw_armed and address not in self._sw_armable \
                    and address not in self._sw_on_iac:
                try:
                    self._check_armable(address)    # now, so that gdb hears of a bad address at once
                except TargetError as error:
                    if error.code != errno.EFAULT or not self._iac_free():
                        raise
                    self._sw_on_iac.add(address)
            # The vCPU is armed, and KVM_GUESTDBG_USE_SW_BP set, at the next resume (prepare_resume):
            # only a running guest can hit a breakpoint.
            self.sw_breakpoints[address] = count + 1
            return
        point = self._hw_point(z_type, address, kind)
        count = self._hw_counts.get(point, 0)
        if count == 0:
            self.hw_points.append(point)
            try:
                self._update_debug()
            except TargetError:
                # Nothing of a refused point stays behind: the next resume must not meet it.
                self.hw_points.remove(point)
                self._update_debug()
                raise
        self._hw_counts[point] = count + 1

    def remove_point(self, z_type: int, address: int, kind: int) -> None:
        if (z_type, address) in self._conditions:
            # Inserted once however often gdb updated its conditions.
            self._conditions.pop((z_type, address))
            if z_type == Z_SOFTWARE:
                self.sw_breakpoints[address] = min(self.sw_breakpoints.get(address, 0), 1)
            else:
                point = self._hw_point(z_type, address, kind)
                if point in self._hw_counts:
                    self._hw_counts[point] = 1
        if z_type == Z_SOFTWARE:
            count = self.sw_breakpoints.get(address, 0)
            if count == 0:
                raise TargetError(errno.EINVAL, f"no breakpoint at {address:#x}")
            if count == 1:
                del self.sw_breakpoints[address]    # disarmed at the next resume
                self._sw_on_iac.discard(address)    # its IAC is free for a Z1 at once
            else:
                self.sw_breakpoints[address] = count - 1
            return
        point = self._hw_point(z_type, address, kind)
        count = self._hw_counts.get(point, 0)
        if count == 0:
            raise TargetError(errno.EINVAL, f"no such hardware point {point}")
        if count == 1:
            del self._hw_counts[point]
            self.hw_points.remove(point)
            self._update_debug()
        else:
            self._hw_counts[point] = count - 1

    def remove_all_points(self) -> None:
        """Forget every debugger point (detach, kill, new connection)."""
        self.sw_breakpoints.clear()
        self._arm_sw_breakpoints()
        self.hw_points.clear()
        self._hw_counts.clear()
        self._conditions.clear()
        self._false_hits.clear()
        self._single_step = False
        self._range = None
        self._update_debug()

    def _iac_free(self) -> bool:
        iacs = sum(1 for p in self.hw_points if p.z_type == Z_HARDWARE) + len(self._sw_on_iac)
        return iacs < self.model.num_iac

    def _check_armable(self, address: int) -> None:
        """Raise the TargetError Z0 answers if the vCPU could not arm a soft breakpoint at ``address``."""
        if address & 3:
            raise TargetError(errno.EINVAL, f"breakpoint address {address:#x} is not word aligned")
        if self.vcpu.read_ram(address, 4) is None:
            raise TargetError(errno.EFAULT, f"no RAM mapped at {address:#x}")

    def _arm_sw_breakpoints(self) -> None:
        """Make the vCPU's soft breakpoints those gdb has inserted (see ``_sw_armed``)."""
        wanted = self.sw_breakpoints
        armed = self._sw_armed
        on_iac = self._sw_on_iac
        if len(armed) == len(wanted) and armed.issuperset(wanted) and not on_iac:
            return
        on_iac.intersection_update(wanted)
        disarmed = self._sw_disarmed
        for address in armed.difference(wanted):
            # The entry is gone either way; there is nothing to restore on failure.
            with contextlib.suppress(Exception):
                self.vcpu.remove_sw_breakpoint(address)
            armed.discard(address)
            disarmed.append(address)
        for address in [a for a in wanted if a not in armed]:
            if address in on_iac and self.vcpu.read_ram(address, 4) is None:
                continue        # still unmapped: stays on its IAC
            try:
                self.vcpu.insert_sw_breakpoint(address)
            except Exception as error:
                if address not in on_iac and self._iac_free():
                    on_iac.add(address)     # unmapped since Z0 (gdb wrote PID, say)
                    continue
                log.warning("dropped the breakpoint at %#x: it can no longer be armed (%s)", address, error)
                del wanted[address]
                on_iac.discard(address)
                self._conditions.pop((Z_SOFTWARE, address), None)
                continue
            on_iac.discard(address)
            armed.add(address)

    def _hw_point(self, z_type: int, address: int, kind: int) -> HwPoint:
        if z_type not in _Z_TO_KVM:
            raise TargetError(errno.EINVAL, f"unsupported Z type {z_type}")
        if not 0 <= address < 1 << 32:
            raise TargetError(errno.EINVAL, "address beyond 32 bits")
        length = 4 if z_type == Z_HARDWARE else kind
        # A watch is a range of the 32-bit address space: at least one byte, not wrapping past 2^32.
        if not 0 < length < 1 << 32 or address + length > 1 << 32:
            raise TargetError(errno.EINVAL, f"bad watch length {kind:#x} at {address:#x}")
        return HwPoint(z_type, address, length)

    def guest_debug_bytes(self) -> bytes:
        """The ``struct kvm_guest_debug`` matching the current breakpoints and step mode."""
        control = 0
        if self.sw_breakpoints:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP
        points = self.hw_points
        if self._sw_on_iac:
            points = points + [HwPoint(Z_HARDWARE, address, 4) for address in sorted(self._sw_on_iac)]
        if points:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP
        if self._single_step:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
        key = (control, tuple(points))
        cached = self._debug_bytes_cache.get(key)
        if cached is not None:
            return cached
        # bp[n].reserved carries the watched length (emulator.kvm's documented extension).
        bps = [{"addr": p.address, "type": _Z_TO_KVM[p.z_type], "reserved": p.length} for p in points]
        bps += [{"addr": 0, "type": 0, "reserved": 0}] * (KVM_MAX_HW_POINTS - len(bps))
        data = bytes(kvm_guest_debug.build({"control": control, "pad": 0, "arch": {"bp": bps}}))
        if len(self._debug_bytes_cache) >= _DEBUG_BYTES_CACHE_SIZE:
            self._debug_bytes_cache.clear()
        self._debug_bytes_cache[key] = data
        return data

    def _update_debug(self) -> None:
        if self.hw_points or self._sw_on_iac:
            iacs = sum(1 for p in self.hw_points if p.z_type == Z_HARDWARE)
            dacs = len(self.hw_points) - iacs
            if iacs + len(self._sw_on_iac) > self.model.num_iac or dacs > self.model.num_dac:
                raise TargetError(errno.ENOSPC, "out of debug comparators")
        try:
            data = self.guest_debug_bytes()
        except Exception as error:   # a value the uapi layout cannot hold: refuse, never crash
            raise TargetError(errno.EINVAL, f"debug configuration not representable: {error}") from error
        if data == self._debug_applied:
            return
        try:
            self.vcpu.set_guest_debug(data)
        except Exception as error:
            raise TargetError(_errno_of(error, errno.EINVAL), str(error)) from error
        self._debug_applied = data

    # -- execution -------------------------------------------------------------------------------

    def prepare_resume(self, *, step: bool, step_range: tuple[int, int] | None = None) -> None:
        """Arm single-step (for ``s`` and range stepping) before a sequence of :meth:`run_slice` calls."""
        self._single_step = step or step_range is not None
        self._range = step_range
        self._sw_armable.clear()
        self._sw_disarmed.clear()
        self._arm_sw_breakpoints()
        self._update_debug()

    def run_slice(self, budget: int) -> StopEvent | None:
        """Run up to ``budget`` instructions; a stop event, or None if the guest is still running."""
        stop = self._run_slice(budget) if self.insn_limit is None else self._run_limited_slice(budget)
        if self._take_unhandled is not None:
            noted = self._take_unhandled()
            if noted is not None:
                log.warning("%s", self._unhandled_text(noted))
        if stop is not None and self._sw_disarmed:
            # Checked here, inside vCont's answer, rather than in the Z0 that follows: see _sw_armed.
            for address in self._sw_disarmed:
                with contextlib.suppress(TargetError):
                    self._check_armable(address)
                    self._sw_armable.add(address)
            self._sw_disarmed.clear()
        return stop

    def _run_limited_slice(self, budget: int) -> StopEvent | None:
        """:meth:`_run_slice` within :attr:`insn_limit`; the limit stop once it is used up.

        What counts is the vCPU's count of executed instructions, so the stop comes at the same
        instruction in every run whatever the (wall-clock tuned) slice sizes. A slice that ends with
        nothing executed and no stop (a guest waiting for an interrupt that can never come, or faulting
        on every fetch) is charged in full: it would otherwise spin forever without using the limit.
        """
        assert self.insn_limit is not None
        left = self.insn_limit - self.insns_run
        if left <= 0 and self.exited is None:
            self.insn_limit_reached = True
            return _INSN_LIMIT_STOP
        budget = max(1, min(budget, left))
        stop = self._run_slice(budget)
        executed = self._take_executed() + self._insns_carry
        self._insns_carry = 0
        if stop is None and executed == 0:
            executed = budget
        self.insns_run += executed
        if stop is None and self.insns_run >= self.insn_limit:
            self.insn_limit_reached = True
            return _INSN_LIMIT_STOP
        return stop

    def _take_executed(self) -> int:
        """Instructions the vCPU executed since the last call (its count restarts at a reset)."""
        info = self.vcpu.last_exit
        now = info.instructions if info is not None else 0
        executed = now - self._insns_mark if now >= self._insns_mark else now
        self._insns_mark = now
        return executed

    def _run_slice(self, budget: int) -> StopEvent | None:
        if self.exited is not None:
            return StopEvent(exit_status=self.exited)
        vcpu = self.vcpu
        if self._single_step:
            # One instruction per run() while stepping; range stepping keeps going inside the range.
            for _ in range(max(1, budget)):
                reason = vcpu.run(1)
                stop = self._exit_to_stop(reason)
                if stop is None:
                    continue
                if stop.reason is None and stop.exit_status is None and self._range is not None:
                    start, end = self._range
                    if start <= self.pc < end:
                        continue
                return stop
            return None
        stop = self._exit_to_stop(vcpu.run(budget))
        if self._conditions and (stop is _SWBREAK_STOP or stop is _HWBREAK_STOP) \
                and not self._condition_holds(Z_SOFTWARE if stop is _SWBREAK_STOP else Z_HARDWARE):
            return self._step_past(stop is _SWBREAK_STOP)
        return stop

    def _unhandled_text(self, noted: Any) -> str:
        """One line on an interrupt taken with no handler, naming the other core when the instruction
        that raised it exists only there (the usual cause: an image built for the other core)."""
        text = (f"the guest took a {noted.name} interrupt (IVOR{noted.ivor}) at {noted.pc:#010x} with no "
                f"handler installed: it never set IVOR{noted.ivor}, so the core jumps to "
                f"{noted.vector:#010x}")
        only_elsewhere = [name for name in noted.decodes_on if name != self.model.name]
        if noted.word is not None and self.model.name not in noted.decodes_on and only_elsewhere:
            other = only_elsewhere[0]
            return (f"{text}; the instruction there ({noted.word:#010x}) exists on {other} only: "
                    f"is this an {other} image (--cpu {other})?")
        other = next((name for name in sorted(MODELS) if name != self.model.name), None)
        return f"{text}; if the image was built for the {other}, run it with --cpu {other}" if other else text

    def describe_stop(self, stop: StopEvent) -> str:
        """One line on why the guest cannot go on (a checkstop, say), for users without gdb."""
        last_exit = getattr(self.vcpu, "last_exit", None)
        if stop.signal == SIGABRT and last_exit is not None:
            return f"the guest stopped: {last_exit.detail} at pc {last_exit.pc:#010x}"
        return f"the guest stopped with signal {stop.signal} at pc {self.pc:#010x}"

    def _condition_holds(self, z_type: int) -> bool:
        """True unless every condition gdb gave for the breakpoint at pc evaluates to zero here."""
        key = (z_type, self.pc)
        conditions = self._conditions.get(key)
        if conditions is None:
            return True
        for condition in conditions:
            if condition is None:
                return True
            try:
                if evaluate(condition, self._read_regnum, self.read_memory):
                    return True
            except AgentError as error:
                log.debug("condition at %#x reported as true: %s", self.pc, error)
                return True
        self._false_hits[key] = self._false_hits.get(key, 0) + 1
        return False

    def _read_regnum(self, regnum: int) -> int:
        return self.read_register(self.register_by_regnum(regnum))

    def _step_past(self, software: bool) -> StopEvent | None:
        """Execute the instruction under a breakpoint whose condition is false, then let the guest
        run on: None, unless the step itself ended in a stop gdb must see (a watchpoint, power-off)."""
        address = self.pc
        points = self.hw_points
        on_iac = software and address in self._sw_on_iac
        if on_iac:
            self._sw_on_iac.discard(address)
        elif software:
            self.vcpu.remove_sw_breakpoint(address)
        else:
            self.hw_points = [p for p in points if p.z_type != Z_HARDWARE or p.address != address]
        try:
            self._single_step = True
            self._update_debug()
            stop = self._exit_to_stop(self.vcpu.run(1))
        finally:
            if on_iac:
                self._sw_on_iac.add(address)
            elif software:
                self.vcpu.insert_sw_breakpoint(address)
            else:
                self.hw_points = points      # same order: the same IAC slots as before
            self._single_step = False
            self._update_debug()
        return None if stop is None or stop is _TRAP_STOP else stop

    def _exit_to_stop(self, reason: int) -> StopEvent | None:
        run = self.vcpu.kvm_run
        if reason == KVM_EXIT_INTR:
            return None
        if reason == KVM_EXIT_SYSTEM_EVENT:
            if _RUN_U32.unpack_from(run, _OFF_EVENT_TYPE)[0] == KVM_SYSTEM_EVENT_RESET:
                # Watchdog reset: the board restarts the image, as QEMU does; gdb sees nothing.
                if self.insn_limit is not None:
                    self._insns_carry += self._take_executed()
                self.vcpu.reset()
                return None
            status = _RUN_U64.unpack_from(run, _OFF_EVENT_DATA0)[0] & 0xFF
            self.exited = status
            return StopEvent(exit_status=status)
        if reason == KVM_EXIT_INTERNAL_ERROR:
            return StopEvent(signal=SIGABRT)
        if reason != KVM_EXIT_DEBUG:
            return StopEvent(signal=SIGTRAP)
        address = _RUN_U64.unpack_from(run, _OFF_DEBUG_ADDRESS)[0]
        status = _RUN_U32.unpack_from(run, _OFF_DEBUG_STATUS)[0]
        if status & KVMPPC_DEBUG_BREAKPOINT:
            # A soft breakpoint waiting on an IAC for its page is still gdb's Z0: a swbreak to gdb.
            if address in self._sw_on_iac and not any(
                    p.z_type == Z_HARDWARE and p.address == address for p in self.hw_points):
                return _SWBREAK_STOP
            return _HWBREAK_STOP
        if status & (KVMPPC_DEBUG_WATCH_READ | KVMPPC_DEBUG_WATCH_WRITE):
            return StopEvent(reason=self._watch_reason(address, status), data_address=address)
        if self._single_step:
            return _TRAP_STOP
        if address in self.sw_breakpoints and self.pc == address:
            return _SWBREAK_STOP
        return _TRAP_STOP

    def _watch_reason(self, address: int, status: int) -> str:
        """Map a DAC exit back to the Z2/Z3/Z4 gdb inserted that covers ``address``."""
        wanted = (Z_WRITE, Z_ACCESS) if status & KVMPPC_DEBUG_WATCH_WRITE else (Z_READ, Z_ACCESS)
        best: HwPoint | None = None
        for point in self.hw_points:
            if point.z_type in wanted and point.address <= address < point.address + point.length:
                best = point
                break
        if best is None:
            for point in self.hw_points:
                if point.z_type in _WATCH_REASON and point.address <= address < point.address + point.length:
                    best = point
                    break
        return _WATCH_REASON[best.z_type] if best is not None else "awatch"

    def reset(self, *, keep_points: bool = False) -> None:
        """Back to the image's boot state; gdb's points are dropped (kill) or re-armed (monitor reset)."""
        sw_points = dict(self.sw_breakpoints)
        hw_counts = dict(self._hw_counts)
        conditions = dict(self._conditions)
        self.remove_all_points()
        self.vcpu.reset()
        self._sw_armable.clear()
        self.exited = None
        self.insns_run = self._insns_mark = self._insns_carry = 0
        self.insn_limit_reached = False
        self._debug_applied = None
        if keep_points:
            self.sw_breakpoints.update(sw_points)
            self._arm_sw_breakpoints()
            self.hw_points = list(hw_counts)
            self._hw_counts = hw_counts
            self._conditions = conditions
        self._update_debug()

    def reload(self, path: str | None = None) -> None:
        """Load the image from disk again (``path``, else the one served) and reset to its boot state
        with no debugger points (extended-remote ``run``, which gdb follows with its own Z packets).
        TargetError(ENOENT) if it cannot be loaded; the previous image then stays."""
        load_image = getattr(self.vcpu, "load_image", None)
        if not callable(load_image):
            self.reset()
            return
        self.remove_all_points()
        try:
            load_image(path)
        except Exception as error:
            raise TargetError(errno.ENOENT, f"cannot load {path or self.image_path()}: {error}") from error
        finally:
            self._sw_armable.clear()
            self._debug_applied = None
            self._update_debug()
        self.exited = None

    # -- monitor helpers -------------------------------------------------------------------------

    def describe_debug_state(self) -> str:
        self._arm_sw_breakpoints()     # the vCPU's table as the next resume will have it
        describe = getattr(self.vcpu, "describe_debug_state", None)
        def conditions(z_type: int, address: int) -> str:
            given = self._conditions.get((z_type, address))
            if given is None:
                return ""
            return " (conditional" + ("" if all(given) else ", some only gdb can evaluate") + ")"
        lines = ["gdb sw breakpoints: " + (", ".join(f"{a:#x}{conditions(Z_SOFTWARE, a)}"
                                                     for a in self.sw_breakpoints) or "none"),
                 "gdb hw points: " + (", ".join(f"Z{p.z_type} {p.address:#x}/{p.length}"
                                               f"{conditions(p.z_type, p.address)}"
                                               for p in self.hw_points) or "none")]
        if self._false_hits:
            # gdb removes its breakpoints at every stop, so these add up over the whole connection.
            lines.append("false conditions skipped in the stub: " + ", ".join(
                f"Z{z_type} {address:#x}: {count}" for (z_type, address), count in self._false_hits.items()))
        if callable(describe):
            lines.append(str(describe()))
        return "\n".join(lines) + "\n"

    def describe_tlb(self) -> str:
        machine = getattr(self.vcpu, "machine", None)
        mmu = getattr(machine, "mmu", None)
        entries = getattr(mmu, "entries", None)
        if not callable(entries):
            return "TLB view not available from this vCPU\n"
        lines = []
        for entry in entries():
            try:
                lines.append(f"TLB{entry.tlb}[{entry.index}] EA {entry.epn:#010x} -> PA {entry.pa:#011x}"
                             f" size {_size_text(entry.size)} TID {entry.tid} TS {entry.ts}"
                             f" WIMGE {entry.wimge:#04x} {entry.permission_text()}"
                             f"{' IPROT' if entry.iprot else ''}\n")
            except (AttributeError, TypeError, ValueError):
                lines.append(f"{entry}\n")
        return "".join(lines) or "no valid TLB entries\n"

    def describe_pic(self) -> str:
        describe = getattr(getattr(self.vcpu, "machine", None), "describe_pic", None)
        if not callable(describe):
            return "interrupt controller view not available from this vCPU\n"
        return str(describe())

    def describe_sprs(self) -> str:
        lines = []
        for reg in self.registers.registers:
            if reg.group != "spr":
                continue
            try:
                lines.append(f"{reg.name:<10} {self.read_register(reg):#010x}")
            except TargetError:
                lines.append(f"{reg.name:<10} <unavailable>")
        return "\n".join(lines) + "\n"

    def image_path(self) -> str | None:
        """Absolute path of the loaded ELF (what ``qXfer:exec-file`` names and vFile may read)."""
        path = getattr(getattr(self.vcpu, "machine", None), "path", None)
        return os.path.abspath(path) if isinstance(path, str) else None

    def ram_size(self) -> int | None:
        bus = getattr(getattr(self.vcpu, "machine", None), "bus", None)
        size = getattr(bus, "ram_size", None)
        return size if isinstance(size, int) else None


def _size_text(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


__all__ = ["REGNUM_PC", "StopEvent", "Target", "TargetError"]

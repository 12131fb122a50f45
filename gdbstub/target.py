"""Adapter between gdb's view of a target and the KVM-shaped :class:`emulator.kvm.Vcpu`.

It does what a KVM user (QEMU's kvm.c) does around the vCPU: gdb's points live in one
:class:`~gdbstub.breakpoints.BreakpointManager`, whose debug configuration this module alone translates
to a ``struct kvm_guest_debug``; ``kvm_run`` exits become :class:`StopEvent` values (signal, stop
reason, data address) that :mod:`gdbstub.session` formats. :class:`Target` implements
:class:`gdbstub.api.Target` and every optional capability there; the vCPU it adapts is typed by
:class:`VcpuLike` and the optional vCPU protocols below it. Registers go through
:mod:`gdbstub.registers`; errors surface as :class:`TargetError` with the errno that becomes the ``E``
reply. No gdb packet syntax and no I/O here.

Imports: standard library, :mod:`emulator.kvm` (uapi constants and construct structures),
:mod:`emulator.models`, :mod:`gdbstub.api` (stop events, errors), :mod:`gdbstub.registers` and
:mod:`gdbstub.breakpoints` (gdb's points).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

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
    SMP_QUANTUM,
    UAPI_BYTE_ORDER,
    field_offset,
    kvm_guest_debug,
    kvm_run,
)
from emulator.models import MODELS
from gdbstub.api import (
    SIGABRT,
    SIGTRAP,
    SIGXCPU,
    PointKind,
    StopEvent,
    StopReason,
    TargetError,
    ThreadAction,
)
from gdbstub.breakpoints import BreakpointManager, DebugConfig
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
_KVM_COMPARE_TYPE = {PointKind.HARDWARE: KVMPPC_DEBUG_BREAKPOINT,
                     PointKind.WRITE_WATCH: KVMPPC_DEBUG_WATCH_WRITE,
                     PointKind.READ_WATCH: KVMPPC_DEBUG_WATCH_READ,
                     PointKind.ACCESS_WATCH: KVMPPC_DEBUG_WATCH_READ | KVMPPC_DEBUG_WATCH_WRITE}


class VcpuLike(Protocol):
    """The part of :class:`emulator.kvm.Vcpu` every vCPU the adapter takes has (docs/architecture.md
    "The vCPU"); :class:`RegisterListVcpu`, :class:`ExitReportingVcpu`, :class:`InterruptReportingVcpu` and
    :class:`ImageLoadingVcpu` are the parts it uses when a vCPU has them (the real one has all, the
    tests' fakes only some)."""

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
    def describe_debug_state(self) -> str: ...


@runtime_checkable
class RegisterListVcpu(Protocol):
    """A vCPU that names the registers it has and reads several in one call."""

    def register_names(self) -> list[str]: ...
    def get_regs(self, names: list[str]) -> list[int]: ...


class ExitView(Protocol):
    """What the adapter reads of the vCPU's last exit."""

    pc: int
    instructions: int
    detail: str


class UnhandledView(Protocol):
    """An interrupt the guest took with no handler installed."""

    name: str
    ivor: int
    pc: int
    vector: int
    word: int | None
    decodes_on: Sequence[str]


@runtime_checkable
class ExitReportingVcpu(Protocol):
    """A vCPU that describes its last exit (None after a reset) with its instruction count."""

    @property
    def last_exit(self) -> ExitView | None: ...


@runtime_checkable
class InterruptReportingVcpu(Protocol):
    """A vCPU that notes the interrupts the guest took with no handler installed."""

    def take_unhandled_interrupt(self) -> UnhandledView | None: ...


@runtime_checkable
class MachineViewVcpu(Protocol):
    """A vCPU that shows the machine around it: TLB, interrupt controller, image, RAM size."""

    def describe_tlb(self) -> str: ...
    def describe_pic(self) -> str: ...
    def image_path(self) -> str | None: ...
    def ram_size(self) -> int: ...


@runtime_checkable
class SharedClockVcpu(Protocol):
    """A vCPU of a multi-core board whose cores share one clock (what a VMM running the cores in
    turns needs to let time pass when they all wait)."""

    def next_wake_cycle(self) -> int | None: ...
    def end_round(self) -> None: ...
    def warp_clock(self, cycle: int) -> None: ...
    def restore_debug(self) -> None: ...


@runtime_checkable
class ImageLoadingVcpu(Protocol):
    """A vCPU that can load its image from disk again (extended-remote ``run``)."""

    def load_image(self, path: str | None = None) -> None: ...


# The stops of every step and breakpoint (immutable, so shared rather than built at each stop).
_TRAP_STOP = StopEvent()
_SWBREAK_STOP = StopEvent(reason=StopReason.SWBREAK)
_HWBREAK_STOP = StopEvent(reason=StopReason.HWBREAK)
_BREAK_STOPS = {StopReason.SWBREAK: _SWBREAK_STOP, StopReason.HWBREAK: _HWBREAK_STOP}
_INSN_LIMIT_STOP = StopEvent(signal=SIGXCPU, insn_limit=True)


def _errno_of(error: Exception, default: int) -> int:
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code:
        return code
    if error.args and isinstance(error.args[0], int):
        return error.args[0]
    return default


class _VcpuDebugPort:
    """The vCPUs as the breakpoint manager sees them: the software breakpoint table, RAM, and the
    debug configuration, into which a :class:`DebugConfig` is translated here and nowhere else.
    Every point goes to every core (gdb's model: a breakpoint or watchpoint is the process's);
    single-step only to the cores in :attr:`stepping` (indices into the vCPU list)."""

    def __init__(self, vcpus: Sequence[VcpuLike]) -> None:
        self._vcpus = vcpus
        self.stepping: frozenset[int] = frozenset(range(len(vcpus)))
        # construct's build costs about a millisecond and gdb toggles the same few configurations
        # (step on/off, one breakpoint in/out) around every stop.
        self._bytes_cache: dict[DebugConfig, bytes] = {}

    def insert_sw_breakpoint(self, ea: int) -> None:
        for vcpu in self._vcpus:
            vcpu.insert_sw_breakpoint(ea)

    def remove_sw_breakpoint(self, ea: int) -> None:
        for vcpu in self._vcpus:
            vcpu.remove_sw_breakpoint(ea)

    def read_ram(self, ea: int, n: int) -> bytes | None:
        result: bytes | None = self._vcpus[0].read_ram(ea, n)
        return result

    def apply_debug(self, config: DebugConfig) -> None:
        not_stepping = replace(config, single_step=False) if config.single_step else config
        for index, vcpu in enumerate(self._vcpus):
            self._apply_to(vcpu, config if index in self.stepping else not_stepping)

    def _apply_to(self, vcpu: VcpuLike, config: DebugConfig) -> None:
        try:
            data = self.guest_debug_bytes(config)
        except Exception as error:   # a value the uapi layout cannot hold: refuse, never crash
            raise TargetError(errno.EINVAL, f"debug configuration not representable: {error}") from error
        try:
            vcpu.set_guest_debug(data)
        except Exception as error:
            raise TargetError(_errno_of(error, errno.EINVAL), str(error)) from error

    def guest_debug_bytes(self, config: DebugConfig) -> bytes:
        """The ``struct kvm_guest_debug`` for ``config``."""
        cached = self._bytes_cache.get(config)
        if cached is not None:
            return cached
        control = 0
        if config.software:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP
        if config.comparators:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP
        if config.single_step:
            control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP
        # bp[n].reserved carries the watched length (emulator.kvm's documented extension).
        bps = [{"addr": c.address, "type": _KVM_COMPARE_TYPE[c.kind], "reserved": c.length}
               for c in config.comparators]
        bps += [{"addr": 0, "type": 0, "reserved": 0}] * (KVM_MAX_HW_POINTS - len(bps))
        data = bytes(kvm_guest_debug.build({"control": control, "pad": 0, "arch": {"bp": bps}}))
        if len(self._bytes_cache) >= _DEBUG_BYTES_CACHE_SIZE:
            self._bytes_cache.clear()
        self._bytes_cache[config] = data
        return data


class Target:
    """gdb-facing operations on the vCPUs of one guest: one per core, thread ``i + 1`` for core ``i``.

    Register and memory requests go to the selected vCPU (:meth:`select_thread`, gdb's ``Hg``). With
    several cores, :meth:`run_slice` runs the resumed ones in turns of :data:`SMP_QUANTUM`
    instructions, core 0 first, and the turn order carries over from one slice to the next and
    across stops, so a run is the same whatever the slices' sizes (the VMM's side of determinism).
    """

    def __init__(self, vcpu: VcpuLike | Sequence[VcpuLike], model_name: str) -> None:
        vcpus = list(vcpu) if isinstance(vcpu, Sequence) else [vcpu]
        if not vcpus:
            raise ValueError("a target needs at least one vCPU")
        self.vcpus = vcpus
        self.vcpu = vcpus[0]                        # the one gdb's register and memory requests go to
        self.model = MODELS[model_name]
        first = vcpus[0]
        self._register_list = first if isinstance(first, RegisterListVcpu) else None
        self._exits = first if isinstance(first, ExitReportingVcpu) else None
        self._unhandled = first if isinstance(first, InterruptReportingVcpu) else None
        self._machine_view = first if isinstance(first, MachineViewVcpu) else None
        register_list = self._register_list
        available = frozenset(register_list.register_names()) if register_list is not None else None
        self.registers = RegisterTable(model_name, available)
        self._g_keys = [reg.key for reg in self.registers.g_registers]
        self._port = _VcpuDebugPort(vcpus)
        self.breakpoints = BreakpointManager(self._port, self.model.num_iac, self.model.num_dac)
        self._range: tuple[int, int] | None = None
        self._resumed: set[int] = set()   # thread ids resumed and not stopped since
        # Several cores: thread id -> its action at the last resume, and whose turn it is (index into
        # vcpus, instructions left in the turn).
        self._actions: dict[int, ThreadAction] = {}
        self._turn = 0
        self._turn_left = SMP_QUANTUM
        self._round_progress = False           # a core executed something in this round of turns
        self._clocked = [v for v in vcpus if isinstance(v, SharedClockVcpu)]
        if len(self._clocked) != len(vcpus):
            self._clocked = []
        self._core_marks = [0] * len(vcpus)    # each core's instruction count at the last look
        self.exited: int | None = None             # power-off status once the guest has powered off
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
        self.breakpoints.translation_may_change()
        try:
            self.vcpu.set_reg(reg.key, value)
        except Exception as error:
            raise TargetError(errno.EFAULT, f"cannot write {reg.name}: {error}") from error

    def read_g(self) -> bytes:
        keys = self._g_keys
        vcpu = self.vcpu
        values = vcpu.get_regs(keys) if isinstance(vcpu, RegisterListVcpu) else [vcpu.get_reg(key)
                                                                                 for key in keys]
        return self.registers.encode_g(values)

    def register_reader(self, regs: Sequence[RegisterDef]) -> Callable[[], list[int]]:
        """A function reading ``regs`` in one vCPU call (a stop reply's expedited registers, read at every
        stop); it raises TargetError when the vCPU cannot read them."""
        keys = [reg.key for reg in regs]
        listing = self._register_list is not None

        def read() -> list[int]:
            vcpu = self.vcpu      # the selected one at the time of the read
            try:
                if listing:
                    return list(map(int, vcpu.get_regs(keys)))  # type: ignore[attr-defined]
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

    # The capabilities of gdbstub.api: all of them, each point kept by the breakpoint manager.

    def add_sw_breakpoint(self, address: int, kind: int, conditions: Sequence[bytes] | None) -> None:
        self.breakpoints.insert(PointKind.SOFTWARE, address, kind, conditions)

    def remove_sw_breakpoint(self, address: int, kind: int) -> None:
        self.breakpoints.remove(PointKind.SOFTWARE, address, kind)

    def add_hw_breakpoint(self, address: int, kind: int, conditions: Sequence[bytes] | None) -> None:
        self.breakpoints.insert(PointKind.HARDWARE, address, kind, conditions)

    def remove_hw_breakpoint(self, address: int, kind: int) -> None:
        self.breakpoints.remove(PointKind.HARDWARE, address, kind)

    def add_watchpoint(self, kind: PointKind, address: int, length: int) -> None:
        self.breakpoints.insert(kind, address, length)

    def remove_watchpoint(self, kind: PointKind, address: int, length: int) -> None:
        self.breakpoints.remove(kind, address, length)

    def remove_all_points(self) -> None:
        """Forget every debugger point (detach, kill, new connection)."""
        self.breakpoints.clear()
        self._range = None

    # -- execution -------------------------------------------------------------------------------

    def prepare_resume(self, *, step: bool, step_range: tuple[int, int] | None = None) -> None:
        """Arm single-step (for ``s`` and range stepping) before a sequence of :meth:`run_slice` calls.
        With several cores: a step steps the selected core alone (the others stay where they are),
        a continue resumes every core."""
        if len(self.vcpus) == 1:
            self._range = step_range
            self._resumed = {1}
            self.breakpoints.flush(single_step=step or step_range is not None)
            return
        selected = self.vcpus.index(self.vcpu) + 1
        if step or step_range is not None:
            self._resumed.clear()
            self.resume_threads({selected: ThreadAction(step=True, step_range=step_range)})
        else:
            self.resume_threads({tid: ThreadAction() for tid in self.thread_ids()})

    def prepare_range_step(self, start: int, end: int) -> None:
        self.prepare_resume(step=True, step_range=(start, end))

    def run_slice(self, budget: int) -> StopEvent | None:
        """Run up to ``budget`` instructions; a stop event, or None if the guest is still running."""
        stop = self._run_slice(budget) if self.insn_limit is None else self._run_limited_slice(budget)
        if self._unhandled is not None:
            for vcpu in self.vcpus:
                noted = vcpu.take_unhandled_interrupt()  # type: ignore[attr-defined]
                if noted is not None:
                    log.warning("%s", self._unhandled_text(noted))
        if stop is not None:
            # Checked here, inside vCont's answer, rather than in the Z0 that follows.
            self.breakpoints.stopped()
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
        """Instructions the vCPUs executed since the last call (their counts restart at a reset)."""
        if len(self.vcpus) > 1:
            executed, self._insns_mark = self._insns_mark, 0
            return executed
        info = self._exits.last_exit if self._exits is not None else None
        now = info.instructions if info is not None else 0
        executed = now - self._insns_mark if now >= self._insns_mark else now
        self._insns_mark = now
        return executed

    def _run_slice(self, budget: int) -> StopEvent | None:
        if self.exited is not None:
            return StopEvent(exit_status=self.exited)
        if len(self.vcpus) > 1:
            return self._run_cores(budget)
        vcpu = self.vcpu
        if self.breakpoints.single_step:
            # One instruction per run() while stepping; range stepping keeps going inside the range.
            for _ in range(max(1, budget)):
                reason = vcpu.run(1)
                stop = self._exit_to_stop(vcpu, reason)
                if stop is None:
                    continue
                if stop.reason is None and stop.exit_status is None and self._range is not None:
                    start, end = self._range
                    if start <= self._pc_of(vcpu) < end:
                        continue
                return stop
            return None
        stop = self._exit_to_stop(vcpu, vcpu.run(budget))
        if (stop is _SWBREAK_STOP or stop is _HWBREAK_STOP) and self.breakpoints.has_conditions:
            kind = PointKind.SOFTWARE if stop is _SWBREAK_STOP else PointKind.HARDWARE
            if not self.breakpoints.condition_holds(kind, self._pc_of(vcpu), self._read_regnum,
                                                    self.read_memory):
                return self._step_past(vcpu, kind)
        return stop

    def _run_cores(self, budget: int) -> StopEvent | None:
        """Several cores: the resumed ones in turns of SMP_QUANTUM instructions (a stepping core one
        instruction a turn), until one stops (the event names its thread) or ``budget`` is used."""
        vcpus = self.vcpus
        left = budget
        idle_turns = 0
        while left > 0 and idle_turns < len(vcpus):
            index = self._turn
            tid = index + 1
            action = self._actions.get(tid)
            if tid not in self._resumed or action is None:
                self._next_turn()
                idle_turns += 1
                continue
            vcpu = vcpus[index]
            stepping = action.step or action.step_range is not None
            count = 1 if stepping else min(self._turn_left, left)
            reason = vcpu.run(count)
            executed = self._executed(index, vcpu)
            self._insns_mark += executed
            if executed:
                self._round_progress = True
            halted = reason == KVM_EXIT_INTR and executed == 0 and self._is_halted(vcpu)
            stop = self._exit_to_stop(vcpu, reason)
            consumed = count if stop is None or halted else max(1, executed)
            left -= consumed
            self._turn_left -= consumed
            if halted:
                idle_turns += 1
                if stepping:
                    # A core in the spin table cannot step: report the step done where it waits.
                    return self._thread_stopped(tid, _TRAP_STOP)
            else:
                idle_turns = 0
            if stop is not None and stepping and stop.reason is None and stop.exit_status is None \
                    and action.step_range is not None:
                start, end = action.step_range
                if start <= self._pc_of(vcpu) < end:
                    stop = None
            elif stop is not None and stop.reason in (StopReason.SWBREAK, StopReason.HWBREAK) \
                    and self.breakpoints.has_conditions:
                kind = PointKind.SOFTWARE if stop.reason is StopReason.SWBREAK else PointKind.HARDWARE
                if not self.breakpoints.condition_holds(
                        kind, self._pc_of(vcpu), functools.partial(self._read_regnum_of, vcpu),
                        functools.partial(self._read_memory_of, vcpu)):
                    stop = self._step_past(vcpu, kind, index)
            if self._turn_left <= 0 or stepping:
                self._next_turn()
            if stop is not None:
                if stop.exit_status is not None:
                    return stop
                return self._thread_stopped(tid, stop)
        return None

    def _thread_stopped(self, tid: int, stop: StopEvent) -> StopEvent:
        self._resumed.discard(tid)
        return replace(stop, thread=tid)

    def _next_turn(self) -> None:
        self._turn = (self._turn + 1) % len(self.vcpus)
        self._turn_left = SMP_QUANTUM
        if self._turn == 0:
            if self._clocked:
                self._clocked[0].end_round()
            if not self._round_progress:
                self._warp_idle_cores()
            self._round_progress = False

    def _warp_idle_cores(self) -> None:
        """A whole round in which no resumed core executed anything: they all wait, so the board's
        time moves to the first event that can wake one of them."""
        clocked = self._clocked
        if not clocked:
            return
        wakes = [wake for tid in self._resumed if (wake := clocked[tid - 1].next_wake_cycle()) is not None]
        if wakes:
            clocked[0].warp_clock(min(wakes))

    def _executed(self, index: int, vcpu: VcpuLike) -> int:
        """Instructions core ``index`` ran since the last look (its count restarts at a reset)."""
        info = vcpu.last_exit if self._exits is not None else None  # type: ignore[attr-defined]
        now = info.instructions if info is not None else 0
        before = self._core_marks[index]
        self._core_marks[index] = now
        return now - before if now >= before else now

    def _is_halted(self, vcpu: VcpuLike) -> bool:
        info = vcpu.last_exit if self._exits is not None else None  # type: ignore[attr-defined]
        return info is not None and info.detail.startswith("halted")

    def _unhandled_text(self, noted: UnhandledView) -> str:
        """One line on an interrupt taken with no handler, naming the other core when the instruction
        that raised it exists only there (the usual cause: an image built for the other core)."""
        text = (f"the guest took a {noted.name} interrupt (IVOR{noted.ivor}) at {noted.pc:#010x} with no "
                f"handler installed: it never set IVOR{noted.ivor}, so the core jumps to "
                f"{noted.vector:#010x}")
        only_elsewhere = [name for name in noted.decodes_on if name != self.model.name]
        if noted.word is not None and self.model.name not in noted.decodes_on and only_elsewhere:
            core = only_elsewhere[0]
            return (f"{text}; the instruction there ({noted.word:#010x}) exists on {core} only: "
                    f"is this an {core} image (--cpu {core})?")
        other = next((name for name in sorted(MODELS) if name != self.model.name), None)
        return f"{text}; if the image was built for the {other}, run it with --cpu {other}" if other else text

    def describe_stop(self, stop: StopEvent) -> str:
        """One line on why the guest cannot go on (a checkstop, say), for users without gdb."""
        last_exit = self._exits.last_exit if self._exits is not None else None
        if stop.signal == SIGABRT and last_exit is not None:
            return f"the guest stopped: {last_exit.detail} at pc {last_exit.pc:#010x}"
        return f"the guest stopped with signal {stop.signal} at pc {self.pc:#010x}"

    def _read_regnum(self, regnum: int) -> int:
        return self.read_register(self.register_by_regnum(regnum))

    def _read_regnum_of(self, vcpu: VcpuLike, regnum: int) -> int:
        reg = self.register_by_regnum(regnum)
        try:
            return int(vcpu.get_reg(reg.key))
        except Exception as error:
            raise TargetError(errno.EFAULT, f"cannot read {reg.name}: {error}") from error

    def _read_memory_of(self, vcpu: VcpuLike, address: int, length: int) -> bytes:
        try:
            return bytes(vcpu.read_memory(address, length))
        except Exception as error:
            raise TargetError(errno.EFAULT, f"read {address:#x}+{length}: {error}") from error

    @staticmethod
    def _pc_of(vcpu: VcpuLike) -> int:
        return int(vcpu.get_reg("pc"))

    def _step_past(self, vcpu: VcpuLike, kind: PointKind, index: int | None = None) -> StopEvent | None:
        """Execute the instruction under a breakpoint whose condition is false, then let the guest
        run on: None, unless the step itself ended in a stop gdb must see (a watchpoint, power-off).
        ``index``: the core that steps, when there are several (the others do not)."""
        port = self._port
        stepping = port.stepping
        if index is not None:
            port.stepping = frozenset((index,))
            self.breakpoints.port_changed()
        try:
            stop = self.breakpoints.step_past(kind, self._pc_of(vcpu),
                                              lambda: self._exit_to_stop(vcpu, vcpu.run(1)))
        finally:
            if index is not None:
                port.stepping = stepping
                self.breakpoints.port_changed()
                self.breakpoints.apply()
        return None if stop is None or stop is _TRAP_STOP else stop

    def _exit_to_stop(self, vcpu: VcpuLike, reason: int) -> StopEvent | None:
        run = vcpu.kvm_run
        if reason == KVM_EXIT_INTR:
            return None
        if reason == KVM_EXIT_SYSTEM_EVENT:
            if _RUN_U32.unpack_from(run, _OFF_EVENT_TYPE)[0] == KVM_SYSTEM_EVENT_RESET:
                # Watchdog reset: the board restarts the image, as QEMU does; gdb sees nothing.
                if self.insn_limit is not None:
                    self._insns_carry += self._take_executed()
                self._reset_board()
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
            return _BREAK_STOPS[self.breakpoints.instruction_compare_reason(address)]
        if status & (KVMPPC_DEBUG_WATCH_READ | KVMPPC_DEBUG_WATCH_WRITE):
            watch = self.breakpoints.watch_reason(address, write=bool(status & KVMPPC_DEBUG_WATCH_WRITE))
            return StopEvent(reason=watch, data_address=address)
        if self.breakpoints.single_step and (len(self.vcpus) == 1 or self._is_stepping(vcpu)):
            return _TRAP_STOP
        if self.breakpoints.has_software_breakpoint(address) and self._pc_of(vcpu) == address:
            return _SWBREAK_STOP
        return _TRAP_STOP

    def _is_stepping(self, vcpu: VcpuLike) -> bool:
        return self.vcpus.index(vcpu) in self._port.stepping

    def _reset_board(self) -> None:
        """Every core back to the image's boot state; each vCPU keeps its debug configuration."""
        self.vcpus[0].reset()
        for vcpu in self._clocked[1:]:
            vcpu.restore_debug()
        self._turn = 0
        self._turn_left = SMP_QUANTUM
        self._core_marks = [0] * len(self.vcpus)

    def reset(self, *, keep_points: bool = False) -> None:
        """Back to the image's boot state; gdb's points are dropped (kill) or re-armed (monitor reset)."""
        kept = self.breakpoints.keep()
        self.remove_all_points()
        self._reset_board()
        self.breakpoints.vcpu_reset()
        self.exited = None
        self.insns_run = self._insns_mark = self._insns_carry = 0
        self.insn_limit_reached = False
        if keep_points:
            self.breakpoints.restore(kept)
        self.breakpoints.apply()

    def reload(self, path: str | None = None) -> None:
        """Load the image from disk again (``path``, else the one served) and reset to its boot state
        with no debugger points (extended-remote ``run``, which gdb follows with its own Z packets).
        TargetError(ENOENT) if it cannot be loaded; the previous image then stays."""
        vcpu = self.vcpus[0]
        if not isinstance(vcpu, ImageLoadingVcpu):
            self.reset()
            return
        self.remove_all_points()
        try:
            vcpu.load_image(path)
            for other in self._clocked[1:]:
                other.restore_debug()
        except Exception as error:
            raise TargetError(errno.ENOENT, f"cannot load {path or self.image_path()}: {error}") from error
        finally:
            self.breakpoints.vcpu_reset()
            self.breakpoints.apply()
        self._turn = 0
        self._turn_left = SMP_QUANTUM
        self._core_marks = [0] * len(self.vcpus)
        self.exited = None

    # -- threads: one per core -------------------------------------------------------------------

    def thread_ids(self) -> Sequence[int]:
        return tuple(range(1, len(self.vcpus) + 1))

    def thread_name(self, tid: int) -> str:
        self._check_thread(tid)
        return self.model.name

    def thread_core(self, tid: int) -> int:
        self._check_thread(tid)
        return tid - 1

    def select_thread(self, tid: int) -> None:
        self._check_thread(tid)
        self.vcpu = self.vcpus[tid - 1]

    def resume_threads(self, actions: Mapping[int, ThreadAction]) -> None:
        for tid in actions:
            self._check_thread(tid)
        if len(self.vcpus) == 1:
            action = actions.get(1)
            if action is not None:
                self._range = action.step_range
                self._resumed = {1}
                self.breakpoints.flush(single_step=action.step or action.step_range is not None)
            return
        self._actions.update(actions)
        self._resumed.update(actions)
        stepping = frozenset(tid - 1 for tid in self._resumed
                             if self._actions[tid].step or self._actions[tid].step_range is not None)
        if stepping != self._port.stepping:
            self._port.stepping = stepping
            self.breakpoints.port_changed()
        self.breakpoints.flush(single_step=bool(stepping))

    def stop_threads(self, tids: Iterable[int]) -> None:
        for tid in tids:
            self._check_thread(tid)
            self._resumed.discard(tid)

    def running_threads(self) -> frozenset[int]:
        return frozenset(self._resumed)

    def _check_thread(self, tid: int) -> None:
        if not 1 <= tid <= len(self.vcpus):
            raise TargetError(errno.ESRCH, f"no thread {tid}")

    def monitor_help(self) -> str:
        return ("  regs        dump the Book E special-purpose registers\n"
                "  info tlb    list the valid TLB entries\n"
                "  info pic    show the interrupt controller (MPIC) state\n"
                "  debug       show debugger and guest debug-facility state\n")

    def monitor_command(self, words: Sequence[str]) -> str | None:
        command = list(words)
        if command in (["regs"], ["spr"], ["info", "registers"]):
            return self.describe_sprs()
        if command == ["info", "tlb"]:
            return self.describe_tlb()
        if command == ["info", "pic"]:
            return self.describe_pic()
        if command == ["debug"]:
            return self.describe_debug_state()
        return None

    def describe_debug_state(self) -> str:
        lines = self.breakpoints.describe()
        lines.append(self.vcpu.describe_debug_state())
        return "\n".join(lines) + "\n"

    def describe_tlb(self) -> str:
        view = self._machine_view
        return view.describe_tlb() if view is not None else "TLB view not available from this vCPU\n"

    def describe_pic(self) -> str:
        view = self._machine_view
        if view is None:
            return "interrupt controller view not available from this vCPU\n"
        return view.describe_pic()

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
        path = self._machine_view.image_path() if self._machine_view is not None else None
        return os.path.abspath(path) if path is not None else None

    def ram_size(self) -> int | None:
        return self._machine_view.ram_size() if self._machine_view is not None else None


__all__ = ["REGNUM_PC", "StopEvent", "Target", "TargetError"]

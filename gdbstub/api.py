"""What the session asks of a target and what a target answers, with no emulator behind it.

:class:`Target` is what every target offers (registers, memory, running, reset). Everything else is an
optional capability, a protocol of its own (:class:`SoftwareBreakpoints`, :class:`HardwareBreakpoints`,
:class:`Watchpoints`, :class:`RangeStepping`, :class:`HostIo`, :class:`MemoryMap`, :class:`Threads`,
:class:`Monitor`, :class:`ExtendedMode`): :class:`Capabilities` finds which ones a target implements, and
the session derives from that alone what it offers gdb (``qSupported``, ``vCont?``) and which packets
it parses; a packet for a missing capability gets the empty reply, as for any unknown packet.

Beside them: the stop events a run ends with and their closed set of reasons, the kinds of point gdb
inserts, the error a refused request raises, and gdb's signal numbers.

:mod:`gdbstub.target` implements these over the emulator's vCPU; :mod:`gdbstub.session` speaks gdb's
protocol in these terms, so importing the protocol side loads no emulator code.

Imports: standard library only (:mod:`gdbstub.registers` for type checking only).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gdbstub.registers import RegisterDef, RegisterTable

# gdb's signal numbers (GDB_SIGNAL_*), as stop replies carry them.
SIGINT = 2
SIGABRT = 6
SIGTRAP = 5
SIGXCPU = 24     # gdb's number (GDB_SIGNAL_XCPU): the X reply when --max-insns is used up


class TargetError(Exception):
    """A request the target refused; ``code`` is the errno for the ``E`` reply (14 = EFAULT, 22 = EINVAL)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or errno.errorcode.get(code, str(code)))
        self.code = code


class PointKind(IntEnum):
    """What gdb inserts with ``Z``/``z``; the values are the packets' type numbers."""

    SOFTWARE = 0
    HARDWARE = 1
    WRITE_WATCH = 2
    READ_WATCH = 3
    ACCESS_WATCH = 4


WATCH_KINDS = frozenset((PointKind.WRITE_WATCH, PointKind.READ_WATCH, PointKind.ACCESS_WATCH))


class StopReason(Enum):
    """Why a stop at a debugger point happened; the values are the stop reply's field names."""

    SWBREAK = "swbreak"
    HWBREAK = "hwbreak"
    WATCH = "watch"
    RWATCH = "rwatch"
    AWATCH = "awatch"


WATCH_REASONS = {PointKind.WRITE_WATCH: StopReason.WATCH, PointKind.READ_WATCH: StopReason.RWATCH,
                 PointKind.ACCESS_WATCH: StopReason.AWATCH}


@dataclass(frozen=True, slots=True)
class StopEvent:
    """Why the guest stopped. ``exit_status`` set means it powered off (``W`` reply); ``insn_limit``
    means it used up the target's instruction limit (``--max-insns``) without powering off;
    ``data_address`` is the watched address a watchpoint stop reports."""

    signal: int = SIGTRAP
    reason: StopReason | None = None
    thread: int | None = None     # the thread that stopped (a Threads target); None: the only one
    data_address: int | None = None
    exit_status: int | None = None
    insn_limit: bool = False


class Target(Protocol):
    """What the session needs of every target."""

    registers: RegisterTable
    exited: int | None            # power-off status once the guest has powered off

    def read_register(self, reg: RegisterDef) -> int: ...
    def write_register(self, reg: RegisterDef, value: int) -> None: ...
    def read_g(self) -> bytes: ...
    def register_reader(self, regs: Sequence[RegisterDef]) -> Callable[[], list[int]]: ...
    def register_by_regnum(self, regnum: int) -> RegisterDef: ...
    def read_memory(self, address: int, length: int) -> bytes: ...
    def read_ram(self, address: int, length: int) -> bytes | None: ...
    def write_memory(self, address: int, data: bytes) -> None: ...
    def prepare_resume(self, *, step: bool) -> None: ...
    def run_slice(self, budget: int) -> StopEvent | None: ...
    def remove_all_points(self) -> None: ...
    def reset(self, *, keep_points: bool = False) -> None: ...


@runtime_checkable
class SoftwareBreakpoints(Protocol):
    """``Z0``/``z0``; stops at them are reported as ``swbreak`` to a gdb that asked for it.
    ``conditions``: gdb's agent expressions (``ConditionalBreakpoints``); a target may report every
    hit anyway, gdb evaluates them again."""

    def add_sw_breakpoint(self, address: int, kind: int, conditions: Sequence[bytes] | None) -> None: ...
    def remove_sw_breakpoint(self, address: int, kind: int) -> None: ...


@runtime_checkable
class HardwareBreakpoints(Protocol):
    """``Z1``/``z1``; stops at them are reported as ``hwbreak`` to a gdb that asked for it."""

    def add_hw_breakpoint(self, address: int, kind: int, conditions: Sequence[bytes] | None) -> None: ...
    def remove_hw_breakpoint(self, address: int, kind: int) -> None: ...


@runtime_checkable
class Watchpoints(Protocol):
    """``Z2``-``Z4``/``z2``-``z4``: ``kind`` is one of :data:`WATCH_KINDS`."""

    def add_watchpoint(self, kind: PointKind, address: int, length: int) -> None: ...
    def remove_watchpoint(self, kind: PointKind, address: int, length: int) -> None: ...


@runtime_checkable
class RangeStepping(Protocol):
    """vCont's ``r``: step while pc stays in [start, end)."""

    def prepare_range_step(self, start: int, end: int) -> None: ...


@runtime_checkable
class HostIo(Protocol):
    """``vFile`` and ``qXfer:exec-file``: gdb reads the loaded image (and nothing else) from the host."""

    def image_path(self) -> str | None: ...


@runtime_checkable
class MemoryMap(Protocol):
    """``qXfer:memory-map``."""

    def ram_size(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ThreadAction:
    """What one thread does at a resume: run on (the default), step one instruction, or step while
    its pc stays in ``step_range`` [start, end)."""

    step: bool = False
    step_range: tuple[int, int] | None = None


@runtime_checkable
class Threads(Protocol):
    """Several threads: the cores of an SMP guest, thread id ``i + 1`` for core ``i``. A target
    without this capability shows gdb one thread, id 1.

    Each thread is stopped or resumed. :meth:`resume_threads` resumes the threads it names (the
    others stay as they are); :meth:`Target.run_slice` then runs the resumed threads and returns the
    first :class:`StopEvent` (its ``thread`` names the thread, which is stopped from then on, while
    the other resumed threads stay resumed until :meth:`stop_threads`: all-stop stops them all,
    non-stop leaves them running). Register and memory requests go to the thread
    :meth:`select_thread` chose (gdb's ``Hg``)."""

    def thread_ids(self) -> Sequence[int]: ...
    def thread_name(self, tid: int) -> str: ...
    def thread_core(self, tid: int) -> int: ...
    def select_thread(self, tid: int) -> None: ...
    def resume_threads(self, actions: Mapping[int, ThreadAction]) -> None: ...
    def stop_threads(self, tids: Iterable[int]) -> None: ...
    def running_threads(self) -> frozenset[int]: ...


@runtime_checkable
class Monitor(Protocol):
    """``qRcmd`` (gdb's ``monitor``) beyond ``help`` and ``reset``: ``monitor_help`` lists the target's
    commands (lines of help text); ``monitor_command`` returns a command's output, None if unknown."""

    def monitor_help(self) -> str: ...
    def monitor_command(self, words: Sequence[str]) -> str | None: ...


@runtime_checkable
class ExtendedMode(Protocol):
    """``target extended-remote``'s ``run`` (``vRun``): the image loaded afresh; TargetError if not."""

    def reload(self, path: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The optional capabilities a target implements (None: it does not)."""

    software_breakpoints: SoftwareBreakpoints | None
    hardware_breakpoints: HardwareBreakpoints | None
    watchpoints: Watchpoints | None
    range_stepping: RangeStepping | None
    host_io: HostIo | None
    memory_map: MemoryMap | None
    threads: Threads | None
    monitor: Monitor | None
    extended_mode: ExtendedMode | None

    @classmethod
    def of(cls, target: object) -> Capabilities:
        t = target
        return cls(t if isinstance(t, SoftwareBreakpoints) else None,
                   t if isinstance(t, HardwareBreakpoints) else None,
                   t if isinstance(t, Watchpoints) else None,
                   t if isinstance(t, RangeStepping) else None,
                   t if isinstance(t, HostIo) else None,
                   t if isinstance(t, MemoryMap) else None,
                   t if isinstance(t, Threads) else None,
                   t if isinstance(t, Monitor) else None,
                   t if isinstance(t, ExtendedMode) else None)

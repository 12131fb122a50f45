"""What the session asks of a target and what a target answers, with no emulator behind it: the stop
events a run ends with and their closed set of reasons, the kinds of point gdb inserts, the error a
refused request raises, and gdb's signal numbers.

:mod:`gdbstub.target` implements these over the emulator's vCPU; :mod:`gdbstub.session` speaks gdb's
protocol in these terms, so importing the protocol side loads no emulator code.

Imports: standard library only.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum, IntEnum

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
    data_address: int | None = None
    exit_status: int | None = None
    insn_limit: bool = False

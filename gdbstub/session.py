"""Sans-I/O command layer of the stub: one gdb packet payload in, reply values out.

:class:`Session` keeps what was negotiated with gdb (qSupported features, multiprocess thread ids, no-ack
mode). Each payload is parsed once into a typed command (:mod:`gdbstub.protocol.commands`) and
dispatched on its type; the packets without a typed command yet (queries, most ``v`` packets) go to a
handler through a dict keyed by the packet's leading bytes.
Handlers return a list of :data:`Reply` values: ``bytes`` payloads to frame and send (possibly several
``O`` packets before the final one), :class:`Notification` values to frame as ``%...#xx``, or actions
for the server (:class:`Resume`, :class:`Detach`, :class:`Kill`, :class:`StartNoAck`). They never touch
sockets. Resuming is also sans-I/O: in all-stop mode the server calls :meth:`Session.run_slice`
repeatedly (checking the socket in between) and sends the stop reply it eventually returns; in non-stop
mode (``QNonStop:1``, a target with threads) vCont is answered OK at once, the server calls
:meth:`Session.run_non_stop_slice` between the packets it answers, and sends the
:meth:`Session.take_notification` each stop may owe gdb.

Threads: a target with the :class:`~gdbstub.api.Threads` capability shows gdb each of its threads
(``qfThreadInfo``, ``qXfer:threads``, ``qThreadExtraInfo``, ``T``), ``Hg`` selects the thread registers
and memory go to, ``Hc`` the one ``c``/``s`` resume, and vCont's per-thread actions become the
``{tid: ThreadAction}`` given to ``resume_threads``. In all-stop mode a step holds every thread whose
only action is the default continue (:meth:`Session._v_cont_threads`), every thread stops when one does,
and the stop reply names that thread, which becomes gdb's current thread. A target without the
capability has one thread, id 1, and is resumed through ``prepare_resume``.

No exception escapes :meth:`Session.handle`: bad arguments become ``E22``, bad addresses ``E14``, and
bugs ``E01`` plus a log line.

What it offers gdb (``qSupported``, ``vCont?``) and which packets it parses follow from the
:class:`~gdbstub.api.Capabilities` of its target: a packet for a capability the target lacks gets the
empty reply.

Imports: standard library, :mod:`gdbstub.api` (the target protocols, stop events, errors),
:mod:`gdbstub.registers` (register numbers), :mod:`gdbstub.protocol.commands` (parsing) and
:mod:`gdbstub.protocol.framing` (only the :class:`~gdbstub.protocol.framing.HexPayload` reply type); the
target it drives is given to it, so importing it
loads no emulator code beyond the model facts.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import struct
import sys
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO
from xml.sax.saxutils import escape as xml_escape

from gdbstub.api import (
    SIGINT,
    SIGTRAP,
    WATCH_KINDS,
    Capabilities,
    ExtendedMode,
    MemoryMap,
    PointKind,
    StopEvent,
    StopReason,
    Target,
    TargetError,
    ThreadAction,
    Threads,
)
from gdbstub.protocol.commands import (
    Attach,
    Crc,
    DetachRequest,
    ExtendedModeRequest,
    HostIo,
    InsertPoint,
    KillRequest,
    MalformedPacketError,
    MonitorCommand,
    RawPacket,
    ReadMemory,
    ReadRegister,
    ReadRegisters,
    RemovePoint,
    RestartRequest,
    ResumeRequest,
    Run,
    SearchMemory,
    SetThread,
    StartNoAckRequest,
    StopStatus,
    Supported,
    ThreadAlive,
    ThreadExtraInfo,
    ThreadId,
    VCont,
    VContAction,
    VContQuery,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
    XferRead,
    parse,
    query_name,
)
from gdbstub.protocol.framing import HexPayload
from gdbstub.registers import REGNUM_LR, REGNUM_MSR, REGNUM_PC, REGNUM_SP

log = logging.getLogger("gdbstub.session")

# Largest packet payload we accept and advertise; m/X/qXfer replies are bounded by it.
PACKET_SIZE = 0x20000
# Largest `m` reply in bytes of memory (two hex digits each). gdb sizes its `m` requests from PacketSize
# (a dump asks for PACKET_SIZE // 2 bytes at a time); longer requests get a shorter reply, which the
# protocol allows and gdb continues from.
MAX_MEMORY_READ = PACKET_SIZE // 2
PID = 1
TID = 1
# Registers expedited in every T stop reply: what gdb reads at each stop to find the frame.
EXPEDITED_REGNUMS = (REGNUM_SP, 31, REGNUM_PC, REGNUM_MSR, REGNUM_LR)
_OUTPUT_CHUNK = 400   # characters of monitor output per O packet
# While the guest is stopped gdb asks for the same few words again and again (its prologue analysis
# re-reads the function around pc for every frame it builds: ~35 packets per stepi, a third of them
# distinct). Replies to such reads are remembered until a packet that may change guest state arrives.
# Only short replies are kept (a dump reads everything once), and only this many.
_REMEMBERED_REPLY_BYTES = 256
_REMEMBERED_REPLIES = 4096
_REMEMBERED_THREAD_LISTS = 16
# Packets that never change guest state, so remembered replies stay valid across them.
_STATE_PRESERVING_KINDS = frozenset((b"m", b"g", b"p", b"?"))
# (b"qC" also covers qCRC.)
_STATE_PRESERVING_QUERIES = (b"qXfer:", b"qC", b"qAttached", b"qOffsets", b"qTStatus", b"qfThreadInfo",
                             b"qsThreadInfo", b"qThreadExtraInfo", b"qSearch:memory:")

_WATCH_REASONS = {reason: reason.value.encode() for reason in (StopReason.WATCH, StopReason.RWATCH,
                                                                StopReason.AWATCH)}

OK = b"OK"
EMPTY = b""
E_FAULT = b"E14"
E_INVALID = b"E22"
E_INTERNAL = b"E01"

# gdb's File-I/O protocol: open flags, errno values and the big-endian struct stat it expects.
_FILEIO_ACCESS_MODE = 0x3        # O_RDONLY 0, O_WRONLY 1, O_RDWR 2
_FILEIO_ENOENT = 2
_FILEIO_EBADF = 9
_FILEIO_EACCES = 13
_FILEIO_EINVAL = 22
_FILEIO_EMFILE = 24
_FILEIO_MAX_OPEN = 16
_FILEIO_STAT = struct.Struct(">IIIIIIIQQQIII")


@dataclass(frozen=True, slots=True)
class Resume:
    """Run the guest (all-stop): continue, single-step, or step while pc stays in ``step_range``.
    ``threads``: what each resumed thread does, for a target with threads (None: the default for
    ``step``, see :meth:`Session.begin_resume`); ``step`` and ``step_range`` then describe the thread
    gdb is stepping."""

    step: bool
    step_range: tuple[int, int] | None = None
    threads: Mapping[int, ThreadAction] | None = None


@dataclass(frozen=True, slots=True)
class Detach:
    """gdb detached: let the guest run on and wait for the next gdb."""


@dataclass(frozen=True, slots=True)
class Kill:
    """gdb killed the guest outside extended mode: end this connection (the server resets the guest)."""


@dataclass(frozen=True, slots=True)
class StartNoAck:
    """Switch the framer to no-ack mode after sending the OK that precedes this action."""


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification for gdb (non-stop mode's ``Stop:`` and a stop reply): framed ``%...#xx``, never
    acknowledged."""

    payload: bytes


Reply = bytes | Resume | Detach | Kill | StartNoAck | Notification

_CONTINUE = Resume(step=False)
_STEP = Resume(step=True)
_STEP_ACTIONS = (b"s", b"S", b"r")     # vCont actions that step (the rest continue, or stop: t)


def log_internal_error(doing: str) -> None:
    """Log the exception being handled as one line (the traceback only at debug level, ``-v``): a bug
    in the stub is reported, never shown to the user as a traceback, and the session goes on."""
    error = sys.exc_info()[1]
    log.error("internal error %s: %s: %s", doing, type(error).__name__, error)
    log.debug("traceback of that error", exc_info=True)


# qCRC and qSearch:memory read guest memory in pieces of this many bytes (one piece per call into the
# vCPU; a search keeps the pattern's length minus one bytes of overlap between pieces).
_SCAN_CHUNK = 0x10000
# gdb's CRC (libiberty's xcrc32: polynomial 0x04c11db7, MSB first, no final inversion) is zlib's
# reflected CRC-32 computed over bit-reversed bytes, with the result reflected back.
_BIT_REVERSED = bytes(int(f"{value:08b}"[::-1], 2) for value in range(256))


def gdb_crc32(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """libiberty ``xcrc32(data, len(data), crc)``: what gdb's compare-sections expects from qCRC."""
    reflected_start = int(f"{crc:032b}"[::-1], 2) ^ 0xFFFFFFFF
    reflected = zlib.crc32(data.translate(_BIT_REVERSED), reflected_start) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def _preserves_state(payload: bytes) -> bool:
    """True for packets that only read (memory, registers, stop status, thread and target queries)."""
    return payload[:1] in _STATE_PRESERVING_KINDS or payload.startswith(_STATE_PRESERVING_QUERIES)


def _is_our_thread(thread: ThreadId) -> bool:
    return thread.pid in (-1, 0, PID) and thread.tid in (-1, 0, TID)


def _vcont_choice(command: VCont, range_stepping: bool) -> VContAction:
    """The leftmost action; MalformedPacketError if any names another thread, or is ``r`` and the target
    cannot range-step."""
    for action in command.actions:
        if action.thread is not None and not _is_our_thread(action.thread):
            raise MalformedPacketError(f"unknown thread {action.thread}")
        if action.action == b"r" and not range_stepping:
            raise MalformedPacketError("this target cannot range-step")
    if not command.actions:
        raise MalformedPacketError("vCont without actions")
    return command.actions[0]


class Session:
    """Protocol state of one gdb connection over one :class:`Target`."""

    def __init__(self, target: Target, *, range_stepping: bool = True) -> None:
        """``range_stepping``: offer vCont's ``r`` action. gdb 13's ``record full`` range-steps and then
        records only the first instruction of each range (gdb 14 fixed this): without ``r`` it steps
        one instruction at a time, as recording needs."""
        self.target = target
        self.capabilities = capabilities = Capabilities.of(target)
        self.range_stepping = range_stepping and capabilities.range_stepping is not None
        self.multiprocess = False
        self.gdb_swbreak = False
        self.gdb_hwbreak = False
        self.no_ack = False
        # `target extended-remote`: kill keeps the connection, and `run` (vRun) starts the image afresh.
        self.extended = False
        self.attached = True          # qAttached: gdb found the guest (detach on quit) vs started it
        self.killed = False           # extended mode: killed and not run again yet (no process)
        self.last_stop = StopEvent(signal=SIGTRAP)
        self._running: Resume | None = None
        # Threads: those of a Threads target, else the one thread TID.
        self.threads: Threads | None = capabilities.threads
        self.current_thread = self._thread_ids()[0]   # Hg: registers and memory go to it
        self.continue_thread: int | None = None       # Hc: the thread c/s resume; None: all (-1, 0)
        self.non_stop = False
        self._resumed: set[int] = set()               # threads resumed and not stopped since
        self._thread_stops: dict[int, StopEvent] = {}  # each thread's last stop, for non-stop `?`
        # Non-stop: stop replies gdb has not taken yet, oldest first. While _announced, the head has
        # been sent (a %Stop notification, or the reply to `?` or vStopped) and leaves at vStopped.
        self._stop_queue: deque[bytes] = deque()
        self._announced = False
        # Non-stop `?`: the stops of the stopped threads after the first, announced once gdb has
        # drained the reply to `?` (see _non_stop_status).
        self._deferred_stops: list[bytes] = []
        self._host_files: dict[int, BinaryIO] = {}   # vFile descriptors: open files of the image, read-only
        registers = target.registers
        self._expedited = [registers.by_regnum[regnum] for regnum in EXPEDITED_REGNUMS]
        self._expedited_format = b"".join(b"%02x:%%0%dx;" % (reg.regnum, 2 * reg.size)
                                          for reg in self._expedited)
        self._expedited_masks = [(1 << reg.bits) - 1 for reg in self._expedited]
        self._read_expedited = target.register_reader(self._expedited)
        # payload -> reply of RAM reads since the last packet that may change state.
        self._remembered: dict[bytes, bytes] = {}
        # qXfer:threads payload -> ((no process, multiprocess) it was built for, reply): gdb asks at
        # every stop, and the answer changes only with those two.
        self._thread_lists: dict[bytes, tuple[tuple[bool, bool], bytes]] = {}
        # The payload being answered: the key under which a RAM read's reply is remembered.
        self._payload = b""
        self._commands: dict[type, Callable[[Any], list[Reply]]] = {
            ReadMemory: self._read_memory, WriteMemory: self._write_memory, ReadRegisters: self._read_g,
            WriteRegisters: self._write_g, ReadRegister: self._read_p, WriteRegister: self._write_p,
            ResumeRequest: self._resume, VCont: self._v_cont, InsertPoint: self._insert,
            RemovePoint: self._remove, SetThread: self._set_thread, ThreadAlive: self._thread_alive,
            StopStatus: self._stop_status, DetachRequest: self._detach, KillRequest: self._kill,
            Attach: self._v_attach, Crc: self._q_crc, SearchMemory: self._q_search,
            MonitorCommand: self._q_monitor, Supported: self._q_supported, XferRead: self._q_xfer,
            ThreadExtraInfo: self._q_thread_extra, VContQuery: self._v_cont_query,
            StartNoAckRequest: self._start_no_ack,
        }
        if capabilities.host_io is not None:
            self._commands[HostIo] = self._v_file
        if capabilities.extended_mode is not None:
            self._commands.update({ExtendedModeRequest: self._extended_mode, RestartRequest: self._restart,
                                   Run: functools.partial(self._v_run, capabilities.extended_mode)})
        # Packets without a typed command (nothing in them to parse), by their leading byte.
        self._handlers: dict[bytes, Callable[[bytes], list[Reply]]] = {b"q": self._query}
        if capabilities.threads is not None:
            # Non-stop mode: QNonStop:0/1 and vStopped.
            self._handlers.update({b"Q": self._q_non_stop, b"v": self._v_stopped})
        self._queries: dict[bytes, Callable[[bytes], list[Reply]]] = {
            b"qC": self._q_current_thread,
            b"qfThreadInfo": self._q_first_thread, b"qsThreadInfo": lambda _: [b"l"],
            b"qAttached": self._q_attached,
            b"qOffsets": lambda _: [b"Text=0;Data=0;Bss=0"], b"qTStatus": lambda _: [EMPTY],
            b"qSymbol": lambda _: [OK],
        }
        # qXfer objects served whatever the target (exec-file: only while it names an image).
        self._xfer_objects = {b"features"}
        if capabilities.memory_map is not None:
            self._xfer_objects.add(b"memory-map")
        if capabilities.threads is not None:
            self._xfer_objects.add(b"threads")
        # Z/z by point kind: only the kinds the target takes.
        self._point_adders: dict[PointKind, Callable[[int, int, tuple[bytes, ...] | None], None]] = {}
        self._point_removers: dict[PointKind, Callable[[int, int], None]] = {}
        if capabilities.software_breakpoints is not None:
            self._point_adders[PointKind.SOFTWARE] = capabilities.software_breakpoints.add_sw_breakpoint
            self._point_removers[PointKind.SOFTWARE] = capabilities.software_breakpoints.remove_sw_breakpoint
        if capabilities.hardware_breakpoints is not None:
            self._point_adders[PointKind.HARDWARE] = capabilities.hardware_breakpoints.add_hw_breakpoint
            self._point_removers[PointKind.HARDWARE] = capabilities.hardware_breakpoints.remove_hw_breakpoint
        watchpoints = capabilities.watchpoints
        if watchpoints is not None:
            for watch in WATCH_KINDS:
                self._point_adders[watch] = functools.partial(self._add_watchpoint, watch)
                self._point_removers[watch] = functools.partial(watchpoints.remove_watchpoint, watch)

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, payload: bytes) -> list[Reply]:
        """Answer one packet. Never raises."""
        remembered = self._remembered.get(payload)
        if remembered is not None:
            return [remembered]
        thread_list = self._thread_lists.get(payload)
        if thread_list is not None and thread_list[0] == (self.no_process, self.multiprocess):
            return [thread_list[1]]
        if self._remembered and not _preserves_state(payload):
            self._remembered.clear()
        try:
            command = parse(payload)
            if type(command) is RawPacket:
                handler = self._handlers.get(payload[:1])
                return handler(payload) if handler is not None else [EMPTY]
            self._payload = payload
            answer = self._commands.get(type(command))
            return answer(command) if answer is not None else [EMPTY]
        except MalformedPacketError as error:
            log.debug("malformed %r: %s", payload[:64], error)
            return [E_INVALID]
        except TargetError as error:
            log.debug("target refused %r: %s", payload[:64], error)
            # E14 / E22 as QEMU writes them: the errno's decimal digits.
            return [b"E%02d" % (error.code if 0 < error.code < 100 else errno.EINVAL)]
        except Exception:
            log_internal_error(f"handling {payload[:64]!r}")
            return [E_INTERNAL]

    @property
    def running(self) -> bool:
        """Some thread runs: the guest in all-stop, any resumed thread in non-stop."""
        return self._running is not None or bool(self._resumed)

    def begin_resume(self, action: Resume) -> bytes | None:
        """Arm the target for ``action``; then call :meth:`run_slice` until it returns a reply.

        Returns an error reply instead (and the guest stays stopped) when the target cannot be armed:
        nothing that reaches the resume path may end the session."""
        self._remembered.clear()
        try:
            if self.threads is not None:
                self._resume_threads(action.threads if action.threads is not None
                                     else self._default_actions(action.step, action.step_range))
            elif action.step_range is not None and self.capabilities.range_stepping is not None:
                self.capabilities.range_stepping.prepare_range_step(*action.step_range)
            else:
                self.target.prepare_resume(step=action.step)
        except TargetError as error:
            log.warning("cannot resume: %s", error)
            return b"E%02d" % (error.code if 0 < error.code < 100 else errno.EINVAL)
        except Exception:
            log_internal_error("arming the guest for a resume")
            return E_INTERNAL
        self._running = action
        return None

    def run_slice(self, budget: int) -> bytes | None:
        """Run up to ``budget`` instructions; the stop reply once the guest stopped, else None."""
        if self._running is None:
            return self.stop_reply(self.last_stop)
        try:
            stop = self.target.run_slice(budget)
        except Exception:
            log_internal_error("running the guest")
            stop = StopEvent(signal=SIGTRAP)
        if stop is None:
            return None
        return self._stopped(stop)

    def interrupt(self) -> bytes | None:
        """Ctrl-C: stop a running guest (T02 for the current thread if it runs, else for the first
        running one). None if it was not running (gdb expects nothing). In non-stop mode (where gdb
        sends ``vCont;t`` instead) every running thread stops and is queued with SIGINT; None."""
        if self.non_stop:
            self._stop_running_threads(SIGINT)
            return None
        if self._running is None:
            return None
        return self._stopped(StopEvent(signal=SIGINT))

    def _stopped(self, stop: StopEvent) -> bytes:
        """All-stop: ``stop`` ended the run; every thread stops and the one that stopped becomes
        gdb's current thread (as gdbserver makes it), so the reply's registers are its own."""
        # Single-step stays armed until the next resume says otherwise (begin_resume, or the detached
        # run): a stepping gdb then re-arms nothing at each stepi.
        self._running = None
        if self.threads is not None:
            tid = self._stopping_thread(stop)
            self._halt(self._thread_ids())
            if stop.exit_status is None and not stop.insn_limit:
                stop = replace(stop, thread=tid)
                for other in self._thread_ids():
                    self._thread_stops[other] = StopEvent(signal=0, thread=other)
                self._thread_stops[tid] = stop
                try:
                    self._select(tid)
                except Exception:
                    log_internal_error(f"selecting thread {tid} at its stop")
        self.last_stop = stop
        return self.stop_reply(stop)

    # -- threads, non-stop -------------------------------------------------------------------------

    def _thread_ids(self) -> Sequence[int]:
        return self.threads.thread_ids() if self.threads is not None else (TID,)

    def _halt(self, tids: Sequence[int]) -> None:
        """Stop ``tids``, in the target and in the session's books. A target failing to is logged, not
        raised: the stop is reported whatever happens, as nothing in the resume path ends a session."""
        assert self.threads is not None
        self._resumed.difference_update(tids)
        try:
            self.threads.stop_threads(tids)
        except Exception:
            log_internal_error("stopping threads")

    def _named_thread(self, thread: ThreadId) -> int | None:
        """The thread ``thread`` names; None when it means all (-1) or any (0) thread.
        MalformedPacketError (E22) for another process or a thread that does not exist."""
        if thread.pid not in (-1, 0, PID):
            raise MalformedPacketError(f"no such process {thread.pid}")
        if thread.tid in (-1, 0):
            return None
        if thread.tid not in self._thread_ids():
            raise MalformedPacketError(f"no such thread {thread.tid}")
        return thread.tid

    def _select(self, tid: int) -> None:
        """Make ``tid`` gdb's current thread (``Hg``): registers and memory are then its own."""
        if self.threads is not None:
            self.threads.select_thread(tid)
        self.current_thread = tid

    def _stopping_thread(self, stop: StopEvent) -> int:
        """The thread a stop is reported for: the one the target names, else the current thread if it
        runs, else the first running one (a target with one thread leaves ``thread`` unset)."""
        if stop.thread is not None:
            return stop.thread
        if self.current_thread in self._resumed or not self._resumed:
            return self.current_thread
        return min(self._resumed)

    def _resume_threads(self, actions: Mapping[int, ThreadAction]) -> None:
        assert self.threads is not None
        self.threads.resume_threads(actions)
        self._resumed.update(actions)

    def _default_actions(self, step: bool, step_range: tuple[int, int] | None) -> dict[int, ThreadAction]:
        """``c``/``s`` (no vCont): the ``Hc`` thread (else the current one) steps alone, the others
        held; a continue resumes the ``Hc`` thread, or every thread after ``Hc-1``/``Hc0``."""
        chosen = self.continue_thread if self.continue_thread is not None else self.current_thread
        if step or step_range is not None:
            return {chosen: ThreadAction(step=True, step_range=step_range)}
        if self.continue_thread is not None:
            return {chosen: ThreadAction()}
        return {tid: ThreadAction() for tid in self._thread_ids() if tid not in self._resumed}

    def _vcont_plan(self, command: VCont) -> dict[int, tuple[VContAction, bool]]:
        """Each thread's action (the leftmost that names it or applies to all, gdb's rule), with
        whether that action named the thread. E22 for an unknown thread, ``r`` the target cannot do,
        or no action at all."""
        if not command.actions:
            raise MalformedPacketError("vCont without actions")
        ids = self._thread_ids()
        plan: dict[int, tuple[VContAction, bool]] = {}
        for action in command.actions:
            if action.action == b"r" and self.capabilities.range_stepping is None:
                raise MalformedPacketError("this target cannot range-step")
            named = None if action.thread is None else self._named_thread(action.thread)
            if named is not None:
                plan.setdefault(named, (action, True))
            elif action.thread is not None and action.thread.tid == 0:
                plan.setdefault(self.current_thread, (action, True))    # "any thread": the current one
            else:
                for tid in ids:
                    plan.setdefault(tid, (action, False))
        return plan

    def _v_cont_threads(self, command: VCont) -> list[Reply]:
        """vCont for a target with threads.

        All-stop: the threads without an action stay stopped, ``t`` is void (every thread is stopped
        already), and while some thread steps (``s``, ``r``) the threads whose only action is the
        default continue (``c`` without a thread id) are held, as gdb's ``set scheduler-locking step``
        expects: ``stepi`` steps the selected core and no other core moves. A continue naming a thread
        (``c:2``) still runs beside the step. Non-stop: see :meth:`_v_cont_non_stop`."""
        plan = self._vcont_plan(command)
        if self.non_stop:
            return self._v_cont_non_stop(plan)
        if self.target.exited is not None:
            return [self.stop_reply(StopEvent(exit_status=self.target.exited))]
        stepping = any(action.action in _STEP_ACTIONS for action, _ in plan.values())
        actions: dict[int, ThreadAction] = {}
        for tid, (action, named) in plan.items():
            step = action.action in _STEP_ACTIONS
            if action.action == b"t" or (stepping and not step and not named):
                continue
            actions[tid] = ThreadAction(step=step, step_range=action.step_range)
        if not actions:
            return [self.stop_reply(StopEvent(signal=0))]
        steppers = [tid for tid, action in actions.items() if action.step]
        focus = (self.current_thread if self.current_thread in (steppers or actions)
                 else (steppers or list(actions))[0])
        return [Resume(step=actions[focus].step, step_range=actions[focus].step_range, threads=actions)]

    def _v_cont_non_stop(self, plan: dict[int, tuple[VContAction, bool]]) -> list[Reply]:
        """Non-stop vCont: answered OK at once, the threads it resumes run while gdb goes on sending
        packets (the server runs them between packets) and each stop is queued and announced
        (:meth:`take_notification`). A running thread keeps running unless an action names it; ``t``
        stops a running thread, reported with signal 0; stepping holds no other thread."""
        if self.target.exited is not None:
            self._stop_queue.append(self.stop_reply(StopEvent(exit_status=self.target.exited)))
            return self._ok_and_notification()
        actions: dict[int, ThreadAction] = {}
        to_stop: list[int] = []
        for tid, (action, named) in plan.items():
            running = tid in self._resumed
            if action.action == b"t":
                if running:
                    to_stop.append(tid)
            elif named or not running:
                actions[tid] = ThreadAction(step=action.action in _STEP_ACTIONS, step_range=action.step_range)
        if actions:
            self._remembered.clear()
            self._resume_threads(actions)
        if to_stop:
            self._stop_threads(to_stop, 0)
        return self._ok_and_notification()

    def _ok_and_notification(self) -> list[Reply]:
        notification = self.take_notification()
        return [OK] if notification is None else [OK, notification]

    def _stop_threads(self, tids: list[int], signal: int) -> None:
        for tid in tids:
            self._queue_stop(StopEvent(signal=signal, thread=tid))

    def _stop_running_threads(self, signal: int) -> None:
        if self._resumed:
            self._stop_threads(sorted(self._resumed), signal)

    def _queue_stop(self, stop: StopEvent) -> None:
        """Non-stop: a thread stopped (or the guest powered off, which stops them all): its stop
        reply joins the queue gdb drains with vStopped."""
        if stop.exit_status is not None or stop.insn_limit:
            self._halt(self._thread_ids())
        else:
            tid = self._stopping_thread(stop)
            self._halt((tid,))
            stop = replace(stop, thread=tid)
            self._thread_stops[tid] = stop
        self.last_stop = stop
        self._stop_queue.append(self.stop_reply(stop))

    def run_non_stop_slice(self, budget: int) -> None:
        """Non-stop: run the resumed threads up to ``budget`` instructions; a thread that stops is
        queued (the server then sends :meth:`take_notification`). Nothing runs when no thread is
        resumed."""
        if not self._resumed:
            return
        self._remembered.clear()    # memory changes under the running threads
        try:
            stop = self.target.run_slice(budget)
        except Exception:
            log_internal_error("running the guest")
            stop = StopEvent(signal=SIGTRAP)
        if stop is not None:
            self._queue_stop(stop)

    def take_notification(self) -> Notification | None:
        """Non-stop: the ``%Stop`` notification to send now, if a stop is queued and none is
        outstanding (gdb takes the rest with vStopped, one at a time)."""
        if self._announced or not self._stop_queue:
            return None
        self._announced = True
        return Notification(b"Stop:" + self._stop_queue[0])

    def _v_stopped(self, payload: bytes) -> list[Reply]:
        """``vStopped``: the announced stop is taken; answer the next queued one, or OK when none is
        left."""
        if payload != b"vStopped":
            return [EMPTY]
        if self._announced and self._stop_queue:
            self._stop_queue.popleft()
        if self._stop_queue:
            self._announced = True
            return [self._stop_queue[0]]
        self._announced = False
        if self._deferred_stops:
            self._stop_queue.extend(self._deferred_stops)
            self._deferred_stops.clear()
            return self._ok_and_notification()
        return [OK]

    def _q_non_stop(self, payload: bytes) -> list[Reply]:
        """``QNonStop:1`` (non-stop mode) or ``QNonStop:0`` (all-stop)."""
        if not payload.startswith(b"QNonStop:"):
            return [EMPTY]
        mode = payload[len(b"QNonStop:"):]
        if mode not in (b"0", b"1"):
            raise MalformedPacketError("expected QNonStop:0 or QNonStop:1")
        self.non_stop = mode == b"1"
        if not self.non_stop and self._resumed:
            self._halt(self._thread_ids())      # all-stop starts with every thread stopped
        self._stop_queue.clear()
        self._deferred_stops = []
        self._announced = False
        return [OK]

    def _non_stop_status(self) -> list[Reply]:
        """``?`` in non-stop: the stop of one stopped thread (the current one first), OK when every
        thread runs; the other stopped threads' stops follow as ``%Stop`` notifications once gdb's
        vStopped has drained that one.

        The protocol would allow answering them all through vStopped at once, but gdb 13 (checked
        with gdb-multiarch 13.1) then fails an internal assertion when it connects in non-stop mode:
        with more than one initial stop queued it marks its event handler before it is asynchronous.
        Stops that arrive as notifications it takes later, from its event loop."""
        self._stop_queue.clear()
        self._announced = False
        stopped = [tid for tid in self._thread_ids() if tid not in self._resumed]
        if not stopped:
            self._deferred_stops = []
            return [OK]
        if self.current_thread in stopped:
            stopped.remove(self.current_thread)
            stopped.insert(0, self.current_thread)
        replies = [self.stop_reply(self._thread_stops.get(tid) or StopEvent(signal=0, thread=tid))
                   for tid in stopped]
        self._stop_queue.append(replies[0])
        self._deferred_stops = replies[1:]
        self._announced = True
        return [replies[0]]

    def resume_blocking(self, action: Resume, budget: int = 100_000, max_slices: int = 10_000) -> bytes:
        """Run until the guest stops (tests and the no-gdb path); T02 if it never does."""
        refused = self.begin_resume(action)
        if refused is not None:
            return refused
        for _ in range(max_slices):
            reply = self.run_slice(budget)
            if reply is not None:
                return reply
        return self.interrupt() or b""

    # -- stop replies ----------------------------------------------------------------------------

    def thread_id(self, tid: int | None = None) -> bytes:
        """``tid`` (default: the current thread) as gdb writes it: ``pP.T`` once multiprocess is agreed."""
        if tid is None:
            tid = self.current_thread
        return b"p%x.%x" % (PID, tid) if self.multiprocess else b"%x" % tid

    def stop_reply(self, stop: StopEvent) -> bytes:
        if stop.exit_status is not None:
            return b"W%02x" % stop.exit_status + (b";process:%x" % PID if self.multiprocess else b"")
        if stop.insn_limit:
            # --max-insns used up: "terminated with signal SIGXCPU" in gdb; the server then exits.
            return b"X%02x" % stop.signal + (b";process:%x" % PID if self.multiprocess else b"")
        parts = [b"T%02x" % stop.signal]
        tid = self.current_thread if stop.thread is None else stop.thread
        try:
            values = self._read_thread_expedited(tid)
            # Big-endian hex of each value, as RegisterTable.encode writes it, in one formatting.
            parts.append(self._expedited_format % tuple(map(int.__and__, values, self._expedited_masks)))
        except TargetError:
            pass   # expedited registers are an optimisation: gdb reads whatever is missing with `g`
        parts.append(b"thread:%s;" % self.thread_id(tid))
        reason = stop.reason
        if reason in _WATCH_REASONS and stop.data_address is not None:
            parts.append(b"%s:%x;" % (_WATCH_REASONS[reason], stop.data_address))
        elif reason is StopReason.SWBREAK and self.gdb_swbreak:
            parts.append(b"swbreak:;")
        elif reason is StopReason.HWBREAK and self.gdb_hwbreak:
            parts.append(b"hwbreak:;")
        return b"".join(parts)

    def _read_thread_expedited(self, tid: int) -> list[int]:
        """The expedited registers of thread ``tid``, whichever thread is selected (and stays so)."""
        threads = self.threads
        if threads is None or tid == self.current_thread:
            return self._read_expedited()
        threads.select_thread(tid)
        try:
            return self._read_expedited()
        finally:
            threads.select_thread(self.current_thread)

    def _stop_status(self, command: StopStatus) -> list[Reply]:
        if self.killed:
            return [b"W00"]   # gdbserver's answer when there is no process
        if self.target.exited is not None:
            return [self.stop_reply(StopEvent(exit_status=self.target.exited))]
        if self.non_stop:
            return self._non_stop_status()
        if self.threads is not None and self.last_stop.thread is not None:
            self._select(self.last_stop.thread)     # gdb takes the reply's thread as its current one
        return [self.stop_reply(self.last_stop)]

    # -- registers -------------------------------------------------------------------------------

    def _read_g(self, command: ReadRegisters) -> list[Reply]:
        return [HexPayload(self.target.read_g())]

    def _write_g(self, command: WriteRegisters) -> list[Reply]:
        try:
            values = self.target.registers.split_g(command.data)
        except ValueError as error:
            raise MalformedPacketError(str(error)) from None
        for reg, value in values:
            self.target.write_register(reg, value)
        return [OK]

    def _read_p(self, command: ReadRegister) -> list[Reply]:
        reg = self.target.register_by_regnum(command.regnum)
        return [self.target.registers.encode(reg, self.target.read_register(reg))]

    def _write_p(self, command: WriteRegister) -> list[Reply]:
        reg = self.target.register_by_regnum(command.regnum)
        try:
            decoded = self.target.registers.decode(reg, command.value)
        except ValueError as error:
            raise MalformedPacketError(str(error)) from None
        self.target.write_register(reg, decoded)
        return [OK]

    # -- memory ----------------------------------------------------------------------------------

    def _remember(self, payload: bytes, reply: bytes) -> None:
        """Keep ``reply`` as the answer to ``payload`` until guest state may change."""
        if len(reply) <= _REMEMBERED_REPLY_BYTES:
            if len(self._remembered) >= _REMEMBERED_REPLIES:
                self._remembered.clear()
            self._remembered[payload] = reply

    def _read_memory(self, command: ReadMemory) -> list[Reply]:
        address, length = command.address, min(command.length, MAX_MEMORY_READ)
        ram = self.target.read_ram(address, length)
        if ram is not None:
            reply = HexPayload(ram.hex(), "ascii")
            self._remember(self._payload, reply)
            return [reply]
        try:
            return [HexPayload(self.target.read_memory(address, length).hex(), "ascii")]
        except TargetError:
            # A read crossing into unmapped space returns what is readable up to the fault.
            data = self._read_prefix(address, length)
            if not data:
                raise
            return [HexPayload(data.hex(), "ascii")]

    def _read_prefix(self, address: int, length: int) -> bytes:
        pieces = []
        end = address + length
        while address < end:
            chunk = min(end, (address | 0xFFF) + 1) - address
            try:
                pieces.append(self.target.read_memory(address, chunk))
            except TargetError:
                break
            address += chunk
        return b"".join(pieces)

    def _write_memory(self, command: WriteMemory) -> list[Reply]:
        self.target.write_memory(command.address, command.data)
        return [OK]

    # -- execution -------------------------------------------------------------------------------

    def _resume(self, command: ResumeRequest) -> list[Reply]:
        if command.address is not None:
            self.target.write_register(self.target.registers.by_regnum[REGNUM_PC], command.address)
        if self.target.exited is not None:
            return [self.stop_reply(StopEvent(exit_status=self.target.exited))]
        if self.non_stop:
            self._remembered.clear()
            self._resume_threads(self._default_actions(command.step, None))
            return [OK]
        return [_STEP if command.step else _CONTINUE]

    def _v_cont_query(self, command: VContQuery) -> list[Reply]:
        return [b"vCont;c;C;s;S;t;r" if self.range_stepping else b"vCont;c;C;s;S;t"]

    # -- host I/O: gdb reads the loaded image through vFile (and nothing else) -------------------------

    def _v_file(self, command: HostIo) -> list[Reply]:
        """Host I/O answers in File-I/O terms only: every failure is ``F-1,errno``, never an E reply."""
        try:
            return self._host_io(command)
        except (OSError, ValueError, OverflowError) as error:
            # A name with a NUL byte, an offset past what the host's file API takes, a vanished file.
            code = getattr(error, "errno", None)
            return [b"F-1,%x" % (code if isinstance(code, int) and 0 < code < 1 << 16 else _FILEIO_EINVAL)]

    def _host_io(self, command: HostIo) -> list[Reply]:
        operation = command.operation
        if operation == b"setfs" and command.problem is None:
            return [b"F0"]
        if operation not in (b"open", b"pread", b"close", b"fstat"):
            return [EMPTY]   # readlink, unlink, pwrite...: not offered
        if command.descriptor is None:
            if command.problem is not None or command.name is None:
                log.debug("malformed %r: %s", self._payload[:64], command.problem)
                return [b"F-1,%x" % _FILEIO_EINVAL]
            return [self._host_open(command.name, command.flags)]
        handle = self._host_files.get(command.descriptor)
        if handle is None:
            return [b"F-1,%x" % _FILEIO_EBADF]
        if command.problem is not None:
            log.debug("malformed %r: %s", self._payload[:64], command.problem)
            return [b"F-1,%x" % _FILEIO_EINVAL]
        if operation == b"close":
            del self._host_files[command.descriptor]
            handle.close()
            return [b"F0"]
        if operation == b"fstat":
            info = os.fstat(handle.fileno())
            data = _FILEIO_STAT.pack(0, 0, info.st_mode & 0xFFFFFFFF, 1, 0, 0, 0, info.st_size, 4096,
                                     (info.st_size + 511) // 512, 0, int(info.st_mtime) & 0xFFFFFFFF, 0)
            return [b"F%x;" % len(data) + data]
        if command.offset >= 1 << 63:
            return [b"F-1,%x" % _FILEIO_EINVAL]   # no file offset goes that far (off_t)
        handle.seek(command.offset)
        data = handle.read(min(command.count, MAX_MEMORY_READ))
        return [b"F%x;" % len(data) + data]

    def _image_path(self) -> str | None:
        host_io = self.capabilities.host_io
        return host_io.image_path() if host_io is not None else None

    def _host_open(self, name: str, flags: int) -> bytes:
        image = self._image_path()
        if image is None or "\0" in name or os.path.realpath(name) != os.path.realpath(image):
            return b"F-1,%x" % _FILEIO_ENOENT
        if flags & _FILEIO_ACCESS_MODE:
            return b"F-1,%x" % _FILEIO_EACCES
        if len(self._host_files) >= _FILEIO_MAX_OPEN:
            return b"F-1,%x" % _FILEIO_EMFILE
        try:
            handle = open(image, "rb")  # noqa: SIM115 - held until gdb's vFile:close or close()
        except OSError:
            return b"F-1,%x" % _FILEIO_EINVAL
        descriptor = next(fd for fd in range(3, 3 + _FILEIO_MAX_OPEN) if fd not in self._host_files)
        self._host_files[descriptor] = handle
        return b"F%x" % descriptor

    def close(self) -> None:
        """The connection ended: release what gdb left open."""
        for handle in self._host_files.values():
            handle.close()
        self._host_files.clear()

    def _v_run(self, extended_mode: ExtendedMode, command: Run) -> list[Reply]:
        """``run`` in extended mode: the image read from disk again (the file gdb names, else the one
        served), so a rebuilt image runs with the symbols gdb just loaded from it; arguments are
        ignored (the guest has no command line)."""
        if not self.extended:
            return [EMPTY]
        if command.problem is not None:
            raise MalformedPacketError(command.problem)
        name = command.name
        try:
            extended_mode.reload(name)
        except TargetError as error:
            log.warning("run: %s", error)
            raise
        self.killed = False
        self.last_stop = StopEvent(signal=SIGTRAP)
        self.attached = False
        return [self.stop_reply(self.last_stop)]

    def _v_attach(self, command: Attach) -> list[Reply]:
        if command.pid != PID:
            raise MalformedPacketError("no such process")
        if self.target.exited is not None:
            self.target.reset()
        self.killed = False
        self.attached = True
        self.last_stop = StopEvent(signal=SIGTRAP)
        return [self.stop_reply(self.last_stop)]

    def _extended_mode(self, command: ExtendedModeRequest) -> list[Reply]:
        self.extended = True
        return [OK]

    def _restart(self, command: RestartRequest) -> list[Reply]:
        if self.extended:
            self._start_afresh()
        return []   # R has no reply

    def _start_afresh(self) -> None:
        self.target.reset()
        self._resumed.clear()
        self.killed = False
        self.last_stop = StopEvent(signal=SIGTRAP)

    def _v_cont(self, command: VCont) -> list[Reply]:
        """Apply the leftmost action whose thread id matches our only thread (gdb's rule); a target
        with threads: :meth:`_v_cont_threads`."""
        if self.threads is not None:
            return self._v_cont_threads(command)
        chosen = _vcont_choice(command, self.capabilities.range_stepping is not None)
        if chosen.action == b"t":
            # All-stop: our only thread is already stopped.
            return [self.stop_reply(StopEvent(signal=0))]
        if self.target.exited is not None:
            return [self.stop_reply(StopEvent(exit_status=self.target.exited))]
        if chosen.step_range is not None:
            return [Resume(step=True, step_range=chosen.step_range)]
        return [_STEP if chosen.action in (b"s", b"S") else _CONTINUE]

    def _insert(self, command: InsertPoint) -> list[Reply]:
        add = self._point_adders.get(command.kind)
        if add is None:
            return [EMPTY]
        add(command.address, command.size, command.conditions)
        return [OK]

    def _remove(self, command: RemovePoint) -> list[Reply]:
        remove = self._point_removers.get(command.kind)
        if remove is None:
            return [EMPTY]
        remove(command.address, command.size)
        return [OK]

    def _add_watchpoint(self, watch_kind: PointKind, address: int, length: int,
                        conditions: tuple[bytes, ...] | None) -> None:
        if conditions is not None:
            raise TargetError(errno.EINVAL, "conditions only apply to breakpoints")
        assert self.capabilities.watchpoints is not None
        self.capabilities.watchpoints.add_watchpoint(watch_kind, address, length)

    # -- threads and process ---------------------------------------------------------------------

    def _set_thread(self, command: SetThread) -> list[Reply]:
        """``Hg``: the thread registers and memory go to (``-1``/``0``: the current one stays);
        ``Hc``: the thread ``c``/``s`` resume (``-1``/``0``: all)."""
        if self.threads is None:
            if not _is_our_thread(command.thread):
                raise MalformedPacketError("no such thread")
            return [OK]
        tid = self._named_thread(command.thread)
        if command.operation == b"g":
            if tid is not None:
                self._select(tid)
        else:
            self.continue_thread = tid
        return [OK]

    def _thread_alive(self, command: ThreadAlive) -> list[Reply]:
        if not (command.thread.pid in (-1, PID) and command.thread.tid in self._thread_ids()):
            raise MalformedPacketError("no such thread")
        return [OK]

    def _detach(self, command: DetachRequest) -> list[Reply]:
        if command.pid is not None and command.pid != PID:
            raise MalformedPacketError("no such process")
        self.target.remove_all_points()
        return [OK, Detach()]

    def _kill(self, command: KillRequest) -> list[Reply]:
        acknowledgement: list[Reply] = [OK] if command.acknowledged else []
        if not self.extended:
            return [*acknowledgement, Kill()]
        self.target.reset()
        self._resumed.clear()
        self.killed = True
        return acknowledgement

    def _start_no_ack(self, command: StartNoAckRequest) -> list[Reply]:
        self.no_ack = True
        return [OK, StartNoAck()]

    # -- queries ---------------------------------------------------------------------------------

    def _query(self, payload: bytes) -> list[Reply]:
        handler = self._queries.get(query_name(payload))
        return handler(payload) if handler is not None else [EMPTY]

    def _q_supported(self, command: Supported) -> list[Reply]:
        offered = command.features
        self.multiprocess = b"multiprocess+" in offered
        self.gdb_swbreak = b"swbreak+" in offered and self.capabilities.software_breakpoints is not None
        self.gdb_hwbreak = b"hwbreak+" in offered and self.capabilities.hardware_breakpoints is not None
        # The reply does not depend on what gdb offered (RSP "qSupported"); a swbreak/hwbreak stop
        # reason is only sent when both sides named the feature.
        capabilities = self.capabilities
        features = [b"PacketSize=%x" % PACKET_SIZE, b"qXfer:features:read+"]
        if capabilities.memory_map is not None:
            features.append(b"qXfer:memory-map:read+")
        if capabilities.threads is not None:
            features += [b"qXfer:threads:read+", b"QNonStop+"]
        features += [b"vContSupported+", b"QStartNoAckMode+"]
        if capabilities.software_breakpoints is not None or capabilities.hardware_breakpoints is not None:
            features.append(b"ConditionalBreakpoints+")
        if self._image_path() is not None:
            features.append(b"qXfer:exec-file:read+")   # gdb with no file finds the ELF (vFile)
        if capabilities.software_breakpoints is not None:
            features.append(b"swbreak+")
        if capabilities.hardware_breakpoints is not None:
            features.append(b"hwbreak+")
        features.append(b"multiprocess+")
        return [b";".join(features)]

    def _q_attached(self, payload: bytes) -> list[Reply]:
        return [b"1" if self.attached else b"0"]

    def _q_current_thread(self, payload: bytes) -> list[Reply]:
        if payload != b"qC":
            return [EMPTY]
        return [b"QC" + self.thread_id(self.current_thread)]

    @property
    def no_process(self) -> bool:
        """Extended mode after kill or power-off: no process (and so no thread) until `run`."""
        return self.extended and (self.killed or self.target.exited is not None)

    def _q_first_thread(self, payload: bytes) -> list[Reply]:
        if self.no_process:
            return [b"l"]
        return [b"m" + b",".join(self.thread_id(tid) for tid in self._thread_ids())]

    def _q_thread_extra(self, command: ThreadExtraInfo) -> list[Reply]:
        threads = self.threads
        if threads is None:
            return [EMPTY]
        tid = self._named_thread(command.thread)
        if tid is None:
            tid = self.current_thread
        state = "running" if tid in self._resumed else "halted"
        text = f"{threads.thread_name(tid)} core {threads.thread_core(tid)} [{state}]"
        return [text.encode().hex().encode()]

    def _q_xfer(self, command: XferRead) -> list[Reply]:
        obj, annex, offset, length = command.object, command.annex, command.offset, command.length
        if obj == b"features":
            document = self.target.registers.documents.get(annex)
            if document is None:
                return [b"E00"]
        elif obj == b"memory-map" and not annex and self.capabilities.memory_map is not None:
            document = self._memory_map(self.capabilities.memory_map)
        elif obj == b"exec-file" and self._image_path() is not None:
            document = str(self._image_path()).encode("utf-8", "surrogateescape")
        elif obj == b"threads" and not annex and self.threads is not None:
            threads = self.threads
            entries = b"" if self.no_process else b"".join(
                b'<thread id="%s" core="%d" name="%s"/>\n'
                % (self.thread_id(tid), threads.thread_core(tid),
                   xml_escape(threads.thread_name(tid), {'"': "&quot;"}).encode())
                for tid in self._thread_ids())
            document = b'<?xml version="1.0"?>\n<threads>\n%s</threads>\n' % entries
            if offset == 0 and len(document) <= length:
                reply = b"l" + document
                if len(self._thread_lists) >= _REMEMBERED_THREAD_LISTS:
                    self._thread_lists.clear()
                self._thread_lists[self._payload] = ((self.no_process, self.multiprocess), reply)
                return [reply]
        else:
            return [EMPTY] if obj not in self._xfer_objects else [b"E00"]
        if offset > len(document):
            return [b"E00"]
        length = min(length, PACKET_SIZE - 16)
        window = document[offset:offset + length]
        more = offset + length < len(document)
        return [(b"m" if more else b"l") + window]

    def _q_crc(self, command: Crc) -> list[Reply]:
        """``qCRC:addr,length``: gdb's compare-sections checks a loaded image without reading it back."""
        address, length = command.address, command.length
        if address + length > 1 << 32:
            raise TargetError(errno.EFAULT, "range beyond 32 bits")
        crc = 0xFFFFFFFF
        for start in range(address, address + length, _SCAN_CHUNK):
            crc = gdb_crc32(self.target.read_memory(start, min(_SCAN_CHUNK, address + length - start)), crc)
        return [b"C%08x" % crc]

    def _q_search(self, command: SearchMemory) -> list[Reply]:
        """``qSearch:memory:addr;length;pattern``: gdb's ``find`` without reading the range back.

        The pattern must lie wholly inside the range; the reply is ``1,addr`` of the first match or ``0``.
        """
        address, length, pattern = command.address, command.length, command.pattern
        end = min(address + length, 1 << 32)
        overlap = len(pattern) - 1
        start = address
        while start + len(pattern) <= end:
            piece_end = min(end, start + _SCAN_CHUNK + overlap)
            found = self.target.read_memory(start, piece_end - start).find(pattern)
            if found >= 0:
                return [b"1,%x" % (start + found)]
            start = piece_end - overlap
        return [b"0"]

    @staticmethod
    def _memory_map(memory_map: MemoryMap) -> bytes:
        ram = memory_map.ram_size() or 0
        # Everything above RAM stays accessible: the MMU may map any effective address (CCSR etc.).
        regions = []
        if ram:
            regions.append(f'  <memory type="ram" start="0x0" length="{ram:#x}"/>\n')
        regions.append(f'  <memory type="ram" start="{ram:#x}" length="{(1 << 32) - ram:#x}"/>\n')
        return ('<?xml version="1.0"?>\n<!DOCTYPE memory-map PUBLIC'
                ' "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN"'
                ' "http://sourceware.org/gdb/gdb-memory-map.dtd">\n<memory-map>\n'
                + "".join(regions) + "</memory-map>\n").encode()

    # -- monitor ---------------------------------------------------------------------------------

    def _q_monitor(self, command: MonitorCommand) -> list[Reply]:
        if self.capabilities.monitor is None:
            return [EMPTY]
        text = self.monitor(command.text)
        replies: list[Reply] = [b"O" + text[i:i + _OUTPUT_CHUNK].encode().hex().encode()
                                for i in range(0, len(text), _OUTPUT_CHUNK)]
        replies.append(OK)
        return replies

    def monitor(self, command: str) -> str:
        """Run one `monitor` command and return its text output."""
        words = command.split()
        monitor = self.capabilities.monitor
        if words in ([], ["help"]):
            return ("monitor commands:\n"
                    "  help        this text\n"
                    "  reset       reset the guest to the boot state of its image\n"
                    + (monitor.monitor_help() if monitor is not None else ""))
        if words == ["reset"]:
            self.target.reset(keep_points=True)
            self.last_stop = StopEvent(signal=SIGTRAP)
            return "guest reset\n"
        output = monitor.monitor_command(words) if monitor is not None else None
        if output is None:
            return f"unknown monitor command {command!r}; try 'monitor help'\n"
        return output

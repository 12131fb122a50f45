"""The stub's I/O: the only module that touches gdb's connection and owns the event loop (trio).

:class:`GdbServer` listens on 127.0.0.1:PORT (port 0 picks a free one) and prints exactly one line
``listening on 127.0.0.1:PORT`` to stderr when ready; :meth:`GdbServer.serve` also takes other trio
listeners, and :meth:`GdbServer.serve_connection` any trio stream (the tests use memory streams). One
gdb at a time: a second connection is told why (an ``E.`` reply) and closed. The guest is halted at its
entry until gdb resumes it (like QEMU ``-S``). While the guest runs, the vCPU executes in slices sized to
take about :data:`SLICE_SECONDS`, and between slices the server looks for a Ctrl-C (0x03), which is
answered with ``T02``. In gdb's non-stop mode the server answers every packet between slices instead
(the threads run on), and sends each stop as a ``%Stop`` notification when the session has one. A
TCP connection is read and written through its socket directly (:class:`_SocketLink`); any other
stream through trio's stream interface (:class:`_StreamLink`).

Lifecycle choices: a dropped connection stops the guest (every thread, in non-stop mode too), drops
gdb's breakpoints and keeps the guest state for the next gdb. ``D`` removes gdb's points and lets the
guest run on (without a debugger, every thread resumed) until the next gdb connects, which halts it
(every thread stopped). ``k``/``vKill`` reset the guest to the boot state of its image and close the
connection; the server stays up for a new gdb. Under ``target extended-remote`` the session handles
kill, ``run`` (vRun) and restart itself and the connection stays open. A guest that powered off is
reset when the next gdb connects.

Imports: standard library, trio, and the sans-I/O modules of :mod:`gdbstub`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

import trio

from gdbstub.api import ThreadAction
from gdbstub.protocol.framing import BadChecksum, Framer, Interrupt, Oversize, Packet, frame_notification
from gdbstub.session import (
    PACKET_SIZE,
    Detach,
    Kill,
    Notification,
    Resume,
    Session,
    StartNoAck,
    log_internal_error,
)
from gdbstub.target import SIGTRAP, Target

log = logging.getLogger("gdbstub.server")

SLICE_SECONDS = 0.004
INITIAL_BUDGET = 5_000
MIN_BUDGET = 500
MAX_BUDGET = 200_000
_RECEIVE_SIZE = 65536
# How many reads a stream link takes ahead of the command loop (a socket link reads only when asked).
_READ_AHEAD_CHUNKS = 4
# While the guest is stopped the command loop waits for gdb with a plain poll() of at most this long,
# then yields to trio (which refuses a second gdb); gdb's next packet wakes the poll at once.
_IDLE_POLL_MS = 50
# After each reply the loop first spins on a zero-timeout poll for this long: gdb's next packet usually
# follows within a round trip, and a process that went to sleep in poll() pays the scheduler's wake-up.
# Each turn of the spin yields the CPU: when the other CPUs are busy the kernel queues the woken gdb on
# this one, where a plain spin would make gdb wait for the server to be preempted. Past it the loop
# sleeps in poll(), so an idle gdb costs no CPU. A process allowed on one CPU only does not spin at all:
# gdb needs the very CPU the spin would hold. (Measurements: benchmarks/RESULTS.md, "socket link".)
BUSY_POLL_SECONDS = float(os.environ.get("E500_BUSY_POLL_SECONDS", "0.002"))

_yield_cpu = getattr(os, "sched_yield", lambda: None)


def busy_poll_seconds() -> float:
    """How long to spin for gdb's next packet: :data:`BUSY_POLL_SECONDS`, 0 on a single allowed CPU."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return BUSY_POLL_SECONDS if cpus > 1 else 0.0

_DISCONNECTED = "disconnected"
_DETACHED = "detached"
_KILLED = "killed"
_INSN_LIMIT = "stopped: guest used up --max-insns"


class _SocketLink:
    """The connection's bytes on a real socket, read and written through its descriptor.

    The command loop reads the socket itself: no receiver task and no channel, so a packet costs no
    task switches (this link answers in about half the time of :class:`_StreamLink` on the same TCP
    connection; benchmarks/RESULTS.md). While the guest runs, a zero-timeout poll of the socket between
    slices tells whether gdb sent anything (Ctrl-C), so the idle path pays nothing for it.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._poller = select.poll()
        self._fd = stream.socket.fileno()
        self._poller.register(self._fd, select.POLLIN | select.POLLPRI)
        self._spin_seconds = busy_poll_seconds()

    async def send(self, data: bytes) -> None:
        """Write straight to the socket; only a reply the kernel cannot take at once goes via trio.

        Replies are small and the socket is almost always writable, so this skips trio's scheduling
        on the per-packet path.
        """
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            raise trio.BrokenResourceError from None
        if written < len(data):
            await self.stream.send_all(data[written:])

    async def wait_and_receive(self) -> bytes:
        """The next bytes from gdb (b"" once the connection is closed or broken), waiting with poll().

        Between polls trio gets a checkpoint, so other tasks still run within ``_IDLE_POLL_MS``.
        """
        poll = self._poller.poll
        if not poll(0):
            deadline = time.perf_counter() + self._spin_seconds
            while time.perf_counter() < deadline:
                # When gdb was woken on this CPU (the kernel's choice when the other CPUs are busy),
                # yielding lets it run now instead of after this loop's time slice.
                _yield_cpu()
                if poll(0):
                    break
            else:
                while not poll(_IDLE_POLL_MS):
                    await trio.sleep(0)
        try:
            return os.read(self._fd, _RECEIVE_SIZE)
        except BlockingIOError:
            return await self.receive()
        except OSError:
            return b""

    async def receive(self) -> bytes:
        """The next bytes from gdb; b"" once the connection is closed or broken."""
        try:
            return await self.stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    def readable(self) -> bool:
        """True if gdb sent something (or closed the connection) that :meth:`receive` will return now."""
        return bool(self._poller.poll(0))


class _StreamLink:
    """The connection's bytes on any trio stream (a memory stream in tests, TLS, a pipe...).

    A receiver task moves what arrives into a small channel (its size bounds what is read ahead), so
    that between slices of a running guest the command loop can see without waiting whether gdb sent
    anything.
    """

    def __init__(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        self.stream = stream
        sender, self._received = trio.open_memory_channel[bytes](_READ_AHEAD_CHUNKS)
        self._peeked: bytes | None = None
        nursery.start_soon(self._receive_into, sender)

    async def _receive_into(self, sender: trio.MemorySendChannel[bytes]) -> None:
        async with sender:
            while True:
                try:
                    data = await self.stream.receive_some(_RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not data:
                    return
                await sender.send(bytes(data))

    async def send(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except trio.ClosedResourceError:
            raise trio.BrokenResourceError from None

    async def receive(self) -> bytes:
        """The next bytes from gdb; b"" once the connection is closed or broken."""
        if self._peeked is not None:
            data, self._peeked = self._peeked, None
            return data
        try:
            return await self._received.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return b""

    wait_and_receive = receive

    def readable(self) -> bool:
        """True if gdb sent something (or closed the connection) that :meth:`receive` will return now."""
        if self._peeked is None:
            try:
                self._peeked = self._received.receive_nowait()
            except trio.WouldBlock:
                return False
            except (trio.EndOfChannel, trio.ClosedResourceError):
                self._peeked = b""
        return True


class _Connection:
    """One gdb connection: its link (the bytes), framer and session, and packets received but not
    answered."""

    def __init__(self, link: _SocketLink | _StreamLink, target: Target, *, range_stepping: bool = True,
                 packet_log: PacketLog | None = None) -> None:
        self.link = link
        self.packet_log = packet_log
        self.framer = Framer(max_packet=PACKET_SIZE + 64, rle=True)
        self.session = Session(target, range_stepping=range_stepping)
        # Received and not yet acted on, in order: packets, and Ctrl-Cs that may follow a resume packet
        # in the same read (they stop the run that packet starts).
        self.pending: list[Packet | Interrupt] = []
        self.wait_and_receive = link.wait_and_receive
        self.receive = link.receive
        self.readable = link.readable

    async def reply(self, payload: bytes) -> None:
        """Frame and send one reply packet (and log it when a packet log is kept)."""
        if self.packet_log is not None:
            self.packet_log.write("stub", payload)
        await self.send(self.framer.encode(payload))

    async def notify(self, notification: Notification) -> None:
        """Frame and send one notification (``%...#xx``, which gdb does not acknowledge)."""
        if self.packet_log is not None:
            self.packet_log.write("stub", b"%" + notification.payload)
        await self.send(frame_notification(notification.payload))

    async def send(self, data: bytes) -> None:
        if data:
            await self.link.send(data)


class Watched(Protocol):
    """Input the server waits for beside gdb (this module owns the event loop; the sources stay plain
    objects): :meth:`watched_fd` is what to wait on now (None: nothing more will come), and
    :meth:`on_readable` takes what is there without blocking. A source whose descriptor may change
    outside :meth:`on_readable` (closed, or replaced by another) gets a ``before_switch`` attribute set
    to a callable it must call with the old one first: the event loop forgets it (before its number
    is reused) and the waiter asks :meth:`watched_fd` again."""

    def watched_fd(self) -> int | socket.socket | None: ...

    def on_readable(self) -> None: ...


async def _watch(source: Watched) -> None:
    if hasattr(source, "before_switch"):
        source.before_switch = trio.lowlevel.notify_closing
    while True:
        fd = source.watched_fd()
        if fd is None:
            return
        try:
            await trio.lowlevel.wait_readable(fd)
        except trio.ClosedResourceError:
            continue        # the source switched it while we waited (a client came or went): ask again
        except OSError:
            return
        source.on_readable()


class GdbServer:
    """Serve one guest to one gdb at a time."""

    def __init__(self, vcpu: Any, model_name: str, *, host: str = "127.0.0.1", port: int = 0,
                 announce: TextIO | None = None,
                 watched: Sequence[Watched] = (),
                 range_stepping: bool = True, packet_log: PacketLog | None = None) -> None:
        """``watched``: descriptors served beside gdb once the server listens (the guest UART's input:
        stdin, a ``-serial`` socket); see :class:`Watched`.
        ``range_stepping``: offer gdb vCont's ``r`` action (see :class:`~gdbstub.session.Session`).
        ``packet_log``: where every packet in either direction is recorded (``--log-packets``)."""
        self.packet_log = packet_log
        self.target = Target(vcpu, model_name)
        self.range_stepping = range_stepping
        self.watched = list(watched)
        self.host = host
        self.port = port
        self.announce = announce if announce is not None else sys.stderr
        self.budget = INITIAL_BUDGET
        self._busy = False
        self._detached_scope: trio.CancelScope | None = None
        self._detached_done: trio.Event | None = None
        self._nursery: trio.Nursery | None = None

    def run(self) -> None:
        """Serve until the process is interrupted (or ``--max-insns`` ends it): the event loop."""
        trio.run(self.serve)

    async def serve(self, listeners: Sequence[trio.abc.Listener[Any]] | None = None, *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve gdbs connecting to ``listeners``; by default a TCP listener on ``host:port``, announced
        on one line and reported to ``task_status`` as its port (None for listeners given)."""
        port: int | None = None
        if listeners is None:
            tcp_listeners = await trio.open_tcp_listeners(self.port, host=self.host)
            port = tcp_listeners[0].socket.getsockname()[1]
            print(f"listening on {self.host}:{port}", file=self.announce, flush=True)
            listeners = tcp_listeners
        serving: list[trio.abc.Listener[Any]] = list(listeners)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for source in self.watched:
                nursery.start_soon(_watch, source)
            task_status.started(port)
            await trio.serve_listeners(self.serve_connection, serving, handler_nursery=nursery)

    @property
    def attached(self) -> bool:
        """A gdb is being served (a new connection now would be refused)."""
        return self._busy

    async def serve_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one gdb on ``stream`` until it goes (what the listener does with each connection; a
        test or an embedding program may hand it any trio stream). A second one while a gdb is served
        is refused."""
        peer = _peer_name(stream)
        if self._busy:
            log.warning("refusing connection from %s: a gdb is already attached", peer)
            await _refuse(stream)
            return
        self._busy = True
        log.info("gdb connected from %s", peer)
        try:
            await self._stop_detached_guest()
            self.target.stop_threads(self.target.thread_ids())   # a new gdb finds every thread stopped
            if self.target.exited is not None:
                self.target.reset()
            outcome = await self._serve_connection(stream)
            log.info("gdb %s (%s)", outcome, peer)
            if outcome == _KILLED:
                self.target.reset()
            elif outcome == _DETACHED and self._nursery is not None:
                self._nursery.start_soon(self._run_detached)
            elif outcome == _INSN_LIMIT and self._nursery is not None:
                self._nursery.cancel_scope.cancel()    # serve() returns; the CLI reports the limit
            else:
                self.target.remove_all_points()
        except Exception:
            # One connection's failure must not take the server (and the guest) down with it.
            log_internal_error(f"serving gdb at {peer}")
        finally:
            self._busy = False
            with trio.move_on_after(1):
                await stream.aclose()

    async def _serve_connection(self, stream: trio.abc.Stream) -> str:
        outcome = _DISCONNECTED
        async with trio.open_nursery() as nursery:
            link: _SocketLink | _StreamLink
            if isinstance(stream, trio.SocketStream):
                link = _SocketLink(stream)
            else:
                link = _StreamLink(stream, nursery)     # its receiver task lives in this nursery
            connection = _Connection(link, self.target, range_stepping=self.range_stepping,
                                     packet_log=self.packet_log)
            try:
                outcome = await self._command_loop(connection)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                if connection.session.running:
                    connection.session.interrupt()    # non-stop: threads may run when gdb goes
                connection.session.close()
                nursery.cancel_scope.cancel()
        return outcome

    async def _command_loop(self, connection: _Connection) -> str:
        session = connection.session
        while True:
            while connection.pending:
                item = connection.pending.pop(0)
                if isinstance(item, Interrupt):
                    if session.non_stop:
                        await self._interrupt_non_stop(connection)
                    continue        # Ctrl-C with the guest stopped: gdb expects nothing
                outcome = await self._answer(connection, item)
                if outcome is not None:
                    return outcome
            if session.non_stop and session.running:
                outcome = await self._run_non_stop_slice(connection)
                if outcome is not None:
                    return outcome
                continue
            data = await connection.wait_and_receive()
            if not data:
                return _DISCONNECTED
            await self._take_input(connection, data)

    async def _take_input(self, connection: _Connection, data: bytes) -> None:
        """Feed what gdb sent to the framer: packets (and Ctrl-Cs that follow one, or any Ctrl-C in
        non-stop mode) join ``connection.pending``."""
        events = connection.framer.feed(data)
        await connection.send(connection.framer.take_outgoing())
        for event in events:
            if isinstance(event, Packet):
                if connection.packet_log is not None:
                    connection.packet_log.write("gdb", event.payload)
                connection.pending.append(event)
            elif isinstance(event, Interrupt):
                if connection.packet_log is not None:
                    connection.packet_log.write("gdb", None)
                if connection.pending or connection.session.non_stop:
                    connection.pending.append(event)
            elif isinstance(event, Oversize):
                log.warning("dropped a %d-byte packet: longer than PacketSize", event.length)
                await connection.reply(b"E22")
            elif isinstance(event, BadChecksum):
                log.debug("bad checksum on %r", event.raw[:64])

    async def _run_non_stop_slice(self, connection: _Connection) -> str | None:
        """Non-stop: one slice of the running threads, the stop notification it may owe gdb, then
        whatever gdb sent meanwhile (answered at the top of the command loop, between slices)."""
        session = connection.session
        started = time.perf_counter()
        session.run_non_stop_slice(self.budget)
        self._tune_budget(time.perf_counter() - started)
        notification = session.take_notification()
        if notification is not None:
            await connection.notify(notification)
        if self.target.insn_limit_reached:
            return _INSN_LIMIT
        await trio.sleep(0)
        while connection.readable():
            data = await connection.receive()
            if not data:
                return _DISCONNECTED
            await self._take_input(connection, data)
        return None

    async def _interrupt_non_stop(self, connection: _Connection) -> None:
        connection.session.interrupt()
        notification = connection.session.take_notification()
        if notification is not None:
            await connection.notify(notification)

    async def _answer(self, connection: _Connection, packet: Packet) -> str | None:
        framer = connection.framer
        for reply in connection.session.handle(packet.payload):
            if isinstance(reply, bytes):
                await connection.reply(reply)
            elif isinstance(reply, Notification):
                await connection.notify(reply)
            elif isinstance(reply, StartNoAck):
                framer.no_ack = True
            elif isinstance(reply, Resume):
                outcome = await self._run_guest(connection, reply)
                if outcome is not None:
                    return outcome
            elif isinstance(reply, Detach):
                return _DETACHED
            elif isinstance(reply, Kill):
                return _KILLED
        return None

    async def _run_guest(self, connection: _Connection, action: Resume) -> str | None:
        session = connection.session
        refused = session.begin_resume(action)
        if refused is not None:
            await connection.reply(refused)
            return None
        if connection.pending and isinstance(connection.pending[0], Interrupt):
            # The Ctrl-C came in the same read as the resume packet: stop before running.
            connection.pending.pop(0)
            await connection.reply(session.interrupt() or b"")
            return None
        while True:
            started = time.perf_counter()
            reply = session.run_slice(self.budget)
            elapsed = time.perf_counter() - started
            if reply is not None:
                await connection.reply(reply)
                return _INSN_LIMIT if self.target.insn_limit_reached else None
            self._tune_budget(elapsed)
            # Let other tasks run (a second gdb gets refused), then look for Ctrl-C or a hang-up.
            await trio.sleep(0)
            while connection.readable():
                data = await connection.receive()
                if not data:
                    session.interrupt()
                    return _DISCONNECTED
                events = connection.framer.feed(data)
                await connection.send(connection.framer.take_outgoing())
                for event in events:
                    if connection.packet_log is not None and isinstance(event, Interrupt | Packet):
                        received = event.payload if isinstance(event, Packet) else None
                        connection.packet_log.write("gdb", received)
                    if isinstance(event, Interrupt) and session.running:
                        stop = session.interrupt()
                        if stop is not None:
                            await connection.reply(stop)
                    elif isinstance(event, Packet):
                        # All-stop gdb sends nothing but Ctrl-C while running; keep anything else.
                        connection.pending.append(event)
            if not session.running:
                return None

    def _tune_budget(self, elapsed: float) -> None:
        if elapsed <= 0:
            self.budget = min(MAX_BUDGET, self.budget * 2)
            return
        wanted = int(self.budget * SLICE_SECONDS / elapsed)
        self.budget = max(MIN_BUDGET, min(MAX_BUDGET, (self.budget + wanted) // 2))

    async def _run_detached(self) -> None:
        """Let the guest run on after ``D`` until it powers off or the next gdb connects."""
        done = trio.Event()
        self._detached_done = done
        with trio.CancelScope() as scope:
            self._detached_scope = scope
            try:
                self.target.resume_threads({tid: ThreadAction() for tid in self.target.thread_ids()})
                while self.target.exited is None and not self.target.insn_limit_reached:
                    stop = self.target.run_slice(self.budget)
                    if stop is not None and stop.exit_status is None and stop.signal != SIGTRAP \
                            and not self.target.insn_limit_reached:
                        log.warning("guest stopped while detached (signal %d); waiting for gdb", stop.signal)
                        return
                    await trio.sleep(0)
                if self.target.exited is None and self._nursery is not None:
                    self._nursery.cancel_scope.cancel()    # --max-insns used up: the CLI reports it
                    return
                log.info("guest powered off with status %d while detached", self.target.exited)
            except Exception:
                log_internal_error("running the detached guest")
            finally:
                self._detached_scope = None
                done.set()

    async def _stop_detached_guest(self) -> None:
        if self._detached_scope is not None and self._detached_done is not None:
            self._detached_scope.cancel()
            await self._detached_done.wait()


# What a second gdb is told: gdb prints an "E." reply's text ("Remote failure reply: E.<text>").
REFUSAL = b"E.e500-gdbstub: another gdb is already attached to this guest (one at a time); detach it first"
_REFUSAL_SECONDS = 2.0


async def _refuse(stream: trio.abc.Stream) -> None:
    """Answer a second gdb's first packet with :data:`REFUSAL`, then hang up (gdb needs a reply to
    show anything; a bare hang-up only says "Connection reset by peer")."""
    framer = Framer(max_packet=PACKET_SIZE + 64)
    with trio.move_on_after(_REFUSAL_SECONDS):
        try:
            while True:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                events = framer.feed(bytes(data))
                outgoing = framer.take_outgoing()
                if any(isinstance(event, Packet) for event in events):
                    await stream.send_all(outgoing + framer.encode(REFUSAL))
                    break
                await stream.send_all(outgoing)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    with trio.move_on_after(1):
        await stream.aclose()


class PacketLog:
    """``--log-packets FILE``: one JSON object per line for every packet in either direction,
    ``{"time": <seconds since the epoch>, "from": "gdb"|"stub", "packet": <payload>}`` (a Ctrl-C from
    gdb is ``"interrupt": true`` instead of a packet). Payload bytes outside printable ASCII are
    written as backslash escapes. Line-buffered, so the log is whole up to the moment anything goes
    wrong."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, origin: str, payload: bytes | None) -> None:
        record: dict[str, object] = {"time": round(time.time(), 6), "from": origin}
        if payload is None:
            record["interrupt"] = True
        else:
            record["packet"] = payload.decode("ascii", "backslashreplace")
        # A full disk or a closed log must not stop the debugging session.
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(json.dumps(record) + "\n")


def _peer_name(stream: trio.abc.Stream) -> str:
    if not isinstance(stream, trio.SocketStream):
        return type(stream).__name__
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "unknown peer"

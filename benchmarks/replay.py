"""A zero-work RSP server that answers gdb from a ``set remotelogfile`` log: the floor for a gdb operation.

gdb's own work per packet (and the loopback round trip) is a cost no stub can remove. Replaying the
replies a real stub gave, with nothing computed, measures that floor: for each request payload in the log
the server sends back the reply logged for it (the last one if it was asked several times), and the empty
reply for anything else. It waits for gdb the way the stub does (a short busy poll that yields the CPU,
then poll(); no spin on a single allowed CPU), so the difference between the stub and this server is
the stub's own time. A replayed
``vCont`` always answers the same stop, so gdb keeps asking for the same state: right for stepi and
continue loops, whose requests repeat, not for anything that must make progress.

Used by benchmarks/stub.py. Imports: the standard library only.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

_FRAME = re.compile(rb"\$([^#$]*)#[0-9a-fA-F]{2}")
_BUSY_POLL_SECONDS = 0.002 if len(os.sched_getaffinity(0)) > 1 else 0.0   # as gdbstub/server.py


def _unescape_log_line(text: str) -> bytes:
    """Bytes of one remotelogfile line (gdb writes ``\\\\ \\n \\t \\xNN ...`` for what is not printable)."""
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def replies_from_log(log: Path) -> dict[bytes, bytes]:
    """Request payload -> framed reply, from the ``w``/``r`` lines of a remotelogfile."""
    replies: dict[bytes, bytes] = {}
    requests: list[bytes] = []
    for line in log.read_text(encoding="latin-1").splitlines():
        if line.startswith("w "):
            requests = [match.group(1) for match in _FRAME.finditer(_unescape_log_line(line[2:]))]
        elif line.startswith("r ") and requests:
            frames = [match.group(0) for match in _FRAME.finditer(_unescape_log_line(line[2:]))]
            if frames:
                for request, reply in zip(requests, frames, strict=False):
                    replies[request] = reply
                replies[requests[-1]] = frames[-1]
                requests = []
    return replies


class ReplayServer:
    """Serve one gdb connection on 127.0.0.1 from a table of replies (in a thread)."""

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._answer(connection)

    def _answer(self, connection: socket.socket) -> None:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        buffer = b""
        acks = True
        empty = b"$#00"
        while True:
            if not poller.poll(0):
                deadline = time.perf_counter() + _BUSY_POLL_SECONDS
                while not poller.poll(0):
                    os.sched_yield()
                    if time.perf_counter() >= deadline:
                        poller.poll(1000)
                        break
            try:
                data = connection.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            buffer += data
            out = []
            while True:
                match = _FRAME.search(buffer)
                if match is None:
                    break
                buffer = buffer[match.end():]
                request = match.group(1)
                reply = b"$OK#9a" if request == b"QStartNoAckMode" else self.replies.get(request, empty)
                out.append(b"+" + reply if acks else reply)
                if request == b"QStartNoAckMode":
                    acks = False
                if request.startswith((b"vKill", b"k")):
                    connection.sendall(b"".join(out))
                    return
            if out:
                connection.sendall(b"".join(out))

"""QEMU's ``-serial`` for the guest UART: where its output goes and where its input comes from.

``stdio`` (the default) is the CLI's own console (stdout, and stdin through ``cli.ConsoleInput``);
``null`` drops output and has no input; ``file:PATH`` writes output to PATH; ``tcp:[HOST]:PORT`` and
``unix:PATH`` connect to a listener, and with ``,server`` listen for one client at a time (another may
connect after it leaves), so a user can type into U-Boot or a Linux shell from ``nc`` or ``socat``
while gdb holds the stub. As on QEMU, a server waits for its first client before the guest starts
unless given ``,nowait`` (or ``wait=off``), and output with no client connected is dropped.

Imports: standard library only. When serving gdb, the server waits on a :class:`SocketSerial` for
input (``watched_fd``/``on_readable``, see ``gdbstub.server.Watched``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

_RECEIVE_SIZE = 4096
_SEND_TIMEOUT = 1.0     # a client that reads nothing for this long is disconnected, not waited for


@dataclass(frozen=True)
class SerialSpec:
    """A parsed ``-serial`` argument."""

    kind: str                      # "stdio" | "null" | "file" | "tcp" | "unix"
    path: str = ""                 # file and unix
    host: str = ""                 # tcp
    port: int = 0                  # tcp
    server: bool = False
    wait: bool = True
    text: str = ""                 # as given on the command line


def parse_serial(text: str) -> SerialSpec:
    """argparse type for ``-serial``: QEMU's spellings of the backends above."""
    return replace(_parse(text), text=text)


def _parse(text: str) -> SerialSpec:
    if text in ("stdio", "mon:stdio"):
        return SerialSpec("stdio")
    if text in ("null", "none"):
        return SerialSpec("null")
    if text.startswith("file:") and len(text) > 5:
        return SerialSpec("file", path=text[5:])
    kind, _, rest = text.partition(":")
    if kind not in ("tcp", "unix") or not rest:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected stdio, null, file:PATH, tcp:[HOST]:PORT[,server][,nowait] or "
            "unix:PATH[,server][,nowait]")
    address, *options = rest.split(",")
    server, wait = False, True
    for option in options:
        if option in ("server", "server=on"):
            server = True
        elif option in ("server=off",):
            server = False
        elif option in ("nowait", "wait=off"):
            wait = False
        elif option in ("wait", "wait=on"):
            wait = True
        else:
            raise argparse.ArgumentTypeError(
                f"{text!r}: unknown option {option!r} (server, nowait, wait=off)")
    if kind == "unix":
        return SerialSpec("unix", path=address, server=server, wait=wait)
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected tcp:[HOST]:PORT with PORT 0..65535")
    return SerialSpec("tcp", host=host or "127.0.0.1", port=int(port_text), server=server, wait=wait)


class FileSerial:
    """``file:PATH``: the guest's output, unbuffered; no input."""

    open = False

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._fd, data)

    def poll(self) -> bool:
        return False


class NullSerial:
    """``null``: output dropped, no input."""

    open = False

    def write(self, data: bytes) -> None:
        pass

    def poll(self) -> bool:
        return False


class SocketSerial:
    """A TCP or unix-domain socket as the UART: one client at a time, input fed to ``feed``."""

    def __init__(self, spec: SerialSpec, feed: Callable[[bytes], None] | None = None) -> None:
        self.spec = spec
        self.feed = feed
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        # Told before the socket to wait on changes (set by the server that waits; see server.Watched).
        self.before_switch: Callable[[socket.socket], None] | None = None
        family = socket.AF_UNIX if spec.kind == "unix" else socket.AF_INET
        address: str | tuple[str, int] = spec.path if spec.kind == "unix" else (spec.host, spec.port)
        if spec.server:
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                if family == socket.AF_INET:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                elif os.path.exists(spec.path):
                    os.unlink(spec.path)       # a stale socket file from an earlier run, as QEMU does
                listener.bind(address)
                listener.listen(1)
                listener.setblocking(False)
            except OSError:
                listener.close()
                raise
            self._listener = listener
            # Whether a client waits in the listen queue, asked without an exception per UART write.
            self._waiting_client = select.poll()
            self._waiting_client.register(listener, select.POLLIN)
        else:
            client = socket.socket(family, socket.SOCK_STREAM)
            try:
                client.connect(address)
            except OSError:
                client.close()
                raise
            self._adopt(client)

    @property
    def address(self) -> str:
        """Where it listens or connects, as ``-serial`` spells it (the port a 0 was given)."""
        if self.spec.kind == "unix":
            return f"unix:{self.spec.path}"
        sock = self._listener or self._client
        port = sock.getsockname()[1] if self._listener is not None and sock is not None else self.spec.port
        return f"tcp:{self.spec.host}:{port}"

    @property
    def open(self) -> bool:
        """Input may still come: a client is connected, or the listener waits for one."""
        return self._client is not None or self._listener is not None

    def wait_for_client(self) -> None:
        """Block until the first client connects (a server without ``nowait``)."""
        if self._listener is not None and self._client is None:
            self._listener.setblocking(True)
            try:
                client, _ = self._listener.accept()
            finally:
                self._listener.setblocking(False)
            self._adopt(client)

    def _adopt(self, client: socket.socket) -> None:
        client.setblocking(False)
        self._client = client

    def _drop_client(self) -> None:
        if self._client is not None:
            if self.before_switch is not None:
                self.before_switch(self._client)
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def _accept_waiting(self) -> None:
        if self._client is None and self._listener is not None and self._waiting_client.poll(0):
            try:
                client, _ = self._listener.accept()
            except OSError:          # none waiting (BlockingIOError) or a failed accept
                return
            if self.before_switch is not None:
                self.before_switch(self._listener)      # a waiter on the listener now waits on the client
            self._adopt(client)

    def write(self, data: bytes) -> None:
        # A client already in the listen queue gets the output even when the server loop has not
        # looked at the listener yet (the guest may print before the next look).
        self._accept_waiting()
        client = self._client
        if client is None:
            return      # nobody connected: dropped, as QEMU's socket backend does
        view = memoryview(data)
        deadline = time.monotonic() + _SEND_TIMEOUT
        while view:
            try:
                sent = client.send(view)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([], [client], [], remaining)[1]:
                    self._drop_client()     # a client that reads nothing is not waited for
                    return
                continue
            except OSError:
                self._drop_client()
                return
            view = view[sent:]

    def poll(self) -> bool:
        """Take a waiting client and whatever input is ready, without blocking; False once no more can
        come (a client-mode connection closed)."""
        self._accept_waiting()
        while self._client is not None:
            client = self._client
            try:
                data = client.recv(_RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self._drop_client()
                break
            if self.feed is not None:
                self.feed(data)
        return self.open

    def watched_fd(self) -> socket.socket | None:
        """What the server waits on: the client, else the listener for the next one."""
        return self._client or self._listener

    def on_readable(self) -> None:
        self.poll()

    def close(self) -> None:
        self._drop_client()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
            if self.spec.kind == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(self.spec.path)


# -- the terminal as the console (an explicit ``-serial stdio``) -------------------------------------------

ESCAPE_CHAR = 0x01      # Ctrl-A, QEMU's escape on its stdio console
_ESCAPE_HELP = ("\r\nC-a h    print this help\r\nC-a x    exit the emulator\r\n"
                "C-a C-a  send C-a to the guest\r\n")


class ConsoleQuit(Exception):
    """Ctrl-A x was typed on the terminal console: the user ends the emulator (QEMU's "Terminated")."""


class EscapeFilter:
    """Terminal bytes to the guest UART, minus QEMU's Ctrl-A commands: Ctrl-A x raises
    :class:`ConsoleQuit`, Ctrl-A h prints the commands, Ctrl-A Ctrl-A sends one Ctrl-A."""

    def __init__(self, feed: Callable[[bytes], None], show: Callable[[str], None]) -> None:
        self.feed = feed
        self.show = show
        self._escaped = False

    def __call__(self, data: bytes) -> None:
        out = bytearray()
        for byte in data:
            if self._escaped:
                self._escaped = False
                if byte in (ord("x"), ord("X")):
                    if out:
                        self.feed(bytes(out))
                    raise ConsoleQuit
                if byte == ESCAPE_CHAR:
                    out.append(ESCAPE_CHAR)
                elif byte in (ord("h"), ord("H"), ord("?")):
                    self.show(_ESCAPE_HELP)
            elif byte == ESCAPE_CHAR:
                self._escaped = True
            else:
                out.append(byte)
        if out:
            self.feed(bytes(out))


class RawTerminal:
    """The terminal on ``fd`` in the mode QEMU gives its stdio console, restored on exit: keys reach
    the guest one by one and unechoed (Ctrl-C too: Ctrl-A x quits), output keeps its line endings.
    Does nothing when ``fd`` is not a terminal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None

    def __enter__(self) -> RawTerminal:
        import termios

        try:
            if not os.isatty(self.fd):
                return self
            saved = termios.tcgetattr(self.fd)
        except (OSError, termios.error):
            return self
        attrs = list(saved)
        attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                      | termios.IGNCR | termios.ICRNL | termios.IXON)
        attrs[1] |= termios.OPOST
        attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN | termios.ISIG)
        attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        attrs[6] = list(attrs[6])
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
            self._saved = saved
        return self

    def __exit__(self, *exc_info: object) -> None:
        import termios

        if self._saved is not None:
            with contextlib.suppress(OSError, termios.error):
                termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
            self._saved = None

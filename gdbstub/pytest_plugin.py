"""pytest plugin for users' CI smoke tests: the ``e500`` fixture starts a guest under the stub, waits
for UART text, drives gdb-multiarch against it and checks its exit status.

Installed with the package (``pytest11`` entry point ``e500``), so ``pip install e500-gdbstub`` is all a
user needs besides gdb-multiarch. See docs/pytest-plugin.md for the guide; in short::

    def test_firmware(e500):
        guest = e500("build/fw.elf", cpu="e500v2", max_insns=50_000_000)
        out = guest.gdb("break main", "continue", "print counter")
        assert "$1 = 0" in out
        assert guest.run_to_exit() == 0
        guest.wait_uart(r"counter=200")

Everything goes through what users run themselves: the stub is a subprocess started with the public
command line (``python -m gdbstub IMAGE --port 0 ...``, or ``--run``), gdb is the real gdb-multiarch in
batch mode, and resuming without gdb (:meth:`Guest.resume`, :meth:`Guest.run_to_exit`) speaks the GDB
remote protocol on the stub's port. No module of the stub or the emulator is imported, so each test
runs in its own process and tests run in parallel (pytest-xdist) without sharing anything: every stub
listens on a port the kernel picked (``--port 0``).

This is the only module of the package that imports pytest; nothing else in :mod:`gdbstub` imports it
(or this module), so the stub never needs pytest. Imports: standard library and pytest.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

__all__ = ["E500Error", "E500Factory", "E500InsnLimit", "E500Timeout", "GdbOutput", "Guest"]

DEFAULT_GDB = "gdb-multiarch"
DEFAULT_TIMEOUT = 60.0
# The stub's documented command-line contract (README "Command line").
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
INSN_LIMIT_EXIT_STATUS = 124
INSN_LIMIT_LINE = re.compile(r"^e500-gdbstub: instruction limit reached: .*$", re.MULTILINE)
# Exit statuses of the stub's own errors (bad image, bad flag), as opposed to a guest's status.
_STUB_ERROR_STATUSES = (1, 2)
# gdb prints a power-off as an exit; the code is in octal ("exited with code 03").
_GDB_EXITED = re.compile(r"\[Inferior \d+ \(.*?\) exited (?:normally|with code ([0-7]+))\]")
_GDB_DETACHED = re.compile(r"\[Inferior \d+ \(.*?\) detached\]")
_GDB_INSN_LIMIT = "Program terminated with signal SIGXCPU"
# What the closing `disconnect` says when the commands already ended the connection (the guest powered
# off, `kill`, `detach`): the plugin's own line, not the user's, so it is left out of the output.
_GDB_NOT_CONNECTED = re.compile(r"(?:You can't do that when your target is `exec'"
                                r"|The program is not being run\.)\n?\Z")
_TAIL_CHARS = 3000
_LOG_CHARS = 20000
_STOP_GRACE = 5.0
_READ_SIZE = 65536
_GUESTS_KEY = pytest.StashKey[list["Guest"]]()


class E500Error(Exception):
    """Something went wrong with a guest or its stub; the message carries the relevant output."""


class E500Timeout(E500Error):
    """A wait ran out of (wall-clock) time; the message carries the UART tail and the stub log."""


class E500InsnLimit(E500Error):
    """The guest used up its instruction budget (``max_insns`` / ``--max-insns``) without powering off."""


class GdbOutput(str):
    """What one gdb run printed (stdout and stderr, in order); ``command`` is its command line.

    gdb in batch mode keeps going after a failing command, so one output can show several outcomes.
    (gdb's exit status would only tell about the plugin's closing ``disconnect``, so it is not kept.)
    """

    command: list[str]

    def __new__(cls, text: str, command: list[str]) -> GdbOutput:
        self = super().__new__(cls, text)
        self.command = command
        return self


def _tail(text: str, chars: int = _TAIL_CHARS) -> str:
    return text if len(text) <= chars else "[...]" + text[-chars:]


class _Pipe:
    """A child's output pipe, read by a daemon thread into a buffer guarded by the guest's lock.

    :meth:`drain` (called with the lock held) takes whatever the pipe holds right now, so a reader that
    knows the stub has written something (gdb saw the stop that followed it) sees it without a race.
    """

    def __init__(self, stream: IO[bytes], cond: threading.Condition,
                 on_data: Callable[[bytes], None], name: str) -> None:
        self.fd = stream.fileno()
        self._stream = stream
        os.set_blocking(self.fd, False)
        self.cond = cond
        self.on_data = on_data
        self.eof = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _read_some(self) -> bool:
        """One non-blocking read (lock held); False once nothing more is ready now."""
        if self.eof:
            return False
        try:
            data = os.read(self.fd, _READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.eof = True
            self.on_data(b"")
        else:
            self.on_data(data)
        self.cond.notify_all()
        return bool(data)

    def drain(self) -> None:
        while self._read_some():
            pass

    def _run(self) -> None:
        while not self.eof:
            try:
                select.select([self.fd], [], [], 0.5)
            except (OSError, ValueError):
                with self.cond:
                    self.eof = True
                    self.cond.notify_all()
                return
            with self.cond:
                self.drain()

    def close(self) -> None:
        self.thread.join(timeout=_STOP_GRACE)
        with contextlib.suppress(OSError):
            self._stream.close()


class _Control:
    """A GDB remote-protocol connection of the plugin's own: ``?``, ``c`` and Ctrl-C, nothing more.

    A daemon thread acknowledges and collects the stub's replies (only their first characters matter:
    ``T``/``S`` stopped, ``W`` powered off, ``X`` terminated by the instruction limit).
    """

    def __init__(self, port: int, cond: threading.Condition, timeout: float) -> None:
        self.cond = cond
        self.replies: list[str] = []
        self.eof = False
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(None)
        self._buffer = b""
        self.thread = threading.Thread(target=self._run, name=f"e500-rsp-{port}", daemon=True)
        self.thread.start()

    def send_packet(self, payload: str) -> None:
        data = payload.encode("ascii")
        self.sock.sendall(b"$%s#%02x" % (data, sum(data) & 0xFF))

    def send_interrupt(self) -> None:
        self.sock.sendall(b"\x03")

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(_READ_SIZE)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self._buffer += data
                self._parse()
                self.cond.notify_all()

    def _parse(self) -> None:
        while True:
            start = self._buffer.find(b"$")
            end = self._buffer.find(b"#", start + 1) if start >= 0 else -1
            if end < 0 or len(self._buffer) < end + 3:
                return
            self.replies.append(self._buffer[start + 1:end].decode("ascii", "replace"))
            self._buffer = self._buffer[end + 3:]
            with contextlib.suppress(OSError):
                self.sock.sendall(b"+")

    def close(self, deadline: float) -> None:
        """Hang up and wait (until ``deadline``) for the stub to close its end: by then it is ready
        for the next connection (it serves one gdb at a time and refuses a second)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the reader if the stub never hung up
        self.sock.close()


class Guest:
    """One guest image under its own stub process. Made by the ``e500`` fixture; see the module doc.

    In the default (gdb) mode the guest waits at its entry point, as the stub does, until something
    resumes it: :meth:`gdb` (whatever the gdb commands do), :meth:`resume` or :meth:`run_to_exit`.
    Between :meth:`gdb` calls it stays where gdb left it, so a test is deterministic. With
    ``run=True`` the stub runs it at once without a debugger (``e500-gdbstub --run``).
    """

    def __init__(self, image: Path, *, cpu: str, ram: int, run: bool, max_insns: int | None,
                 args: Sequence[str], uart_input: str | bytes | None, gdb_path: str,
                 timeout: float, packet_log: Path | None, number: int) -> None:
        self.image = image
        self.cpu = cpu
        self.run_mode = run
        self.max_insns = max_insns
        self.timeout = timeout
        self.number = number
        self.packet_log = packet_log
        self._gdb_path = gdb_path
        self.command = [sys.executable, "-m", "gdbstub", str(image), "--cpu", cpu, "--ram", str(ram)]
        if run:
            self.command.append("--run")
        else:
            self.command += ["--port", "0"]
        if max_insns is not None:
            self.command += ["--max-insns", str(max_insns)]
        if packet_log is not None:
            self.command += ["--log-packets", str(packet_log)]
        self.command += list(args)
        self.port: int | None = None
        self._cond = threading.Condition()
        self._uart = bytearray()
        self._uart_text: list[str] = []
        self._uart_pos = 0
        self._held_cr = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._log = bytearray()
        self._control: _Control | None = None
        self._replies_seen = 0
        self._resumed = False          # a `c` of ours is outstanding on the control connection
        self._detached = False         # gdb's `detach` let it run on; the plugin no longer sees its end
        self._exit_status: int | None = None
        self._insn_limit = False
        self.notes: list[str] = []
        self._gdb_runs: list[str] = []
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._stdout = _Pipe(self.process.stdout, self._cond, self._on_uart, f"e500-uart-{number}")
        self._stderr = _Pipe(self.process.stderr, self._cond, self._on_log, f"e500-log-{number}")
        if uart_input is not None:
            self.send_uart(uart_input)

    def __repr__(self) -> str:
        where = "--run" if self.run_mode else f"port {self.port}"
        return f"<Guest {self.number}: {self.image.name} ({self.cpu}, {where}, stub pid {self.process.pid})>"

    # -- output ----------------------------------------------------------------------------------

    def _on_uart(self, data: bytes) -> None:
        self._uart += data
        text = self._decoder.decode(data, final=not data)
        if self._held_cr:
            text = "\r" + text
        # "\r\n" -> "\n" (the guests' UART convention); a "\r" at the end waits for what follows, so
        # the text only ever grows and wait_uart's position stays valid.
        self._held_cr = bool(data) and text.endswith("\r")
        if self._held_cr:
            text = text[:-1]
        text = text.replace("\r\n", "\n")
        self._uart_text.append(text)

    def _on_log(self, data: bytes) -> None:
        self._log += data

    def _sync(self) -> None:
        """Take what the stub has written so far (lock held)."""
        self._stdout.drain()
        self._stderr.drain()

    def _text(self) -> str:
        if len(self._uart_text) > 1:
            self._uart_text[:] = ["".join(self._uart_text)]
        return self._uart_text[0] if self._uart_text else ""

    @property
    def uart(self) -> str:
        """Everything the guest printed so far (UTF-8, "\\r\\n" as "\\n")."""
        with self._cond:
            self._sync()
            return self._text()

    @property
    def uart_bytes(self) -> bytes:
        """The raw UART bytes so far."""
        with self._cond:
            self._sync()
            return bytes(self._uart)

    @property
    def log(self) -> str:
        """The stub's stderr so far (its ``listening on`` line, connections, errors)."""
        with self._cond:
            self._sync()
            return self._log.decode("utf-8", "replace")

    # -- state -----------------------------------------------------------------------------------

    @property
    def exit_status(self) -> int | None:
        """The guest's power-off status once it has powered off in this run, else None."""
        with self._cond:
            self._update_locked()
            return self._exit_status

    @property
    def insn_limit_reached(self) -> bool:
        with self._cond:
            self._update_locked()
            return self._insn_limit

    def _update_locked(self) -> None:
        """Fold in what the stub reported: replies on the control connection, its exit (lock held)."""
        self._sync()
        control = self._control
        if control is not None:
            for reply in control.replies[self._replies_seen:]:
                self._replies_seen += 1
                self._resumed = False
                if reply[:1] == "W":
                    self._exit_status = int(reply[1:3], 16)
                elif reply[:1] == "X":
                    self._insn_limit = True
        returncode = self.process.poll()
        if returncode is None:
            return
        self._stdout.drain()
        self._stderr.drain()
        if INSN_LIMIT_LINE.search(self._log.decode("utf-8", "replace")):
            self._insn_limit = True
        elif self.run_mode and self._exit_status is None and not self._is_stub_error(returncode):
            self._exit_status = returncode

    def _is_stub_error(self, returncode: int) -> bool:
        # A bad image or flag ends the stub before the guest runs: a status of 1 or 2, no UART
        # output, and the reason on stderr (a guest never writes to stderr).
        return returncode < 0 or (returncode in _STUB_ERROR_STATUSES and not self._uart and bool(self._log))

    def _running_locked(self) -> bool:
        if self.process.poll() is not None:
            return False
        if self.run_mode or self._detached:
            return True
        control = self._control
        return control is not None and not control.eof and self._resumed

    def _describe_end(self) -> str | None:
        """Why no more UART output can come, or None while it can (lock held)."""
        self._update_locked()
        if self._insn_limit:
            return f"the guest used up its instruction limit (--max-insns {self.max_insns})"
        if self._exit_status is not None:
            return f"the guest powered off with status {self._exit_status}"
        if self.process.poll() is not None:
            return f"the stub exited with status {self.process.returncode}"
        if not self._running_locked():
            return ("the guest is stopped (at its entry until resumed, or where the last .gdb() left it); "
                    "call .resume() or .run_to_exit() to let it run")
        return None

    def describe(self) -> str:
        """Everything useful after a failure: command, state, stub log, gdb runs and the UART tail."""
        with self._cond:
            self._update_locked()
            state = self._describe_end() or "running"
            parts = [f"command: {' '.join(self.command)}", f"port: {self.port}", f"state: {state}",
                     "--- stub log (stderr) ---", _tail(self._log.decode("utf-8", "replace"), _LOG_CHARS)]
            for run in self._gdb_runs[-5:]:
                parts += ["--- gdb ---", _tail(run, _LOG_CHARS // 2)]
            parts += ["--- UART ---", _tail(self._text(), _LOG_CHARS)]
        if self.packet_log is not None:
            try:
                packets = self.packet_log.read_text("utf-8", "replace")
            except OSError as error:
                packets = f"(not readable: {error})"
            parts += [f"--- packet log {self.packet_log} ---", _tail(packets, _LOG_CHARS)]
        parts += self.notes
        return "\n".join(parts)

    def _failure(self, what: str, kind: type[E500Error] = E500Error) -> E500Error:
        with self._cond:
            self._sync()
            uart = _tail(self._text())
            log = _tail(self._log.decode("utf-8", "replace"))
        return kind(f"{what}\n--- UART tail ---\n{uart}\n--- stub log tail ---\n{log}")

    def _raise_if_insn_limit(self) -> None:
        with self._cond:
            self._update_locked()
            reached = self._insn_limit
        if reached:
            self._wait_process(_STOP_GRACE)
            with self._cond:
                self._update_locked()
                line = INSN_LIMIT_LINE.search(self._log.decode("utf-8", "replace"))
            raise self._failure(line.group(0) if line else
                                f"the guest used up --max-insns {self.max_insns} without powering off",
                                E500InsnLimit)

    # -- start -----------------------------------------------------------------------------------

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                self._sync()
                match = LISTENING.search(self._log.decode("utf-8", "replace"))
                if match:
                    self.port = int(match.group(1))
                    return
                if self.process.poll() is not None and self._stderr.eof:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        if self.process.poll() is None:
            raise self._failure("the stub did not print `listening on 127.0.0.1:PORT` within "
                                f"{self.timeout}s", E500Timeout)
        raise self._failure(f"the stub exited with status {self.process.returncode} before listening")

    # -- UART ------------------------------------------------------------------------------------

    def wait_uart(self, pattern: str | re.Pattern[str], timeout: float | None = None, *,
                  partial: bool = False) -> re.Match[str]:
        """Wait until the UART text after the previous match matches ``pattern`` (a regex, searched
        with re.MULTILINE, so ``^``/``$`` are line ends); return the match.

        Only complete lines are searched, so ``r"echo: (\\w+)"`` cannot match half a word that is still
        being printed; ``partial=True`` searches the unfinished last line too (for a prompt without a
        newline). Each match consumes the text up to its end, so successive calls follow the output.

        Raises :class:`E500Timeout` after ``timeout`` seconds (default: ``--e500-timeout``), and at once
        :class:`E500Error` when no more output can come (the guest powered off, the stub exited, or the
        guest is stopped waiting for gdb), each with the UART tail.
        """
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern   # compiled: as is
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                ended = self._describe_end()      # first: output that came before the end counts
                text = self._text()
                # The last line is complete once nothing more can come after it.
                end = len(text) if partial or ended is not None else text.rfind("\n") + 1
                match = regex.search(text, self._uart_pos, max(end, self._uart_pos))
                if match is not None:
                    self._uart_pos = match.end()
                    return match
                left = deadline - time.monotonic()
                if ended is not None or left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        if ended is not None:
            self._raise_if_insn_limit()
            raise self._failure(f"the UART will never show {regex.pattern!r}: {ended}")
        raise self._failure(f"the UART did not show {regex.pattern!r} within {timeout}s", E500Timeout)

    def send_uart(self, text: str | bytes) -> None:
        """Type ``text`` into the guest's UART receiver (the stub's stdin)."""
        data = text.encode() if isinstance(text, str) else text
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except OSError as error:
            raise self._failure(f"cannot send to the UART: the stub is gone ({error})") from None

    # -- running without gdb ---------------------------------------------------------------------

    def _require_server(self, what: str) -> int:
        if self.run_mode or self.port is None:
            raise E500Error(f"{what} needs the gdb server: this guest was started with run=True (--run)")
        if self.process.poll() is not None:
            self._raise_if_insn_limit()
            raise self._failure(f"{what}: the stub has exited with status {self.process.returncode}")
        return self.port

    def _open_control(self, deadline: float) -> _Control:
        """Connect and get an answer to ``?``. The stub refuses a connection while it still serves the
        previous one (a gdb that has just quit): it answers the first packet with an ``E.`` text and
        hangs up. A refusal is retried until ``deadline``."""
        port = self._require_server("connecting")
        while True:
            try:
                control = _Control(port, self._cond, max(0.1, deadline - time.monotonic()))
            except OSError as error:
                raise self._failure(f"cannot connect to the stub on port {port}: {error}") from None
            with contextlib.suppress(OSError):    # refused: the stub answers E.<why> and hangs up
                control.send_packet("?")
            with self._cond:
                while not control.replies and not control.eof and time.monotonic() < deadline:
                    self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                answered = bool(control.replies) and not control.replies[0].startswith("E.")
            if answered:
                with self._cond:
                    # The stub resets a powered-off guest when a debugger connects: a new run begins.
                    self._exit_status = None
                    self._detached = False
                    self._control = control
                    self._replies_seen = len(control.replies)
                return control
            control.close(deadline)
            if time.monotonic() >= deadline or self.process.poll() is not None:
                self._raise_if_insn_limit()
                raise self._failure(f"the stub on port {port} did not answer", E500Timeout)
            time.sleep(0.01)

    def _close_control(self, deadline: float) -> None:
        control = self._control
        if control is None:
            return
        control.close(deadline)
        with self._cond:
            self._update_locked()
            self._control = None
            self._replies_seen = 0
            self._resumed = False

    def resume(self) -> None:
        """Let the guest run (no gdb) from where it is; :meth:`wait_uart` and :meth:`run_to_exit` follow
        it. A later :meth:`gdb` stops it wherever it has got to (as gdb attaching to a running QEMU)."""
        if self.run_mode:
            return
        deadline = time.monotonic() + self.timeout
        with self._cond:
            if self._running_locked():
                return
        self._close_control(deadline)
        control = self._open_control(deadline)
        with self._cond:
            self._resumed = True
        try:
            control.send_packet("c")
        except OSError as error:
            raise self._failure(f"cannot resume the guest: the stub hung up ({error})") from None

    def interrupt(self, timeout: float | None = None) -> None:
        """Stop a guest that :meth:`resume` (or gdb's ``detach``) let run, as Ctrl-C in gdb; it stays
        where it stopped. Nothing to do with ``run=True``."""
        if self.run_mode:
            return
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if self._detached:
            self._open_control(deadline)      # a debugger connecting stops a detached guest
        control = self._control
        if control is None:
            return
        with self._cond:
            self._update_locked()
            running = self._running_locked()
        if running:
            control.send_interrupt()
            with self._cond:
                while self._resumed and not control.eof and time.monotonic() < deadline:
                    self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                    self._update_locked()
        self._close_control(deadline)

    def run_to_exit(self, timeout: float | None = None) -> int:
        """Run the guest (without gdb) until it powers off; return its exit status.

        Raises :class:`E500InsnLimit` if it uses up ``max_insns`` first and :class:`E500Timeout` after
        ``timeout`` seconds (default ``--e500-timeout``; the guest is then stopped).
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self.run_mode:
            with self._cond:
                self._update_locked()
                done = self._exit_status is not None or self._insn_limit
                detached = self._detached
            if not done:
                if detached:
                    # gdb's `detach` left it running without the plugin: stop it and take it over.
                    self._close_control(deadline)
                    self._detached = False
                    self.resume()
                else:
                    self.resume()
        with self._cond:
            while True:
                self._update_locked()
                if self._exit_status is not None or self._insn_limit:
                    break
                if self.process.poll() is not None and self._stdout.eof and self._stderr.eof:
                    break
                if not self.run_mode and (self._control is None or self._control.eof or not self._resumed):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            status = self._exit_status
            stopped = self._control.replies[-1] if self._control and self._control.replies else None
        self._raise_if_insn_limit()
        if status is not None:
            self._close_control(time.monotonic() + _STOP_GRACE)
            return status
        if time.monotonic() >= deadline and self.process.poll() is None:
            self.interrupt(_STOP_GRACE)
            raise self._failure(f"the guest did not power off within {timeout}s (a guest-instruction "
                                "limit, max_insns= or --e500-max-insns, fails a hung guest "
                                "deterministically)", E500Timeout)
        if self.process.poll() is not None:
            raise self._failure(f"the stub exited with status {self.process.returncode} before the guest "
                                "powered off")
        self._close_control(time.monotonic() + _STOP_GRACE)
        raise self._failure(f"the guest stopped without powering off (stop reply {stopped!r})")

    # -- gdb -------------------------------------------------------------------------------------

    def gdb(self, *commands: str, timeout: float | None = None) -> GdbOutput:
        """Run gdb-multiarch in batch mode against the guest, with the image's symbols: connect, run
        each command (``-ex``), then disconnect, which leaves the guest stopped where it is (gdb's own
        quit would detach and let it run on). Returns everything gdb printed.

        A guest that :meth:`resume` let run is stopped first. A guest that has powered off starts again
        from its boot state (the stub resets it when a debugger connects).
        """
        port = self._require_server(".gdb()")
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        gdb = shutil.which(self._gdb_path)
        if gdb is None:
            raise E500Error(f"gdb not found: {self._gdb_path!r} (install gdb-multiarch, e.g. `apt install "
                            "gdb-multiarch`, or name one with --e500-gdb PATH)")
        # Make sure the stub is free (the previous gdb or our own connection released) and the
        # guest is stopped, so gdb's connection is not refused.
        self._close_control(deadline)
        self._open_control(deadline)
        self._close_control(deadline)
        command = [gdb, "-batch", "-nx", "-ex", "set confirm off", "-ex", "set pagination off",
                   "-ex", "set width 0", "-ex", "set height 0", "-ex", f"target remote 127.0.0.1:{port}"]
        for line in commands:
            command += ["-ex", line]
        command += ["-ex", "disconnect", str(self.image)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            raw, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raw, _ = process.communicate()
            text = raw.decode("utf-8", "replace")
            self._gdb_runs.append(f"$ {_shell_line(command)}\n{text}\n[killed after {timeout}s]")
            raise self._failure(f"gdb did not finish within {timeout}s (a guest-instruction limit, "
                                "max_insns= or --e500-max-insns, ends a hung guest deterministically); "
                                "its output:\n"
                                f"{_tail(text)}", E500Timeout) from None
        text = raw.decode("utf-8", "replace")
        self._gdb_runs.append(f"$ {_shell_line(command)}\n{text}\n[exit {process.returncode}]")
        text = _GDB_NOT_CONNECTED.sub("", text)
        exits = list(_GDB_EXITED.finditer(text))
        exited = exits[-1] if exits else None
        with self._cond:
            if exited is not None:
                self._exit_status = int(exited.group(1), 8) if exited.group(1) else 0
            self._detached = _GDB_DETACHED.search(text) is not None
        if _GDB_INSN_LIMIT in text:
            with self._cond:
                self._insn_limit = True
            self._wait_process(_STOP_GRACE)
            self._raise_if_insn_limit()
        return GdbOutput(text, command)

    # -- teardown --------------------------------------------------------------------------------

    def _wait_process(self, seconds: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=seconds)

    def stop(self) -> None:
        """Stop the stub (the fixture does this at teardown); the output stays readable."""
        if self._control is not None:
            self._control.close(time.monotonic())
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=_STOP_GRACE)
        self._stdout.close()
        self._stderr.close()
        with self._cond:
            self._update_locked()


def _shell_line(command: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(part) for part in command)


class E500Factory:
    """The ``e500`` fixture's value: call it to start a guest (see :meth:`__call__`)."""

    Error = E500Error
    Timeout = E500Timeout
    InsnLimit = E500InsnLimit

    def __init__(self, config: pytest.Config, node: pytest.Item, tmp_dir: Path) -> None:
        self.config = config
        self.node = node
        self.tmp_dir = tmp_dir
        self.guests: list[Guest] = []
        self.gdb_path = str(_option(config, "e500_gdb") or DEFAULT_GDB)
        self.timeout = float(str(_option(config, "e500_timeout") or DEFAULT_TIMEOUT))
        limit = _option(config, "e500_max_insns")
        self.max_insns = int(str(limit)) if limit not in (None, "") else None
        self.log_packets = bool(_option(config, "e500_log_packets"))

    def __call__(self, image: str | os.PathLike[str], cpu: str = "e500v2", ram: int = 128, *,
                 run: bool = False, halted: bool = True, max_insns: int | None = None,
                 uart_input: str | bytes | None = None, log_packets: bool | None = None,
                 args: Sequence[str] = (), timeout: float | None = None) -> Guest:
        """Start ``e500-gdbstub IMAGE --cpu CPU --ram RAM`` and return its :class:`Guest`.

        ``run``: run at once without a debugger (``--run``; no port, no :meth:`Guest.gdb`).
        ``halted``: False resumes the guest at once (as QEMU without ``-S``); by default it waits at its
        entry point for :meth:`Guest.gdb`, :meth:`Guest.resume` or :meth:`Guest.run_to_exit`.
        ``max_insns``: the guest-instruction limit (``--max-insns``; default ``--e500-max-insns``, and 0
        for none even then).
        ``uart_input``: typed into the UART at start. ``log_packets``: pass ``--log-packets`` (default
        ``--e500-log-packets``); the log is attached to failure reports.
        ``args``: more stub options. ``timeout``: this guest's default wait (default ``--e500-timeout``).
        """
        path = self._resolve(image)
        packet_log = None
        if (self.log_packets if log_packets is None else log_packets) and not run:
            packet_log = self.tmp_dir / f"guest{len(self.guests) + 1}-packets.log"
        guest = Guest(path, cpu=cpu, ram=ram, run=run,
                      max_insns=self.max_insns if max_insns is None else max_insns or None, args=args,
                      uart_input=uart_input, gdb_path=self.gdb_path,
                      timeout=self.timeout if timeout is None else timeout, packet_log=packet_log,
                      number=len(self.guests) + 1)
        self.guests.append(guest)      # stopped at teardown and reported, even if it fails to start
        if not run:
            guest._wait_listening()
        if not halted and not run:
            guest.resume()
        return guest

    def _resolve(self, image: str | os.PathLike[str]) -> Path:
        path = Path(image)
        candidates = [path] if path.is_absolute() else [Path.cwd() / path, self.config.rootpath / path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise E500Error(f"guest image not found: {os.fspath(image)!r} (looked at "
                        f"{', '.join(str(c) for c in candidates)})")

    def stop_all(self) -> None:
        for guest in self.guests:
            guest.stop()


def _option(config: pytest.Config, name: str) -> object:
    """A command-line option, falling back to the ini value of the same name."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name)
    return value


# -- pytest hooks and the fixture -----------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("e500", "e500-gdbstub guests (the e500 fixture)")
    group.addoption("--e500-gdb", dest="e500_gdb", metavar="PATH", default=None,
                    help=f"gdb for guest.gdb() (default {DEFAULT_GDB}; ini: e500_gdb)")
    group.addoption("--e500-timeout", dest="e500_timeout", metavar="SECONDS", type=float, default=None,
                    help=f"default wall-clock limit of each wait (default {DEFAULT_TIMEOUT:g}; "
                         "ini: e500_timeout)")
    group.addoption("--e500-max-insns", dest="e500_max_insns", metavar="N", type=int, default=None,
                    help="default guest-instruction limit (--max-insns) of every guest (ini: e500_max_insns)")
    group.addoption("--e500-log-packets", dest="e500_log_packets", action="store_true", default=None,
                    help="run stubs with --log-packets and attach the packet log to failure reports")
    parser.addini("e500_gdb", "gdb for guest.gdb()", default="")
    parser.addini("e500_timeout", "default wall-clock limit of each wait, in seconds", default="")
    parser.addini("e500_max_insns", "default guest-instruction limit of every guest", default="")
    parser.addini("e500_log_packets", "run stubs with --log-packets", type="bool", default=False)


@pytest.fixture
def e500(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[E500Factory]:
    """Factory: ``guest = e500("fw.elf", cpu="e500v2", ram=128, **options)`` -> :class:`Guest`.

    Every guest runs in its own stub process on a free port and is stopped at teardown; a failing
    test's report carries each guest's stub log, gdb runs and UART output.
    """
    node = request.node
    assert isinstance(node, pytest.Item)
    factory = E500Factory(request.config, node, tmp_path)
    node.stash.setdefault(_GUESTS_KEY, [])
    factory.guests = node.stash[_GUESTS_KEY]
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for guest in item.stash.get(_GUESTS_KEY, []):
            report.sections.append((f"e500 guest {guest.number}: {guest.image.name} ({report.when})",
                                    guest.describe()))
    return report

"""``-serial``: the guest UART on a TCP or unix socket (typed into while gdb holds the stub), in a file,
or nowhere; QEMU's spellings and its wait-for-the-first-client rule; bad values in one line.
"""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import sys
import termios
import time
from pathlib import Path

import gdb_driver
import pytest
import trio

from gdbstub import server
from gdbstub.protocol.framing import frame
from gdbstub.serial_port import SocketSerial, parse_serial

ROOT = Path(__file__).resolve().parent.parent
ECHO = gdb_driver.guest_path("echo", "e500v2")
HELLO = gdb_driver.guest_path("hello", "e500v2")
TIMEOUT = 60


def _read_until(sock: socket.socket, pattern: bytes, deadline: float) -> bytes:
    data = b""
    while pattern not in data:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _stderr_line(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert process.stderr is not None
    seen = ""
    for _ in range(5):
        line = process.stderr.readline()
        seen += line
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no {pattern!r} on stderr: {seen!r}")


@pytest.mark.parametrize(("text", "kind", "server", "wait"), [
    ("stdio", "stdio", False, True), ("null", "null", False, True), ("file:/tmp/x", "file", False, True),
    ("tcp::4444,server,nowait", "tcp", True, False),
    ("tcp:127.0.0.1:0,server=on,wait=off", "tcp", True, False),
    ("tcp:localhost:4444", "tcp", False, True), ("unix:/tmp/s,server", "unix", True, True)])
def test_qemus_spellings(text: str, kind: str, server: bool, wait: bool) -> None:
    spec = parse_serial(text)
    assert (spec.kind, spec.server, spec.wait, spec.text) == (kind, server, wait, text)


@pytest.mark.parametrize("text", ["tcp:4444", "tcp::99999,server", "tcp::1,telnet", "pty", "file:", "udp::1"])
def test_bad_serial_is_one_usage_line(text: str) -> None:
    result = subprocess.run([sys.executable, "-m", "gdbstub", "-serial", text, str(HELLO), "--run"], cwd=ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "-serial" in result.stderr and "Traceback" not in result.stderr


def test_run_waits_for_its_serial_client_then_talks_through_it() -> None:
    command = [sys.executable, "-m", "gdbstub", "--run", "-serial", "tcp::0,server", str(ECHO)]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        port = int(_stderr_line(process, r"serial on tcp:127\.0\.0\.1:(\d+)").group(1))
        _stderr_line(process, r"waiting for a connection on tcp:127\.0\.0\.1:\d+")
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as uart:
            deadline = time.monotonic() + TIMEOUT
            assert b"echo: ready" in _read_until(uart, b"echo: ready", deadline)
            uart.sendall(b"hello there\n")
            assert b"echo: HELLO THERE" in _read_until(uart, b"HELLO THERE", deadline)
            uart.sendall(b"quit\n")
            assert process.wait(timeout=TIMEOUT) == 1          # one line echoed
        assert process.stdout is not None and process.stdout.read() == ""   # nothing went to stdout
    finally:
        process.kill()
        process.wait(timeout=10)


def test_type_into_the_guest_over_a_unix_socket_while_gdb_holds_the_stub(tmp_path: Path) -> None:
    path = tmp_path / "uart.sock"
    with gdb_driver.start_stub(ECHO, "e500v2", "-serial", f"unix:{path},server,nowait") as stub:
        with socket.socket(socket.AF_UNIX) as uart, \
                socket.create_connection(("127.0.0.1", stub.port), timeout=TIMEOUT) as rsp:
            uart.connect(str(path))
            rsp.sendall(b"+" + frame(b"c"))
            deadline = time.monotonic() + TIMEOUT
            assert b"echo: ready" in _read_until(uart, b"echo: ready", deadline)
            uart.sendall(b"abc\n")
            assert b"echo: ABC" in _read_until(uart, b"ABC", deadline)
            # A second client after the first leaves: the server keeps listening.
            uart.close()
            with socket.socket(socket.AF_UNIX) as again:
                again.connect(str(path))
                again.sendall(b"def\n")
                assert b"echo: DEF" in _read_until(again, b"DEF", deadline)
            rsp.sendall(b"\x03")
            assert b"T02" in _read_until(rsp, b"T02", deadline)
        assert stub.process.poll() is None
    assert "Traceback" not in stub.stderr


def test_file_and_null(tmp_path: Path) -> None:
    out = tmp_path / "uart.txt"
    result = subprocess.run([sys.executable, "-m", "gdbstub", "--run", "-serial", f"file:{out}", str(HELLO)],
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 3 and result.stdout == "" and "Hello from e500!" in out.read_text()
    result = subprocess.run([sys.executable, "-m", "gdbstub", "--run", "-serial", "null", str(HELLO)],
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 3 and result.stdout == "" and result.stderr == ""


def test_a_serial_nobody_listens_on_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]      # closed again: nothing listens there
    result = subprocess.run([sys.executable, "-m", "gdbstub", "--run", "-serial", f"tcp:127.0.0.1:{port}",
                             str(HELLO)], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                            check=False)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "-serial" in result.stderr and "refused" in result.stderr.lower()


def _read_master(master: int, pattern: bytes, deadline: float) -> bytes:
    data = b""
    while pattern not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data += os.read(master, 4096)
            except OSError:
                break
    return data


@pytest.mark.parametrize("mode", ["run", "gdb"])
def test_the_terminal_as_console_is_raw_and_ctrl_a_x_quits(mode: str) -> None:
    """An explicit -serial stdio is QEMU's terminal console: keys reach the guest unechoed and one by one
    (a carriage return ends the echo guest's line), also while serving gdb; Ctrl-A x ends the emulator
    and the terminal gets its settings back."""
    master, slave = pty.openpty()
    original = termios.tcgetattr(slave)
    extra = ["--run"] if mode == "run" else ["--port", "0"]
    process = subprocess.Popen([sys.executable, "-m", "gdbstub", *extra, "-serial", "stdio", str(ECHO)],
                               cwd=ROOT, stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True)
    rsp = None
    try:
        deadline = time.monotonic() + TIMEOUT
        if mode == "gdb":
            port = int(_stderr_line(process, r"listening on 127\.0\.0\.1:(\d+)").group(1))
            rsp = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            rsp.sendall(b"+" + frame(b"c"))
        assert b"echo: ready" in _read_master(master, b"echo: ready", deadline)
        os.write(master, b"hi\r")
        shown = _read_master(master, b"echo: HI", deadline)
        assert b"echo: HI" in shown and b"hi" not in shown      # no local echo: only the guest's output
        os.write(master, b"\x01x")
        assert process.wait(timeout=TIMEOUT) == 0
        assert process.stderr is not None and "terminated (Ctrl-A x)" in process.stderr.read()
        assert termios.tcgetattr(slave) == original
    finally:
        if rsp is not None:
            rsp.close()
        process.kill()
        process.wait(timeout=10)
        os.close(master)
        os.close(slave)


async def test_output_takes_a_queued_client_whose_input_then_reaches_the_guest(tmp_path: Path) -> None:
    # The guest may print before the server loop looks at the listener: the client waiting in the
    # listen queue gets that output, and the server's waiter moves from the listener to it.
    path = tmp_path / "uart.sock"
    fed: list[bytes] = []
    serial = SocketSerial(parse_serial(f"unix:{path},server,nowait"), fed.append)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._watch, serial)
            await trio.sleep(0.05)                       # the waiter now waits on the listener
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(path))
                serial.write(b"ready\n")                 # no checkpoint since the connect
                client.settimeout(TIMEOUT)
                assert client.recv(16) == b"ready\n"
                client.sendall(b"typed\n")
                with trio.fail_after(10):
                    while b"".join(fed) != b"typed\n":
                        await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    finally:
        serial.close()

"""Helpers for the end-to-end tests: start the stub (or, for comparison, QEMU's gdbstub) on an example
guest and drive the real ``gdb-multiarch`` against it over TCP.

Used by tests/conftest.py and the test_gdb_e2e / test_gdb_non_stop / test_run_mode / test_guests_on_qemu
modules.
Imports: standard library and pyelftools only (it never imports ``gdbstub`` or ``emulator``: the stub
is exercised as a separate process, exactly as a user runs it).

Setting ``E500_E2E_SERVER=qemu`` makes :func:`start_server` start ``qemu-system-ppc -S -gdb`` instead of
the stub. That is a development aid for checking a gdb script against the reference implementation;
tests that pin down stub-specific behaviour (hardware-breakpoint limits, Book E watchpoint pcs) are
expected to differ there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from support.qemu_machine import QEMU_BINARY, ppce500_command

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_BIN = REPO_ROOT / "examples" / "bin"
GDB = "gdb-multiarch"
QEMU = QEMU_BINARY
CPUS = ("e500v2", "e500mc")

LISTENING_PATTERN = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
STUB_START_TIMEOUT = 30.0
GDB_TIMEOUT = 120.0

# QEMU ppce500 -kernel boot state (reference e500-core.md 5.3).
BOOT_R1 = 0x00FFFFF8
BOOT_R6_EPAPR_MAGIC = 0x45504150
BOOT_R7_INITIAL_MAP_SIZE = 0x04000000
DT_GAP = 0x1800000
DT_ALIGN_MASK = ~0xFFFFF


class ToolMissingError(RuntimeError):
    """A required host tool is not installed (tests must fail, not skip)."""


def require_tool(name: str) -> str:
    """Return the path of a host tool or raise :class:`ToolMissingError` with an install hint."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} is not installed (run scripts/setup.sh or `make setup`)")
    return path


def guest_path(name: str, cpu: str = "e500v2") -> Path:
    """Path of a committed example guest, e.g. ``guest_path("loop", "e500mc")``."""
    path = EXAMPLES_BIN / f"{name}-{cpu}.elf"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (run `make guests`)")
    return path


def elf_symbols(path: Path) -> dict[str, int]:
    """Symbol name -> address for every named symbol of an ELF image."""
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        table = elf.get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            raise ValueError(f"{path} has no symbol table")
        return {symbol.name: symbol["st_value"] for symbol in table.iter_symbols() if symbol.name}


def elf_entry(path: Path) -> int:
    with path.open("rb") as stream:
        return int(ELFFile(stream).header["e_entry"])


def elf_word_at(path: Path, address: int) -> int:
    """The big-endian 32-bit word the image holds at a load address (from the file, not a target)."""
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        for segment in elf.iter_segments():
            start = segment["p_vaddr"]
            if segment["p_type"] == "PT_LOAD" and start <= address < start + segment["p_filesz"] - 3:
                data = segment.data()[address - start:address - start + 4]
                return int.from_bytes(data, "big")
    raise ValueError(f"{address:#x} is not in a loaded segment of {path}")


def expected_dt_base(path: Path) -> int:
    """r3 at entry: QEMU puts the device tree after the image: (low + size + 0x1800000) & ~0xFFFFF."""
    with path.open("rb") as stream:
        loads = [s for s in ELFFile(stream).iter_segments() if s["p_type"] == "PT_LOAD"]
    low = min(s["p_paddr"] for s in loads)
    high = max(s["p_paddr"] + s["p_memsz"] for s in loads)
    return (low + (high - low) + DT_GAP) & DT_ALIGN_MASK


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class GdbResult:
    """What one gdb-multiarch run printed."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (f"$ {' '.join(self.command)}\n[exit {self.returncode}]\n--- stdout ---\n{self.stdout}"
                f"\n--- stderr ---\n{self.stderr}")


@dataclass
class Server:
    """A running gdb server process (the stub, or QEMU) with its output collected in the background."""

    process: subprocess.Popen[str]
    port: int
    image: Path
    _stdout: list[str] = field(default_factory=list)
    _stderr: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def stop(self) -> None:
        """Terminate (then kill) the server and wait for its output to drain."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=5)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the server to exit by itself; returns its exit status."""
        status = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return status

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _drain(stream: object, sink: list[str], seen_line: threading.Event | None,
           found: dict[str, int]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sink.append(line)
        if seen_line is not None and not seen_line.is_set():
            match = LISTENING_PATTERN.search(line)
            if match:
                found["port"] = int(match.group(1))
                seen_line.set()
    if seen_line is not None:
        seen_line.set()  # EOF: wake the waiter so it can report the early exit


def stub_command(image: Path, cpu: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gdbstub", str(image), "--cpu", cpu, "--port", "0", *extra]


def start_stub(image: Path, cpu: str = "e500v2", *extra: str, console: str | None = None) -> Server:
    """Start ``python -m gdbstub IMAGE --cpu CPU --port 0`` and wait for its ``listening on`` line.

    ``console``: text written to the stub's stdin (then closed), which the stub feeds to the guest UART.
    """
    process = subprocess.Popen(stub_command(image, cpu, *extra), cwd=REPO_ROOT,
                               stdin=subprocess.DEVNULL if console is None else subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if console is not None:
        assert process.stdin is not None
        process.stdin.write(console)
        process.stdin.close()
    listening = threading.Event()
    found: dict[str, int] = {}
    server = Server(process=process, port=0, image=image)
    server._readers = [
        threading.Thread(target=_drain, args=(process.stderr, server._stderr, listening, found), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, server._stdout, None, found), daemon=True),
    ]
    for reader in server._readers:
        reader.start()
    listening.wait(STUB_START_TIMEOUT)
    if "port" not in found:
        server.stop()
        raise RuntimeError(f"stub did not report `listening on 127.0.0.1:PORT` within {STUB_START_TIMEOUT}s;"
                           f" exit={process.returncode}\nstdout:\n{server.stdout}\nstderr:\n{server.stderr}")
    server.port = found["port"]
    return server


def start_qemu(image: Path, cpu: str) -> Server:
    """Start QEMU ppce500 halted with its gdbstub on a free port (reference behaviour)."""
    port = _free_port()
    command = ppce500_command(image, cpu, "-S", "-gdb", f"tcp:127.0.0.1:{port}", binary=require_tool(QEMU))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    server = Server(process=process, port=port, image=image)
    server._readers = [
        threading.Thread(target=_drain, args=(process.stderr, server._stderr, None, {}), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, server._stdout, None, {}), daemon=True),
    ]
    for reader in server._readers:
        reader.start()
    deadline = time.monotonic() + STUB_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            # QEMU's gdbstub accepts one client: give it a moment to notice the probe went away.
            time.sleep(0.2)
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"QEMU gdbstub did not come up on port {port}:\n{server.stderr}")


def start_server(image: Path, cpu: str = "e500v2") -> Server:
    """The stub by default; QEMU when E500_E2E_SERVER=qemu (see the module docstring)."""
    if os.environ.get("E500_E2E_SERVER") == "qemu":
        return start_qemu(image, cpu)
    return start_stub(image, cpu)


def gdb_command(image: Path, port: int, commands: list[str], connect: str = "remote") -> list[str]:
    """``connect`` is the gdb target kind: "remote" or "extended-remote"."""
    command = [require_tool(GDB), "-batch", "-nx",
               "-ex", "set confirm off", "-ex", "set pagination off", "-ex", "set width 0",
               "-ex", f"target {connect} 127.0.0.1:{port}"]
    for line in commands:
        command += ["-ex", line]
    command.append(str(image))
    return command


def run_gdb(image: Path, port: int, commands: list[str], timeout: float = GDB_TIMEOUT,
            connect: str = "remote") -> GdbResult:
    """Run gdb-multiarch in batch mode: connect, run ``commands`` (each an ``-ex``), quit.

    gdb keeps going after a failing ``-ex`` command, so one run can show several outcomes.
    """
    command = gdb_command(image, port, commands, connect)
    completed = subprocess.run(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=timeout, check=False)
    return GdbResult(command, completed.returncode, completed.stdout, completed.stderr)


def run_gdb_with_interrupt(image: Path, port: int, before: list[str], after: list[str],
                           interrupt_after: float, timeout: float = GDB_TIMEOUT) -> GdbResult:
    """Run ``before`` + ``continue``, send gdb SIGINT (a user's Ctrl-C) after ``interrupt_after``
    seconds, then run ``after``.

    gdb turns the SIGINT into the remote protocol's ``\\x03`` while the target runs, exactly as it does
    for a Ctrl-C typed at a terminal. The ``continue`` is sent on stdin so that gdb is already waiting
    for the target when the signal arrives; the ``after`` commands follow on stdin.
    """
    command = [require_tool(GDB), "-nx", "-q",
               "-ex", "set confirm off", "-ex", "set pagination off", "-ex", "set width 0",
               "-ex", f"target remote 127.0.0.1:{port}"]
    for line in before:
        command += ["-ex", line]
    command.append(str(image))
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdin is not None
    stdout_parts: list[str] = []
    stderr_parts: list[str] = []
    readers = [threading.Thread(target=_drain, args=(process.stdout, stdout_parts, None, {}), daemon=True),
               threading.Thread(target=_drain, args=(process.stderr, stderr_parts, None, {}), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        process.stdin.write("continue\n")
        process.stdin.flush()
        return _interrupt_then(process, readers, after, interrupt_after, timeout, command, stdout_parts,
                               stderr_parts)
    finally:
        _reap(process, readers)


def _interrupt_then(process: subprocess.Popen[str], readers: list[threading.Thread], after: list[str],
                    interrupt_after: float, timeout: float, command: list[str], stdout_parts: list[str],
                    stderr_parts: list[str]) -> GdbResult:
    """Ctrl-C gdb ``interrupt_after`` seconds from now, give it ``after`` and quit; what it printed."""
    assert process.stdin is not None
    time.sleep(interrupt_after)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.stdin.write("".join(f"{line}\n" for line in after) + "quit\n")
    process.stdin.close()
    returncode = process.wait(timeout=timeout)
    for reader in readers:
        reader.join(timeout=5)
    return GdbResult(command, returncode, "".join(stdout_parts), "".join(stderr_parts))


def _reap(process: subprocess.Popen[str], readers: list[threading.Thread]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    for reader in readers:
        reader.join(timeout=5)


def run_gdb_interrupting_after(image: Path, port: int, before: list[str], after: list[str],
                               interrupt_after: float, timeout: float = GDB_TIMEOUT) -> GdbResult:
    """Like :func:`run_gdb_with_interrupt`, but the ``before`` commands may take long (breakpoints on a
    guest that boots for seconds): the Ctrl-C clock starts only once they have all run and the final
    ``continue`` is under way.

    The commands go to gdb's stdin one after another; an ``echo`` of a marker after them tells when
    gdb has reached the ``continue``.
    """
    marker = "@@e500-before-done@@"
    command = [require_tool(GDB), "-nx", "-q",
               "-ex", "set confirm off", "-ex", "set pagination off", "-ex", "set width 0",
               "-ex", f"target remote 127.0.0.1:{port}", str(image)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    stdout_parts: list[str] = []
    stderr_parts: list[str] = []
    reached = threading.Event()

    def read_stdout(stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            stdout_parts.append(line)
            if marker in line:
                reached.set()
        reached.set()  # EOF: gdb is gone, nothing left to wait for

    readers = [threading.Thread(target=read_stdout, args=(process.stdout,), daemon=True),
               threading.Thread(target=_drain, args=(process.stderr, stderr_parts, None, {}), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        process.stdin.write("".join(f"{line}\n" for line in before) + f"echo {marker}\\n\ncontinue\n")
        process.stdin.flush()
        reached.wait(timeout)
        return _interrupt_then(process, readers, after, interrupt_after, timeout, command, stdout_parts,
                               stderr_parts)
    finally:
        _reap(process, readers)


def parse_info_registers(text: str) -> dict[str, int]:
    """Register name -> value from gdb's ``info registers`` lines (``r1  0xfffff8  16777208``)."""
    values: dict[str, int] = {}
    for match in re.finditer(r"^(\w+)\s+(0x[0-9a-fA-F]+)\b", text, re.MULTILINE):
        values.setdefault(match.group(1), int(match.group(2), 16))
    return values


def run_gdb_dialogue(image: Path, port: int, steps: list[tuple[str, str | None]],
                     before_connect: Sequence[str] = (), timeout: float = GDB_TIMEOUT) -> GdbResult:
    """Drive an interactive gdb through its stdin, one command at a time: after each ``(command,
    pattern)`` step wait until ``pattern`` (a regex; None: nothing) shows in what gdb printed since that
    command. Its event loop runs between commands, so asynchronous stops (non-stop mode's ``continue &``
    and ``interrupt``) are seen as they come. ``before_connect``: commands before ``target remote``
    (``set non-stop on``). A pattern that never shows fails the step with everything gdb printed."""
    command = [require_tool(GDB), "-nx", "-q",
               "-ex", "set confirm off", "-ex", "set pagination off", "-ex", "set width 0"]
    for line in before_connect:
        command += ["-ex", line]
    command += ["-ex", f"target remote 127.0.0.1:{port}", str(image)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdin is not None and process.stdout is not None
    printed: list[str] = []
    arrived = threading.Condition()

    def read_stdout(stream: object) -> None:
        for line in iter(lambda: stream.read(1), ""):  # type: ignore[attr-defined]
            with arrived:
                printed.append(line)
                arrived.notify_all()

    reader = threading.Thread(target=read_stdout, args=(process.stdout,), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        for line, pattern in steps:
            with arrived:
                start = len(printed)
            process.stdin.write(line + "\n")
            process.stdin.flush()
            if pattern is None:
                continue
            with arrived:
                while not re.search(pattern, "".join(printed[start:])):
                    left = deadline - time.monotonic()
                    if left <= 0 or process.poll() is not None:
                        raise AssertionError(f"gdb never printed {pattern!r} after {line!r}:\n"
                                             + "".join(printed))
                    arrived.wait(min(left, 0.5))
        process.stdin.write("quit\n")
        process.stdin.close()
        returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        reader.join(timeout=5)
        return GdbResult(command, returncode, "".join(printed), "")
    finally:
        _reap(process, [reader])

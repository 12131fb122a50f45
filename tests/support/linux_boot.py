"""The Linux test kernels' console (examples/linux): what their /init prints, and a boot on this
emulator to power-off that keeps the console. Shared by tests/test_linux.py (uniprocessor kernels) and
tests/test_linux_smp.py (SMP kernels).

Imports: the standard library only.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
PANIC_LINE = "Kernel panic - not syncing"

# What examples/linux/init.c prints, in order (the child's pid and the machine-specific cpuinfo line
# are matched loosely here; the emulator-vs-QEMU comparison pins them exactly).
INIT_LINES = [
    r"Run /init as init process",
    r"init: hello from userspace",
    r"init: pid 1",
    r"init: uname Linux 6\.1\.\d+ ppc",
    r"init: primes below 20000: 2262",
    r"init: sqrt\(2\) \* 1e6 = 1414213",
    r"init: /proc/cpuinfo has \d+ lines",
    r"init: cpu\s+: e500(v2|mc)",
    r"init: /proc/interrupts has \d+ lines",
    r"init: child \d+ exited with 42",
    r"init: written to /dev/console",
    r"init: powering off",
    r"reboot: Power down",
]


def console_lines(output: str) -> list[str]:
    """The console as a list of lines, without the 8250 driver's carriage returns."""
    return output.replace("\r", "").splitlines()


def assert_lines_in_order(lines: list[str], patterns: list[str], context: str) -> None:
    """Each pattern matches a whole line of ``lines``, each after the previous pattern's line."""
    position = 0
    for pattern in patterns:
        found = next((index for index in range(position, len(lines)) if re.fullmatch(pattern, lines[index])),
                     None)
        assert found is not None, f"{pattern!r} not found after line {position}:\n{context}"
        position = found + 1


@dataclass
class Boot:
    """A finished (or stopped) emulator boot: console text, exit status (None if it was stopped)."""

    stdout: str
    stderr: str
    returncode: int | None
    stopped_because: str = ""


def compared_consoles(reference: str, completed: Boot) -> tuple[list[str], list[str], str]:
    """(QEMU's console lines, the emulator's, a context for assertions: exit, stderr, the diff)."""
    expected = console_lines(reference)
    actual = console_lines(completed.stdout)
    diff = "\n".join(difflib.unified_diff(expected, actual, "qemu", "emulator", lineterm="", n=2))
    context = (f"exit {completed.returncode} {completed.stopped_because}\n"
               f"--- emulator stderr ---\n{completed.stderr}\n"
               f"--- diff qemu -> emulator ---\n{diff}")
    return expected, actual, context


def boot_on_emulator(image: Path, cpu: str, *options: str, timeout: float) -> Boot:
    """``e500-gdbstub --run --cpu CPU OPTIONS IMAGE``. A kernel panic would otherwise sit out the
    kernel's 180 s reboot delay, and a hang the whole timeout: the run is stopped at the panic line or
    the timeout, and the console so far is what the test reports."""
    command = [sys.executable, "-m", "gdbstub", "--run", "--cpu", cpu, *options, str(image)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: list[str] = []
    stderr: list[str] = []
    panicked = threading.Event()

    def read_console(stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            stdout.append(line)
            if line.startswith(PANIC_LINE):
                panicked.set()

    def read_errors(stream: IO[str]) -> None:
        stderr.extend(iter(stream.readline, ""))

    assert process.stdout is not None and process.stderr is not None
    readers = [threading.Thread(target=read_console, args=(process.stdout,), daemon=True),
               threading.Thread(target=read_errors, args=(process.stderr,), daemon=True)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    reason = ""
    while process.poll() is None:
        if panicked.wait(0.2):
            time.sleep(1.0)  # the lines the panic prints after its first one
            reason = "stopped at the kernel panic"
        elif time.monotonic() > deadline:
            reason = f"stopped after {timeout:.0f} s without a power-off"
        if reason and process.poll() is None:
            process.kill()
            break
    process.wait()
    for reader in readers:
        reader.join(timeout=5)
    return Boot("".join(stdout), "".join(stderr), None if reason else process.returncode, reason)

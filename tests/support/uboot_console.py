"""Drive U-Boot's serial console on a machine started as a subprocess (this emulator's ``--run`` or
``qemu-system-ppc -nographic``): the same code types into both, so their transcripts compare.

The key that stops autoboot is sent when U-Boot prints its "CPU:" line: early enough that it is
waiting before the autoboot check on both machines (sent on the "Hit any key" text, QEMU sometimes
sees it before and sometimes after U-Boot's first check, which prints differently), late enough that
U-Boot's UART initialisation (which clears the receiver) is over. Each command is sent once the
previous one has been echoed and has given its prompt back, as a person would type: typed while a
command still runs, characters are eaten by its Ctrl-C checks (``md``, ``pci display``).

Imports: the standard library only.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

UBOOT_ELF = Path("/usr/lib/u-boot/qemu-ppce500/uboot.elf")
PROMPT = b"=> "
EARLY_LINE = b"CPU:"


@dataclass
class Transcript:
    output: bytes
    seconds_to_prompt: float       # from process start to the first "=> "
    seconds_total: float
    returncode: int | None = None
    marks: dict[str, float] = field(default_factory=dict)


class _Console:
    def __init__(self, command: list[str], deadline: float) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.output = bytearray()
        self.scanned = 0
        self.deadline = deadline

    def wait_for(self, marker: bytes) -> None:
        assert self.process.stdout is not None
        while True:
            found = self.output.find(marker, self.scanned)
            if found >= 0:
                self.scanned = found + len(marker)
                return
            remaining = self.deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError(f"no {marker!r} within the time limit; last output: "
                                   f"{bytes(self.output[-400:])!r}")
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError(f"the machine exited before {marker!r}: {bytes(self.output[-400:])!r}")
            self.output += chunk

    def type(self, text: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def finish(self) -> int | None:
        try:
            rest, _ = self.process.communicate(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
        self.output += rest or b""
        return self.process.returncode


def run_uboot(command: list[str], commands: list[str], *, timeout: float = 240.0) -> Transcript:
    """Boot U-Boot, stop autoboot, type ``commands`` one prompt at a time; the last one should end
    the machine (``poweroff``)."""
    start = time.monotonic()
    console = _Console(command, start + timeout)
    try:
        console.wait_for(EARLY_LINE)
        console.type(b"\n")
        console.wait_for(PROMPT)
        to_prompt = time.monotonic() - start
        for index, line in enumerate(commands):
            console.type(line.encode() + b"\n")
            if index < len(commands) - 1:
                # The line's echo first: the key that stopped autoboot may still be in U-Boot's input
                # and give an empty command line (an extra prompt) before this one is read.
                console.wait_for(line.encode() + b"\r\n")
                console.wait_for(PROMPT)
        returncode = console.finish()
    finally:
        if console.process.poll() is None:
            console.process.kill()
            console.process.communicate()
    return Transcript(bytes(console.output), to_prompt, time.monotonic() - start, returncode)

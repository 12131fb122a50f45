"""U-Boot (Debian's u-boot-qemu, qemu-ppce500 build) on this emulator and on QEMU 7.2, typed into the
same way, with the same transcript.

``-bios /usr/lib/u-boot/qemu-ppce500/uboot.elf`` boots it on both (QEMU with ``-nic none``, as every
QEMU run of this project: no iPXE ROM is needed then, and U-Boot prints "No ethernet found." on
both). The commands cover memory (md, mw, cp, cmp, crc32), expressions (setexpr, itest, echo), the
environment, the device tree U-Boot was started with (``fdt addr $fdtcontroladdr; fdt print``), PCI
(``pci`` and the host bridge's header) and ``bdinfo``; ``poweroff`` ends both machines.

One normalisation, and why: ``/chosen/rng-seed`` is random on QEMU and a fixed value here (the
emulator is deterministic), so the seed's cells in ``fdt print`` are replaced by a placeholder on
both sides. Timing does not show in U-Boot's output (its autoboot countdown prints the same digits
whatever the speed), so nothing else is normalised.

A second test feeds the same commands from a file to ``--run`` twice: the input reaches the guest at
the same instruction counts, so the transcripts are identical; and a third compares U-Boot's ``reset``
(GUTS RSTCR) on both.

Imports: pytest, the standard library and tests/support.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.qemu_machine import QEMU_BINARY
from support.uboot_console import UBOOT_ELF, Transcript, run_uboot

REPO = Path(__file__).resolve().parents[1]
EMULATOR = [sys.executable, "-m", "gdbstub", "--run", "-bios", str(UBOOT_ELF)]
QEMU = [QEMU_BINARY, "-M", "ppce500", "-nographic", "-nic", "none", "-monitor", "none",
        "-bios", str(UBOOT_ELF)]

COMMANDS = [
    "version",
    "bdinfo",
    "md.l 0x100 8",
    "mw.l 0x1000000 0x12345678 0x40",
    "mw.b 0x1000010 0xa5 3",
    "md.b 0x100000c 8",
    "cp.l 0x1000000 0x1100000 0x40",
    "cmp.l 0x1000000 0x1100000 0x40",
    "mw.l 0x1100020 0",
    "cmp.l 0x1000000 0x1100000 0x40",
    "crc32 0x1000000 0x100",
    "setexpr a 0x1234 + 0x10",
    "setexpr b $a * 3",
    "echo $a $b",
    "itest 5 -gt 3 && echo yes",
    "itest.b 0x10 == 0x11 || echo no",
    "printenv",
    "fdt addr $fdtcontroladdr",
    "fdt print /cpus",
    "fdt print /chosen",
    "fdt print /memory",
    "pci",
    "pci header 00.00.00",
    "pci display.l 00.00.00 0 10",
    "poweroff",
]
_RNG_SEED = re.compile(rb"(rng-seed = <)[^>]*(>)")


def normalise(transcript: Transcript) -> bytes:
    # The random seed QEMU puts in /chosen (fixed here): see the module docstring.
    return _RNG_SEED.sub(rb"\1SEED\2", transcript.output)


def test_uboot_commands_match_qemu(record_property: pytest.RecordProperty) -> None:
    ours = run_uboot(EMULATOR, COMMANDS)
    theirs = run_uboot(QEMU, COMMANDS)
    record_property("seconds_to_prompt", {"emulator": round(ours.seconds_to_prompt, 2),
                                          "qemu": round(theirs.seconds_to_prompt, 2)})
    assert b"=> poweroff" in ours.output and b"Unknown command" not in ours.output
    for marker in (b"12345678", b"Total of 64 word(s) were the same", b"word at 0x01000020",
                   b"1244 36cc", b"yes", b"no", b"timebase-frequency = <0x17d78400>",
                   b"00.00.00   0x1957     0x0030     Processor"):
        assert marker in ours.output, marker
    assert normalise(ours).splitlines() == normalise(theirs).splitlines()


def test_file_input_gives_the_same_run_every_time(tmp_path: Path) -> None:
    script = tmp_path / "commands.txt"
    # The first bytes reach the UART before U-Boot has initialised it (twice: before and after
    # relocation), and each initialisation clears the receiver, as on QEMU; of the rest one stops
    # autoboot and the others give empty command lines. So the commands follow 40 newlines.
    script.write_text("\n" * 40 + "\n".join(["version", "crc32 0xf00000 0x1000", "poweroff"]) + "\n")
    runs = []
    for _ in range(2):
        with script.open("rb") as stdin:
            runs.append(subprocess.run(EMULATOR, stdin=stdin, capture_output=True, timeout=240, cwd=REPO))
    assert runs[0].returncode == runs[1].returncode == 0
    assert runs[0].stdout == runs[1].stdout
    assert b"=> version\r\nU-Boot 2023.01" in runs[0].stdout and b"poweroff ..." in runs[0].stdout
    assert b"crc32 for 00f00000 ... 00f00fff ==> " in runs[0].stdout


def test_reset_restarts_uboot_as_on_qemu() -> None:
    ours = run_uboot(EMULATOR, ["reset", "poweroff"])
    theirs = run_uboot(QEMU, ["reset", "poweroff"])
    for transcript in (ours, theirs):
        assert transcript.output.count(b"U-Boot 2023.01") == 2, transcript.output[-600:]
    assert ours.output.splitlines() == theirs.output.splitlines()

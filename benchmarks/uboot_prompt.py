"""U-Boot (Debian's u-boot-qemu, /usr/lib/u-boot/qemu-ppce500/uboot.elf) to its ``=>`` prompt on this
emulator against QEMU, in the same run: wall time from process start, with a key sent when "Hit any
key to stop autoboot" appears (as a user at the console would). Figures only: nothing here asserts a
speed.

Run: ``.venv/bin/python benchmarks/uboot_prompt.py [--rounds N]``. Imports the standard library and
``tests/support/qemu_machine.py`` (QEMU's binary name); the emulator runs as ``python -m gdbstub --run``,
as a user starts it.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from support.qemu_machine import QEMU_BINARY  # noqa: E402

UBOOT = Path("/usr/lib/u-boot/qemu-ppce500/uboot.elf")
TIMEOUT = 120.0
STORE_VARIABLE = "E500_GDBSTUB_CODE_CACHE"   # emulator/region_store.py: where compiled regions are kept


def time_to_prompt(command: list[str]) -> float | None:
    """Seconds from start to the ``=>`` prompt, sending a newline at the countdown; None if it never came."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    seen = b""
    keyed = False
    try:
        while time.perf_counter() - started < TIMEOUT:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                return None
            seen += chunk
            if not keyed and b"Hit any key" in seen:
                process.stdin.write(b"\n")
                process.stdin.flush()
                keyed = True
            if keyed and b"=> " in seen.split(b"Hit any key", 1)[-1]:
                return time.perf_counter() - started
        return None
    finally:
        process.kill()
        process.wait()


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args()
    if not UBOOT.is_file():
        print(f"uboot_prompt: {UBOOT} is missing (scripts/setup.sh installs u-boot-qemu)")
        return 0
    ours = [sys.executable, "-m", "gdbstub", "--run", "-bios", str(UBOOT)]
    qemu = [QEMU_BINARY, "-M", "ppce500", "-nographic", "-nic", "none", "-bios", str(UBOOT)]
    print("U-Boot to its prompt, a key sent at the countdown (seconds from process start); cold: an empty "
          "region store (nothing compiled before), warm: the store the cold run left")
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="uboot-regions-") as store:
            os.environ[STORE_VARIABLE] = store
            cold = time_to_prompt(ours)
            warm = time_to_prompt(ours)
        there = time_to_prompt(qemu) if shutil.which(QEMU_BINARY) else None
        ratio = f"  QEMU is {cold / there:.0f}x (cold), {warm / there:.0f}x (warm) faster" \
            if cold and warm and there else ""
        print(f"this emulator cold {_seconds(cold)}, warm {_seconds(warm)}   QEMU {_seconds(there)}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

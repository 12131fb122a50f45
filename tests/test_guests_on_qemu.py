"""Every example guest runs to completion on the reference machine (qemu-system-ppc -M ppce500) and
prints what it should. This pins the guests (and their start-up code) to real QEMU behaviour, so the
emulator can be held to the same output.

QEMU deviations that show here (reference e500-core.md section 9): QEMU has no IAC/DAC/TRAP debug
events, so guest_debug counts 0 events there, and QEMU's power-off always exits 0.
Imports: pytest, the standard library and tests/gdb_driver.py.
"""

from __future__ import annotations

import subprocess

import gdb_driver
import pytest
from support.qemu_machine import ppce500_command

QEMU_TIMEOUT = 60.0

EXPECTED_OUTPUT = {
    "hello": ["Hello from e500!", "PVR 0x8021", "PVR 0x8023"],
    "loop": ["loop: start", "loop: counter=200 last=39601 total=2646700"],
    "traps": ["traps: counted 30 of 30 traps, last ESR 0x02000000", "traps: PASS"],
    "guest_debug": ["guest_debug: iac=0 dac_write=0 dac_read=0 events=0 expected=15 calls=5",
                    "guest_debug: 0 events (no IAC/DAC debug events on this machine)"],
}
PVR_PREFIX = {"e500v2": "PVR 0x8021", "e500mc": "PVR 0x8023"}


def run_on_qemu(guest: str, cpu: str) -> subprocess.CompletedProcess[str]:
    qemu = gdb_driver.require_tool(gdb_driver.QEMU)
    command = ppce500_command(gdb_driver.guest_path(guest, cpu), cpu, binary=qemu)
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=QEMU_TIMEOUT, check=False)


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
@pytest.mark.parametrize("guest", sorted(EXPECTED_OUTPUT))
def test_guest_runs_on_qemu(guest: str, cpu: str) -> None:
    completed = run_on_qemu(guest, cpu)
    text = completed.stdout.replace("\r", "")
    # It powered itself off (a hang would have hit the timeout).
    assert completed.returncode == 0, f"{completed.returncode}\n{text}\n{completed.stderr}"
    expected = [line for line in EXPECTED_OUTPUT[guest] if not line.startswith("PVR")]
    if guest == "hello":
        expected.append(PVR_PREFIX[cpu])
    for line in expected:
        assert line in text, f"{line!r} not in:\n{text}"

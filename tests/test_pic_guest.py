"""The ``pic`` example guest (examples/src/pic.c) on the emulator and on QEMU's ppce500: the MPIC's
identification and reset values, task priority, priority order, level re-assertion, THRE and
received-data interrupts, global-timer interrupts, an IPI and external proxy mode. The guest's output
depends only on the order of events, so the two machines must print exactly the same text, and the
emulator must print it identically on every run.

Imports: pytest, the standard library, the emulator package, tests/gdb_driver.py and
tests/test_guests_on_qemu.py (how QEMU is run).
"""

from __future__ import annotations

import gdb_driver
import pytest
from test_guests_on_qemu import run_on_qemu

from emulator.board import Machine
from emulator.cpu import StopKind

RUN_BUDGET = 50_000_000
EXPECTED_LINES = [
    "pic: BRR1 0x00400402 FRR 0x00c30002 VIR 0x00000000 GCR 0x00000000",
    "pic: reset IVPR42 0x80800000 IDR42 0x00000001 TVPR0 0x80000000 TBCR0 0x80000000",
    "pic: THRE pending, CTPR 15: IACK 0x000000ff, CTPR 0: IACK 0x00000042 IIR 0x00000002",
    "pic: timer and THRE pending: IACK 0x00000060 then 0x00000042",
    "pic: this line went out by THRE interrupts",
    "pic: tx interrupts 45 for 44 bytes",
    'pic: rx interrupts 4 received "ping"',
    "pic: timer interrupts 3 count after stop 0x00000000",
    "pic: ipi interrupts 1",
    "pic: GCR 0x60000000 proxy EPR 0x00000042",
    "pic: PASS",
]


def run_on_emulator(cpu_model: str) -> tuple[str, int, int]:
    """(UART text, exit status, instructions executed)."""
    output: list[bytes] = []
    machine = Machine(model_name=cpu_model, uart_out=output.append)
    machine.load_elf(str(gdb_driver.guest_path("pic", cpu_model)))
    stop = machine.cpu.run(RUN_BUDGET)
    assert stop.kind is StopKind.POWER_OFF, stop
    return b"".join(output).decode(), stop.status, machine.cpu.instructions


def lines(text: str) -> list[str]:
    return [line for line in text.replace("\r", "").split("\n") if line]


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_pic_guest_prints_the_same_on_the_emulator_and_on_qemu(cpu: str) -> None:
    emulated, status, _ = run_on_emulator(cpu)
    completed = run_on_qemu("pic", cpu)
    assert completed.returncode == 0, completed.stderr
    reference = lines(completed.stdout)
    assert lines(emulated) == reference
    assert status == 0
    for line in EXPECTED_LINES:
        assert line in reference


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_pic_guest_is_deterministic(cpu: str) -> None:
    first = run_on_emulator(cpu)
    second = run_on_emulator(cpu)
    assert first == second

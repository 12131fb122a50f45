"""The ``smp`` example guest (examples/src/smp.c): secondary cores released through the device tree's
ePAPR spin table, a lwarx/stwcx. spinlock shared by every core, an IPI to each secondary core, PIR and
MPIC WHOAMI per core. On QEMU's ppce500 with -smp 1, 2 and 4 it pins the guest (and QEMU's spin-table
and MPIC behaviour); this emulator must print what QEMU prints with as many cores.

Imports: pytest, the standard library, the emulator package, tests/gdb_driver.py and
tests/support/qemu_machine.py.
"""

from __future__ import annotations

import subprocess
import sys

import gdb_driver
import pytest
from support.qemu_machine import ppce500_command

from emulator.board import Machine
from emulator.cpu import StopKind

QEMU_TIMEOUT = 60.0
RUN_BUDGET = 20_000_000


def lines(text: str) -> list[str]:
    return [line for line in text.replace("\r", "").split("\n") if line]


def run_on_qemu(cpu: str, cores: int) -> subprocess.CompletedProcess[str]:
    qemu = gdb_driver.require_tool(gdb_driver.QEMU)
    command = ppce500_command(gdb_driver.guest_path("smp", cpu), cpu, "-smp", str(cores), binary=qemu)
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=QEMU_TIMEOUT, check=False)


@pytest.mark.parametrize("cores", [1, 2, 4])
@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_smp_guest_on_qemu(cpu: str, cores: int) -> None:
    completed = run_on_qemu(cpu, cores)
    output = lines(completed.stdout)
    assert completed.returncode == 0, completed.stderr
    assert output[0] == f"smp: {cores} cpus in the device tree"
    assert f"smp: counter {cores * 2000} expected {cores * 2000}" in output
    for core in range(cores):
        assert f"smp: cpu {core} pir {core} whoami {core} ipis {1 if core else 0}" in output
    assert output[-1] == "smp: PASS"


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_smp_guest_on_the_emulators_one_core_prints_what_qemu_prints(cpu: str) -> None:
    output: list[bytes] = []
    machine = Machine(model_name=cpu, uart_out=output.append)
    machine.load_elf(str(gdb_driver.guest_path("smp", cpu)))
    stop = machine.cpu.run(RUN_BUDGET)
    assert stop.kind is StopKind.POWER_OFF and stop.status == 0, stop
    assert lines(b"".join(output).decode()) == lines(run_on_qemu(cpu, 1).stdout)


@pytest.mark.parametrize("cores", [2, 4])
@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_smp_guest_on_the_emulators_cores_prints_what_qemu_prints(cpu: str, cores: int) -> None:
    completed = subprocess.run([sys.executable, "-m", "gdbstub", "--run", "--cpu", cpu, "-smp", str(cores),
                                str(gdb_driver.guest_path("smp", cpu))], cwd=gdb_driver.REPO_ROOT,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=QEMU_TIMEOUT,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    assert f"smp: {cores} cpus in the device tree" in completed.stdout
    assert lines(completed.stdout) == lines(run_on_qemu(cpu, cores).stdout)

"""Linux 6.1 SMP on the ppce500 board: the SMP test kernels (examples/bin/linux-smp-CPU.elf, built by
``make linux`` from examples/linux/ with smp.config) bring up every core the board has, and their /init
sees that many CPUs online, runs a child pinned to each, and powers the board off.

QEMU with ``-smp N`` is the reference. It runs here on its host clock: with ``-icount`` and more than
one core, QEMU 7.2 sometimes stalls this kernel's boot for good (after "futex hash table entries") and
the consoles differ from run to run anyway (pids, "hrtimer: interrupt took ... ns"), so a multi-core
console is checked for the lines that must be there, not compared line for line: on the emulator's
``-smp 2`` and ``-smp 4`` as on QEMU's. On one core the emulator must print exactly what QEMU
``-smp 1 -icount`` prints.

:func:`assert_linux_ran_on_cores` is the check for a console of a boot on N cores, whatever machine
printed it; :func:`emulator_smp_boot` boots the SMP kernel on the emulator with extra command-line
options (such as a core count).

Imports: pytest, the standard library, tests/gdb_driver.py and tests/support.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import gdb_driver
import pytest
from support.linux_boot import (
    INIT_LINES,
    Boot,
    assert_lines_in_order,
    boot_on_emulator,
    compared_consoles,
    console_lines,
)
from support.qemu_machine import ppce500_command

pytestmark = pytest.mark.linux

QEMU_TIMEOUT = 60.0
EMULATOR_TIMEOUT = 240.0      # ~20 s on an idle machine, ~65 s while two other jobs share its cores
SMP_EMULATOR_TIMEOUT = 900.0  # several cores: ~1-3 min on a loaded machine
QEMU_ICOUNT = ("-icount", "shift=8,sleep=off")   # the emulator's guest clock (board.DEFAULT_ICOUNT_SHIFT)


def smp_kernel_image(cpu: str) -> Path:
    return gdb_driver.guest_path("linux-smp", cpu)


def cpu_lines(cores: int) -> list[str]:
    """What the SMP kernels' /init prints about the CPUs (examples/linux/init.c, INIT_REPORTS_CPUS)."""
    return [rf"init: {cores} CPUs online",
            *(rf"init: child pinned to CPU {cpu} ran on CPU {cpu}" for cpu in range(cores))]


def assert_linux_ran_on_cores(lines: list[str], cores: int, context: str) -> None:
    """The console of a boot on ``cores`` cores: Linux set up that many possible CPUs and brought all
    of them up, and /init ran (everything it prints, in order, and its CPU lines before its console
    write), saw that many CPUs online and ran a child on each; the power-off message is last."""
    brought_up = f"smp: Brought up 1 node, {cores} CPU{'s' if cores > 1 else ''}"
    kernel = [rf'mpic: Setting up MPIC " OpenPIC  " version 1\.2 at fe0040000, max {cores} CPUs',
              r"smp: Bringing up secondary CPUs \.\.\.", brought_up.replace(".", r"\.")]
    assert_lines_in_order(lines, kernel, context)
    before_console_write = INIT_LINES.index(r"init: written to /dev/console")
    init = INIT_LINES[:before_console_write] + cpu_lines(cores) + INIT_LINES[before_console_write:]
    assert_lines_in_order(lines, init, context)
    assert lines[-1] == "reboot: Power down", context


@functools.cache
def qemu_smp_boot(cpu: str, cores: int, icount: bool = False) -> subprocess.CompletedProcess[str]:
    clock = QEMU_ICOUNT if icount else ()
    command = ppce500_command(smp_kernel_image(cpu), cpu, "-smp", str(cores), *clock,
                              binary=gdb_driver.require_tool(gdb_driver.QEMU))
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=QEMU_TIMEOUT, check=False)


def emulator_smp_boot(cpu: str, *options: str, timeout: float = EMULATOR_TIMEOUT) -> Boot:
    """``e500-gdbstub --run --cpu CPU OPTIONS`` on the SMP kernel, stopped at a kernel panic or after
    ``timeout``."""
    return boot_on_emulator(smp_kernel_image(cpu), cpu, *options, timeout=timeout)


@pytest.mark.parametrize("cores", [1, 2, 4])
@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_smp_linux_brings_up_every_core_on_qemu(cpu: str, cores: int) -> None:
    completed = qemu_smp_boot(cpu, cores)
    lines = console_lines(completed.stdout)
    context = f"exit {completed.returncode}\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    # QEMU exits by itself only through the power-off GPIO (a hang would hit the timeout).
    assert completed.returncode == 0, context
    assert_linux_ran_on_cores(lines, cores, context)


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_smp_linux_on_the_emulators_one_core_equals_qemu(cpu: str) -> None:
    reference = qemu_smp_boot(cpu, 1, icount=True)
    completed = emulator_smp_boot(cpu)
    expected, actual, context = compared_consoles(reference.stdout, completed)
    assert "Traceback" not in completed.stderr, context
    assert_linux_ran_on_cores(actual, 1, context)
    assert actual == expected, context
    assert completed.returncode == 0, context


@pytest.mark.parametrize(("cpu", "cores"), [("e500v2", 2), ("e500v2", 4), ("e500mc", 2)])
def test_smp_linux_brings_up_every_core_on_the_emulator(cpu: str, cores: int) -> None:
    completed = emulator_smp_boot(cpu, "-smp", str(cores), timeout=SMP_EMULATOR_TIMEOUT)
    lines = console_lines(completed.stdout)
    context = (f"exit {completed.returncode} {completed.stopped_because}\n{completed.stdout}\n"
               f"--- stderr ---\n{completed.stderr}")
    assert "Traceback" not in completed.stderr, context
    assert_linux_ran_on_cores(lines, cores, context)
    assert completed.returncode == 0, context

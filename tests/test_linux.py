"""Linux 6.1 on the ppce500 board: the two test kernels (examples/bin/linux-CPU.elf, built by
``make linux`` from examples/linux/) boot to their /init, which prints what it did and powers the board
off. QEMU is the reference: the emulator's console must equal QEMU's line for line, and a gdb session
on the kernel must reach start_kernel, see jiffies tick and stop on Ctrl-C.

The reference for the comparison is QEMU with ``-icount shift=8,sleep=off``: the emulator's guest
time is that rule (one instruction = 2^8 ns; an idle core jumps to the next timer event). Without
``-icount`` QEMU's time base follows the host clock, and timing decides how many kernel workers exist
when /init forks (its child is pid 14 there, 15 under icount and on the emulator). The only
normalisation of the consoles is dropping the carriage returns the 8250 driver sends (both machines
send them). The kernels are built without printk timestamps and /init prints nothing that depends on
time, so nothing else legitimately differs.

Imports: pytest, the standard library, tests/gdb_driver.py and tests/support.
"""

from __future__ import annotations

import functools
import re
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
EMULATOR_TIMEOUT = 150.0      # a boot to power-off is ~15 s on the emulator; room for a busy CI box
GDB_TIMEOUT = 180.0

def kernel_image(cpu: str) -> Path:
    return gdb_driver.guest_path("linux", cpu)


# QEMU's guest clock as the emulator's (board.DEFAULT_ICOUNT_SHIFT).
QEMU_ICOUNT = ("-icount", "shift=8,sleep=off")


@functools.cache
def qemu_boot(cpu: str, icount: bool) -> subprocess.CompletedProcess[str]:
    """One QEMU boot per kernel and clock, shared by the tests of this module (about a second)."""
    command = ppce500_command(kernel_image(cpu), cpu, *(QEMU_ICOUNT if icount else ()),
                              binary=gdb_driver.require_tool(gdb_driver.QEMU))
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=QEMU_TIMEOUT, check=False)


def emulator_boot(cpu: str) -> Boot:
    """``e500-gdbstub --run`` on the kernel, stopped at a kernel panic or after EMULATOR_TIMEOUT."""
    return boot_on_emulator(kernel_image(cpu), cpu, timeout=EMULATOR_TIMEOUT)


def assert_init_ran(lines: list[str], context: str) -> None:
    """The console holds INIT_LINES in order, the power-off message last."""
    assert_lines_in_order(lines, INIT_LINES, context)
    assert lines[-1] == "reboot: Power down", context


@pytest.mark.parametrize("icount", [False, True], ids=["host-clock", "icount"])
@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_linux_runs_init_and_powers_off_on_qemu(cpu: str, icount: bool) -> None:
    completed = qemu_boot(cpu, icount)
    lines = console_lines(completed.stdout)
    context = f"exit {completed.returncode}\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    # QEMU exits by itself only through the power-off GPIO (a hang would hit the timeout).
    assert completed.returncode == 0, context
    assert_init_ran(lines, context)
    assert any(re.fullmatch(r"Hardware name: QEMU ppce500 .* QEMU e500", line) for line in lines), context


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_linux_console_on_the_emulator_equals_qemu(cpu: str) -> None:
    reference = qemu_boot(cpu, icount=True)
    completed = emulator_boot(cpu)
    expected, actual, context = compared_consoles(reference.stdout, completed)
    assert "Traceback" not in completed.stderr, context
    assert actual == expected, context
    # The guest powered itself off through the GPIO: gpio-poweroff drives pin 0 (the GPDAT MSB), so the
    # status byte the emulator reports is 0.
    assert completed.returncode == 0, context


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_gdb_session_on_linux(cpu: str) -> None:
    """From the entry: a hardware breakpoint on start_kernel (at the entry only the boot TLB entry for
    EA 0 exists, so a software breakpoint at the kernel's virtual address cannot be written yet), bt,
    Ctrl-C while the kernel sets up its memory map, a software breakpoint on kernel_init once the
    kernel's mapping is up, and a watchpoint on jiffies_64 (``jiffies`` is a linker alias without a
    type on ppc32) that stops at the first timer tick."""
    image = kernel_image(cpu)
    symbols = gdb_driver.elf_symbols(image)
    with gdb_driver.start_stub(image, cpu) as stub:
        result = gdb_driver.run_gdb_interrupting_after(
            image, stub.port,
            before=["hbreak start_kernel", "continue", "bt", "print/x $pc", "delete"],
            after=["print/x $pc", "bt", "break kernel_init", "continue", "bt", "delete", "print jiffies_64",
                   "watch jiffies_64", "continue", "bt", "delete"],
            interrupt_after=0.5, timeout=GDB_TIMEOUT)
    # Interactive gdb prefixes its output with prompts; they carry no information here.
    out = result.stdout.replace("(gdb) ", "")
    context = f"{result}\n--- stub stderr ---\n{stub.stderr}"
    assert re.search(r"Breakpoint 1, start_kernel \(\) at \S*init/main\.c:\d+", out), context
    assert re.search(r"^#0\s+start_kernel \(\)", out, re.MULTILINE), context
    assert f"$1 = {symbols['start_kernel']:#x}" in out, context
    # Ctrl-C: gdb gets control back inside the kernel, with a backtrace back to start_kernel.
    assert "Program received signal SIGINT, Interrupt." in out, context
    after = out.split("Program received signal SIGINT, Interrupt.")[1]
    pc = re.search(r"^\$2 = (0x[0-9a-f]+)", after, re.MULTILINE)
    assert pc and int(pc.group(1), 16) >= 0xC0000000, context
    assert re.search(r"^#\d+\s+0x[0-9a-f]+ in start_kernel \(\)", after, re.MULTILINE), context
    assert re.search(r"Breakpoint 2, kernel_init \(unused=", after), context
    assert re.search(r"^#1\s+0x[0-9a-f]+ in ret_from_kernel_thread \(\)", after, re.MULTILINE), context
    # The first timer tick: the decrementer interrupt's handler bumps jiffies_64 by one.
    watch = re.search(r"Hardware watchpoint 3: jiffies_64\s+Old value = (\d+)\s+New value = (\d+)", after)
    assert watch and int(watch.group(2)) == int(watch.group(1)) + 1, context
    assert re.search(r"^#0\s+do_timer \(ticks=1\)", after, re.MULTILINE), context
    assert re.search(r"^#\d+\s+(0x[0-9a-f]+ in )?timer_interrupt \(regs=", after, re.MULTILINE), context


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_software_break_on_start_kernel_from_the_physical_entry(cpu: str) -> None:
    """At the entry nothing maps the kernel's 0xC0000000 yet: the soft breakpoint waits on an IAC (which
    compares effective addresses) until its page is mapped, and gdb sees an ordinary breakpoint hit.
    After it, with the mapping up, the same breakpoint is patched in memory as usual."""
    image = kernel_image(cpu)
    symbols = gdb_driver.elf_symbols(image)
    with gdb_driver.start_stub(image, cpu) as stub:
        result = gdb_driver.run_gdb(image, stub.port, [
            "print/x $pc", "break start_kernel", "continue", "print/x $pc", "bt 1",
            "break kernel_init", "continue", "info breakpoints"], timeout=GDB_TIMEOUT)
    context = f"{result}\n--- stub stderr ---\n{stub.stderr}"
    out = result.stdout
    assert "$1 = 0x0" in out, context                              # QEMU's rule: the physical entry
    assert re.search(r"Breakpoint 1, start_kernel \(\) at \S*init/main\.c:\d+", out), context
    assert f"$2 = {symbols['start_kernel']:#x}" in out, context
    assert re.search(r"Breakpoint 2, kernel_init \(unused=", out), context
    assert re.search(r"breakpoint already hit 1 time", out), context
    assert "Cannot insert breakpoint" not in result.output, context


IDLE_APPEND = "console=ttyS0 rdinit=/nonexistent root=/dev/sda rootwait"


def test_ctrl_c_while_the_kernel_idles() -> None:
    """With no /init to run and a root device that never comes, the kernel waits in `rootwait`, its CPU
    idle between timer ticks: a breakpoint on arch_cpu_idle shows the idle path, and a Ctrl-C given
    while it idles stops it inside the kernel."""
    image = kernel_image("e500v2")
    with gdb_driver.start_stub(image, "e500v2", "-append", IDLE_APPEND) as stub:
        result = gdb_driver.run_gdb_interrupting_after(
            image, stub.port, before=["break arch_cpu_idle", "continue", "bt", "delete"],
            after=["print/x $pc", "bt 3"], interrupt_after=1.0, timeout=GDB_TIMEOUT)
        alive = stub.process.poll() is None
    out = result.stdout.replace("(gdb) ", "")
    context = f"{result}\n--- stub stderr ---\n{stub.stderr}"
    assert re.search(r"Breakpoint 1(\.\d+)?, arch_cpu_idle \(\)", out), context
    assert re.search(r"in do_idle \(\)|do_idle \(\) at", out), context
    after = out.split("Program received signal SIGINT, Interrupt.")
    assert len(after) == 2, context
    pc = re.search(r"^\$1 = (0x[0-9a-f]+)", after[1], re.MULTILINE)
    assert pc and int(pc.group(1), 16) >= 0xC0000000, context
    assert alive and "Traceback" not in stub.stderr, context

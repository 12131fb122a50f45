"""gdb-multiarch on a multi-core guest (``-smp``): one thread per core, breakpoints and watchpoints
that report the core that hit them, stepping one core while the others wait.

The guest is examples/src/smp.c: core 0 releases the secondary cores through the spin table, every
core counts under a shared lwarx/stwcx. spinlock (``count_rounds``), each secondary core runs
``secondary_main(index)`` and sets ``running[index]``.

Imports: pytest, the standard library and tests/gdb_driver.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import gdb_driver
import pytest

CORES = 2


def _session(cpu: str, commands: list[str], cores: int = CORES) -> tuple[str, dict[str, int]]:
    image = gdb_driver.guest_path("smp", cpu)
    server = gdb_driver.start_stub(image, cpu, "-smp", str(cores))
    try:
        result = gdb_driver.run_gdb(image, server.port, commands)
    finally:
        server.stop()
    return result.output, gdb_driver.elf_symbols(image)


def _values(output: str) -> list[int]:
    found = []
    for value in re.findall(r"^\$\d+ = (.*)$", output, re.MULTILINE):
        match = re.search(r"0x[0-9a-f]+", value) or re.match(r"-?\d+", value)
        assert match, value
        found.append(int(match.group(0), 0))
    return found


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_a_breakpoint_in_a_secondary_core_stops_that_thread(cpu: str) -> None:
    output, symbols = _session(cpu, ["break secondary_main", "continue", "info threads", "print $pc",
                                     "print index", "thread 1", "print $pc"])
    assert re.search(r"Thread 2 .*hit Breakpoint 1, (0x[0-9a-f]+ in )?secondary_main \(index=1\)",
                     output), output
    listed = re.findall(r"^\*?\s+(\d+)\s+Thread", output, re.MULTILINE)
    assert listed == ["1", "2"], output
    assert re.search(r"^\*\s+2\s+Thread", output, re.MULTILINE), output       # the core that hit it
    pc_core1, index, pc_core0 = _values(output)
    assert index == 1
    assert symbols["secondary_main"] <= pc_core1 < symbols["secondary_main"] + 0x40
    assert pc_core0 != pc_core1


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_a_breakpoint_every_core_runs_is_hit_on_each(cpu: str) -> None:
    output, _ = _session(cpu, ["break count_rounds", "continue", "continue", "continue"], cores=3)
    hits = re.findall(r"Thread (\d+) .*hit Breakpoint 1, (?:0x[0-9a-f]+ in )?count_rounds", output)
    assert sorted(hits) == ["1", "2", "3"], output


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_stepi_steps_the_selected_core_and_the_others_wait(cpu: str) -> None:
    output, _ = _session(cpu, ["break secondary_main", "continue", "delete",
                               "thread 1", "print $pc", "thread 2", "print $pc",
                               "stepi", "stepi", "print $pc", "thread 1", "print $pc"])
    core0_before, core1_before, core1_after, core0_after = _values(output)
    assert core1_after == core1_before + 8, output       # two straight-line instructions of the prologue
    assert core0_after == core0_before, output


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_a_watchpoint_catches_the_store_of_another_core(cpu: str) -> None:
    output, _ = _session(cpu, ["break main", "continue", "watch running[1]", "continue"])
    assert re.search(r"Thread 2 .*hit Hardware watchpoint 2: running\[1\]\s+Old value = 0\s+New value = 1",
                     output), output
    assert "secondary_main" in output.split("Hardware watchpoint 2: running[1]")[-1], output


def test_non_stop_one_core_stopped_while_the_other_runs(
        gdb_multiarch: str, server_factory: Callable[[Path, str], gdb_driver.Server]) -> None:
    """gdb's non-stop mode on two cores: the secondary core stops at a breakpoint while core 0 keeps
    running (it waits for the secondary), memory is read meanwhile, the secondary core alone goes on
    to a watchpoint, then ``interrupt -a`` stops everything."""
    image = gdb_driver.guest_path("smp")
    server = gdb_driver.start_stub(image, "e500v2", "-smp", "2")
    try:
        result = gdb_driver.run_gdb_dialogue(image, server.port, before_connect=["set non-stop on"], steps=[
            ("break secondary_main", r"Breakpoint 1 at"),
            ("continue -a &", r"Thread 2 .*hit Breakpoint 1, (0x[0-9a-f]+ in )?secondary_main"),
            ("info threads", r"\n +2 +Thread 1\.2 .*secondary_main"),
            ("print running[1]", r"\$\d+ = \d+"),
            ("delete", None),
            ("thread 2", r"Switching to thread 2"),
            ("watch running[1]", r"Hardware watchpoint 2: running\[1\]"),
            ("continue &", r"Hardware watchpoint 2: running\[1\]\s+Old value = 0\s+New value = 1"),
            ("info threads", r"Thread 1\.2"),
            ("interrupt -a", r"Thread 1 .*stopped"),
            ("info threads", r"\n\* 2 +Thread 1\.2 .*(at|in) "),
        ])
    finally:
        server.stop()
    out = result.output
    tables = re.findall(r"Id +Target Id.*?(?=\(gdb\)|\Z)", out, re.DOTALL)
    assert len(tables) == 3, str(result)
    # Core 0 ran on while the secondary core was stopped, at both looks.
    assert re.search(r"[ *] 1 +Thread 1\.1 .*\(running\)", tables[0]), str(result)
    assert re.search(r"[ *] 1 +Thread 1\.1 .*\(running\)", tables[1]), str(result)
    assert "(running)" not in tables[2], str(result)
    assert re.search(r"\$\d+ = 0\b", out), str(result)        # running[1] before the secondary set it
    assert "Remote failure" not in out and "Protocol error" not in out, str(result)

"""``--max-insns N``: a guest that has not powered off after N instructions is stopped, with one line
on stderr and exit status 124, in ``--run`` mode and while served to gdb (gdb sees SIGXCPU). The count
is in guest instructions, so the stop is at the same instruction whatever the wall-clock slicing.

Imports: pytest, the standard library and tests/gdb_driver.py (the stub runs as a process).
"""

from __future__ import annotations

import re
import subprocess
import sys

import gdb_driver

EXIT_INSN_LIMIT = 124
RUN_TIMEOUT = 120.0
# The echo guest polls its UART for input: with stdin closed at once it never powers off (a hung guest).
HUNG = "echo"
STOP_LINE = re.compile(r"^e500-gdbstub: instruction limit reached: the guest executed (\d+) instructions "
                       r"\(--max-insns (\d+)\) without powering off; stopped at pc (0x[0-9a-f]{8})$")


def run_stub(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub", *arguments], cwd=gdb_driver.REPO_ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          check=False)


def stop_pc(stderr: str, limit: int) -> str:
    """The pc of the one limit line, checking that the line says what it should."""
    lines = [line for line in stderr.splitlines() if "instruction limit" in line]
    assert len(lines) == 1, stderr
    match = STOP_LINE.match(lines[0])
    assert match is not None, lines[0]
    assert int(match.group(1)) == limit and int(match.group(2)) == limit, lines[0]
    return match.group(3)


def test_run_mode_stops_a_hung_guest_with_one_line_and_status_124() -> None:
    completed = run_stub("--run", "--max-insns", "200000", str(gdb_driver.guest_path(HUNG)))
    assert completed.returncode == EXIT_INSN_LIMIT, completed
    assert "echo: ready" in completed.stdout, completed
    assert [line for line in completed.stderr.splitlines() if line] == [completed.stderr.strip()], completed
    stop_pc(completed.stderr, 200000)


def test_a_guest_within_its_limit_exits_with_its_own_status() -> None:
    completed = run_stub("--run", "--max-insns", "1000000", str(gdb_driver.guest_path("loop")))
    assert completed.returncode == 0 and "loop: counter=200" in completed.stdout, completed
    assert completed.stderr == "", completed


def test_the_stop_is_deterministic_across_modes_and_slicing() -> None:
    # --run slices by 1M instructions, the server by wall-clock-tuned budgets; both stop at the same pc.
    limit = 54321
    image = gdb_driver.guest_path("loop", "e500mc")
    first = run_stub("--run", "--cpu", "e500mc", "--max-insns", str(limit), str(image))
    second = run_stub("--run", "--cpu", "e500mc", "--max-insns", str(limit), str(image))
    assert first.returncode == second.returncode == EXIT_INSN_LIMIT, (first, second)
    pc = stop_pc(first.stderr, limit)
    assert stop_pc(second.stderr, limit) == pc
    with gdb_driver.start_stub(image, "e500mc", "--max-insns", str(limit)) as server:
        # A breakpoint hit on the way (and the single step over it) must not change the count.
        result = gdb_driver.run_gdb(image, server.port, ["break square", "continue", "delete", "continue"])
        status = server.wait_exit(timeout=RUN_TIMEOUT)
    assert "Program terminated with signal SIGXCPU" in result.output, result
    assert status == EXIT_INSN_LIMIT, server.stderr
    assert stop_pc(server.stderr, limit) == pc


def test_a_detached_guest_is_stopped_too() -> None:
    image = gdb_driver.guest_path(HUNG)
    with gdb_driver.start_stub(image, "e500v2", "--max-insns", "300000") as server:
        result = gdb_driver.run_gdb(image, server.port, ["break main", "continue", "detach"])
        status = server.wait_exit(timeout=RUN_TIMEOUT)
    assert "Breakpoint 1, main" in result.output, result
    assert status == EXIT_INSN_LIMIT, server.stderr
    stop_pc(server.stderr, 300000)


def test_bad_limit_is_a_one_line_usage_error() -> None:
    completed = run_stub("--max-insns", "0", str(gdb_driver.guest_path("hello")))
    assert completed.returncode == 2, completed
    assert completed.stderr.count("\n") == 1 and "--max-insns" in completed.stderr, completed
    assert "Traceback" not in completed.stderr

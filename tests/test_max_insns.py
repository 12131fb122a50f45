"""``--max-insns N``: a guest that has not powered off after N instructions is stopped, with one line
on stderr and exit status 124, in ``--run`` mode and while served to gdb (gdb sees SIGXCPU). The count
is in guest instructions, so the stop is at the same instruction whatever the wall-clock slicing.

Imports: pytest, the standard library and tests/gdb_driver.py (the stub runs as a process); the
accounting unit tests at the end use gdbstub.target with a minimal vCPU (emulator.kvm's constants).
"""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import gdb_driver

from emulator.kvm import KVM_EXIT_INTR
from gdbstub.target import Target

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


class CountingVcpu:
    """Runs whatever budget it is given (``progress`` instructions per call at most, 0 = an idle guest
    that executes nothing) and reports its count in ``last_exit``, None after a reset, as Vcpu does."""

    def __init__(self, progress: int | None) -> None:
        self.progress = progress
        self.kvm_run = bytearray(2352)
        self.budgets: list[int] = []
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.last_exit: SimpleNamespace | None = None

    def set_guest_debug(self, data: bytes) -> None:
        pass

    def run(self, max_instructions: int | None = None) -> int:
        assert max_instructions is not None
        self.budgets.append(max_instructions)
        self.count += max_instructions if self.progress is None else min(self.progress, max_instructions)
        self.last_exit = SimpleNamespace(instructions=self.count)
        return KVM_EXIT_INTR


def run_until_stopped(target: Target, budgets: list[int]) -> int:
    """Slices of the given sizes, round and round, until a stop; returns how many slices ran."""
    for count in range(1, 10_000):
        stop = target.run_slice(budgets[count % len(budgets)])
        if stop is not None:
            assert stop.insn_limit and stop.exit_status is None
            return count
    raise AssertionError("never stopped")


def test_the_limit_is_exact_whatever_the_slice_sizes() -> None:
    vcpu = CountingVcpu(progress=None)
    target = Target(vcpu, "e500v2")
    target.insn_limit = 10_007
    run_until_stopped(target, [1000, 333, 4096, 1])
    assert target.insns_run == vcpu.count == 10_007 and target.insn_limit_reached
    assert target.run_slice(500) is not None and vcpu.count == 10_007      # stays stopped
    target.reset()                    # gdb's kill / run: the count starts again from boot
    assert target.insns_run == 0 and not target.insn_limit_reached
    run_until_stopped(target, [777])
    assert target.insns_run == vcpu.count == 10_007


def test_slices_that_execute_nothing_use_up_the_limit_too() -> None:
    vcpu = CountingVcpu(progress=0)   # e.g. `wait` with no interrupt source: Vcpu.run returns at once
    target = Target(vcpu, "e500v2")
    target.insn_limit = 5000
    assert run_until_stopped(target, [1000]) == 5
    assert sum(vcpu.budgets) == 5000


def test_partial_progress_is_counted_as_executed() -> None:
    vcpu = CountingVcpu(progress=7)
    target = Target(vcpu, "e500v2")
    target.insn_limit = 700
    assert run_until_stopped(target, [1000]) == 100
    assert vcpu.count == 700

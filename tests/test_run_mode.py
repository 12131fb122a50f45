"""``e500-gdbstub --run IMAGE`` runs a guest with no debugger: guest UART output on stdout, the guest's
power-off status as the exit status. Bad input gives one line on stderr and a non-zero exit, never a
Python traceback.

Imports: pytest, the standard library and tests/gdb_driver.py. The stub is run as a process
(``python -m gdbstub`` and the installed ``e500-gdbstub`` script).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gdb_driver
import pytest
from support.qemu_machine import ppce500_command

RUN_TIMEOUT = 120.0
ECHO_INPUT = "Hello world\nsecond LINE\r\n\nquit\n"
ECHO_OUTPUT = ["echo: ready", "echo: HELLO WORLD", "echo: SECOND LINE", "echo: bye"]
HELLO_EXIT_STATUS = 3      # examples/src/hello.c
TRAPS_TOTAL = 30           # examples/src/traps.c: 10 rounds x 3 traps


def run_stub(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub", *arguments], cwd=gdb_driver.REPO_ROOT,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


def text_lines(output: str) -> list[str]:
    return [line for line in output.replace("\r", "").split("\n") if line]


def assert_one_line_error(completed: subprocess.CompletedProcess[str]) -> None:
    assert completed.returncode != 0, completed
    assert "Traceback" not in completed.stderr + completed.stdout, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{completed.stderr}"


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_run_hello_prints_and_exits_with_its_status(cpu: str) -> None:
    completed = run_stub("--run", "--cpu", cpu, str(gdb_driver.guest_path("hello", cpu)))
    assert "Hello from e500!" in completed.stdout, completed
    assert completed.returncode == HELLO_EXIT_STATUS, completed
    assert "Traceback" not in completed.stderr, completed.stderr


def test_installed_script_runs_hello() -> None:
    script = Path(sys.executable).parent / "e500-gdbstub"
    assert script.exists(), f"{script} missing: install the project (`pip install -e .`, `make setup`)"
    completed = subprocess.run([str(script), "--run", str(gdb_driver.guest_path("hello"))],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=RUN_TIMEOUT, check=False)
    assert "Hello from e500!" in completed.stdout, completed
    assert completed.returncode == HELLO_EXIT_STATUS, completed


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_run_loop_guest_completes(cpu: str) -> None:
    completed = run_stub("--run", "--cpu", cpu, str(gdb_driver.guest_path("loop", cpu)))
    assert "loop: counter=200 last=39601 total=2646700" in completed.stdout, completed
    assert completed.returncode == 0, completed


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_run_traps_guest_handles_its_own_traps(cpu: str) -> None:
    completed = run_stub("--run", "--cpu", cpu, str(gdb_driver.guest_path("traps", cpu)))
    assert f"traps: counted {TRAPS_TOTAL} of {TRAPS_TOTAL} traps, last ESR 0x02000000" in completed.stdout, \
        completed
    assert completed.returncode == 0, completed


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_run_guest_debug_sees_its_own_debug_events(cpu: str) -> None:
    # Unlike QEMU, the emulator models IAC/DAC debug events, so the guest's own handler counts them.
    completed = run_stub("--run", "--cpu", cpu, str(gdb_driver.guest_path("guest_debug", cpu)))
    assert "guest_debug: iac=5 dac_write=5 dac_read=5 events=15" in completed.stdout, completed
    assert "guest_debug: PASS" in completed.stdout, completed
    assert completed.returncode == 0, completed


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_stdin_feeds_the_uart_like_qemu(cpu: str) -> None:
    image = gdb_driver.guest_path("echo", cpu)
    ours = run_stub("--run", "--cpu", cpu, str(image), stdin=ECHO_INPUT)
    assert text_lines(ours.stdout) == ECHO_OUTPUT, ours
    assert ours.returncode == 2, ours          # two lines echoed (the empty one is skipped)
    qemu = subprocess.run(ppce500_command(image, cpu), input=ECHO_INPUT, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, check=False)
    assert text_lines(qemu.stdout) == ECHO_OUTPUT, qemu


def test_a_file_on_stdin_feeds_the_uart(tmp_path: Path) -> None:
    typed = tmp_path / "typed.txt"
    typed.write_text("from a file\nquit\n")
    with typed.open() as source:
        completed = subprocess.run([sys.executable, "-m", "gdbstub", "--run",
                                    str(gdb_driver.guest_path("echo"))], cwd=gdb_driver.REPO_ROOT,
                                   stdin=source, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                                   check=False)
    assert "echo: FROM A FILE" in completed.stdout and completed.returncode == 1, completed


def test_missing_image_is_one_line_error(tmp_path: Path) -> None:
    assert_one_line_error(run_stub("--run", str(tmp_path / "no-such-guest.elf")))


def test_non_elf_image_is_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"this is not an ELF file\n" * 10)
    assert_one_line_error(run_stub("--run", str(junk)))


def test_unknown_flag_is_one_line_error() -> None:
    assert_one_line_error(run_stub("--no-such-flag", str(gdb_driver.guest_path("hello"))))

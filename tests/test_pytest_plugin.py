"""The pytest plugin shipped with the package (gdbstub/pytest_plugin.py, entry point ``e500``).

Two ways in: the users' view, a separate ``pytest`` process on examples/pytest (also with ``-n 2``, so
parallel guests must not collide) and on small test files written here (failure reports, the
``--e500-*`` options); and this suite using the ``e500`` fixture itself, which the installed entry
point provides here as it does in any user's project.

Imports: pytest, the standard library and the plugin's exception classes (its public API).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gdbstub.pytest_plugin import E500Error, E500Factory, E500InsnLimit, E500Timeout

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "examples" / "bin"
LOOP = BIN / "loop-e500v2.elf"
HELLO = BIN / "hello-e500v2.elf"
ECHO = BIN / "echo-e500v2.elf"
PYTEST_TIMEOUT = 300.0


def run_pytest(*arguments: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments], cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PYTEST_TIMEOUT,
                          check=False)


def user_project(tmp_path: Path, source: str) -> Path:
    """A user's project: its own pytest.ini and one test file (the plugin comes from the install)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    test_file = tmp_path / "test_user.py"
    test_file.write_text(textwrap.dedent(source).replace("BIN", repr(str(BIN))))
    return test_file


# -- the users' view: separate pytest runs --------------------------------------------------------

def test_the_example_passes_in_parallel_on_two_workers() -> None:
    completed = run_pytest("examples/pytest", "-n", "2", "-v")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert re.search(r"\b4 passed\b", output), output
    # Both workers ran guests at the same time, each stub on its own kernel-picked port.
    assert "[gw0]" in output and "[gw1]" in output, output


def test_a_failing_test_reports_the_stub_log_gdb_and_uart(tmp_path: Path) -> None:
    user_project(tmp_path, """
        def test_fails(e500):
            guest = e500(BIN + "/loop-e500v2.elf")
            guest.gdb("break bump_counter", "continue")
            assert guest.uart == "something else"
    """)
    completed = run_pytest(cwd=tmp_path)
    output = completed.stdout
    assert completed.returncode == 1, output
    section = output[output.index("e500 guest 1: loop-e500v2.elf (call)"):]
    assert re.search(r"--- stub log \(stderr\) ---\nlistening on 127\.0\.0\.1:\d+", section), output
    assert "-ex 'break bump_counter'" in section and "Breakpoint 1, bump_counter" in section, output
    assert "--- UART ---\nloop: start" in section, output


def test_options_set_gdb_timeout_and_instruction_limit(tmp_path: Path) -> None:
    fake_gdb = tmp_path / "fake-gdb"
    fake_gdb.write_text('#!/bin/sh\necho "fake gdb: $*"\n')
    fake_gdb.chmod(0o755)
    user_project(tmp_path, """
        import pytest

        def test_gdb_path(e500):
            guest = e500(BIN + "/loop-e500v2.elf")
            out = guest.gdb("info registers")
            assert out.startswith("fake gdb: -batch -nx"), out
            assert f"-ex target remote 127.0.0.1:{guest.port} -ex info registers -ex disconnect" in out
            assert out.rstrip().endswith("loop-e500v2.elf") and out.command[0].endswith("fake-gdb")

        def test_timeout_and_no_limit(e500):
            guest = e500(BIN + "/echo-e500v2.elf", max_insns=0)   # 0: no limit, whatever the default
            assert e500.timeout == guest.timeout == 45.0 and guest.max_insns is None
            assert "--max-insns" not in guest.command

        def test_instruction_limit(e500):
            guest = e500(BIN + "/echo-e500v2.elf")
            assert guest.max_insns == 250000
            with pytest.raises(e500.InsnLimit, match="--max-insns 250000"):
                guest.run_to_exit()
    """)
    completed = run_pytest("--e500-gdb", str(fake_gdb), "--e500-timeout", "45", "--e500-max-insns", "250000",
                           cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.search(r"\b3 passed\b", completed.stdout), completed.stdout


def test_ini_options_work_too(tmp_path: Path) -> None:
    user_project(tmp_path, """
        def test_limit(e500):
            assert e500.max_insns == 1234 and e500.timeout == 9.0 and e500.gdb_path == "my-gdb"
    """)
    (tmp_path / "pytest.ini").write_text("[pytest]\ne500_max_insns = 1234\ne500_timeout = 9\n"
                                         "e500_gdb = my-gdb\n")
    completed = run_pytest(cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr


# -- the fixture in this suite ------------------------------------------------------------------------

def test_gdb_leaves_the_guest_where_it_stopped(e500: E500Factory) -> None:
    guest = e500(LOOP)
    first = guest.gdb("break bump_counter", "continue", "print counter")
    assert re.search(r"^\$1 = 0$", first, re.MULTILINE), first
    # The next gdb finds the guest at the same breakpoint: counter not yet bumped.
    second = guest.gdb("print counter", "print $pc == bump_counter")
    assert re.search(r"^\$1 = 0$", second, re.MULTILINE) and "$2 = 1" in second, second


def test_exit_seen_by_gdb_is_the_exit_status(e500: E500Factory) -> None:
    guest = e500(HELLO)
    out = guest.gdb("continue")
    assert out.endswith("[Inferior 1 (process 1) exited with code 03]\n"), out   # no `disconnect` error
    assert guest.exit_status == 3
    assert guest.run_to_exit() == 3
    guest.wait_uart("Hello from e500!")


def test_run_to_exit_after_gdb_detach(e500: E500Factory) -> None:
    guest = e500(LOOP)
    guest.gdb("break main", "continue", "detach")
    assert guest.run_to_exit() == 0
    guest.wait_uart("counter=200")


def test_wait_uart_fails_at_once_when_no_output_can_come(e500: E500Factory) -> None:
    halted = e500(LOOP)
    with pytest.raises(E500Error, match="the guest is stopped"):
        halted.wait_uart("loop: start")
    finished = e500(HELLO, run=True)
    assert finished.run_to_exit() == 3
    with pytest.raises(E500Error, match="powered off with status 3") as error:
        finished.wait_uart("never printed")
    assert "Hello from e500!" in str(error.value)


def test_wait_uart_follows_the_output_line_by_line(e500: E500Factory) -> None:
    guest = e500(ECHO, run=True, uart_input="one\ntwo\n")
    assert [guest.wait_uart(r"^echo: (\w+)$").group(1) for _ in range(3)] == ["ready", "ONE", "TWO"]
    guest.send_uart("quit\n")
    assert guest.run_to_exit() == 2
    assert guest.uart.endswith("echo: bye\n") and b"\r\n" in guest.uart_bytes


def test_wait_uart_times_out_with_the_uart_tail(e500: E500Factory) -> None:
    guest = e500(ECHO, halted=False)
    guest.wait_uart("echo: ready")
    with pytest.raises(E500Timeout, match=r"did not show 'never' within 1\.0s") as error:
        guest.wait_uart("never", timeout=1.0)
    assert "--- UART tail ---\necho: ready" in str(error.value)


def test_run_to_exit_times_out_and_leaves_the_guest_stopped(e500: E500Factory) -> None:
    guest = e500(ECHO)
    with pytest.raises(E500Timeout, match="max_insns"):
        guest.run_to_exit(timeout=1.0)
    out = guest.gdb("bt")
    assert re.search(r"#\d+ .* main \(\) at echo\.c", out), out


def test_instruction_limit_under_gdb(e500: E500Factory) -> None:
    guest = e500(ECHO, max_insns=200_000)
    with pytest.raises(E500InsnLimit, match="instruction limit reached") as error:
        guest.gdb("continue")
    assert "echo: ready" in str(error.value)
    assert guest.insn_limit_reached and guest.exit_status is None
    assert guest.process.returncode == 124


def test_two_guests_in_one_test(e500: E500Factory) -> None:
    first, second = e500(LOOP), e500(BIN / "loop-e500mc.elf", cpu="e500mc")
    assert first.port != second.port
    assert first.run_to_exit() == 0 and second.run_to_exit() == 0


def test_bad_image_is_a_clear_error(e500: E500Factory, tmp_path: Path) -> None:
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"not an ELF\n" * 8)
    with pytest.raises(E500Error, match="exited with status 1 before listening") as error:
        e500(junk)
    assert "Traceback" not in str(error.value)
    guest = e500(junk, run=True)
    with pytest.raises(E500Error, match="exited with status 1 before the guest powered off"):
        guest.run_to_exit()
    with pytest.raises(E500Error, match="guest image not found"):
        e500(tmp_path / "missing.elf")


def test_missing_gdb_is_a_clear_error(e500: E500Factory) -> None:
    e500.gdb_path = "/nonexistent/gdb-multiarch"
    guest = e500(LOOP)
    with pytest.raises(E500Error, match="--e500-gdb PATH"):
        guest.gdb("info registers")


def test_the_documented_examples_are_the_tested_one() -> None:
    example = (ROOT / "examples" / "pytest" / "test_example_guest.py").read_text()
    body = example[example.index("import re"):]
    blocks = {name: re.findall(r"```python\n(.*?)```", (ROOT / name).read_text(), re.DOTALL)
              for name in ("README.md", "docs/pytest-plugin.md")}
    assert blocks["docs/pytest-plugin.md"] == [body]
    readme = blocks["README.md"]
    assert len(readme) == 1 and body.startswith(readme[0]), readme


def test_resume_and_interrupt(e500: E500Factory) -> None:
    guest = e500(ECHO)
    guest.resume()
    guest.wait_uart("echo: ready")
    guest.interrupt()
    with pytest.raises(E500Error, match="the guest is stopped"):
        guest.wait_uart("echo: HI")
    guest.send_uart("hi\n")
    guest.resume()
    guest.wait_uart("echo: HI")
    guest.send_uart("quit\n")
    assert guest.run_to_exit() == 1


def test_log_packets_goes_into_the_report(e500: E500Factory) -> None:
    guest = e500(LOOP, log_packets=True)
    guest.gdb("info registers pc")
    report = guest.describe()
    assert guest.packet_log is not None and guest.packet_log.is_file()
    records = [json.loads(line) for line in guest.packet_log.read_text().splitlines()]
    assert any(r["from"] == "gdb" and r.get("packet", "").startswith("qSupported") for r in records)
    assert any(r["from"] == "stub" and r.get("packet", "").startswith("PacketSize=") for r in records)
    assert f"--- packet log {guest.packet_log} ---" in report and "qSupported" in report, report


def test_a_gdb_that_hangs_is_killed_and_the_guest_stays_usable(e500: E500Factory) -> None:
    guest = e500(ECHO)       # waits for UART input forever: gdb's `continue` never returns
    with pytest.raises(E500Timeout, match=r"gdb did not finish within 2\.0s") as error:
        guest.gdb("continue", timeout=2.0)
    assert "echo: ready" in str(error.value)
    out = guest.gdb("bt")
    assert re.search(r" main \(\) at echo\.c", out), out

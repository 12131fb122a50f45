"""End-to-end: the real gdb-multiarch drives the stub over TCP on the example guests.

Each test starts ``python -m gdbstub GUEST --port 0``, runs gdb in batch mode with a short command list
and checks what gdb printed. Addresses come from the ELF symbol table, never hard-coded.
Imports: pytest, the standard library and the helpers in tests/gdb_driver.py + tests/conftest.py.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import gdb_driver
import pytest
from conftest import GdbRunner

LOOP_ROUNDS = 200          # examples/src/loop.c
TRAP_ROUNDS = 10           # examples/src/traps.c
TRAPS_PER_ROUND = 3
HELLO_EXIT_STATUS = 3      # examples/src/hello.c
CORE_REGISTERS = [f"r{n}" for n in range(32)] + ["pc", "msr", "cr", "lr", "ctr", "xer"]


def number_in(value: str) -> int:
    """The number in one printed value: ``(void (*)()) 0x100000 <_start>`` -> 0x100000, ``25`` -> 25."""
    match = re.search(r"0x[0-9a-f]+", value) or re.match(r"-?\d+", value)
    assert match, f"no number in {value!r}"
    return int(match.group(0), 0)


def last_value(output: str) -> int:
    """The value of the last ``$N = value`` gdb printed (decimal or hex)."""
    values = printed_values(output)
    assert values, f"no `$N = value` in:\n{output}"
    return number_in(values[-1])


def printed_values(output: str) -> list[str]:
    return re.findall(r"^\$\d+ = (.*)$", output, re.MULTILINE)


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_info_registers_show_boot_state_at_entry(gdb_run: GdbRunner, cpu: str) -> None:
    session = gdb_run("loop", ["info registers"], cpu=cpu)
    registers = gdb_driver.parse_info_registers(session.output)
    missing = [name for name in CORE_REGISTERS if name not in registers]
    assert not missing, f"missing {missing}\n{session.describe()}"
    expected = {
        "pc": gdb_driver.elf_entry(session.image),
        "msr": 0,
        "r1": gdb_driver.BOOT_R1,
        "r3": gdb_driver.expected_dt_base(session.image),
        "r6": gdb_driver.BOOT_R6_EPAPR_MAGIC,
        "r7": gdb_driver.BOOT_R7_INITIAL_MAP_SIZE,
        "r0": 0, "r4": 0, "r5": 0, "r8": 0, "r9": 0, "r31": 0,
    }
    actual = {name: registers[name] for name in expected}
    assert actual == expected, session.describe()
    assert session.symbols["_start"] == expected["pc"]


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_break_continue_and_backtrace(gdb_run: GdbRunner, cpu: str) -> None:
    session = gdb_run("loop", ["break bump_counter", "continue", "bt", "print $pc"], cpu=cpu)
    out = session.output
    assert re.search(r"Breakpoint 1, bump_counter \(\) at loop\.c:\d+", out), session.describe()
    frames = re.findall(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\w+) \(", out, re.MULTILINE)
    assert [name for _, name in frames][:4] == ["bump_counter", "accumulate", "run_round", "main"], \
        session.describe()
    assert last_value(out) == session.symbols["bump_counter"], session.describe()


def test_finish_prints_the_return_value(gdb_run: GdbRunner) -> None:
    # Hit square() on its 6th call: square(5) returns 25 to accumulate().
    session = gdb_run("loop", ["break square", "ignore 1 5", "continue", "finish"])
    out = session.output
    assert re.search(r"Breakpoint 1, square \(x=(?:x@entry=)?5\)", out), session.describe()
    assert re.search(r"in accumulate \(", out), session.describe()
    assert re.search(r"Value returned is \$\d+ = 25\b", out), session.describe()


def test_stepi_moves_pc_by_four(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["print $pc", "stepi", "print $pc", "stepi", "print $pc",
                               "break square", "continue", "print $pc", "stepi", "print $pc"])
    pcs = [number_in(value) for value in printed_values(session.output)]
    entry = session.symbols["_start"]
    square = session.symbols["square"]
    assert pcs == [entry, entry + 4, entry + 8, square, square + 4], session.describe()


def test_set_var_then_print_and_the_guest_sees_it(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["break bump_counter", "continue", "print counter",
                               "set var counter = 1000", "print counter",
                               "set var buffer[3] = 0x5a", "print/x buffer[3]",
                               "delete", "continue"])
    values = printed_values(session.output)
    assert values[:3] == ["0", "1000", "0x5a"], session.describe()
    # The guest carried on from 1000: 200 more increments, and main returns 1 (counter != 200).
    assert f"counter={1000 + LOOP_ROUNDS}" in session.server.stdout + session.output, session.describe()
    assert re.search(r"exited with code 01", session.output), session.describe()


def test_inferior_function_call(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["break bump_counter", "continue", "delete", "print square(10)",
                               "print square(12)", "bt"])
    values = printed_values(session.output)
    assert values[:2] == ["100", "144"], session.describe()
    # The inferior calls left the real frames intact.
    assert re.search(r"#0\s+bump_counter \(\)", session.output), session.describe()


def test_step_into_and_next_over(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["break main", "continue", "next", "next", "step", "bt", "finish",
                               "next", "info line *$pc"])
    out = session.output
    assert re.search(r"Breakpoint 1, main \(\) at loop\.c:\d+", out), session.describe()
    # `step` on the run_round() line enters it; `bt` shows main as its caller.
    assert re.search(r"^run_round \(round=(?:round@entry=)?0\) at loop\.c:\d+", out, re.MULTILINE), \
        session.describe()
    assert re.search(r"#0\s+run_round .*\n#1\s+0x[0-9a-f]+ in main \(\)", out), session.describe()
    assert re.search(r"Value returned is \$\d+ = 0\b", out), session.describe()  # square(0)


def test_detach_lets_the_guest_run_to_completion(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["break bump_counter", "continue", "detach"])
    assert re.search(r"\[Inferior 1 \(process \d+\) detached\]", session.output), session.describe()
    assert "Breakpoint 1, bump_counter" in session.output, session.describe()


def test_kill(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["break square", "continue", "kill", "info registers pc"])
    assert re.search(r"\[Inferior 1 \(process \d+\) killed\]", session.output), session.describe()
    assert "The program has no registers now" in session.output, session.describe()


def test_extended_remote_kill_then_run_starts_the_guest_afresh(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", [
        "break bump_counter", "continue", "continue 5", "print counter", "kill", "info registers pc",
        "run", "print counter", "bt", "delete", "continue", "info threads", "break square", "run",
        "print x", "info registers pc"], connect="extended-remote")
    out = session.output
    assert re.search(r"\$1 = 5\b", out) and re.search(r"\$2 = 0\b", out), session.describe()
    assert "[Inferior 1 (process 1) killed]" in out and "The program has no registers now" in out
    assert re.search(r"#3 .* in main \(\)", out), session.describe()
    assert "exited normally" in out and "No threads." in out, session.describe()
    # After the guest powered off, `run` starts it again and stops at the new breakpoint.
    assert re.search(r"Breakpoint 2, square \(x=x@entry=0\)", out), session.describe()
    assert re.search(rf"\$3 = 0\npc +{session.symbols['square']:#x} ", out), session.describe()


def test_gdb_without_a_file_gets_the_image_from_the_stub(gdb_multiarch: str) -> None:
    image = gdb_driver.guest_path("loop")
    with gdb_driver.start_stub(image) as server:
        command = [gdb_multiarch, "-batch", "-nx", "-ex", "set confirm off",
                   "-ex", f"target remote 127.0.0.1:{server.port}", "-ex", "break bump_counter",
                   "-ex", "continue", "-ex", "bt", "-ex", "info files"]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=gdb_driver.GDB_TIMEOUT, check=False)
    out = done.stdout + done.stderr
    assert re.search(r"Breakpoint 1, bump_counter \(\) at loop\.c:\d+", out), out
    assert re.search(r"#3 .* in main \(\) at loop\.c", out), out
    assert f"target:{image}" in out, out    # symbols came through qXfer:exec-file + vFile


def test_stub_stdin_feeds_the_guest_uart_while_gdb_debugs() -> None:
    image = gdb_driver.guest_path("echo")
    with gdb_driver.start_stub(image, console="one\ntwo\nthree\nquit\n") as server:
        session = gdb_driver.run_gdb(image, server.port, ["break uart_puts", "continue", "delete",
                                                          "continue"])
        out = session.output
        assert "Breakpoint 1, uart_puts" in out, session
        assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 0?3\]", out), session
    assert "echo: TWO" in server.stdout and "echo: bye" in server.stdout, server.stdout


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_exit_status_reaches_gdb(gdb_run: GdbRunner, cpu: str) -> None:
    session = gdb_run("hello", ["continue"], cpu=cpu)
    assert re.search(rf"\[Inferior 1 \(process \d+\) exited with code 0?{HELLO_EXIT_STATUS}\]",
                     session.output), session.describe()
    assert "Hello from e500!" in session.server.stdout + session.output, session.describe()


def test_breakpoint_hit_one_hundred_times(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["break bump_counter", "ignore 1 99", "continue", "print counter",
                               "info breakpoints"])
    assert last_value(session.output.split("info breakpoints")[0]) == 99, session.describe()
    assert re.search(r"breakpoint already hit 100 times", session.output), session.describe()


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_two_hardware_breakpoints_and_a_third_is_refused(gdb_run: GdbRunner, cpu: str) -> None:
    session = gdb_run("loop", ["hbreak square", "hbreak fill_buffer", "continue", "continue",
                               "hbreak bump_counter", "continue", "print $pc"], cpu=cpu)
    out = session.output
    assert re.search(r"Breakpoint 1, square \(", out), session.describe()
    assert re.search(r"Breakpoint 2, fill_buffer \(", out), session.describe()
    # gdb names whichever breakpoint it failed to insert (it inserts all three at the resume).
    assert re.search(r"Cannot insert hardware breakpoint [123]\.", out), session.describe()
    assert "Could not insert hardware breakpoints" in out, session.describe()
    # The refused resume went no further than gdb's step off the breakpoint it was stopped at.
    pc = last_value(out)
    assert session.symbols["fill_buffer"] <= pc <= session.symbols["fill_buffer"] + 4, session.describe()


def test_watch_stops_after_the_store_with_old_and_new_values(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["watch counter", "continue", "x/i $pc - 4", "print $pc", "continue"])
    out = session.output
    assert re.search(r"Hardware watchpoint 1: counter\s+Old value = 0\s+New value = 1\b", out), \
        session.describe()
    assert re.search(r"Old value = 1\s+New value = 2\b", out), session.describe()
    # The pc is just after the store (Book E stops before the access; gdb then steps over it).
    assert re.search(r"<bump_counter\+\d+>:\s+stw\s", out), session.describe()
    pc = last_value(out)
    assert session.symbols["bump_counter"] < pc < session.symbols["fill_buffer"], session.describe()


def test_rwatch_stops_after_the_load(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["rwatch limit", "continue", "x/i $pc - 4"])
    out = session.output
    assert re.search(r"Hardware read watchpoint 1: limit\s+Value = 200\b", out), session.describe()
    assert re.search(r"<main\+\d+>:\s+lwz\s", out), session.describe()


def test_awatch_reports_read_then_write(gdb_run: GdbRunner) -> None:
    # From main on: crt0's .bss clearing also writes counter.
    session = gdb_run("loop", ["break main", "continue", "awatch counter", "continue", "continue"])
    out = session.output
    assert re.search(r"Hardware access \(read/write\) watchpoint 2: counter\s+Value = 0\b", out), \
        session.describe()
    assert re.search(r"Hardware access \(read/write\) watchpoint 2: counter\s+Old value = 0\s+"
                     r"New value = 1\b", out), session.describe()


def test_watch_on_a_64_byte_array(gdb_run: GdbRunner) -> None:
    # Round 0 writes buffer[i] = i: buffer[0] keeps its value, buffer[1] is the first change.
    session = gdb_run("loop", ["watch buffer", "continue", "print buffer[1]", "print buffer[2]"])
    out = session.output
    # gdb shows a 64-byte char array of zeros as 63 repeats plus the terminating NUL.
    assert re.search(r"Hardware watchpoint 1: buffer\s+Old value = '\\000' <repeats 63 times>\s+"
                     r"New value = \"\\000\\001\", '\\000' <repeats 61 times>", out), session.describe()
    assert re.search(r"fill_buffer \(seed=(?:seed@entry=)?0\) at loop\.c", out), session.describe()
    assert printed_values(out)[-2:] == ["1 '\\001'", "0 '\\000'"], session.describe()


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_guest_traps_go_to_the_guest_while_a_gdb_breakpoint_is_hit(gdb_run: GdbRunner, cpu: str) -> None:
    session = gdb_run("traps", ["break after_trap", "ignore 1 4", "continue", "print trap_count",
                                "continue 5", "print trap_count", "info breakpoints", "delete",
                                "continue"], cpu=cpu)
    out = session.output
    values = printed_values(out)
    # Stopped in after_trap on rounds 4 and 9: the guest's handler had counted 3 traps per round.
    assert values[:2] == [str(5 * TRAPS_PER_ROUND), str(10 * TRAPS_PER_ROUND)], session.describe()
    assert re.search(r"breakpoint already hit 10 times", out), session.describe()
    expected = TRAP_ROUNDS * TRAPS_PER_ROUND
    assert f"traps: counted {expected} of {expected}" in session.server.stdout + out, session.describe()
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", out), session.describe()


def test_examine_shows_the_original_instruction_under_a_breakpoint(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["set breakpoint always-inserted on", "break bump_counter",
                               "break square", "continue", "x/wx bump_counter", "x/i bump_counter",
                               "x/wx square"])
    out = session.output
    for name in ("bump_counter", "square"):
        word = gdb_driver.elf_word_at(session.image, session.symbols[name])
        assert re.search(rf"<{name}>:\s+0x{word:08x}\b", out), session.describe()
    assert re.search(r"<bump_counter>:\s+stwu\s+r1,-16\(r1\)", out), session.describe()


def test_ctrl_c_interrupts_a_running_guest(gdb_multiarch: str,
                                           server_factory: Callable[[Path], gdb_driver.Server]) -> None:
    image = gdb_driver.guest_path("loop")
    server = server_factory(image)
    # Make the loop endless, let it run, then Ctrl-C.
    result = gdb_driver.run_gdb_with_interrupt(
        image, server.port,
        before=["break bump_counter", "continue", "delete", "set var limit = 0xffffffff"],
        after=["print counter", "print $pc", "bt"], interrupt_after=3.0)
    out = result.output
    assert re.search(r"Program received signal SIGINT, Interrupt\.", out), str(result)
    counter = re.search(r"\$1 = (\d+)", out.split("Program received signal SIGINT")[1])
    assert counter and int(counter.group(1)) > 1, str(result)
    # gdb is still in control afterwards: the backtrace ends in main. gdb omits "0x... in" when the
    # stop lands exactly on the first instruction of a source line, which Ctrl-C can do.
    assert re.search(r"#\d+\s+(0x[0-9a-f]+ in )?main \(\)", out), str(result)


def test_ctrl_c_stops_a_guest_that_keeps_hitting_a_false_condition(
        gdb_multiarch: str, server_factory: Callable[[Path], gdb_driver.Server]) -> None:
    image = gdb_driver.guest_path("loop")
    server = server_factory(image)
    result = gdb_driver.run_gdb_with_interrupt(
        image, server.port,
        before=["break bump_counter", "continue", "delete", "set var limit = 0xffffffff",
                "break square if x == 0xfffffff0"],
        after=["print counter", "monitor debug"], interrupt_after=3.0)
    out = result.output
    assert re.search(r"Program received signal SIGINT, Interrupt\.", out), str(result)
    counter = re.search(r"\$1 = (\d+)", out.split("Program received signal SIGINT")[1])
    assert counter and int(counter.group(1)) > 10, str(result)
    skipped = re.search(r"false conditions skipped in the stub: Z0 0x[0-9a-f]+: (\d+)", out)
    assert skipped and int(skipped.group(1)) >= int(counter.group(1)) - 2, str(result)


def test_fpu_watchpoints_see_stfd_and_lfd_and_gdb_prints_doubles() -> None:
    # The e500mc FPU guest of the lockstep corpus: values[] is a volatile double array that
    # generate() fills with stfd and arithmetic() reads back with lfd (8-byte accesses, one DAC).
    image = gdb_driver.REPO_ROOT / "tests" / "lockstep" / "bin" / "float-O0-e500mc.elf"
    element = "*(double *)((char *)&values + 200)"
    with gdb_driver.start_stub(image, "e500mc") as stub:
        result = gdb_driver.run_gdb(image, stub.port, [
            f"watch {element}", "continue", "x/i $pc - 4", f"p {element}", "delete", f"rwatch {element}",
            "continue", "x/i $pc - 4", "p $f0", "set var $f0 = -2.5", "p $f0 * 2"])
    out = result.stdout
    written = re.search(r"New value = (\S+)", out)
    assert written and "Hardware watchpoint 1" in out, out
    assert re.search(r"<generate\+\d+>:\s+stfd\s", out), out
    assert re.search(r"^\$1 = " + re.escape(written.group(1)) + "$", out, re.MULTILINE), out
    assert "Hardware read watchpoint 2" in out and re.search(r"<arithmetic\+\d+>:\s+lfd\s", out), out
    assert printed_values(out)[-1] == "-5", out

"""The same gdb-multiarch session against the stub and against QEMU's gdbstub prints the same text.

Each guest gets one script that breaks in ``main``, steps into and out of functions, single-steps,
and prints the core registers, the stack, frames, locals and disassembly along the way. gdb's output
from the stub and from ``qemu-system-ppc -M ppce500 -S -gdb`` (same ELF, PVR-matching CPU) must be
identical line for line, but for Book E branch hints in disassembly and the exit status (see
``normalised``). The guests are the ones without interrupts or time-base reads, where QEMU is the
reference (its known deviations: tests/lockstep/harness.py); `info registers` is limited to the core
set, as QEMU's SPR list differs in names and order.

Imports: pytest, the standard library and tests/gdb_driver.py.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import gdb_driver
import pytest

CORPUS = gdb_driver.REPO_ROOT / "tests" / "lockstep" / "bin"
CORE = "info registers " + " ".join(f"r{n}" for n in range(32)) + " pc msr cr lr ctr xer"
# Examples carry line information (-g); the corpus guests do not, so they get instruction-level steps.
SOURCE_SCRIPT = [CORE, "break main", "continue", "bt", "next 4", "step", "bt", CORE, "info frame",
                 "x/4i $pc", "finish", CORE, "stepi 25", CORE, "x/8xw $sp", "info locals", "next 3", "bt",
                 CORE]
INSTRUCTION_SCRIPT = [CORE, "break main", "continue", "bt", "stepi 40", "bt", CORE, "x/8i $pc",
                      "nexti 30", "bt", CORE, "info frame", "x/8xw $sp", "finish", CORE, "stepi 300", "bt",
                      CORE]
# Inferior calls, writes, temporary breakpoints, until/advance: what gdb itself drives with P, M, Z0.
CALLS_SCRIPT = ["break run_round", "continue", "print square(7)", "print square(-3)", "set var counter = 42",
                "print counter", "tbreak bump_counter", "continue", "print counter", "until", "until",
                "advance fill_buffer", "bt", "finish", "x/16xb &buffer", "print/x limit", CORE,
                "info breakpoints", "delete", "hbreak square", "hbreak bump_counter", "continue", "bt",
                "continue", "continue", "info breakpoints", "delete", "display/i $pc", "stepi", "stepi",
                "nexti", "undisplay", "continue"]
# Process record and replay: gdb records each instruction it steps and reverse-executes by writing
# the saved registers and memory back (P and X packets); the state it leaves must let the guest go on.
RECORD_SCRIPT = ["break accumulate", "continue", "record full", "next", "next", "next", "info record",
                 "reverse-next", "reverse-next", "reverse-next", "print $pc", CORE, "reverse-stepi",
                 "print $pc", "record stop", "delete", "break bump_counter", "continue", "bt", CORE]
# The guest's own traps reach its program handler on both machines; SRR1 is left out (QEMU ORs
# program-interrupt flags into it, a listed deviation).
TRAPS_SCRIPT = ["break program_handler", "continue", "bt 1", "p/x $srr0", "p/x $esr", "p/x $ivor6",
                "info registers r1 r3 r4 pc lr ctr", "continue 7", "p/x $srr0", "x/2i $srr0", "delete",
                "continue"]
# The e500mc FPU seen from gdb: FPRs as doubles at breakpoints in the float corpus guest, after
# stepping through FP code. The FPSCR is left out (QEMU never sets FR, a listed deviation), and so are
# the GPRs at the end: the guest mixes its FPSCR into the checksum it keeps in them.
FPRS = "info registers " + " ".join(f"f{n}" for n in range(32))
FLOAT_SCRIPT = ["break fused", "continue", "bt", "stepi 60", FPRS, "x/6i $pc", "break mix_double",
                "continue 40", "p $f1", "p/x $f1", "bt", "finish", FPRS, "delete", "break rounding_modes",
                "continue", "stepi 200", FPRS, "p $f0 + $f1", "set var $f2 = 2.75", "p $f2",
                "info registers r1 pc lr ctr"]
GUESTS = [
    gdb_driver.guest_path("loop", "e500v2"), gdb_driver.guest_path("loop", "e500mc"),
    CORPUS / "sort-O2-e500v2.elf", CORPUS / "hash-O0-e500v2.elf", CORPUS / "recursion-Os-e500v2.elf",
    CORPUS / "strings-O2-e500mc.elf", CORPUS / "arith64-O0-e500mc.elf", CORPUS / "switch-Os-e500mc.elf",
    CORPUS / "setjmp-O2-e500v2.elf", CORPUS / "cache-O0-e500mc.elf",
    CORPUS / "sort-Os-e500mc.elf", CORPUS / "hash-O2-e500mc.elf", CORPUS / "recursion-O0-e500mc.elf",
    CORPUS / "strings-O0-e500v2.elf", CORPUS / "arith64-Os-e500v2.elf", CORPUS / "switch-O2-e500v2.elf",
]


# Our target.xml says powerpc:e500 (QEMU's says powerpc:common), so gdb's disassembler prints Book E
# branch hints ("ble-") where it prints none against QEMU; that is the only intended difference.
_BRANCH_HINT = re.compile(r"(\tb\w*)[+-](\s|$)")


# QEMU powers off with status 0 whatever the guest wrote (the emulator passes the GPIO status on).
_EXIT = re.compile(r"exited (normally|with code \d+)\]")


def normalised(text: str) -> list[str]:
    """Lines with branch hints dropped (a space kept where operands follow, so columns still line up)
    and the exit status left out."""
    return [_EXIT.sub("exited]", _BRANCH_HINT.sub(lambda m: m.group(1) + (" " + m.group(2) if m.group(2)
                                                                         else ""), line))
            for line in text.splitlines()]


def same_output(image: Path, script: list[str], *stub_flags: str) -> tuple[str, str]:
    """gdb's stdout for ``script`` against the stub (started with ``stub_flags``), then against QEMU."""
    cpu = model_of(image)
    with gdb_driver.start_stub(image, cpu, *stub_flags) as stub:
        ours = gdb_driver.run_gdb(image, stub.port, script)
    with gdb_driver.start_qemu(image, cpu) as qemu:
        theirs = gdb_driver.run_gdb(image, qemu.port, script)
    return ours.stdout, theirs.stdout


def unified(theirs: str, ours: str) -> str:
    return "\n".join(difflib.unified_diff(normalised(theirs), normalised(ours), "qemu", "stub", lineterm="",
                                         n=1))


def model_of(image: Path) -> str:
    return "e500mc" if image.stem.endswith("e500mc") else "e500v2"


@pytest.mark.parametrize("image", GUESTS, ids=lambda path: path.stem)
def test_gdb_prints_the_same_on_qemu_and_on_the_stub(image: Path) -> None:
    script = SOURCE_SCRIPT if image.parent == gdb_driver.EXAMPLES_BIN else INSTRUCTION_SCRIPT
    ours, theirs = same_output(image, script)
    assert "Breakpoint 1, " in ours and "exited" not in ours, ours
    assert ours.count("\n") > 150, ours
    assert unified(theirs, ours) == ""


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_inferior_calls_and_writes_print_the_same_on_qemu_and_on_the_stub(cpu: str) -> None:
    ours, theirs = same_output(gdb_driver.guest_path("loop", cpu), CALLS_SCRIPT)
    assert "= 49" in ours and "= 9" in ours and "= 42" in ours, ours
    assert "exited with code 01" in ours, ours   # counter was set to 42: the guest notices
    assert unified(theirs, ours) == ""


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_the_guests_own_traps_print_the_same_on_qemu_and_on_the_stub(cpu: str) -> None:
    ours, theirs = same_output(gdb_driver.guest_path("traps", cpu), TRAPS_SCRIPT)
    assert "Breakpoint 1, " in ours and "0x2000000" in ours and "exited" in ours, ours
    assert unified(theirs, ours) == ""


def test_fpu_registers_print_the_same_on_qemu_and_on_the_stub() -> None:
    ours, theirs = same_output(CORPUS / "float-O0-e500mc.elf", FLOAT_SCRIPT)
    assert "Breakpoint 1, " in ours and "= 2.75" in ours and ours.count("(raw 0x") > 90, ours
    assert unified(theirs, ours) == ""


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_record_and_reverse_execution_print_the_same_on_qemu_and_on_the_stub(cpu: str) -> None:
    # gdb 13 range-steps under `record full` and then logs only each range's first instruction (gdb 14
    # fixed it); QEMU offers no range stepping, and --no-range-stepping makes the stub offer none either.
    ours, theirs = same_output(gdb_driver.guest_path("loop", cpu), RECORD_SCRIPT, "--no-range-stepping")
    logged = re.search(r"Log contains (\d+) instructions", ours)
    assert logged is not None and int(logged.group(1)) > 20, ours
    assert "Breakpoint 2, bump_counter" in ours and "in accumulate (" in ours, ours
    assert unified(theirs, ours) == ""

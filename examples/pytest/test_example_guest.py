"""What a user's CI smoke test looks like with the ``e500`` fixture (installed with e500-gdbstub).

Run it with ``pytest examples/pytest`` (add ``-n 2`` with pytest-xdist); the project's own test suite
runs it that way (tests/test_pytest_plugin.py). It uses nothing but the fixture.
"""

import re
from pathlib import Path

GUESTS = Path(__file__).resolve().parent.parent / "bin"


def test_loop_guest(e500):
    # Start the stub on a free port; the guest waits at its entry point for us.
    guest = e500(GUESTS / "loop-e500v2.elf", cpu="e500v2", ram=128, max_insns=5_000_000)

    # gdb-multiarch in batch mode, with the image's symbols: stop at the 10th bump_counter() call.
    out = guest.gdb("break bump_counter", "ignore 1 9", "continue", "print counter")
    assert "Breakpoint 1, bump_counter" in out, out
    assert re.search(r"^\$1 = 9$", out, re.MULTILINE), out

    # The guest stays where gdb left it; what it printed on the way is there.
    guest.wait_uart(r"^loop: start$")

    # Let it run to power-off without gdb, then check its last line and its exit status.
    assert guest.run_to_exit() == 0
    assert guest.wait_uart(r"counter=(\d+)").group(1) == "200"
    assert guest.exit_status == 0


def test_hello_guest_without_gdb(e500):
    guest = e500(GUESTS / "hello-e500mc.elf", cpu="e500mc", run=True)   # e500-gdbstub --run
    guest.wait_uart("Hello from e500!")
    assert guest.run_to_exit() == 3


def test_echo_guest_reads_the_uart(e500):
    guest = e500(GUESTS / "echo-e500v2.elf", halted=False)   # running at once, as QEMU without -S
    guest.wait_uart("echo: ready")
    guest.send_uart("hello\nquit\n")
    assert guest.wait_uart(r"echo: (\w+)").group(1) == "HELLO"   # whole lines only: never "HEL"
    assert guest.run_to_exit() == 1          # the guest's status: the number of lines it echoed


def test_a_hung_guest_fails_fast(e500):
    # Nobody types "quit", so the echo guest would poll its UART forever: the instruction limit ends
    # it after the same 300,000 instructions on every run, whatever the machine's speed.
    guest = e500(GUESTS / "echo-e500v2.elf", max_insns=300_000)
    try:
        guest.run_to_exit()
    except e500.InsnLimit as limit:
        assert "instruction limit reached" in str(limit)
    else:
        raise AssertionError("the guest should have used up its instruction limit")
    assert guest.insn_limit_reached and guest.exit_status is None

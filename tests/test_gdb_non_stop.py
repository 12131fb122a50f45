"""End-to-end: gdb-multiarch in non-stop mode (``set non-stop on`` before ``target remote``) against the
stub's one-thread e500 target on the loop guest: a breakpoint, ``continue &`` with the thread shown
running, ``interrupt``, ``continue -a &`` and ``interrupt -a``, the guest progressing in between, and
a ``stepi``.
Addresses and values come from the ELF and from gdb, never hard-coded."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import gdb_driver


def test_non_stop_continue_in_the_background_and_interrupt(
        gdb_multiarch: str, server_factory: Callable[[Path], gdb_driver.Server]) -> None:
    image = gdb_driver.guest_path("loop")
    server = server_factory(image)
    stopped = r"(Program stopped|Thread 1\.1 .* stopped|signal 0)"
    counter_value = r"\$\d+ = \d+"
    result = gdb_driver.run_gdb_dialogue(image, server.port, before_connect=["set non-stop on"], steps=[
        ("show non-stop", r"non-stop mode is on"),
        ("break bump_counter", r"Breakpoint 1 at"),
        ("continue", r"Breakpoint 1, bump_counter"),
        ("delete", None),
        ("set var limit = 0xffffffff", None),
        ("print counter", counter_value),
        ("continue &", r"Continuing"),
        ("info threads", r"Thread 1\.1 .*\(running\)"),
        ("interrupt", stopped),
        ("info threads", r"\* 1 +Thread 1\.1 \"e500v2\" .*(at|in) "),
        ("print counter", counter_value),
        ("continue -a &", r"Continuing"),
        ("info threads", r"\(running\)"),
        ("interrupt -a", stopped),
        ("print counter", counter_value),
        ("info threads", r"\* 1 +Thread 1\.1 \"e500v2\" .*(at|in) "),
        ("print/x $pc", r"\$\d+ = 0x[0-9a-f]+"),
        ("stepi", None),
        ("print/x $pc", r"\$\d+ = 0x[0-9a-f]+"),
    ])
    out = result.output
    counters = [int(value) for value in re.findall(r"^(?:\(gdb\) )*\$\d+ = (\d+)$", out, re.MULTILINE)]
    assert len(counters) == 3, str(result)
    # The guest ran in the background each time: the counter grew across both runs.
    assert counters[0] < counters[1] < counters[2], str(result)
    # stepi in non-stop mode: vCont;s for the thread, its stop announced by a notification.
    pcs = re.findall(r"^(?:\(gdb\) )*\$\d+ = (0x[0-9a-f]+)$", out, re.MULTILINE)
    assert len(pcs) == 2, str(result)
    before, after = (int(pc, 16) for pc in pcs)
    assert after != before, str(result)
    assert "Remote failure" not in out and "Protocol error" not in out, str(result)

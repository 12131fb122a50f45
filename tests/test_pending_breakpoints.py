"""Soft breakpoints at addresses nothing maps yet: each borrows a free IAC until a resume finds its page
mapped (the Linux session in tests/test_linux.py hits one on start_kernel from the physical entry).
Here: what Z0, Z1 and z0 answer while IACs are borrowed, and the debug configuration the vCPU gets.
"""

from __future__ import annotations

import gdb_driver

from emulator.board import Machine
from emulator.kvm import Vcpu
from gdbstub.session import Session
from gdbstub.target import Target

LOOP = gdb_driver.guest_path("loop", "e500v2")
UNMAPPED = [0x40000000, 0x40001000, 0x40002000]      # past the boot mapping of the loop guest


def loop_session() -> tuple[Session, Vcpu]:
    machine = Machine("e500v2", uart_out=lambda data: None)
    machine.load_elf(str(LOOP))
    vcpu = Vcpu(machine)
    return Session(Target(vcpu, "e500v2")), vcpu


def test_unmapped_soft_breakpoints_take_the_free_iacs_then_e14() -> None:
    session, _ = loop_session()
    assert session.handle(b"Z0,%x,4" % UNMAPPED[0]) == [b"OK"]
    assert session.handle(b"Z0,%x,4" % UNMAPPED[1]) == [b"OK"]
    # Both IACs borrowed: a third unmapped address is what it always was, memory gdb cannot access.
    assert session.handle(b"Z0,%x,4" % UNMAPPED[2]) == [b"E14"]
    # ... and a hardware breakpoint finds no comparator free.
    assert session.handle(b"Z1,100000,4") == [b"E28"]
    # A mapped address is patched as usual and needs no IAC.
    assert session.handle(b"Z0,100010,4") == [b"OK"]
    # Removing one frees its IAC at once.
    assert session.handle(b"z0,%x,4" % UNMAPPED[0]) == [b"OK"]
    assert session.handle(b"Z1,100000,4") == [b"OK"]


def test_the_vcpu_gets_the_borrowed_iacs_at_resume_and_nothing_is_patched() -> None:
    session, vcpu = loop_session()
    assert session.handle(b"Z0,%x,4" % UNMAPPED[0]) == [b"OK"]
    reply = session.resume_blocking(session.handle(b"vCont;s")[0])   # type: ignore[arg-type]
    assert reply.startswith(b"T05")
    state = vcpu.describe_debug_state()
    assert f"{UNMAPPED[0]:#010x}" in state, state
    assert vcpu.sw_breakpoints == {}                          # nothing patched anywhere
    # Removed and resumed: the IAC is given back.
    assert session.handle(b"z0,%x,4" % UNMAPPED[0]) == [b"OK"]
    session.resume_blocking(session.handle(b"vCont;s")[0])      # type: ignore[arg-type]
    assert f"{UNMAPPED[0]:#010x}" not in vcpu.describe_debug_state()

"""Session command handlers against the fake vCPU, with no sockets."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from fakes import NOP, POWEROFF, FakeVcpu, branch
from test_capabilities import one

from gdbstub.session import MAX_MEMORY_READ, Detach, Kill, Resume, Session, StartNoAck
from gdbstub.target import Target

GDB_FEATURES = (b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;"
                b"exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386")


def make(model: str = "e500v2", program: list[int] | None = None, negotiate: bool = True,
         ) -> tuple[Session, FakeVcpu]:
    vcpu = FakeVcpu(program)
    session = Session(Target(vcpu, model))
    if negotiate:
        session.handle(GDB_FEATURES)
    return session, vcpu


def resume(session: Session, packet: bytes) -> bytes:
    replies = session.handle(packet)
    assert len(replies) == 1 and isinstance(replies[0], Resume), replies
    return session.resume_blocking(replies[0], budget=50)


def test_qsupported_advertises_the_targets_capabilities_whatever_gdb_offered() -> None:
    session, _ = make(negotiate=False)
    reply = one(session, GDB_FEATURES)
    for feature in (b"PacketSize=20000", b"qXfer:features:read+", b"qXfer:memory-map:read+",
                    b"qXfer:threads:read+", b"swbreak+", b"hwbreak+", b"vContSupported+",
                    b"QStartNoAckMode+", b"multiprocess+", b"ConditionalBreakpoints+"):
        assert feature in reply.split(b";")
    # The RSP manual: the stub's reply is independent of the features gdb sent (whether a stop reply
    # carries swbreak/hwbreak is what gdb's side decides: test_swbreak_only_when_negotiated...).
    plain, _ = make(negotiate=False)
    assert one(plain, b"qSupported:xmlRegisters=i386") == reply
    assert plain.multiprocess is False and plain.gdb_swbreak is False


def test_connect_sequence() -> None:
    session, _ = make()
    assert one(session, b"vMustReplyEmpty") == b""
    assert session.handle(b"QStartNoAckMode") == [b"OK", StartNoAck()]
    assert one(session, b"Hgp0.0") == b"OK"
    assert one(session, b"qTStatus") == b""
    stop = one(session, b"?")
    assert stop.startswith(b"T05") and b"thread:p1.1;" in stop and b"40:00001000;" in stop
    assert b"01:00008000;" in stop
    assert one(session, b"qfThreadInfo") == b"mp1.1"
    assert one(session, b"qsThreadInfo") == b"l"
    assert one(session, b"qAttached:1") == b"1"
    assert one(session, b"Hc-1") == b"OK"
    assert one(session, b"qC") == b"QCp1.1"
    assert one(session, b"qOffsets") == b"Text=0;Data=0;Bss=0"
    assert one(session, b"qSymbol::") == b"OK"
    assert bytes.fromhex(one(session, b"qThreadExtraInfo,p1.1").decode()).startswith(b"e500v2")
    assert one(session, b"Hgp2.1") == b"E22"
    assert one(session, b"Tp1.1") == b"OK" and one(session, b"Tp1.2") == b"E22"
    assert one(session, b"vCont?") == b"vCont;c;C;s;S;t;r"
    assert one(session, b"qUnknownThing") == b"" and one(session, b"vFlashDone") == b""


def test_range_stepping_can_be_withheld_and_r_still_works() -> None:
    session = Session(Target(FakeVcpu(None), "e500v2"), range_stepping=False)
    session.handle(GDB_FEATURES)
    assert one(session, b"vCont?") == b"vCont;c;C;s;S;t"
    # A gdb that sends r anyway (it should not) still gets a range step.
    [action] = session.handle(b"vCont;r100000,100010:p1.1")
    assert isinstance(action, Resume) and action.step and action.step_range == (0x100000, 0x100010)


def test_qxfer_windows_reassemble_documents() -> None:
    session, _ = make()
    document = b""
    offset = 0
    while True:
        reply = one(session, b"qXfer:features:read:target.xml:%x,10" % offset)
        document += reply[1:]
        offset += len(reply) - 1
        if reply[:1] == b"l":
            break
        assert reply[:1] == b"m"
    assert document == session.target.registers.documents["target.xml"]
    assert one(session, b"qXfer:features:read:nothere.xml:0,100") == b"E00"
    assert one(session, b"qXfer:features:read:target.xml:0") == b"E22"
    assert b'length="0x10000"' in one(session, b"qXfer:memory-map:read::0,1000")
    assert b'id="p1.1"' in one(session, b"qXfer:threads:read::0,1000")


def test_registers_g_p_and_writes() -> None:
    session, vcpu = make()
    vcpu.regs["r3"] = 0x12345678
    vcpu.regs["acc"] = 0x1122334455667788
    vcpu.regs["srr0"] = 0xABCDEF01
    g = one(session, b"g")
    # gdb's 292-byte e500 prefix, then the SPRs (srr0 first) in the same packet.
    assert len(g) > 292 * 2 and len(g) % 8 == 0
    assert g[292 * 2:296 * 2] == b"abcdef01"
    assert g[3 * 8:4 * 8] == b"12345678" and g[256 * 2:260 * 2] == b"00001000"
    assert g[280 * 2:288 * 2] == b"1122334455667788"
    assert one(session, b"p49") == b"1122334455667788"
    assert one(session, b"P3=cafef00d") == b"OK" and vcpu.regs["r3"] == 0xCAFEF00D
    assert one(session, b"P3=cafe") == b"E22"
    assert one(session, b"p4b") == b"abcdef01"          # srr0 (first SPR)
    assert one(session, b"p46") == b"E14"               # 70 has no register on e500v2
    changed = g[:8] + b"000000ff" + g[16:]
    assert one(session, b"G" + changed) == b"OK" and vcpu.regs["r1"] == 0xFF
    assert one(session, b"G00") == b"E22"
    assert one(session, b"pzz") == b"E22"


def test_memory_m_M_X_and_errors() -> None:
    session, vcpu = make()
    assert one(session, b"m1000,4") == b"60000000"
    assert one(session, b"M200,4:deadbeef") == b"OK" and vcpu.ram[0x200:0x204] == bytes.fromhex("deadbeef")
    assert one(session, b"X300,0:") == b"OK"
    binary = b"}#$*\x03"
    assert one(session, b"X300,5:" + binary) == b"OK" and bytes(vcpu.ram[0x300:0x305]) == binary
    assert one(session, b"X300,6:" + binary) == b"E22"
    assert one(session, b"m20000,4") == b"E14"
    assert one(session, b"M20000,1:00") == b"E14"
    assert one(session, b"mfffe,4") == b"0000"                 # partial read up to the fault
    assert one(session, b"m10,zz") == b"E22" and one(session, b"M10,1:0") == b"E22"
    assert len(one(session, b"m0,8000")) == 0x10000
    # Longer than a reply can carry: a shorter reply (gdb continues from where it ends), not an error.
    assert len(one(session, b"m0,100000")) == 2 * MAX_MEMORY_READ


def test_step_continue_and_sw_breakpoint_stop() -> None:
    session, vcpu = make()
    stop = resume(session, b"vCont;s:p1.1;c:p1.-1")
    assert stop.startswith(b"T05") and b"40:00001004;" in stop and b"swbreak" not in stop
    assert one(session, b"Z0,1010,4") == b"OK"
    stop = resume(session, b"vCont;c:p1.-1")
    assert b"40:00001010;" in stop and stop.endswith(b"swbreak:;")
    assert one(session, b"z0,1010,4") == b"OK"
    assert one(session, b"z0,1010,4") == b"E22"
    stop = resume(session, b"s")
    assert b"40:00001014;" in stop
    assert one(session, b"Z0,1000,4") == b"OK" and one(session, b"Z0,1000,4") == b"OK"
    assert one(session, b"z0,1000,4") == b"OK"
    assert 0x1000 not in vcpu.sw_table        # the vCPU is armed at the next resume
    resume(session, b"s")
    assert 0x1000 in vcpu.sw_table            # one of the two inserts is left
    assert one(session, b"z0,1000,4") == b"OK"
    resume(session, b"s")
    assert 0x1000 not in vcpu.sw_table


def test_breakpoints_reach_the_vcpu_at_resume_and_bad_addresses_fail_at_once() -> None:
    session, vcpu = make()
    calls: list[tuple[str, int]] = []
    insert, remove = vcpu.insert_sw_breakpoint, vcpu.remove_sw_breakpoint
    vcpu.insert_sw_breakpoint = lambda ea: (calls.append(("insert", ea)), insert(ea))[1]  # type: ignore[method-assign]
    vcpu.remove_sw_breakpoint = lambda ea: (calls.append(("remove", ea)), remove(ea))[1]  # type: ignore[method-assign]
    assert one(session, b"Z0,1010,4") == b"OK"
    stop = resume(session, b"vCont;c:p1.-1")
    assert stop.endswith(b"swbreak:;") and calls == [("insert", 0x1010)]
    # gdb's step over the breakpoint: out for the step, back for the continue; a z0/Z0 pair with no
    # resume between costs the vCPU nothing.
    assert one(session, b"z0,1010,4") == b"OK" and one(session, b"Z0,1010,4") == b"OK"
    assert one(session, b"z0,1010,4") == b"OK" and calls == [("insert", 0x1010)]
    stop = resume(session, b"vCont;s:p1.1;c:p1.-1")
    assert b"40:00001014;" in stop and calls[1:] == [("remove", 0x1010)]
    assert one(session, b"Z0,1010,4") == b"OK" and len(calls) == 2
    stop = resume(session, b"vCont;c:p1.-1")
    assert stop.endswith(b"swbreak:;") and calls[2:] == [("insert", 0x1010)]
    # Addresses the vCPU could not arm are refused by Z0 itself: a misaligned one always, one nothing
    # maps only when no IAC is free to wait on (tests/test_pending_breakpoints.py).
    assert one(session, b"Z0,1012,4") == b"E22"
    assert one(session, b"Z0,7ffffffc,4") == b"OK" and one(session, b"z0,7ffffffc,4") == b"OK"
    assert one(session, b"Z1,1000,4") == b"OK" and one(session, b"Z1,1004,4") == b"OK"
    assert one(session, b"Z0,7ffffffc,4") == b"E14"
    assert one(session, b"z0,7ffffffc,4") == b"E22"
    assert session.handle(b"D")[0] == b"OK" and vcpu.sw_table == set()


def test_swbreak_only_when_negotiated_and_legacy_thread_ids() -> None:
    session, _ = make(negotiate=False)
    one(session, b"qSupported:xmlRegisters=i386")
    one(session, b"Z0,1008,4")
    stop = resume(session, b"c")
    assert b"swbreak" not in stop and b"thread:1;" in stop
    assert one(session, b"Hg1") == b"OK" and one(session, b"qC") == b"QC1"


def test_hw_breakpoint_and_slot_limit() -> None:
    session, vcpu = make()
    assert one(session, b"Z1,100c,4") == b"OK"
    stop = resume(session, b"c")
    assert b"40:0000100c;" in stop and stop.endswith(b"hwbreak:;")
    assert one(session, b"Z1,1004,4") == b"OK"
    assert one(session, b"Z1,1008,4").startswith(b"E")
    assert len(session.target.breakpoints.hardware) == 2
    assert one(session, b"z1,100c,4") == b"OK" and one(session, b"z1,1004,4") == b"OK"
    assert vcpu.hw == []
    assert one(session, b"z1,1004,4") == b"E22"


@pytest.mark.parametrize(("z_type", "opcode", "reason"), [
    (2, 0x90000000, b"watch"), (3, 0x80000000, b"rwatch"), (4, 0x90000000, b"awatch"),
    (4, 0x80000000, b"awatch")])
def test_watchpoints_report_kind_and_data_address(z_type: int, opcode: int, reason: bytes) -> None:
    session, _vcpu = make(program=[NOP, opcode | 0x204, branch(-8)])
    assert one(session, b"Z%d,200,8" % z_type) == b"OK"
    stop = resume(session, b"vCont;c:p1.-1")
    assert stop.endswith(b"%s:204;" % reason)
    assert b"40:00001004;" in stop                       # pc at the load/store, access not done
    assert one(session, b"z%d,200,8" % z_type) == b"OK"


def test_range_step_and_power_off() -> None:
    session, vcpu = make(program=[NOP, NOP, NOP, NOP, POWEROFF])
    stop = resume(session, b"vCont;r1000,100c:p1.1;c:p1.-1")
    assert b"40:0000100c;" in stop
    vcpu.regs["r3"] = 7
    assert resume(session, b"c") == b"W07;process:1"
    assert one(session, b"?") == b"W07;process:1"
    assert one(session, b"c") == b"W07;process:1"


def test_interrupt_gives_t02() -> None:
    session, _ = make()
    session.begin_resume(Resume(step=False))
    assert session.run_slice(100) is None
    assert session.interrupt().startswith(b"T02")
    assert not session.running
    assert session.interrupt() is None


def test_resume_with_address_and_signal_forms() -> None:
    session, _vcpu = make()
    assert b"40:0000100c;" in resume(session, b"s1008")
    assert b"40:00001010;" in resume(session, b"S05;100c")
    one(session, b"Z0,1018,4")
    assert b"40:00001018;" in resume(session, b"C05")
    assert one(session, b"vCont;x") == b"E22" and one(session, b"vCont;c:p2.1") == b"E22"
    assert one(session, b"vCont;t:p1.1").startswith(b"T00")


def test_extended_mode_kill_run_and_attach() -> None:
    session, vcpu = make(program=[NOP] * 4 + [POWEROFF])
    assert one(session, b"qAttached:1") == b"1"
    assert one(session, b"!") == b"OK"
    assert b"<thread " in one(session, b"qXfer:threads:read::0,fff")     # remembered from here on
    one(session, b"Z0,1008,4")
    assert resume(session, b"vCont;c:p1.-1").startswith(b"T05")
    vcpu.regs["r5"] = 0x55
    # Kill keeps the connection: no process (no thread, `?` says W00) until `run`.
    assert session.handle(b"vKill;1") == [b"OK"]
    assert vcpu.regs["pc"] == 0x1000 and "r5" not in vcpu.regs and vcpu.sw_table == set()
    assert one(session, b"?") == b"W00"
    assert one(session, b"qfThreadInfo") == b"l"
    assert b"<thread " not in one(session, b"qXfer:threads:read::0,fff")
    # run: a fresh guest at its entry, stopped, which gdb started (so it kills it on quit).
    started = one(session, b"vRun;")
    assert started.startswith(b"T05") and b"40:00001000;" in started
    assert one(session, b"qAttached:1") == b"0"
    assert one(session, b"qfThreadInfo") == b"mp1.1"
    assert b"<thread " in one(session, b"qXfer:threads:read::0,fff")
    assert resume(session, b"vCont;c:p1.-1").startswith(b"W")
    assert one(session, b"qfThreadInfo") == b"l"
    assert b"<thread " not in one(session, b"qXfer:threads:read::0,fff")   # powered off: no process
    assert one(session, b"vRun;").startswith(b"T05") and vcpu.regs["pc"] == 0x1000
    assert session.handle(b"k") == [] and one(session, b"?") == b"W00"
    assert one(session, b"vAttach;1").startswith(b"T05") and one(session, b"qAttached") == b"1"
    assert one(session, b"vAttach;7") == b"E22"
    vcpu.regs["pc"] = 0x1004
    assert session.handle(b"R00") == [] and vcpu.regs["pc"] == 0x1000


def test_run_and_restart_need_extended_mode() -> None:
    session, vcpu = make()
    vcpu.regs["pc"] = 0x1004
    assert one(session, b"vRun;") == b""
    assert session.handle(b"R00") == [] and vcpu.regs["pc"] == 0x1004


def test_detach_kill_and_monitor() -> None:
    session, vcpu = make()
    one(session, b"Z0,1010,4")
    assert session.handle(b"D;1") == [b"OK", Detach()]
    assert vcpu.sw_table == set()
    assert one(session, b"D;5") == b"E22"
    assert session.handle(b"k") == [Kill()]
    assert session.handle(b"vKill;1") == [b"OK", Kill()]
    replies = session.handle(b"qRcmd," + b"help".hex().encode())
    assert replies[-1] == b"OK" and all(r.startswith(b"O") for r in replies[:-1])
    text = b"".join(bytes.fromhex(r[1:].decode()) for r in replies[:-1]).decode()
    assert "info tlb" in text
    debug = session.handle(b"qRcmd," + b"debug".hex().encode())
    assert b"fake debug control".hex().encode() in b"".join(debug[:-1])
    vcpu.regs["pc"] = 0x1010
    vcpu.ram[0x1000] = 0xFF
    one(session, b"Z0,1008,4")
    session.handle(b"qRcmd," + b"reset".hex().encode())
    assert vcpu.regs["pc"] == 0x1000 and vcpu.ram[0x1000] == 0x60 and vcpu.sw_table == {0x1008}
    tlb = session.handle(b"qRcmd," + b"info tlb".hex().encode())
    assert b"TLB1".hex().encode() in tlb[0]
    assert one(session, b"qRcmd,7") == b"E22"


def test_handler_bug_becomes_e01() -> None:
    session, vcpu = make()

    def broken(name: str) -> int:
        raise RuntimeError("boom")
    vcpu.get_reg = broken  # type: ignore[method-assign]
    assert one(session, b"g") == b"E01"
    assert one(session, b"p1") == b"E14"


def test_watch_reason_picks_matching_kind() -> None:
    session, vcpu = make(program=[0x90000000 | 0x300, branch(-4)])
    one(session, b"Z3,300,4")
    one(session, b"Z2,300,4")
    stop = resume(session, b"c")
    assert stop.endswith(b"watch:300;") and b"rwatch" not in stop and b"awatch" not in stop
    assert struct.unpack(">I", vcpu.ram[0x300:0x304])[0] == 0


def test_exec_file_and_host_io_serve_the_loaded_image_only(tmp_path: Path) -> None:
    from emulator.board import Machine
    from emulator.kvm import Vcpu

    image = Path(__file__).resolve().parents[1] / "examples" / "bin" / "loop-e500v2.elf"
    machine = Machine("e500v2")
    machine.load_elf(str(image))
    session = Session(Target(Vcpu(machine), "e500v2"))
    assert b"qXfer:exec-file:read+" in one(session, GDB_FEATURES).split(b";")
    assert one(session, b"qXfer:exec-file:read:1:0,fff") == b"l" + str(image).encode()
    assert one(session, b"vFile:setfs:0") == b"F0"
    hex_name = str(image).encode().hex().encode()
    descriptor = one(session, b"vFile:open:" + hex_name + b",0,0")
    assert descriptor == b"F3"
    contents = image.read_bytes()
    assert one(session, b"vFile:pread:3,10,0") == b"F10;" + contents[:16]
    assert one(session, b"vFile:pread:3,1000,%x" % (len(contents) - 4)) == b"F4;" + contents[-4:]
    assert one(session, b"vFile:pread:3,10,%x" % len(contents)) == b"F0;"
    size = int.from_bytes(one(session, b"vFile:fstat:3")[4:][28:36], "big")
    assert size == len(contents)
    other = tmp_path / "secret.txt"
    other.write_text("not for gdb")
    assert one(session, b"vFile:open:" + str(other).encode().hex().encode() + b",0,0") == b"F-1,2"
    assert one(session, b"vFile:open:" + hex_name + b",2,0") == b"F-1,d"      # read-only
    assert one(session, b"vFile:pread:3") == b"F-1,16"         # malformed tail on an open descriptor
    assert one(session, b"vFile:pread:9") == b"F-1,9"          # an unknown descriptor is EBADF first
    assert one(session, b"vRun;zz") == b""                     # not in extended mode: empty, whatever it says
    assert one(session, b"vFile:close:3") == b"F0"
    assert one(session, b"vFile:pread:3,10,0") == b"F-1,9"
    assert one(session, b"vFile:open:zz,0,0") == b"F-1,16"      # File-I/O EINVAL, never an E reply
    assert one(session, b"vFile:unlink:" + hex_name) == b""
    one(session, b"vFile:open:" + hex_name + b",0,0")
    session.close()
    assert one(session, b"vFile:pread:3,10,0") == b"F-1,9"


def test_no_exec_file_without_an_image() -> None:
    session, _ = make(negotiate=False)
    assert b"exec-file" not in one(session, GDB_FEATURES)
    assert one(session, b"qXfer:exec-file:read::0,fff") == b""


# Packets after which a remembered read must be read again: each may change guest state.
STATE_CHANGING_PACKETS = [b"M2000,4:00000000", b"X2000,0:", b"P40,00001004", b"Z0,1010,4", b"z0,1010,4",
                          b"Z1,1010,4", b"qRcmd," + b"reset".hex().encode(), b"QNonStop:0", b"vCont;s:p1.1"]


@pytest.mark.parametrize("packet", STATE_CHANGING_PACKETS, ids=lambda packet: packet[:10].decode())
def test_remembered_ram_reads_last_only_until_state_may_change(packet: bytes) -> None:
    session, vcpu = make()
    assert one(session, b"M1800,4:aaaaaaaa") == b"OK"
    assert one(session, b"m1800,4") == b"aaaaaaaa"
    vcpu.ram[0x1800:0x1804] = b"\x12\x34\x56\x78"     # behind the session's back: nothing gdb could do
    for preserving in (b"g", b"p40", b"?", b"m1000,4", b"qXfer:threads:read::0,1000", b"qC", b"qAttached"):
        session.handle(preserving)
    assert one(session, b"m1800,4") == b"aaaaaaaa"      # so the remembered reply is still the answer
    replies = session.handle(packet)
    if replies and isinstance(replies[0], Resume):
        session.resume_blocking(replies[0], budget=50)
    assert one(session, b"m1800,4") == vcpu.ram[0x1800:0x1804].hex().encode() != b"aaaaaaaa"


def test_reads_outside_ram_and_long_reads_are_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    session, vcpu = make()
    monkeypatch.setattr(vcpu, "read_ram", lambda ea, n: None)   # as for device registers
    assert one(session, b"m1800,4") == b"00000000"
    vcpu.ram[0x1800:0x1804] = b"\x12\x34\x56\x78"             # a device register changing by itself
    assert one(session, b"m1800,4") == b"12345678"
    monkeypatch.undo()
    long_read = one(session, b"m1800,100")
    vcpu.ram[0x1800:0x1804] = b"\xab\xcd\xef\x01"
    assert one(session, b"m1800,100") == b"abcdef01" + long_read[8:]


def _xcrc32_bitwise(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """libiberty's xcrc32 one bit at a time: MSB first, polynomial 0x04c11db7, no final inversion."""
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


@pytest.mark.parametrize("chunk", [0x10000, 7])
def test_qcrc_is_gdbs_crc_of_the_range_in_any_piece_size(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import gdbstub.session as session_module
    monkeypatch.setattr(session_module, "_SCAN_CHUNK", chunk)
    assert session_module.gdb_crc32(b"123456789") == 0x0376E6E7   # CRC-32/MPEG-2 check value
    session, vcpu = make()
    vcpu.ram[0x100:0x400] = bytes((index * 37 + 11) & 0xFF for index in range(0x300))
    for address, length in ((0x100, 0x300), (0x101, 0x2F), (0x200, 0), (0, 0x10000)):
        expected = _xcrc32_bitwise(bytes(vcpu.ram[address:address + length]))
        assert one(session, b"qCRC:%x,%x" % (address, length)) == b"C%08x" % expected
    assert one(session, b"qCRC:fff0,20") == b"E14"
    assert one(session, b"qCRC:100") == b"E22"
    assert one(session, b"qCRC:-1,4") == b"E22"


def test_qcrc_and_qsearch_see_the_original_words_under_breakpoints() -> None:
    session, vcpu = make(program=[NOP, NOP, 0x38600005, POWEROFF])
    address = vcpu.entry + 8
    before = one(session, b"qCRC:%x,10" % vcpu.entry)
    assert one(session, b"Z0,%x,4" % address) == b"OK"
    vcpu.ram[address:address + 4] = struct.pack(">I", 0x7FE00008)   # what a patching vCPU would hold
    vcpu.read_memory = lambda ea, n: bytes(vcpu.ram[ea:ea + n]).replace(
        b"\x7f\xe0\x00\x08", struct.pack(">I", 0x38600005))
    assert one(session, b"qCRC:%x,10" % vcpu.entry) == before
    assert one(session, b"qSearch:memory:%x;10;\x38\x60\x00\x05" % vcpu.entry) == b"1,%x" % address


@pytest.mark.parametrize("chunk", [0x10000, 16, 5])
def test_qsearch_memory_finds_the_first_match_inside_the_range(chunk: int,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import gdbstub.session as session_module
    monkeypatch.setattr(session_module, "_SCAN_CHUNK", chunk)
    session, vcpu = make()
    vcpu.ram[0x1000:0x1100] = bytes(0x100)
    vcpu.ram[0x1030:0x1034] = b"abcd"
    vcpu.ram[0x1080:0x1084] = b"abcd"
    assert one(session, b"qSearch:memory:1000;100;abcd") == b"1,1030"
    assert one(session, b"qSearch:memory:1031;100;abcd") == b"1,1080"
    assert one(session, b"qSearch:memory:1030;4;abcd") == b"1,1030"
    assert one(session, b"qSearch:memory:1030;3;abcd") == b"0"          # must fit in the range
    assert one(session, b"qSearch:memory:1081;ff;abcd") == b"0"
    assert one(session, b"qSearch:memory:1000;100;a") == b"1,1030"
    assert one(session, b"qSearch:memory:fff0;100;\x01") == b"E14"      # runs off RAM before a match
    assert one(session, b"qSearch:memory:1000;100") == b"E22"
    assert one(session, b"qSearch:memory:1000;;ab") == b"E22"
    assert one(session, b"qSearch:other:1000;100;ab") == b""


@pytest.mark.parametrize("packet", [b"m-10,4", b"m 1000,4", b"m0x1000,4", b"m10_00,4", b"m1000,+4", b"m,4",
                                    b"M1000,-1:00", b"Z0,-1000,4", b"p-1", b"P 1=00000000", b"X1000,,"])
def test_numbers_are_plain_hex_digits_or_the_packet_is_malformed(packet: bytes) -> None:
    session, _ = make()
    assert one(session, packet) == b"E22"


def _condition(code: bytes) -> bytes:
    return b";X%x,%s" % (len(code), code.hex().encode())


R3_IS_5 = bytes([0x26, 0, 3, 0x22, 5, 0x13, 0x27])          # reg 3; const8 5; equal; end


@pytest.mark.parametrize("z_type", [0, 1])
def test_a_false_condition_runs_past_the_breakpoint_and_a_true_one_stops(z_type: int) -> None:
    program = [NOP, NOP, NOP, POWEROFF]
    session, vcpu = make(program=program)
    assert b"ConditionalBreakpoints+" in one(session, GDB_FEATURES).split(b";")
    address = vcpu.entry + 4
    vcpu.regs["r3"] = 4
    assert one(session, b"Z%d,%x,4%s" % (z_type, address, _condition(R3_IS_5))) == b"OK"
    assert "(conditional)" in session.monitor("debug")
    assert resume(session, b"vCont;c").startswith(b"W")
    assert f"false conditions skipped in the stub: Z{z_type} {address:#x}: 1" in session.monitor("debug")
    session, vcpu = make(program=program)
    vcpu.regs["r3"] = 5
    assert one(session, b"Z%d,%x,4%s" % (z_type, address, _condition(R3_IS_5))) == b"OK"
    stop = resume(session, b"vCont;c")
    assert stop.startswith(b"T05") and (b"swbreak" if z_type == 0 else b"hwbreak") in stop, stop
    assert vcpu.regs["pc"] == address


def test_any_true_condition_stops_and_an_unevaluable_one_always_does() -> None:
    program = [NOP, NOP, NOP, POWEROFF]
    never = bytes([0x22, 0, 0x27])
    float_prefixed = bytes([0x01, 0x22, 0, 0x27])
    for conditions, stops in (([never], False), ([never, R3_IS_5], True), ([never, float_prefixed], True)):
        session, vcpu = make(program=program)
        vcpu.regs["r3"] = 5
        packet = b"Z0,%x,4" % (vcpu.entry + 8) + b"".join(_condition(code) for code in conditions)
        assert one(session, packet) == b"OK"
        assert resume(session, b"vCont;c").startswith(b"T05" if stops else b"W"), conditions


def test_resending_a_conditional_breakpoint_updates_it_in_place() -> None:
    program = [NOP, NOP, NOP, POWEROFF]
    session, vcpu = make(program=program)
    vcpu.regs["r3"] = 5
    address = vcpu.entry + 4
    never = bytes([0x22, 0, 0x27])
    assert one(session, b"Z0,%x,4%s" % (address, _condition(never))) == b"OK"
    assert one(session, b"Z0,%x,4%s" % (address, _condition(R3_IS_5))) == b"OK"   # gdb changed it
    assert one(session, b"Z0,%x,4" % address) == b"OK"                           # and dropped it
    assert one(session, b"z0,%x,4" % address) == b"OK"                           # one removal is enough
    assert resume(session, b"vCont;c").startswith(b"W")
    assert one(session, b"z0,%x,4" % address) == b"E22"


@pytest.mark.parametrize("option", [b";X3,2200", b";X2,22zz", b";Xq,22", b";X2"])
def test_a_malformed_condition_is_refused(option: bytes) -> None:
    session, vcpu = make()
    assert one(session, b"Z0,%x,4%s" % (vcpu.entry, option)) == b"E22"


@pytest.mark.parametrize("z_type", [0, 1])
def test_a_watchpoint_met_while_stepping_past_a_false_condition_is_reported(z_type: int) -> None:
    store = 0x90000000 | 0x2000                      # the fake core's "stw r0, 0x2000"
    session, vcpu = make(program=[NOP, store, NOP, POWEROFF])
    address = vcpu.entry + 4
    never = bytes([0x22, 0, 0x27])
    assert one(session, b"Z2,2000,4") == b"OK"
    assert one(session, b"Z%d,%x,4%s" % (z_type, address, _condition(never))) == b"OK"
    stop = resume(session, b"vCont;c")
    assert stop.startswith(b"T05") and b"watch:2000" in stop, stop
    assert vcpu.regs["pc"] == address
    # The breakpoint is back in place (and the watchpoint still armed) once the stop is reported.
    assert (address in vcpu.sw_table) if z_type == 0 else any(a == address for a, _k, _l in vcpu.hw)
    assert any(a == 0x2000 for a, _k, _l in vcpu.hw)


def test_monitor_reset_keeps_breakpoint_conditions() -> None:
    session, vcpu = make(program=[NOP, NOP, NOP, POWEROFF])
    vcpu.regs["r3"] = 4
    address = vcpu.entry + 4
    assert one(session, b"Z0,%x,4%s" % (address, _condition(R3_IS_5))) == b"OK"
    session.monitor("reset")
    vcpu.regs["r3"] = 4
    assert "(conditional)" in session.monitor("debug")
    assert resume(session, b"vCont;c").startswith(b"W")

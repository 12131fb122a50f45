"""gdbstub.protocol.commands: each packet parsed once into its typed command; what a malformed vFile
or vRun carries instead of raising; the packets left raw are those with nothing the stub reads."""

from __future__ import annotations

import pytest

from gdbstub.api import PointKind
from gdbstub.protocol.commands import (
    ExtendedModeRequest,
    HostIo,
    InsertPoint,
    KillRequest,
    MalformedPacketError,
    RawPacket,
    ReadMemory,
    RestartRequest,
    Run,
    StartNoAckRequest,
    VContQuery,
    parse,
)

NAME = "/tmp/image.elf"
HEX_NAME = NAME.encode().hex().encode()


@pytest.mark.parametrize(("payload", "command"), [
    (b"m1000,4", ReadMemory(0x1000, 4)),
    (b"vCont?", VContQuery()),
    (b"vKill;1", KillRequest(acknowledged=True)),
    (b"k", KillRequest()),
    (b"QStartNoAckMode", StartNoAckRequest()),
    (b"!", ExtendedModeRequest()),
    (b"R00", RestartRequest()),
    (b"vRun;" + HEX_NAME + b";61726731", Run(NAME)),
    (b"vRun;", Run(None)),
    (b"vRun;zz", Run(problem="a file name must be hex digits")),
    (b"vRun;" + b"a\0b".hex().encode(), Run(problem="a file name with a NUL byte")),
    (b"vFile:setfs:0", HostIo(b"setfs")),
    (b"vFile:open:" + HEX_NAME + b",0,1a4", HostIo(b"open", name=NAME, flags=0)),
    (b"vFile:open:zz,0,0", HostIo(b"open", problem="a file name must be hex digits")),
    (b"vFile:open:" + HEX_NAME, HostIo(b"open", problem="vFile:open needs name,flags,mode")),
    (b"vFile:pread:3,10,20", HostIo(b"pread", descriptor=3, count=0x10, offset=0x20)),
    (b"vFile:pread:3", HostIo(b"pread", descriptor=3, problem="vFile:pread needs fd,count,offset")),
    (b"vFile:close:3", HostIo(b"close", descriptor=3)),
    (b"vFile:unlink:" + HEX_NAME, HostIo(b"unlink")),
])
def test_packets_become_typed_commands(payload: bytes, command: object) -> None:
    assert parse(payload) == command


def test_a_bad_descriptor_is_carried_as_a_problem_not_raised() -> None:
    parsed = parse(b"vFile:close:xyz")
    assert isinstance(parsed, HostIo) and parsed.descriptor is None and parsed.problem


@pytest.mark.parametrize("payload", [b"qC", b"qfThreadInfo", b"qAttached:1", b"vMustReplyEmpty",
                                     b"QNonStop:1", b"vStopped", b"jThreadsInfo"])
def test_packets_with_nothing_to_read_stay_raw(payload: bytes) -> None:
    assert parse(payload) == RawPacket(payload)


def test_malformed_arguments_raise_once_in_the_parser() -> None:
    with pytest.raises(MalformedPacketError):
        parse(b"m1000")
    assert parse(b"Z1,2000,4") == InsertPoint(PointKind.HARDWARE, 0x2000, 4, None)

"""gdb's packets as typed commands: a payload is parsed once, here, into a small frozen dataclass that
the session's handler takes (:class:`ReadMemory` for ``m``, :class:`InsertPoint` for ``Z``, ...).

:func:`parse` raises :class:`MalformedPacketError` (the ``E22`` reply) for a payload whose syntax is
wrong, and returns :class:`RawPacket` for the packets with nothing the stub reads in them (``qC``,
``qfThreadInfo``, ``qAttached``, ``qOffsets``, ``vMustReplyEmpty``...) and for packets it does not know
(answered with the empty reply). Host I/O (``vFile``) and ``vRun`` carry what is malformed in them
instead of raising: the first answers in File-I/O terms, the second only in extended mode. What a packet
means for the target (does the register exist, may this thread be selected) is the session's business.
Parsing is pure: short payloads, which gdb repeats around every stop, are parsed once and remembered.

Imports: standard library and :mod:`gdbstub.api` (point kinds).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from gdbstub.api import PointKind

_HEX_DIGITS = b"0123456789abcdefABCDEF"
# Payloads up to this long are parsed once and remembered (a write's data is not).
_REMEMBERED_PAYLOAD_BYTES = 128


class MalformedPacketError(ValueError):
    """Malformed arguments: answered with E22."""


def hex_int(text: bytes) -> int:
    """A protocol number: plain hex digits, at most 64 bits."""
    # int() alone would also take a sign, "0x", "_" and blanks, none of which the protocol has.
    if not text or text.translate(None, _HEX_DIGITS):
        raise MalformedPacketError(f"not hex: {text[:32]!r}")
    # Every number of the protocol fits 64 bits; a wider one is refused before anything (a message,
    # a dictionary key) has to handle an integer of thousands of digits.
    if len(text) > 16 and len(text.lstrip(b"0")) > 16:
        raise MalformedPacketError(f"number wider than 64 bits: {text[:32]!r}...")
    return int(text, 16)


def address_length(text: bytes) -> tuple[int, int]:
    """``ADDR,LENGTH``."""
    address, sep, length = text.partition(b",")
    if not sep:
        raise MalformedPacketError("expected ADDR,LENGTH")
    return hex_int(address), hex_int(length)


@dataclass(frozen=True, slots=True)
class ThreadId:
    """``pP.T``, ``pP`` or ``T``: -1 means all, 0 any."""

    pid: int
    tid: int


def parse_thread_id(text: bytes) -> ThreadId:
    def number(part: bytes) -> int:
        return -1 if part == b"-1" else hex_int(part)
    if text.startswith(b"p"):
        pid_text, dot, tid_text = text[1:].partition(b".")
        return ThreadId(number(pid_text), number(tid_text) if dot else -1)
    return ThreadId(-1, number(text))


@dataclass(frozen=True, slots=True)
class RawPacket:
    """A packet without a typed command yet: the session reads ``payload`` itself."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ReadMemory:
    """``m addr,length``."""

    address: int
    length: int


@dataclass(frozen=True, slots=True)
class WriteMemory:
    """``M addr,length:hex`` and ``X addr,length:binary``, the data decoded."""

    address: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ReadRegisters:
    """``g``."""


@dataclass(frozen=True, slots=True)
class WriteRegisters:
    """``G hex``, the data decoded (split into registers by the target's register table)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ReadRegister:
    """``p n``."""

    regnum: int


@dataclass(frozen=True, slots=True)
class WriteRegister:
    """``P n=value``: the value's hex digits, decoded once the register's size is known."""

    regnum: int
    value: bytes


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """``c``/``s`` [addr] and ``C``/``S`` sig[;addr]: go on (or step) from ``address`` if given. The
    guest has no signals to deliver (as in QEMU): the number is checked and kept, never used."""

    step: bool
    signal: int | None = None
    address: int | None = None


@dataclass(frozen=True, slots=True)
class VContAction:
    """One ``vCont`` action: ``c``, ``C``, ``s``, ``S``, ``t`` or ``r`` (with its range)."""

    action: bytes
    thread: ThreadId | None
    step_range: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class VCont:
    """``vCont;action[:thread]...``."""

    actions: tuple[VContAction, ...]


@dataclass(frozen=True, slots=True)
class InsertPoint:
    """``Z type,addr,kind[;X len,expr...]``; ``conditions``: gdb's agent expressions, None if none."""

    kind: PointKind
    address: int
    size: int
    conditions: tuple[bytes, ...] | None


@dataclass(frozen=True, slots=True)
class RemovePoint:
    """``z type,addr,kind``."""

    kind: PointKind
    address: int
    size: int


@dataclass(frozen=True, slots=True)
class SetThread:
    """``Hg thread`` / ``Hc thread``."""

    operation: bytes
    thread: ThreadId


@dataclass(frozen=True, slots=True)
class ThreadAlive:
    """``T thread``."""

    thread: ThreadId


@dataclass(frozen=True, slots=True)
class StopStatus:
    """``?``."""


@dataclass(frozen=True, slots=True)
class DetachRequest:
    """``D`` or ``D;pid``."""

    pid: int | None


@dataclass(frozen=True, slots=True)
class KillRequest:
    """``k``, or ``vKill;pid`` (``acknowledged``: that one is answered ``OK`` first)."""

    acknowledged: bool = False


@dataclass(frozen=True, slots=True)
class Attach:
    """``vAttach;pid``."""

    pid: int


@dataclass(frozen=True, slots=True)
class Crc:
    """``qCRC:addr,length``."""

    address: int
    length: int


@dataclass(frozen=True, slots=True)
class SearchMemory:
    """``qSearch:memory:addr;length;pattern``."""

    address: int
    length: int
    pattern: bytes


@dataclass(frozen=True, slots=True)
class MonitorCommand:
    """``qRcmd,hex``: the command's text, decoded and stripped."""

    text: str


@dataclass(frozen=True, slots=True)
class Supported:
    """``qSupported[:feature;...]``: the features gdb offered."""

    features: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class ThreadExtraInfo:
    """``qThreadExtraInfo,thread``."""

    thread: ThreadId


@dataclass(frozen=True, slots=True)
class XferRead:
    """``qXfer:object:read:annex:offset,length``."""

    object: bytes
    annex: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class VContQuery:
    """``vCont?``."""


@dataclass(frozen=True, slots=True)
class StartNoAckRequest:
    """``QStartNoAckMode``."""


@dataclass(frozen=True, slots=True)
class ExtendedModeRequest:
    """``!``."""


@dataclass(frozen=True, slots=True)
class RestartRequest:
    """``R XX``."""


@dataclass(frozen=True, slots=True)
class Run:
    """``vRun;filename[;argument]...``: the file name decoded (None for an empty one; arguments are
    dropped: the guest has no command line). ``problem`` says what is malformed: it is an error only in
    extended mode (outside it ``vRun`` gets the empty reply whatever its syntax)."""

    name: str | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class HostIo:
    """``vFile:operation:arguments``. ``problem`` says what is malformed: host I/O answers that in
    File-I/O terms (``F-1,errno``), never with an E reply, so it is carried rather than raised; for
    pread a malformed tail still carries the descriptor (an unknown one is EBADF first)."""

    operation: bytes
    name: str | None = None
    flags: int = 0
    descriptor: int | None = None
    count: int = 0
    offset: int = 0
    problem: str | None = None


Command = (RawPacket | VContQuery | StartNoAckRequest | ExtendedModeRequest | RestartRequest | Run
           | HostIo | StopStatus | DetachRequest | KillRequest | Attach | ReadMemory | WriteMemory
           | ReadRegisters | WriteRegisters | ReadRegister | WriteRegister | ResumeRequest | VCont
           | InsertPoint | RemovePoint | SetThread | ThreadAlive | Crc | SearchMemory | MonitorCommand
           | Supported | ThreadExtraInfo | XferRead)


def _read_memory(payload: bytes) -> Command:
    return ReadMemory(*address_length(payload[1:]))


def _write_memory_hex(payload: bytes) -> Command:
    header, sep, hex_data = payload[1:].partition(b":")
    if not sep:
        raise MalformedPacketError("expected M addr,len:data")
    address, length = address_length(header)
    try:
        data = bytes.fromhex(hex_data.decode("ascii"))
    except ValueError:
        raise MalformedPacketError("bad hex data") from None
    if len(data) != length:
        raise MalformedPacketError("length mismatch")
    return WriteMemory(address, data)


def _write_memory_binary(payload: bytes) -> Command:
    header, sep, data = payload[1:].partition(b":")
    if not sep:
        raise MalformedPacketError("expected X addr,len:data")
    address, length = address_length(header)
    if len(data) != length:
        raise MalformedPacketError("length mismatch")
    return WriteMemory(address, data)


def _write_registers(payload: bytes) -> Command:
    try:
        return WriteRegisters(bytes.fromhex(payload[1:].decode("ascii")))
    except ValueError as error:
        raise MalformedPacketError(str(error)) from None


def _write_register(payload: bytes) -> Command:
    regnum, sep, value = payload[1:].partition(b"=")
    if not sep:
        raise MalformedPacketError("expected P n=value")
    return WriteRegister(hex_int(regnum), value)


def _resume(step: bool) -> Callable[[bytes], Command]:
    def parse(payload: bytes) -> Command:
        return ResumeRequest(step, None, hex_int(payload[1:]) if payload[1:] else None)
    return parse


def _resume_signal(step: bool) -> Callable[[bytes], Command]:
    def parse(payload: bytes) -> Command:
        signal, _, address = payload[1:].partition(b";")
        return ResumeRequest(step, hex_int(signal), hex_int(address) if address else None)
    return parse


def _vcont_actions(actions: bytes) -> VCont:
    parsed = []
    for action_text in actions.split(b";"):
        action, colon, thread_text = action_text.partition(b":")
        thread = parse_thread_id(thread_text) if colon else None
        kind = action[:1]
        step_range: tuple[int, int] | None = None
        if kind in (b"C", b"S"):
            hex_int(action[1:])
        elif kind == b"r":
            step_range = address_length(action[1:])
        elif action not in (b"c", b"s", b"t"):
            raise MalformedPacketError(f"bad vCont action {action!r}")
        parsed.append(VContAction(kind, thread, step_range))
    return VCont(tuple(parsed))


def _hex_name(text: bytes) -> str:
    try:
        return bytes.fromhex(text.decode("ascii")).decode("utf-8", "surrogateescape")
    except ValueError:
        raise MalformedPacketError("a file name must be hex digits") from None


def _run(payload: bytes) -> Command:
    try:
        name = _hex_name(payload[len(b"vRun;"):].split(b";", 1)[0])
    except MalformedPacketError as error:
        return Run(problem=str(error))
    if "\0" in name:
        return Run(problem="a file name with a NUL byte")
    return Run(name or None)


def _host_io(payload: bytes) -> Command:
    operation, _, arguments = payload[len(b"vFile:"):].partition(b":")
    fields = arguments.split(b",") if arguments else []
    try:
        if operation == b"open":
            if len(fields) != 3:
                raise MalformedPacketError("vFile:open needs name,flags,mode")
            return HostIo(operation, name=_hex_name(fields[0]), flags=hex_int(fields[1]))
        if operation in (b"pread", b"close", b"fstat"):
            if not fields:
                raise MalformedPacketError(f"vFile:{operation.decode()} needs a descriptor")
            descriptor = hex_int(fields[0])
            if operation != b"pread":
                return HostIo(operation, descriptor=descriptor)
            if len(fields) != 3:
                return HostIo(operation, descriptor=descriptor, problem="vFile:pread needs fd,count,offset")
            try:
                count, offset = hex_int(fields[1]), hex_int(fields[2])
            except MalformedPacketError as error:
                return HostIo(operation, descriptor=descriptor, problem=str(error))
            return HostIo(operation, descriptor=descriptor, count=count, offset=offset)
    except MalformedPacketError as error:
        return HostIo(operation, problem=str(error))
    return HostIo(operation)      # setfs, and the operations the stub does not offer


def _v_packet(payload: bytes) -> Command:
    if payload == b"vCont?":
        return VContQuery()
    if payload.startswith(b"vKill"):
        return KillRequest(acknowledged=True)
    if payload.startswith(b"vRun;"):
        return _run(payload)
    if payload.startswith(b"vFile:"):
        return _host_io(payload)
    if payload.startswith(b"vCont;"):
        return _vcont_actions(payload[6:])
    if payload.startswith(b"vAttach;"):
        return Attach(hex_int(payload[len(b"vAttach;"):]))
    return RawPacket(payload)


def _detach(payload: bytes) -> Command:
    if payload[1:2] == b";":
        return DetachRequest(hex_int(payload[2:]))
    if len(payload) > 1:
        raise MalformedPacketError("expected D or D;pid")
    return DetachRequest(None)


def z_conditions(payload: bytes) -> tuple[bytes, ...] | None:
    """The agent expressions of ``Z0/Z1,addr,kind;X len,expr;...`` (ConditionalBreakpoints), or None
    when the packet carries none. Options other than ``X`` (``cmds:``, never asked for) are skipped."""
    conditions = []
    for option in payload.split(b";")[1:]:
        if not option.startswith(b"X"):
            continue
        length_text, comma, hex_code = option[1:].partition(b",")
        length = hex_int(length_text)
        if not comma or len(hex_code) != 2 * length or hex_code.translate(None, _HEX_DIGITS):
            raise MalformedPacketError("condition must be X len,hex-bytes")
        conditions.append(bytes.fromhex(hex_code.decode("ascii")))
    return tuple(conditions) if conditions else None


def _point_args(payload: bytes) -> tuple[PointKind, int, int]:
    fields = payload[1:].split(b";", 1)[0].split(b",")
    if len(fields) != 3:
        raise MalformedPacketError("expected Ztype,addr,kind")
    z_type, address, size = (hex_int(field) for field in fields)
    if z_type > 4:
        raise MalformedPacketError("unknown Z type")
    if address >= 1 << 32 or size >= 1 << 32:
        raise MalformedPacketError("address or kind beyond 32 bits")
    return PointKind(z_type), address, size


def _insert_point(payload: bytes) -> Command:
    kind, address, size = _point_args(payload)
    return InsertPoint(kind, address, size, z_conditions(payload))


def _remove_point(payload: bytes) -> Command:
    return RemovePoint(*_point_args(payload))


def _set_thread(payload: bytes) -> Command:
    if payload[1:2] not in (b"g", b"c") or len(payload) < 3:
        raise MalformedPacketError("expected Hg/Hc tid")
    return SetThread(payload[1:2], parse_thread_id(payload[2:]))


def _crc(payload: bytes) -> Command:
    return Crc(*address_length(payload.partition(b":")[2]))


def _search(payload: bytes) -> Command:
    kind, _, arguments = payload[len(b"qSearch:"):].partition(b":")
    if kind != b"memory":
        return RawPacket(payload)
    fields = arguments.split(b";", 2)
    if len(fields) != 3 or not fields[2]:
        raise MalformedPacketError("qSearch:memory needs addr;length;pattern")
    return SearchMemory(hex_int(fields[0]), hex_int(fields[1]), fields[2])


def _monitor(payload: bytes) -> Command:
    hex_command = payload.partition(b",")[2]
    if not hex_command or len(hex_command) % 2:
        raise MalformedPacketError("qRcmd needs hex text")
    try:
        return MonitorCommand(bytes.fromhex(hex_command.decode("ascii")).decode("utf-8", "replace").strip())
    except ValueError:
        raise MalformedPacketError("qRcmd needs hex text") from None


def _xfer(payload: bytes) -> Command:
    fields = payload.split(b":")
    if len(fields) != 5 or fields[2] != b"read":
        return RawPacket(payload)
    return XferRead(fields[1], fields[3].decode("ascii", "replace"), *address_length(fields[4]))


_QUERY_PARSERS: dict[bytes, Callable[[bytes], Command]] = {
    b"qCRC": _crc, b"qSearch": _search, b"qRcmd": _monitor, b"qXfer": _xfer,
    b"qSupported": lambda payload: Supported(frozenset(payload.partition(b":")[2].split(b";"))),
    b"qThreadExtraInfo": lambda payload: ThreadExtraInfo(parse_thread_id(payload.partition(b",")[2])),
}


def query_name(payload: bytes) -> bytes:
    """A query's name: up to its first ``:`` or ``,``."""
    return payload.split(b":", 1)[0].split(b",", 1)[0]


def _query(payload: bytes) -> Command:
    parser = _QUERY_PARSERS.get(query_name(payload))
    return parser(payload) if parser is not None else RawPacket(payload)


_PARSERS: dict[bytes, Callable[[bytes], Command]] = {
    b"?": lambda _: StopStatus(), b"D": _detach, b"k": lambda _: KillRequest(),
    b"m": _read_memory, b"M": _write_memory_hex, b"X": _write_memory_binary,
    b"g": lambda _: ReadRegisters(), b"G": _write_registers,
    b"p": lambda payload: ReadRegister(hex_int(payload[1:])), b"P": _write_register,
    b"c": _resume(False), b"s": _resume(True), b"C": _resume_signal(False), b"S": _resume_signal(True),
    b"v": _v_packet, b"Z": _insert_point, b"z": _remove_point, b"H": _set_thread,
    b"T": lambda payload: ThreadAlive(parse_thread_id(payload[1:])), b"q": _query,
    b"Q": lambda payload: StartNoAckRequest() if payload == b"QStartNoAckMode" else RawPacket(payload),
    b"!": lambda _: ExtendedModeRequest(), b"R": lambda _: RestartRequest(),
}


@functools.lru_cache(maxsize=512)
def _parse_remembered(payload: bytes) -> Command:
    return _parse(payload)


def _parse(payload: bytes) -> Command:
    parser = _PARSERS.get(payload[:1])
    return parser(payload) if parser is not None else RawPacket(payload)


def parse(payload: bytes) -> Command:
    """The command ``payload`` asks for; MalformedPacketError if its arguments are malformed."""
    if len(payload) <= _REMEMBERED_PAYLOAD_BYTES:
        return _parse_remembered(payload)
    return _parse(payload)

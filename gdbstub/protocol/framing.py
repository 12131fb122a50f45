"""Sans-I/O framing of the GDB remote serial protocol.

Turns the raw byte stream from gdb into events (packets, Ctrl-C interrupts, acks, naks, bad checksums,
oversize packets) and turns reply payloads into ``$...#xx`` frames (notifications into ``%...#xx``).
It also produces the bytes the protocol itself owes the peer (``+``/``-`` acks in ack mode, the resend
of the last packet on a nak); the caller collects those with :meth:`Framer.take_outgoing`. No I/O
happens here.

Imports: standard library only.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

# Bytes that must be escaped inside a packet body ('}' followed by byte ^ 0x20).
ESCAPE_CHAR = 0x7D
_ESCAPE_XOR = 0x20
_NEEDS_ESCAPE = re.compile(rb"[$#}*]")
# Repeat-count bytes gdb forbids in run-length encoding ('#' and '$' would break framing).
_FORBIDDEN_RLE_COUNTS = frozenset((ord("#") - 29, ord("$") - 29))
_MAX_RLE_EXTRA = 126 - 29

INTERRUPT_BYTE = 0x03
DEFAULT_MAX_PACKET = 0x20000
# Frames decoded and replies framed are remembered (both are pure functions of their bytes): gdb sends
# the same short packets many times per stop, and a reply that leaves within a couple of microseconds
# reaches gdb before it goes to sleep waiting for it (measured here: 2 us of work per packet costs
# 5 us of round trip, 7 us costs 17 us). Bounded: the memos are emptied when they reach this size.
_MEMO_ENTRIES = 4096
_MEMO_FRAME_BYTES = 512


@dataclass(frozen=True, slots=True)
class Packet:
    """A complete, checksum-verified packet; ``payload`` is unescaped and run-length decoded."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A 0x03 byte outside any packet: gdb's Ctrl-C."""


@dataclass(frozen=True, slots=True)
class Ack:
    """A ``+`` from gdb."""


@dataclass(frozen=True, slots=True)
class Nak:
    """A ``-`` from gdb; the framer has already queued a resend of the last packet."""


@dataclass(frozen=True, slots=True)
class BadChecksum:
    """A packet whose checksum did not match; it was dropped (and naked in ack mode)."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class Oversize:
    """A packet longer than the framer's bound; its bytes were discarded without being buffered."""

    length: int


Event = Packet | Interrupt | Ack | Nak | BadChecksum | Oversize

_ACK_EVENT = Ack()
_NAK_EVENT = Nak()
_INTERRUPT_EVENT = Interrupt()


# Adler-32's low half is 1 + (sum of the bytes) mod 65521; a chunk of at most 256 bytes sums to at
# most 65280, so that half gives the exact byte sum at C speed (4-5x faster than sum() on a dump-sized
# reply, which gdb asks for dozens of times per `dump`). Up to one such chunk plain sum() is as fast.
_SUM_DIRECTLY_BYTES = 256
_ADLER_MODULUS = 65521


def checksum(data: bytes, low: int = 0, high: int = 255) -> int:
    """The RSP checksum: the sum of the bytes, modulo 256.

    ``low``/``high``: bounds the caller knows every byte lies within. A chunk of n such bytes sums to
    one of (high - low) * n + 1 values, so Adler-32's sum modulo 65521 pins it down for chunks of up to
    65520 // (high - low) bytes: 1213 for hex digits instead of 256 for any bytes.
    """
    size = len(data)
    if size <= _SUM_DIRECTLY_BYTES:
        return sum(data) & 0xFF
    chunk = (_ADLER_MODULUS - 1) // max(high - low, 1)   # 256 for any bytes
    view = memoryview(data)
    total = 0
    for start in range(0, size, chunk):
        piece = view[start:start + chunk]
        floor = low * len(piece)
        total += floor + ((zlib.adler32(piece) & 0xFFFF) - 1 - floor) % _ADLER_MODULUS
    return total & 0xFF


_HEX_LOW, _HEX_HIGH = ord("0"), ord("f")
# Run-length encoded hex adds '*' and count characters from ' ' (3 repeats) to '~' (97 repeats).
_RLE_HEX_LOW, _RLE_HEX_HIGH = ord(" "), ord("~")


class HexPayload(bytes):
    """A reply body made only of lowercase hex digits (an ``m`` reply): nothing in it needs escaping,
    and its checksum can be taken in larger chunks."""

    __slots__ = ()


def escape(payload: bytes) -> bytes:
    """Escape ``$ # } *`` so that any byte string can travel in a packet body."""
    # Four C-speed byte searches: the usual payload has none of them.
    if b"$" not in payload and b"#" not in payload and b"}" not in payload and b"*" not in payload:
        return payload
    return _NEEDS_ESCAPE.sub(lambda match: bytes((ESCAPE_CHAR, match.group()[0] ^ _ESCAPE_XOR)), payload)


# Runs worth run-length encoding: long runs of '0', as zeroed RAM gives in an `m` reply (a 64 KiB read
# of it shrinks from 128 KiB of hex to 4 KiB; gdb reads and checks every character of a reply, which is
# what bounds a dump). Shorter runs and other characters are left alone: finding them costs more than
# gdb saves (a regular expression over the body takes ~10x a plain frame).
_MIN_RUN = 32
_RUN_PROBE = b"0" * _MIN_RUN
_ZEROS = re.compile(b"0+")


@functools.lru_cache(maxsize=1024)
def _encode_run(length: int) -> bytes:
    """``length`` zeros as ``0*n`` groups (each a '0' plus up to 97 repeats)."""
    full, rest = divmod(length, _MAX_RLE_EXTRA + 1)
    out = b"0*" + bytes((_MAX_RLE_EXTRA + 29,))
    out *= full
    if rest:
        extra = rest - 1
        if extra in _FORBIDDEN_RLE_COUNTS:          # a count byte would read as '#' or '$'
            out += b"0" * (extra - 5)
            extra = 5
        out += b"0" * rest if extra < 3 else b"0*" + bytes((extra + 29,))
    return out


def run_length_encode(body: bytes) -> bytes:
    """Compress the long runs of '0' of an escaped body with gdb's ``X*n`` encoding."""
    start = body.find(_RUN_PROBE)
    if start < 0:
        return body
    pieces: list[bytes] = []
    position = 0
    while start >= 0:
        end = _ZEROS.match(body, start).end()      # type: ignore[union-attr]  # body[start] is '0'
        pieces += (body[position:start], _encode_run(end - start))
        position = end
        start = body.find(_RUN_PROBE, end)
    pieces.append(body[position:])
    return b"".join(pieces)


def decode_body(body: bytes) -> bytes:
    """Undo ``}`` escapes and ``*`` run-length encoding of a raw packet body."""
    if b"}" not in body and b"*" not in body:
        return body
    out = bytearray()
    index = 0
    length = len(body)
    while index < length:
        byte = body[index]
        if byte == ESCAPE_CHAR and index + 1 < length:
            out.append(body[index + 1] ^ _ESCAPE_XOR)
            index += 2
        elif byte == 0x2A and out and index + 1 < length:  # '*': repeat the previous byte
            out += bytes((out[-1],)) * (body[index + 1] - 29)
            index += 2
        else:
            out.append(byte)
            index += 1
    return bytes(out)


def frame(payload: bytes, *, rle: bool = False) -> bytes:
    """Build ``$body#xx`` from a reply payload (escaped, optionally run-length encoded)."""
    if type(payload) is HexPayload:
        body: bytes = payload
        low, high = _HEX_LOW, _HEX_HIGH
    else:
        body = escape(payload)
        low, high = 0, 255
    if rle:
        encoded = run_length_encode(body)
        if len(encoded) != len(body) and high != 255:
            low, high = _RLE_HEX_LOW, _RLE_HEX_HIGH
        body = encoded
    return b"$" + body + b"#%02x" % checksum(body, low, high)


def frame_notification(payload: bytes) -> bytes:
    """Build ``%body#xx``: a notification (non-stop mode's ``Stop:...``), which gdb never acknowledges;
    the checksum covers the body as in a packet."""
    body = escape(payload)
    return b"%" + body + b"#%02x" % checksum(body)


class Framer:
    """Stateful decoder for one connection plus the protocol-level bytes it owes the peer."""

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET, *, rle: bool = False) -> None:
        self.max_packet = max_packet
        self.no_ack = False
        self.rle = rle
        self._buffer = bytearray()
        self._in_packet = False
        self._skipping = 0          # bytes of an oversize packet discarded so far (0 = not skipping)
        self._skip_tail = -1        # checksum bytes still to discard after an oversize packet's '#'
        self._outgoing = bytearray()
        self._last_sent = b""
        self._framed: dict[bytes, bytes] = {}       # reply payload -> frame
        self._lone_packets: dict[bytes, Packet] = {}  # received bytes that were exactly one packet

    def encode(self, payload: bytes) -> bytes:
        """Frame one reply and remember it for a resend on a nak."""
        framed = self._framed.get(payload)
        if framed is None:
            framed = frame(payload, rle=self.rle)
            if len(framed) <= _MEMO_FRAME_BYTES:
                if len(self._framed) >= _MEMO_ENTRIES:
                    self._framed.clear()
                self._framed[payload] = framed
        self._last_sent = framed
        return framed

    def take_outgoing(self) -> bytes:
        """Bytes the protocol owes the peer (acks, naks, resends) since the last call."""
        if not self._outgoing:
            return b""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def feed(self, data: bytes) -> list[Event]:
        if self.no_ack and not self._in_packet and not self._skipping and self._skip_tail < 0:
            packet = self._lone_packets.get(data) or self._lone_packet(data)
            if packet is not None:
                return [packet]
        events: list[Event] = []
        position = 0
        length = len(data)
        while position < length:
            if self._skip_tail >= 0:
                take = min(self._skip_tail, length - position)
                position += take
                self._skip_tail -= take
                if self._skip_tail == 0:
                    self._skip_tail = -1
                    events.append(Oversize(self._skipping))
                    self._skipping = 0
                    if not self.no_ack:
                        # Acked so gdb does not resend forever; the caller answers with an error.
                        self._outgoing += b"+"
                continue
            if self._skipping:
                hash_at = data.find(b"#", position)
                if hash_at < 0:
                    self._skipping += length - position
                    return events
                self._skipping += hash_at - position
                position = hash_at + 1
                self._skip_tail = 2
                continue
            if self._in_packet:
                position = self._continue_packet(data, position, events)
                continue
            byte = data[position]
            if byte == 0x24:  # '$'
                self._in_packet = True
                self._buffer.clear()
                position += 1
            elif byte == 0x2B:  # '+'
                events.append(_ACK_EVENT)
                position += 1
            elif byte == 0x2D:  # '-'
                events.append(_NAK_EVENT)
                if not self.no_ack and self._last_sent:
                    self._outgoing += self._last_sent
                position += 1
            elif byte == INTERRUPT_BYTE:
                events.append(_INTERRUPT_EVENT)
                position += 1
            else:
                # Garbage between packets: skip to the next byte that means something.
                position += 1
        return events

    def _lone_packet(self, data: bytes) -> Packet | None:
        """``data`` decoded if it is exactly one well-formed packet (what gdb sends in no-ack mode),
        else None and :meth:`feed` takes the general path. Same result as that path, found faster."""
        hash_at = len(data) - 3
        if (hash_at < 1 or data[0] != 0x24 or data.find(b"#") != hash_at or len(data) > _MEMO_FRAME_BYTES
                or hash_at > self.max_packet + 1 or data[-2:] != b"%02x" % checksum(data[1:hash_at])):
            return None
        packet = Packet(decode_body(data[1:hash_at]))
        if len(self._lone_packets) >= _MEMO_ENTRIES:
            self._lone_packets.clear()
        self._lone_packets[data] = packet
        return packet

    def _continue_packet(self, data: bytes, position: int, events: list[Event]) -> int:
        """Consume bytes of the packet being received; returns the new position in ``data``."""
        buffer = self._buffer
        hash_at = buffer.find(b"#")
        if hash_at < 0:
            found = data.find(b"#", position)
            end = len(data) if found < 0 else found + 1
            if len(buffer) + (end - position) > self.max_packet + 1:
                # Bounded memory: drop what we have and discard the rest of this packet.
                # The length of the body alone (without the '#'), however the packet was split.
                self._skipping = len(buffer) + (end - position) - (found >= 0)
                self._in_packet = False
                buffer.clear()
                if found < 0:
                    return len(data)
                self._skip_tail = 2
                return end
            buffer += data[position:end]
            position = end
            if found < 0:
                return position
            hash_at = len(buffer) - 1
        need = hash_at + 3 - len(buffer)
        if need > 0:
            take = data[position:position + need]
            buffer += take
            position += len(take)
            if len(buffer) < hash_at + 3:
                return position
        body = bytes(buffer[:hash_at])
        received = bytes(buffer[hash_at + 1:hash_at + 3])
        self._in_packet = False
        buffer.clear()
        # Two hex digits exactly: int() alone would also take "+1", " 1" or "-0".
        expected = -1 if received.translate(None, b"0123456789abcdefABCDEF") else int(received, 16)
        if expected != checksum(body):
            events.append(BadChecksum(body))
            if not self.no_ack:
                self._outgoing += b"-"
            return position
        if not self.no_ack:
            self._outgoing += b"+"
        events.append(Packet(decode_body(body)))
        return position

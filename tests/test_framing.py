"""Sans-I/O framing: split/merged packets, escapes, RLE, Ctrl-C, checksums, oversize, ack and no-ack."""

from __future__ import annotations

import random

import hypothesis
from hypothesis import strategies as st

from gdbstub.protocol.framing import (
    Ack,
    BadChecksum,
    Framer,
    HexPayload,
    Interrupt,
    Nak,
    Oversize,
    Packet,
    checksum,
    decode_body,
    escape,
    frame,
)


def wire(payload: bytes) -> bytes:
    return frame(payload)


def test_frame_checksum_lowercase_hex() -> None:
    assert frame(b"OK") == b"$OK#9a"
    assert checksum(b"OK") == 0x9A


def test_split_across_every_byte_boundary() -> None:
    data = wire(b"m1000,4") + wire(b"g")
    for cut in range(1, len(data)):
        framer = Framer()
        events = framer.feed(data[:cut]) + framer.feed(data[cut:])
        assert events == [Packet(b"m1000,4"), Packet(b"g")]
        assert framer.take_outgoing() == b"++"


def test_several_packets_acks_and_garbage_in_one_read() -> None:
    framer = Framer()
    events = framer.feed(b"junk+" + wire(b"?") + b"\r\n" + wire(b"qC") + b"-")
    assert events == [Ack(), Packet(b"?"), Packet(b"qC"), Nak()]


def test_interrupt_outside_packet_but_data_inside() -> None:
    framer = Framer()
    binary = b"X100,1:\x03"
    assert framer.feed(b"\x03" + wire(binary) + b"\x03") == [Interrupt(), Packet(binary), Interrupt()]


def test_escapes_round_trip() -> None:
    payload = bytes(range(256))
    framer = Framer()
    assert framer.feed(frame(payload)) == [Packet(payload)]


def test_run_length_decode_and_encode() -> None:
    assert decode_body(b"0* ") == b"0000"
    for char in (b"0", b"f", b"a"):
        for length in range(1, 400):
            for before, after in ((b"", b""), (b"a0", b"1"), (b"f", b"0f"), (b"}", b"*")):
                payload = before + char * length + after
                encoded = frame(payload, rle=True)
                assert b"$" not in encoded[1:-3] and b"#" not in encoded[1:-3]
                assert Framer().feed(encoded) == [Packet(payload)]
                # Long runs of zeroed RAM shrink; nothing else is worth the search.
                run = length + before.endswith(char) + after.startswith(char)
                assert (len(encoded) < len(payload) + 4) == (char == b"0" and run >= 32)
    assert len(frame(b"0" * 100, rle=True)) < 20


@hypothesis.given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"0", b"f", b"00", b"ff"]),
                                     st.integers(1, 300).map(lambda n: b"0" * n),
                                     st.integers(1, 300).map(lambda n: b"f" * n)), max_size=12))
@hypothesis.settings(max_examples=1000, deadline=None)
def test_run_length_encoded_frames_decode_to_the_payload(pieces: list[bytes]) -> None:
    payload = b"".join(pieces)
    assert Framer().feed(frame(payload, rle=True)) == [Packet(payload)]


def test_bad_checksum_naks_and_drops() -> None:
    framer = Framer()
    assert framer.feed(b"$g#00") == [BadChecksum(b"g")]
    assert framer.take_outgoing() == b"-"
    assert framer.feed(b"$g#zz") == [BadChecksum(b"g")]
    # Only two hex digits are a checksum; int() alone would read these as 0.
    for almost in (b"$#-0", b"$#+0", b"$# 0"):
        assert framer.feed(almost) == [BadChecksum(b"")]


def test_nak_resends_last_packet() -> None:
    framer = Framer()
    sent = framer.encode(b"T05")
    assert framer.feed(b"-") == [Nak()]
    assert framer.take_outgoing() == sent


def test_no_ack_mode_sends_no_acks_and_no_resend() -> None:
    framer = Framer()
    framer.no_ack = True
    framer.encode(b"OK")
    assert framer.feed(wire(b"g") + b"$g#00-") == [Packet(b"g"), BadChecksum(b"g"), Nak()]
    assert framer.take_outgoing() == b""


def test_oversize_packet_is_bounded_and_reported() -> None:
    framer = Framer(max_packet=64)
    big = wire(b"M0,100:" + b"00" * 500)
    events = []
    for start in range(0, len(big), 7):
        events += framer.feed(big[start:start + 7])
        assert len(framer._buffer) <= 64 + 3
    events += framer.feed(wire(b"g"))
    assert isinstance(events[0], Oversize) and events[0].length > 64
    assert events[1:] == [Packet(b"g")]


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.binary(max_size=2000))
def test_checksum_and_escape_match_their_definitions(data: bytes) -> None:
    # checksum() takes a chunked Adler-32 shortcut above 256 bytes and escape() byte searches;
    # both must agree with the plain definitions on any bytes.
    assert checksum(data) == sum(data) & 0xFF
    escaped = escape(data)
    assert not any(byte in b"$#*" for byte in escaped)
    assert decode_body(escaped) == data


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 12000), st.randoms())
def test_bounded_checksum_matches_the_definition(low: int, high: int, size: int, rng: random.Random) -> None:
    # Bytes known to lie in [low, high] are summed in chunks of up to 65520 // (high - low) bytes;
    # the extremes (all low, all high) are where a chunk's sum is furthest from its Adler-32 residue.
    low, high = min(low, high), max(low, high)
    mixed = bytes(rng.randint(low, high) for _ in range(size))
    for data in (bytes([low]) * size, bytes([high]) * size, mixed):
        assert checksum(data, low, high) == sum(data) & 0xFF


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(st.binary(max_size=20000), st.booleans())
def test_hex_reply_frames_like_plain_bytes(data: bytes, rle: bool) -> None:
    # m and g replies are marked as hex so the framer skips escaping and sums in larger chunks: the
    # frame must be byte for byte what an unmarked reply gets, zero runs (RLE) included.
    body = data.hex()
    assert frame(HexPayload(body, "ascii"), rle=rle) == frame(body.encode(), rle=rle)
    padded = "0" * (len(body) % 300) + body + "0" * 97
    assert frame(HexPayload(padded, "ascii"), rle=True) == frame(padded.encode(), rle=True)


def _byte_by_byte(data: bytes, max_packet: int) -> list[object]:
    framer = Framer(max_packet=max_packet)
    framer.no_ack = True
    return [event for index in range(len(data)) for event in framer.feed(data[index:index + 1])]


_FRAME_LIKE = st.one_of(
    st.binary(max_size=600).map(frame),
    st.binary(max_size=40).map(lambda body: b"$" + body + b"#%02X" % checksum(body)),   # upper-case sum
    st.tuples(st.binary(max_size=40), st.binary(min_size=2, max_size=2))
    .map(lambda t: b"$" + t[0] + b"#" + t[1]),                                           # any two sum bytes
    st.tuples(st.binary(max_size=40), st.binary(max_size=8)).map(lambda t: frame(t[0]) + t[1]),
    st.binary(max_size=60),
)


@hypothesis.given(_FRAME_LIKE, st.sampled_from([16, 64, 0x20000]))
@hypothesis.settings(max_examples=3000, deadline=None)
def test_whole_chunks_decode_as_byte_by_byte_does(data: bytes, max_packet: int) -> None:
    """A chunk that is exactly one packet takes a shortcut (and is remembered): same events, every time."""
    framer = Framer(max_packet=max_packet)
    framer.no_ack = True
    assert framer.feed(data) + framer.feed(data) == _byte_by_byte(data + data, max_packet)
    assert framer.take_outgoing() == b""


def test_remembered_frames_stay_exact_for_resends() -> None:
    framer = Framer()
    first = framer.encode(b"38630990")
    framer.encode(b"OK")
    assert framer.encode(b"38630990") == first == frame(b"38630990")
    assert framer.feed(b"-") == [Nak()] and framer.take_outgoing() == first

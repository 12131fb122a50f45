"""Hypothesis fuzzing of framing plus command parsing.

Random byte streams go through the framer; random (mostly malformed) packets go through framer and
session. Packets are counted so the run covers at least 100k inputs. Afterwards the session must still
answer ``?`` and the fake guest must be exactly as before (no read-only or malformed command may change
it, and no exception may escape).
"""

from __future__ import annotations

import random

from fakes import FakeVcpu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdbstub.protocol.framing import Framer, Packet, frame
from gdbstub.session import Session
from gdbstub.target import Target

EXAMPLES = 2000
SEEDED_PER_EXAMPLE = 50     # with 5-15 structured packets: ~120k inputs, clear of MIN_INPUTS
MIN_INPUTS = 100_000

# Commands that only read, plus mutating ones whose argument alphabet below can never be well formed
# (M/X need ',' and ':', P needs '=', Z/z need two ',', G needs 584 hex digits).
_READ_ONLY = [b"?", b"g", b"p", b"m", b"qXfer:features:read:", b"qXfer:memory-map:read:",
              b"qXfer:threads:read:", b"qRcmd,", b"qThreadExtraInfo,", b"qSupported:", b"qC", b"qfThreadInfo",
              b"qsThreadInfo", b"qAttached", b"qOffsets", b"qTStatus", b"qSymbol:", b"H", b"T", b"vCont?",
              b"vMustReplyEmpty", b"q", b"Q", b"v", b"", b"x", b"\xff", b"qCRC:", b"qSearch:memory:"]
_MALFORMED_MUTATORS = [b"M", b"X", b"P", b"Z", b"z", b"G"]
_ARGUMENT = (st.binary(max_size=24)
             | st.text(alphabet="0123456789abcdefABCDEFgp.-;", max_size=24).map(str.encode))
_SAFE_ARGUMENT = st.text(alphabet="0123456789abcdefxyz.-;", max_size=24).map(str.encode)
# Leading bytes that would resume, detach, kill or write: only ever sent in malformed form.
_DANGEROUS = (b"c", b"C", b"s", b"S", b"D", b"k", b"M", b"X", b"P", b"G", b"Z", b"z", b"vCont;", b"vKill",
              b"R", b"vRun", b"vAttach")
_PACKET = st.one_of(
    st.tuples(st.sampled_from(_READ_ONLY), _ARGUMENT).map(lambda t: t[0] + t[1])
    .filter(lambda packet: not packet.startswith(_DANGEROUS)),
    st.tuples(st.sampled_from(_MALFORMED_MUTATORS), _SAFE_ARGUMENT).map(lambda t: t[0] + t[1]),
    st.sampled_from([b"m0,4", b"p40", b"g", b"qXfer:features:read:target.xml:0,ffb", b"m20000,4", b"m0,0",
                     b"qRcmd," + b"help".hex().encode(), b"qRcmd," + b"regs".hex().encode(),
                     b"Hgp1.1", b"Hc-1", b"Tp1.1"]),
)



def seeded_packets(seed: int, count: int) -> list[bytes]:
    """Cheap extra inputs from the same grammar, driven by a hypothesis-chosen seed."""
    rng = random.Random(seed)
    packets = []
    for _ in range(count):
        if rng.random() < 0.7:
            packet = rng.choice(_READ_ONLY) + rng.randbytes(rng.randrange(24))
            if packet.startswith(_DANGEROUS):
                continue
        else:
            packet = rng.choice(_MALFORMED_MUTATORS) + "".join(
                rng.choice("0123456789abcdefxyz.-;") for _ in range(rng.randrange(24))).encode()
        packets.append(packet)
    return packets


counted = {"packets": 0, "chunks": 0}
vcpu = FakeVcpu()
session = Session(Target(vcpu, "e500v2"))
framer = Framer(max_packet=256)
before = vcpu.snapshot()
debug_calls = len(vcpu.guest_debug_calls)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(structured=st.lists(_PACKET, min_size=5, max_size=15), seed=st.integers(0, 2**32),
       noise=st.lists(st.binary(max_size=48), max_size=4), cut=st.integers(min_value=1, max_value=97))
def test_fuzz_framing_and_commands(structured: list[bytes], seed: int, noise: list[bytes], cut: int) -> None:
    packets = structured + seeded_packets(seed, SEEDED_PER_EXAMPLE)
    for chunk in noise:
        counted["chunks"] += 1
        framer.feed(chunk)
        assert len(framer._buffer) <= framer.max_packet + 3
    # A clean frame boundary after the noise: finish any half-open packet with a bogus checksum.
    framer.feed(b"#00")
    stream = b"".join(frame(packet) for packet in packets)
    received: list[bytes] = []
    for start in range(0, len(stream), cut):
        for event in framer.feed(stream[start:start + cut]):
            if isinstance(event, Packet):
                received.append(event.payload)
    oversize = [p for p in packets if len(frame(p)) > framer.max_packet]
    assert len(received) + len(oversize) >= len(packets) - 1
    for payload in received:
        counted["packets"] += 1
        for reply in session.handle(payload):
            assert isinstance(reply, bytes)
    framer.take_outgoing()


def test_zz_session_still_answers_and_guest_unchanged() -> None:
    assert counted["packets"] + counted["chunks"] >= MIN_INPUTS, counted
    print(f"fuzz: {counted['packets']} packets and {counted['chunks']} raw chunks "
          "through framing and commands")
    assert session.handle(b"?")[0].startswith(b"T05")
    assert vcpu.snapshot() == before
    assert len(vcpu.guest_debug_calls) == debug_calls
    assert session.target.breakpoints.software == {} and session.target.breakpoints.hardware == []

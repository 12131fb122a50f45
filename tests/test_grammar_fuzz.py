"""Grammar fuzzing of the whole stub: every packet kind it parses, arguments at the edges, wire
encodings good and bad, interleaved with valid steps, against the real vCPU running the loop guest.

In process (fast enough for 100k packets in CI), the harness plays the server's part exactly as
``gdbstub.server`` does (framer events in, replies and resumes out) and asserts, packet by packet:
no internal error (no ``E01``, nothing logged as a stub bug), exactly one reply per well-formed packet
(``R`` and ``k`` excepted, which have none), a NAK and no reply for a bad checksum, ``E22`` for a packet
over PacketSize, and registers and memory unchanged by every packet that only reads or was refused.
Over TCP, a shorter run against the real ``e500-gdbstub`` process checks that it lives through the same
grammar with no traceback on stderr.

A larger run by hand: ``E500_FUZZ_PACKETS=2000000 E500_FUZZ_SEED=7 .venv/bin/python -m pytest
tests/test_grammar_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import zlib
from collections import Counter

import gdb_driver
import pytest
from support.packet_grammar import CONTROL, READ, RESUME, WRITE, Generated, PacketGrammar

from emulator.board import Machine
from emulator.kvm import Vcpu
from gdbstub.protocol.framing import BadChecksum, Framer, Oversize, Packet, frame
from gdbstub.session import Detach, Kill, Resume, Session, StartNoAck
from gdbstub.target import Target

LOOP = gdb_driver.guest_path("loop", "e500v2")
PACKETS = int(os.environ.get("E500_FUZZ_PACKETS", "100000"))
SEED = int(os.environ.get("E500_FUZZ_SEED", "20261203"))
MAX_PACKET = 4096
RAM_SIZE = 32 << 20
# RAM the grammar's in-RAM addresses reach (its addresses plus up to 16 KiB of length), compared after
# every packet; the whole of RAM is compared around batches that draw only read-side packets.
_HOT_RANGES = [(0, 0x10000), (0xF0000, 0x120000), (RAM_SIZE - 0x10000, RAM_SIZE)]
_READ_ONLY_BATCH = 2000
_STEP_BUDGET = 300      # instructions per slice of a fuzzed resume; the loop guest never stops by itself
_STEP_SLICES = 2


class Harness:
    """One gdb connection's framer and session over one vCPU, driven as the server drives them."""

    def __init__(self) -> None:
        self.machine = Machine("e500v2", ram_size=RAM_SIZE, uart_out=lambda data: None)
        self.machine.load_elf(str(LOOP))
        self.vcpu = Vcpu(self.machine)
        self.target = Target(self.vcpu, "e500v2")
        self.register_names = self.vcpu.register_names()
        self.connect()

    def connect(self) -> None:
        """A new gdb connection (after a detach or kill), as the server makes one."""
        self.session = Session(self.target)
        self.framer = Framer(max_packet=MAX_PACKET)

    def registers(self) -> list[int]:
        return self.vcpu.get_regs(self.register_names)

    def hot_ram(self) -> int:
        ram = self.machine.bus.ram
        crc = 0
        for start, end in _HOT_RANGES:
            crc = zlib.crc32(ram[start:end], crc)
        return crc

    def all_ram(self) -> int:
        return zlib.crc32(self.machine.bus.ram[:])

    def exchange(self, wire: bytes) -> tuple[list[bytes], list[object]]:
        """Feed ``wire``; returns (final replies per well-formed packet, other framer events)."""
        events = self.framer.feed(wire)
        replies: list[bytes] = []
        others: list[object] = []
        for event in events:
            if isinstance(event, Packet):
                replies += self.answer(event.payload)
            elif isinstance(event, Oversize):
                replies.append(b"E22")        # what the server sends for an oversize packet
                others.append(event)
            else:
                others.append(event)
        return replies, others

    def answer(self, payload: bytes) -> list[bytes]:
        replies: list[bytes] = []
        results = self.session.handle(payload)
        if payload.startswith(b"qRcmd,") and results and results[-1] == b"OK":
            results = results[-1:]     # console output packets before the final OK
        for result in results:
            if isinstance(result, bytes):
                replies.append(result)
            elif isinstance(result, Resume):
                replies.append(self.resume(result))
            elif isinstance(result, StartNoAck):
                self.framer.no_ack = True
            elif isinstance(result, Detach | Kill):
                if isinstance(result, Kill):
                    self.target.reset()       # the server resets the guest when gdb kills it
                self.connect()
        return replies

    def resume(self, action: Resume) -> bytes:
        refused = self.session.begin_resume(action)
        if refused is not None:
            return refused
        for _ in range(_STEP_SLICES):
            reply = self.session.run_slice(_STEP_BUDGET)
            if reply is not None:
                return reply
        return self.session.interrupt() or b""


def _changes_allowed(generated: Generated, replies: list[bytes]) -> bool:
    """May this packet have changed registers or memory? Only an accepted write, a resume or a control
    packet; a refused or unsupported write (an error or empty reply) must have changed nothing."""
    if generated.category in (RESUME, CONTROL):
        return True
    if generated.category == WRITE:
        return any(reply == b"OK" for reply in replies)
    return False


def _expected_reply_count(payload: bytes, extended: bool) -> int | None:
    if payload[:1] == b"R" or (payload[:1] == b"k" and extended):
        return 0
    if payload[:1] == b"k":
        return None         # outside extended mode the connection ends (the server sends nothing)
    return 1


def test_grammar_fuzz_in_process(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gdbstub")
    harness = Harness()
    grammar = PacketGrammar(SEED, register_count=len(harness.target.registers.by_regnum),
                            g_hex_digits=len(harness.session.handle(b"g")[0]))
    registers, hot = harness.registers(), harness.hot_ram()
    seen: Counter[str] = Counter()
    verified_read_only_batches = 0
    sent = 0
    while sent < PACKETS:
        read_only_batch = (sent // _READ_ONLY_BATCH) % 5 == 4
        whole_ram = harness.all_ram() if read_only_batch else None
        for _ in range(_READ_ONLY_BATCH):
            generated = grammar.packet()
            while read_only_batch and generated.category != READ:
                generated = grammar.packet()
            wire, how = grammar.wire(generated.payload, MAX_PACKET)
            extended = harness.session.extended
            no_ack = harness.framer.no_ack
            replies, others = harness.exchange(wire)
            outgoing = harness.framer.take_outgoing()
            sent += 1
            seen[how] += 1
            seen[generated.category] += 1
            context = f"packet {sent} {generated.payload[:80]!r} ({how}) -> {[r[:60] for r in replies]}"
            assert b"E01" not in replies, context
            assert not caplog.records, f"{context}: {caplog.records[0].getMessage()}"
            if how == "bad-checksum":
                assert replies == [] and (no_ack or outgoing == b"-"), context
                continue
            if how == "oversize":
                assert replies == [b"E22"] and any(isinstance(e, Oversize) for e in others), context
                continue
            assert not any(isinstance(e, BadChecksum) for e in others), context
            expected = _expected_reply_count(generated.payload, extended)
            if expected is not None:
                assert len(replies) == expected, context
            if _changes_allowed(generated, replies):
                registers, hot = harness.registers(), harness.hot_ram()
                continue
            assert harness.registers() == registers, f"{context}: registers changed"
            assert harness.hot_ram() == hot, f"{context}: memory changed"
        if whole_ram is not None:
            assert harness.all_ram() == whole_ram, "a batch of read-side packets changed RAM"
            verified_read_only_batches += 1
    print(f"grammar fuzz: {sent} packets, seed {SEED}: {dict(seen)}")
    # The grammar reached every category and encoding, and the session still works afterwards.
    assert all(seen[name] for name in (READ, WRITE, RESUME, CONTROL, "plain", "rle", "bad-checksum",
                                       "oversize"))
    assert verified_read_only_batches >= 1
    harness.framer.no_ack = False
    assert harness.exchange(frame(b"?"))[0][0][:1] in (b"T", b"S", b"W", b"X")
    assert harness.exchange(frame(b"m100000,4"))[0][0] not in (b"", b"E01")


# -- over TCP, against the real process -------------------------------------------------------------

_TCP_PACKETS = 4000


def _read_reply(sock: socket.socket, buffer: bytearray, deadline: float) -> bytes | None:
    """The next ``$...#xx`` from the stub (acks skipped), or None if nothing came before ``deadline``."""
    while True:
        start = buffer.find(b"$")
        if start >= 0:
            end = buffer.find(b"#", start)
            if end >= 0 and len(buffer) >= end + 3:
                body = bytes(buffer[start + 1:end])
                del buffer[:end + 3]
                return body
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except OSError:        # a timeout, or the stub reset a connection it ended (k)
            return None
        if not data:
            return None
        buffer += data


def test_grammar_fuzz_over_tcp_keeps_the_server_alive() -> None:
    with gdb_driver.start_stub(LOOP) as server:
        grammar = PacketGrammar(SEED + 1, register_count=200, g_hex_digits=1000)
        sock = socket.create_connection(("127.0.0.1", server.port))
        buffer = bytearray()
        answered = connections = 0
        for _ in range(_TCP_PACKETS):
            generated = grammar.packet()
            if generated.payload == b"QStartNoAckMode":
                continue            # the client below always acks
            wire, how = grammar.wire(generated.payload, 4096)
            try:
                sock.sendall(wire)
            except OSError:          # the stub ended the connection at an earlier packet
                sock.close()
                sock = socket.create_connection(("127.0.0.1", server.port))
                buffer.clear()
                connections += 1
                continue
            if how == "bad-checksum" or generated.payload[:1] in (b"R", b"k"):
                continue
            if generated.category == RESUME:
                with contextlib.suppress(OSError):
                    sock.sendall(b"\x03")      # the loop guest never stops by itself
            asked = time.monotonic()
            reply = _read_reply(sock, buffer, asked + 10)
            if os.environ.get("E500_FUZZ_TRACE") and time.monotonic() - asked > 0.5:
                print(f"slow: {time.monotonic() - asked:.1f}s {generated.payload[:60]!r} -> {reply!r:.60}")
            if reply is None or generated.payload[:1] == b"D":
                sock.close()                   # the stub ended this connection (D, k) or dropped it
                sock = socket.create_connection(("127.0.0.1", server.port))
                buffer.clear()
                connections += 1
                continue
            answered += 1
            with contextlib.suppress(OSError):
                sock.sendall(b"+")
        sock.sendall(frame(b"?"))
        assert _read_reply(sock, buffer, time.monotonic() + 10) is not None
        sock.close()
        assert server.process.poll() is None, "the server exited"
        assert answered > _TCP_PACKETS // 2, (answered, connections)
        server.stop()
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    assert "internal error" not in server.stderr.lower(), server.stderr[-3000:]

"""The trio server over real loopback TCP with a small Python gdb client and the fake vCPU."""

from __future__ import annotations

import io
import time

import pytest
import trio
from fakes import FakeVcpu

import gdbstub.server as server_module
from gdbstub.protocol.framing import Framer, Packet, frame
from gdbstub.server import GdbServer


class Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.framer = Framer()
        self.framer.no_ack = True   # the client side never acks the stub's replies here
        self.packets: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(frame(payload))

    async def receive(self) -> bytes:
        while not self.packets:
            data = await self.stream.receive_some(65536)
            assert data, "server closed the connection"
            self.packets += [e.payload for e in self.framer.feed(data) if isinstance(e, Packet)]
        return self.packets.pop(0)

    async def ask(self, payload: bytes) -> bytes:
        await self.send(payload)
        return await self.receive()


async def start(nursery: trio.Nursery, vcpu: FakeVcpu | None = None) -> tuple[int, io.StringIO, FakeVcpu]:
    vcpu = vcpu or FakeVcpu()
    announce = io.StringIO()
    port = await nursery.start(GdbServer(vcpu, "e500v2", announce=announce).serve)
    return port, announce, vcpu


async def test_session_over_tcp_with_ctrl_c_and_second_connection() -> None:
    async with trio.open_nursery() as nursery:
        port, announce, vcpu = await start(nursery)
        assert announce.getvalue() == f"listening on 127.0.0.1:{port}\n"
        client = Client(await trio.open_tcp_stream("127.0.0.1", port))
        await client.stream.send_all(b"+")
        assert b"multiprocess+" in await client.ask(b"qSupported:multiprocess+;swbreak+")
        assert vcpu.instructions == 0                 # halted at entry until gdb resumes
        assert await client.ask(b"QStartNoAckMode") == b"OK"
        assert (await client.ask(b"?")).startswith(b"T05")
        # a second gdb is told why at its first packet, then closed, not left hanging
        intruder = await trio.open_tcp_stream("127.0.0.1", port)
        await intruder.send_all(frame(b"qSupported"))
        received = b""
        with trio.fail_after(3):
            while chunk := await intruder.receive_some(1000):
                received += chunk
        assert received.startswith(b"+$E.") and b"another gdb is already attached" in received
        await client.send(b"vCont;c:p1.-1")
        await trio.sleep(0.05)
        started = time.perf_counter()
        await client.stream.send_all(b"\x03")
        with trio.fail_after(2):
            stop = await client.receive()
        assert stop.startswith(b"T02")
        assert time.perf_counter() - started < 0.5
        assert vcpu.instructions > 0
        assert await client.ask(b"m1000,4") == b"60000000"
        assert await client.ask(b"Z0,1010,4") == b"OK"
        stop = await client.ask(b"c")
        assert stop.endswith(b"swbreak:;") and b"40:00001010;" in stop
        # dropping the connection keeps the guest state and frees the server for the next gdb
        await client.stream.aclose()
        await trio.sleep(0.05)
        again = Client(await trio.open_tcp_stream("127.0.0.1", port))
        await again.stream.send_all(b"+")
        assert (await again.ask(b"?")).startswith(b"T05")
        assert await again.ask(b"p40") == b"00001010"
        assert vcpu.sw_table == set()
        # kill resets the guest and closes; the server stays up
        await again.send(b"vKill;1")
        assert await again.receive() == b"OK"
        third = Client(await trio.open_tcp_stream("127.0.0.1", port))
        await third.stream.send_all(b"+")
        assert await third.ask(b"p40") == b"00001000"
        # detach lets the guest run on until the next gdb attaches
        await third.send(b"D")
        assert await third.receive() == b"OK"
        await third.stream.aclose()
        before = vcpu.instructions
        await trio.sleep(0.1)
        assert vcpu.instructions > before
        fourth = Client(await trio.open_tcp_stream("127.0.0.1", port))
        await fourth.stream.send_all(b"+")
        assert (await fourth.ask(b"?")).startswith(b"T05")
        halted = vcpu.instructions
        await trio.sleep(0.05)
        assert vcpu.instructions == halted
        await fourth.stream.aclose()
        nursery.cancel_scope.cancel()


def test_busy_poll_only_with_a_second_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "BUSY_POLL_SECONDS", 0.002)
    monkeypatch.setattr(server_module.os, "sched_getaffinity", lambda pid: {3})
    assert server_module.busy_poll_seconds() == 0.0
    monkeypatch.setattr(server_module.os, "sched_getaffinity", lambda pid: {0, 1})
    assert server_module.busy_poll_seconds() == 0.002


async def test_single_cpu_session_waits_in_poll_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module.os, "sched_getaffinity", lambda pid: {0})
    spins = 0
    real_yield = server_module._yield_cpu

    def counting_yield() -> None:
        nonlocal spins
        spins += 1
        real_yield()
    monkeypatch.setattr(server_module, "_yield_cpu", counting_yield)
    async with trio.open_nursery() as nursery:
        port, _, _ = await start(nursery)
        client = Client(await trio.open_tcp_stream("127.0.0.1", port))
        await client.stream.send_all(b"+")
        assert b"swbreak+" in await client.ask(b"qSupported:multiprocess+;swbreak+")
        assert await client.ask(b"QStartNoAckMode") == b"OK"
        for _ in range(20):
            assert await client.ask(b"m1000,4") == b"60000000"
            await trio.sleep(0.003)   # longer than a spin would last
        assert await client.ask(b"Z0,1010,4") == b"OK"
        stop = await client.ask(b"vCont;c:p1.-1")
        assert stop.endswith(b"swbreak:;") and b"40:00001010;" in stop
        assert spins == 0
        await client.stream.aclose()
        nursery.cancel_scope.cancel()


async def test_ctrl_c_in_the_same_read_as_continue_stops_the_run() -> None:
    # A scripted client (or gdb in no-ack mode, quickly) can send `c` and Ctrl-C in one segment: the
    # Ctrl-C must stop the run that `c` starts, not be dropped as one that came while stopped.
    async with trio.open_nursery() as nursery:
        port, _, _ = await start(nursery)
        client = Client(await trio.open_tcp_stream("127.0.0.1", port))
        await client.stream.send_all(b"+")
        assert await client.ask(b"QStartNoAckMode") == b"OK"
        await client.stream.send_all(frame(b"c") + b"\x03")
        with trio.fail_after(3):
            assert (await client.receive()).startswith(b"T02")
        assert (await client.ask(b"?")).startswith(b"T02")
        await client.stream.aclose()
        nursery.cancel_scope.cancel()

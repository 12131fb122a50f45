"""The trio server with a small Python gdb client and the fake vCPU, over both links it has: trio's
memory streams (any trio stream: the generic link with its receiver task) and real loopback TCP (the
socket link that reads and writes the descriptor itself). The same sessions run over both."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
import trio.testing
from fakes import FakeVcpu

import gdbstub.server as server_module
from gdbstub.protocol.framing import Framer, Packet, frame
from gdbstub.server import GdbServer

Connect = Callable[[], Awaitable[trio.abc.Stream]]


class Client:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.framer = Framer()
        self.framer.no_ack = True   # the client side never acks the stub's replies here
        self.packets: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(frame(payload))

    async def receive(self) -> bytes:
        with trio.fail_after(10):
            while not self.packets:
                data = await self.stream.receive_some(65536)
                assert data, "server closed the connection"
                self.packets += [e.payload for e in self.framer.feed(bytes(data)) if isinstance(e, Packet)]
        return self.packets.pop(0)

    async def ask(self, payload: bytes) -> bytes:
        await self.send(payload)
        return await self.receive()

    async def read_to_end(self) -> bytes:
        received = b""
        with trio.fail_after(5):
            while chunk := await self.stream.receive_some(1000):
                received += chunk
        return received


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """Connections handed over in memory: :meth:`connect` returns the client's end."""

    def __init__(self) -> None:
        self._send, self._accept = trio.open_memory_channel[trio.abc.Stream](0)

    async def connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        await self._send.send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        return await self._accept.receive()

    async def aclose(self) -> None:
        await self._accept.aclose()


async def _start(nursery: trio.Nursery, transport: str, vcpu: FakeVcpu) -> tuple[GdbServer, Connect]:
    server = GdbServer(vcpu, "e500v2", announce=io.StringIO())
    if transport == "memory":
        listener = MemoryListener()
        await nursery.start(server.serve, [listener])
        return server, listener.connect
    port = await nursery.start(server.serve)
    assert server.announce.getvalue() == f"listening on 127.0.0.1:{port}\n"   # type: ignore[attr-defined]

    async def connect() -> trio.abc.Stream:
        return await trio.open_tcp_stream("127.0.0.1", port)
    return server, connect


@pytest.fixture(params=["memory", "tcp"])
async def stub(request: pytest.FixtureRequest) -> AsyncIterator[tuple[GdbServer, Connect, FakeVcpu]]:
    vcpu = FakeVcpu()
    async with trio.open_nursery() as nursery:
        server, connect = await _start(nursery, request.param, vcpu)
        yield server, connect, vcpu
        nursery.cancel_scope.cancel()


async def _attach(server: GdbServer, connect: Connect) -> Client:
    with trio.fail_after(5):
        while server.attached:          # the previous gdb's connection is still being wound up
            await trio.sleep(0)
    client = Client(await connect())
    await client.stream.send_all(b"+")
    return client


async def _wait_until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(5):
        while not predicate():
            await trio.sleep(0)


async def test_a_session_with_ctrl_c_a_second_gdb_drop_kill_and_detach(
        stub: tuple[GdbServer, Connect, FakeVcpu]) -> None:
    server, connect, vcpu = stub
    client = await _attach(server, connect)
    assert b"multiprocess+" in await client.ask(b"qSupported:multiprocess+;swbreak+")
    assert vcpu.instructions == 0                 # halted at entry until gdb resumes
    assert await client.ask(b"QStartNoAckMode") == b"OK"
    assert (await client.ask(b"?")).startswith(b"T05")
    # a second gdb is told why at its first packet, then closed, not left hanging
    intruder = Client(await connect())
    await intruder.send(b"qSupported")
    received = await intruder.read_to_end()
    assert received.startswith(b"+$E.") and b"another gdb is already attached" in received
    await client.send(b"vCont;c:p1.-1")
    await _wait_until(lambda: vcpu.instructions > 0)
    await client.stream.send_all(b"\x03")
    assert (await client.receive()).startswith(b"T02")
    assert await client.ask(b"m1000,4") == b"60000000"
    assert await client.ask(b"Z0,1010,4") == b"OK"
    stop = await client.ask(b"c")
    assert stop.endswith(b"swbreak:;") and b"40:00001010;" in stop
    # dropping the connection keeps the guest state and frees the server for the next gdb
    await client.stream.aclose()
    again = await _attach(server, connect)
    assert (await again.ask(b"?")).startswith(b"T05")
    assert await again.ask(b"p40") == b"00001010"
    assert vcpu.sw_table == set()
    # kill resets the guest and closes; the server stays up
    await again.send(b"vKill;1")
    assert await again.receive() == b"OK"
    assert await again.read_to_end() == b""
    third = await _attach(server, connect)
    assert await third.ask(b"p40") == b"00001000"
    # detach lets the guest run on until the next gdb attaches, which halts it
    await third.send(b"D")
    assert await third.receive() == b"OK"
    await third.stream.aclose()
    before = vcpu.instructions
    await _wait_until(lambda: vcpu.instructions > before)
    fourth = await _attach(server, connect)
    assert (await fourth.ask(b"?")).startswith(b"T05")
    halted = vcpu.instructions
    assert await fourth.ask(b"m1000,4") == b"60000000"
    assert vcpu.instructions == halted


async def test_ctrl_c_in_the_same_read_as_continue_stops_the_run(
        stub: tuple[GdbServer, Connect, FakeVcpu]) -> None:
    # A scripted client (or gdb in no-ack mode, quickly) can send `c` and Ctrl-C in one segment: the
    # Ctrl-C must stop the run that `c` starts, not be dropped as one that came while stopped.
    server, connect, _ = stub
    client = await _attach(server, connect)
    assert await client.ask(b"QStartNoAckMode") == b"OK"
    await client.stream.send_all(frame(b"c") + b"\x03")
    assert (await client.receive()).startswith(b"T02")
    assert (await client.ask(b"?")).startswith(b"T02")


async def test_hanging_up_while_the_guest_runs_stops_it_and_keeps_it(
        stub: tuple[GdbServer, Connect, FakeVcpu]) -> None:
    server, connect, vcpu = stub
    client = await _attach(server, connect)
    assert await client.ask(b"QStartNoAckMode") == b"OK"
    await client.send(b"c")
    await _wait_until(lambda: vcpu.instructions > 0)
    await client.stream.aclose()
    await _wait_until(lambda: not server.attached)
    stopped_at = vcpu.instructions
    again = await _attach(server, connect)
    assert (await again.ask(b"?")).startswith(b"T")
    assert vcpu.instructions == stopped_at          # nothing ran between the hang-up and the new gdb


def test_busy_poll_only_with_a_second_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "BUSY_POLL_SECONDS", 0.002)
    monkeypatch.setattr(server_module.os, "sched_getaffinity", lambda pid: {3})
    assert server_module.busy_poll_seconds() == 0.0
    monkeypatch.setattr(server_module.os, "sched_getaffinity", lambda pid: {0, 1})
    assert server_module.busy_poll_seconds() == 0.002


async def test_single_cpu_socket_session_waits_in_poll_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module.os, "sched_getaffinity", lambda pid: {0})
    spins = 0
    real_yield = server_module._yield_cpu

    def counting_yield() -> None:
        nonlocal spins
        spins += 1
        real_yield()
    monkeypatch.setattr(server_module, "_yield_cpu", counting_yield)
    async with trio.open_nursery() as nursery:
        server, connect = await _start(nursery, "tcp", FakeVcpu())
        client = await _attach(server, connect)
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

"""Non-stop mode through the trio server over memory streams: vCont answered at once, packets answered
while threads run, ``%Stop`` notifications (one outstanding at a time) drained with vStopped; against
the three-thread fake target and against the one-thread e500 target over the fake vCPU."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import trio
from fake_threads import COUNTER_BASE, FakeThreadsTarget
from fakes import FakeVcpu
from test_server import MemoryListener

from gdbstub.protocol.framing import checksum, decode_body, frame
from gdbstub.server import GdbServer


class NotifiedClient:
    """A no-ack gdb client that tells replies (``$``) from notifications (``%``)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""
        self.replies: list[bytes] = []
        self.notifications: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(frame(payload))

    def _parse(self) -> None:
        while True:
            starts = [at for at in (self.buffer.find(b"$"), self.buffer.find(b"%")) if at >= 0]
            if not starts:
                return
            start = min(starts)
            end = self.buffer.find(b"#", start)
            if end < 0 or len(self.buffer) < end + 3:
                return
            body = self.buffer[start + 1:end]
            assert int(self.buffer[end + 1:end + 3], 16) == checksum(body), self.buffer
            kind = self.buffer[start:start + 1]
            (self.replies if kind == b"$" else self.notifications).append(decode_body(body))
            self.buffer = self.buffer[end + 3:]

    async def _wait_for(self, queue: list[bytes]) -> bytes:
        with trio.fail_after(10):
            while not queue:
                data = await self.stream.receive_some(65536)
                assert data, "server closed the connection"
                self.buffer += bytes(data)
                self._parse()
        return queue.pop(0)

    async def receive(self) -> bytes:
        return await self._wait_for(self.replies)

    async def notification(self) -> bytes:
        return await self._wait_for(self.notifications)

    async def ask(self, payload: bytes) -> bytes:
        await self.send(payload)
        return await self.receive()


@pytest.fixture
async def served() -> AsyncIterator[tuple[GdbServer, MemoryListener]]:
    server = GdbServer(FakeVcpu(), "e500v2", announce=io.StringIO())
    listener = MemoryListener()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, [listener])
        yield server, listener
        nursery.cancel_scope.cancel()


async def _attach(listener: MemoryListener) -> NotifiedClient:
    client = NotifiedClient(await listener.connect())
    await client.stream.send_all(b"+")
    assert b"QNonStop+" in await client.ask(b"qSupported:multiprocess+;swbreak+")
    assert await client.ask(b"QStartNoAckMode") == b"OK"
    assert await client.ask(b"QNonStop:1") == b"OK"
    return client


async def test_non_stop_threads_run_between_packets_and_stops_are_notified(
        served: tuple[GdbServer, MemoryListener]) -> None:
    server, listener = served
    target = FakeThreadsTarget(3, break_after={2: 3000})
    server.target = target      # type: ignore[assignment]
    client = await _attach(listener)
    assert b"thread:p1.1;" in await client.ask(b"?")
    assert await client.ask(b"vStopped") == b"OK"
    assert b"thread:p1.2;" in await client.notification()
    assert b"thread:p1.3;" in await client.ask(b"vStopped")
    assert await client.ask(b"vStopped") == b"OK"
    assert await client.ask(b"vCont;c:p1.2;c:p1.3") == b"OK"
    # Answered while both threads run: memory, the selected (stopped) thread's registers, a breakpoint.
    counter = int(await client.ask(b"m%x,4" % (COUNTER_BASE + 4)), 16)
    assert counter <= 3000 and 3 in target.running_threads()
    assert await client.ask(b"p40") == b"00001000"
    assert await client.ask(b"Z0,1010,4") == b"OK" and target.breakpoints == {0x1010}
    stop = await client.notification()
    assert stop.startswith(b"Stop:T05") and b"thread:p1.2;" in stop
    assert b"40:%08x;" % (0x2000 + 3000 * 4) in stop
    assert target.running_threads() == frozenset({3})
    extra = bytes.fromhex((await client.ask(b"qThreadExtraInfo,p1.3")).decode()).decode()
    assert extra.endswith("[running]")
    assert await client.ask(b"vStopped") == b"OK"
    assert await client.ask(b"vCont;t:p1.3") == b"OK"
    stop = await client.notification()
    assert stop.startswith(b"Stop:T00") and b"thread:p1.3;" in stop
    assert await client.ask(b"vStopped") == b"OK"
    assert target.running_threads() == frozenset()
    assert client.notifications == []


async def test_only_one_notification_is_outstanding(served: tuple[GdbServer, MemoryListener]) -> None:
    server, listener = served
    target = FakeThreadsTarget(3, break_after={1: 10, 2: 20, 3: 30})
    server.target = target      # type: ignore[assignment]
    client = await _attach(listener)
    assert await client.ask(b"vCont;c") == b"OK"
    first = await client.notification()
    assert b"thread:p1.1;" in first
    with trio.fail_after(5):
        while target.running_threads():
            await trio.sleep(0.01)
    await trio.sleep(0.05)
    assert client.notifications == []       # the other two stops wait for vStopped
    assert b"thread:p1.2;" in await client.ask(b"vStopped")
    assert b"thread:p1.3;" in await client.ask(b"vStopped")
    assert await client.ask(b"vStopped") == b"OK"
    assert client.notifications == []


async def test_non_stop_on_the_e500_target(served: tuple[GdbServer, MemoryListener]) -> None:
    server, listener = served
    vcpu: FakeVcpu = server.target.vcpu     # type: ignore[assignment]
    client = await _attach(listener)
    assert (await client.ask(b"?")).startswith(b"T00")
    assert await client.ask(b"vStopped") == b"OK"
    assert await client.ask(b"Z0,1010,4") == b"OK"
    assert await client.ask(b"vCont;c:p1.1") == b"OK"
    stop = await client.notification()
    assert stop.startswith(b"Stop:T05") and stop.endswith(b"swbreak:;") and b"40:00001010;" in stop
    assert await client.ask(b"vStopped") == b"OK"
    assert await client.ask(b"z0,1010,4") == b"OK"
    assert await client.ask(b"vCont;c") == b"OK"
    with trio.fail_after(5):
        while vcpu.instructions < 100:
            assert await client.ask(b"m1000,4") == b"60000000"      # answered while the guest runs
    assert await client.ask(b"vCont;t:p1.1") == b"OK"
    stop = await client.notification()
    assert stop.startswith(b"Stop:T00") and b"thread:p1.1;" in stop
    stopped_at = vcpu.instructions
    assert await client.ask(b"vStopped") == b"OK"
    assert await client.ask(b"m1000,4") == b"60000000"
    assert vcpu.instructions == stopped_at
    # Hanging up while the guest runs stops it.
    assert await client.ask(b"vCont;c") == b"OK"
    with trio.fail_after(5):
        while vcpu.instructions == stopped_at:
            await trio.sleep(0.01)
    await client.stream.aclose()
    with trio.fail_after(5):
        while server.attached:
            await trio.sleep(0.01)
    halted = vcpu.instructions
    await trio.sleep(0.05)
    assert vcpu.instructions == halted


async def test_all_stop_with_threads_through_the_server(served: tuple[GdbServer, MemoryListener]) -> None:
    server, listener = served
    target = FakeThreadsTarget(3, break_after={3: 20_000})
    server.target = target      # type: ignore[assignment]
    client = NotifiedClient(await listener.connect())
    await client.stream.send_all(b"+")
    assert b"QNonStop+" in await client.ask(b"qSupported:multiprocess+;swbreak+")
    assert await client.ask(b"QStartNoAckMode") == b"OK"
    assert await client.ask(b"qfThreadInfo") == b"mp1.1,p1.2,p1.3"
    stop = await client.ask(b"vCont;s:p1.2;c")
    assert stop.startswith(b"T05") and b"thread:p1.2;" in stop and b"40:00002004;" in stop
    assert target.threads[1].executed == 0 and target.threads[3].executed == 0
    assert await client.ask(b"qC") == b"QCp1.2"
    stop = await client.ask(b"vCont;c")
    assert stop.endswith(b"thread:p1.3;swbreak:;") and target.running_threads() == frozenset()
    assert await client.ask(b"Hgp1.1") == b"OK"
    await client.send(b"vCont;c:p1.1;c:p1.2")
    with trio.fail_after(5):
        while target.threads[2].executed < 1000:
            await trio.sleep(0.01)
    await client.stream.send_all(b"\x03")
    stop = await client.receive()
    assert stop.startswith(b"T02") and b"thread:p1.1;" in stop
    assert target.running_threads() == frozenset() and client.notifications == []

"""A small GDB remote-serial-protocol client for QEMU's built-in gdbstub, used as a reference oracle.

It starts ``qemu-system-ppc -M ppce500 -cpu <model> -S -gdb tcp:127.0.0.1:<port> -kernel <elf>``,
connects, and offers exactly what the lockstep harness needs: single-step, the 152-byte ``g``
register block (r0-r31, pc, msr, cr, lr, ctr, xer; reference kvm-qemu-gdb-debug.md section 5.1),
SPR reads by name through ``p`` (QEMU's numbering comes from its generated ``power-spr.xml``, fetched
with ``qXfer:features:read``), memory reads, and QEMU's single-step flags (``Qqemu.sstep``).
Framing: ``$data#cs`` with acks; QEMU has no no-ack mode. Power-off ends QEMU, which the client
reports as :class:`QemuExitedError` (a ``W``/``X`` reply or the socket closing).

Imports: standard library only (it must not depend on the emulator it is checking).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .qemu_machine import QEMU_BINARY, ppce500_command

# QEMU single-step flags (qqemu.sstepbits: ENABLE=1,NOIRQ=2,NOTIMER=4). QEMU's default is all three:
# a step then never takes an interrupt and the timers stand still. The lockstep harness needs
# interrupt-driven guests to progress while they are single-stepped, so it steps with ENABLE only.
SSTEP_ENABLE = 0x1
SSTEP_NOIRQ = 0x2
SSTEP_NOTIMER = 0x4

# Register numbers in QEMU's ppc core description (gdb_num_core_regs = 71).
CORE_REGISTER_NAMES: tuple[str, ...] = (
    *(f"r{n}" for n in range(32)), "pc", "msr", "cr", "lr", "ctr", "xer")
G_PACKET_BYTES = 4 * len(CORE_REGISTER_NAMES)  # 152: the FPR/fpscr entries have size 0

_CONNECT_TIMEOUT_S = 10.0
_REPLY_TIMEOUT_S = 20.0


class RspError(Exception):
    """The stub answered something unexpected (an ``E`` reply, a malformed packet, a timeout)."""


class QemuExitedError(Exception):
    """QEMU terminated (the guest powered off, or QEMU died); ``status`` is the exit code if known."""

    def __init__(self, status: int | None, output: str) -> None:
        super().__init__(f"QEMU exited (status {status})")
        self.status = status
        self.output = output


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def frame(payload: bytes) -> bytes:
    return b"$" + payload + b"#%02x" % checksum(payload)


def unescape_binary(data: bytes) -> bytes:
    """Undo RSP binary escaping (``}`` + byte^0x20), as used in qXfer replies."""
    out = bytearray()
    escaped = False
    for byte in data:
        if escaped:
            out.append(byte ^ 0x20)
            escaped = False
        elif byte == 0x7D:
            escaped = True
        else:
            out.append(byte)
    return bytes(out)


def expand_run_length(data: bytes) -> bytes:
    """Expand ``x*n`` run-length encoding (repeat count = n - 29)."""
    if b"*" not in data:
        return data
    out = bytearray()
    index = 0
    while index < len(data):
        byte = data[index]
        if byte == 0x2A and out:
            out.extend(out[-1:] * (data[index + 1] - 29))
            index += 2
        else:
            out.append(byte)
            index += 1
    return bytes(out)


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class StopReply:
    signal: int
    raw: bytes


class QemuGdb:
    """One QEMU process and its gdbstub connection. Use as a context manager (kills QEMU on exit)."""

    def __init__(self, elf: Path | str, model: str = "e500v2", extra_args: tuple[str, ...] = (),
                 sstep_flags: int = SSTEP_ENABLE, serial: str = "null") -> None:
        if shutil.which(QEMU_BINARY) is None:
            raise FileNotFoundError(f"{QEMU_BINARY} is not installed")
        self.elf = Path(elf)
        self.model = model
        self.serial = serial      # a QEMU chardev spec for the UART, e.g. "file:/tmp/uart.txt"
        self._buffer = bytearray()
        self._spr_numbers: dict[str, int] | None = None
        self.exited: QemuExitedError | None = None
        self._process, self._sock = self._start(extra_args)
        # Fetch target.xml first, as gdb does: until a client has read it, QEMU 7.2 answers `g`/`p`
        # in its legacy no-XML layout (observed: pc read as 0 at boot).
        self.spr_numbers()
        self.set_sstep_flags(sstep_flags)

    # -- process and socket ----------------------------------------------------------------------
    def _start(self, extra_args: tuple[str, ...]) -> tuple[subprocess.Popen[bytes], socket.socket]:
        # The free port can be taken between probing and QEMU binding it; retry a few times.
        last_error: Exception | None = None
        for _attempt in range(5):
            port = free_tcp_port()
            process = subprocess.Popen(
                ppce500_command(self.elf, self.model, "-S", "-gdb", f"tcp:127.0.0.1:{port}",
                                "-serial", self.serial, *extra_args),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + _CONNECT_TIMEOUT_S
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=_REPLY_TIMEOUT_S)
                except OSError as error:
                    last_error = error
                    time.sleep(0.02)
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return process, sock
            self._kill(process)
        raise RspError(f"could not connect to QEMU's gdbstub: {last_error}")

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> str:
        if process.poll() is None:
            process.kill()
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        return (output or b"").decode(errors="replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        self._kill(self._process)

    def __enter__(self) -> QemuGdb:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _exit_now(self, status: int | None) -> QemuExitedError:
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        output = self._kill(self._process)
        code = self._process.returncode if status is None else status
        self.exited = QemuExitedError(code, output)
        return self.exited

    # -- framing ---------------------------------------------------------------------------------
    def _read_more(self) -> None:
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError as error:
            raise RspError("timed out waiting for QEMU's gdbstub") from error
        except OSError:
            chunk = b""
        if not chunk:
            raise self._exit_now(None)
        self._buffer += chunk

    def _receive_packet(self) -> bytes:
        while True:
            start = self._buffer.find(b"$")
            if start >= 0:
                end = self._buffer.find(b"#", start)
                if end >= 0 and len(self._buffer) >= end + 3:
                    payload = bytes(self._buffer[start + 1:end])
                    sent_sum = int(self._buffer[end + 1:end + 3], 16)
                    del self._buffer[:end + 3]
                    good = checksum(payload) == sent_sum
                    # QEMU resends its last packet on a nak. It may already be gone after a
                    # final W reply, so a failed ack is not an error.
                    with contextlib.suppress(OSError):
                        self._sock.sendall(b"+" if good else b"-")
                    if not good:
                        continue
                    return expand_run_length(payload)
            self._read_more()

    def command(self, payload: bytes) -> bytes:
        """Send one packet and return the reply payload (acks are handled and ignored)."""
        if self.exited is not None:
            raise self.exited
        try:
            self._sock.sendall(frame(payload))
        except OSError as error:
            raise self._exit_now(None) from error
        reply = self._receive_packet()
        if reply[:1] in (b"W", b"X") and len(reply) == 3:
            raise self._exit_now(int(reply[1:], 16))
        return reply

    def checked(self, payload: bytes) -> bytes:
        reply = self.command(payload)
        if re.fullmatch(rb"E[0-9a-fA-F]{2}", reply):
            raise RspError(f"{payload!r} -> {reply!r}")
        return reply

    # -- operations ------------------------------------------------------------------------------
    def set_sstep_flags(self, flags: int) -> None:
        if self.checked(b"Qqemu.sstep=%x" % flags) != b"OK":
            raise RspError("QEMU refused the single-step flags")

    def step(self) -> StopReply:
        """Execute one instruction (with SSTEP_ENABLE alone, possibly an interrupt entry as well)."""
        reply = self.command(b"s")
        if reply[:1] not in (b"T", b"S"):
            raise RspError(f"unexpected reply to s: {reply!r}")
        return StopReply(int(reply[1:3], 16), reply)

    def read_core_registers(self) -> list[int]:
        """r0-r31, pc, msr, cr, lr, ctr, xer (QEMU's `g` block, big-endian 32-bit values)."""
        reply = self.checked(b"g")
        data = bytes.fromhex(reply.decode())
        if len(data) < G_PACKET_BYTES:
            raise RspError(f"short g reply: {len(data)} bytes")
        return [int.from_bytes(data[i:i + 4], "big") for i in range(0, G_PACKET_BYTES, 4)]

    def read_register(self, number: int) -> int:
        return int.from_bytes(bytes.fromhex(self.checked(b"p%x" % number).decode()), "big")

    def write_register(self, number: int, value: int, size: int = 4) -> None:
        self.checked(b"P%x=%s" % (number, value.to_bytes(size, "big").hex().encode()))

    def read_memory(self, address: int, length: int) -> bytes:
        return bytes.fromhex(self.checked(b"m%x,%x" % (address, length)).decode())

    def read_xfer(self, annex: str) -> bytes:
        data = bytearray()
        while True:
            reply = self.checked(b"qXfer:features:read:%s:%x,%x" % (annex.encode(), len(data), 0xF00))
            data += unescape_binary(reply[1:])
            if reply[:1] == b"l":
                return bytes(data)
            if reply[:1] != b"m":
                raise RspError(f"bad qXfer reply {reply[:20]!r}")

    def spr_numbers(self) -> dict[str, int]:
        """Lower-case register name -> QEMU register number for every register in target.xml.

        QEMU 7.2's generated power-spr.xml carries no ``regnum``; each feature's registers are
        numbered consecutively from the last explicit ``regnum`` (coprocessor features start at 71,
        after the 71 core numbers), which is also how gdb numbers them.
        """
        if self._spr_numbers is None:
            numbers: dict[str, int] = {}
            next_number = 0
            target = self.read_xfer("target.xml").decode()
            for annex in re.findall(r'<xi:include href="([^"]+)"', target):
                for attributes in re.findall(r"<reg ([^>]*)>", self.read_xfer(annex).decode()):
                    name = re.search(r'name="([^"]+)"', attributes)
                    explicit = re.search(r'regnum="(\d+)"', attributes)
                    if explicit:
                        next_number = int(explicit.group(1))
                    if name and name.group(1).lower() not in numbers:
                        numbers[name.group(1).lower()] = next_number
                    next_number += 1
            self._spr_numbers = numbers
        return self._spr_numbers

    def read_spr(self, name: str) -> int:
        return self.read_register(self.spr_numbers()[name.lower()])

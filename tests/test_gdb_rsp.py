"""RSP conformance and robustness of the stub, driven by the real gdb-multiarch and a raw TCP client.

gdb batch runs check what a user sees: every register of ``info all-registers`` (SPE on e500v2, FPU on
e500mc, the Book E SPRs) with values written through gdb read back, SPE mnemonics from ``x/i``, a 1 MiB
``dump binary memory`` equal to the ELF's loaded image, ``stepi``/``next`` with range stepping (the
``vCont;r`` packet seen in a remotelogfile), ``compare-sections`` and ``find`` answered by ``qCRC`` and
``qSearch:memory`` with breakpoints inserted, the memory map, ``monitor`` commands, and detach followed by
a second gdb that sees the state the first one left. Raw-socket checks cover a connection dropped while
the guest runs, a second connection while one is attached, and malformed packets (never a traceback).
Imports: pytest, the standard library, pyelftools and tests/gdb_driver.py (the stub runs as a process).
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gdb_driver
import pytest
from conftest import GdbRunner, GdbSession
from elftools.elf.elffile import ELFFile

COMPUTE = {cpu: gdb_driver.REPO_ROOT / "benchmarks" / "bin" / f"compute-{cpu}.elf" for cpu in gdb_driver.CPUS}
PVR = {"e500v2": 0x80210030, "e500mc": 0x80230020}
# Far above every example image, its stack and data, inside the 64 MiB boot mapping.
SCRATCH = 0x03000000
DUMP_START = 0x100000
DUMP_BYTES = 1 << 20
RAW_TIMEOUT = 30.0


def register_values(output: str) -> dict[str, int]:
    return gdb_driver.parse_info_registers(output)


def assemble_word(source: str, tmp_path: Path) -> int:
    """Assemble one e500 instruction with binutils; returns its big-endian word."""
    asm = tmp_path / "one.s"
    obj = tmp_path / "one.o"
    asm.write_text(f"    {source}\n")
    subprocess.run([gdb_driver.require_tool("powerpc-linux-gnu-as"), "-me500", "-o", str(obj), str(asm)],
                   check=True, capture_output=True)
    listing = subprocess.run([gdb_driver.require_tool("powerpc-linux-gnu-objdump"), "-d", "-Me500", str(obj)],
                             check=True, capture_output=True, text=True).stdout
    match = re.search(r"^\s*0:\s+((?:[0-9a-f]{2} ){4})", listing, re.MULTILINE)
    assert match, listing
    return int(match.group(1).replace(" ", ""), 16)


def loaded_image(path: Path, start: int, length: int) -> bytes:
    """RAM [start, start+length) right after reset: the ELF's PT_LOAD bytes, zeros elsewhere."""
    memory = bytearray(length)
    with path.open("rb") as stream:
        for segment in ELFFile(stream).iter_segments():
            if segment["p_type"] != "PT_LOAD":
                continue
            data = segment.data()[:segment["p_filesz"]]
            base = segment["p_paddr"]
            low, high = max(base, start), min(base + len(data), start + length)
            if low < high:
                memory[low - start:high - start] = data[low - base:high - base]
    return bytes(memory)


def gdb_with_remote_log(server_factory: Callable[[Path], gdb_driver.Server], guest: str, log: Path,
                        commands: list[str]) -> GdbSession:
    """A gdb batch run against a fresh stub, with every packet written to ``log``."""
    image = gdb_driver.guest_path(guest)
    server = server_factory(image)
    command = gdb_driver.gdb_command(image, server.port, commands)
    # gdb opens the remote log at connect time: the setting goes before `target remote`.
    connect = command.index(f"target remote 127.0.0.1:{server.port}")
    command[connect - 1:connect - 1] = ["-ex", f"set remotelogfile {log}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=gdb_driver.GDB_TIMEOUT,
                          check=False)
    return GdbSession(image, gdb_driver.elf_symbols(image),
                      gdb_driver.GdbResult(command, done.returncode, done.stdout, done.stderr), server)


# -- a raw RSP client ---------------------------------------------------------------------------------

class RawClient:
    """Bare RSP over TCP with acks, enough to send any bytes and read framed replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=RAW_TIMEOUT)
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.send_raw(b"$" + payload + b"#%02x" % (sum(payload) & 0xFF))

    def reply(self) -> bytes:
        while True:
            start = self.buffer.find(b"$")
            end = self.buffer.find(b"#", start) if start >= 0 else -1
            if end >= 0 and len(self.buffer) >= end + 3:
                payload = self.buffer[start + 1:end]
                self.buffer = self.buffer[end + 3:]
                self.sock.sendall(b"+")
                return payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; unread {self.buffer!r}")
            self.buffer += chunk

    def request(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def compute_stub(gdb_multiarch: str) -> Iterator[gdb_driver.Server]:
    """The stub on the long-running compute guest (it runs for many seconds: never powers off here)."""
    server = gdb_driver.start_stub(COMPUTE["e500v2"], "e500v2")
    yield server
    server.stop()


# -- gdb conformance ----------------------------------------------------------------------------------

def test_e500v2_registers_spe_disassembly_memory_map_and_monitor(gdb_run: GdbRunner, tmp_path: Path) -> None:
    evxor = assemble_word("evxor 3,4,5", tmp_path)
    session = gdb_run("loop", [
        "set $srr0 = 0x1234abcd", "set $ev4.uint64 = 0x1111222233334444", "set $sprg4 = 0xfeed0004",
        "info all-registers",
        f"set {{int}}{SCRATCH:#x} = {evxor:#x}", f"x/i {SCRATCH:#x}",
        "info mem",
        "monitor help", "monitor info tlb", "monitor debug", "monitor frobnicate",
    ])
    out = session.output
    values = register_values(out)
    for name in ["acc", "spefscr", "srr1", "dbcr0", "ivpr", "ivor35", "mas0", "tcr"]:
        assert name in values, f"{name} missing\n{session.describe()}"
    assert values["srr0"] == 0x1234ABCD, session.describe()
    # gdb hides the raw ev0h..ev31h and shows the pseudo registers evN = evNh:rN (upper half over SPE).
    assert re.search(r"^ev4\s+{uint64 = 0x1111222233334444,", out, re.MULTILINE), session.describe()
    assert values["r4"] == 0x33334444, session.describe()
    assert re.search(r"^ev31\s+{uint64 = 0x0,", out, re.MULTILINE), session.describe()
    assert values["sprg4"] == 0xFEED0004 and values["pvr"] == PVR["e500v2"], session.describe()
    assert values["pc"] == gdb_driver.elf_entry(session.image), session.describe()
    assert re.search(rf"{SCRATCH:#x}:\s+evxor\s+r3,r4,r5", out), session.describe()
    # qXfer:memory-map:read -> `info mem`: RAM from 0 to 128 MiB, then the rest of the 32-bit space.
    assert re.search(r"^\d+\s+y\s+0x0+\s+0x0*8000000\s+rw\s+nocache", out, re.MULTILINE), session.describe()
    assert re.search(r"^\d+\s+y\s+0x0*8000000\s+0x0*100000000\s+rw", out, re.MULTILINE), session.describe()
    assert "info tlb    list the valid TLB entries" in out, session.describe()
    assert re.search(r"TLB1\[0\] EA 0x00000000 -> PA 0x000000000 size 64 MiB", out), session.describe()
    assert "IAC slots: 0/2 in use" in out, session.describe()
    assert "unknown monitor command 'frobnicate'; try 'monitor help'" in out, session.describe()
    assert "Traceback" not in session.server.stderr, session.describe()


def test_e500mc_fpu_and_spr_registers(gdb_run: GdbRunner) -> None:
    session = gdb_run("loop", ["set $f1 = 2.5", "set $fpscr = 0x2", "set $srr1 = 0x00021002",
                               "info all-registers", "print $f1 * 2"], cpu="e500mc")
    out = session.output
    values = register_values(out)
    for name in ["fpscr", "srr0", "dsrr0", "dsrr1", "pvr", "mas7"]:
        assert name in values, f"{name} missing\n{session.describe()}"
    assert values["fpscr"] == 2 and values["srr1"] == 0x00021002, session.describe()
    assert values["pvr"] == PVR["e500mc"], session.describe()
    assert re.search(r"^f1\s+2\.5\s", out, re.MULTILINE), session.describe()
    assert re.search(r"^f0\s+0\s", out, re.MULTILINE), session.describe()
    assert re.search(r"^\$\d+ = 5$", out, re.MULTILINE), session.describe()
    assert "acc" not in values and "spefscr" not in values, session.describe()


def test_dump_one_mebibyte_equals_the_loaded_image(gdb_run: GdbRunner, tmp_path: Path) -> None:
    dump = tmp_path / "ram.bin"
    session = gdb_run("loop", [f"dump binary memory {dump} {DUMP_START:#x} {DUMP_START + DUMP_BYTES:#x}"])
    assert dump.is_file(), session.describe()
    data = dump.read_bytes()
    assert len(data) == DUMP_BYTES, session.describe()
    expected = loaded_image(session.image, DUMP_START, DUMP_BYTES)
    assert any(expected), "the image should load code into the dumped range"
    assert data == expected, session.describe()


def test_stepi_and_next_with_range_stepping(server_factory: Callable[[Path], gdb_driver.Server],
                                            tmp_path: Path) -> None:
    log = tmp_path / "remote.log"
    session = gdb_with_remote_log(server_factory, "loop", log, [
        "set range-stepping on", "break main", "continue", "print $pc", "stepi", "print $pc",
        "next", "next", "print $pc", "info line *$pc"])
    out = session.output
    pcs = [int(value, 16) for value in re.findall(r"^\$\d+ = .*?(0x[0-9a-f]+)", out, re.MULTILINE)]
    assert len(pcs) == 3, session.describe()
    assert pcs[1] == pcs[0] + 4, session.describe()
    symbols = session.symbols
    main_end = min(address for address in symbols.values() if address > symbols["main"])
    assert symbols["main"] <= pcs[2] < main_end and pcs[2] > pcs[1], session.describe()
    assert re.search(r'Line \d+ of "[^"]*loop\.c" starts at address', out), session.describe()
    text = log.read_text(errors="replace")
    assert re.search(r"w \$vCont;r[0-9a-f]+,[0-9a-f]+", text), text[-4000:]
    assert re.search(r"w \$vCont;s", text), text[-4000:]


def test_detach_then_a_second_gdb_sees_the_state_left_behind(compute_stub: gdb_driver.Server) -> None:
    image = COMPUTE["e500v2"]
    entry = gdb_driver.elf_entry(image)
    first = gdb_driver.run_gdb(image, compute_stub.port, [
        f"set {{int}}{SCRATCH:#x} = 0x12345678", "set $sprg5 = 0xabcdef01", "stepi 3", "detach"])
    assert "Detaching from program" in first.output or "detached" in first.output, first
    time.sleep(0.3)   # the guest runs on detached
    second = gdb_driver.run_gdb(image, compute_stub.port, [f"x/wx {SCRATCH:#x}", "print/x $sprg5",
                                                          "print/x $pc"])
    out = second.output
    assert re.search(rf"{SCRATCH:#x}:\s+0x12345678", out), f"{first}\n{second}"
    values = re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.MULTILINE)
    assert values and int(values[0], 16) == 0xABCDEF01, f"{first}\n{second}"
    assert int(values[1], 16) not in (entry, entry + 12), f"guest should have run on:\n{second}"
    assert "gdb detached" in compute_stub.stderr


# -- robustness over TCP ------------------------------------------------------------------------------

def test_drop_during_continue_keeps_state_and_second_connection_is_refused(
        compute_stub: gdb_driver.Server) -> None:
    client = RawClient(compute_stub.port)
    assert client.request(b"qSupported:multiprocess+;swbreak+").startswith(b"PacketSize=")
    assert client.request(b"M%x,4:cafef00d" % SCRATCH) == b"OK"
    client.send(b"vCont;c")
    time.sleep(0.3)
    intruder = socket.create_connection(("127.0.0.1", compute_stub.port), timeout=RAW_TIMEOUT)
    intruder.sendall(b"$?#3f")
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := intruder.recv(1000):
            received += chunk
    # Told why at its first packet, then closed.
    assert received.startswith(b"+$E.") and b"another gdb is already attached" in received, received
    intruder.close()
    client.close()      # hang up while the guest runs
    time.sleep(0.3)
    follower = RawClient(compute_stub.port)
    assert follower.request(b"?").startswith(b"T05"), "the guest must be stopped for the next gdb"
    assert follower.request(b"m%x,4" % SCRATCH) == b"cafef00d"
    pc_first = follower.request(b"p40")
    time.sleep(0.3)
    assert follower.request(b"p40") == pc_first, "stopped guest must not move"
    assert int(pc_first, 16) != gdb_driver.elf_entry(COMPUTE["e500v2"])
    follower.close()
    deadline = time.monotonic() + 5
    while "gdb disconnected" not in compute_stub.stderr and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "refusing connection" in compute_stub.stderr and "a gdb is already attached" in compute_stub.stderr
    assert "gdb disconnected" in compute_stub.stderr
    assert "Traceback" not in compute_stub.stderr, compute_stub.stderr


MALFORMED = [
    b"m", b"mzz,4", b"m10", b"M10,4:zz", b"M10,zz:00", b"X10,2:a", b"G12", b"p", b"pzz", b"P",
    b"P40=", b"P40=zz", b"Pfff=00000000", b"Z9,100,4", b"Z0,zz,4", b"Z2,100,0", b"z0,100,4", b"Z1",
    b"vCont;x", b"vCont;", b"vCont;c:p9.9", b"vCont;r1", b"Hz0", b"Hgp9.9", b"T9", b"D;zz", b"D;5",
    b"qXfer:features:read:nope.xml:0,10", b"qXfer:features:read:target.xml:zz", b"qXfer:memory-map:read::5",
    b"qXfer:threads:read::ffffff,10", b"qRcmd,zzz", b"qRcmd,", b"qThreadExtraInfo,p9.9", b"C", b"Szz",
    b"c zz", b"q", b"Q", b"v", b"\x00\xff", b"}", b"m" + b"f" * 40 + b",4", b"mffffffff,ffffffff",
]


def test_malformed_packets_get_error_replies_and_no_traceback(compute_stub: gdb_driver.Server) -> None:
    client = RawClient(compute_stub.port)
    client.request(b"qSupported:multiprocess+")
    for packet in MALFORMED:
        reply = client.request(packet)
        assert reply == b"" or re.fullmatch(rb"E[0-9a-f]{2}|OK|l.*|m.*", reply, re.DOTALL), (packet, reply)
        assert not reply.startswith(b"T") or packet.startswith(b"vCont"), (packet, reply)
    client.send_raw(b"$?#00")          # bad checksum: naked, then the good one is answered
    client.send_raw(b"$" + b"m" * 0x30000 + b"#00")   # longer than PacketSize: dropped, answered E22
    assert client.reply() == b"E22"
    assert client.request(b"?").startswith(b"T05")
    client.close()
    time.sleep(0.2)
    assert "Traceback" not in compute_stub.stderr, compute_stub.stderr
    assert "internal error" not in compute_stub.stderr, compute_stub.stderr


def test_compare_sections_and_find_use_qcrc_and_qsearch_and_never_see_breakpoints(
        server_factory: Callable[[Path], gdb_driver.Server], tmp_path: Path) -> None:
    image = gdb_driver.guest_path("hello")
    symbols = gdb_driver.elf_symbols(image)
    memory = loaded_image(image, DUMP_START, 0x10000)
    greeting = DUMP_START + memory.find(b"Hello")
    main_word = int.from_bytes(memory[symbols["main"] - DUMP_START:][:4], "big")
    log = tmp_path / "remote.log"
    session = gdb_with_remote_log(server_factory, "hello", log, [
        # Breakpoints stay in guest memory while gdb looks: the stub must hide the patched words.
        "set breakpoint always-inserted on", "break main", "hbreak uart_puts",
        "echo == clean\\n", "compare-sections",
        f"find /b {DUMP_START:#x}, +0x10000, 'H', 'e', 'l', 'l', 'o'",
        f"find /w {symbols['main']:#x}, +4, {main_word:#x}",
        "find /w 0x100000, +0x10000, 0x7fe00008",
        "set {int}main = 0x60000000", "echo == patched\\n", "compare-sections .text"])
    out = session.output
    clean, _, patched = out.partition("== patched")
    assert re.search(r"Section \.text, range 0x[0-9a-f]+ -- 0x[0-9a-f]+: matched\.", clean), \
        session.describe()
    assert "MIS-MATCHED" not in clean, session.describe()
    assert re.search(r"Section \.text, range .*MIS-MATCHED!", patched), session.describe()
    found = [int(value, 16) for value in re.findall(r"^(0x[0-9a-f]+)", clean, re.MULTILINE)]
    assert found == [greeting, symbols["main"]], session.describe()
    assert "Pattern not found." in clean, session.describe()
    text = log.read_text(errors="replace")
    assert re.search(r"w \$qCRC:[0-9a-f]+,[0-9a-f]+#..\nr \$C[0-9a-f]{8}#", text), text[-4000:]
    assert re.search(r"w \$qSearch:memory:[0-9a-f]+;[0-9a-f]+;.*\nr \$1,[0-9a-f]+#", text), text[-4000:]


def test_breakpoint_conditions_evaluated_in_the_stub_stop_where_gdbs_own_evaluation_does(
        server_factory: Callable[[Path], gdb_driver.Server], tmp_path: Path) -> None:
    conditions = ["break square if x == 150", "hbreak fill_buffer if seed == 77 || seed == 190",
                  "break bump_counter if counter > 180 && (counter & 1)",
                  "break accumulate if (round * 3) % 7 == 2 && round < 30",
                  "break run_round if limit != 200"]
    stops = ["continue", "print $pc", "info args"] * 20
    runs = {}
    for mode in ("host", "target"):
        log = tmp_path / f"{mode}.log"
        session = gdb_with_remote_log(server_factory, "loop", log, [
            f"set breakpoint condition-evaluation {mode}", *conditions, *stops])
        out = session.output
        assert "exited normally" in out, session.describe()
        hits = re.findall(r"^(?:Breakpoint|Temporary breakpoint) \d+, .*$|^\w+ = \d+$", out, re.MULTILINE)
        resumes = len(re.findall(r"^w \$vCont;c", log.read_text(errors="replace"), re.MULTILINE))
        runs[mode] = (hits, resumes, session)
    (host_hits, host_resumes, _), (target_hits, target_resumes, session) = runs["host"], runs["target"]
    assert len(host_hits) > 20, session.describe()
    assert target_hits == host_hits, session.describe()
    # 200 rounds hit these locations ~800 times; in the stub only the true ones reach gdb.
    assert host_resumes > 400 and target_resumes < 30, (host_resumes, target_resumes)
    text = (tmp_path / "target.log").read_text(errors="replace")
    assert re.search(r"w \$Z1,[0-9a-f]+,4;X[0-9a-f]+,[0-9a-f]+", text), text[-3000:]

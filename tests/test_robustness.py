"""Bad input gets a clear answer and loses nothing: packets with arguments the target cannot hold,
host I/O at the edges, signals, special files and odd images, failing writes, a guest that stops for
good or spins with no handler, a rebuilt image, a second gdb. Each test here failed before its fix.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gdb_driver
import pytest
from support.tiny_elf import BRANCH_TO_SELF, lis, stw, write_elf

from emulator.board import Machine
from emulator.kvm import Vcpu
from emulator.mmu import MAS1_TSIZE_SHIFT, MAS1_V, MAS3_SR, MAS3_SW
from gdbstub.protocol.framing import frame
from gdbstub.session import Session
from gdbstub.target import Target

ROOT = Path(__file__).resolve().parent.parent
LOOP = gdb_driver.guest_path("loop", "e500v2")
HELLO = gdb_driver.guest_path("hello", "e500v2")


def loop_session(ram_mib: int = 128) -> tuple[Session, Vcpu]:
    machine = Machine("e500v2", ram_size=ram_mib << 20, uart_out=lambda data: None)
    machine.load_elf(str(LOOP))
    vcpu = Vcpu(machine)
    return Session(Target(vcpu, "e500v2")), vcpu


# -- 1. Z/z arguments the target cannot hold ------------------------------------------------------------

@pytest.mark.parametrize("packet", [
    b"Z3,0,100000000", b"Z2,0,100000000", b"Z4,0,100000000",          # a watch of 2^32 bytes
    b"Z2,100000000,4", b"Z1,100000000,4", b"Z0,100000000,4",          # addresses beyond 32 bits
    b"Z2,1000,0", b"Z3,fffffffe,4", b"Z4,ffffffff,2",                 # empty and wrapping watches
    b"Z1,1000,100000000", b"Z2,1000,10000000000000000",               # kinds beyond 32 bits
    b"Z0,ffffffffffffffffffff,4", b"Z5,1000,4",
])
def test_z_arguments_out_of_range_are_e22_and_leave_nothing(packet: bytes) -> None:
    session, _vcpu = loop_session()
    assert session.handle(packet) == [b"E22"]
    assert session.target.breakpoints.hardware == [] and session.target.breakpoints.software == {}
    assert session.handle(b"z" + packet[1:]) in ([b"E22"],)
    # The next resume works: the refused point left nothing in the resume path.
    reply = session.resume_blocking(session.handle(b"vCont;s")[0])   # type: ignore[arg-type]
    assert reply.startswith(b"T05"), reply


def test_resume_path_turns_an_arming_failure_into_an_error_reply() -> None:
    session, _ = loop_session()

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("arming exploded")
    # A target with threads is armed through resume_threads, one without through prepare_resume.
    session.target.prepare_resume = broken   # type: ignore[method-assign]
    session.target.resume_threads = broken   # type: ignore[method-assign]
    action = session.handle(b"c")[0]
    assert session.begin_resume(action) == b"E01"   # type: ignore[arg-type]
    assert not session.running
    assert session.handle(b"?")[0].startswith(b"T05")


# -- 2. host I/O edges -----------------------------------------------------------------------------------

def test_vfile_edges_answer_in_file_io_terms() -> None:
    session, _ = loop_session()
    nul_name = ("x\0" + str(LOOP)).encode().hex().encode()
    assert session.handle(b"vFile:open:" + nul_name + b",0,0") == [b"F-1,2"]
    fd = session.handle(b"vFile:open:" + str(LOOP).encode().hex().encode() + b",0,0")[0]
    assert fd.startswith(b"F") and not fd.startswith(b"F-1")
    descriptor = fd[1:]
    for edge in (b"8000000000000000", b"ffffffffffffffff", b"10000000000000000"):
        assert session.handle(b"vFile:pread:" + descriptor + b",10," + edge) == [b"F-1,16"]
    assert session.handle(b"vFile:pread:" + descriptor + b",ffffffffffffffffff,0")[0].startswith(b"F")
    assert session.handle(b"vFile:pread:" + descriptor + b",zz,0") == [b"F-1,16"]
    assert session.handle(b"vFile:pread:" + descriptor + b",4,0")[0] == b"F4;\x7fELF"


# -- 6. a failing write changes nothing ------------------------------------------------------------------

def test_write_across_the_end_of_ram_fails_whole() -> None:
    session, vcpu = loop_session(ram_mib=32)
    ram_end = 32 << 20
    mmu = vcpu.machine.mmu
    # Two 4 KiB pages: EA 0x40000000 -> the last RAM page, EA 0x40001000 -> just past RAM.
    for index, (ea, pa) in enumerate(((0x40000000, ram_end - 0x1000), (0x40001000, ram_end))):
        mmu.set_entry(1, 2 + index, mas1=MAS1_V | (1 << MAS1_TSIZE_SHIFT), mas2=ea,
                      mas3=pa | MAS3_SR | MAS3_SW)
    before = bytes(vcpu.machine.bus.ram[ram_end - 0x1000:ram_end])
    assert session.handle(b"M40000ffe,4:deadbeef") == [b"E14"]
    assert session.handle(b"M40000000,2000:" + b"ab" * 0x2000) == [b"E14"]
    assert bytes(vcpu.machine.bus.ram[ram_end - 0x1000:ram_end]) == before
    assert session.handle(b"M40000ffc,4:deadbeef") == [b"OK"]
    assert session.handle(b"m40000ffc,4") == [b"deadbeef"]


# -- 8. an interrupt with no handler ---------------------------------------------------------------------

def test_interrupt_with_no_handler_is_one_line_naming_the_other_core(
        caplog: pytest.LogCaptureFixture) -> None:
    machine = Machine("e500v2", uart_out=lambda data: None)
    machine.load_elf(str(gdb_driver.guest_path("guest_debug", "e500mc")))
    target = Target(Vcpu(machine), "e500v2")
    for _ in range(20):
        target.run_slice(50_000)
    lines = [record.getMessage() for record in caplog.records if "no handler" in record.getMessage()]
    assert len(lines) == 1, lines
    assert "program interrupt (IVOR6)" in lines[0] and "--cpu e500mc" in lines[0]


def test_guest_that_sets_its_handlers_gets_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    machine = Machine("e500v2", uart_out=lambda data: None)
    machine.load_elf(str(gdb_driver.guest_path("traps", "e500v2")))
    target = Target(Vcpu(machine), "e500v2")
    while target.run_slice(100_000) is None:
        pass
    assert target.exited == 0
    assert not [record for record in caplog.records if "no handler" in record.getMessage()]


def run_cli(*args: str, timeout: float = 60, stdin: int | None = subprocess.DEVNULL
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, stdin=stdin)


def test_wrong_cpu_under_run_says_so_at_once() -> None:
    process = subprocess.Popen([sys.executable, "-m", "gdbstub", "--run", "--cpu", "e500v2",
                                str(gdb_driver.guest_path("guest_debug", "e500mc"))], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stderr is not None
        # The guest spins on: the line is all there is to read (and, if it never comes, the test fails
        # after a minute instead of hanging).
        ready, _, _ = select.select([process.stderr], [], [], 60)
        line = process.stderr.readline() if ready else "(nothing on stderr within 60 s)"
    finally:
        process.kill()
        process.wait(timeout=10)
    assert line.startswith("e500-gdbstub: ") and "--cpu e500mc" in line, line


# -- 7. checkstop under --run ----------------------------------------------------------------------------

def test_checkstop_under_run_is_one_line_and_nonzero(tmp_path: Path) -> None:
    # An image at 64 MiB puts the device tree near 90 MiB, so the boot mapping covers 256 MiB; with
    # 128 MiB of RAM a store at 192 MiB is mapped but reaches nothing, and the boot MSR has ME=0: a
    # checkstop at the store.
    image = write_elf(tmp_path / "checkstop.elf", [lis(3, 0xC00), stw(3, 0, 3), BRANCH_TO_SELF],
                      base=0x4000000)
    result = run_cli("--run", "-m", "128", str(image), timeout=30)
    assert result.returncode == 134, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, lines
    assert "checkstop" in lines[0] and "0x04000004" in lines[0] and "data write at PA 0xc000000" in lines[0]


# -- 4, 5. images ----------------------------------------------------------------------------------------

def test_fifo_as_image_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "image.fifo"
    os.mkfifo(fifo)
    for args in (["--run", str(fifo)], [str(fifo), "--port", "0"]):
        result = run_cli(*args, timeout=20)
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1 and "not a regular file" in result.stderr


@pytest.mark.parametrize("damage", ["truncated", "garbage-headers", "empty"])
def test_damaged_images_are_one_line(tmp_path: Path, damage: str) -> None:
    data = HELLO.read_bytes()
    image = tmp_path / f"{damage}.elf"
    if damage == "truncated":
        image.write_bytes(data[:200])
    elif damage == "garbage-headers":
        image.write_bytes(data[:16] + bytes(range(256)) * 4 + data[16 + 1024:])
    else:
        image.write_bytes(b"")
    result = run_cli("--run", str(image), timeout=20)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result
    assert "Traceback" not in result.stderr and str(image) in result.stderr


def test_entry_outside_every_segment_warns_then_runs(tmp_path: Path) -> None:
    image = write_elf(tmp_path / "outside.elf", [BRANCH_TO_SELF], entry=0x200000)
    server = gdb_driver.start_stub(image, "e500v2")
    try:
        warnings = [line for line in server.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1 and "0x200000" in warnings[0] and "outside" in warnings[0], server.stderr
    finally:
        server.stop()


# -- 3. SIGINT -------------------------------------------------------------------------------------------

def _start_stub() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-m", "gdbstub", str(LOOP), "--port", "0"], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    return process, int(line.rsplit(":", 1)[1])


def _packet(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(frame(payload))
    data = b""
    while b"#" not in data.lstrip(b"+") or len(data.split(b"#", 1)[1]) < 2:
        data += sock.recv(65536)
    return data


@pytest.mark.parametrize("state", ["idle", "stopped", "running"])
def test_sigint_is_one_line_and_exit_130(state: str) -> None:
    process, port = _start_stub()
    connection = None
    try:
        if state != "idle":
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
            assert b"T05" in _packet(connection, b"?")
            if state == "running":
                # A breakpoint nowhere the guest goes, and the loop guest runs for a while.
                _packet(connection, b"Z0,100000,4")
                connection.sendall(frame(b"c"))
                time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        if connection is not None:
            connection.close()
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == "e500-gdbstub: interrupted", stderr


# -- 10. a second gdb ------------------------------------------------------------------------------------

def test_second_gdb_is_told_why(gdb_multiarch: str) -> None:
    server = gdb_driver.start_stub(LOOP, "e500v2")
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as first:
            assert b"T05" in _packet(first, b"?")
            second = gdb_driver.run_gdb(LOOP, server.port, ["info registers pc"], timeout=60)
            assert b"T05" in _packet(first, b"?")      # the first gdb is still served
        assert "another gdb is already attached" in second.stdout + second.stderr, second
    finally:
        server.stop()
    assert "Traceback" not in server.stderr


# -- 9. extended-remote run reads the image again ---------------------------------------------------------

def test_extended_remote_run_loads_the_rebuilt_image(tmp_path: Path, gdb_multiarch: str) -> None:
    # loop powers off with status 0, hello with 3: gdb's exit line shows which image ran.
    image = tmp_path / "guest.elf"
    image.write_bytes(LOOP.read_bytes())
    server = gdb_driver.start_stub(image, "e500v2")
    try:
        first = gdb_driver.run_gdb(image, server.port, ["run"], connect="extended-remote", timeout=60)
        image.write_bytes(HELLO.read_bytes())     # the user rebuilds the image
        second = gdb_driver.run_gdb(image, server.port, ["run"], connect="extended-remote", timeout=60)
    finally:
        server.stop()
    assert "exited normally" in first.stdout, first
    assert "exited with code 03" in second.stdout, second
    assert "Traceback" not in server.stderr


def test_run_of_a_missing_image_fails_and_keeps_the_old_one() -> None:
    session, _ = loop_session()
    session.handle(b"!")
    missing = b"/nonexistent/guest.elf".hex().encode()
    assert session.handle(b"vRun;" + missing).__getitem__(0).startswith(b"E")
    assert session.handle(b"vRun;")[0].startswith(b"T05")
    assert session.target.image_path() == str(LOOP)


# -- packet log ------------------------------------------------------------------------------------------

def test_log_packets_records_both_directions(tmp_path: Path, gdb_multiarch: str) -> None:
    log_file = tmp_path / "packets.jsonl"
    server = gdb_driver.start_stub(LOOP, "e500v2", "--log-packets", str(log_file))
    try:
        gdb_driver.run_gdb(LOOP, server.port, ["break bump_counter", "continue", "bt"], timeout=60)
    finally:
        server.stop()
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    from_gdb = [r["packet"] for r in records if r["from"] == "gdb"]
    from_stub = [r["packet"] for r in records if r["from"] == "stub"]
    assert any(p.startswith("qSupported") for p in from_gdb)
    assert any(p.startswith("Z0,") for p in from_gdb) and any(p.startswith("vCont;c") for p in from_gdb)
    assert any(p.startswith("T05") and "swbreak" in p for p in from_stub)
    assert all(isinstance(r["time"], float) for r in records)
    times = [r["time"] for r in records]
    assert times == sorted(times)


def test_log_packets_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    result = run_cli(str(LOOP), "--log-packets", str(tmp_path / "no" / "such" / "dir" / "log"), timeout=20)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "--log-packets" in result.stderr


# -- stdout closed under the guest ------------------------------------------------------------------------

def test_closed_stdout_drops_uart_output_and_the_guest_runs_on() -> None:
    # `e500-gdbstub --run IMAGE | head -1`: QEMU drops what it cannot write and runs on; so does the stub.
    command = f"{sys.executable} -m gdbstub --run {LOOP} | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.stdout == "loop: start\n"
    assert result.returncode == 0, result          # the loop guest's own power-off status
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "stdout" in lines[0] and "dropped" in lines[0], result.stderr


MC_LOOP = "GUEST=examples/bin/loop-e500mc.elf"


@pytest.mark.parametrize(("variables", "cpu"), [([], "e500v2"), ([MC_LOOP], "e500mc"),
                                                ([MC_LOOP, "CPU=e500v2"], "e500v2")])
def test_make_run_takes_cpu_and_guesses_it_from_the_guest_name(variables: list[str], cpu: str) -> None:
    result = subprocess.run(["make", "-n", "--no-print-directory", "run", *variables], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    command = result.stdout.strip().splitlines()[-1]
    assert "e500-gdbstub" in command and f"--cpu {cpu} " in command, result.stdout

"""Debugger-side speed of the stub against QEMU's gdbstub, driven by the real gdb-multiarch.

Measures, on the integer compute guest (benchmarks/bin/compute-*.elf):
- 2000 separate ``stepi`` (one gdb command each, from a gdb ``python`` loop);
- 1000 ``continue`` to a breakpoint on the guest's hottest loop head (the first backward branch target
  in ``main``: the random-fill loop, thousands of iterations per round);
- 50 ``continue`` to a conditional breakpoint on that loop head (``if ($ctr & 0xff) == 1``: 255 false
  hits for every true one; the stub evaluates the condition itself, QEMU's stub leaves it to gdb);
- a 1 MiB ``dump binary memory`` of the guest's RAM as loaded (its code and data, then zeroed RAM, as in
  any small guest), and the same after ``restore`` has filled that MiB with random bytes (nothing for
  run-length encoding to shorten: every hex digit travels);
- raw packet round trips of ``g`` and ``m ADDR,1000`` (4 KiB) from a Python socket client after
  ``QStartNoAckMode``;
- packets per gdb operation (``stepi``, ``continue`` to a breakpoint, ``info registers``), counted in a
  ``set remotelogfile`` log of a short separate run.
The same gdb scripts run against ``qemu-system-ppc -M ppce500 -S -gdb tcp:... -kernel`` (same ELF) when
QEMU is installed, and the ratios stub/QEMU are printed. Figures only: nothing here asserts a speed, and
this file is not part of the test suite.

Run: ``.venv/bin/python benchmarks/stub.py [--cpu e500v2] [--quick] [--one-cpu N]``.
Imports the standard library and tests/gdb_driver.py (which starts the stub as a separate process,
exactly as a user does; it never imports the product packages).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import gdb_driver  # noqa: E402
import replay  # noqa: E402

STEPIS = 2000
CONTINUES = 1000
CONDITIONAL_STOPS = 50
CONDITION = "($ctr & 0xff) == 1"
# Benchmarks with no gdb-only floor: a replayed stop cannot tell gdb that a condition was false.
NO_FLOOR = frozenset({"conditional"})
DUMP_BYTES = 1 << 20
DUMP_START = 0x100000
RAW_ROUND_TRIPS = 2000
RAW_READ_BYTES = 0x1000
COUNT_OPERATIONS = 20      # operations in the remotelogfile runs that count packets
GDB_RUN_TIMEOUT = 600.0
_RESULT = re.compile(r"^BENCH (\w+) ([0-9.]+)$", re.MULTILINE)
_BRANCH = re.compile(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} ){4}\s*b\w*\s+(?:[0-7],)?(?:\w+,)?([0-9a-f]+) <main",
                     re.MULTILINE)


@dataclass
class Figures:
    """One server's results: rates per second, seconds per round trip, packets per operation."""

    server: str
    rates: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)   # the same gdb runs against a replay server
    round_trips_us: dict[str, float] = field(default_factory=dict)
    packets: dict[str, float] = field(default_factory=dict)


def hot_loop_head(image: Path) -> int:
    """Target of the first backward branch in ``main``: the head of its innermost hot loop."""
    objdump = shutil.which("powerpc-linux-gnu-objdump")
    if objdump is None:
        raise SystemExit("powerpc-linux-gnu-objdump is needed to find the hot loop")
    symbols = gdb_driver.elf_symbols(image)
    listing = subprocess.run([objdump, "-d", f"--start-address={symbols['main']:#x}", str(image)],
                             capture_output=True, text=True, check=True).stdout
    for match in _BRANCH.finditer(listing.replace("\t", " ")):
        site, target = int(match.group(1), 16), int(match.group(2), 16)
        if target < site:
            return target
    raise SystemExit(f"no backward branch found in main of {image}")


def gdb_python(image: Path, port: int, preamble: list[str], body: str, log: Path | None = None) -> str:
    """Run gdb-multiarch on a script: optional remote log, connect, preamble commands, a python body."""
    lines = ["set confirm off", "set pagination off", "set width 0"]
    if log is not None:
        lines.append(f"set remotelogfile {log}")
    lines.append(f"target remote 127.0.0.1:{port}")
    lines += preamble
    lines += ["python", "import time", body, "end", "kill"]
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = [gdb_driver.require_tool(gdb_driver.GDB), "-batch", "-nx", "-x", script.name, str(image)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=GDB_RUN_TIMEOUT, check=False)
    Path(script.name).unlink()
    return done.stdout + done.stderr


def timed_loop(name: str, count: int, command: str) -> str:
    """gdb python that runs ``command`` ``count`` times and prints ``BENCH name rate``."""
    return (f"started = time.perf_counter()\n"
            f"for _ in range({count}):\n"
            f"    gdb.execute({command!r}, to_string=True)\n"
            f"print('BENCH {name} %.3f' % ({count} / (time.perf_counter() - started)))\n")


def dump_body(path: Path, name: str = "dump") -> str:
    end = DUMP_START + DUMP_BYTES
    return (f"started = time.perf_counter()\n"
            f"gdb.execute('dump binary memory {path} {DUMP_START:#x} {end:#x}')\n"
            f"print('BENCH {name} %.3f' % ({DUMP_BYTES / (1 << 20)} / (time.perf_counter() - started)))\n")


def parse_bench(output: str, name: str) -> float:
    for found_name, value in _RESULT.findall(output):
        if found_name == name:
            return float(value)
    raise RuntimeError(f"gdb printed no BENCH {name}:\n{output[-3000:]}")


def count_packets(log: Path) -> int:
    """Packets gdb wrote in a remotelogfile: ``w $...`` lines, or ``w +$...`` where gdb sent its ack
    of the previous reply in the same write (ack mode, as with QEMU, which has no no-ack mode)."""
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if line.startswith(("w $", "w +$")))


# -- raw packet client --------------------------------------------------------------------------------

def _frame(payload: bytes) -> bytes:
    return b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)


class RawClient:
    """Minimal RSP client: enough for qSupported, QStartNoAckMode and timed request/reply pairs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.acks = True

    def request(self, payload: bytes) -> bytes:
        self.sock.sendall(_frame(payload))
        while True:
            start = self.buffer.find(b"$")
            if start >= 0:
                end = self.buffer.find(b"#", start)
                if end >= 0 and len(self.buffer) >= end + 3:
                    reply = self.buffer[start + 1:end]
                    self.buffer = self.buffer[end + 3:]
                    if self.acks:
                        self.sock.sendall(b"+")
                    return reply
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def raw_round_trips(port: int, count: int) -> dict[str, float]:
    client = RawClient(port)
    try:
        client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
        if client.request(b"QStartNoAckMode") == b"OK":
            client.acks = False
            client.buffer = client.buffer.replace(b"+", b"")
        client.request(b"?")
        results: dict[str, float] = {}
        read = b"m%x,%x" % (DUMP_START, RAW_READ_BYTES)
        for name, payload in (("g", b"g"), (f"m {RAW_READ_BYTES:#x}", read)):
            client.request(payload)
            samples = []
            for _ in range(count):
                started = time.perf_counter()
                client.request(payload)
                samples.append(time.perf_counter() - started)
            results[name] = statistics.median(samples) * 1e6
        return results
    finally:
        client.close()


# -- one server ---------------------------------------------------------------------------------------

def timed_runs(image: Path, work: Path, scale: int) -> list[tuple[str, list[str], str, str]]:
    """(name, gdb preamble, timed python body, a short body that makes the same requests)."""
    loop_head = hot_loop_head(image)
    noise = work / "random.bin"
    noise.write_bytes(random.Random(1).randbytes(DUMP_BYTES))
    fill = [f"restore {noise} binary {DUMP_START:#x}"]
    return [
        ("stepi", [], timed_loop("stepi", STEPIS // scale, "stepi"), timed_loop("stepi", 3, "stepi")),
        ("continue", [f"break *{loop_head:#x}"], timed_loop("continue", CONTINUES // scale, "continue"),
         timed_loop("continue", 3, "continue")),
        ("conditional", [f"break *{loop_head:#x} if {CONDITION}"],
         timed_loop("conditional", max(5, CONDITIONAL_STOPS // scale), "continue"),
         timed_loop("conditional", 3, "continue")),
        ("dump", [], dump_body(work / "dump.bin"), dump_body(work / "dump.bin")),
        ("dump_random", fill, dump_body(work / "random-dump.bin", "dump_random"),
         dump_body(work / "random-dump.bin", "dump_random")),
    ]


def measure(name: str, start: Callable[[], gdb_driver.Server], image: Path, quick: bool,
            floor: bool = False) -> Figures:
    """``floor``: also run each timed gdb script against a zero-work server replaying this server's
    replies (benchmarks/replay.py): what gdb alone costs."""
    figures = Figures(name)
    scale = 10 if quick else 1
    work = Path(tempfile.mkdtemp(prefix="stub-bench-"))
    for bench, preamble, body, short_body in timed_runs(image, work, scale):
        with start() as server:
            output = gdb_python(image, server.port, preamble, body)
            figures.rates[bench] = parse_bench(output, bench)
        if floor and bench not in NO_FLOOR:
            log = work / f"{bench}.log"
            with start() as server:
                gdb_python(image, server.port, preamble, short_body, log=log)
            with replay.ReplayServer(replay.replies_from_log(log)) as replayer:
                figures.floor[bench] = parse_bench(gdb_python(image, replayer.port, preamble, body), bench)
    # gdb opens its remotelogfile at connect time, so each operation is logged twice, with
    # COUNT_OPERATIONS repetitions and with none; the difference is the operations' own packets.
    loop_head = hot_loop_head(image)
    counted: list[tuple[str, list[str], str]] = [
        ("stepi", [], "gdb.execute('stepi', to_string=True)"),
        ("continue", [f"break *{loop_head:#x}", "continue"], "gdb.execute('continue', to_string=True)"),
        ("info all-registers", ["stepi"],
         "gdb.execute('maintenance flush register-cache', to_string=True)\n"
         "    gdb.execute('info all-registers', to_string=True)"),
    ]
    for operation, preamble, step in counted:
        totals = []
        for repeat in (0, COUNT_OPERATIONS):
            log = work / f"count-{repeat}.log"
            with start() as server:
                gdb_python(image, server.port, preamble, f"for _ in range({repeat}):\n    {step}", log=log)
            totals.append(count_packets(log))
        figures.packets[operation] = (totals[1] - totals[0]) / COUNT_OPERATIONS
    with start() as server:
        figures.round_trips_us = raw_round_trips(server.port, RAW_ROUND_TRIPS // scale)
    shutil.rmtree(work, ignore_errors=True)
    return figures


def report(stub: Figures, qemu: Figures | None) -> None:
    def row(label: str, ours: float, theirs: float | None, unit: str, higher_is_better: bool,
            floor: float | None = None) -> None:
        ratio = ""
        if theirs:
            value = ours / theirs if higher_is_better else theirs / ours
            ratio = f"  x{value:.2f} vs QEMU"
        if floor:
            ratio += f", {100 * ours / floor:.0f} % of the gdb-only floor ({floor:.1f})"
        other = f"{theirs:10.1f}" if theirs is not None else "         -"
        print(f"{label:<34} {ours:10.1f} {other}  {unit}{ratio}")

    print(f"{'measure':<34} {'stub':>10} {'QEMU':>10}")
    labels = {"stepi": f"{STEPIS} separate stepi", "continue": f"{CONTINUES} continue to a breakpoint",
              "conditional": f"{CONDITIONAL_STOPS} conditional stops",
              "dump": "1 MiB dump binary memory", "dump_random": "1 MiB dump of random bytes"}
    units = {"stepi": "stepi/s", "continue": "stops/s", "conditional": "stops/s", "dump": "MiB/s",
             "dump_random": "MiB/s"}
    for key, label in labels.items():
        row(label, stub.rates[key], qemu.rates.get(key) if qemu else None, units[key], True,
            stub.floor.get(key))
    for key, value in stub.round_trips_us.items():
        row(f"raw {key} round trip (median)", value, qemu.round_trips_us.get(key) if qemu else None, "us",
            False)
    for key, value in stub.packets.items():
        row(f"packets per {key}", value, qemu.packets.get(key) if qemu else None, "packets", False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", choices=gdb_driver.CPUS, default="e500v2")
    parser.add_argument("--quick", action="store_true", help="a tenth of the operations (smoke run)")
    parser.add_argument("--no-qemu", action="store_true", help="measure the stub only")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the gdb-only floor (the same scripts against a zero-work replay server)")
    parser.add_argument("--one-cpu", type=int, metavar="N",
                        help="run everything (gdb, the stub, QEMU, the replay server) on CPU N only")
    args = parser.parse_args()
    if args.one_cpu is not None:
        # Children inherit the mask. On an idle machine the kernel wakes gdb on an idle CPU rather than
        # the replying server's, so each reply is a cross-CPU wake-up; on one CPU it is a plain switch.
        try:
            os.sched_setaffinity(0, {args.one_cpu})
        except (OSError, AttributeError) as error:
            raise SystemExit(f"--one-cpu {args.one_cpu}: {error}") from None
    image = HERE / "bin" / f"compute-{args.cpu}.elf"
    stub = measure("stub", lambda: gdb_driver.start_stub(image, args.cpu), image, args.quick,
                   floor=not args.no_floor)
    qemu = None
    if not args.no_qemu and shutil.which(gdb_driver.QEMU):
        qemu = measure("qemu", lambda: gdb_driver.start_qemu(image, args.cpu), image, args.quick)
    elif not args.no_qemu:
        print(f"{gdb_driver.QEMU} not installed: stub figures only")
    print(f"guest {image.name}, gdb {gdb_driver.GDB}, hot loop head {hot_loop_head(image):#x}")
    report(stub, qemu)


if __name__ == "__main__":
    # Each stub compiles its own regions (no region store, emulator/region_store.py): the round trips
    # measured here do not depend on what earlier runs left behind.
    os.environ.setdefault("E500_GDBSTUB_CODE_CACHE", "off")
    main()

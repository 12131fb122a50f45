"""Command line: ``e500-gdbstub IMAGE.elf`` serves the guest to gdb; ``--run`` runs it without gdb.

Builds the ppce500 machine (:mod:`emulator.board`), loads the image, wraps it in the KVM-shaped vCPU
(:mod:`emulator.kvm`) and either hands it to :class:`gdbstub.server.GdbServer` or runs it to power-off
with the UART on stdout, exiting with the guest's power-off status (or 124 once ``--max-insns`` is
used up, in either mode). stdin feeds the UART's receiver, as
QEMU's ``-nographic`` console does (a terminal only with ``--run``; see :class:`ConsoleInput`). Every
user error (missing or bad image, bad flag) is one readable line on stderr and a non-zero exit status,
never a traceback.

Imports: standard library, :mod:`emulator.board`, :mod:`emulator.kvm`, :mod:`emulator.models` and
:mod:`gdbstub` (trio only through :mod:`gdbstub.server`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import stat
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol

from emulator.board import DEFAULT_ICOUNT_SHIFT, MAX_SMP, BootFiles, ImageError, Machine
from emulator.kvm import Vcpu
from emulator.models import MODELS
from gdbstub.serial_port import (
    ConsoleQuit,
    EscapeFilter,
    FileSerial,
    NullSerial,
    RawTerminal,
    SerialSpec,
    SocketSerial,
    parse_serial,
)
from gdbstub.target import Target

EXIT_USAGE = 2
EXIT_IMAGE = 1
EXIT_GUEST_STOPPED = 134  # 128 + SIGABRT: the signal gdb is shown for a checkstop
EXIT_INTERRUPTED = 130    # 128 + SIGINT, as a shell reports a process Ctrl-C ended
# --max-insns used up. Exit statuses are 8 bits and a guest may power off with any of them, so no value
# is unambiguous by itself: 124 is GNU timeout's "timed out", and the one stderr line (INSN_LIMIT_MESSAGE)
# is what tells it apart from a guest that powered off with 124.
EXIT_INSN_LIMIT = 124
INSN_LIMIT_MESSAGE = "instruction limit reached"
RUN_SLICE = 1 << 20
# While console input is possible: ~1-4 ms of guest execution between two looks at stdin.
INPUT_SLICE = 1 << 14
_CONSOLE_CHUNK = 4096


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the full usage stays behind --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="e500-gdbstub",
        description="GDB remote stub for an emulated PowerPC e500 (QEMU ppce500-style board). The guest "
                    "is halted at its entry until gdb resumes it. 'kill' in gdb resets the guest and the "
                    "server keeps waiting for the next gdb; 'detach' lets the guest run on. With 'target "
                    "extended-remote', 'kill' keeps the connection and 'run' loads the image from disk "
                    "again and restarts it. One gdb at a time: a second one is told why it is refused.",
        epilog="exit status: the guest's power-off status (--run); 0 server stopped (or Ctrl-A x on a "
               "-serial stdio console); 1 bad image or "
               "file; 2 usage; 124 --max-insns used up; 130 Ctrl-C; 134 the guest stopped for good "
               "(a checkstop, --run). Environment: E500_GDBSTUB_CODE_CACHE=DIR keeps the guest code "
               "this engine compiles in DIR for the next run of the same software (default "
               "$XDG_CACHE_HOME/e500-gdbstub or ~/.cache/e500-gdbstub; 'off' keeps nothing)")
    parser.add_argument("image", metavar="IMAGE.elf", nargs="?",
                        help="the kernel or bare-metal guest: a 32-bit big-endian PowerPC ELF (loaded at its "
                             "physical addresses and started at its physical entry, as QEMU's -kernel) or "
                             "a uImage; with --bios it is copied raw above the firmware instead")
    parser.add_argument("-kernel", "--kernel", dest="kernel", metavar="FILE",
                        help="the same as IMAGE.elf (QEMU's spelling)")
    parser.add_argument("-bios", "--bios", metavar="FILE",
                        help="firmware to run instead of the kernel (ELF, e.g. U-Boot's "
                             "/usr/lib/u-boot/qemu-ppce500/uboot.elf, or uImage; QEMU's ppce500 takes no "
                             "raw binary); the kernel, if any, is then placed at max(end of firmware, "
                             "32 MiB) and named in /chosen/qemu,boot-kernel")
    parser.add_argument("-initrd", "--initrd", metavar="FILE",
                        help="initial RAM disk, copied where QEMU puts it and named in /chosen "
                             "(linux,initrd-start/-end)")
    parser.add_argument("-append", "--append", default="", metavar="CMDLINE",
                        help="kernel command line (/chosen/bootargs)")
    parser.add_argument("-dtb", "--dtb", metavar="FILE",
                        help="use this device tree blob instead of the generated one (as given: no "
                             "bootargs or initrd are added, as on QEMU)")
    parser.add_argument("--cpu", choices=sorted(MODELS), default="e500v2", help="core model (default e500v2)")
    parser.add_argument("--port", type=int, default=1234,
                        help="TCP port on 127.0.0.1 (default 1234; 0 picks a free port)")
    parser.add_argument("--sw-break", choices=("trap", "ehpriv", "auto"), default="auto",
                        help="soft-breakpoint opcode: trap (tw 31,0,0), ehpriv (ehpriv 1, e500mc only) or "
                             "auto (the model's default)")
    parser.add_argument("-m", "--ram", type=parse_ram, default=128 << 20, metavar="SIZE",
                        help="guest RAM as QEMU's -m: MiB, or with a suffix (256, 256M, 1G); a multiple of "
                             "64 MiB up to 2 GiB, as QEMU's ppce500 requires (default 128)")
    parser.add_argument("--icount", "-icount", type=parse_icount, default=DEFAULT_ICOUNT_SHIFT,
                        metavar="shift=N",
                        help="guest clock as QEMU's -icount: each core cycle is 2^N ns of guest time and "
                             f"the time base counts 400 MHz of it (default {DEFAULT_ICOUNT_SHIFT}: 102.4 "
                             "ticks per cycle; most instructions take one cycle, loads 3, multiplies 4, "
                             "divides 14, where QEMU counts one per instruction; 'N' alone also works; the "
                             "run is deterministic whatever N)")
    parser.add_argument("-smp", "--smp", type=parse_smp, default=1, metavar="N",
                        help=f"cores, as QEMU's -smp: N or cpus=N (1-{MAX_SMP}); the secondary cores wait "
                             "in the device tree's spin table until the guest releases them; gdb sees "
                             "one thread per core")
    parser.add_argument("-serial", "--serial", type=parse_serial, default=None,
                        metavar="DEV",
                        help="the guest UART, as QEMU's -serial. Default: stdout, and stdin's pipe or "
                             "file (a terminal too with --run). stdio: the terminal as QEMU's console, also "
                             "while serving gdb (raw keys, Ctrl-A x exits, Ctrl-A h help). null, "
                             "file:PATH, tcp:[HOST]:PORT or unix:PATH (connect), either with ,server to "
                             "listen for one client at a time (HOST defaults to 127.0.0.1; PORT 0 picks "
                             "one and a line names it); a server waits for its first client before the "
                             "guest starts unless ,nowait is given")
    parser.add_argument("--run", action="store_true",
                        help="run the guest without gdb until it powers off; exit with its status "
                             "(stdin, also a terminal, feeds the guest UART; when serving gdb only a "
                             "pipe or file does); a checkstop is one line on stderr and exit status 134")
    parser.add_argument("--no-range-stepping", dest="range_stepping", action="store_false",
                        help="do not offer gdb range stepping (vCont;r): gdb 13's 'record full' needs "
                             "this to record every instruction of a 'step' or 'next'")
    parser.add_argument("--max-insns", type=int, metavar="N",
                        help="stop after the guest has executed N instructions from boot without "
                             f"powering off: one line on stderr and exit status {EXIT_INSN_LIMIT} "
                             "(gdb sees the guest terminated by SIGXCPU); counted in guest instructions, "
                             "so the stop is at the same instruction in every run")
    parser.add_argument("--log-packets", metavar="FILE",
                        help="record every packet between gdb and the stub in FILE, one JSON object per "
                             "line: {\"time\", \"from\": \"gdb\"|\"stub\", \"packet\"} (for bug reports)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log protocol events to stderr (and internal errors with their traceback)")
    return parser


_RAM_UNITS = {"": 20, "M": 20, "G": 30, "K": 10}
_RAM_LIMIT = 2 << 30


def parse_ram(text: str) -> int:
    """QEMU's ``-m``: a number of MiB, or with a K/M/G suffix (also ``size=``); returns bytes."""
    value = text.strip().removeprefix("size=").upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in ("K", "M", "G") else ""
    try:
        size = int(value[:len(value) - len(unit)]) << _RAM_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 256, 256M, 1G)") from None
    if size <= 0 or size > _RAM_LIMIT or size % (64 << 20):
        raise argparse.ArgumentTypeError(f"{text}: RAM must be a multiple of 64 MiB, at most 2 GiB "
                                         "(QEMU's ppce500 refuses other sizes)")
    return size


def parse_smp(text: str) -> int:
    """QEMU's ``-smp`` argument: ``N`` or ``cpus=N``; ``maxcpus``, ``sockets``, ``cores`` and ``threads``
    are accepted when they describe the same number of cores (there is no CPU hot-plug)."""
    values: dict[str, int] = {}
    for index, part in enumerate(text.split(",")):
        key, equals, value = part.partition("=")
        if not equals:
            if index:
                raise argparse.ArgumentTypeError(f"{part!r}: expected N, cpus=N or KEY=N")
            key, value = "cpus", key
        if key not in ("cpus", "maxcpus", "sockets", "cores", "threads", "dies", "clusters"):
            raise argparse.ArgumentTypeError(f"{key!r}: not an -smp option")
        try:
            values[key] = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key} {value!r} is not a number") from None
    topology = values.get("sockets", 1) * values.get("dies", 1) * values.get("clusters", 1) \
        * values.get("cores", 1) * values.get("threads", 1)
    cpus = values.get("cpus", topology if any(k in values for k in ("sockets", "cores", "threads")) else 1)
    if not 1 <= cpus <= MAX_SMP:
        raise argparse.ArgumentTypeError(f"{cpus} cores: the ppce500 board here takes 1 to {MAX_SMP}")
    if values.get("maxcpus", cpus) != cpus:
        raise argparse.ArgumentTypeError("maxcpus must equal cpus (no CPU hot-plug)")
    if any(k in values for k in ("sockets", "cores", "threads")) and topology != cpus:
        raise argparse.ArgumentTypeError(f"sockets*cores*threads = {topology}, not {cpus} cpus")
    return cpus


def parse_icount(text: str) -> int:
    """QEMU's ``-icount`` argument: ``N`` or ``shift=N`` (``align=off``/``sleep=off`` are accepted and
    change nothing, since guest time never waits for the host here); ``auto`` is refused (it ties
    guest time to the host clock)."""
    shift: int | None = None
    for part in text.split(","):
        key, _, value = part.partition("=")
        if not _:
            key, value = "shift", key
        if key == "shift":
            if value == "auto":
                raise argparse.ArgumentTypeError("shift=auto follows the host clock; give a number 0..30")
            try:
                shift = int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"shift {value!r} is not a number") from None
            if not 0 <= shift <= 30:
                raise argparse.ArgumentTypeError(f"shift {shift} is outside 0..30")
        elif key in ("align", "sleep") and value in ("on", "off"):
            continue
        else:
            raise argparse.ArgumentTypeError(f"{part!r}: expected N or shift=N")
    if shift is None:
        raise argparse.ArgumentTypeError("expected N or shift=N")
    return shift


_stdout_open = True


def _uart_writer(data: bytes) -> None:
    """Guest UART output to stdout. Once stdout is gone (``| head`` has exited) the output is dropped
    and the guest runs on, as on QEMU (one warning line; never an exception into the emulator)."""
    global _stdout_open
    if not _stdout_open:
        return
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except (BrokenPipeError, OSError, ValueError) as error:
        _stdout_open = False
        # Python would report the same failure again when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        print(f"e500-gdbstub: warning: stdout: {reason}; guest UART output is dropped from now on",
              file=sys.stderr)


class ConsoleInput:
    """Bytes from a file descriptor (stdin) to the guest UART's receive queue, without blocking.

    A pipe or file always feeds the UART; a terminal only with ``terminal=True`` and only while this
    process is its foreground job.

    ``poll()`` takes whatever is ready now; it returns False once the input has ended (EOF, a closed
    or unusable descriptor), after which nothing more is read.
    """

    def __init__(self, fd: int, feed: Callable[[bytes], None], *, terminal: bool = True) -> None:
        self.fd = fd
        self.feed = feed
        try:
            mode = os.fstat(fd).st_mode
            self.is_terminal = os.isatty(fd)
        except OSError:
            self.open = False
            return
        # A terminal is read only when asked (`--run`): a stub started with `&` from a shell would
        # otherwise be stopped by SIGTTIN the first time the user types into that shell.
        self.open = terminal or not self.is_terminal
        # A regular file never blocks (and epoll refuses one): hand it over whole, now.
        if stat.S_ISREG(mode):
            while self._read_some():
                pass

    def _read_some(self) -> bool:
        try:
            data = os.read(self.fd, _CONSOLE_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.open = False
            return False
        self.feed(data)
        return True

    def _in_background(self) -> bool:
        """True while this process is not the terminal's foreground job (reading would stop it)."""
        try:
            return self.is_terminal and os.tcgetpgrp(self.fd) != os.getpgrp()
        except OSError:
            return False

    def poll(self) -> bool:
        if self._in_background():
            return self.open
        while self.open:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0)
            except (OSError, ValueError):
                self.open = False
                break
            if not ready or not self._read_some():
                break
        return self.open

    def watched_fd(self) -> int | None:
        """What the server waits on while input may come (see ``gdbstub.server.Watched``)."""
        return self.fd if self.open else None

    def on_readable(self) -> None:
        self._read_some()


class PacedUartInput:
    """Host input waiting for the guest UART, handed over as the UART can take it (``--run``).

    QEMU's serial model accepts input only while its receiver has room: one byte with the FIFO off,
    sixteen with it on. Here the hand-over happens between run slices of :data:`INPUT_SLICE`
    instructions, only when the receiver is empty: so a guest that initialises its UART (and so
    clears the receiver) loses at most what QEMU would, a pipe's bytes reach the guest within a
    slice of arriving, and input from a file (all there from the start) reaches the guest at the
    same instruction counts in every run.
    """

    def __init__(self, uart: Any) -> None:
        self.uart = uart
        self.pending = bytearray()

    def feed(self, data: bytes) -> None:
        self.pending += data

    def deliver(self) -> None:
        room = self.uart.receive_room() if self.pending else 0
        if room:
            self.uart.feed(bytes(self.pending[:room]))
            del self.pending[:room]


def run_to_power_off(vcpu: Vcpu | Sequence[Vcpu], model_name: str, console: UartInput | None = None,
                     paced: PacedUartInput | None = None, insn_limit: int | None = None) -> int:
    """Run the guest without a debugger; returns its power-off status. Otherwise, after one line on
    stderr: :data:`EXIT_INSN_LIMIT` once it has run ``insn_limit`` instructions, or
    :data:`EXIT_GUEST_STOPPED` when it stops for good (a checkstop: QEMU's "Entering checkstop state").

    While input is waiting (``paced``) or may still come (``console`` open), slices are short
    (:data:`INPUT_SLICE`) so that typed input reaches the guest promptly.
    """
    target = Target(vcpu, model_name)
    target.insn_limit = insn_limit
    target.prepare_resume(step=False)
    while True:
        if console is not None and console.open:
            console.poll()
        waiting = False
        if paced is not None and paced.pending:
            waiting = True
            paced.deliver()
        slice_size = INPUT_SLICE if waiting or (console is not None and console.open) else RUN_SLICE
        stop = target.run_slice(slice_size)
        if stop is None:
            continue
        if stop.exit_status is not None:
            return stop.exit_status
        if stop.insn_limit:
            return _report_insn_limit(target)
        print(f"e500-gdbstub: {target.describe_stop(stop)}", file=sys.stderr)
        return EXIT_GUEST_STOPPED


def _report_insn_limit(target: Target) -> int:
    print(f"e500-gdbstub: {INSN_LIMIT_MESSAGE}: the guest executed {target.insns_run} instructions "
          f"(--max-insns {target.insn_limit}) without powering off; stopped at pc {target.pc:#010x}",
          file=sys.stderr, flush=True)
    return EXIT_INSN_LIMIT


def _is_only(error: BaseException, kind: type[BaseException]) -> bool:
    """True for a ``kind`` exception, also when trio delivers it inside an exception group (Ctrl-C's
    KeyboardInterrupt, Ctrl-A x's ConsoleQuit)."""
    if isinstance(error, kind):
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_is_only(inner, kind) for inner in error.exceptions)
    return False


class UartInput(Protocol):
    """What feeds the guest UART between run slices: stdin (:class:`ConsoleInput`) or a ``-serial``."""

    @property
    def open(self) -> bool: ...

    def poll(self) -> bool: ...


def _show_on_terminal(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _open_serial(spec: SerialSpec) -> SocketSerial | FileSerial | NullSerial | None:
    """The ``-serial`` backend; None for stdio (the console of this process)."""
    if spec.kind == "stdio":
        return None
    if spec.kind == "null":
        return NullSerial()
    if spec.kind == "file":
        return FileSerial(spec.path)
    return SocketSerial(spec)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; Ctrl-C in any state is one line on stderr and exit status 130."""
    try:
        return _main(argv)
    except BaseException as error:
        if _is_only(error, ConsoleQuit):
            print("\ne500-gdbstub: terminated (Ctrl-A x)", file=sys.stderr)
            return 0
        if not _is_only(error, KeyboardInterrupt):
            raise
        print("e500-gdbstub: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="e500-gdbstub: %(message)s")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: must be 0..65535")
    if args.image is not None and args.kernel is not None:
        parser.error("give the kernel once: as IMAGE.elf or as -kernel FILE")
    kernel = args.image if args.image is not None else args.kernel
    if kernel is None and args.bios is None:
        parser.error("nothing to run: give IMAGE.elf (or -kernel FILE) or -bios FILE")
    if args.max_insns is not None and args.max_insns < 1:
        parser.error(f"--max-insns {args.max_insns}: must be at least 1")
    terminal_console = args.serial is not None and args.serial.kind == "stdio"
    try:
        serial = _open_serial(args.serial) if args.serial is not None else None
    except OSError as error:
        print(f"e500-gdbstub: -serial {args.serial.text}: {error.strerror or error}", file=sys.stderr)
        return EXIT_IMAGE
    try:
        machine = Machine(model_name=args.cpu, ram_size=args.ram,
                          uart_out=_uart_writer if serial is None else serial.write, icount_shift=args.icount,
                          smp=args.smp)
        machine.load(BootFiles(kernel=kernel, bios=args.bios, initrd=args.initrd, dtb=args.dtb,
                               append=args.append))
        vcpus = [Vcpu(machine, sw_break=args.sw_break, index=index) for index in range(args.smp)]
    except (ImageError, ValueError, OSError) as error:
        print(f"e500-gdbstub: {error}", file=sys.stderr)
        return EXIT_IMAGE
    if not machine.entry_in_image():
        print(f"e500-gdbstub: warning: {machine.path}: the entry point {machine.entry:#x} lies outside every "
              "loadable segment; starting there anyway, as QEMU does", file=sys.stderr)
    if isinstance(serial, SocketSerial):
        print(f"e500-gdbstub: serial on {serial.address}", file=sys.stderr, flush=True)
        if args.serial.server and args.serial.wait:
            print(f"e500-gdbstub: waiting for a connection on {serial.address} (add ,nowait not to wait)",
                  file=sys.stderr, flush=True)
            serial.wait_for_client()
    # An explicit -serial stdio: the terminal in raw mode with QEMU's Ctrl-A commands, in both modes.
    terminal = RawTerminal(0) if terminal_console else contextlib.nullcontext()
    if args.run:
        paced = PacedUartInput(machine.bus.uart0)
        feed: Callable[[bytes], None] = paced.feed
        if terminal_console:
            feed = EscapeFilter(feed, _show_on_terminal)
        console: UartInput = ConsoleInput(0, feed, terminal=True) if serial is None else serial
        if isinstance(serial, SocketSerial):
            serial.feed = paced.feed
        with terminal:
            return run_to_power_off(vcpus, args.cpu, console, paced, args.max_insns)
    if isinstance(serial, SocketSerial):
        serial.feed = machine.bus.uart0.feed
        console = serial
    elif serial is None:
        feed = machine.bus.uart0.feed
        if terminal_console:
            feed = EscapeFilter(feed, _show_on_terminal)
        console = ConsoleInput(0, feed, terminal=terminal_console)
    else:
        console = serial
    from gdbstub.server import GdbServer, PacketLog, Watched  # only the server path needs trio
    packet_log = None
    if args.log_packets:
        try:
            packet_log = PacketLog(open(args.log_packets, "w", buffering=1, encoding="utf-8"))  # noqa: SIM115
        except OSError as error:
            print(f"e500-gdbstub: --log-packets {args.log_packets}: {error.strerror or error}",
                  file=sys.stderr)
            return EXIT_IMAGE
    watched: list[Watched] = []
    if isinstance(console, ConsoleInput | SocketSerial) and console.open:
        watched.append(console)
    server = GdbServer(vcpus, args.cpu, port=args.port, watched=watched,
                       range_stepping=args.range_stepping, packet_log=packet_log)
    server.target.insn_limit = args.max_insns
    try:
        with terminal:
            server.run()
    except OSError as error:
        print(f"e500-gdbstub: cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return EXIT_IMAGE
    if server.target.insn_limit_reached:
        return _report_insn_limit(server.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

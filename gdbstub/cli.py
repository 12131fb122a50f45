"""Command line: ``e500-gdbstub IMAGE.elf`` serves the guest to gdb; ``--run`` runs it without gdb.

Builds the ppce500 machine (:mod:`emulator.board`), loads the image, wraps it in the KVM-shaped vCPU
(:mod:`emulator.kvm`) and either hands it to :class:`gdbstub.server.GdbServer` or runs it to power-off
with the UART on stdout, exiting with the guest's power-off status (or 124 once ``--max-insns`` is
used up, in either mode). stdin feeds the UART's receiver, as
QEMU's ``-nographic`` console does (a terminal only with ``--run``; see :class:`ConsoleInput`). Every
user error (missing or bad image, bad flag) is one readable line on stderr and a non-zero exit status,
never a traceback.

Imports: standard library, trio, :mod:`emulator.board`, :mod:`emulator.kvm`, :mod:`emulator.models`
and :mod:`gdbstub`.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import stat
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from emulator.board import ImageError, Machine
from emulator.kvm import Vcpu
from emulator.models import MODELS
from gdbstub.target import Target

EXIT_USAGE = 2
EXIT_IMAGE = 1
# --max-insns used up. Exit statuses are 8 bits and a guest may power off with any of them, so no value
# is unambiguous by itself: 124 is GNU timeout's "timed out", and the one stderr line (INSN_LIMIT_MESSAGE)
# is what tells it apart from a guest that powered off with 124.
EXIT_INSN_LIMIT = 124
INSN_LIMIT_MESSAGE = "instruction limit reached"
RUN_SLICE = 1 << 20
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
                    "extended-remote', 'kill' keeps the connection and 'run' restarts the guest.")
    parser.add_argument("image", metavar="IMAGE.elf", help="32-bit big-endian PowerPC ELF to load")
    parser.add_argument("--cpu", choices=sorted(MODELS), default="e500v2", help="core model (default e500v2)")
    parser.add_argument("--port", type=int, default=1234,
                        help="TCP port on 127.0.0.1 (default 1234; 0 picks a free port)")
    parser.add_argument("--sw-break", choices=("trap", "ehpriv", "auto"), default="auto",
                        help="soft-breakpoint opcode: trap (tw 31,0,0), ehpriv (ehpriv 1, e500mc only) or "
                             "auto (the model's default)")
    parser.add_argument("--ram", type=int, default=128, metavar="MiB", help="guest RAM in MiB (default 128)")
    parser.add_argument("--run", action="store_true",
                        help="run the guest without gdb until it powers off; exit with its status "
                             "(stdin, also a terminal, feeds the guest UART; when serving gdb only a "
                             "pipe or file does)")
    parser.add_argument("--no-range-stepping", dest="range_stepping", action="store_false",
                        help="do not offer gdb range stepping (vCont;r): gdb 13's 'record full' needs "
                             "this to record every instruction of a 'step' or 'next'")
    parser.add_argument("--max-insns", type=int, metavar="N",
                        help="stop after the guest has executed N instructions from boot without "
                             f"powering off: one line on stderr and exit status {EXIT_INSN_LIMIT} "
                             "(gdb sees the guest terminated by SIGXCPU); counted in guest instructions, "
                             "so the stop is at the same instruction in every run")
    parser.add_argument("-v", "--verbose", action="store_true", help="log protocol events to stderr")
    return parser


def _uart_writer(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


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

    async def forward(self) -> None:
        """Trio task for the server: feed the UART whenever input arrives, until it ends."""
        import trio

        while self.open:
            try:
                await trio.lowlevel.wait_readable(self.fd)
            except OSError:
                self.open = False
                break
            self._read_some()


def run_to_power_off(vcpu: Vcpu, model_name: str, console: ConsoleInput | None = None,
                     insn_limit: int | None = None) -> int:
    """Run the guest without a debugger; returns its power-off status, or :data:`EXIT_INSN_LIMIT`
    (with the message on stderr) once it has run ``insn_limit`` instructions."""
    target = Target(vcpu, model_name)
    target.insn_limit = insn_limit
    while True:
        if console is not None and console.open:
            console.poll()
        stop = target.run_slice(RUN_SLICE)
        if stop is not None and stop.exit_status is not None:
            return stop.exit_status
        if stop is not None and stop.insn_limit:
            return _report_insn_limit(target)


def _report_insn_limit(target: Target) -> int:
    print(f"e500-gdbstub: {INSN_LIMIT_MESSAGE}: the guest executed {target.insns_run} instructions "
          f"(--max-insns {target.insn_limit}) without powering off; stopped at pc {target.pc:#010x}",
          file=sys.stderr, flush=True)
    return EXIT_INSN_LIMIT


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="e500-gdbstub: %(message)s")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: must be 0..65535")
    if not 1 <= args.ram <= 2048:
        parser.error(f"--ram {args.ram}: must be 1..2048 MiB")
    if args.max_insns is not None and args.max_insns < 1:
        parser.error(f"--max-insns {args.max_insns}: must be at least 1")
    try:
        machine = Machine(model_name=args.cpu, ram_size=args.ram << 20, uart_out=_uart_writer)
        machine.load_elf(args.image)
        vcpu = Vcpu(machine, sw_break=args.sw_break)
    except (ImageError, ValueError, OSError) as error:
        print(f"e500-gdbstub: {error}", file=sys.stderr)
        return EXIT_IMAGE
    console = ConsoleInput(0, machine.bus.uart0.feed, terminal=args.run)
    if args.run:
        try:
            return run_to_power_off(vcpu, args.cpu, console, args.max_insns)
        except KeyboardInterrupt:
            print("e500-gdbstub: interrupted", file=sys.stderr)
            return 130
    import trio  # only the server path needs it

    from gdbstub.server import GdbServer
    server = GdbServer(vcpu, args.cpu, port=args.port, companions=[console.forward] if console.open else [],
                       range_stepping=args.range_stepping)
    server.target.insn_limit = args.max_insns
    try:
        trio.run(server.serve)
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"e500-gdbstub: cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return EXIT_IMAGE
    if server.target.insn_limit_reached:
        return _report_insn_limit(server.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Linux boot on this emulator against QEMU: wall time to the console line ``Run /init as init process``
and to power-off, and this engine's instruction counts at both points, for the test kernels
examples/bin/linux-CPU.elf (examples/linux/); and the SMP kernel linux-smp-e500v2.elf on ``--smp``
cores, both machines timed as whole processes.

QEMU's instruction count to power-off comes from a TCG plugin built here (benchmarks/qemu_insn_count.c:
Debian 12's qemu-system-ppc can load plugins but ships none), in a run of its own with this emulator's
guest clock (``-icount shift=8``). QEMU's wall times are for the whole process, start-up included.
Figures only: nothing here asserts a speed. A kernel that does not power off (no MPIC: /init's output
never leaves the UART driver, or a panic) is reported as such after ``--limit`` instructions.

Each uniprocessor kernel boots twice on this emulator: cold, in this process with an empty region
store (every region compiled during the boot), then warm, as ``--run`` in a new process that reads
the regions the cold boot stored (as a user's second boot of the same kernel does).

Run: ``.venv/bin/python benchmarks/linux_boot.py [--cpu e500v2|e500mc|both]``. Imports the product's
:mod:`emulator` (board and vCPU), the standard library, ``benchmarks/peers.py`` and
``tests/support/qemu_machine.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from support.qemu_machine import QEMU_BINARY, ppce500_command  # noqa: E402

from emulator import kvm  # noqa: E402
from emulator.board import Machine  # noqa: E402

SLICE = 200_000
INIT_LINE = b"Run /init as init process"
DEFAULT_LIMIT = 200_000_000


@dataclass
class Boot:
    """One boot: seconds and instructions to the /init line (None if never printed) and to the end."""

    init_seconds: float | None
    init_instructions: int | None
    end_seconds: float
    end_instructions: int | None
    powered_off: bool


def boot_on_emulator(elf: Path, cpu: str, limit: int) -> Boot:
    output = bytearray()
    machine = Machine(model_name=cpu, uart_out=output.extend)
    machine.load_elf(str(elf))
    machine.reset()
    vcpu = kvm.Vcpu(machine)
    init_seconds: float | None = None
    init_instructions: int | None = None
    started = time.perf_counter()
    first = machine.cpu.instructions
    reason = kvm.KVM_EXIT_INTR
    while machine.cpu.instructions - first < limit:
        reason = vcpu.run(SLICE)
        # Checked per slice: the /init figures are late by at most one slice (0.2 M instructions).
        if init_seconds is None and INIT_LINE in output:
            init_seconds = time.perf_counter() - started
            init_instructions = machine.cpu.instructions - first
        if reason != kvm.KVM_EXIT_INTR:
            break
    return Boot(init_seconds, init_instructions, time.perf_counter() - started,
                machine.cpu.instructions - first, reason == kvm.KVM_EXIT_SYSTEM_EVENT)


def boot_whole_process(command: list[str]) -> Boot:
    """Wall time of a whole process booting a kernel (start-up included) to /init and to its exit."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    init_seconds: float | None = None
    for line in iter(process.stdout.readline, b""):
        if init_seconds is None and INIT_LINE in line:
            init_seconds = time.perf_counter() - started
    status = process.wait()
    return Boot(init_seconds, None, time.perf_counter() - started, None, status == 0)


def boot_on_qemu(elf: Path, cpu: str, *extra: str) -> Boot | None:
    binary = shutil.which(QEMU_BINARY)
    if binary is None:
        return None
    return boot_whole_process(ppce500_command(elf, cpu, *extra, binary=binary))


def describe(name: str, boot: Boot) -> str:
    init = "never" if boot.init_seconds is None else f"{boot.init_seconds:.2f} s"
    if boot.init_instructions is not None:
        init += f" ({boot.init_instructions / 1e6:.1f} M instructions)"
    end = "to power-off" if boot.powered_off else "no power-off, stopped after"
    total = f"{boot.end_seconds:.2f} s"
    if boot.end_instructions is not None:
        total += f" ({boot.end_instructions / 1e6:.1f} M instructions, " \
                 f"{boot.end_instructions / boot.end_seconds / 1e6:.2f} MIPS)"
    return f"{name}: to 'Run /init' {init}; {end} {total}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="both", choices=["e500v2", "e500mc", "both"])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"instructions after which a boot that has not powered off is stopped "
                             f"(default {DEFAULT_LIMIT:,})")
    parser.add_argument("--smp", type=int, default=2,
                        help="cores of the SMP kernel's boot, both machines as whole processes (default 2; "
                             "0 skips it)")
    args = parser.parse_args()
    for cpu in ("e500v2", "e500mc") if args.cpu == "both" else (args.cpu,):
        elf = REPO / "examples" / "bin" / f"linux-{cpu}.elf"
        print(f"== {elf.name}")
        print(describe("this emulator, cold (in process)", boot_on_emulator(elf, cpu, args.limit)))
        print(describe("this emulator, warm (--run, whole process)", boot_whole_process(
            [sys.executable, "-m", "gdbstub", "--run", "--cpu", cpu, str(elf)])))
        qemu = boot_on_qemu(elf, cpu)
        print(f"{QEMU_BINARY}: not installed" if qemu is None
              else describe("qemu (TCG, whole process)", qemu))
        binary = shutil.which(QEMU_BINARY)
        if binary is not None:
            with tempfile.TemporaryDirectory(prefix="qemu-count-") as work:
                counted = peers.qemu_instruction_count(
                    ppce500_command(elf, cpu, "-icount", "shift=8,sleep=off", binary=binary), Path(work))
            print("qemu instructions to power-off (-icount shift=8, this emulator's clock; a TCG plugin "
                  "counting whole blocks): " + ("unavailable (no gcc or no plugin support)" if counted is None
                                               else f"{counted / 1e6:.1f} M"))
    if args.smp:
        elf = REPO / "examples" / "bin" / "linux-smp-e500v2.elf"
        print(f"== {elf.name}, -smp {args.smp}")
        command = [sys.executable, "-m", "gdbstub", "--run", "-smp", str(args.smp), str(elf)]
        smp_boot = boot_whole_process(command)
        print(describe("this emulator (--run, whole process, cold for this kernel)", smp_boot))
        qemu = boot_on_qemu(elf, "e500v2", "-smp", str(args.smp))
        print(f"{QEMU_BINARY}: not installed" if qemu is None
              else describe("qemu (TCG, whole process)", qemu))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # Cold: this process compiles every region itself (an empty region store, emulator/region_store.py);
    # warm: the whole-process boot after it reads what the cold boot stored.
    with tempfile.TemporaryDirectory(prefix="linux-regions-") as store:
        os.environ["E500_GDBSTUB_CODE_CACHE"] = store
        raise SystemExit(main())

"""Guest execution speed of this emulator, against its peers, and the stub's start-up time.

Reports, for the integer compute guest (benchmarks/bin/compute-*.elf): guest instructions, wall time,
MIPS and peak RSS for this engine; the same ELF on unicorn and QEMU when they are installed, with the
ratios; the cost of armed-but-idle debugging (1000 soft breakpoints never hit plus both DACs on an
untouched page) as a ratio against none; and the start-up time of ``e500-gdbstub`` to its
``listening`` line. Figures only: nothing here asserts a speed.

Run: ``.venv/bin/python benchmarks/engine.py [--cpu e500v2] [--rounds N]``; each guest run is a fresh
process. Imports the product's :mod:`emulator` (board and vCPU), the standard library and
``benchmarks/peers.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import peers  # noqa: E402

from emulator import kvm  # noqa: E402
from emulator.board import Machine  # noqa: E402

SLICE = 1_000_000
IDLE_BREAKPOINTS = 1000
# An untouched page: far above the guest's image, stack and data, but inside the 64 MiB boot mapping.
UNTOUCHED_PAGE = 0x03000000


def run_guest(elf: Path, cpu: str, armed: bool) -> tuple[int, float, str, int]:
    """Run the guest to power-off; returns (instructions, seconds, uart text, exit status)."""
    output = bytearray()
    machine = Machine(model_name=cpu, uart_out=output.extend)
    machine.load_elf(str(elf))
    machine.reset()
    vcpu = kvm.Vcpu(machine)
    if armed:
        arm_idle_debugging(vcpu, machine)
    started = time.perf_counter()
    before = machine.cpu.instructions
    while True:
        reason = vcpu.run(SLICE)
        if reason != kvm.KVM_EXIT_INTR:
            break
    seconds = time.perf_counter() - started
    if reason != kvm.KVM_EXIT_SYSTEM_EVENT:
        raise SystemExit(f"guest stopped with exit reason {reason}, not power-off")
    status = vcpu.last_exit_status if hasattr(vcpu, "last_exit_status") else 0
    return machine.cpu.instructions - before, seconds, output.decode("latin-1"), status


def arm_idle_debugging(vcpu: kvm.Vcpu, machine: Machine) -> None:
    """1000 soft breakpoints on words the guest never executes plus both DACs on an untouched page."""
    for index in range(IDLE_BREAKPOINTS):
        vcpu.insert_sw_breakpoint(UNTOUCHED_PAGE + 0x10000 + 4 * index)
    entries = [(UNTOUCHED_PAGE, kvm.KVMPPC_DEBUG_WATCH_WRITE),
               (UNTOUCHED_PAGE + 0x100, kvm.KVMPPC_DEBUG_WATCH_READ)]
    slots = [{"addr": address, "type": kind, "reserved": 0} for address, kind in entries]
    slots += [{"addr": 0, "type": 0, "reserved": 0}] * (kvm.KVM_GUEST_DEBUG_BP_COUNT - len(slots))
    control = kvm.KVM_GUESTDBG_ENABLE | kvm.KVM_GUESTDBG_USE_SW_BP | kvm.KVM_GUESTDBG_USE_HW_BP
    vcpu.set_guest_debug(kvm.kvm_guest_debug.build({"control": control, "pad": 0, "arch": {"bp": slots}}))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def startup_seconds(elf: Path) -> float:
    """Wall time from process start to the stub's `listening on` line."""
    python = sys.executable
    started = time.perf_counter()
    process = subprocess.Popen([python, "-m", "gdbstub", str(elf), "--port", "0"],
                               cwd=HERE.parent, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        elapsed = time.perf_counter() - started
        if not line.startswith("listening on"):
            raise SystemExit(f"unexpected first stderr line from the stub: {line!r}")
        return elapsed
    finally:
        process.kill()
        process.wait()


def measure_in_child(elf: Path, cpu: str, armed: bool) -> tuple[int, float, str, float]:
    """One run in a fresh interpreter, so neither kind inherits the other's compiled blocks (the
    translator memoises code objects per process) or its memory peak."""
    mode = "armed" if armed else "plain"
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--cpu", cpu, "--elf", str(elf)],
                          capture_output=True, text=True, check=False)
    fields = done.stdout.split()
    if done.returncode or len(fields) != 5 or fields[0] != "RESULT":
        raise SystemExit(f"{mode} run failed:\n{done.stdout}{done.stderr}")
    return int(fields[1]), float(fields[2]), bytes.fromhex(fields[3][1:]).decode("latin-1"), float(fields[4])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="e500v2", choices=["e500v2", "e500mc"])
    parser.add_argument("--elf", type=Path, help="guest to run (default: benchmarks/bin/compute-CPU.elf)")
    parser.add_argument("--skip-armed", action="store_true", help="do not measure armed-but-idle cost")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating plain/armed runs; the fastest of each kind is reported (default 2)")
    parser.add_argument("--child", choices=["plain", "armed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    elf = args.elf or HERE / "bin" / f"compute-{args.cpu}.elf"
    if args.child:
        instructions, seconds, text, _status = run_guest(elf, args.cpu, armed=args.child == "armed")
        print("RESULT", instructions, seconds, "x" + text.encode("latin-1").hex(), peak_rss_mib())
        return 0

    plain_runs, armed_runs = [], []
    for _ in range(max(1, args.rounds)):
        plain_runs.append(measure_in_child(elf, args.cpu, armed=False))
        if not args.skip_armed:
            armed_runs.append(measure_in_child(elf, args.cpu, armed=True))
    instructions, seconds, text, rss = min(plain_runs, key=lambda run: run[1])
    ours = instructions / seconds / 1e6
    print(f"guest: {elf.name} ({args.cpu}), {instructions:,} instructions, output {text.strip()!r}")
    print(f"this engine: {seconds:.2f} s, {ours:.2f} MIPS (fastest of {len(plain_runs)} fresh processes), "
          f"peak RSS {rss:.0f} MiB")

    if armed_runs:
        armed_instructions, armed_seconds, armed_text, _ = min(armed_runs, key=lambda run: run[1])
        if armed_text != text or armed_instructions != instructions:
            raise SystemExit("armed-but-idle run diverged from the plain run")
        armed = armed_instructions / armed_seconds / 1e6
        print(f"armed but idle (1000 soft breakpoints + 2 DACs, never hit): {armed:.2f} MIPS, "
              f"{(seconds / armed_seconds):.3f}x the unarmed rate "
              f"({100 * (armed_seconds / seconds - 1):+.1f} % time)")

    if args.cpu == "e500v2":
        try:
            unicorn = peers.run_unicorn(elf)
        except ImportError:
            print("unicorn: not installed")
        else:
            if unicorn.output.strip() != text.strip():
                print(f"unicorn output differs: {unicorn.output!r}")
            rate = instructions / unicorn.seconds / 1e6
            print(f"unicorn: {unicorn.seconds:.3f} s, {rate:.0f} MIPS; this engine is "
                  f"{ours / rate:.4f}x unicorn")
    qemu = peers.run_qemu(elf, args.cpu)
    if qemu is None:
        print("qemu-system-ppc: not installed")
    else:
        rate = instructions / qemu.seconds / 1e6
        print(f"qemu (TCG, whole process incl. start-up): {qemu.seconds:.3f} s, {rate:.0f} MIPS; "
              f"this engine is {ours / rate:.4f}x QEMU")
    print(f"stub start-up to 'listening': {startup_seconds(elf) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # The engine alone: every process compiles its own regions (no region store, emulator/region_store.py),
    # so the fastest of several fresh processes is not simply the one that found the most stored.
    os.environ.setdefault("E500_GDBSTUB_CODE_CACHE", "off")
    raise SystemExit(main())

"""Runs a benchmark ELF on the peer engines (unicorn, QEMU) for comparison with this emulator.

Benchmark support only: imports the standard library, pyelftools, tests/support/qemu_machine.py (the
QEMU command line) and (when installed) unicorn; it never imports the product packages, so a peer
measurement cannot be skewed by our code.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from tests.support.qemu_machine import ppce500_command

RAM_SIZE = 128 << 20
CCSR_EA = 0xE0000000  # where the examples' start-up code maps CCSR
UART_THR_EA = CCSR_EA + 0x4500
UART_LSR_EA = CCSR_EA + 0x4505
GPIO_GPDAT_EA = CCSR_EA + 0xFF008
BOOT_STACK = 0x00FFFFF8
EPAPR_MAGIC = 0x45504150
INITIAL_MAP_SIZE = 0x04000000


@dataclass
class PeerResult:
    engine: str
    instructions: int | None
    seconds: float
    output: str

    @property
    def mips(self) -> float | None:
        if not self.instructions or self.seconds <= 0:
            return None
        return self.instructions / self.seconds / 1e6


def _load_segments(path: Path) -> tuple[int, list[tuple[int, bytes, int]]]:
    with path.open("rb") as stream:
        elf = ElfFileView(ELFFile(stream))
        return elf.entry, elf.segments


class ElfFileView:
    """The loadable segments and entry point of an ELF, read eagerly so the file can be closed."""

    def __init__(self, elf: ELFFile) -> None:
        self.entry: int = elf.header.e_entry
        self.segments: list[tuple[int, bytes, int]] = [
            (seg["p_paddr"], seg.data(), seg["p_memsz"])
            for seg in elf.iter_segments()
            if seg["p_type"] == "PT_LOAD"
        ]


def run_unicorn(path: Path, count_instructions: bool = False) -> PeerResult:
    """Run the ELF on unicorn's e500v2 model until the power-off GPIO write."""
    from unicorn import (
        UC_ARCH_PPC,
        UC_HOOK_BLOCK,
        UC_HOOK_MEM_READ,
        UC_HOOK_MEM_WRITE,
        UC_MODE_BIG_ENDIAN,
        UC_MODE_PPC32,
        Uc,
    )
    from unicorn import ppc_const as ppc

    entry, segments = _load_segments(path)
    uc = Uc(UC_ARCH_PPC, UC_MODE_PPC32 | UC_MODE_BIG_ENDIAN)
    uc.ctl_set_cpu_model(ppc.UC_CPU_PPC32_E500V2_V30)
    uc.mem_map(0, RAM_SIZE)
    uc.mem_map(CCSR_EA, 1 << 20)
    for address, data, memsz in segments:
        uc.mem_write(address, data + bytes(memsz - len(data)))
    uc.reg_write(ppc.UC_PPC_REG_1, BOOT_STACK)
    uc.reg_write(ppc.UC_PPC_REG_6, EPAPR_MAGIC)
    uc.reg_write(ppc.UC_PPC_REG_7, INITIAL_MAP_SIZE)
    output = bytearray()
    executed = [0]

    def on_write(uc_: Uc, _access: int, address: int, _size: int, value: int, _user: object) -> None:
        if address == UART_THR_EA:
            output.append(value & 0xFF)
        elif address == GPIO_GPDAT_EA and value & 0x80000000:
            uc_.emu_stop()

    def on_read(uc_: Uc, _access: int, address: int, _size: int, _value: int, _user: object) -> None:
        if address == UART_LSR_EA:
            uc_.mem_write(UART_LSR_EA, b"\x60")

    def on_block(_uc: Uc, _address: int, size: int, _user: object) -> None:
        executed[0] += size // 4

    uc.hook_add(UC_HOOK_MEM_WRITE, on_write, begin=CCSR_EA, end=CCSR_EA + (1 << 20) - 1)
    uc.hook_add(UC_HOOK_MEM_READ, on_read, begin=UART_LSR_EA, end=UART_LSR_EA)
    if count_instructions:
        uc.hook_add(UC_HOOK_BLOCK, on_block)
    started = time.perf_counter()
    uc.emu_start(entry, 0xFFFFFFFF)
    seconds = time.perf_counter() - started
    return PeerResult("unicorn", executed[0] if count_instructions else None, seconds,
                      output.decode("latin-1"))


def run_qemu(path: Path, cpu: str = "e500v2", timeout: float = 300.0) -> PeerResult | None:
    """Run the ELF on qemu-system-ppc -M ppce500 until it powers off; None if QEMU is not installed."""
    qemu = shutil.which("qemu-system-ppc")
    if qemu is None:
        return None
    command = ppce500_command(path, cpu, binary=qemu)
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    return PeerResult("qemu", None, seconds, completed.stdout.decode("latin-1"))


INSN_COUNT_PLUGIN_SOURCE = Path(__file__).resolve().parent / "qemu_insn_count.c"


def qemu_instruction_count(command: list[str], work: Path, timeout: float = 300.0) -> int | None:
    """Instructions QEMU executes running ``command`` (a qemu-system-ppc line) to its exit, counted by
    the plugin benchmarks/qemu_insn_count.c, built here with the host gcc; None when gcc or QEMU's
    plugin support is missing or the run fails."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    plugin, result = work / "qemu_insn_count.so", work / "qemu_insn_count.txt"
    built = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(plugin), str(INSN_COUNT_PLUGIN_SOURCE)],
                           capture_output=True, check=False)
    if built.returncode != 0:
        return None
    result.unlink(missing_ok=True)
    subprocess.run([*command, "-plugin", f"{plugin},out={result}"], stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=timeout, check=False)
    try:
        return int(result.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None

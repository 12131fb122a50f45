"""The QEMU ``ppce500`` machine: RAM + CCSR bus, MMU and e500 core, ELF loading, and the exact boot
state QEMU's ``-kernel`` path gives a bare-metal guest (reference section 5.3, QEMU hw/ppc/e500.c).

Boot state produced by :meth:`Machine.reset`:

- TLB1[0]: V=1, IPROT=0, TID=0, TS=0, EPN=0 -> RPN=0, WIMGE=0, SR|SW|SX|UR|UW|UX; the size covers
  everything from 0 to the end of the device tree: ``dt_base = (lowest load address + loaded size +
  0x1800000) & ~0xFFFFF``, ``ps = floor(log2(dt_end / 1 KiB)) + 1`` rounded up to even, size = 1 KiB << ps
  (typically 64 MiB). "Loaded size" is the sum of the PT_LOAD segments' memory sizes, like QEMU's ELF
  loader returns.
- pc = e_entry, MSR = 0, r1 = 0x00FFFFF8, r3 = dt_base, r6 = 0x45504150 ("EPAP"), r7 = mapping size,
  every other GPR 0.
- The flattened device tree QEMU writes at r3 (:mod:`emulator.devicetree`). QEMU reserves and reports
  1 MiB for it (``dt_end = dt_base + 1 MiB``), so an image whose dt_base is 63 MiB gets a 256 MiB
  mapping. Checked against qemu-system-ppc 7.2: the example guests (r3 0x1900000, r7 0x4000000), and
  one-segment images at 0x2600000 (r3 0x3e00000, r7 64 MiB) and 0x2700000 (r3 0x3f00000, r7 256 MiB).

Interrupts: the MPIC's CPU 0 outputs drive the core's external and critical inputs (levels), its
global timers join the core's event schedule, and in external proxy mode the core's acknowledge of
the external input reads the MPIC's IACK into EPR (as QEMU does).

Imports: standard library, ``pyelftools``, and the other ``emulator`` modules. :mod:`emulator.cpu` is
imported lazily so the board can be built with a stand-in core (``cpu_factory``) in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from emulator.bus import DEFAULT_RAM_SIZE, PhysicalBus
from emulator.devicetree import FDT_SIZE, build_ppce500_fdt
from emulator.mmu import (
    MAS1_TSIZE_SHIFT,
    MAS1_V,
    MAS3_SR,
    MAS3_SW,
    MAS3_SX,
    MAS3_UR,
    MAS3_UW,
    MAS3_UX,
    Mmu,
)
from emulator.models import MODELS
from emulator.mpic import Mpic

EM_PPC = 20
BOOT_STACK_POINTER = 0x00FFFFF8          # r1: 16 MiB - 8
EPAPR_MAGIC = 0x45504150                 # r6
DTC_LOAD_PAD = 0x1800000
DTC_PAD_MASK = 0xFFFFF
_KIB_LOG2 = 10


class ImageError(Exception):
    """The guest image cannot be loaded; the message is one readable sentence."""


@dataclass(frozen=True)
class LoadedSegment:
    """One PT_LOAD segment kept so ``reset`` can restore RAM."""

    paddr: int
    data: bytes
    memsz: int


class _CpuLike(Protocol):
    gpr: list[int]
    pc: int
    msr: int


def qemu_initial_map_log2(dt_end: int) -> int:
    """QEMU's booke206_initial_map_tsize: log2 of the boot mapping size in KiB (always even)."""
    page_log2 = (dt_end >> _KIB_LOG2).bit_length()  # floor(log2(dt_end / 1 KiB)) + 1
    return page_log2 + (page_log2 & 1)


def kernel_extent(segments: list[LoadedSegment]) -> tuple[int, int]:
    """(lowest load address, loaded size) as QEMU's ELF loader reports them: the sum of memory sizes."""
    low = min((segment.paddr for segment in segments), default=0)
    return low, sum(segment.memsz for segment in segments)


def device_tree_base(segments: list[LoadedSegment]) -> int:
    """Where QEMU ppce500 puts the device tree (and so r3): 24 MiB past the image, 1 MiB aligned."""
    low, loaded_size = kernel_extent(segments)
    return (low + loaded_size + DTC_LOAD_PAD) & ~DTC_PAD_MASK


def _default_cpu_factory(model: Any, bus: PhysicalBus, mmu: Mmu) -> Any:
    from emulator.cpu import Cpu  # lazily: the core is built by another module and is heavy

    return Cpu(model, bus, mmu)


def connect_mpic(mpic: Mpic, cpu: Any) -> None:
    """MPIC outputs for CPU 0 to the core's external and critical inputs; its timers to the core's
    event schedule and clock; the core's interrupt acknowledge to the MPIC (EPR in proxy mode)."""
    mpic.clock = lambda: getattr(cpu, "cycles", 0)
    if hasattr(cpu, "device_events_changed"):
        mpic.events_changed = cpu.device_events_changed
        cpu.event_sources.append(mpic)
        cpu.interrupt_acknowledge = lambda: mpic.proxy_acknowledge(0)
    if hasattr(cpu, "set_external_input"):
        mpic.connect_cpu(0, cpu.set_external_input, getattr(cpu, "set_critical_input", None))


class Machine:
    """The ppce500 board: ``cpu``, ``bus``, ``mmu``, the loaded image, and QEMU's boot state."""

    def __init__(self, model_name: str = "e500v2", ram_size: int = DEFAULT_RAM_SIZE,
                 uart_out: Callable[[bytes], object] | None = None,
                 cpu_factory: Callable[[Any, PhysicalBus, Mmu], Any] | None = None) -> None:
        try:
            self.model = MODELS[model_name]
        except KeyError:
            known = ", ".join(sorted(MODELS))
            raise ValueError(f"unknown CPU model {model_name!r} (known: {known})") from None
        self.model_name = model_name
        self.bus = PhysicalBus(ram_size, uart_out)
        self.mmu = Mmu(self.model)
        self.cpu = (cpu_factory or _default_cpu_factory)(self.model, self.bus, self.mmu)
        self._connect_interrupts()
        self.entry = 0
        self.path: str | None = None
        self.segments: list[LoadedSegment] = []
        self.symbols: dict[str, int] = {}
        self.image_ranges: list[tuple[int, int]] = []
        self.dt_base = 0
        self.initial_map_size = 0

    def _connect_interrupts(self) -> None:
        connect_mpic(self.bus.mpic, self.cpu)

    def describe_pic(self) -> str:
        """The interrupt controller's state as text (a debugger's ``info pic``)."""
        return self.bus.mpic.describe()

    @property
    def ram_size(self) -> int:
        return self.bus.ram_size

    # --- image loading ----------------------------------------------------------------------------------
    def load_elf(self, path: str) -> None:
        """Load a 32-bit big-endian PowerPC executable and put the machine in its boot state."""
        try:
            with open(path, "rb") as image_file:
                segments, entry, symbols = self._parse_elf(ELFFile(image_file), path)
        except FileNotFoundError:
            raise ImageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{path}: is a directory, not an ELF file") from None
        except PermissionError:
            raise ImageError(f"{path}: permission denied") from None
        except (ELFError, ValueError, KeyError, EOFError) as error:
            raise ImageError(f"{path}: not a valid ELF file ({error})") from None
        self.path = path
        self.segments = segments
        self.entry = entry
        self.symbols = symbols
        self.image_ranges = [(segment.paddr, segment.paddr + segment.memsz) for segment in segments]
        self.reset()

    def _parse_elf(self, elf: ELFFile, path: str) -> tuple[list[LoadedSegment], int, dict[str, int]]:
        if elf.elfclass != 32:
            raise ImageError(f"{path}: a {elf.elfclass}-bit ELF file; the e500 needs a 32-bit image")
        if elf.little_endian:
            raise ImageError(f"{path}: a little-endian ELF file; the e500 needs a big-endian image")
        if elf.header["e_machine"] not in ("EM_PPC", EM_PPC):
            raise ImageError(f"{path}: built for {elf.header['e_machine']}, not for PowerPC (EM_PPC)")
        if elf.header["e_type"] != "ET_EXEC":
            raise ImageError(f"{path}: an ELF file of type {elf.header['e_type']}, not an executable")
        segments: list[LoadedSegment] = []
        for header in elf.iter_segments():
            if header["p_type"] != "PT_LOAD" or header["p_memsz"] == 0:
                continue
            paddr, filesz, memsz = header["p_paddr"], header["p_filesz"], header["p_memsz"]
            if filesz > memsz:
                raise ImageError(f"{path}: a segment's file size is larger than its memory size")
            if paddr + memsz > self.ram_size:
                raise ImageError(f"{path}: segment at {paddr:#x}-{paddr + memsz:#x} lies outside the "
                                 f"{self.ram_size >> 20} MiB of RAM")
            data = header.data()
            if len(data) != filesz:
                raise ImageError(f"{path}: the file is truncated inside a loadable segment")
            segments.append(LoadedSegment(paddr, data, memsz))
        if not segments:
            raise ImageError(f"{path}: the ELF file has no loadable segments")
        if device_tree_base(segments) + FDT_SIZE > self.ram_size:
            raise ImageError(f"{path}: no room for the device tree above the image in "
                             f"{self.ram_size >> 20} MiB of RAM (QEMU puts it 24 MiB past the image's end)")
        symbols: dict[str, int] = {}
        for section in elf.iter_sections():
            if not isinstance(section, SymbolTableSection) or section.name != ".symtab":
                continue
            for symbol in section.iter_symbols():
                if (symbol.name and symbol["st_shndx"] != "SHN_UNDEF"
                        and symbol["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")):
                    symbols.setdefault(symbol.name, symbol["st_value"])
        return segments, elf.header["e_entry"], symbols

    # --- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """QEMU ppce500 ``-kernel`` boot state: devices, RAM image, TLB1[0] and the boot registers."""
        self.bus.reset()
        self.bus.clear_ram()
        for segment in self.segments:
            self.bus.write_bytes(segment.paddr, segment.data)  # the rest of memsz is zero after clear_ram
        cpu = self.cpu
        cpu_reset = getattr(cpu, "reset", None)
        if callable(cpu_reset):
            cpu_reset()  # the core's own architectural reset (SPRs, timers, counters), before the MMU setup
        self.mmu.reset()

        low, loaded_size = kernel_extent(self.segments)
        self.dt_base = device_tree_base(self.segments)
        if self.segments:
            self.bus.write_bytes(self.dt_base, build_ppce500_fdt(self.model, self.ram_size, low, loaded_size))
        map_log2_kib = qemu_initial_map_log2(self.dt_base + FDT_SIZE)
        self.initial_map_size = 1 << (map_log2_kib + _KIB_LOG2)
        tsize = map_log2_kib // 2  # MMU v1 TSIZE n = 4^n KiB
        self.mmu.set_entry(1, 0, mas1=MAS1_V | (tsize << MAS1_TSIZE_SHIFT), mas2=0,
                           mas3=MAS3_SR | MAS3_SW | MAS3_SX | MAS3_UR | MAS3_UW | MAS3_UX, mas7=0)

        cpu.gpr[:] = [0] * 32
        cpu.gpr[1] = BOOT_STACK_POINTER
        cpu.gpr[3] = self.dt_base
        cpu.gpr[6] = EPAPR_MAGIC
        cpu.gpr[7] = self.initial_map_size
        cpu.msr = 0
        cpu.pc = self.entry

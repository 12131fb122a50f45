"""The QEMU ``ppce500`` machine: RAM + CCSR bus, MMU and e500 core, ELF loading, and the exact boot
state QEMU's ``-kernel`` path gives a bare-metal guest (reference section 5.3, QEMU hw/ppc/e500.c).

Boot state produced by :meth:`Machine.reset`:

- TLB1[0]: V=1, IPROT=0, TID=0, TS=0, EPN=0 -> RPN=0, WIMGE=0, SR|SW|SX|UR|UW|UX; the size covers
  everything from 0 to the end of the device tree: ``dt_base = (lowest load address + loaded size +
  0x1800000) & ~0xFFFFF``, ``ps = floor(log2(dt_end / 1 KiB)) + 1`` rounded up to even, size = 1 KiB << ps
  (typically 64 MiB). "Loaded size" is the sum of the PT_LOAD segments' memory sizes, like QEMU's ELF
  loader returns.
- pc = the entry point, MSR = 0, r1 = 0x00FFFFF8, r3 = dt_base, r6 = 0x45504150 ("EPAP"), r7 = mapping
  size, every other GPR 0.

What is loaded where, as QEMU 7.2's ppce500 does (hw/ppc/e500.c ``ppce500_init``, the ELF loader's
rules):

- The *payload* is the firmware (``bios``) when one is given, else the kernel. An ELF payload's
  PT_LOAD segments go to their physical addresses (p_paddr); the entry is e_entry, except that when
  e_entry lies in the file part of an executable segment whose p_vaddr differs from its p_paddr, it is
  moved by that segment's (p_paddr - p_vaddr) (so Linux, linked at 0xC0000000 with p_paddr 0, starts
  at its physical entry). A payload that is not an ELF may be a U-Boot legacy image (uImage: 64-byte
  header, loaded at its load address, started at its entry point; uncompressed or gzip); anything
  else is refused, as QEMU refuses a raw binary as ``-bios``.
- With a firmware payload, a kernel file is copied raw (whatever its format) to
  ``max(end of the payload, 32 MiB)`` and named in ``/chosen/qemu,boot-kernel``.
- An initrd is copied raw to ``(end of what was loaded last, at least 32 MiB, + 32 MiB) & ~16 MiB``
  and named in ``/chosen/linux,initrd-start``/``-end``; ``bootargs`` carries the command line.
- The device tree goes ``dt_base = (payload start + payload size + 24 MiB) & ~1 MiB``; a user's DTB
  (``dtb``) replaces the generated one untouched (no bootargs or initrd added, as QEMU), and its size
  counts as QEMU's loader opens it: (file size + 10,000) * 2 bytes, which its header then says.
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

import gzip
import io
import os
import stat
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from emulator.bus import DEFAULT_RAM_SIZE, PhysicalBus
from emulator.devicetree import FDT_MAGIC, FDT_SIZE, build_ppce500_fdt
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
from emulator.spin_table import RELEASE_MAP_SIZE, SPIN_TABLE_PA, SPIN_TABLE_SIZE, SpinTable
from emulator.sprs import SPR_PIR
from emulator.timers import TimeBaseFloor, icount_rate

EM_PPC = 20
# Guest time per instruction, as QEMU's `-icount shift=N`: 2^N ns. 8 (256 ns, 102.4 time-base ticks per
# instruction) makes the guest believe it runs at 3.9 MIPS, below what this engine does on a host, so
# guest time passes faster than wall time and firmware delays (U-Boot's boot countdown, udelay loops)
# cost less than their nominal length; a Linux HZ=250 tick still leaves ~15,600 instructions between
# timer interrupts, far more than the tick handler needs. See docs/fidelity.md (Timers).
DEFAULT_ICOUNT_SHIFT = 8
BOOT_STACK_POINTER = 0x00FFFFF8          # r1: 16 MiB - 8
EPAPR_MAGIC = 0x45504150                 # r6
DTC_LOAD_PAD = 0x1800000
DTC_PAD_MASK = 0xFFFFF
INITRD_LOAD_PAD = 0x2000000
INITRD_PAD_MASK = 0xFFFFFF
FIRMWARE_RESERVED = 32 << 20             # QEMU loads blobs above the first 32 MiB (where U-Boot lives)
RAM_SIZE_ALIGN = 64 << 20                # QEMU ppce500 refuses other RAM sizes
USER_DTB_ROOM = 10000                    # QEMU's load_device_tree: (file size + this) * 2 of room
PF_X = 1
UIMAGE_MAGIC = 0x27051956
UIMAGE_HEADER = struct.Struct(">7I4B32s")
UIMAGE_TYPE_KERNEL = 2
UIMAGE_COMP_NONE = 0
UIMAGE_COMP_GZIP = 1
_KIB_LOG2 = 10
MAX_SMP = 8
# Instructions a core runs before the next core's turn when there are several (see Machine). Small
# enough that a core spinning on a lock another core holds wastes little; large enough that the
# turn changes cost nothing next to the instructions.
SMP_QUANTUM = 1000
_MAS2_M = 0x4                            # memory coherence required: QEMU's release mapping sets it
_M32 = 0xFFFFFFFF


class ImageError(Exception):
    """The guest image cannot be loaded; the message is one readable sentence."""


@dataclass(frozen=True)
class LoadedSegment:
    """One PT_LOAD segment kept so ``reset`` can restore RAM."""

    paddr: int
    data: bytes
    memsz: int


@dataclass(frozen=True)
class BootFiles:
    """What the command line names, as QEMU's ``-kernel``/``-bios``/``-initrd``/``-dtb``/``-append``."""

    kernel: str | None = None
    bios: str | None = None
    initrd: str | None = None
    dtb: str | None = None
    append: str = ""


@dataclass
class _Payload:
    segments: list[LoadedSegment]
    entry: int
    symbols: dict[str, int] = field(default_factory=dict)


def user_dtb_size(blob: bytes) -> int:
    """The room QEMU's load_device_tree gives a DTB file (its header's totalsize once opened)."""
    return (len(blob) + USER_DTB_ROOM) * 2


def _read_file(path: str, what: str) -> bytes:
    try:
        # Only a regular file: open() of a FIFO with no writer would block forever, and a device or
        # socket is never an image.
        if os.path.isdir(path):
            raise ImageError(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageError(f"{path}: not a regular file (a FIFO, device or socket cannot be a {what})")
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not a {what}") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as error:
        raise ImageError(f"{path}: cannot read the {what} ({error.strerror})") from None


def _entry_from_segments(elf: ELFFile) -> int:
    """QEMU's ELF loader rule: e_entry, moved to the physical address of the executable segment
    holding it when that segment's virtual and physical addresses differ."""
    entry = elf.header["e_entry"]
    adjusted = entry
    for header in elf.iter_segments():
        if header["p_type"] != "PT_LOAD":
            continue
        vaddr, paddr = header["p_vaddr"], header["p_paddr"]
        if (vaddr != paddr and vaddr <= entry < vaddr + header["p_filesz"] and header["p_flags"] & PF_X):
            adjusted = (entry - vaddr + paddr) & 0xFFFFFFFF
    return adjusted


def parse_uimage(path: str, data: bytes) -> _Payload | None:
    """A U-Boot legacy image (uImage) kernel as QEMU's load_uimage takes it, or None if not one."""
    if len(data) < UIMAGE_HEADER.size or int.from_bytes(data[:4], "big") != UIMAGE_MAGIC:
        return None
    (_magic, _hcrc, _time, size, load, entry, _dcrc, _os, _arch, kind, compression,
     _name) = UIMAGE_HEADER.unpack_from(data)
    if kind != UIMAGE_TYPE_KERNEL:
        raise ImageError(f"{path}: a uImage of type {kind}, not a kernel image")
    body = data[UIMAGE_HEADER.size:UIMAGE_HEADER.size + size]
    if len(body) != size:
        raise ImageError(f"{path}: the uImage is truncated")
    if compression == UIMAGE_COMP_GZIP:
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise ImageError(f"{path}: the uImage's gzip data is corrupt") from None
    elif compression != UIMAGE_COMP_NONE:
        raise ImageError(f"{path}: uImage compression {compression} is not supported (only none and gzip)")
    return _Payload([LoadedSegment(load, body, len(body))], entry)


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


def connect_mpic(mpic: Mpic, cpu: Any, index: int = 0) -> None:
    """MPIC outputs for CPU ``index`` to the core's external and critical inputs; the core's interrupt
    acknowledge to the MPIC (EPR in proxy mode). Core 0 also clocks the MPIC's timers and schedules
    their events."""
    if index == 0:
        mpic.clock = lambda: getattr(cpu, "cycles", 0)
    if hasattr(cpu, "device_events_changed"):
        if index == 0:
            mpic.events_changed = cpu.device_events_changed
            cpu.event_sources.append(mpic)
        cpu.interrupt_acknowledge = lambda: mpic.proxy_acknowledge(index)
    if hasattr(cpu, "set_external_input"):
        mpic.connect_cpu(index, cpu.set_external_input, getattr(cpu, "set_critical_input", None))


class Machine:
    """The ppce500 board: ``cpus`` (``cpu`` is the boot core), one MMU per core (``mmus``, ``mmu``),
    ``bus``, the loaded image, and QEMU's boot state.

    With ``smp`` > 1 the secondary cores start halted (``halted[i]``) and wait in the spin table
    (:mod:`emulator.spin_table`) until the guest releases them. The board runs no core itself: whoever
    runs the cores (the vCPUs' user) runs them in turns of :data:`SMP_QUANTUM` instructions and sets
    :attr:`current_cpu` to the core whose turn it is, so the MPIC's per-CPU registers answer that core.
    The cores run side by side in rounds: every core's turn in a round starts at the round's time,
    :attr:`clock` (cycles), so each core sees time pass with its own instructions as on real parallel
    hardware, and the next round starts where the furthest core got. A waiting core lets time pass to
    the end of the round at most instead of jumping to its next timer event; when every running core
    waits, the time jumps to the first event that can wake one (:meth:`warp_to`). The cores' time
    bases read one monotonic time: a core whose turn runs behind a value another core already read
    reads that value (the time base stands still for it until its own time catches up), as time
    bases kept in step by hardware never run backwards from one core to another.
    """

    def __init__(self, model_name: str = "e500v2", ram_size: int = DEFAULT_RAM_SIZE,
                 uart_out: Callable[[bytes], object] | None = None,
                 cpu_factory: Callable[[Any, PhysicalBus, Mmu], Any] | None = None,
                 icount_shift: int | None = DEFAULT_ICOUNT_SHIFT, smp: int = 1) -> None:
        try:
            self.model = MODELS[model_name]
        except KeyError:
            known = ", ".join(sorted(MODELS))
            raise ValueError(f"unknown CPU model {model_name!r} (known: {known})") from None
        if not 1 <= smp <= MAX_SMP:
            raise ValueError(f"the ppce500 board here takes 1 to {MAX_SMP} cores, not {smp}")
        self.model_name = model_name
        self.smp = smp
        self.bus = PhysicalBus(ram_size, uart_out, num_cpus=smp)
        self.bus.guts.pvr, self.bus.guts.svr = self.model.pvr, self.model.svr
        self.mmus = [Mmu(self.model) for _ in range(smp)]
        factory = cpu_factory or _default_cpu_factory
        self.cpus = [factory(self.model, self.bus, mmu) for mmu in self.mmus]
        self.mmu = self.mmus[0]
        self.cpu = self.cpus[0]
        self.halted = [False] * smp
        self.current_cpu = 0
        self.clock = 0                          # the time of the current round in cycles (SMP)
        self._round_end = 0
        # The cores' time bases read one monotonic time (see the class docstring).
        self.time_base_floor = TimeBaseFloor()
        if smp > 1:
            for cpu in self.cpus:
                if hasattr(cpu, "timers"):
                    cpu.timers.floor = self.time_base_floor
        self.bus.mpic.current_cpu = lambda: self.current_cpu
        self.spin_table = SpinTable(smp, self._release_core)
        self.bus.register_window(SPIN_TABLE_PA, SPIN_TABLE_SIZE, self.spin_table)
        # None keeps the core's own rate (one tick per cycle): tests that count ticks in cycles.
        self.icount_shift = icount_shift
        for cpu in self.cpus:
            timers = getattr(cpu, "timers", None)
            if icount_shift is not None and timers is not None:
                timers.set_rate(*icount_rate(icount_shift))
            if smp > 1 and hasattr(cpu, "other_cores"):
                # icbi and msgsnd are broadcast: code one core writes and invalidates, doorbells.
                cpu.other_cores = [other for other in self.cpus if other is not cpu]
        self._connect_interrupts()
        self.entry = 0
        self.path: str | None = None
        self.segments: list[LoadedSegment] = []
        self.symbols: dict[str, int] = {}
        self.image_ranges: list[tuple[int, int]] = []
        self.dt_base = 0
        self.initial_map_size = 0
        self.boot = BootFiles()
        self.payload_extent = (0, 0)             # (load address, size) of what runs first
        self.kernel_extent: tuple[int, int] | None = None   # /chosen/qemu,boot-kernel
        self.initrd_extent: tuple[int, int] | None = None   # (start, end)
        self.user_dtb: bytes | None = None

    def _connect_interrupts(self) -> None:
        for index, cpu in enumerate(self.cpus):
            connect_mpic(self.bus.mpic, cpu, index)

    def begin_turn(self, index: int) -> Any:
        """Core ``index`` is about to run (SMP): MPIC accesses are its, its clock is at least the
        round's time, and waiting lets time pass to the end of the round at most."""
        self.current_cpu = index
        cpu = self.cpus[index]
        cpu.cycles = max(cpu.cycles, self.clock)
        cpu.idle_until = max(cpu.cycles, self.clock + SMP_QUANTUM)
        return cpu

    def end_turn(self, index: int) -> None:
        """Core ``index`` ran: how far the round got."""
        self._round_end = max(self._round_end, self.cpus[index].cycles)

    def end_round(self) -> None:
        """Every core had its turn: the next round starts where the furthest core got."""
        self.clock = max(self.clock, self._round_end)

    def warp_to(self, cycle: int) -> None:
        """Every running core waits: the board's time jumps to ``cycle`` (the first wake-up)."""
        self.clock = max(self.clock, cycle)

    def _release_core(self, index: int, addr: int, r3: int) -> None:
        """QEMU's spin_kick: core ``index`` starts at ``addr`` inside a 64 MiB mapping of it (TLB1
        entry 1, EPN 0), with r3 from its spin table entry and r7 the mapping's size. Its clock
        starts at the board's time, so the cores' time bases agree."""
        cpu = self.cpus[index]
        map_start = addr & ~(RELEASE_MAP_SIZE - 1)
        tsize = (RELEASE_MAP_SIZE.bit_length() - 1 - _KIB_LOG2) // 2     # MMU v1 TSIZE n = 4^n KiB
        self.mmus[index].set_entry(1, 1, mas1=MAS1_V | (tsize << MAS1_TSIZE_SHIFT), mas2=_MAS2_M,
                                   mas3=(map_start & _M32 & ~0xFFF) | MAS3_SR | MAS3_SW | MAS3_SX
                                   | MAS3_UR | MAS3_UW | MAS3_UX, mas7=map_start >> 32)
        cpu.pc = addr & (RELEASE_MAP_SIZE - 1)
        cpu.gpr[3] = r3 & _M32
        for register in (4, 5, 6, 8, 9):
            cpu.gpr[register] = 0
        cpu.gpr[7] = RELEASE_MAP_SIZE
        releaser = self.cpus[self.current_cpu]
        if hasattr(cpu, "cycles") and hasattr(releaser, "cycles"):
            cpu.cycles = max(cpu.cycles, releaser.cycles)
        if hasattr(cpu, "device_events_changed"):
            cpu.device_events_changed()
        self.halted[index] = False

    def describe_pic(self) -> str:
        """The interrupt controller's state as text (a debugger's ``info pic``)."""
        return self.bus.mpic.describe()

    @property
    def ram_size(self) -> int:
        return self.bus.ram_size

    # --- image loading ----------------------------------------------------------------------------------
    def load_elf(self, path: str) -> None:
        """Load a 32-bit big-endian PowerPC executable and put the machine in its boot state."""
        self.load(BootFiles(kernel=path))

    def load(self, boot: BootFiles) -> None:
        """Load firmware/kernel/initrd/DTB as QEMU's ppce500 does (module docstring) and reset.

        Every problem with a file is an :class:`ImageError` with one readable sentence; the machine
        keeps its previous image then.
        """
        payload_path = boot.bios or boot.kernel
        if payload_path is None:
            raise ImageError("nothing to run: give a kernel image or a firmware (--bios)")
        payload = self._load_payload(payload_path)
        segments = list(payload.segments)
        low, size = kernel_extent(segments)
        cur_base = max(low + size, FIRMWARE_RESERVED)
        kernel: tuple[int, int] | None = (low, size) if boot.bios is None else None
        if boot.bios is not None and boot.kernel is not None:
            data = _read_file(boot.kernel, "kernel image")
            kernel = (cur_base, len(data))
            segments.append(self._raw_segment(boot.kernel, cur_base, data, "kernel"))
            cur_base += len(data)
        initrd: tuple[int, int] | None = None
        if boot.initrd is not None:
            data = _read_file(boot.initrd, "initrd")
            base = (cur_base + INITRD_LOAD_PAD) & ~INITRD_PAD_MASK
            segments.append(self._raw_segment(boot.initrd, base, data, "initrd"))
            initrd = (base, base + len(data))
        user_dtb = None
        if boot.dtb is not None:
            user_dtb = _read_file(boot.dtb, "device tree blob")
            if len(user_dtb) < 40 or int.from_bytes(user_dtb[:4], "big") != FDT_MAGIC:
                raise ImageError(f"{boot.dtb}: not a flattened device tree (no 0xd00dfeed magic)")
        dt_base = device_tree_base(payload.segments)
        dt_size = user_dtb_size(user_dtb) if user_dtb is not None else FDT_SIZE
        if dt_base + dt_size > self.ram_size:
            raise ImageError(f"{payload_path}: no room for the device tree above the image in "
                             f"{self.ram_size >> 20} MiB of RAM (QEMU puts it 24 MiB past the image's end)")
        self.path = payload_path
        self.boot = boot
        self.segments = segments
        self.entry = payload.entry
        self.symbols = payload.symbols
        self.image_ranges = [(segment.paddr, segment.paddr + segment.memsz) for segment in payload.segments]
        self.payload_extent = (low, size)
        self.kernel_extent = kernel
        self.initrd_extent = initrd
        self.user_dtb = user_dtb
        self.reset()

    def _raw_segment(self, path: str, base: int, data: bytes, what: str) -> LoadedSegment:
        if base + len(data) > self.ram_size:
            raise ImageError(f"{path}: the {what} ({len(data)} bytes at {base:#x}) does not fit in "
                             f"{self.ram_size >> 20} MiB of RAM")
        return LoadedSegment(base, data, len(data))

    def _load_payload(self, path: str) -> _Payload:
        data = _read_file(path, "ELF file")
        if data[:4] == b"\x7fELF":
            try:
                segments, entry, symbols = self._parse_elf(ELFFile(io.BytesIO(data)), path)
            except ImageError:
                raise
            except (ELFError, ValueError, KeyError, EOFError, struct.error) as error:
                raise ImageError(f"{path}: not a valid ELF file ({error})") from None
            except Exception as error:
                # pyelftools meets a damaged file in many ways (construct, index errors and more).
                raise ImageError(f"{path}: not a valid ELF file ({type(error).__name__}: {error})") from None
            return _Payload(segments, entry, symbols)
        payload = parse_uimage(path, data)
        if payload is None:
            raise ImageError(f"{path}: not a valid ELF file, nor a uImage (QEMU's ppce500 loads no raw "
                             "binary as firmware or kernel)")
        for segment in payload.segments:
            if segment.paddr + segment.memsz > self.ram_size:
                raise ImageError(f"{path}: the uImage's load address {segment.paddr:#x} is outside the "
                                 f"{self.ram_size >> 20} MiB of RAM")
        return payload

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
        symbols: dict[str, int] = {}
        for section in elf.iter_sections():
            if not isinstance(section, SymbolTableSection) or section.name != ".symtab":
                continue
            for symbol in section.iter_symbols():
                if (symbol.name and symbol["st_shndx"] != "SHN_UNDEF"
                        and symbol["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")):
                    symbols.setdefault(symbol.name, symbol["st_value"])
        return segments, _entry_from_segments(elf), symbols

    def entry_in_image(self) -> bool:
        """True when the entry point lies inside a loaded segment (QEMU starts an image either way)."""
        return any(segment.paddr <= self.entry < segment.paddr + segment.memsz for segment in self.segments)

    # --- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """QEMU ppce500 ``-kernel`` boot state: devices, RAM image, TLB1[0] and the boot registers."""
        self.bus.reset()
        self.bus.clear_ram()
        for segment in self.segments:
            self.bus.write_bytes(segment.paddr, segment.data)  # the rest of memsz is zero after clear_ram
        for index, (cpu, mmu) in enumerate(zip(self.cpus, self.mmus, strict=True)):
            cpu_reset = getattr(cpu, "reset", None)
            if callable(cpu_reset):
                cpu_reset()  # the core's architectural reset (SPRs, timers, counters), before the MMU's
            mmu.reset()
            if index:
                # A secondary core: halted with its reset state until the spin table releases it.
                cpu.gpr[:] = [0] * 32
                cpu.msr = 0
                cpu.pc = 0xFFFFFFFC
                if hasattr(cpu, "sprs"):
                    cpu.sprs[SPR_PIR] = index
        self.spin_table.reset()
        self.halted = [index > 0 for index in range(self.smp)]
        self.current_cpu = 0
        self.clock = 0
        cpu = self.cpu

        low, loaded_size = self.payload_extent
        self.dt_base = (low + loaded_size + DTC_LOAD_PAD) & ~DTC_PAD_MASK
        dt_size = FDT_SIZE
        if self.user_dtb is not None:
            dt_size = user_dtb_size(self.user_dtb)
            blob = bytearray(self.user_dtb)
            struct.pack_into(">I", blob, 4, dt_size)      # "opened into" a buffer with that much room
            self.bus.write_bytes(self.dt_base, bytes(blob))
        elif self.segments:
            self.bus.write_bytes(self.dt_base, build_ppce500_fdt(
                self.model, self.ram_size, self.kernel_extent, bootargs=self.boot.append,
                initrd=self.initrd_extent, num_cpus=self.smp))
        map_log2_kib = qemu_initial_map_log2(self.dt_base + dt_size)
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

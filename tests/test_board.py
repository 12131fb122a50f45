"""Tests for emulator.board: ELF loading (good images and every rejected kind), the QEMU ppce500
``-kernel`` boot state (registers, TLB1[0], RAM image), reset, symbols, and a run of the example guest.

Boot-state numbers for the example guests (r3 = 0x01900000, r7 = 0x04000000) were read from
qemu-system-ppc 7.2 (``-M ppce500 -kernel ... -S``, monitor ``info registers``).

Imports: pytest, the standard library and emulator.board / emulator.mmu / emulator.bus.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.board import EPAPR_MAGIC, ImageError, Machine, qemu_initial_map_log2
from emulator.bus import CCSR_BASE
from emulator.mmu import Access, TlbMiss

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "bin"
ALL_PERMISSIONS_TEXT = "SR SW SX UR UW UX"


def fake_cpu_factory(model: Any, bus: Any, mmu: Any) -> SimpleNamespace:
    """A stand-in core with the attributes the board sets, and a reset counter."""
    cpu = SimpleNamespace(gpr=[0xDEAD] * 32, pc=0x1234, msr=0xFFFF, resets=0)

    def reset() -> None:
        cpu.resets += 1

    cpu.reset = reset
    return cpu


def make_elf(path: Path, *, segments: list[tuple[int, bytes, int]], entry: int = 0x100000,
             big_endian: bool = True, machine: int = 20, elf_type: int = 2, elf_class: int = 1) -> Path:
    """Write a minimal ELF executable: ``segments`` are (p_paddr, file bytes, p_memsz)."""
    order = ">" if big_endian else "<"
    if elf_class == 2:
        ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + bytes(9)
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", elf_type, machine, 1, entry, 0, 0, 0, 64, 56,
                                     0, 64, 0, 0)
        path.write_bytes(header)
        return path
    phoff = 52
    data_offset = phoff + 32 * len(segments)
    program_headers = b""
    payload = b""
    for paddr, data, memsz in segments:
        program_headers += struct.pack(order + "IIIIIIII", 1, data_offset + len(payload), paddr, paddr,
                                       len(data), memsz, 7, 4)
        payload += data
    ident = b"\x7fELF" + bytes([1, 2 if big_endian else 1, 1]) + bytes(9)
    header = ident + struct.pack(order + "HHIIIIIHHHHHH", elf_type, machine, 1, entry, phoff, 0, 0, 52, 32,
                                 len(segments), 40, 0, 0)
    path.write_bytes(header + program_headers + payload)
    return path


@pytest.fixture
def machine() -> Machine:
    return Machine("e500v2", cpu_factory=fake_cpu_factory)


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_boot_state_matches_qemu_for_example(model: str) -> None:
    machine = Machine(model, cpu_factory=fake_cpu_factory)
    machine.load_elf(str(EXAMPLES / f"hello-{model}.elf"))
    cpu = machine.cpu
    expected = [0] * 32
    expected[1], expected[3], expected[6], expected[7] = 0x00FFFFF8, 0x01900000, EPAPR_MAGIC, 0x04000000
    assert cpu.gpr == expected
    assert cpu.pc == machine.entry == 0x100000
    assert cpu.msr == 0
    assert cpu.resets == 1
    (boot_entry,) = machine.mmu.entries()
    assert (boot_entry.tlb, boot_entry.index, boot_entry.epn, boot_entry.pa, boot_entry.size) == (
        1, 0, 0, 0, 64 << 20)
    assert (boot_entry.tid, boot_entry.ts, boot_entry.iprot, boot_entry.wimge) == (0, 0, False, 0)
    assert boot_entry.permission_text() == ALL_PERMISSIONS_TEXT
    assert machine.mmu.translate(0x03FFFFFC, Access.FETCH, 0) == 0x03FFFFFC
    with pytest.raises(TlbMiss):
        machine.mmu.translate(0x04000000, Access.READ, 0)


def test_image_is_loaded_at_paddr_with_zero_fill(machine: Machine, tmp_path: Path) -> None:
    text = bytes(range(1, 33))
    image = make_elf(tmp_path / "guest.elf", segments=[(0x100000, text, 0x40), (0x200000, b"\xaa" * 4, 4)])
    machine.bus.write_bytes(0x100020, b"\x55" * 32)  # stale data where .bss goes
    machine.load_elf(str(image))
    assert machine.bus.read_bytes(0x100000, 32) == text
    assert machine.bus.read_bytes(0x100020, 32) == bytes(32)
    assert machine.bus.read(0x200000, 4) == 0xAAAAAAAA
    assert machine.image_ranges == [(0x100000, 0x100040), (0x200000, 0x200004)]
    # Loaded size is the sum of memory sizes: (0x100000 + 0x44 + 0x1800000) & ~0xFFFFF.
    assert machine.cpu.gpr[3] == 0x01900000


def test_reset_restores_ram_image_and_registers(machine: Machine, tmp_path: Path) -> None:
    image = make_elf(tmp_path / "guest.elf", segments=[(0x100000, b"\x01\x02\x03\x04", 0x10)])
    machine.load_elf(str(image))
    machine.bus.write(0x100000, 4, 0xFFFFFFFF)
    machine.bus.write(0x100008, 4, 0xFFFFFFFF)
    machine.bus.write(0x500000, 4, 0xFFFFFFFF)
    machine.cpu.gpr[5] = 77
    machine.cpu.pc = 0
    machine.mmu.set_entry(1, 3, 0x80000500, 0x10000000, 0x3F)
    machine.bus.write(CCSR_BASE + 0xFF000, 4, 0x80000000)
    machine.bus.write(CCSR_BASE + 0xFF008, 4, 0x80000001)
    assert machine.bus.poweroff_status == 1
    machine.reset()
    assert machine.bus.read(0x100000, 4) == 0x01020304
    assert machine.bus.read(0x100008, 4) == 0
    assert machine.bus.read(0x500000, 4) == 0
    assert machine.cpu.gpr[5] == 0 and machine.cpu.pc == 0x100000
    assert [entry.index for entry in machine.mmu.entries()] == [0]
    assert machine.bus.poweroff_status is None


def test_large_image_gets_a_256_mib_boot_mapping(tmp_path: Path) -> None:
    machine = Machine("e500v2", ram_size=256 << 20, cpu_factory=fake_cpu_factory)
    # Values read off qemu-system-ppc 7.2 (-m 256) for the same one-segment images. QEMU reserves 1 MiB
    # for the device tree: dt_base 62 MiB keeps the 64 MiB mapping ...
    machine.load_elf(str(make_elf(tmp_path / "a.elf", segments=[(0x2600000, b"\0" * 16, 16)])))
    assert machine.cpu.gpr[3] == 0x3E00000 and machine.cpu.gpr[7] == 64 << 20
    # ... at 63 MiB the tree's end reaches 64 MiB and needs the next even size: 256 MiB (TSIZE 9).
    machine.load_elf(str(make_elf(tmp_path / "b.elf", segments=[(0x2700000, b"\0" * 16, 16)])))
    assert machine.cpu.gpr[3] == 0x3F00000 and machine.cpu.gpr[7] == 256 << 20
    assert machine.mmu.entries()[0].size == 256 << 20


@pytest.mark.parametrize(("dt_end", "log2_kib"), [
    (0x01902000, 16), (0x03FFFFFF, 16), (0x04000000, 18), (0x00100000, 12), (0x000FFFFF, 10)])
def test_qemu_initial_map_size_formula(dt_end: int, log2_kib: int) -> None:
    assert qemu_initial_map_log2(dt_end) == log2_kib


def test_symbols_from_symtab() -> None:
    machine = Machine("e500v2", cpu_factory=fake_cpu_factory)
    machine.load_elf(str(EXAMPLES / "hello-e500v2.elf"))
    assert "main" in machine.symbols
    main = machine.symbols["main"]
    assert any(start <= main < end for start, end in machine.image_ranges)
    assert machine.symbols.get("_start", machine.entry) == machine.entry


# --- rejected images ------------------------------------------------------------------------------------
def assert_rejected(machine: Machine, path: Path | str, fragment: str) -> None:
    with pytest.raises(ImageError) as raised:
        machine.load_elf(str(path))
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message
    # No chained parser/OS exception would be printed under the message.
    error = raised.value
    assert error.__cause__ is None and (error.__suppress_context__ or error.__context__ is None)


def test_missing_file(machine: Machine, tmp_path: Path) -> None:
    assert_rejected(machine, tmp_path / "nope.elf", "no such file")


def test_directory(machine: Machine, tmp_path: Path) -> None:
    assert_rejected(machine, tmp_path, "directory")


def test_not_an_elf(machine: Machine, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, certainly not an ELF header\n")
    assert_rejected(machine, path, "not a valid ELF file")
    empty = tmp_path / "empty.elf"
    empty.write_bytes(b"")
    assert_rejected(machine, empty, "not a valid ELF file")


def test_wrong_class(machine: Machine, tmp_path: Path) -> None:
    path = make_elf(tmp_path / "g64.elf", segments=[], elf_class=2, machine=21)
    assert_rejected(machine, path, "64-bit")


def test_wrong_endianness(machine: Machine, tmp_path: Path) -> None:
    path = make_elf(tmp_path / "le.elf", segments=[(0x100000, b"\0" * 4, 4)], big_endian=False)
    assert_rejected(machine, path, "little-endian")


def test_wrong_machine(machine: Machine, tmp_path: Path) -> None:
    path = make_elf(tmp_path / "arm.elf", segments=[(0x100000, b"\0" * 4, 4)], machine=40)
    assert_rejected(machine, path, "not for PowerPC")


def test_not_an_executable(machine: Machine, tmp_path: Path) -> None:
    path = make_elf(tmp_path / "rel.o", segments=[(0x100000, b"\0" * 4, 4)], elf_type=1)
    assert_rejected(machine, path, "not an executable")


def test_segment_outside_ram(tmp_path: Path) -> None:
    machine = Machine("e500v2", ram_size=64 << 20, cpu_factory=fake_cpu_factory)
    path = make_elf(tmp_path / "high.elf", segments=[(0x03FFFFF0, b"\0" * 16, 0x20)])
    assert_rejected(machine, path, "outside the 64 MiB of RAM")


def test_no_loadable_segments(machine: Machine, tmp_path: Path) -> None:
    assert_rejected(machine, make_elf(tmp_path / "none.elf", segments=[]), "no loadable segments")


def test_truncated_segment(machine: Machine, tmp_path: Path) -> None:
    path = make_elf(tmp_path / "cut.elf", segments=[(0x100000, b"\0" * 64, 64)])
    path.write_bytes(path.read_bytes()[:-32])
    assert_rejected(machine, path, "truncated")


def test_failed_load_keeps_previous_image(machine: Machine, tmp_path: Path) -> None:
    machine.load_elf(str(make_elf(tmp_path / "ok.elf", segments=[(0x100000, b"\x12\x34\x56\x78", 4)])))
    with pytest.raises(ImageError):
        machine.load_elf(str(tmp_path / "missing.elf"))
    machine.reset()
    assert machine.bus.read(0x100000, 4) == 0x12345678


def test_unknown_model() -> None:
    with pytest.raises(ValueError, match="e500v9"):
        Machine("e500v9", cpu_factory=fake_cpu_factory)


# --- with the real core ---------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_hello_guest_runs_to_power_off(model: str) -> None:
    output: list[bytes] = []
    machine = Machine(model, uart_out=output.append)
    machine.load_elf(str(EXAMPLES / f"hello-{model}.elf"))
    machine.cpu.run(1_000_000)
    pvr = {"e500v2": "0x80210030", "e500mc": "0x80230020"}[model]
    assert b"".join(output) == f"Hello from e500!\r\nPVR {pvr}\r\n".encode()
    assert machine.bus.poweroff_status == 3
    output.clear()
    machine.reset()
    machine.cpu.run(1_000_000)
    assert b"".join(output).startswith(b"Hello from e500!")

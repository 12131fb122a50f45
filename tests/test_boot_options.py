"""Booting as QEMU's ppce500 does: physical entry of an ELF whose virtual and physical addresses
differ, uImage payloads, -bios with and without a kernel, -initrd, -append, -dtb and -m.

QEMU 7.2 is the oracle where it can be asked: the boot registers through its gdbstub (``-S``) and the
device tree through ``-machine dumpdtb``. Command-line errors are checked to be one line.

Imports: pytest, the standard library, ``fdt`` (parsing only), emulator.board, gdbstub.cli and
tests/support.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import fdt
import pytest
from support.qemu_machine import QEMU_BINARY, QEMU_CPU
from support.qemu_rsp import QemuGdb

from emulator.board import BootFiles, ImageError, Machine
from emulator.devicetree import FDT_SIZE

REPO = Path(__file__).resolve().parents[1]
LOOP = REPO / "examples" / "bin" / "loop-e500v2.elf"
UBOOT = Path("/usr/lib/u-boot/qemu-ppce500/uboot.elf")
UBOOT_BIN = Path("/usr/lib/u-boot/qemu-ppce500/u-boot.bin")
PF_X, PF_W, PF_R = 1, 2, 4
R3, R7, PC = 3, 7, 32     # indices in QEMU's core register block (support.qemu_rsp)


def linux_style_elf(path: Path, *, executable: bool = True) -> Path:
    """One PT_LOAD linked at 0xC0000000 and loaded at physical 0 (as vmlinux), entry 0xC0000010:
    a few nops and `b .`."""
    code = struct.pack(">4I", *([0x60000000] * 4)) + struct.pack(">I", 0x48000000) * 4
    flags = PF_R | PF_W | (PF_X if executable else 0)
    header = b"\x7fELF" + bytes([1, 2, 1]) + bytes(9) + struct.pack(
        ">HHIIIIIHHHHHH", 2, 20, 1, 0xC0000010, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    program = struct.pack(">8I", 1, 0x1000, 0xC0000000, 0x00000000, len(code), len(code) + 0x100, flags,
                          0x1000)
    blob = header + program
    path.write_bytes(blob + bytes(0x1000 - len(blob)) + code)
    return path


def uimage(path: Path, *, load: int = 0x00200000, entry: int = 0x00200008, kind: int = 2) -> Path:
    body = struct.pack(">4I", 0x60000000, 0x60000000, 0x60000000, 0x48000000)
    header = struct.pack(">7I4B32s", 0x27051956, 0, 0, len(body), load, entry, 0, 5, 7, kind, 0,
                         b"test")
    path.write_bytes(header + body)
    return path


def qemu_boot_registers(*args: str) -> list[int]:
    """QEMU's core registers at the first instruction (``-S``), for the given payload options."""
    kernel, *rest = args
    with QemuGdb(kernel, "e500v2", extra_args=tuple(rest)) as qemu:
        return qemu.read_core_registers()


def qemu_dtb(tmp_path: Path, *args: str) -> bytes:
    dumped = tmp_path / "qemu.dtb"
    subprocess.run([QEMU_BINARY, "-M", "ppce500", "-cpu", QEMU_CPU["e500v2"], "-nographic", "-nic", "none",
                    "-monitor", "none", *args, "-machine", f"dumpdtb={dumped}"],
                   capture_output=True, timeout=60, check=False)
    assert dumped.exists()
    return dumped.read_bytes()


def flatten(blob: bytes) -> dict[str, object]:
    found: dict[str, object] = {}
    for path, nodes, props in fdt.parse_dtb(blob).walk():
        for node in nodes:
            found[f"{path.rstrip('/')}/{node.name}/"] = "node"
        for prop in props:
            if prop.name != "rng-seed":    # random on QEMU, fixed here
                found[f"{path.rstrip('/')}/{prop.name}"] = list(prop.data) if hasattr(prop, "data") else True
    return found


@pytest.mark.parametrize("executable", [True, False])
def test_elf_entry_is_moved_to_its_physical_address_as_qemu_does(tmp_path: Path, executable: bool) -> None:
    elf = linux_style_elf(tmp_path / "vmlinux", executable=executable)
    machine = Machine("e500v2")
    machine.load_elf(str(elf))
    # Only an executable segment moves the entry (QEMU's ELF loader rule).
    assert machine.cpu.pc == (0x10 if executable else 0xC0000010)
    assert machine.bus.read_bytes(0x0C, 8) == bytes.fromhex("6000000048000000")   # loaded at p_paddr
    theirs = qemu_boot_registers(str(elf))
    assert theirs[PC] == machine.cpu.pc
    assert theirs[R3] == machine.cpu.gpr[R3] and theirs[R7] == machine.cpu.gpr[R7]


def test_uimage_kernel_loads_at_its_load_address(tmp_path: Path) -> None:
    image = uimage(tmp_path / "uImage")
    machine = Machine("e500v2")
    machine.load_elf(str(image))
    assert machine.cpu.pc == 0x00200008
    assert machine.bus.read_bytes(0x00200000, 4) == b"\x60\x00\x00\x00"
    theirs = qemu_boot_registers(str(image))
    assert (theirs[PC], theirs[R3], theirs[R7]) == (machine.cpu.pc, machine.cpu.gpr[R3], machine.cpu.gpr[R7])
    with pytest.raises(ImageError, match="not a kernel"):
        machine.load_elf(str(uimage(tmp_path / "ramdisk", kind=3)))


@pytest.mark.parametrize("case", ["append-initrd", "bios", "bios-kernel-initrd"])
def test_device_tree_and_placement_match_qemu(tmp_path: Path, case: str) -> None:
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(bytes(range(256)) * 1200)
    if case == "append-initrd":
        boot = BootFiles(kernel=str(LOOP), initrd=str(initrd), append="console=ttyS0 root=/dev/ram")
        qemu_args = ["-kernel", str(LOOP), "-initrd", str(initrd), "-append", boot.append]
    elif case == "bios":
        boot = BootFiles(bios=str(UBOOT))
        qemu_args = ["-bios", str(UBOOT)]
    else:
        boot = BootFiles(bios=str(UBOOT), kernel=str(LOOP), initrd=str(initrd))
        qemu_args = ["-bios", str(UBOOT), "-kernel", str(LOOP), "-initrd", str(initrd)]
    machine = Machine("e500v2", ram_size=256 << 20)
    machine.load(boot)
    qemu_args += ["-m", "256"]
    ours = machine.bus.read_bytes(machine.dt_base, FDT_SIZE)
    theirs = qemu_dtb(tmp_path, *qemu_args)
    assert list(flatten(ours)) == list(flatten(theirs))
    assert flatten(ours) == flatten(theirs)
    chosen = fdt.parse_dtb(ours).get_node("/chosen")
    if boot.initrd is not None:
        start = chosen.get_property("linux,initrd-start").value
        assert machine.bus.read_bytes(start, 1200 * 256) == initrd.read_bytes()
    if boot.bios is not None and boot.kernel is not None:
        base = chosen.get_property("qemu,boot-kernel").data[1]
        assert base == 32 << 20 and machine.bus.read_bytes(base, 16) == LOOP.read_bytes()[:16]   # raw copy
    assert machine.cpu.pc == (0x00F00000 if boot.bios else 0x00100000)    # U-Boot's / the guest's entry
    if boot.kernel is not None:     # the QEMU session always passes -kernel: compare where it is given
        extra = [argument for argument in qemu_args if argument not in ("-kernel", str(LOOP))]
        registers = qemu_boot_registers(str(LOOP), *extra)
        assert (registers[PC], registers[R3], registers[R7]) == (machine.cpu.pc, machine.cpu.gpr[R3],
                                                                 machine.cpu.gpr[R7])


def test_user_dtb_is_used_as_given(tmp_path: Path) -> None:
    dtb = tmp_path / "board.dtb"
    dumped = bytearray(qemu_dtb(tmp_path, "-kernel", str(LOOP)))
    strings_offset = struct.unpack_from(">I", dumped, 12)[0]
    length = strings_offset + struct.unpack_from(">I", dumped, 32)[0]   # the blob without QEMU's free space
    struct.pack_into(">I", dumped, 4, length)
    dtb.write_bytes(bytes(dumped[:length]))
    machine = Machine("e500v2")
    machine.load(BootFiles(kernel=str(LOOP), dtb=str(dtb), append="ignored, as on QEMU"))
    blob = machine.bus.read_bytes(machine.dt_base, length)
    size = (length + 10000) * 2                             # the room QEMU's loader opens it into
    assert blob[8:] == dtb.read_bytes()[8:] and int.from_bytes(blob[4:8], "big") == size
    theirs = qemu_boot_registers(str(LOOP), "-dtb", str(dtb), "-append", "ignored, as on QEMU")
    assert (theirs[R3], theirs[R7]) == (machine.cpu.gpr[R3], machine.cpu.gpr[R7])
    with QemuGdb(LOOP, "e500v2", extra_args=("-dtb", str(dtb))) as qemu:
        assert qemu.read_memory(machine.dt_base, 64) == blob[:64]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("args", [
    ["--bios", "/nonexistent/u-boot.elf", "--run"],
    ["--bios", str(UBOOT_BIN), "--run"],                 # a raw binary: QEMU refuses it too
    [str(LOOP), "--initrd", "/nonexistent/initrd", "--run"],
    [str(LOOP), "--dtb", str(LOOP), "--run"],             # not a device tree
    [str(LOOP), "-m", "100", "--run"],                     # QEMU: multiple of 64 MiB
    [str(LOOP), "-kernel", str(LOOP), "--run"],
    ["--run"],
])
def test_bad_boot_files_are_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_qemu_spellings_boot_the_same_guest() -> None:
    hello = REPO / "examples" / "bin" / "hello-e500v2.elf"
    long_form = run_cli(str(hello), "--ram", "256M", "--append", "x", "--run")
    qemu_form = run_cli("-kernel", str(hello), "-m", "256", "-append", "x", "--run")
    assert long_form.returncode == qemu_form.returncode == 3
    assert long_form.stdout == qemu_form.stdout and "Hello from e500!" in qemu_form.stdout


def test_gzip_uimage_is_decompressed_and_bad_compression_refused(tmp_path: Path) -> None:
    import gzip
    body = struct.pack(">4I", 0x60000000, 0x60000000, 0x60000000, 0x48000000)
    packed = gzip.compress(body)
    image = tmp_path / "uImage.gz"
    image.write_bytes(struct.pack(">7I4B32s", 0x27051956, 0, 0, len(packed), 0x00300000, 0x00300004, 0, 5, 7,
                                  2, 1, b"gz") + packed)
    machine = Machine("e500v2")
    machine.load_elf(str(image))
    assert machine.bus.read_bytes(0x00300000, 16) == body and machine.cpu.pc == 0x00300004
    theirs = qemu_boot_registers(str(image))
    assert (theirs[PC], theirs[R3], theirs[R7]) == (machine.cpu.pc, machine.cpu.gpr[R3], machine.cpu.gpr[R7])
    lzma = tmp_path / "uImage.lzma"
    lzma.write_bytes(struct.pack(">7I4B32s", 0x27051956, 0, 0, 4, 0x00300000, 0x00300000, 0, 5, 7, 2, 3,
                                 b"lzma") + bytes(4))
    with pytest.raises(ImageError, match="compression 3"):
        machine.load_elf(str(lzma))
    assert machine.cpu.pc == 0x00300004          # the failed load kept the previous image

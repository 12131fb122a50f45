"""The device tree at r3 is the one QEMU's ppce500 gives a ``-kernel`` guest.

QEMU is the oracle: ``-machine dumpdtb=FILE`` writes the blob it would have loaded, and the test
compares the two trees node by node and property by property (rng-seed aside: QEMU's is random).
It also checks the facts a guest reads from it against the machine itself (RAM size, image extent,
UART, time base) and that a guest that walks past r3 finds the blob in RAM after a reset.

Imports: pytest, the standard library, ``fdt`` (parsing only), emulator.board and tests/support.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from typing import Any

import fdt
import pytest
from support.qemu_machine import ppce500_command

from emulator.board import BootFiles, Machine
from emulator.devicetree import FDT_SIZE, TIMEBASE_HZ, UART0_PATH

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "bin"
FDT_MAGIC = 0xD00DFEED


def flatten(tree: fdt.FDT) -> dict[str, Any]:
    """path/property -> value, for every property of every node (nodes in order)."""
    found: dict[str, Any] = {}
    for path, nodes, props in tree.walk():
        for node in nodes:
            found[f"{path.rstrip('/')}/{node.name}/"] = "node"
        for prop in props:
            found[f"{path.rstrip('/')}/{prop.name}"] = list(prop.data) if hasattr(prop, "data") else True
    return found


def our_blob(model: str, elf: Path, ram_mib: int, smp: int = 1) -> tuple[Machine, bytes]:
    machine = Machine(model, ram_size=ram_mib << 20, smp=smp)
    machine.load_elf(str(elf))
    return machine, machine.bus.read_bytes(machine.dt_base, FDT_SIZE)


@pytest.mark.parametrize(("model", "ram_mib", "smp"), [("e500v2", 128, 1), ("e500mc", 256, 1),
                                                       ("e500v2", 128, 2), ("e500mc", 128, 4)])
def test_device_tree_matches_qemu_dumpdtb(model: str, ram_mib: int, smp: int, tmp_path: Path) -> None:
    elf = EXAMPLES / f"loop-{model}.elf"
    dumped = tmp_path / "qemu.dtb"
    completed = subprocess.run(
        ppce500_command(elf, model, "-m", str(ram_mib), "-smp", str(smp), "-machine", f"dumpdtb={dumped}"),
        capture_output=True, text=True, timeout=60, check=False)
    assert dumped.exists(), completed.stderr
    theirs = flatten(fdt.parse_dtb(dumped.read_bytes()))
    _, blob = our_blob(model, elf, ram_mib, smp)
    ours = flatten(fdt.parse_dtb(blob))
    for table in (theirs, ours):
        assert table.pop("/chosen/rng-seed") is not None
    assert list(ours) == list(theirs)
    assert ours == theirs


def test_facts_a_guest_reads_match_the_machine() -> None:
    machine, blob = our_blob("e500v2", EXAMPLES / "hello-e500v2.elf", 64)
    assert machine.cpu.gpr[3] == machine.dt_base
    assert int.from_bytes(blob[0:4], "big") == FDT_MAGIC
    assert int.from_bytes(blob[4:8], "big") == FDT_SIZE   # QEMU reports its whole buffer
    tree = fdt.parse_dtb(blob)
    assert tree.get_property("reg", "/memory").data == [0, 0, 0, 64 << 20]
    low = min(segment.paddr for segment in machine.segments)
    size = sum(segment.memsz for segment in machine.segments)
    assert tree.get_property("qemu,boot-kernel", "/chosen").data == [0, low, 0, size]
    assert tree.get_property("stdout-path", "/chosen").value == UART0_PATH
    cpu_node = tree.get_node("/cpus/PowerPC,8544@0")
    assert cpu_node.get_property("timebase-frequency").value == TIMEBASE_HZ


def test_reset_rewrites_a_tree_the_guest_overwrote() -> None:
    machine, blob = our_blob("e500mc", EXAMPLES / "hello-e500mc.elf", 128)
    machine.bus.write_bytes(machine.dt_base, b"\0" * 64)
    machine.reset()
    assert machine.bus.read_bytes(machine.dt_base, FDT_SIZE) == blob


def test_an_image_too_large_for_the_tree_is_refused(tmp_path: Path) -> None:
    from test_board import make_elf

    from emulator.board import ImageError

    machine = Machine("e500v2", ram_size=32 << 20)
    elf = make_elf(tmp_path / "big.elf", segments=[(0x100000, b"\0" * 16, 7 << 20)])
    with pytest.raises(ImageError, match="device tree"):
        machine.load_elf(str(elf))


def _normalised(blob: bytes) -> bytes:
    """The blob up to its strings block's end with /chosen/rng-seed and the padding after names and
    values zeroed (QEMU's seed is random; libfdt leaves stale bytes in some padding)."""
    (_magic, _total, off_struct, off_strings, _off_rsv, _version, _last, _boot, size_strings,
     size_struct) = struct.unpack_from(">10I", blob)
    out = bytearray(blob[:off_strings + size_strings])
    strings = blob[off_strings:off_strings + size_strings]
    at = off_struct
    while at < off_struct + size_struct:
        token = struct.unpack_from(">I", blob, at)[0]
        at += 4
        if token == 1:                                        # FDT_BEGIN_NODE: name, padding
            end = blob.index(b"\0", at) + 1
            padded = end + (-(end - at) % 4)
            out[end:padded] = bytes(padded - end)
            at = padded
        elif token == 3:                                      # FDT_PROP: len, nameoff, value, padding
            length, name_offset = struct.unpack_from(">II", blob, at)
            at += 8
            name = strings[name_offset:strings.index(b"\0", name_offset)]
            if name == b"rng-seed":
                out[at:at + length] = bytes(length)
            padded = at + length + (-length % 4)
            out[at + length:padded] = bytes(padded - at - length)
            at = padded
    return bytes(out)


@pytest.mark.parametrize("smp", [1, 2])
def test_device_tree_bytes_are_laid_out_as_qemus(smp: int, tmp_path: Path) -> None:
    """Every offset in the blob is QEMU's (libfdt's layout and its strings order): the bytes are
    equal but for the random seed and padding."""
    elf = EXAMPLES / "hello-e500v2.elf"
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"initrd")
    dumped = tmp_path / "qemu.dtb"
    boot = ["-initrd", str(initrd), "-append", "console=ttyS0", "-smp", str(smp)]
    completed = subprocess.run(ppce500_command(elf, "e500v2", *boot, "-machine", f"dumpdtb={dumped}"),
                               capture_output=True, text=True, timeout=60, check=False)
    assert dumped.exists(), completed.stderr
    machine = Machine("e500v2", smp=smp)
    machine.load(BootFiles(kernel=str(elf), initrd=str(initrd), append="console=ttyS0"))
    theirs = _normalised(dumped.read_bytes())
    ours = _normalised(machine.bus.read_bytes(machine.dt_base, len(theirs)))
    assert ours[:40] == theirs[:40]
    assert ours == theirs

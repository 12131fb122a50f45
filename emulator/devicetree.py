"""The flattened device tree QEMU's ``ppce500`` machine hands a ``-kernel`` guest in r3.

Firmware and kernels find RAM size, the UART, the time-base frequency and the power-off GPIO in it,
so a guest that reads the tree must see the same facts here as on QEMU. The nodes, properties and
phandles follow what qemu-system-ppc 7.2 writes for ``-M ppce500`` (its ``dumpdtb`` output), with two
deliberate differences: ``/chosen/rng-seed`` is a fixed value (QEMU's is random, and this machine is
deterministic), and only the blob is written to RAM (QEMU's 1 MiB buffer has free space after it; the
header's ``totalsize`` says 1 MiB, as QEMU's does, so a guest that edits the tree in place has the
same room).

The blob's layout is QEMU's too: libfdt's (the reserve map at 0x30, the structure block at 0x40)
and its strings block, whose order is the order in which QEMU's code first sets each name, so every
offset in the blob is QEMU's. The padding after a name or value that is not a multiple of four bytes
is zero here; in QEMU's blob some of it holds whatever libfdt's editing in place left there. The
``fdt`` package holds the tree; this module lays it out.

Imports: the standard library, ``fdt``, :mod:`emulator.models`, :mod:`emulator.bus`,
:mod:`emulator.devices` (the board's addresses) and :mod:`emulator.timers` (the time-base frequency).
"""

from __future__ import annotations

import struct

import fdt
from fdt import Node
from fdt import Property as Flag
from fdt import PropStrings as Strings
from fdt import PropWords as Words

from emulator import timers
from emulator.bus import CCSR_BASE
from emulator.devices import GPIO_OFFSET, UART0_OFFSET
from emulator.models import CpuModel
from emulator.spin_table import SPIN_ENTRY_SIZE, SPIN_TABLE_PA

FDT_SIZE = 0x100000                  # QEMU's FDT_MAX_SIZE: the size it reserves and reports
FDT_VERSION = 17
# QEMU ppce500: PLATFORM_CLK_FREQ_HZ, used for tb and the UART clock; the time base really runs at it
# in guest time (emulator.timers.icount_rate), so the tree and the guest's clock agree.
TIMEBASE_HZ = timers.TIMEBASE_HZ
PLATFORM_PA = 0xF_0000_0000
PCI_PA = 0xF_E000_8000
MPIC_PHANDLE = 0x8003
MSI_PHANDLE = 0x8004
GPIO_PHANDLE = 0x8005
SOC_PATH = f"/soc@{CCSR_BASE:x}"
UART0_PATH = f"{SOC_PATH}/serial@{UART0_OFFSET:x}"
# Any fixed 32 bytes: guests that use the seed get the same entropy in every run.
RNG_SEED_WORDS = (0x65353030, 0x2D676462, 0x73747562, 0x2D736565, 0x64000000, 0, 0, 0)
FDT_MAGIC = 0xD00DFEED


def _cells(value: int) -> tuple[int, int]:
    """A 64-bit value as two 32-bit cells (#address-cells / #size-cells = 2)."""
    return value >> 32, value & 0xFFFFFFFF


def _phandle(handle: int) -> tuple[Words, Words]:
    return Words("linux,phandle", handle), Words("phandle", handle)


def _pci_interrupt_map() -> list[int]:
    """QEMU's ppce500 PCI swizzle: slots 1..31, INTA..INTD rotated over MPIC sources 1..4."""
    cells: list[int] = []
    for slot in range(1, 32):
        for pin in range(4):
            cells += [slot << 11, 0, 0, pin + 1, MPIC_PHANDLE, (slot + pin) % 4 + 1, 1]
    return cells


def _soc() -> Node:
    return Node(
        SOC_PATH[1:],
        Words("bus-frequency", 0), Words("ranges", 0, *_cells(CCSR_BASE), 0x100000),
        Words("#size-cells", 1), Words("#address-cells", 1),
        Strings("compatible", "fsl,mpc8544-immr", "simple-bus"), Strings("device_type", "soc"),
        Node("power-off", Words("gpios", GPIO_PHANDLE, 0, 0), Strings("compatible", "gpio-poweroff")),
        Node(f"gpio@{GPIO_OFFSET:x}", *_phandle(GPIO_PHANDLE), Flag("gpio-controller"),
             Words("#gpio-cells", 2), Words("interrupt-parent", MPIC_PHANDLE), Words("interrupts", 0x2F, 2),
             Words("reg", GPIO_OFFSET, 0x1000), Strings("compatible", "fsl,qoriq-gpio")),
        Node("msi@41600", *_phandle(MSI_PHANDLE),
             Words("interrupts", *(cell for irq in range(0xE0, 0xE8) for cell in (irq, 0))),
             Words("interrupt-parent", MPIC_PHANDLE), Words("msi-available-ranges", 0, 0x100),
             Words("reg", 0x41600, 0x200), Strings("compatible", "fsl,mpic-msi")),
        Node("global-utilities@e0000", Flag("fsl,has-rstcr"), Words("reg", 0xE0000, 0x1000),
             Strings("compatible", "fsl,mpc8544-guts")),
        Node("i2c@3000", Words("interrupt-parent", MPIC_PHANDLE), Words("interrupts", 0x2B, 2),
             Words("cell-index", 0), Words("reg", 0x3000, 0x14), Strings("compatible", "fsl-i2c"),
             Strings("device_type", "i2c"),
             Node("rtc@68", Words("reg", 0x68), Strings("compatible", "pericom,pt7c4338"))),
        Node(f"serial@{UART0_OFFSET:x}", Words("interrupt-parent", MPIC_PHANDLE),
             Words("interrupts", 0x2A, 2), Words("clock-frequency", TIMEBASE_HZ), Words("cell-index", 0),
             Words("reg", UART0_OFFSET, 0x100),
             Strings("compatible", "ns16550"), Strings("device_type", "serial")),
        Node("pic@40000", Flag("interrupt-controller"), *_phandle(MPIC_PHANDLE),
             Words("#interrupt-cells", 2), Words("#address-cells", 0), Words("reg", 0x40000, 0x40000),
             Strings("compatible", "fsl,mpic"), Strings("device_type", "open-pic")),
    )


def _pci() -> Node:
    return Node(
        f"pci@{PCI_PA:x}",
        Words("#address-cells", 3), Words("#size-cells", 2), Words("#interrupt-cells", 1),
        Words("clock-frequency", 66_666_666), Words("reg", *_cells(PCI_PA), 0, 0x1000),
        Words("ranges", 0x2000000, 0, 0xE0000000, 0xC, 0, 0, 0x20000000,
              0x1000000, 0, 0, 0xF, 0xE1000000, 0, 0x10000),
        Words("fsl,msi", MSI_PHANDLE), Words("bus-range", 0, 0xFF), Words("interrupts", 0x18, 2),
        Words("interrupt-parent", MPIC_PHANDLE), Words("interrupt-map", *_pci_interrupt_map()),
        Words("interrupt-map-mask", 0xF800, 0, 0, 7), Strings("device_type", "pci"),
        Strings("compatible", "fsl,mpc8540-pci"), Words("cell-index", 0),
    )


def _cpus(model: CpuModel, num_cpus: int) -> Node:
    """One node per core in reg order; the secondaries wait in the spin table (ePAPR
    ``enable-method = "spin-table"``) and are "disabled" until released, as QEMU describes them."""
    line = model.cache_line_size
    nodes = []
    for index in range(num_cpus):
        release: list[object] = []
        if index:
            release = [Words("cpu-release-addr", *_cells(SPIN_TABLE_PA + SPIN_ENTRY_SIZE * index)),
                       Strings("enable-method", "spin-table"), Strings("status", "disabled")]
        else:
            release = [Strings("status", "okay")]
        nodes.append(Node(
            f"PowerPC,8544@{index:x}", *release, Words("bus-frequency", 0),
            Words("i-cache-size", 0x8000), Words("d-cache-size", 0x8000), Words("i-cache-line-size", line),
            Words("d-cache-line-size", line), Words("reg", index), Strings("device_type", "cpu"),
            Words("timebase-frequency", TIMEBASE_HZ), Words("clock-frequency", TIMEBASE_HZ)))
    return Node("cpus", Words("#size-cells", 0), Words("#address-cells", 1), *nodes)


def _chosen(kernel: tuple[int, int] | None, bootargs: str, initrd: tuple[int, int] | None) -> Node:
    items: list[object] = [Strings("stdout-path", UART0_PATH), Strings("linux,stdout-path", UART0_PATH),
                           Words("rng-seed", *RNG_SEED_WORDS)]
    # QEMU writes the command line as a string property; an empty one is the single NUL byte.
    items.append(Strings("bootargs", bootargs) if bootargs else fdt.PropBytes("bootargs", data=b"\0"))
    if kernel is not None:
        items.append(Words("qemu,boot-kernel", *_cells(kernel[0]), *_cells(kernel[1])))
    if initrd is not None:
        items += [Words("linux,initrd-end", initrd[1]), Words("linux,initrd-start", initrd[0])]
    return Node("chosen", *items)


def build_ppce500_fdt(model: CpuModel, ram_size: int, kernel: tuple[int, int] | None, *,
                      bootargs: str = "", initrd: tuple[int, int] | None = None, num_cpus: int = 1) -> bytes:
    """The device tree blob for this board; ``totalsize`` in its header is :data:`FDT_SIZE`.

    ``kernel`` = (base, size) for ``/chosen/qemu,boot-kernel`` (None when only firmware was given),
    ``bootargs`` the kernel command line, ``initrd`` = (start, end) of the initial RAM disk,
    ``num_cpus`` the cores (-smp).
    """
    tree = fdt.FDT()
    for item in (
        Strings("compatible", "fsl,qemu-e500"), Strings("model", "QEMU ppce500"),
        Words("#size-cells", 2), Words("#address-cells", 2),
        Node(f"platform@{PLATFORM_PA:x}", Words("interrupt-parent", MPIC_PHANDLE),
             Words("ranges", 0, *_cells(PLATFORM_PA), 0x8000000), Words("#address-cells", 1),
             Words("#size-cells", 1), Strings("compatible", "qemu,platform", "simple-bus")),
        _pci(),
        _soc(),
        Node("aliases", Strings("pci0", f"/pci@{PCI_PA:x}"), Strings("rtc", "i2c/rtc@68"),
             Strings("i2c", f"{SOC_PATH}/i2c@3000"), Strings("serial0", UART0_PATH)),
        _cpus(model, num_cpus),
        _chosen(kernel, bootargs, initrd),
        Node("memory", Words("reg", 0, 0, *_cells(ram_size)), Strings("device_type", "memory")),
    ):
        tree.root.append(item)
    return _libfdt_blob(tree.root)


# The order in which QEMU's ppce500 code first sets each property name: libfdt appends a new name to
# the strings block, and a name already there (also as the end of a longer one) shares its bytes.
# Read off qemu-system-ppc 7.2's dumpdtb with every option that adds a name (-initrd, -bios with
# -kernel, -append, -smp 2); "stdout-path" comes after "linux,stdout-path", whose end it shares.
_QEMU_NAME_ORDER = (
    "#address-cells", "#size-cells", "device_type", "reg", "linux,initrd-start", "linux,initrd-end",
    "qemu,boot-kernel", "bootargs", "rng-seed", "clock-frequency", "timebase-frequency",
    "d-cache-line-size", "i-cache-line-size", "d-cache-size", "i-cache-size", "bus-frequency", "status",
    "enable-method", "cpu-release-addr", "compatible", "ranges", "#interrupt-cells", "phandle",
    "linux,phandle", "interrupt-controller", "cell-index", "interrupts", "interrupt-parent", "serial0",
    "linux,stdout-path", "stdout-path", "i2c", "rtc", "fsl,has-rstcr", "msi-available-ranges",
    "interrupt-map-mask", "interrupt-map", "bus-range", "fsl,msi", "pci0", "#gpio-cells",
    "gpio-controller", "gpios", "model",
)
_FDT_BEGIN_NODE, _FDT_END_NODE, _FDT_PROP, _FDT_END = 1, 2, 3, 9
_RESERVE_MAP_OFFSET = 0x30           # libfdt: the 40-byte header rounded up to a reserve entry (16)
_STRUCT_OFFSET = _RESERVE_MAP_OFFSET + 16     # after the reserve map's terminating entry


def _value(prop: object) -> bytes:
    if isinstance(prop, Words):
        return b"".join(struct.pack(">I", word) for word in prop.data)
    if isinstance(prop, Strings):
        return b"".join(text.encode() + b"\0" for text in prop.data)
    if isinstance(prop, fdt.PropBytes):
        return bytes(prop.data)
    return b""                       # a flag: no value


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _libfdt_blob(root: Node) -> bytes:
    """The blob as QEMU's libfdt lays it out: header, reserve map at 0x30, structure block, strings
    in :data:`_QEMU_NAME_ORDER`; ``totalsize`` is :data:`FDT_SIZE` (QEMU's buffer)."""
    used: list[str] = []

    def collect(node: Node) -> None:
        used.extend(prop.name for prop in node.props if prop.name not in used)
        for child in node.nodes:
            collect(child)
    collect(root)
    strings = bytearray()
    name_offset: dict[str, int] = {}
    for name in (*_QEMU_NAME_ORDER, *(name for name in used if name not in _QEMU_NAME_ORDER)):
        if name not in used:
            continue
        entry = name.encode() + b"\0"
        at = strings.find(entry)
        if at < 0:
            at = len(strings)
            strings += entry
        name_offset[name] = at
    body = bytearray()

    def emit(node: Node) -> None:
        name = b"" if node is root else node.name.encode()      # the root's name is empty
        body.extend(struct.pack(">I", _FDT_BEGIN_NODE) + _padded(name + b"\0"))
        for prop in node.props:
            value = _value(prop)
            body.extend(struct.pack(">III", _FDT_PROP, len(value), name_offset[prop.name]) + _padded(value))
        for child in node.nodes:
            emit(child)
        body.extend(struct.pack(">I", _FDT_END_NODE))
    emit(root)
    body.extend(struct.pack(">I", _FDT_END))
    strings_offset = _STRUCT_OFFSET + len(body)
    header = struct.pack(">10I", FDT_MAGIC, FDT_SIZE, _STRUCT_OFFSET, strings_offset, _RESERVE_MAP_OFFSET,
                         FDT_VERSION, 16, 0, len(strings), len(body))
    return (header + bytes(_RESERVE_MAP_OFFSET - len(header)) + bytes(16) + bytes(body) + bytes(strings))

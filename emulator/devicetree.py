"""The flattened device tree QEMU's ``ppce500`` machine hands a ``-kernel`` guest in r3.

Firmware and kernels find RAM size, the UART, the time-base frequency and the power-off GPIO in it,
so a guest that reads the tree must see the same facts here as on QEMU. The nodes, properties and
phandles follow what qemu-system-ppc 7.2 writes for ``-M ppce500`` (its ``dumpdtb`` output), with two
deliberate differences: ``/chosen/rng-seed`` is a fixed value (QEMU's is random, and this machine is
deterministic), and the blob is packed (QEMU leaves the rest of its 1 MiB buffer as free space; the
header's ``totalsize`` still says 1 MiB, as QEMU's does, so a guest that edits the tree in place has
the same room).

Serialisation is the ``fdt`` package's; this module only says what the tree holds.

Imports: the standard library, ``fdt`` and :mod:`emulator.models`.
"""

from __future__ import annotations

import struct

import fdt

from emulator.models import CpuModel

FDT_SIZE = 0x100000                  # QEMU's FDT_MAX_SIZE: the size it reserves and reports
FDT_VERSION = 17
TIMEBASE_HZ = 400_000_000            # QEMU ppce500: PLATFORM_CLK_FREQ_HZ, used for tb and the UART clock
CCSR_PA = 0xF_E000_0000
PLATFORM_PA = 0xF_0000_0000
PCI_PA = 0xF_E000_8000
MPIC_PHANDLE = 0x8003
MSI_PHANDLE = 0x8004
GPIO_PHANDLE = 0x8005
SOC_PATH = "/soc@fe0000000"
UART0_PATH = f"{SOC_PATH}/serial@4500"
# Any fixed 32 bytes: guests that use the seed get the same entropy in every run.
RNG_SEED_WORDS = (0x65353030, 0x2D676462, 0x73747562, 0x2D736565, 0x64000000, 0, 0, 0)
_FDT_TOTALSIZE_OFFSET = 4


def _pci_interrupt_map() -> list[int]:
    """QEMU's ppce500 PCI swizzle: slots 1..31, INTA..INTD rotated over MPIC sources 1..4."""
    cells: list[int] = []
    for slot in range(1, 32):
        for pin in range(4):
            source = (slot + pin) % 4 + 1
            cells += [slot << 11, 0, 0, pin + 1, MPIC_PHANDLE, source, 1]
    return cells


def _cpus_node(model: CpuModel) -> fdt.Node:
    cache_line = model.cache_line_size
    cpu = fdt.Node("PowerPC,8544@0")
    cpu.append(fdt.PropStrings("status", "okay"))
    cpu.append(fdt.PropWords("bus-frequency", 0))
    cpu.append(fdt.PropWords("i-cache-size", 0x8000))
    cpu.append(fdt.PropWords("d-cache-size", 0x8000))
    cpu.append(fdt.PropWords("i-cache-line-size", cache_line))
    cpu.append(fdt.PropWords("d-cache-line-size", cache_line))
    cpu.append(fdt.PropWords("reg", 0))
    cpu.append(fdt.PropStrings("device_type", "cpu"))
    cpu.append(fdt.PropWords("timebase-frequency", TIMEBASE_HZ))
    cpu.append(fdt.PropWords("clock-frequency", TIMEBASE_HZ))
    cpus = fdt.Node("cpus")
    cpus.append(fdt.PropWords("#size-cells", 0))
    cpus.append(fdt.PropWords("#address-cells", 1))
    cpus.append(cpu)
    return cpus


def _soc_node() -> fdt.Node:
    soc = fdt.Node("soc@fe0000000")
    soc.append(fdt.PropWords("bus-frequency", 0))
    soc.append(fdt.PropWords("ranges", 0, CCSR_PA >> 32, CCSR_PA & 0xFFFFFFFF, 0x100000))
    soc.append(fdt.PropWords("#size-cells", 1))
    soc.append(fdt.PropWords("#address-cells", 1))
    soc.append(fdt.PropStrings("compatible", "fsl,mpc8544-immr", "simple-bus"))
    soc.append(fdt.PropStrings("device_type", "soc"))

    power_off = fdt.Node("power-off")
    power_off.append(fdt.PropWords("gpios", GPIO_PHANDLE, 0, 0))
    power_off.append(fdt.PropStrings("compatible", "gpio-poweroff"))
    soc.append(power_off)

    gpio = fdt.Node("gpio@ff000")
    gpio.append(fdt.PropWords("linux,phandle", GPIO_PHANDLE))
    gpio.append(fdt.PropWords("phandle", GPIO_PHANDLE))
    gpio.append(fdt.Property("gpio-controller"))
    gpio.append(fdt.PropWords("#gpio-cells", 2))
    gpio.append(fdt.PropWords("interrupt-parent", MPIC_PHANDLE))
    gpio.append(fdt.PropWords("interrupts", 0x2F, 2))
    gpio.append(fdt.PropWords("reg", 0xFF000, 0x1000))
    gpio.append(fdt.PropStrings("compatible", "fsl,qoriq-gpio"))
    soc.append(gpio)

    msi = fdt.Node("msi@41600")
    msi.append(fdt.PropWords("linux,phandle", MSI_PHANDLE))
    msi.append(fdt.PropWords("phandle", MSI_PHANDLE))
    msi.append(fdt.PropWords("interrupts", *(cell for irq in range(0xE0, 0xE8) for cell in (irq, 0))))
    msi.append(fdt.PropWords("interrupt-parent", MPIC_PHANDLE))
    msi.append(fdt.PropWords("msi-available-ranges", 0, 0x100))
    msi.append(fdt.PropWords("reg", 0x41600, 0x200))
    msi.append(fdt.PropStrings("compatible", "fsl,mpic-msi"))
    soc.append(msi)

    guts = fdt.Node("global-utilities@e0000")
    guts.append(fdt.Property("fsl,has-rstcr"))
    guts.append(fdt.PropWords("reg", 0xE0000, 0x1000))
    guts.append(fdt.PropStrings("compatible", "fsl,mpc8544-guts"))
    soc.append(guts)

    i2c = fdt.Node("i2c@3000")
    i2c.append(fdt.PropWords("interrupt-parent", MPIC_PHANDLE))
    i2c.append(fdt.PropWords("interrupts", 0x2B, 2))
    i2c.append(fdt.PropWords("cell-index", 0))
    i2c.append(fdt.PropWords("reg", 0x3000, 0x14))
    i2c.append(fdt.PropStrings("compatible", "fsl-i2c"))
    i2c.append(fdt.PropStrings("device_type", "i2c"))
    rtc = fdt.Node("rtc@68")
    rtc.append(fdt.PropWords("reg", 0x68))
    rtc.append(fdt.PropStrings("compatible", "pericom,pt7c4338"))
    i2c.append(rtc)
    soc.append(i2c)

    serial = fdt.Node("serial@4500")
    serial.append(fdt.PropWords("interrupt-parent", MPIC_PHANDLE))
    serial.append(fdt.PropWords("interrupts", 0x2A, 2))
    serial.append(fdt.PropWords("clock-frequency", TIMEBASE_HZ))
    serial.append(fdt.PropWords("cell-index", 0))
    serial.append(fdt.PropWords("reg", 0x4500, 0x100))
    serial.append(fdt.PropStrings("compatible", "ns16550"))
    serial.append(fdt.PropStrings("device_type", "serial"))
    soc.append(serial)

    mpic = fdt.Node("pic@40000")
    mpic.append(fdt.Property("interrupt-controller"))
    mpic.append(fdt.PropWords("linux,phandle", MPIC_PHANDLE))
    mpic.append(fdt.PropWords("phandle", MPIC_PHANDLE))
    mpic.append(fdt.PropWords("#interrupt-cells", 2))
    mpic.append(fdt.PropWords("#address-cells", 0))
    mpic.append(fdt.PropWords("reg", 0x40000, 0x40000))
    mpic.append(fdt.PropStrings("compatible", "fsl,mpic"))
    mpic.append(fdt.PropStrings("device_type", "open-pic"))
    soc.append(mpic)
    return soc


def _pci_node() -> fdt.Node:
    pci = fdt.Node("pci@fe0008000")
    pci.append(fdt.PropWords("#address-cells", 3))
    pci.append(fdt.PropWords("#size-cells", 2))
    pci.append(fdt.PropWords("#interrupt-cells", 1))
    pci.append(fdt.PropWords("clock-frequency", 66_666_666))
    pci.append(fdt.PropWords("reg", PCI_PA >> 32, PCI_PA & 0xFFFFFFFF, 0, 0x1000))
    pci.append(fdt.PropWords("ranges", 0x2000000, 0, 0xE0000000, 0xC, 0, 0, 0x20000000,
                             0x1000000, 0, 0, 0xF, 0xE1000000, 0, 0x10000))
    pci.append(fdt.PropWords("fsl,msi", MSI_PHANDLE))
    pci.append(fdt.PropWords("bus-range", 0, 0xFF))
    pci.append(fdt.PropWords("interrupts", 0x18, 2))
    pci.append(fdt.PropWords("interrupt-parent", MPIC_PHANDLE))
    pci.append(fdt.PropWords("interrupt-map", *_pci_interrupt_map()))
    pci.append(fdt.PropWords("interrupt-map-mask", 0xF800, 0, 0, 7))
    pci.append(fdt.PropStrings("device_type", "pci"))
    pci.append(fdt.PropStrings("compatible", "fsl,mpc8540-pci"))
    pci.append(fdt.PropWords("cell-index", 0))
    return pci


def build_ppce500_fdt(model: CpuModel, ram_size: int, kernel_base: int, kernel_size: int) -> bytes:
    """The device tree blob for this board; ``totalsize`` in its header is :data:`FDT_SIZE`."""
    tree = fdt.FDT()
    root = tree.root
    root.append(fdt.PropStrings("compatible", "fsl,qemu-e500"))
    root.append(fdt.PropStrings("model", "QEMU ppce500"))
    root.append(fdt.PropWords("#size-cells", 2))
    root.append(fdt.PropWords("#address-cells", 2))

    platform = fdt.Node("platform@f00000000")
    platform.append(fdt.PropWords("interrupt-parent", MPIC_PHANDLE))
    platform.append(fdt.PropWords("ranges", 0, PLATFORM_PA >> 32, 0, 0x8000000))
    platform.append(fdt.PropWords("#address-cells", 1))
    platform.append(fdt.PropWords("#size-cells", 1))
    platform.append(fdt.PropStrings("compatible", "qemu,platform", "simple-bus"))
    root.append(platform)
    root.append(_pci_node())
    root.append(_soc_node())

    aliases = fdt.Node("aliases")
    aliases.append(fdt.PropStrings("pci0", "/pci@fe0008000"))
    aliases.append(fdt.PropStrings("rtc", "i2c/rtc@68"))
    aliases.append(fdt.PropStrings("i2c", f"{SOC_PATH}/i2c@3000"))
    aliases.append(fdt.PropStrings("serial0", UART0_PATH))
    root.append(aliases)
    root.append(_cpus_node(model))

    chosen = fdt.Node("chosen")
    chosen.append(fdt.PropStrings("stdout-path", UART0_PATH))
    chosen.append(fdt.PropStrings("linux,stdout-path", UART0_PATH))
    chosen.append(fdt.PropWords("rng-seed", *RNG_SEED_WORDS))
    chosen.append(fdt.PropBytes("bootargs", data=b"\0"))
    chosen.append(fdt.PropWords("qemu,boot-kernel", kernel_base >> 32, kernel_base & 0xFFFFFFFF,
                                kernel_size >> 32, kernel_size & 0xFFFFFFFF))
    root.append(chosen)

    memory = fdt.Node("memory")
    memory.append(fdt.PropWords("reg", 0, 0, ram_size >> 32, ram_size & 0xFFFFFFFF))
    memory.append(fdt.PropStrings("device_type", "memory"))
    root.append(memory)

    blob = bytearray(tree.to_dtb(version=FDT_VERSION, last_comp_version=16, boot_cpuid_phys=0))
    struct.pack_into(">I", blob, _FDT_TOTALSIZE_OFFSET, FDT_SIZE)
    return bytes(blob)

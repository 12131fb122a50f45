"""The one command line that starts QEMU's ``ppce500`` machine on a guest ELF, for every test and
benchmark that uses QEMU as the reference.

``-nic none``: the board's default network card wants an iPXE option ROM (efi-virtio.rom) that a
``--no-install-recommends`` install of qemu-system-ppc lacks; without it QEMU refuses to start. The
guests use no network, so the card is left out rather than depending on that package.

Imports: the standard library only.
"""

from __future__ import annotations

from pathlib import Path

QEMU_BINARY = "qemu-system-ppc"
# The QEMU CPU whose PVR is our model's (0x80210030 / 0x80230020); QEMU's plain "e500v2" is v2.2.
QEMU_CPU = {"e500v2": "e500v2_v30", "e500mc": "e500mc"}


def ppce500_command(image: Path | str, cpu: str, *extra: str, binary: str = QEMU_BINARY) -> list[str]:
    """``qemu-system-ppc -M ppce500 -kernel IMAGE`` with no display, no monitor, the UART on stdio.

    ``cpu`` is our model name (mapped through :data:`QEMU_CPU`) or a QEMU CPU name."""
    return [binary, "-M", "ppce500", "-cpu", QEMU_CPU.get(cpu, cpu), "-nographic", "-nic", "none",
            "-monitor", "none", "-kernel", str(image), *extra]

"""Byte layout of the uapi structures in emulator.kvm.

Every check builds bytes with the construct declarations and reads them back with ``struct.unpack_from``
at the raw offsets of the Linux uapi (include/uapi/linux/kvm.h, arch/powerpc/include/uapi/asm/kvm.h),
so a wrong field order, size or byte order in the declarations fails here.
"""

from __future__ import annotations

import struct

import pytest

from emulator import kvm

# Host byte order of the uapi structures (big-endian, as stated in emulator.kvm).
BE = ">"


def test_byte_order_is_big_endian() -> None:
    assert kvm.UAPI_BYTE_ORDER == "big"


def test_sizes() -> None:
    assert kvm.kvm_debug_exit_arch.sizeof() == 16
    assert kvm.kvm_guest_debug_arch.sizeof() == 256
    assert kvm.kvm_guest_debug.sizeof() == 264
    assert kvm.kvm_run.sizeof() == 2352
    assert kvm.KVM_RUN_SIZE == 2352
    assert kvm.KVM_GUEST_DEBUG_SIZE == 264


def test_kvm_debug_exit_arch_offsets() -> None:
    raw = kvm.kvm_debug_exit_arch.build(dict(address=0x0123456789ABCDEF, status=0x11223344,
                                             reserved=0x55667788))
    assert struct.unpack_from(BE + "Q", raw, 0)[0] == 0x0123456789ABCDEF
    assert struct.unpack_from(BE + "I", raw, 8)[0] == 0x11223344
    assert struct.unpack_from(BE + "I", raw, 12)[0] == 0x55667788


def test_kvm_guest_debug_offsets_every_bp_entry() -> None:
    entries = [dict(addr=0x1000_0000_0000_0000 + n * 0x111, type=n + 1, reserved=0xA0 + n)
               for n in range(16)]
    raw = kvm.kvm_guest_debug.build(dict(control=0xDEADBEEF, pad=0x01020304, arch=dict(bp=entries)))
    assert len(raw) == 264
    assert struct.unpack_from(BE + "I", raw, 0)[0] == 0xDEADBEEF
    assert struct.unpack_from(BE + "I", raw, 4)[0] == 0x01020304
    for n in range(16):
        base = 8 + 16 * n
        expected = (0x1000_0000_0000_0000 + n * 0x111, n + 1, 0xA0 + n)
        assert struct.unpack_from(BE + "QII", raw, base) == expected


def _kvm_run_fields(exit_union: dict[str, object]) -> dict[str, object]:
    return dict(request_interrupt_window=0x11, immediate_exit=0x22, exit_reason=0x33445566,
                ready_for_interrupt_injection=0x77, if_flag=0x88, flags=0x99AA, cr8=0x0102030405060708,
                apic_base=0x1112131415161718, exit=exit_union, kvm_valid_regs=0x2122232425262728,
                kvm_dirty_regs=0x3132333435363738, s=bytes(range(256)) * 8)


def test_kvm_run_fixed_fields() -> None:
    raw = kvm.kvm_run.build(_kvm_run_fields(dict(hw=dict(hardware_exit_reason=0x4142434445464748))))
    assert len(raw) == 2352
    assert raw[0] == 0x11
    assert raw[1] == 0x22
    assert raw[2:8] == bytes(6)
    assert struct.unpack_from(BE + "I", raw, 8)[0] == 0x33445566
    assert raw[12] == 0x77
    assert raw[13] == 0x88
    assert struct.unpack_from(BE + "H", raw, 14)[0] == 0x99AA
    assert struct.unpack_from(BE + "Q", raw, 16)[0] == 0x0102030405060708
    assert struct.unpack_from(BE + "Q", raw, 24)[0] == 0x1112131415161718
    assert struct.unpack_from(BE + "Q", raw, 32)[0] == 0x4142434445464748  # hw.hardware_exit_reason
    assert struct.unpack_from(BE + "Q", raw, 288)[0] == 0x2122232425262728
    assert struct.unpack_from(BE + "Q", raw, 296)[0] == 0x3132333435363738
    assert raw[304:2352] == bytes(range(256)) * 8


def test_kvm_run_debug_exit_member() -> None:
    raw = kvm.kvm_run.build(_kvm_run_fields(dict(debug=dict(arch=dict(address=0xFEDCBA98, status=0x8,
                                                                        reserved=0x5A5A5A5A)))))
    assert struct.unpack_from(BE + "Q", raw, 32)[0] == 0xFEDCBA98
    assert struct.unpack_from(BE + "I", raw, 40)[0] == 0x8
    assert struct.unpack_from(BE + "I", raw, 44)[0] == 0x5A5A5A5A
    assert raw[48:288] == bytes(240)  # the union is padded to 256 bytes


def test_kvm_run_system_event_member() -> None:
    data = [0x1000 + n for n in range(16)]
    raw = kvm.kvm_run.build(_kvm_run_fields(dict(system_event=dict(type=kvm.KVM_SYSTEM_EVENT_SHUTDOWN,
                                                                    ndata=16, data=data))))
    assert struct.unpack_from(BE + "I", raw, 32)[0] == kvm.KVM_SYSTEM_EVENT_SHUTDOWN
    assert struct.unpack_from(BE + "I", raw, 36)[0] == 16
    assert list(struct.unpack_from(BE + "16Q", raw, 40)) == data
    assert struct.unpack_from(BE + "Q", raw, 288)[0] == 0x2122232425262728  # union did not overflow


def test_kvm_run_parse_reads_raw_offsets() -> None:
    raw = bytearray(2352)
    struct.pack_into(BE + "I", raw, 8, kvm.KVM_EXIT_DEBUG)
    struct.pack_into(BE + "QI", raw, 32, 0x00100010, kvm.KVMPPC_DEBUG_WATCH_READ)
    parsed = kvm.kvm_run.parse(bytes(raw))
    assert parsed.exit_reason == kvm.KVM_EXIT_DEBUG
    assert parsed.exit.debug.arch.address == 0x00100010
    assert parsed.exit.debug.arch.status == kvm.KVMPPC_DEBUG_WATCH_READ


@pytest.mark.parametrize(("path", "offset"), [
    (("request_interrupt_window",), 0),
    (("immediate_exit",), 1),
    (("exit_reason",), 8),
    (("ready_for_interrupt_injection",), 12),
    (("if_flag",), 13),
    (("flags",), 14),
    (("cr8",), 16),
    (("apic_base",), 24),
    (("exit",), 32),
    (("exit", "hw", "hardware_exit_reason"), 32),
    (("exit", "debug", "arch", "address"), 32),
    (("exit", "debug", "arch", "status"), 40),
    (("exit", "debug", "arch", "reserved"), 44),
    (("exit", "system_event", "type"), 32),
    (("exit", "system_event", "ndata"), 36),
    (("exit", "system_event", "data", 0), 40),
    (("exit", "system_event", "data", 15), 160),
    (("kvm_valid_regs",), 288),
    (("kvm_dirty_regs",), 296),
    (("s",), 304),
])
def test_field_offset_helper_matches_uapi(path: tuple[str | int, ...], offset: int) -> None:
    assert kvm.field_offset(kvm.kvm_run, *path) == offset


def test_constants() -> None:
    assert (kvm.KVM_EXIT_UNKNOWN, kvm.KVM_EXIT_DEBUG, kvm.KVM_EXIT_INTR, kvm.KVM_EXIT_INTERNAL_ERROR,
            kvm.KVM_EXIT_SYSTEM_EVENT) == (0, 4, 10, 17, 24)
    assert kvm.KVM_SYSTEM_EVENT_SHUTDOWN == 1
    assert (kvm.KVM_GUESTDBG_ENABLE, kvm.KVM_GUESTDBG_SINGLESTEP, kvm.KVM_GUESTDBG_USE_SW_BP,
            kvm.KVM_GUESTDBG_USE_HW_BP) == (0x1, 0x2, 0x10000, 0x20000)
    assert (kvm.KVMPPC_DEBUG_NONE, kvm.KVMPPC_DEBUG_BREAKPOINT, kvm.KVMPPC_DEBUG_WATCH_WRITE,
            kvm.KVMPPC_DEBUG_WATCH_READ) == (0, 2, 4, 8)
    assert kvm.KVMPPC_INST_EHPRIV_DEBUG == 0x7C000A1C
    assert kvm.KVM_REG_PPC_DEBUG_INST == 0x102000000000008B


def test_kvm_regs_layout() -> None:
    """struct kvm_regs (powerpc): pc cr ctr lr xer msr srr0 srr1 pid sprg0-7, then gpr[32], all u64."""
    assert kvm.kvm_regs.sizeof() == kvm.KVM_REGS_SIZE == 392
    values = {name: 0x1000 + i for i, name in enumerate(
        ["pc", "cr", "ctr", "lr", "xer", "msr", "srr0", "srr1", "pid", *(f"sprg{n}" for n in range(8))])}
    raw = kvm.kvm_regs.build({**values, "gpr": list(range(0x2000, 0x2020))})
    assert struct.unpack_from(BE + "17Q", raw, 0) == tuple(range(0x1000, 0x1011))
    assert struct.unpack_from(BE + "32Q", raw, 136) == tuple(range(0x2000, 0x2020))

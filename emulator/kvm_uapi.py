"""The KVM uapi as this vCPU speaks it: constants and the structures, byte-compatible with Linux.

``include/uapi/linux/kvm.h`` and ``arch/powerpc/include/uapi/asm/kvm.h``: the exit reasons, the
``KVM_GUESTDBG_*`` control bits and ``KVMPPC_DEBUG_*`` breakpoint types, and ``struct kvm_run``,
``struct kvm_guest_debug`` and ``struct kvm_debug_exit_arch`` declared once with ``construct``
(tests/test_kvm_layout.py pins their layout). Their byte order is the *host* order of the uapi, and
the host of these structures is this emulator; we use big-endian, the order of a ppc host, chosen in
one place (:data:`UAPI_BYTE_ORDER`). The offsets and packers of the fields written on every exit are
derived from the declarations at import time: building a construct container per exit costs tens of
microseconds, a ``pack_into`` well under one.

Extensions beyond the uapi (documented where used):
- ``kvm_guest_debug_arch.bp[n].reserved`` is the watched length in bytes for a watchpoint (0 = the
  aligned word that holds ``addr``, which is what one DAC compares in the uapi); a watch wider than one
  aligned word takes both DACs (range mode).

The vCPU that fills and reads these is :mod:`emulator.kvm`. Imports: standard library, ``construct``
and :mod:`emulator.models`.
"""

from __future__ import annotations

import struct
from typing import Any, Literal

import construct as cs

from emulator.models import SW_BREAK_EHPRIV_1

# ----------------------------------------------------------------------------------------------
# uapi constants (include/uapi/linux/kvm.h, arch/powerpc/include/uapi/asm/kvm.h)
# ----------------------------------------------------------------------------------------------
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_DEBUG = 4
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24

EXIT_REASON_NAMES: dict[int, str] = {
    KVM_EXIT_UNKNOWN: "KVM_EXIT_UNKNOWN",
    KVM_EXIT_DEBUG: "KVM_EXIT_DEBUG",
    KVM_EXIT_INTR: "KVM_EXIT_INTR",
    KVM_EXIT_INTERNAL_ERROR: "KVM_EXIT_INTERNAL_ERROR",
    KVM_EXIT_SYSTEM_EVENT: "KVM_EXIT_SYSTEM_EVENT",
}

KVM_SYSTEM_EVENT_SHUTDOWN = 1
KVM_SYSTEM_EVENT_RESET = 2

KVM_INTERNAL_ERROR_EMULATION = 1

KVM_GUESTDBG_ENABLE = 0x00000001
KVM_GUESTDBG_SINGLESTEP = 0x00000002
KVM_GUESTDBG_USE_SW_BP = 0x00010000
KVM_GUESTDBG_USE_HW_BP = 0x00020000
GUESTDBG_KNOWN = (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP
                   | KVM_GUESTDBG_USE_HW_BP)
# kvm_debug_exit_arch.status values and kvm_guest_debug_arch.bp[].type bits (uapi asm/kvm.h).
KVMPPC_DEBUG_NONE = 0x0
KVMPPC_DEBUG_BREAKPOINT = 0x2
KVMPPC_DEBUG_WATCH_WRITE = 0x4
KVMPPC_DEBUG_WATCH_READ = 0x8
DEBUG_TYPE_KNOWN = KVMPPC_DEBUG_BREAKPOINT | KVMPPC_DEBUG_WATCH_WRITE | KVMPPC_DEBUG_WATCH_READ

# Soft-breakpoint opcodes: "ehpriv 1" (the original booke KVM opcode) and current KVM's illegal one.
KVMPPC_INST_EHPRIV_DEBUG = SW_BREAK_EHPRIV_1
KVMPPC_INST_SW_BREAKPOINT = 0x00DDDD00

# ONE_REG id: KVM_REG_PPC | KVM_REG_SIZE_U32 | 0x8b ("special instruction for software breakpoint").
KVM_REG_PPC = 0x1000000000000000
KVM_REG_SIZE_U32 = 0x0020000000000000
KVM_REG_PPC_DEBUG_INST = KVM_REG_PPC | KVM_REG_SIZE_U32 | 0x8B

KVM_GUEST_DEBUG_BP_COUNT = 16
KVM_RUN_EXIT_UNION_SIZE = 256
KVM_SYNC_REGS_SIZE = 2048

# ----------------------------------------------------------------------------------------------
# uapi structures
# ----------------------------------------------------------------------------------------------
UAPI_BYTE_ORDER: Literal["big", "little"] = "big"
"""Byte order of every uapi structure here (the host order; ppc hosts are big-endian)."""

_BIG = UAPI_BYTE_ORDER == "big"
_STRUCT_PREFIX = ">" if _BIG else "<"
_U8 = cs.Int8ub
_U16 = cs.Int16ub if _BIG else cs.Int16ul
_U32 = cs.Int32ub if _BIG else cs.Int32ul
_U64 = cs.Int64ub if _BIG else cs.Int64ul

kvm_debug_exit_arch = cs.Struct(
    "address" / _U64,
    "status" / _U32,
    "reserved" / _U32,
)

kvm_guest_debug_breakpoint = cs.Struct(
    "addr" / _U64,
    "type" / _U32,
    # uapi: reserved. Here: watched length in bytes for a watchpoint (0 = the aligned word).
    "reserved" / _U32,
)

kvm_guest_debug_arch = cs.Struct(
    "bp" / cs.Array(KVM_GUEST_DEBUG_BP_COUNT, kvm_guest_debug_breakpoint),
)

kvm_guest_debug = cs.Struct(
    "control" / _U32,
    "pad" / _U32,
    "arch" / kvm_guest_debug_arch,
)

# The anonymous exit union of struct kvm_run, restricted to the members a ppc vCPU reports. construct
# has no anonymous members, so it is the field ``exit`` here (C: ``run->debug`` is ``run.exit.debug``).
kvm_run_exit = cs.Padded(KVM_RUN_EXIT_UNION_SIZE, cs.Union(
    None,
    "hw" / cs.Struct("hardware_exit_reason" / _U64),
    "debug" / cs.Struct("arch" / kvm_debug_exit_arch),
    "internal" / cs.Struct(
        "suberror" / _U32,
        "ndata" / _U32,
        "data" / cs.Array(16, _U64),
    ),
    "system_event" / cs.Struct(
        "type" / _U32,
        "ndata" / _U32,
        "data" / cs.Array(16, _U64),
    ),
    "padding" / cs.Bytes(KVM_RUN_EXIT_UNION_SIZE),
))

# struct kvm_regs (KVM_GET_REGS / KVM_SET_REGS, powerpc): which register goes where is the register
# table's (emulator.register_table, Register.kvm_regs).
KVM_REGS_FIELDS = ("pc", "cr", "ctr", "lr", "xer", "msr", "srr0", "srr1", "pid",
                   *(f"sprg{n}" for n in range(8)))
kvm_regs = cs.Struct(
    *(name / _U64 for name in KVM_REGS_FIELDS),
    "gpr" / cs.Array(32, _U64),
)

kvm_run = cs.Struct(
    "request_interrupt_window" / _U8,
    "immediate_exit" / _U8,
    "padding1" / cs.Padding(6),
    "exit_reason" / _U32,
    "ready_for_interrupt_injection" / _U8,
    "if_flag" / _U8,
    "flags" / _U16,
    "cr8" / _U64,
    "apic_base" / _U64,
    "exit" / kvm_run_exit,
    "kvm_valid_regs" / _U64,
    "kvm_dirty_regs" / _U64,
    "s" / cs.Bytes(KVM_SYNC_REGS_SIZE),
)


def field_offset(struct_con: cs.Construct, *path: str | int) -> int:
    """Byte offset of a (nested) field of a fixed-size construct: ``field_offset(kvm_run, "exit",
    "debug", "arch", "status")``; an int in the path indexes an Array."""
    offset = 0
    con: Any = struct_con
    for step in path:
        while isinstance(con, cs.Subconstruct) and not isinstance(con, cs.Array):
            con = con.subcon
        if isinstance(step, int):
            if not isinstance(con, cs.Array):
                raise TypeError(f"index {step} into a non-array {con!r}")
            offset += step * con.subcon.sizeof()
            con = con.subcon
            continue
        if isinstance(con, cs.Struct):
            for sub in con.subcons:
                if sub.name == step:
                    con = sub
                    break
                offset += sub.sizeof()
            else:
                raise KeyError(step)
        elif isinstance(con, cs.Union):
            con = next((sub for sub in con.subcons if sub.name == step), None)
            if con is None:
                raise KeyError(step)
        else:
            raise TypeError(f"cannot find {step!r} in {con!r}")
    return offset


KVM_RUN_SIZE = kvm_run.sizeof()
KVM_REGS_SIZE = kvm_regs.sizeof()
KVM_GUEST_DEBUG_SIZE = kvm_guest_debug.sizeof()

OFF_IMMEDIATE_EXIT = field_offset(kvm_run, "immediate_exit")
OFF_EXIT_REASON = field_offset(kvm_run, "exit_reason")
OFF_IF_FLAG = field_offset(kvm_run, "if_flag")
OFF_EXIT_UNION = field_offset(kvm_run, "exit")
OFF_DEBUG_ADDRESS = field_offset(kvm_run, "exit", "debug", "arch", "address")
OFF_DEBUG_STATUS = field_offset(kvm_run, "exit", "debug", "arch", "status")
OFF_HW_REASON = field_offset(kvm_run, "exit", "hw", "hardware_exit_reason")
OFF_SYSTEM_EVENT_TYPE = field_offset(kvm_run, "exit", "system_event", "type")
OFF_SYSTEM_EVENT_NDATA = field_offset(kvm_run, "exit", "system_event", "ndata")
OFF_SYSTEM_EVENT_DATA0 = field_offset(kvm_run, "exit", "system_event", "data", 0)
OFF_INTERNAL_SUBERROR = field_offset(kvm_run, "exit", "internal", "suberror")
OFF_INTERNAL_NDATA = field_offset(kvm_run, "exit", "internal", "ndata")
OFF_INTERNAL_DATA0 = field_offset(kvm_run, "exit", "internal", "data", 0)

PACK_U8 = struct.Struct(_STRUCT_PREFIX + "B")
PACK_U32 = struct.Struct(_STRUCT_PREFIX + "I")
PACK_U64 = struct.Struct(_STRUCT_PREFIX + "Q")
# Consecutive fields written together on an exit: {u64 address, u32 status} and {u32, u32, u64}.
PACK_DEBUG_ARCH = struct.Struct(_STRUCT_PREFIX + "QI")
PACK_EVENT_HEAD = struct.Struct(_STRUCT_PREFIX + "IIQ")
assert OFF_DEBUG_STATUS == OFF_DEBUG_ADDRESS + 8
assert OFF_SYSTEM_EVENT_DATA0 == OFF_SYSTEM_EVENT_TYPE + 8 == OFF_SYSTEM_EVENT_NDATA + 4
assert OFF_INTERNAL_DATA0 == OFF_INTERNAL_SUBERROR + 8
ZERO_EXIT_UNION = bytes(KVM_RUN_EXIT_UNION_SIZE)

"""Internal control-flow exceptions of the e500 core, and the debug events it reports.

They carry architectural events (interrupts, host debug events, power-off) from instruction handlers
and devices up to the run loop in :mod:`emulator.cpu`, which turns each into guest state or a stop
reason. None of them ever escapes ``Cpu.run``. The core names its own debug events
(:class:`DebugEvent`); :mod:`emulator.kvm` maps them to the KVM uapi. Imports: standard library only.
"""

from __future__ import annotations

import enum

# Interrupt vector offsets registers (IVORn), Book E numbering.
IVOR_CRITICAL_INPUT = 0
IVOR_MACHINE_CHECK = 1
IVOR_DATA_STORAGE = 2
IVOR_INSTRUCTION_STORAGE = 3
IVOR_EXTERNAL_INPUT = 4
IVOR_ALIGNMENT = 5
IVOR_PROGRAM = 6
IVOR_FP_UNAVAILABLE = 7
IVOR_SYSTEM_CALL = 8
IVOR_DECREMENTER = 10
IVOR_FIXED_INTERVAL_TIMER = 11
IVOR_WATCHDOG = 12
IVOR_DATA_TLB_ERROR = 13
IVOR_INSTRUCTION_TLB_ERROR = 14
IVOR_DEBUG = 15
IVOR_SPE_UNAVAILABLE = 32
IVOR_DOORBELL = 36            # e500mc processor doorbell (msgsnd)
IVOR_CRITICAL_DOORBELL = 37   # e500mc critical doorbell (CSRR0/1)
IVOR_HYPERVISOR_PRIVILEGE = 41

IVOR_NAMES = {
    IVOR_CRITICAL_INPUT: "critical input", IVOR_MACHINE_CHECK: "machine check",
    IVOR_DATA_STORAGE: "data storage", IVOR_INSTRUCTION_STORAGE: "instruction storage",
    IVOR_EXTERNAL_INPUT: "external input", IVOR_ALIGNMENT: "alignment", IVOR_PROGRAM: "program",
    IVOR_FP_UNAVAILABLE: "floating-point unavailable", IVOR_SYSTEM_CALL: "system call",
    9: "auxiliary processor unavailable", IVOR_DECREMENTER: "decrementer",
    IVOR_FIXED_INTERVAL_TIMER: "fixed-interval timer", IVOR_WATCHDOG: "watchdog",
    IVOR_DATA_TLB_ERROR: "data TLB error", IVOR_INSTRUCTION_TLB_ERROR: "instruction TLB error",
    IVOR_DEBUG: "debug", IVOR_SPE_UNAVAILABLE: "SPE unavailable", 33: "embedded FP data",
    34: "embedded FP round", 35: "performance monitor", 36: "doorbell", 37: "doorbell critical",
    38: "guest doorbell", 39: "guest doorbell critical", 40: "hypervisor system call",
    IVOR_HYPERVISOR_PRIVILEGE: "hypervisor privilege",
}

# Exception syndrome register bits (reg_booke.h).
ESR_PIL = 0x08000000
ESR_PPR = 0x04000000
ESR_PTR = 0x02000000
ESR_FP = 0x01000000
ESR_ST = 0x00800000
ESR_DLK = 0x00200000
ESR_ILK = 0x00100000
ESR_BO = 0x00020000
ESR_SPV = 0x00000080


class Interrupt(Exception):
    """An architectural interrupt raised while executing one instruction.

    ``after`` is True when the save register must hold the address of the next instruction
    (system call); otherwise it holds the address of the faulting instruction.
    ``esr``/``dear`` are written only when not None, as Book E says for each interrupt type.
    """

    __slots__ = ("after", "dear", "esr", "ivor")

    def __init__(self, ivor: int, *, esr: int | None = None, dear: int | None = None,
                 after: bool = False) -> None:
        super().__init__(ivor)
        self.ivor = ivor
        self.esr = esr
        self.dear = dear
        self.after = after


class DebugEvent(enum.Enum):
    """What the host debugger's part of the debug facility saw (the address comes with it)."""

    SOFT_BREAKPOINT = "soft breakpoint"          # a trap/ehpriv at an address of the dispatch table
    BREAKPOINT = "breakpoint"                    # a host IAC (hardware breakpoint) matched the next pc
    SINGLE_STEP = "single step"                  # one instruction done, or an interrupt entered
    WATCH_READ = "read watch"                    # a host DAC matched a load (not performed)
    WATCH_WRITE = "write watch"                  # a host DAC matched a store (not performed)


class HostDebugEvent(Exception):
    """A debug event owned by the host debugger: the core stops with it (``StopKind.HOST_DEBUG``)."""

    __slots__ = ("address", "event")

    def __init__(self, event: DebugEvent, address: int) -> None:
        super().__init__(event, address)
        self.event = event
        self.address = address


class PowerOff(Exception):
    """The board's power-off GPIO was written; ``status`` is the guest's exit status."""

    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status

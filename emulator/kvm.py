"""The KVM-shaped vCPU: the only door the gdb stub uses into the emulated e500 guest.

:class:`Vcpu` wraps a :class:`emulator.board.Machine` the way Linux KVM (booke) wraps a real core:
``run()`` fills a ``struct kvm_run`` area and returns an exit reason, ``set_guest_debug()`` takes a
``struct kvm_guest_debug`` exactly as ``KVM_SET_GUEST_DEBUG`` does, and soft breakpoints are a
dispatch table of patched addresses (the booke design discussed on kvm-ppc, where only addresses in the
table exit to the host and any other trap goes to the guest). The core reports its own stop reasons
and debug events (:mod:`emulator.cpu`); this module is where they become uapi exits.

The uapi constants and structures are :mod:`emulator.kvm_uapi`'s; the names users of the vCPU need
are re-exported here (``__all__``). Beyond the uapi: all sixteen ``bp`` entries are read, and slots
are limited by the model's IAC/DAC count, not by Linux's "first four entries".

Imports: standard library and the core modules of :mod:`emulator` (never ``gdbstub`` or ``trio``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from emulator import cpu as cpu_module
from emulator.board import SMP_QUANTUM
from emulator.bus import BusError
from emulator.cpu import StopKind, StopReason, UnhandledInterrupt
from emulator.debug import DataWatch, HostDebug
from emulator.exceptions import DebugEvent
from emulator.kvm_uapi import (
    DEBUG_TYPE_KNOWN,
    EXIT_REASON_NAMES,
    GUESTDBG_KNOWN,
    KVM_EXIT_DEBUG,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_INTR,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_EXIT_UNKNOWN,
    KVM_GUEST_DEBUG_BP_COUNT,
    KVM_GUEST_DEBUG_SIZE,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
    KVM_GUESTDBG_USE_SW_BP,
    KVM_INTERNAL_ERROR_EMULATION,
    KVM_REG_PPC_DEBUG_INST,
    KVM_REGS_SIZE,
    KVM_RUN_EXIT_UNION_SIZE,
    KVM_RUN_SIZE,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    KVMPPC_DEBUG_BREAKPOINT,
    KVMPPC_DEBUG_NONE,
    KVMPPC_DEBUG_WATCH_READ,
    KVMPPC_DEBUG_WATCH_WRITE,
    KVMPPC_INST_EHPRIV_DEBUG,
    KVMPPC_INST_SW_BREAKPOINT,
    OFF_DEBUG_ADDRESS,
    OFF_EXIT_REASON,
    OFF_EXIT_UNION,
    OFF_IF_FLAG,
    OFF_IMMEDIATE_EXIT,
    OFF_INTERNAL_SUBERROR,
    OFF_SYSTEM_EVENT_TYPE,
    PACK_DEBUG_ARCH,
    PACK_EVENT_HEAD,
    PACK_U32,
    UAPI_BYTE_ORDER,
    ZERO_EXIT_UNION,
    field_offset,
    kvm_debug_exit_arch,
    kvm_guest_debug,
    kvm_guest_debug_arch,
    kvm_regs,
    kvm_run,
)
from emulator.models import MSR_EE, MSR_WE, SW_BREAK_TRAP
from emulator.register_table import registers_of

__all__ = [
    "KVMPPC_DEBUG_BREAKPOINT",
    "KVMPPC_DEBUG_NONE",
    "KVMPPC_DEBUG_WATCH_READ",
    "KVMPPC_DEBUG_WATCH_WRITE",
    "KVMPPC_INST_EHPRIV_DEBUG",
    "KVMPPC_INST_SW_BREAKPOINT",
    "KVM_EXIT_DEBUG",
    "KVM_EXIT_INTERNAL_ERROR",
    "KVM_EXIT_INTR",
    "KVM_EXIT_SYSTEM_EVENT",
    "KVM_EXIT_UNKNOWN",
    "KVM_GUESTDBG_ENABLE",
    "KVM_GUESTDBG_SINGLESTEP",
    "KVM_GUESTDBG_USE_HW_BP",
    "KVM_GUESTDBG_USE_SW_BP",
    "KVM_GUEST_DEBUG_BP_COUNT",
    "KVM_GUEST_DEBUG_SIZE",
    "KVM_REGS_SIZE",
    "KVM_REG_PPC_DEBUG_INST",
    "KVM_RUN_SIZE",
    "KVM_SYSTEM_EVENT_RESET",
    "KVM_SYSTEM_EVENT_SHUTDOWN",
    "SMP_QUANTUM",
    "UAPI_BYTE_ORDER",
    "ExitInfo",
    "KvmError",
    "SoftBreakpoint",
    "Vcpu",
    "field_offset",
    "kvm_debug_exit_arch",
    "kvm_guest_debug",
    "kvm_guest_debug_arch",
    "kvm_regs",
    "kvm_run",
]

# kvm_debug_exit_arch.status for each debug event of the core (a soft breakpoint and a single step
# carry no status bit in the uapi: the debugger tells them apart by its own breakpoint table).
_DEBUG_STATUS = {
    DebugEvent.SOFT_BREAKPOINT: KVMPPC_DEBUG_NONE,
    DebugEvent.SINGLE_STEP: KVMPPC_DEBUG_NONE,
    DebugEvent.BREAKPOINT: KVMPPC_DEBUG_BREAKPOINT,
    DebugEvent.WATCH_READ: KVMPPC_DEBUG_WATCH_READ,
    DebugEvent.WATCH_WRITE: KVMPPC_DEBUG_WATCH_WRITE,
}

# Instructions per Cpu.run call, so an immediate_exit set by another thread is noticed within a few ms.
_RUN_SLICE = 1 << 14

_PAGE_SIZE = 1 << cpu_module.PAGE_SHIFT
_PAGE_MASK = _PAGE_SIZE - 1
_M32 = 0xFFFFFFFF


class KvmError(OSError):
    """A failed vCPU "ioctl": ``errno`` is the positive errno value Linux would return negated."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class ExitInfo:
    """A parsed view of the latest exit (for ``monitor debug``)."""

    reason: int
    pc: int
    instructions: int
    address: int | None = None
    status: int | None = None
    detail: str = ""

    @property
    def reason_name(self) -> str:
        return EXIT_REASON_NAMES.get(self.reason, str(self.reason))

    def __str__(self) -> str:
        text = f"{self.reason_name} at pc={self.pc:#010x} after {self.instructions} instructions"
        if self.address is not None:
            text += f", address={self.address:#010x}, status={self.status:#x}"
        if self.detail:
            text += f" ({self.detail})"
        return text


@dataclass(frozen=True)
class SoftBreakpoint:
    """One entry of the soft-breakpoint dispatch table (``Vcpu.sw_breakpoints`` values)."""

    pa: int
    original: int   # the word in RAM now (guest stores update it; fetch sees the debug opcode)
    count: int


_Getter = Callable[[], int]
_Setter = Callable[[int], None]


class Vcpu:
    """A KVM-shaped vCPU over a :class:`emulator.board.Machine` (see docs/architecture.md)."""

    def __init__(self, machine: Any, *, sw_break: Literal["trap", "ehpriv", "auto"] = "auto",
                 index: int = 0) -> None:
        """The vCPU of core ``index`` of ``machine`` (KVM_CREATE_VCPU's id)."""
        self.machine = machine
        self.index = index
        self.cpu = getattr(machine, "cpus", [machine.cpu])[index]
        self.mmu = getattr(machine, "mmus", [getattr(machine, "mmu", None)])[index]
        # An SMP core's lwarx reservation across the other cores' turns: (PA of its granule, the
        # granule's bytes when this core's turn ended).
        self._reserved_granule: tuple[int, bytes] | None = None
        self.bus = machine.bus
        self.model = self.cpu.model
        self.debug_inst = self._select_debug_inst(sw_break)
        self.kvm_run = bytearray(KVM_RUN_SIZE)
        self._control = 0
        self._host_debug = HostDebug()
        self._applied_guest_debug: bytes | None = None   # the kvm_guest_debug bytes now in force
        self._parsed_guest_debug: dict[bytes, tuple[int, HostDebug]] = {}
        # EA -> [pa, reference count]; the core's dispatch table (cpu.sw_dispatch) is kept in step.
        self._soft: dict[int, list[int]] = {}
        # The latest exit as plain values; ``last_exit`` builds the parsed view only when asked.
        self._last_exit: tuple[int, int, int, int | None, int | None, str] | None = None
        self._getters: dict[str, _Getter] = {}
        self._setters: dict[str, _Setter] = {}
        # name -> Python expression reading it from `cpu`, for get_regs' compiled batch readers.
        self._register_expressions: dict[str, str] = {}
        self._batch_readers: dict[tuple[str, ...], Callable[[], list[int]]] = {}
        self._build_register_table()

    # ------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------
    def _select_debug_inst(self, sw_break: str) -> int:
        if sw_break == "auto":
            return int(self.model.sw_break_opcode)
        if sw_break == "trap":
            return SW_BREAK_TRAP
        if sw_break == "ehpriv":
            if not self.model.has_hypervisor:
                # On e500v2 ehpriv is an illegal instruction (program interrupt, ESR[PIL]); the core
                # only hands ehpriv/tw at dispatch-table addresses to the host, not a PIL.
                raise ValueError(f"sw_break='ehpriv' is not supported on {self.model.name}: ehpriv is an "
                                 "illegal instruction there and the core does not route it to the "
                                 "debugger; use 'trap' (or 'auto')")
            return KVMPPC_INST_EHPRIV_DEBUG
        raise ValueError(f"sw_break must be 'trap', 'ehpriv' or 'auto', not {sw_break!r}")

    def _build_register_table(self) -> None:
        """get_reg/set_reg and the get_regs expressions, derived from :mod:`emulator.register_table`
        for the registers the core implements on this model."""
        cpu = self.cpu
        getters = self._getters
        setters = self._setters
        expressions = self._register_expressions
        readers = cpu.spr_readers
        writers = cpu.spr_writers
        for reg in registers_of(self.model.name):
            name, mask = reg.name, reg.mask
            if reg.field is None:
                read_spr, write_spr = reg.read_spr, reg.write_spr
                assert read_spr is not None and write_spr is not None
                if read_spr not in readers and write_spr not in writers:
                    continue  # not implemented on this model
                getters[name] = (lambda n: lambda: cpu.read_spr(n))(read_spr)
                setters[name] = (lambda n: lambda value: cpu.write_spr(n, value))(write_spr)
                expressions[name] = cpu.spr_read_source(read_spr)
                continue
            field = reg.field
            if reg.index is not None:
                # Register files are looked up on the core at every access, never captured: a reset
                # may give the core new lists.
                getters[name] = (lambda f, i: lambda: getattr(cpu, f)[i])(field, reg.index)
                setters[name] = (lambda f, i, m: lambda value: getattr(cpu, f).__setitem__(i, value & m))(
                    field, reg.index, mask)
                expressions[name] = f"cpu.{field}[{reg.index}]"
                continue
            getters[name] = (lambda f: lambda: int(getattr(cpu, f)))(field)
            expressions[name] = f"int(cpu.{field})"
            if reg.setter is not None:
                write = getattr(cpu, reg.setter)
                setters[name] = (lambda w, m: lambda value: w(value & m))(write, mask)
            elif reg.write_spr is not None:
                setters[name] = (lambda n: lambda value: cpu.write_spr(n, value))(reg.write_spr)
            else:
                setters[name] = (lambda f, m: lambda value: setattr(cpu, f, value & m))(field, mask)

    # ------------------------------------------------------------------------------------------
    # registers
    # ------------------------------------------------------------------------------------------
    def register_names(self) -> list[str]:
        """Every name get_reg/set_reg accept on this model, in a stable order."""
        return list(self._getters)

    def get_reg(self, name: str) -> int:
        """Read a register by name (KeyError for a name this model does not have)."""
        return self._getters[name]()

    def set_reg(self, name: str, value: int) -> None:
        """Write a register by name; SPR writes have the side effects of a guest mtspr."""
        self._setters[name](int(value))

    def get_kvm_regs(self) -> bytes:
        """KVM_GET_REGS: a ``struct kvm_regs`` of the core's registers (placed by the register table)."""
        values: dict[str, Any] = {"gpr": [0] * 32}
        for reg in registers_of(self.model.name):
            if reg.kvm_regs == "gpr":
                values["gpr"][reg.index] = self.get_reg(reg.name)
            elif reg.kvm_regs is not None:
                values[reg.kvm_regs] = self.get_reg(reg.name)
        return bytes(kvm_regs.build(values))

    def set_kvm_regs(self, data: bytes) -> None:
        """KVM_SET_REGS: write every register of a ``struct kvm_regs`` (EINVAL for a wrong size);
        each value is written as ``set_reg`` writes it (MSR through mtmsr, XER's implemented bits)."""
        if len(data) != KVM_REGS_SIZE:
            raise KvmError(errno.EINVAL, f"kvm_regs is {KVM_REGS_SIZE} bytes, got {len(data)}")
        parsed = kvm_regs.parse(bytes(data))
        for reg in registers_of(self.model.name):
            if reg.kvm_regs == "gpr":
                assert reg.index is not None
                self.set_reg(reg.name, int(parsed.gpr[reg.index]))
            elif reg.kvm_regs is not None:
                self.set_reg(reg.name, int(parsed[reg.kvm_regs]))

    def get_regs(self, names: list[str]) -> list[int]:
        """Read several registers at once (the stub's `g` packet and expedited stop registers).

        The stub asks for the same few name lists at every stop, so each list is compiled once into
        a single function that reads them all inline (one call instead of one per register).
        """
        key = tuple(names)
        reader = self._batch_readers.get(key)
        if reader is None:
            for name in key:
                if name not in self._getters:
                    raise KeyError(name)
            source = "lambda: [" + ", ".join(self._register_expressions[name] for name in key) + "]"
            reader = eval(source, {"cpu": self.cpu})  # source comes from our own table
            self._batch_readers[key] = reader
        return reader()

    # ------------------------------------------------------------------------------------------
    # memory
    # ------------------------------------------------------------------------------------------
    def _translate(self, ea: int) -> int:
        pa = self.cpu.translate_debug(ea)
        if pa is None:
            raise KvmError(errno.EFAULT, f"no translation for EA {ea:#010x}")
        return int(pa)

    def read_memory(self, ea: int, length: int) -> bytes:
        """Read guest memory through the current data-space translation (never shows sw-break
        patches: they live in the core's fetch overlay, RAM keeps the original)."""
        if length < 0:
            raise KvmError(errno.EINVAL, "negative length")
        bus = self.bus
        ram = bus.ram
        ram_size = bus.ram_size
        chunks: list[bytes] = []
        ea &= _M32
        while length > 0:
            chunk = min(length, _PAGE_SIZE - (ea & _PAGE_MASK))
            pa = self._translate(ea)
            if pa + chunk <= ram_size:
                chunks.append(ram[pa:pa + chunk])
            else:
                chunks.append(self._peek_device(pa, chunk))
            ea = (ea + chunk) & _M32
            length -= chunk
        return b"".join(chunks)

    def read_ram(self, ea: int, length: int) -> bytes | None:
        """The bytes at ``ea`` if they lie in one page that is RAM through the current data-space
        translation, else None (use :meth:`read_memory`); never raises.

        Unlike device registers, RAM changes only when the guest runs or is written, so a debugger may
        keep what this returns until then (the short reads gdb repeats at every stop)."""
        if length <= 0 or ea < 0 or (ea & _PAGE_MASK) + length > _PAGE_SIZE:
            return None if length else b""
        pa = self.cpu.translate_debug(ea)
        if pa is None or pa + length > self.bus.ram_size:
            return None
        return self.bus.ram[pa:pa + length]

    def _peek_device(self, pa: int, length: int) -> bytes:
        peek = self.bus.peek
        try:
            return bytes(peek(pa + i, 1) for i in range(length))
        except BusError:
            raise KvmError(errno.EFAULT, f"nothing mapped at PA {pa:#x}") from None

    def write_memory(self, ea: int, data: bytes) -> None:
        """Write guest memory through the current data-space translation. Decoded code in the range is
        invalidated; a soft breakpoint in the range stays armed and its saved original becomes the new
        word (the patch lives in the fetch overlay, the write lands in RAM). All pages are translated
        before anything is written, so a fault leaves memory unchanged."""
        bus = self.bus
        ram = bus.ram
        ram_size = bus.ram_size
        view = memoryview(bytes(data))
        pieces: list[tuple[int, int, int]] = []   # (pa, offset into data, length)
        ea &= _M32
        offset = 0
        remaining = len(view)
        while remaining > 0:
            chunk = min(remaining, _PAGE_SIZE - (ea & _PAGE_MASK))
            pa = self._translate(ea)
            if not bus.is_accessible(pa, chunk):
                raise KvmError(errno.EFAULT, f"nothing writable at PA {pa:#x}+{chunk:#x} (EA {ea:#010x})")
            pieces.append((pa, offset, chunk))
            ea = (ea + chunk) & _M32
            offset += chunk
            remaining -= chunk
        cores = getattr(self.machine, "cpus", [self.cpu])
        for pa, start, chunk in pieces:
            if pa + chunk <= ram_size:
                ram[pa:pa + chunk] = view[start:start + chunk]
                for core in cores:
                    core.invalidate_physical(pa, chunk)
            else:
                try:
                    for i in range(chunk):
                        bus.write(pa + i, 1, view[start + i])
                except BusError:
                    raise KvmError(errno.EFAULT, f"nothing mapped at PA {pa:#x}") from None

    # ------------------------------------------------------------------------------------------
    # soft breakpoints (the dispatch table)
    # ------------------------------------------------------------------------------------------
    def insert_sw_breakpoint(self, ea: int) -> None:
        """Arm a soft breakpoint at ``ea`` (reference counted: N inserts need N removes)."""
        ea &= _M32
        if ea & 3:
            raise KvmError(errno.EINVAL, f"soft breakpoint address {ea:#x} is not word aligned")
        entry = self._soft.get(ea)
        if entry is not None:
            entry[1] += 1
            return
        pa = self.cpu.translate_debug(ea)
        if pa is None:
            # A secondary core still waiting in the spin table maps nothing yet: the breakpoint is
            # where the other cores of the board see that address.
            pa = next((other for core in getattr(self.machine, "cpus", ()) if core is not self.cpu
                       if (other := core.translate_debug(ea)) is not None), None)
        if pa is None:
            raise KvmError(errno.EFAULT, f"no translation for EA {ea:#010x}")
        if pa + 4 > self.bus.ram_size:
            raise KvmError(errno.EFAULT, f"EA {ea:#010x} (PA {pa:#x}) is not RAM")
        self._soft[ea] = [pa, 1]
        self.cpu.sw_dispatch[ea] = pa
        self.cpu.patch_instruction(pa, self.debug_inst)

    def remove_sw_breakpoint(self, ea: int) -> None:
        """Drop one reference to the soft breakpoint at ``ea``; the last one restores the fetch view."""
        ea &= _M32
        entry = self._soft.get(ea)
        if entry is None:
            raise KvmError(errno.ENOENT, f"no soft breakpoint at {ea:#010x}")
        entry[1] -= 1
        if entry[1] > 0:
            return
        del self._soft[ea]
        self.cpu.sw_dispatch.pop(ea, None)
        if not any(other[0] == entry[0] for other in self._soft.values()):
            self.cpu.unpatch_instruction(entry[0])

    @property
    def sw_breakpoints(self) -> dict[int, SoftBreakpoint]:
        """EA -> (pa, original word now in RAM, reference count)."""
        ram = self.bus.ram
        return {ea: SoftBreakpoint(pa, int.from_bytes(ram[pa:pa + 4], "big"), count)
                for ea, (pa, count) in sorted(self._soft.items())}

    # ------------------------------------------------------------------------------------------
    # KVM_SET_GUEST_DEBUG
    # ------------------------------------------------------------------------------------------
    def set_guest_debug(self, data: bytes) -> None:
        """Apply a ``struct kvm_guest_debug`` (like Linux ``kvm_arch_vcpu_ioctl_set_guest_debug``).

        Errors (nothing changes on error): EINVAL for a wrong size, unknown ``control`` bits, unknown
        ``type`` bits, a zero-length or wrapping watch; ENOSPC when the breakpoints/watchpoints need
        more IACs/DACs than the model has (Linux says EINVAL there; ENOSPC lets the stub tell "full"
        from "malformed").
        """
        if len(data) != KVM_GUEST_DEBUG_SIZE:
            raise KvmError(errno.EINVAL, f"kvm_guest_debug is {KVM_GUEST_DEBUG_SIZE} bytes, got {len(data)}")
        data = bytes(data)
        if data == self._applied_guest_debug:
            # gdb re-arms the same configuration around every stop; the core already has it.
            return
        parsed_before = self._parsed_guest_debug.get(data)
        if parsed_before is None:
            control, template = self._parse_guest_debug(data)
            if len(self._parsed_guest_debug) >= 64:
                self._parsed_guest_debug.clear()
            self._parsed_guest_debug[data] = (control, template)
        else:
            # gdb alternates between a handful of configurations (step / continue, with or without
            # its points) at every stop; parsing each with construct again would dominate a continue.
            control, template = parsed_before
        config = template      # shared: neither this class nor the core ever changes a HostDebug
        try:
            self.cpu.set_host_debug(config)
        except ValueError as error:
            raise KvmError(errno.ENOSPC, str(error)) from None
        self._control = control
        self._host_debug = config
        self._applied_guest_debug = data

    def _parse_guest_debug(self, data: bytes) -> tuple[int, HostDebug]:
        """(control, configuration) of a kvm_guest_debug; KvmError(EINVAL/ENOSPC) when malformed."""
        parsed = kvm_guest_debug.parse(data)
        control = int(parsed.control)
        if control & ~GUESTDBG_KNOWN:
            raise KvmError(errno.EINVAL, f"unknown control bits {control & ~GUESTDBG_KNOWN:#x}")
        if not control & KVM_GUESTDBG_ENABLE:
            return 0, HostDebug()
        config = HostDebug(enabled=True, single_step=bool(control & KVM_GUESTDBG_SINGLESTEP),
                           sw_breakpoints=bool(control & KVM_GUESTDBG_USE_SW_BP))
        if control & KVM_GUESTDBG_USE_HW_BP:
            self._parse_hw_points(parsed.arch.bp, config)
        return control, config

    def _parse_hw_points(self, entries: Any, config: HostDebug) -> None:
        model = self.model
        dac_slots = 0
        for index, entry in enumerate(entries):
            kind = int(entry.type)
            if kind == KVMPPC_DEBUG_NONE:
                continue
            if kind & ~DEBUG_TYPE_KNOWN:
                raise KvmError(errno.EINVAL, f"bp[{index}]: unknown type bits {kind & ~DEBUG_TYPE_KNOWN:#x}")
            address = int(entry.addr) & _M32
            if kind & KVMPPC_DEBUG_BREAKPOINT:   # wins over watch bits, as in Linux
                if len(config.iac) == model.num_iac:
                    raise KvmError(errno.ENOSPC, f"more than {model.num_iac} hardware breakpoints")
                config.iac.append(address & ~3)
                continue
            length = int(entry.reserved)
            if length == 0:
                start, end = address & ~3, (address & ~3) + 4
            else:
                start, end = address, address + length
            if end > 1 << 32:
                raise KvmError(errno.EINVAL, f"bp[{index}]: watch {address:#x}+{length} wraps")
            watch = DataWatch(start, end, read=bool(kind & KVMPPC_DEBUG_WATCH_READ),
                              write=bool(kind & KVMPPC_DEBUG_WATCH_WRITE))
            dac_slots += watch.dac_slots()
            if dac_slots > model.num_dac:
                raise KvmError(errno.ENOSPC, f"watchpoints need more than {model.num_dac} DACs")
            config.dac.append(watch)

    # ------------------------------------------------------------------------------------------
    # KVM_RUN
    # ------------------------------------------------------------------------------------------
    def run(self, max_instructions: int | None = None) -> int:
        """Run the guest until an exit; fill ``kvm_run`` and return its ``exit_reason``.

        ``max_instructions`` bounds the instructions run (KVM_EXIT_INTR when used up); None runs until a
        debug event or power-off. ``kvm_run.immediate_exit`` is checked before running and between
        slices of the run, so another thread can stop it (KVM_EXIT_INTR at a clean boundary).
        """
        kvm_run = self.kvm_run
        if kvm_run[OFF_IMMEDIATE_EXIT]:
            return self._exit_intr("immediate_exit")
        machine = self.machine
        smp = getattr(machine, "smp", 1) > 1
        if smp:
            if machine.halted[self.index]:
                # Real KVM would block until the spin table releases the core.
                return self._exit_intr("halted: waiting in the spin table")
            machine.begin_turn(self.index)
            if self._reserved_granule is not None:
                self._check_reservation()
        cpu_run = self.cpu.run
        remaining = max_instructions
        while True:
            budget = _RUN_SLICE if remaining is None else min(remaining, _RUN_SLICE)
            stop = cpu_run(budget)
            if stop.kind is not StopKind.BUDGET:
                break
            if remaining is not None:
                remaining -= budget
                if remaining <= 0:
                    break
            if kvm_run[OFF_IMMEDIATE_EXIT]:
                stop = None
                break
        if smp:
            machine.end_turn(self.index)
            self._note_reservation()
        return self._exit_intr("immediate_exit") if stop is None else self._exit_for(stop)

    def next_wake_cycle(self) -> int | None:
        """When this core, waiting for an interrupt, could next be woken by a timer or a device (the
        board's cycles); None while it runs or nothing is due. A VMM running several cores in turns
        moves the board's time there when every core waits (:meth:`warp_clock`)."""
        cpu = self.cpu
        if getattr(self.machine, "halted", [False] * (self.index + 1))[self.index]:
            return None
        if not (cpu.waiting or cpu.msr & MSR_WE):
            return None
        wake: int | None = cpu.next_wake_cycle()
        return wake

    def end_round(self) -> None:
        """Every core had its turn: the board's next round of turns starts (several cores)."""
        self.machine.end_round()

    def warp_clock(self, cycle: int) -> None:
        """Every running core waits: the board's time jumps to ``cycle`` (QEMU's icount warp)."""
        self.machine.warp_to(cycle)

    def _note_reservation(self) -> None:
        """Remember the reserved granule's bytes as this core's turn ends."""
        cpu = self.cpu
        if cpu.reservation is None:
            self._reserved_granule = None
            return
        pa = cpu.translate_debug(cpu.reservation)
        line = self.model.cache_line_size
        if pa is None or pa + line > self.bus.ram_size:
            self._reserved_granule = None
            return
        base = pa & ~(line - 1)
        self._reserved_granule = (base, bytes(self.bus.ram[base:base + line]))

    def _check_reservation(self) -> None:
        """The reservation is lost if another core stored into the granule during its turns (seen as
        a change of its bytes: a store of the value already there goes unnoticed)."""
        assert self._reserved_granule is not None
        base, before = self._reserved_granule
        self._reserved_granule = None
        if bytes(self.bus.ram[base:base + len(before)]) != before:
            self.cpu.reservation = None

    def _begin_exit(self, reason: int) -> bytearray:
        kvm_run = self.kvm_run
        # KVM leaves stale union bytes; we clear them so a reader never sees a previous exit's status.
        kvm_run[OFF_EXIT_UNION:OFF_EXIT_UNION + KVM_RUN_EXIT_UNION_SIZE] = ZERO_EXIT_UNION
        PACK_U32.pack_into(kvm_run, OFF_EXIT_REASON, reason)
        kvm_run[OFF_IF_FLAG] = 1 if self.cpu.msr & MSR_EE else 0
        return kvm_run

    def _exit_intr(self, detail: str) -> int:
        self._begin_exit(KVM_EXIT_INTR)
        cpu = self.cpu
        self._last_exit = (KVM_EXIT_INTR, cpu.pc, cpu.instructions, None, None, detail)
        return KVM_EXIT_INTR

    def _exit_for(self, stop: StopReason) -> int:
        kind = stop.kind
        cpu = self.cpu
        if kind is StopKind.HOST_DEBUG:
            assert stop.event is not None
            status = _DEBUG_STATUS[stop.event]
            kvm_run = self._begin_exit(KVM_EXIT_DEBUG)
            PACK_DEBUG_ARCH.pack_into(kvm_run, OFF_DEBUG_ADDRESS, stop.address & _M32, status)
            self._last_exit = (KVM_EXIT_DEBUG, cpu.pc, cpu.instructions, stop.address & _M32, status,
                               stop.event.value)
            return KVM_EXIT_DEBUG
        if kind is StopKind.BUDGET:
            return self._exit_intr("instruction budget used up")
        if kind is StopKind.IDLE:
            # Real KVM would block in the kernel here; we report an interrupted run instead.
            return self._exit_intr(kind.value)
        if kind is StopKind.POWER_OFF or kind is StopKind.WATCHDOG_RESET or kind is StopKind.SYSTEM_RESET:
            event = KVM_SYSTEM_EVENT_SHUTDOWN if kind is StopKind.POWER_OFF else KVM_SYSTEM_EVENT_RESET
            kvm_run = self._begin_exit(KVM_EXIT_SYSTEM_EVENT)
            PACK_EVENT_HEAD.pack_into(kvm_run, OFF_SYSTEM_EVENT_TYPE, event, 1, stop.status)
            self._last_exit = (KVM_EXIT_SYSTEM_EVENT, cpu.pc, cpu.instructions, None, stop.status, kind.value)
            return KVM_EXIT_SYSTEM_EVENT
        # Checkstop and anything the core adds later: the vCPU cannot continue.
        kvm_run = self._begin_exit(KVM_EXIT_INTERNAL_ERROR)
        PACK_EVENT_HEAD.pack_into(kvm_run, OFF_INTERNAL_SUBERROR, KVM_INTERNAL_ERROR_EMULATION, 1,
                                   stop.address & _M32)
        detail = kind.value
        if kind is StopKind.CHECKSTOP:
            mcsr, mcar = cpu.read_spr(cpu_module.SPR_MCSR), cpu.read_spr(cpu_module.SPR_MCAR)
            detail += _machine_check_cause(mcsr, mcar)
        self._last_exit = (KVM_EXIT_INTERNAL_ERROR, cpu.pc, cpu.instructions, None, None, detail)
        return KVM_EXIT_INTERNAL_ERROR

    def take_unhandled_interrupt(self) -> UnhandledInterrupt | None:
        """The first interrupt since reset taken through an IVOR the guest never set, once; None
        after that (see :class:`emulator.cpu.UnhandledInterrupt`)."""
        noted = self.cpu.unhandled_interrupt
        self.cpu.unhandled_interrupt = None
        return noted

    # ------------------------------------------------------------------------------------------
    # reset and introspection
    # ------------------------------------------------------------------------------------------
    def load_image(self, path: str | None = None) -> None:
        """Load the boot files again from disk (a rebuilt file is picked up), with ``path`` in place of
        the image that runs first (the firmware given as -bios, else the kernel), and reset to the
        boot state, as :meth:`reset`. On a bad file the board raises its ImageError and the vCPU keeps
        the image it had."""
        boot = getattr(self.machine, "boot", None)
        if boot is None or (path is None and boot.kernel is None and boot.bios is None):
            raise KvmError(errno.ENOENT, "no image was loaded")
        if path is not None:
            boot = replace(boot, bios=path) if boot.bios is not None else replace(boot, kernel=path)
        self.machine.load(boot)
        self.reset()

    def reset(self) -> None:
        """Back to the boot state of the loaded image (the whole board: every core). The debugger's
        configuration (kvm_guest_debug and the soft-breakpoint table) survives, as breakpoints
        survive a QEMU system_reset; the other cores' vCPUs then call :meth:`restore_debug`."""
        self.machine.reset()
        self.restore_debug()

    def restore_debug(self) -> None:
        """Put this vCPU's debug configuration back into its core after a board reset."""
        cpu = self.cpu
        self._reserved_granule = None
        cpu.set_host_debug(self._host_debug)
        cpu.sw_dispatch.clear()
        for ea, (pa, _count) in self._soft.items():
            cpu.sw_dispatch[ea] = pa
            cpu.patch_instruction(pa, self.debug_inst)
        self.kvm_run[:] = bytes(KVM_RUN_SIZE)
        self._last_exit = None

    @property
    def last_exit(self) -> ExitInfo | None:
        """A parsed view of the latest exit (None before the first run and after reset)."""
        if self._last_exit is None:
            return None
        return ExitInfo(*self._last_exit)

    # -- the machine around the core, as a debugger's user sees it -------------------------------------

    def describe_tlb(self) -> str:
        """The valid TLB entries, one line each (``monitor info tlb``)."""
        return "".join(entry.describe() + "\n" for entry in self.mmu.entries()) \
            or "no valid TLB entries\n"

    def describe_pic(self) -> str:
        """The interrupt controller's state (``monitor info pic``)."""
        return str(self.machine.describe_pic())

    def image_path(self) -> str | None:
        """Where the loaded image was read from (None when it came from memory)."""
        path: str | None = self.machine.path
        return path

    def ram_size(self) -> int:
        """Bytes of guest RAM from physical address 0."""
        return int(self.machine.bus.ram_size)

    def describe_debug_state(self) -> str:
        """Human-readable debug state for the stub's ``monitor debug`` command."""
        model = self.model
        host = self._host_debug
        lines = [f"model {model.name}; soft-breakpoint opcode {self.debug_inst:#010x}"]
        if not host.enabled:
            lines.append("debug facility: owned by the guest (KVM_GUESTDBG_ENABLE clear)")
        else:
            flags = [name for bit, name in ((KVM_GUESTDBG_ENABLE, "ENABLE"),
                                            (KVM_GUESTDBG_SINGLESTEP, "SINGLESTEP"),
                                            (KVM_GUESTDBG_USE_SW_BP, "USE_SW_BP"),
                                            (KVM_GUESTDBG_USE_HW_BP, "USE_HW_BP")) if self._control & bit]
            lines.append(f"debug facility: owned by the debugger, control={self._control:#x} "
                         f"({'|'.join(flags)})")
        lines.append(f"IAC slots: {len(host.iac)}/{model.num_iac} in use"
                     + "".join(f"\n  iac {address:#010x}" for address in host.iac))
        dac_used = sum(watch.dac_slots() for watch in host.dac)
        lines.append(f"DAC slots: {dac_used}/{model.num_dac} in use" + "".join(
            f"\n  watch [{w.start:#010x}, {w.end_exclusive:#010x}) "
            f"{'r' if w.read else ''}{'w' if w.write else ''}" for w in host.dac))
        soft = self.sw_breakpoints
        dispatch = "on" if host.enabled and host.sw_breakpoints else "off (traps go to the guest)"
        lines.append(f"soft-breakpoint dispatch table: {len(soft)} entries, dispatch {dispatch}" + "".join(
            f"\n  {ea:#010x} -> pa {bp.pa:#x}, original {bp.original:#010x}, count {bp.count}"
            for ea, bp in soft.items()))
        lines.append(f"last exit: {self.last_exit if self.last_exit is not None else 'none'}")
        return "\n".join(lines)


def _machine_check_cause(mcsr: int, mcar: int) -> str:
    """``: bus error on a data read at PA ...`` from the MCSR bus-error bits and MCAR, or ``""``."""
    for bit, access in ((cpu_module.MCSR_BUS_IAERR, "an instruction fetch"),
                        (cpu_module.MCSR_BUS_RAERR, "a data read"),
                        (cpu_module.MCSR_BUS_WAERR, "a data write")):
        if mcsr & bit:
            return f": bus error on {access} at PA {mcar:#x} (nothing mapped there)"
    return ""

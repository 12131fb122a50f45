"""A small fake of :class:`emulator.kvm.Vcpu` for the gdbstub tests (docs/architecture.md "The vCPU").

It runs a toy instruction set over 64 KiB of RAM at address 0 so that breakpoints, single steps,
watchpoints and power-off produce the same ``kvm_run`` exits the real vCPU documents:

- ``0x60000000`` nop;  ``0x48000000 | disp`` branch (signed 24-bit byte displacement);
- ``0x90000000 | ea`` store word to ``ea`` (16 bits);  ``0x80000000 | ea`` load word from ``ea``;
- ``0x44000000`` power off with status ``r3 & 0xff``.
"""

from __future__ import annotations

import struct

from emulator.kvm import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_INTR,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
    KVM_GUESTDBG_USE_SW_BP,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    KVMPPC_DEBUG_BREAKPOINT,
    KVMPPC_DEBUG_WATCH_READ,
    KVMPPC_DEBUG_WATCH_WRITE,
    kvm_guest_debug,
)

RAM_SIZE = 0x10000
NOP = 0x60000000
POWEROFF = 0x44000000
EFAULT = 14
ENOENT = 2


class FakeKvmError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.errno = code


def branch(displacement: int) -> int:
    return 0x48000000 | (displacement & 0x00FFFFFF)


class FakeVcpu:
    def __init__(self, program: list[int] | None = None, entry: int = 0x1000, num_iac: int = 2,
                 num_dac: int = 2) -> None:
        self.entry = entry
        self.program = program if program is not None else [NOP] * 8 + [branch(-32)]
        self.num_iac = num_iac
        self.num_dac = num_dac
        self.kvm_run = bytearray(2352)
        self.guest_debug_calls: list[bytes] = []
        self.reset()

    # -- the machine around it (emulator.kvm.Vcpu's describe_tlb, describe_pic, image_path, ram_size) --

    def describe_tlb(self) -> str:
        return "TLB1[0] EA 0x00000000 -> PA 0x000000000 size 64 KiB\n"

    def describe_pic(self) -> str:
        return "no interrupt controller in the fake\n"

    def image_path(self) -> str | None:
        return None

    def ram_size(self) -> int:
        return RAM_SIZE

    # -- state -------------------------------------------------------------------------------------

    def reset(self) -> None:
        self.ram = bytearray(RAM_SIZE)
        for index, word in enumerate(self.program):
            struct.pack_into(">I", self.ram, self.entry + 4 * index, word)
        self.regs: dict[str, int] = {"pc": self.entry, "msr": 0, "r1": 0x8000}
        self.sw_table: set[int] = set()
        self.control = 0
        self.hw: list[tuple[int, int, int]] = []
        self.instructions = 0

    def snapshot(self) -> tuple[bytes, tuple[tuple[str, int], ...], frozenset[int]]:
        return bytes(self.ram), tuple(sorted(self.regs.items())), frozenset(self.sw_table)

    def get_reg(self, name: str) -> int:
        if name == "bogus":
            raise KeyError(name)
        return self.regs.get(name, 0)

    def set_reg(self, name: str, value: int) -> None:
        if name == "bogus":
            raise KeyError(name)
        self.regs[name] = value

    def describe_debug_state(self) -> str:
        return f"fake debug control={self.control:#x}"

    # -- memory ------------------------------------------------------------------------------------

    def read_memory(self, ea: int, n: int) -> bytes:
        if ea < 0 or ea + n > RAM_SIZE:
            raise FakeKvmError(EFAULT)
        return bytes(self.ram[ea:ea + n])

    def read_ram(self, ea: int, n: int) -> bytes | None:
        if ea < 0 or ea + n > RAM_SIZE:
            return None
        return bytes(self.ram[ea:ea + n])

    def write_memory(self, ea: int, data: bytes) -> None:
        if ea < 0 or ea + len(data) > RAM_SIZE:
            raise FakeKvmError(EFAULT)
        self.ram[ea:ea + len(data)] = data

    # -- debug -------------------------------------------------------------------------------------

    def insert_sw_breakpoint(self, ea: int) -> None:
        if ea < 0 or ea + 4 > RAM_SIZE:
            raise FakeKvmError(EFAULT)
        self.sw_table.add(ea)

    def remove_sw_breakpoint(self, ea: int) -> None:
        if ea not in self.sw_table:
            raise FakeKvmError(ENOENT)
        self.sw_table.discard(ea)

    def set_guest_debug(self, data: bytes) -> None:
        assert len(data) == 264
        parsed = kvm_guest_debug.parse(data)
        hw = [(bp.addr, bp.type, bp.reserved) for bp in parsed.arch.bp if bp.type]
        iacs = sum(1 for _, kind, _ in hw if kind & KVMPPC_DEBUG_BREAKPOINT)
        if iacs > self.num_iac or len(hw) - iacs > self.num_dac:
            raise FakeKvmError(22)
        self.guest_debug_calls.append(bytes(data))
        self.control = parsed.control
        self.hw = hw if parsed.control & KVM_GUESTDBG_USE_HW_BP else []

    # -- execution ---------------------------------------------------------------------------------

    def _exit(self, reason: int, address: int = 0, status: int = 0) -> int:
        struct.pack_into(">I", self.kvm_run, 8, reason)
        struct.pack_into(">QI", self.kvm_run, 32, address, status)
        return reason

    def run(self, max_instructions: int | None = None) -> int:
        enabled = self.control & KVM_GUESTDBG_ENABLE
        stepping = enabled and self.control & KVM_GUESTDBG_SINGLESTEP
        use_sw = enabled and self.control & KVM_GUESTDBG_USE_SW_BP
        budget = max_instructions if max_instructions is not None else 1 << 62
        for _ in range(budget):
            pc = self.regs["pc"]
            if use_sw and pc in self.sw_table:
                return self._exit(KVM_EXIT_DEBUG, pc, 0)
            for address, kind, _length in self.hw:
                if kind & KVMPPC_DEBUG_BREAKPOINT and address == pc:
                    return self._exit(KVM_EXIT_DEBUG, pc, KVMPPC_DEBUG_BREAKPOINT)
            if pc + 4 > RAM_SIZE:
                return self._exit(KVM_EXIT_INTR)
            word = struct.unpack_from(">I", self.ram, pc)[0]
            opcode = word & 0xFC000000
            next_pc = pc + 4
            if word == POWEROFF:
                struct.pack_into(">I", self.kvm_run, 8, KVM_EXIT_SYSTEM_EVENT)
                status = self.regs.get("r3", 0) & 0xFF
                struct.pack_into(">IIQ", self.kvm_run, 32, KVM_SYSTEM_EVENT_SHUTDOWN, 1, status)
                return KVM_EXIT_SYSTEM_EVENT
            if opcode == 0x48000000:
                displacement = word & 0x00FFFFFF
                if displacement & 0x00800000:
                    displacement -= 1 << 24
                next_pc = (pc + displacement) & 0xFFFFFFFF
            elif opcode in (0x90000000, 0x80000000):
                ea = word & 0xFFFF
                is_write = opcode == 0x90000000
                wanted = KVMPPC_DEBUG_WATCH_WRITE if is_write else KVMPPC_DEBUG_WATCH_READ
                for address, kind, length in self.hw:
                    if kind & wanted and address < ea + 4 and ea < address + length:
                        return self._exit(KVM_EXIT_DEBUG, max(ea, address), wanted)
                if is_write:
                    struct.pack_into(">I", self.ram, ea, self.regs.get("r0", 0) & 0xFFFFFFFF)
                else:
                    self.regs["r0"] = struct.unpack_from(">I", self.ram, ea)[0]
            self.regs["pc"] = next_pc
            self.instructions += 1
            if stepping:
                return self._exit(KVM_EXIT_DEBUG, next_pc, 0)
        return self._exit(KVM_EXIT_INTR)

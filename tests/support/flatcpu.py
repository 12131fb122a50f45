"""A minimal CPU exposing exactly the handler-facing surface of the contract, over flat memory.

It lets the instruction handlers of :mod:`emulator.isa` run without the real core: registers,
a big-endian bytearray as memory (addresses outside it raise a data storage interrupt), the
lwarx/stwcx. reservation and ``trap(pc)`` raising a program interrupt with ESR[PTR].
Imports: the standard library and :mod:`emulator` (isa, exceptions).
"""

from __future__ import annotations

from collections.abc import Iterable

from emulator.decoder import decode
from emulator.exceptions import ESR_PTR, ESR_ST, IVOR_ALIGNMENT, IVOR_DATA_STORAGE, IVOR_PROGRAM, Interrupt


class FlatCpu:
    """Registers plus ``memory_size`` bytes of RAM at address ``base``."""

    def __init__(self, memory_size: int = 0x10000, base: int = 0, model_name: str = "e500v2") -> None:
        self.gpr: list[int] = [0] * 32
        self.cr = 0
        self.xer = 0
        self.lr = 0
        self.ctr = 0
        self.msr = 0
        self.fpr: list[int] = [0] * 32
        self.fpscr = 0
        self.reservation: int | None = None
        self.base = base
        self.memory = bytearray(memory_size)
        self.model_name = model_name
        self.instructions = 0
        self.cycles = 0

    def _offset(self, ea: int, size: int) -> int:
        offset = ea - self.base
        if offset < 0 or offset + size > len(self.memory):
            raise Interrupt(IVOR_DATA_STORAGE, dear=ea)
        return offset

    def load8(self, ea: int) -> int:
        return self.memory[self._offset(ea, 1)]

    def load16(self, ea: int) -> int:
        offset = self._offset(ea, 2)
        return int.from_bytes(self.memory[offset:offset + 2], "big")

    def load32(self, ea: int) -> int:
        offset = self._offset(ea, 4)
        return int.from_bytes(self.memory[offset:offset + 4], "big")

    def load64(self, ea: int) -> int:
        offset = self._offset(ea, 8)
        return int.from_bytes(self.memory[offset:offset + 8], "big")

    def store8(self, ea: int, value: int) -> None:
        self.memory[self._offset(ea, 1)] = value & 0xFF

    def store16(self, ea: int, value: int) -> None:
        offset = self._offset(ea, 2)
        self.memory[offset:offset + 2] = (value & 0xFFFF).to_bytes(2, "big")

    def store32(self, ea: int, value: int) -> None:
        offset = self._offset(ea, 4)
        self.memory[offset:offset + 4] = (value & 0xFFFFFFFF).to_bytes(4, "big")

    def load_words(self, ea: int, count: int) -> list[int]:
        if ea & 3:
            raise Interrupt(IVOR_ALIGNMENT, esr=0, dear=ea)
        return [self.load32((ea + 4 * index) & 0xFFFFFFFF) for index in range(count)]

    def store_words(self, ea: int, values: list[int]) -> None:
        if ea & 3:
            raise Interrupt(IVOR_ALIGNMENT, esr=ESR_ST, dear=ea)
        for index, value in enumerate(values):
            self.store32((ea + 4 * index) & 0xFFFFFFFF, value)

    def store_zeros(self, ea: int, size: int) -> None:
        for index in range(0, size, 4):
            self.store32((ea + index) & 0xFFFFFFFF, 0)

    def store64(self, ea: int, value: int) -> None:
        offset = self._offset(ea, 8)
        self.memory[offset:offset + 8] = (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")

    def trap(self, pc: int) -> None:
        raise Interrupt(IVOR_PROGRAM, esr=ESR_PTR)

    def write_words(self, address: int, words: Iterable[int]) -> None:
        for index, word in enumerate(words):
            self.store32(address + 4 * index, word)

    def step(self, pc: int) -> int:
        """Execute the instruction at ``pc``; return the next pc (interrupts propagate)."""
        _spec, handler, cycles = decode(self.load32(pc), self.model_name)
        next_pc = handler(self, pc)
        self.instructions += 1
        self.cycles += cycles
        return next_pc

    def run(self, words: list[int], address: int = 0x1000, max_steps: int = 100_000) -> int:
        """Place ``words`` at ``address`` and execute until pc leaves them; return the final pc."""
        self.write_words(address, words)
        end = address + 4 * len(words)
        pc = address
        for _ in range(max_steps):
            if not address <= pc < end:
                return pc
            pc = self.step(pc)
        raise RuntimeError(f"no exit after {max_steps} steps (pc 0x{pc:08x})")

"""gdb agent expressions (gdbstub.agent): checking at insert time and evaluation, opcode by opcode,
against values worked out by hand; the byte strings in the gdb-compiled cases are what gdb-multiarch 13
sent for ``x == 150`` and ``counter > 180 && (counter & 1)`` (seen in a remotelogfile)."""

from __future__ import annotations

import pytest

from gdbstub import agent
from gdbstub.agent import AgentError, compile_condition, evaluate

MASK = (1 << 64) - 1


def run(code: bytes, registers: dict[int, int] | None = None, memory: dict[int, bytes] | None = None) -> int:
    registers = registers or {}
    memory = memory or {}

    def read_memory(address: int, size: int) -> bytes:
        for base, data in memory.items():
            if base <= address and address + size <= base + len(data):
                return data[address - base:address - base + size]
        raise OSError(f"no memory at {address:#x}")

    return evaluate(compile_condition(code), registers.__getitem__, read_memory)


def const(value: int) -> bytes:
    return bytes([agent.CONST64]) + value.to_bytes(8, "big")


END = bytes([agent.END])


@pytest.mark.parametrize(("opcode", "a", "b", "expected"), [
    (agent.ADD, 5, 7, 12), (agent.ADD, MASK, 2, 1), (agent.SUB, 5, 7, MASK - 1),
    (agent.MUL, 1 << 40, 1 << 30, 0), (agent.MUL, 6, 7, 42),
    (agent.DIV_SIGNED, (-7) & MASK, 2, (-3) & MASK), (agent.DIV_SIGNED, 7, (-2) & MASK, (-3) & MASK),
    (agent.REM_SIGNED, (-7) & MASK, 2, (-1) & MASK), (agent.REM_SIGNED, 7, (-2) & MASK, 1),
    (agent.DIV_UNSIGNED, (-7) & MASK, 2, ((-7) & MASK) // 2), (agent.REM_UNSIGNED, 7, 3, 1),
    (agent.LSH, 1, 63, 1 << 63), (agent.LSH, 1, 64, 0),
    (agent.RSH_SIGNED, 1 << 63, 62, (-2) & MASK), (agent.RSH_UNSIGNED, 1 << 63, 62, 2),
    (agent.BIT_AND, 0b1100, 0b1010, 0b1000), (agent.BIT_OR, 0b1100, 0b1010, 0b1110),
    (agent.BIT_XOR, 0b1100, 0b1010, 0b0110),
    (agent.EQUAL, 3, 3, 1), (agent.EQUAL, 3, 4, 0),
    (agent.LESS_SIGNED, MASK, 0, 1), (agent.LESS_UNSIGNED, MASK, 0, 0), (agent.LESS_UNSIGNED, 0, MASK, 1),
])
def test_binary_operators_on_64_bit_twos_complement(opcode: int, a: int, b: int, expected: int) -> None:
    assert run(const(a) + const(b) + bytes([opcode]) + END) == expected


def test_unary_extension_stack_and_constant_opcodes() -> None:
    assert run(bytes([agent.CONST8, 0x80, agent.EXT, 8]) + END) == MASK - 0x7F
    assert run(bytes([agent.CONST8, 0x7F, agent.EXT, 8]) + END) == 0x7F
    assert run(const(MASK) + bytes([agent.ZERO_EXT, 16]) + END) == 0xFFFF
    assert run(bytes([agent.CONST16, 0x12, 0x34, agent.LOG_NOT]) + END) == 0
    assert run(bytes([agent.CONST8, 0, agent.LOG_NOT]) + END) == 1
    assert run(bytes([agent.CONST8, 0, agent.BIT_NOT]) + END) == MASK
    assert run(bytes([agent.CONST32, 0x80, 0, 0, 1]) + END) == 0x80000001      # no sign extension
    assert run(bytes([agent.CONST8, 2, agent.CONST8, 9, agent.SWAP, agent.SUB]) + END) == 7
    assert run(bytes([agent.CONST8, 2, agent.DUP, agent.ADD]) + END) == 4
    assert run(bytes([agent.CONST8, 2, agent.CONST8, 9, agent.POP]) + END) == 2


def test_registers_memory_and_jumps() -> None:
    registers = {3: 150, 65: 0xDEADBEEF}
    memory = {0x1000: bytes.fromhex("8000000112345678") + bytes(8)}
    assert run(bytes([agent.REG, 0, 65]) + END, registers) == 0xDEADBEEF
    address = bytes([agent.CONST16, 0x10, 0x00])
    assert run(address + bytes([agent.REF8]) + END, memory=memory) == 0x80
    assert run(address + bytes([agent.REF16]) + END, memory=memory) == 0x8000
    assert run(address + bytes([agent.REF32]) + END, memory=memory) == 0x80000001
    assert run(address + bytes([agent.REF64]) + END, memory=memory) == 0x8000000112345678
    # if (r3 != 0) 5 else 6
    code = bytes([agent.REG, 0, 3, agent.IF_GOTO, 0, 9, agent.CONST8, 6, agent.END,
                  agent.CONST8, 5, agent.END])
    assert run(code, {3: 1}) == 5
    assert run(code, {3: 0}) == 6


def test_expressions_gdb_compiled() -> None:
    x_is_150 = bytes.fromhex("2600032a202300962a201327")
    assert run(x_is_150, {3: 150}) == 1
    assert run(x_is_150, {3: 151}) == 0
    assert run(x_is_150, {3: (1 << 32) + 150}) == 1      # zero_ext 32 of a 32-bit int
    odd_above_180 = bytes.fromhex(
        "2400100514192300b42a202b1520001321002924001005141922012a200f200024210029220121002b220027")
    for counter, expected in ((181, 1), (182, 0), (180, 0), (3, 0), (0xFFFFFFFF, 1)):
        memory = {0x100514: counter.to_bytes(4, "big")}
        assert run(odd_above_180, memory=memory) == expected, counter


@pytest.mark.parametrize("code", [
    b"", bytes([0x01]), bytes([0x0C]), bytes([0x2E, 0, 1]),            # empty, float, trace, tracev
    bytes([agent.CONST16, 1]),                                           # operand past the end
    bytes([agent.GOTO, 0, 2, agent.END]),                                # jump into an operand
    bytes([agent.IF_GOTO, 0, 99, agent.END]),                            # jump outside
])
def test_what_this_evaluator_cannot_run_is_refused_when_inserted(code: bytes) -> None:
    with pytest.raises(AgentError):
        compile_condition(code)


@pytest.mark.parametrize("code", [
    bytes([agent.CONST8, 1, agent.CONST8, 0, agent.DIV_SIGNED, agent.END]),
    bytes([agent.CONST8, 1, agent.CONST8, 0, agent.REM_UNSIGNED, agent.END]),
    bytes([agent.ADD, agent.END]),                                        # stack underflow
    bytes([agent.POP, agent.END]),
    bytes([agent.CONST8, 1, agent.POP, agent.END]),                       # end with an empty stack
    bytes([agent.CONST16, 0x20, 0x00, agent.REF32, agent.END]),           # unreadable memory
    bytes([agent.REG, 0, 99, agent.END]),                                 # no such register
    bytes([agent.GOTO, 0, 0]),                                            # never ends
    bytes([agent.CONST8, 1, agent.DUP, agent.GOTO, 0, 2]),                # stack grows without end
])
def test_evaluation_failures_are_agent_errors(code: bytes) -> None:
    with pytest.raises(AgentError):
        run(code, {3: 1}, {0x1000: bytes(16)})

"""gdb agent expressions: the bytecode gdb sends with ``Z0``/``Z1`` to have a breakpoint condition
evaluated in the stub (``ConditionalBreakpoints``), so a false condition costs no round trip to gdb.

:func:`compile_condition` checks a bytecode string once, when the breakpoint is inserted (every opcode
known, every operand and jump inside the string); :func:`evaluate` runs it against a register reader
and a memory reader at each hit. Values are 64-bit two's complement, as in gdb's own agent. Anything
the expression cannot do (an unknown or tracing opcode, a memory fault, division by zero, a stack
underflow, a runaway loop) raises :class:`AgentError`, and the caller then reports the stop to gdb, which
judges the condition itself: an error never hides a stop.

Imports: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_MASK = (1 << 64) - 1
_SIGN = 1 << 63
# A condition that runs this many bytecodes without reaching `end` is treated as failing.
MAX_STEPS = 10_000
MAX_STACK = 1024

# Opcode numbers of gdb's agent expression bytecodes (gdb manual, "Bytecode Descriptions").
ADD, SUB, MUL = 0x02, 0x03, 0x04
DIV_SIGNED, DIV_UNSIGNED, REM_SIGNED, REM_UNSIGNED = 0x05, 0x06, 0x07, 0x08
LSH, RSH_SIGNED, RSH_UNSIGNED = 0x09, 0x0A, 0x0B
LOG_NOT, BIT_AND, BIT_OR, BIT_XOR, BIT_NOT = 0x0E, 0x0F, 0x10, 0x11, 0x12
EQUAL, LESS_SIGNED, LESS_UNSIGNED = 0x13, 0x14, 0x15
EXT, ZERO_EXT = 0x16, 0x2A
REF8, REF16, REF32, REF64 = 0x17, 0x18, 0x19, 0x1A
IF_GOTO, GOTO = 0x20, 0x21
CONST8, CONST16, CONST32, CONST64 = 0x22, 0x23, 0x24, 0x25
REG, END, DUP, POP, SWAP = 0x26, 0x27, 0x28, 0x29, 0x2B

# Bytes of inline operand after each opcode this evaluator runs.
_OPERAND_BYTES: dict[int, int] = {
    ADD: 0, SUB: 0, MUL: 0, DIV_SIGNED: 0, DIV_UNSIGNED: 0, REM_SIGNED: 0, REM_UNSIGNED: 0,
    LSH: 0, RSH_SIGNED: 0, RSH_UNSIGNED: 0, LOG_NOT: 0, BIT_AND: 0, BIT_OR: 0, BIT_XOR: 0, BIT_NOT: 0,
    EQUAL: 0, LESS_SIGNED: 0, LESS_UNSIGNED: 0, EXT: 1, ZERO_EXT: 1,
    REF8: 0, REF16: 0, REF32: 0, REF64: 0, IF_GOTO: 2, GOTO: 2,
    CONST8: 1, CONST16: 2, CONST32: 4, CONST64: 8, REG: 2, END: 0, DUP: 0, POP: 0, SWAP: 0,
}
_REF_SIZES = {REF8: 1, REF16: 2, REF32: 4, REF64: 8}


class AgentError(Exception):
    """The expression cannot be evaluated here; the breakpoint must be reported as hit."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A checked bytecode string."""

    code: bytes


def compile_condition(code: bytes) -> Condition:
    """Check ``code`` (the decoded bytes of one ``X len,expr`` item); AgentError if gdb sent something
    this evaluator does not run, so the breakpoint falls back to stopping every time."""
    if not code:
        raise AgentError("empty expression")
    starts = set()
    position = 0
    while position < len(code):
        opcode = code[position]
        operand = _OPERAND_BYTES.get(opcode)
        if operand is None:
            raise AgentError(f"opcode {opcode:#04x} at {position} is not supported")
        starts.add(position)
        position += 1 + operand
    if position != len(code):
        raise AgentError("the last opcode's operand runs past the end")
    for start in starts:
        if code[start] in (IF_GOTO, GOTO):
            target = int.from_bytes(code[start + 1:start + 3], "big")
            if target not in starts:
                raise AgentError(f"jump at {start} to {target}, not an opcode")
    return Condition(code)


def _signed(value: int) -> int:
    return value - (1 << 64) if value & _SIGN else value


def evaluate(condition: Condition, read_register: Callable[[int], int],
             read_memory: Callable[[int, int], bytes]) -> int:
    """The value left on top of the stack at ``end`` (nonzero: the condition holds).

    ``read_register(regnum)`` and ``read_memory(address, size)`` may raise anything; it becomes an
    AgentError.
    """
    code = condition.code
    stack: list[int] = []
    push = stack.append
    pop = stack.pop
    position = 0
    try:
        for _ in range(MAX_STEPS):
            opcode = code[position]
            position += 1
            if opcode == CONST8:
                push(code[position])
                position += 1
            elif opcode in (CONST16, CONST32, CONST64):
                size = _OPERAND_BYTES[opcode]
                push(int.from_bytes(code[position:position + size], "big"))
                position += size
            elif opcode == REG:
                push(read_register(int.from_bytes(code[position:position + 2], "big")) & _MASK)
                position += 2
            elif opcode in _REF_SIZES:
                size = _REF_SIZES[opcode]
                data = read_memory(pop() & 0xFFFFFFFF, size)
                if len(data) != size:
                    raise AgentError("short memory read")
                push(int.from_bytes(data, "big"))
            elif opcode in (EXT, ZERO_EXT):
                bits = code[position]
                position += 1
                if 0 < bits < 64:
                    value = pop() & ((1 << bits) - 1)
                    if opcode == EXT and value >> (bits - 1):
                        value -= 1 << bits
                    push(value & _MASK)
            elif opcode == END:
                if not stack:
                    raise AgentError("end with an empty stack")
                return stack[-1]
            elif opcode == IF_GOTO:
                target = int.from_bytes(code[position:position + 2], "big")
                position = target if pop() else position + 2
            elif opcode == GOTO:
                position = int.from_bytes(code[position:position + 2], "big")
            elif opcode == LOG_NOT:
                push(0 if pop() else 1)
            elif opcode == BIT_NOT:
                push(~pop() & _MASK)
            elif opcode == DUP:
                push(stack[-1])
            elif opcode == POP:
                pop()
            elif opcode == SWAP:
                stack[-1], stack[-2] = stack[-2], stack[-1]
            else:
                b = pop()
                a = pop()
                push(_binary(opcode, a, b) & _MASK)
            if len(stack) > MAX_STACK:
                raise AgentError("stack overflow")
    except AgentError:
        raise
    except (IndexError, ZeroDivisionError) as error:
        raise AgentError(f"expression failed: {error}") from error
    except Exception as error:
        raise AgentError(f"cannot read target state: {error}") from error
    raise AgentError(f"no end after {MAX_STEPS} bytecodes")


def _binary(opcode: int, a: int, b: int) -> int:
    if opcode == ADD:
        return a + b
    if opcode == SUB:
        return a - b
    if opcode == MUL:
        return a * b
    if opcode == EQUAL:
        return int(a == b)
    if opcode == LESS_SIGNED:
        return int(_signed(a) < _signed(b))
    if opcode == LESS_UNSIGNED:
        return int(a < b)
    if opcode == BIT_AND:
        return a & b
    if opcode == BIT_OR:
        return a | b
    if opcode == BIT_XOR:
        return a ^ b
    if opcode == LSH:
        return a << b if b < 64 else 0
    if opcode == RSH_UNSIGNED:
        return a >> b if b < 64 else 0
    if opcode == RSH_SIGNED:
        return _signed(a) >> min(b, 63)
    if opcode == DIV_UNSIGNED:
        return a // b
    if opcode == REM_UNSIGNED:
        return a % b
    sa, sb = _signed(a), _signed(b)
    if opcode == DIV_SIGNED:
        quotient = abs(sa) // abs(sb)     # C truncates toward zero
        return quotient if (sa < 0) == (sb < 0) else -quotient
    if opcode == REM_SIGNED:
        remainder = abs(sa) % abs(sb)
        return remainder if sa >= 0 else -remainder
    raise AgentError(f"opcode {opcode:#04x} is not an operator")

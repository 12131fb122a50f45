"""Block translator: straight-line runs of guest instructions compiled into one Python function.

A block starts at an effective address and runs through consecutive instructions until the first
control transfer (an instruction whose template returns), a page boundary, an IAC-watched address
or :data:`MAX_BLOCK_INSTRUCTIONS`. Each instruction contributes the source lines of its spec's
``emit`` template (:mod:`emulator.isa`); an instruction without a template calls its decoded handler.
The semantics therefore stay defined once, in the instruction table; this module adds only the
mechanics that keep a block exactly equivalent to single-stepping:

* loads/stores take the RAM page-cache fast path inline; on a miss the block calls the instruction's
  own handler (the precise slow path: MMU, DAC watches, devices, code invalidation);
* before any call that may fault or read the cycle counter, ``cpu.cycles`` and ``cpu._fault_index``
  say which instruction is running, so the core can make the fault precise;
* after such a call, if the handler changed control flow or the event state (``cpu._event_at``
  lowered: timer write, MSR change, power-off, interrupt line, self-modifying store), the block
  leaves at once, recording in ``cpu._partial`` how many of its instructions completed.

The caller (:meth:`emulator.cpu.Cpu._run_fast`) only enters a block when its whole cycle cost ends
before the next timer event and its length fits the instruction budget.

Imports: the standard library and :mod:`emulator.isa` (never ``gdbstub`` or ``trio``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any, NamedTuple

from emulator.isa import lookup

MAX_BLOCK_INSTRUCTIONS = 48
PAGE_MASK = 0xFFF
_M32 = 0xFFFFFFFF

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# The user registers a block keeps in locals: loaded at entry, written back before every exit and
# every handler call (reloaded after it), so handlers and faults always see the architectural values.
_LOCAL_REGISTERS = ("cr", "xer", "lr", "ctr")
_REGISTER_USE = re.compile(r"\bcpu\.(cr|xer|lr|ctr)\b")
_GPR_USE = re.compile(r"\bgpr\[(\d+)\]")
_SYNC_OUT = "#sync-out"
_SYNC_IN = "#sync-in"

# size in bytes and the largest in-page offset the inline fast path may use
_MACROS = {"LOAD8": (1, True), "LOAD16": (2, True), "LOAD32": (4, True),
           "STORE8": (1, False), "STORE16": (2, False), "STORE32": (4, False)}


class Instruction(NamedTuple):
    """One decoded instruction of a block, as the translator receives it from the core."""

    pc: int
    word: int
    handler: Callable[..., int]   # the core's decoded handler (isa.Handler over the concrete Cpu)
    cycles: int


class Block(NamedTuple):
    """A translated block: ``run(gpr, cycles[, allowed]) -> next pc`` and what one pass costs.

    A block whose last instruction branches back to its own start (``loops``) runs up to ``allowed``
    passes in one call and leaves the number of completed passes in ``cpu._loops``.
    """

    run: Callable[..., int] | None   # None: no block here, execute one decoded instruction
    size: int                        # instructions in one pass
    cycles: int
    loops: bool
    start: int
    cycle_offsets: tuple[int, ...]   # cycles before instruction i (for precise faults)
    instruction_cycles: tuple[int, ...]


NO_BLOCK = Block(None, 1, 0, False, 0, (0,), (0,))


def template_for(instruction: Instruction, model_name: str) -> list[str] | None:
    """The spec's source lines for this instruction, or None when the block must call the handler."""
    spec = lookup(instruction.word)
    if spec is None or spec.emit is None or not spec.available_on(model_name) or spec.privileged:
        return None
    return spec.emit(instruction.word, instruction.pc)


def ends_block(lines: Sequence[str] | None) -> bool:
    return lines is not None and any(line.lstrip().startswith("return") for line in lines)


def falls_through(instruction: Instruction, lines: Sequence[str] | None) -> bool:
    """True for a conditional branch: the block may go on along its not-taken path (a side exit)."""
    return lines is not None and len(lines) > 1 and lines[-1] == f"return {(instruction.pc + 4) & _M32}"


def branches_back(lines: Sequence[str], start: int, end: int) -> bool:
    """True when a branch's constant target lies in [start, end): a loop, best ended here so that the
    loop head starts its own (self-looping) block."""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("return ") and stripped[7:].isdigit() and start <= int(stripped[7:]) < end:
            return True
    return False


def _side_exit(index: int, lines: list[str]) -> list[str]:
    """A conditional branch inside a block: its taken path leaves, reporting ``index + 1`` done."""
    result = []
    for line in lines[:-1]:
        stripped = line.lstrip()
        if stripped.startswith("return"):
            indent = line[:len(line) - len(stripped)]
            result.append(f"{indent}cpu._partial = {index + 1}")
        result.append(line)
    return result


def _slow_call(index: int, instruction: Instruction, cycles_before: int, indent: str) -> list[str]:
    """Call the handler as the single-step path would, then leave if anything changed."""
    fall_through = (instruction.pc + 4) & _M32
    cycles_after = cycles_before + instruction.cycles
    return [
        f"{indent}cpu.cycles = cycles + {cycles_before}",
        f"{indent}cpu._fault_index = {index}",
        f"{indent}{_SYNC_OUT}",
        f"{indent}n = h{index}(cpu, {instruction.pc})",
        f"{indent}{_SYNC_IN}",
        f"{indent}if n != {fall_through} or cpu._event_at <= cycles + {cycles_after}:",
        f"{indent}    cpu._partial = {index + 1}",
        f"{indent}    cpu._event_at = 0",
        f"{indent}    return n & {_M32}",
    ]


def _memory_lines(macro: str, argument: str, suffix: list[str], index: int, instruction: Instruction,
                  cycles_before: int) -> list[str]:
    size, is_load = _MACROS[macro]
    pages = "rp" if is_load else "wp"
    lines = [f"b = {pages}(ea >> 12)"]
    check = "b is not None" if size == 1 else f"b is not None and ea & {PAGE_MASK} <= {0x1000 - size}"
    lines.append(f"if {check}:")
    offset = f"b | (ea & {PAGE_MASK})"
    if is_load:
        fetch = {1: f"ram[{offset}]", 2: f"u16(ram, {offset})[0]", 4: f"u32(ram, {offset})[0]"}[size]
        lines.append(f"    v = {fetch}")
        lines += ["    " + line for line in suffix]
        lines.append("else:")
        lines += _slow_call(index, instruction, cycles_before, "    ")
        return lines
    value = argument.split(",", 1)[1].strip()
    store = {1: f"ram[{offset}] = {value}", 2: f"p16(ram, {offset}, {value})",
             4: f"p32(ram, {offset}, {value})"}[size]
    lines.append(f"    {store}")
    lines += ["    " + line for line in suffix]
    # A page that also holds code: straight to RAM when the (aligned) word is not decoded code.
    lines.append("else:")
    lines.append("    b = cwp(ea >> 12)")
    aligned = f" and not ea & {size - 1}" if size > 1 else ""
    lines.append(f"    if b is not None{aligned} and (b | (ea & 4092)) not in code:")
    lines.append(f"        {store}")
    lines += ["        " + line for line in suffix]
    lines.append("    else:")
    lines += _slow_call(index, instruction, cycles_before, "        ")
    return lines


def _instruction_lines(index: int, instruction: Instruction, template: list[str] | None,
                       cycles_before: int, last: bool) -> list[str]:
    if template is None:
        return _slow_call(index, instruction, cycles_before, "")
    if not last and ends_block(template):
        return _side_exit(index, template)
    for position, line in enumerate(template):
        head = line.split("(", 1)[0].replace("v = ", "").strip()
        if head in _MACROS:
            argument = line[line.index("(") + 1:line.rindex(")")]
            return template[:position] + _memory_lines(head, argument, template[position + 1:], index,
                                                       instruction, cycles_before)
    return list(template)


def _loop_to_start(body: list[str], start: int, pass_cycles: int) -> list[str]:
    """Turn the branch back to the block's start into a loop bounded by ``allowed`` passes."""
    result = ["k = 0", "while True:"]
    side_exit = False
    for line in body:
        stripped = line.lstrip()
        indent = "    " + line[:len(line) - len(stripped)]
        if side_exit:   # a side exit leaves mid-pass: k passes are complete
            result += [f"{indent}cpu._loops = k", f"{indent}{stripped}"]
        elif stripped == f"return {start}":
            result += [f"{indent}k += 1", f"{indent}if k < allowed:", f"{indent}    cycles += {pass_cycles}",
                       f"{indent}    continue", f"{indent}cpu._loops = k", f"{indent}{stripped}"]
        elif stripped == _SYNC_OUT:   # a handler may fault or leave early: k passes are complete
            result += [f"{indent}cpu._loops = k", f"{indent}{stripped}"]
        elif stripped.startswith("return") and not stripped.startswith("return n &"):
            result += [f"{indent}cpu._loops = k + 1", f"{indent}{stripped}"]   # this pass completed
        else:
            result.append(f"{indent}{stripped}")
        side_exit = stripped.startswith("cpu._partial = ")
    return result


def _keep_registers_local(body: list[str], loops: bool) -> list[str]:
    """Keep CR/XER/LR/CTR and the often-used GPRs in locals, synchronised at exits and handler calls.

    ``cpu.cr`` (etc.) become ``cr``; ``gpr[N]`` used at least twice (looping blocks) or three times
    becomes ``gN``. Locals are loaded at entry, written back (when the block writes them) before
    every return and every handler call, and reloaded after each handler call.
    """
    body = [_REGISTER_USE.sub(r"\1", line) for line in body]
    code = [line for line in body if not line.lstrip().startswith("#")]
    names = [name for name in _LOCAL_REGISTERS if any(re.search(rf"\b{name}\b", line) for line in code)]
    uses: dict[str, int] = {}
    for line in code:
        for number in _GPR_USE.findall(line):
            uses[number] = uses.get(number, 0) + 1
    threshold = 2 if loops else 3
    cached = sorted((number for number, count in uses.items() if count >= threshold), key=int)
    if cached:
        pattern = re.compile(r"\bgpr\[(" + "|".join(cached) + r")\]")
        body = [pattern.sub(r"g\1", line) for line in body]
    sources = {name: f"cpu.{name}" for name in names}
    sources.update({f"g{number}": f"gpr[{number}]" for number in cached})
    written = [name for name in sources
               if any(re.search(rf"(?<![\w.=!<>]){name} = (?!=)", line) for line in body)]
    result = [f"{name} = {source}" for name, source in sources.items()]
    for line in body:
        stripped = line.lstrip()
        indent = line[:len(line) - len(stripped)]
        if stripped == _SYNC_OUT:
            result += [f"{indent}{sources[name]} = {name}" for name in written]
        elif stripped == _SYNC_IN:
            result += [f"{indent}{name} = {source}" for name, source in sources.items()]
        else:
            if stripped.startswith("return"):
                result += [f"{indent}{sources[name]} = {name}" for name in written]
            result.append(line)
    return result


def compile_block(instructions: Sequence[Instruction], templates: Sequence[list[str] | None],
                  cpu: Any, read_pages: dict[int, int], write_pages: dict[int, int],
                  code_write_pages: dict[int, int], code_index: dict[int, Any], ram: bytearray) -> Block:
    """Generate, compile and bind the function for ``instructions`` (templates from :func:`template_for`).

    The code object depends only on the instructions' addresses, words, cycles and templates, so it is
    memoised: a debugger that removes and re-inserts a breakpoint at every stop (gdb does) gets the
    same block back without generating and compiling it again.
    """
    key = (tuple((i.pc, i.word, i.cycles) for i in instructions),
           tuple(None if t is None else tuple(t) for t in templates))
    compiled = _compiled_blocks.get(key)
    if compiled is None:
        compiled = _generate(instructions, templates)
        if len(_compiled_blocks) >= _COMPILED_BLOCKS_MAX:
            _compiled_blocks.clear()
        _compiled_blocks[key] = compiled
    code, cycles_before, loops, start, offsets = compiled
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    run = namespace["bind"](cpu, read_pages.get, write_pages.get, code_write_pages.get, code_index, ram,
                            _U16.unpack_from, _U32.unpack_from,
                            _U16.pack_into, _U32.pack_into, *(i.handler for i in instructions))
    return Block(run, len(instructions), cycles_before, loops, start, offsets,
                 tuple(i.cycles for i in instructions))


_COMPILED_BLOCKS_MAX = 8192
_CompiledBlock = tuple[CodeType, int, bool, int, tuple[int, ...]]
_compiled_blocks: dict[tuple[Any, ...], _CompiledBlock] = {}


def _generate(instructions: Sequence[Instruction], templates: Sequence[list[str] | None]) -> _CompiledBlock:
    """Python source for one block, compiled: (code, cycles of one pass, loops, start, offsets)."""
    body: list[str] = []
    offsets: list[int] = []
    cycles_before = 0
    for index, (instruction, template) in enumerate(zip(instructions, templates, strict=True)):
        offsets.append(cycles_before)
        body.append(f"# {instruction.pc:#010x}: {instruction.word:#010x}")
        is_last = index == len(instructions) - 1
        body += _instruction_lines(index, instruction, template, cycles_before, is_last)
        cycles_before += instruction.cycles
    last = instructions[-1]
    if not ends_block(templates[-1]):
        body.append(f"return {(last.pc + 4) & _M32}")
    start = instructions[0].pc
    loops = f"return {start}" in (line.strip() for line in body)
    if loops:
        body = _loop_to_start(body, start, cycles_before)
    body = _keep_registers_local(body, loops)
    handler_names = [f"h{index}" for index in range(len(instructions))]
    source = "\n".join([
        f"def bind(cpu, rp, wp, cwp, code, ram, u16, u32, p16, p32, {', '.join(handler_names)}):",
        "    def block(gpr, cycles, allowed):" if loops else "    def block(gpr, cycles):",
        *("        " + line for line in body),
        "    return block",
    ])
    code = compile(source, f"<block {instructions[0].pc:#010x}>", "exec")
    return code, cycles_before, loops, start, tuple(offsets)

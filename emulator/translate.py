"""Block translator: guest code compiled into Python functions, one per region.

A *superblock* starts at an effective address and runs through consecutive instructions until the
first unconditional control transfer (a conditional branch is a side exit and the run goes on along
its not-taken path, unless it branches back into the run), a page boundary, an IAC-watched address or
:data:`MAX_BLOCK_INSTRUCTIONS`. A *region* is the superblock at an entry address plus the superblocks
of the same page that lie on a loop back to it; it compiles to one function in which a superblock
exit to another superblock of the region is a jump (``label``), so a loop nest runs without returning
to the dispatcher. Each instruction contributes the source lines of its spec's ``emit`` template
(:mod:`emulator.isa`: for the integer ISA derived from the same :class:`~emulator.isa.Semantics` as
its decoded handler); an instruction without a template calls its decoded handler. The semantics
therefore stay defined once, in the instruction table; this module adds only the mechanics that keep
a region exactly equivalent to single-stepping:

* the dispatcher enters a region only when all of its first superblock ends before the next event
  cycle and fits the instruction budget; a jump inside the region makes the same check for the
  superblock it goes to, and otherwise leaves;
* loads/stores take the RAM page-cache fast path inline; on a miss the region runs the instruction's
  own handler (the precise slow path: MMU, DAC watches, devices, code invalidation) and leaves;
* before any handler call, ``cpu.cycles`` and ``cpu._fault`` say which instruction is running and how
  much of the region completed, so the core can make a fault precise;
* after a handler call, if the handler changed control flow or the event state (``cpu._event_at``
  lowered: timer write, MSR change, power-off, interrupt line, self-modifying store), the region
  leaves at once;
* the region returns (next pc, instructions completed, cycle count), which the dispatcher adopts.

Imports: the standard library, :mod:`emulator.fields`, :mod:`emulator.decoder` and
:mod:`emulator.region_store` (never ``gdbstub`` or ``trio``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from functools import partial
from types import CodeType
from typing import Any, NamedTuple

from emulator import fields
from emulator.decoder import lookup
from emulator.region_store import shared_store

MAX_BLOCK_INSTRUCTIONS = 48
PAGE_MASK = 0xFFF
_M32 = 0xFFFFFFFF

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_WORDS = [struct.Struct(f">{count}I") for count in range(33)]   # lmw/stmw: 1 to 32 words at once
_WORD_UNPACKS = tuple(words.unpack_from for words in _WORDS)
_WORD_PACKS = tuple(words.pack_into for words in _WORDS)

# The user registers a block keeps in locals: loaded at entry, written back before every exit and
# every handler call (reloaded after it), so handlers and faults always see the architectural values.
_LOCAL_REGISTERS = ("cr", "xer", "lr", "ctr")
_REGISTER_USE = re.compile(r"cpu\.(cr|xer|lr|ctr)\b")   # no name in a template ends in "cpu" or "gpr"
_GPR_USE = re.compile(r"gpr\[(\d+)\]")
_NOW_USE = re.compile(r"\bnow\b")   # a template's name for the cycle count at its instruction
_SYNC_OUT = "#sync-out"
_SYNC_IN = "#sync-in"
_EXIT = "#exit"

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
    """A translated region: ``run(gpr, cycles, event_at, budget) -> (next pc, instructions, cycles)``.

    A region is one or more superblocks (straight runs with side exits) of one page, linked where one
    exits to another's start: the function goes on into the next superblock by itself while that
    whole superblock ends before ``event_at`` and fits the instruction ``budget``, so loops run
    without returning to the dispatcher. ``size`` and ``cycles`` are those of the first superblock,
    which the dispatcher checks before calling. When a handler raises, ``cpu.cycles`` holds the cycle
    count at its start and ``cpu._fault`` says where: (pc, instructions completed before it in this
    call, its cycles).
    """

    run: Callable[..., tuple[int, int, int]] | None   # None: no block here, execute one decoded instruction
    size: int
    cycles: int
    start: int


# No block may start here: one instruction runs on the decoded path. Its cycles lie beyond the next
# event boundary (emulator.cpu_run._EVENT_HORIZON), so the dispatcher's one test of whether a block
# fits sends it there.
NO_BLOCK = Block(None, 1, 1 << 62, 0)
MAX_REGION_BLOCKS = 16
MAX_REGION_INSTRUCTIONS = 384


def template_for(instruction: Instruction, model_name: str) -> list[str] | None:
    """The spec's source lines for this instruction, or None when the block must call the handler.

    Memoised by word, address and model: superblocks that start at different addresses of the same
    code read the same instructions (a few times each in a kernel boot). The lists are shared, so
    nothing may change them in place.
    """
    key = (instruction.word, instruction.pc, model_name)
    try:
        return _templates[key]
    except KeyError:
        pass
    spec = lookup(instruction.word)
    lines = None
    if spec is not None and spec.emit is not None and spec.available_on(model_name) and not spec.privileged:
        lines = spec.emit(instruction.word, instruction.pc)
    if len(_templates) >= _TEMPLATES_MAX:
        _templates.clear()
    _templates[key] = lines
    return lines


_TEMPLATES_MAX = 1 << 18
_templates: dict[tuple[int, int, str], list[str] | None] = {}


def ends_block(lines: Sequence[str] | None) -> bool:
    """True for a template with a ``return``: a branch, whose last line is always one (the templates'
    shape, checked for every spec in tests/test_block_templates.py), so only that line is looked at."""
    return lines is not None and len(lines) > 0 and lines[-1].startswith("return")


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


def _exit_marker(target: str, count: int, cycles: int) -> str:
    """Leave the superblock for ``target`` with ``count`` instructions of it done (see _link_exits)."""
    return f"{_EXIT} {target} {count} {cycles}"


def _exits(lines: list[str], count: int, cycles: int) -> list[str]:
    """A branch template with each ``return X`` turned into an exit marker."""
    result = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("return "):
            indent = line[:len(line) - len(stripped)]
            result.append(indent + _exit_marker(stripped[7:], count, cycles))
        else:
            result.append(line)
    return result


def _fault_lines(indent: str, index: int, instruction: Instruction, cycles_before: int) -> list[str]:
    return [f"{indent}cpu.cycles = cycles + {cycles_before}",
            f"{indent}cpu._fault = ({instruction.pc}, count + {index}, {instruction.cycles})"]


def _slow_call(handler: str, index: int, instruction: Instruction, cycles_before: int,
               indent: str) -> list[str]:
    """Call the handler as the single-step path would, then leave if anything changed."""
    fall_through = (instruction.pc + 4) & _M32
    cycles_after = cycles_before + instruction.cycles
    return [
        *_fault_lines(indent, index, instruction, cycles_before),
        f"{indent}{_SYNC_OUT}",
        f"{indent}n = {handler}(cpu, {instruction.pc})",
        f"{indent}{_SYNC_IN}",
        f"{indent}if n != {fall_through} or cpu._event_at <= cycles + {cycles_after}:",
        f"{indent}    cpu._event_at = 0",
        f"{indent}    return n & {_M32}, count + {index + 1}, cycles + {cycles_after}",
    ]


def _miss_exit(handler: str, index: int, instruction: Instruction, cycles_before: int,
               indent: str) -> list[str]:
    """A load/store off the inline fast path: leave through the epilogue, which runs the handler (the
    precise slow path) once the locals are written back.

    Misses are rare (device registers, watched or code pages, a page not yet cached), so the block
    does not go on after one: it lets the dispatcher re-check events and find the next block.
    """
    return [f"{indent}f = ({handler}, {instruction.pc}, {index}, {cycles_before}, {instruction.cycles})",
            f"{indent}break"]


# The region's one way out: locals written back, then a pending miss (see _miss_exit) or the exit ``t``.
_EPILOGUE = [
    _SYNC_OUT,
    "if f is not None:",
    "    h, p, i, c, d = f",
    "    cpu.cycles = cycles + c",
    "    cpu._fault = (p, count + i, d)",
    "    n = h(cpu, p)",
    "    cpu._event_at = 0",
    f"    return n & {_M32}, count + i + 1, cycles + c + d",
    "return t, count, cycles",
]


def _memory_lines(macro: str, argument: str, suffix: list[str], handler: str, index: int,
                  instruction: Instruction, cycles_before: int) -> list[str]:
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
        lines += _miss_exit(handler, index, instruction, cycles_before, "    ")
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
    lines += _miss_exit(handler, index, instruction, cycles_before, "        ")
    return lines


_WORD_MACROS = ("LOADWORDS", "STOREWORDS")
_WHOLE_REGISTERS = re.compile(r"gpr\[(\d+):\]")


def _words_lines(is_load: bool, argument: str, suffix: list[str], handler: str, index: int,
                 instruction: Instruction, cycles_before: int) -> list[str]:
    """lmw/stmw inline: all the words as one unpack or pack where they lie on one cached page and EA
    is word aligned; anywhere else (a page not cached, watched or holding code, the end of a page,
    an unaligned EA) the handler, whose word-by-word path is the precise one.

    The registers are named one by one (``gpr[F:]`` becomes ``gpr[F], ..., gpr[31]``), so that the
    registers a block keeps in locals are read and written as such."""
    if is_load:
        count = int(argument.split(",", 1)[1])
        first = 32 - count
    else:
        match = _WHOLE_REGISTERS.search(argument)
        assert match is not None, argument
        first = int(match[1])
        count = 32 - first
    names = [f"gpr[{register}]" for register in range(first, 32)]
    offset = f"b | (ea & {PAGE_MASK})"
    lines = [f"b = {'rp' if is_load else 'wp'}(ea >> 12)",
             f"if b is not None and not ea & 3 and ea & {PAGE_MASK} <= {0x1000 - 4 * count}:"]
    if is_load:
        lines.append(f"    v = uw[{count}](ram, {offset})")
        for line in suffix:
            if _WHOLE_REGISTERS.match(line.strip()):
                lines += [f"    {name} = v[{number}]" for number, name in enumerate(names)]
            else:
                lines.append("    " + line)
    else:
        lines.append(f"    pw[{count}](ram, {offset}, {', '.join(names)})")
        lines += ["    " + line for line in suffix]
    lines.append("else:")
    lines += _miss_exit(handler, index, instruction, cycles_before, "    ")
    return lines


def _zeros_lines(argument: str, suffix: list[str], handler: str, index: int, instruction: Instruction,
                 cycles_before: int) -> list[str]:
    """dcbz inline: ``ZEROS(ea, size)`` with ea aligned to size (a cache line, which never crosses a
    page) as one slice on a cached writable page; a page not cached, watched or holding code: the
    handler."""
    size = argument.split(",", 1)[1].strip()
    return ["b = wp(ea >> 12)",
            "if b is not None:",
            f"    o = b | (ea & {PAGE_MASK})",
            f"    ram[o:o + {size}] = bytes({size})",
            *("    " + line for line in suffix),
            "else:",
            *_miss_exit(handler, index, instruction, cycles_before, "    ")]


def _instruction_lines(handler: str, index: int, instruction: Instruction, template: list[str] | None,
                       cycles_before: int, last: bool) -> list[str]:
    if template is None:
        return _slow_call(handler, index, instruction, cycles_before, "")
    if any(_NOW_USE.search(line) for line in template):
        # A template that reads the clock (time base) sees the cycle count at its own start.
        template = [f"now = cycles + {cycles_before}", *template]
    if ends_block(template):
        # Inside a superblock only a conditional branch may exit: its taken path leaves, the
        # not-taken path (the template's last line) goes on.
        return _exits(template if last else template[:-1], index + 1, cycles_before + instruction.cycles)
    for position, line in enumerate(template):
        head = line.split("(", 1)[0].replace("v = ", "").strip()
        if head == "ZEROS":
            argument = line[line.index("(") + 1:line.rindex(")")]
            return template[:position] + _zeros_lines(argument, template[position + 1:], handler, index,
                                                      instruction, cycles_before)
        if head in _WORD_MACROS:
            argument = line[line.index("(") + 1:line.rindex(")")]
            return template[:position] + _words_lines(head == "LOADWORDS", argument, template[position + 1:],
                                                      handler, index, instruction, cycles_before)
        if head in _MACROS:
            argument = line[line.index("(") + 1:line.rindex(")")]
            return template[:position] + _memory_lines(head, argument, template[position + 1:], handler,
                                                       index, instruction, cycles_before)
    return list(template)


def _link_exits(body: list[str], sizes: dict[int, tuple[int, int]]) -> tuple[list[str], bool]:
    """Exit markers become a jump to the start of a superblock of this region (``sizes``: its
    instructions and cycles) when all of it fits, else a ``break`` to the region's one epilogue,
    which writes the locals back and returns ``t``. Returns (lines, any jump made)."""
    result = []
    jumps = False
    for line in body:
        stripped = line.lstrip()
        if not stripped.startswith(_EXIT):
            result.append(line)
            continue
        indent = line[:len(line) - len(stripped)]
        target, count, cycles = stripped[len(_EXIT) + 1:].rsplit(" ", 2)
        if target.isdigit() and int(target) in sizes:
            size, cost = sizes[int(target)]
            jumps = True
            result += [f"{indent}count += {count}", f"{indent}cycles += {cycles}",
                       f"{indent}if cycles + {cost} < event_at and count + {size} <= budget:",
                       f"{indent}    label = {target}", f"{indent}    continue",
                       f"{indent}t = {target}", f"{indent}break"]
        else:
            result += [f"{indent}t = {target}", f"{indent}count += {count}", f"{indent}cycles += {cycles}",
                       f"{indent}break"]
    return result, jumps


def _keep_registers_local(body: list[str], loops: bool) -> list[str]:
    """Keep CR/XER/LR/CTR and the often-used GPRs in locals, synchronised at exits and handler calls.

    ``cpu.cr`` (etc.) become ``cr``; ``gpr[N]`` used at least twice (looping blocks) or three times
    becomes ``gN``. Locals are loaded at entry and written back (when the block writes them) at each
    ``#sync-out`` marker: before every handler call and in the epilogue, the one way out that is not
    a handler's own return (after which the registers are already architectural). ``#sync-in``
    reloads them after a handler call the block goes on from.
    """
    # Few passes over the whole source, each in C (translation is hot too): no per-region pattern,
    # patterns that start with a literal (which the regex engine finds fast).
    source = "\n".join(body)
    present = set(_REGISTER_USE.findall(source))
    names = [name for name in _LOCAL_REGISTERS if name in present]
    code = _REGISTER_USE.sub(r"\1", source)
    uses: dict[str, int] = {}
    for number in _GPR_USE.findall(code):
        uses[number] = uses.get(number, 0) + 1
    threshold = 2 if loops else 3
    cached = sorted((number for number, count in uses.items() if count >= threshold), key=int)
    for number in cached:
        code = code.replace(f"gpr[{number}]", f"g{number}")   # "gpr[1]" is no part of "gpr[12]"
    body = code.split("\n")
    sources = {name: f"cpu.{name}" for name in names}
    sources.update({f"g{number}": f"gpr[{number}]" for number in cached})
    assigned = {target for line in body if " = " in line
                for target in line.strip().split(" = ")[:-1] if target.isidentifier()}
    written = [name for name in sources if name in assigned]
    result = [f"{name} = {source}" for name, source in sources.items()]
    for line in body:
        stripped = line.lstrip()
        indent = line[:len(line) - len(stripped)]
        if stripped == _SYNC_OUT:
            result += [f"{indent}{sources[name]} = {name}" for name in written]
        elif stripped == _SYNC_IN:
            result += [f"{indent}{name} = {source}" for name, source in sources.items()]
        else:
            result.append(line)
    return result


Superblock = tuple[Sequence[Instruction], Sequence["list[str] | None"]]   # instructions, templates


def known_region_start(pc: int) -> bool:
    """True when a region starting at ``pc`` was compiled before, in this process or (the region
    store) an earlier one: likely the same code, worth translating at its first entry."""
    if pc in _compiled_starts:
        return True
    store = shared_store()
    return store is not None and pc in store.starts()


def compile_region(superblocks: Sequence[Superblock], cpu: Any, read_pages: dict[int, int],
                   write_pages: dict[int, int], code_write_pages: dict[int, int], code_index: dict[int, Any],
                   ram: bytearray, *, compiled_only: bool = False) -> list[Block] | None:
    """Generate, compile and bind the function for a region (templates from :func:`template_for`);
    returns one Block per superblock, each entering the function there (the first is the entry the
    region was built for).

    The code object depends only on the instructions' addresses, words, cycles and templates, so it is
    memoised: a debugger that removes and re-inserts a breakpoint at every stop (gdb does) gets the
    same block back without generating and compiling it again; and it is kept between runs
    (:mod:`emulator.region_store`), so the next boot of the same firmware compiles nothing it did.
    ``compiled_only``: None instead of generating code that neither holds.
    """
    key = tuple((tuple((i.pc, i.word, i.cycles) for i in instructions),
                 tuple(None if t is None else tuple(t) for t in templates))
                for instructions, templates in superblocks)
    code = _compiled_blocks.get(key)
    if code is None:
        store = shared_store()
        code = None if store is None else store.get(key)
        if code is None:
            if compiled_only:
                return None
            code = _generate(superblocks)
            if store is not None:
                store.add(key, code)
        if len(_compiled_blocks) >= _COMPILED_BLOCKS_MAX:
            _compiled_blocks.clear()
            _compiled_starts.clear()
        _compiled_blocks[key] = code
        _compiled_starts.add(superblocks[0][0][0].pc)
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    handlers = [i.handler for instructions, _ in superblocks for i in instructions]
    run = namespace["bind"](cpu, read_pages.get, write_pages.get, code_write_pages.get, code_index, ram,
                            _U16.unpack_from, _U32.unpack_from, _U16.pack_into, _U32.pack_into,
                            _WORD_UNPACKS, _WORD_PACKS, *handlers)
    entries = []
    for number, (instructions, _) in enumerate(superblocks):   # the same function, entered at each
        start = instructions[0].pc
        entries.append(Block(run if number == 0 else partial(run, label=start), len(instructions),
                             sum(i.cycles for i in instructions), start))
    return entries


_COMPILED_BLOCKS_MAX = 8192
_compiled_blocks: dict[tuple[Any, ...], CodeType] = {}
_compiled_starts: set[int] = set()   # first addresses of the regions in _compiled_blocks


def exit_targets(superblock: Superblock) -> list[int]:
    """The constant addresses a superblock may leave for (side exits, its branch, its fall-through)."""
    instructions, templates = superblock
    targets = []
    for lines in templates:
        for line in lines or ():
            stripped = line.strip()
            if stripped.startswith("return ") and stripped[7:].isdigit():
                targets.append(int(stripped[7:]))
    if not ends_block(templates[-1]):
        targets.append((instructions[-1].pc + 4) & _M32)
    return targets


def loop_through_entry(superblocks: Sequence[Superblock],
                       targets: Sequence[Sequence[int]]) -> list[Superblock]:
    """The entry superblock and those of the others that lie on a path from it back to it
    (``targets[i]``: the exit targets of ``superblocks[i]``).

    Only loops gain from running inside one function; keeping the rest out keeps compile time (which
    grows with every superblock of every region) where it pays.
    """
    starts = {instructions[0].pc: index for index, (instructions, _) in enumerate(superblocks)}
    successors = [{starts[t] for t in exits if t in starts} for exits in targets]
    reaches_entry: set[int] = {0} if 0 in successors[0] else set()
    changed = True
    while changed:   # a fixed point: small regions, so the simple way is fast enough
        changed = False
        for index, following in enumerate(successors):
            if index not in reaches_entry and (0 in following or following & reaches_entry):
                reaches_entry.add(index)
                changed = True
    return [superblocks[0], *(superblocks[i] for i in sorted(reaches_entry) if i != 0)]


_FILL_STORES = {"stbu": 1, "sthu": 2, "stwu": 4}   # store with update -> bytes stored
_BDNZ_OPTIONS = {16, 17, 24, 25}   # BO: decrement CTR, branch while it is not 0 (with or without hints)


def _bulk_loop(superblocks: Sequence[Superblock]) -> list[str]:
    """Lines at the head of a fill or copy loop that run many of its iterations at once; none for
    any other region.

    Such loops (memset, memcpy and relocation loops in U-Boot, Linux and C libraries) are a region
    of one superblock that ends in a ``bdnz`` back to its start, where a Python iteration per word
    dominates:

    * fill: ``st{b,h,w}u rS,SIZE(rA)`` (SIZE the bytes it stores, rS not rA);
    * copy forward: ``lwz t1,4(rA) ... lwzu tm,4m(rA)`` then ``stw t1,4(rB) ... stwu tm,4m(rB)``;
    * copy backward: ``lwzu t,-4(rA); stwu t,-4(rB)``.

    The lines do k iterations as one slice assignment, where k stops short of everything that could
    make an iteration differ from the loop's own: the end of a page (the next access may miss, or
    reach a page with code or a watch: only pages in the data page caches, which have neither,
    qualify), overlapping source and destination bytes (the loop's order would show), the last CTR
    count (the branch falls through), the next event and the budget (one more iteration must still
    fit: the loop body runs once after these lines, checked before they ran). Registers, memory, CTR,
    instruction and cycle counts end as the k iterations leave them; then the body runs as written,
    so each page of a long loop costs one slice and one iteration.
    """
    if len(superblocks) != 1:
        return []
    instructions, templates = superblocks[0]
    branch = instructions[-1]
    word = branch.word
    if (None in templates or fields.primary(word) != 16 or fields.bo(word) not in _BDNZ_OPTIONS
            or fields.aa(word) or fields.lk(word)
            or (branch.pc + fields.branch_displacement(word)) & _M32 != instructions[0].pc):
        return []
    body = instructions[:-1]
    cost = sum(i.cycles for i in instructions)
    limits = [f"(cpu.ctr - 1) & {_M32}", f"(event_at - cycles - 1) // {cost} - 1",
              f"(budget - count) // {len(instructions)} - 1"]
    done = [f"        cpu.ctr = (cpu.ctr - k) & {_M32}", f"        count += {len(instructions)} * k",
            f"        cycles += {cost} * k"]
    if len(body) == 1:
        return _fill_lines(body[0], limits, done)
    return _copy_lines(body, limits, done)


def _fill_lines(store: Instruction, limits: list[str], done: list[str]) -> list[str]:
    spec = lookup(store.word)
    if spec is None or spec.mnemonic not in _FILL_STORES:
        return []
    size = _FILL_STORES[spec.mnemonic]
    source, base = fields.rs(store.word), fields.ra(store.word)
    if fields.simm(store.word) != size or base == 0 or source == base:
        return []
    return [
        f"ea = (gpr[{base}] + {size}) & {_M32}",
        "b = wp(ea >> 12)",
        "if b is not None:",
        f"    o = ea & {PAGE_MASK}",
        f"    k = min((4096 - o) // {size}, {', '.join(limits)})",
        "    if k > 0:",
        "        o |= b",
        f"        ram[o:o + {size} * k] = (gpr[{source}] & {(1 << 8 * size) - 1}).to_bytes({size}, 'big')"
        " * k",
        f"        gpr[{base}] = ea + {size} * (k - 1)",
        *done,
    ]


def _copy_lines(body: Sequence[Instruction], limits: list[str], done: list[str]) -> list[str]:
    count = len(body) // 2
    if len(body) != 2 * count:
        return []
    loads, stores = body[:count], body[count:]
    names = [getattr(lookup(i.word), "mnemonic", None) for i in body]
    expected = ["lwz"] * (count - 1) + ["lwzu"] + ["stw"] * (count - 1) + ["stwu"]
    if names != expected:
        return []
    source, target = fields.ra(loads[0].word), fields.ra(stores[0].word)
    temporaries = [fields.rd(i.word) for i in loads]
    displacements = [fields.simm(i.word) for i in loads]
    if (any(fields.ra(i.word) != source for i in loads) or any(fields.ra(i.word) != target for i in stores)
            or [fields.rs(i.word) for i in stores] != temporaries
            or [fields.simm(i.word) for i in stores] != displacements
            or len({source, target, *temporaries}) != count + 2 or 0 in (source, target)):
        return []
    step = 4 * count
    if displacements == [4 * (index + 1) for index in range(count)]:
        # Iteration j reads the step bytes from rA + 4 + j * step; k of them: one run up from rA + 4.
        first, room = 4, "(4096 - {o}) // " + str(step)
        last_words = "e - " + str(step)
    elif displacements == [-4] and count == 1:
        # Iteration j reads the word at rA - 4 - 4 j; k of them: one run down to rA - 4 k.
        first, room = -4, "({o} // 4 + 1 if {o} <= 4092 else 0)"
        step = -4
        last_words = "so"
    else:
        return []
    span = f"{abs(step)} * k"
    lines = [
        f"ea = (gpr[{source}] + {first}) & {_M32}",
        f"da = (gpr[{target}] + {first}) & {_M32}",
        "b = rp(ea >> 12)",
        "c = wp(da >> 12)",
        "if b is not None and c is not None:",
        f"    o = ea & {PAGE_MASK}",
        f"    q = da & {PAGE_MASK}",
        f"    k = min({room.format(o='o')}, {room.format(o='q')}, {', '.join(limits)})",
        "    if k > 0:",
    ]
    if step > 0:
        lines += ["        so = b | o", "        do = c | q"]
    else:
        lines += ["        so = (b | o) - 4 * (k - 1)", "        do = (c | q) - 4 * (k - 1)"]
    lines += [
        f"        e = so + {span}",
        f"        if e <= do or do + {span} <= so:",
        f"            ram[do:do + {span}] = ram[so:e]",
        *(f"            gpr[{register}] = u32(ram, {last_words} + {4 * index})[0]"
          for index, register in enumerate(temporaries)),
        f"            gpr[{source}] = (gpr[{source}] + {step} * k) & {_M32}",
        f"            gpr[{target}] = (gpr[{target}] + {step} * k) & {_M32}",
        *("    " + line for line in done),
    ]
    return lines


def _generate(superblocks: Sequence[Superblock]) -> CodeType:
    """Python source for one region, compiled."""
    sizes = {instructions[0].pc: (len(instructions), sum(i.cycles for i in instructions))
             for instructions, _ in superblocks}
    sections: list[list[str]] = []
    handler_count = 0
    for instructions, templates in superblocks:
        body: list[str] = []
        cycles_before = 0
        for index, (instruction, template) in enumerate(zip(instructions, templates, strict=True)):
            body.append(f"# {instruction.pc:#010x}: {instruction.word:#010x}")
            body += _instruction_lines(f"h{handler_count}", index, instruction, template, cycles_before,
                                       index == len(instructions) - 1)
            handler_count += 1
            cycles_before += instruction.cycles
        if not ends_block(templates[-1]):
            body.append(_exit_marker(str((instructions[-1].pc + 4) & _M32), len(instructions), cycles_before))
        sections.append(body)
    linked = [_link_exits(body, sizes) for body in sections]
    loops = any(jumps for _, jumps in linked)
    # Every exit breaks out of this loop (a superblock has no loop of its own) to the one epilogue.
    if len(linked) == 1:
        body = ["while True:", *("    " + line for line in [*_bulk_loop(superblocks), *linked[0][0]])]
    else:
        body = ["while True:"]
        for number, ((lines, _), (instructions, _)) in enumerate(zip(linked, superblocks, strict=True)):
            body.append(f"    {'if' if number == 0 else 'elif'} label == {instructions[0].pc}:")
            body += ["        " + line for line in lines]
    body = _keep_registers_local(["count = 0", "f = None", *body, *_EPILOGUE], loops)
    handler_names = [f"h{index}" for index in range(handler_count)]
    source = "\n".join([
        f"def bind(cpu, rp, wp, cwp, code, ram, u16, u32, p16, p32, uw, pw, {', '.join(handler_names)}):",
        f"    def block(gpr, cycles, event_at, budget, label={superblocks[0][0][0].pc}):",
        *("        " + line for line in body),
        "    return block",
    ])
    return compile(source, f"<block {superblocks[0][0][0].pc:#010x}>", "exec")

"""How an e500 instruction is described: :class:`InstructionSpec` (opcode, handler builder, template
emitter, cycles, privilege, models), what a handler may touch (:class:`HandlerCpu`), and
:class:`Semantics`, how an instruction's semantics is written once, with the handler and the block
translator's template both derived from it (:func:`handler_builder`, :func:`template_emitter`).

The ``ops_*`` modules describe their instructions with these; :mod:`emulator.decoder` assembles them
into the one instruction table and decodes words.

Imports: the standard library, :mod:`emulator.fields`, :mod:`emulator.exceptions` and, for the types
of what handlers touch, :mod:`emulator.mmu`, :mod:`emulator.models` and :mod:`emulator.timers`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from emulator.exceptions import ESR_PIL, ESR_PPR, IVOR_PROGRAM, Interrupt
from emulator.mmu import Mmu
from emulator.models import CpuModel
from emulator.timers import Timers

MSR_PR = 0x00004000   # problem state; privileged instructions raise ESR[PPR] when set
MASK32 = 0xFFFFFFFF
XER_WRITABLE = 0xE000007F   # SO, OV, CA and the string byte count: the XER bits mtspr sets
ALL_MODELS: frozenset[str] = frozenset({"e500v2", "e500mc"})


class HandlerCpu(Protocol):
    """The part of the core an instruction handler may touch (docs/architecture.md).

    ``emulator.cpu.Cpu`` and the test double ``tests.support.flatcpu.FlatCpu`` both provide it.
    """

    gpr: list[int]
    cr: int
    xer: int
    lr: int
    ctr: int
    reservation: int | None

    @property
    def msr(self) -> int: ...

    def load8(self, ea: int) -> int: ...
    def load16(self, ea: int) -> int: ...
    def load32(self, ea: int) -> int: ...
    def store8(self, ea: int, value: int) -> None: ...
    def store16(self, ea: int, value: int) -> None: ...
    def store32(self, ea: int, value: int) -> None: ...
    def load_words(self, ea: int, count: int) -> list[int]: ...
    def store_words(self, ea: int, values: list[int]) -> None: ...
    def store_zeros(self, ea: int, size: int) -> None: ...
    def trap(self, pc: int) -> None: ...



class SupervisorCpu(HandlerCpu, Protocol):
    """What the supervisor and floating-point handlers (``ops_system``, ``ops_float``) may touch beyond
    :class:`HandlerCpu`: SPRs, the MMU, the timers, the FPU state and the core's privileged actions."""

    fpr: list[int]
    fpscr: int
    sprs: dict[int, int]
    spr_readers: dict[int, Callable[[], int]]
    spr_writers: dict[int, Callable[[int], None]]
    model: CpuModel
    mmu: Mmu
    timers: Timers
    other_cores: list[Any]

    def load64(self, ea: int) -> int: ...
    def store64(self, ea: int, value: int) -> None: ...
    def set_msr(self, value: int) -> None: ...
    def translation_changed(self) -> None: ...
    def set_doorbell(self, *, critical: bool, pending: bool) -> None: ...
    def translate_debug(self, ea: int) -> int | None: ...
    def invalidate_physical(self, pa: int, length: int) -> None: ...
    def enter_wait(self) -> None: ...
    def ehpriv(self, pc: int) -> None: ...


Handler = Callable[[HandlerCpu, int], int]
# emit(word, pc) -> Python source lines for the block translator (emulator.translate), or None when this
# word has no template and the block must call the handler. Lines use the locals ``cpu`` and ``gpr``,
# scratch names, and at most one memory macro line: ``v = LOAD8|16|32(ea)`` or ``STORE8|16|32(ea, v)``,
# or the multi-word pair ``v = LOADWORDS(ea, N)`` followed by ``gpr[F:] = v`` and ``STOREWORDS(ea, gpr[F:])``
# (F..r31, lmw/stmw: the handler calls cpu.load_words/store_words), and ``ZEROS(ea, s)`` (dcbz: s zero
# bytes from ea, aligned to s, the cache line size; the handler calls cpu.store_zeros).
# Lines before the macro may only compute scratch locals (no guest state written); a line starting with
# ``return`` makes the instruction end its block, and such a template's last line is a ``return`` (a
# conditional branch ends with the fall-through one).
# A template may read the local ``now``: the cycle count at the start of its instruction (time base).
Emitter = Callable[[int, int], "list[str] | None"]


@dataclass(frozen=True)
class InstructionSpec:
    """One instruction of the table (Rc/OE variants share the spec; the handler decodes them)."""

    mnemonic: str
    primary: int
    xo: int | None
    xo_bits: int                                   # 0 (none), 5 (A-form), 9 (XO-form), 10 (X/XL-form)
    build: Callable[[int], Handler]
    cycles: int = 1
    privileged: bool = False
    models: frozenset[str] = ALL_MODELS
    emit: Emitter | None = None                    # source template for the block translator

    def available_on(self, model_name: str) -> bool:
        """True when the core variant ``model_name`` implements this instruction."""
        return model_name in self.models


_FIELD = re.compile(r"{(\w+)}")
_CONSTANT_EXPRESSION = re.compile(r"[0-9()+\-&|^ ]+")   # what a return's target is once fields are numbers
_MEMORY_MACROS = {**{f"{kind}{bits}(": f"cpu.{kind.lower()}{bits}(" for kind in ("LOAD", "STORE")
                     for bits in (8, 16, 32)},
                  "LOADWORDS(": "cpu.load_words(", "STOREWORDS(": "cpu.store_words(",
                  "ZEROS(": "cpu.store_zeros("}
_NEXT_PC = "((pc + 4) & 4294967295)"


class Semantics:
    """One instruction form's semantics, written once as source lines over named fields.

    ``{name}`` in a line is a field value fixed when the word is decoded (from :mod:`emulator.fields`
    or computed from them, always an int); ``{pc}`` is the instruction's address and ``{next}`` the
    address after it. The lines follow the translator's template rules (see :data:`Emitter`): the
    locals ``cpu`` and ``gpr``, scratch names, at most one memory macro, ``return`` to leave the
    straight line. Two functions are derived from them, compiled together the first time the form is
    used (once per form, never per word):

    * :meth:`handler`: the decoded path's closure. A factory ``build(fields...)`` whose inner
      ``handler(cpu, pc)`` runs the lines with each field a closure variable, the memory macros as
      ``cpu.load32(ea)`` etc., and the fall-through ``return`` appended.
    * :meth:`source`: the block translator's lines: the lines as f-strings over the fields, ``pc``
      and ``next``, each ``return`` whose target is then a constant folded to that address (the
      translator reads branch targets from ``return N``).
    """

    def __init__(self, name: str, lines: tuple[str, ...]) -> None:
        self.name = f"{name}_" if keyword.iskeyword(name) else name   # the handler's __name__
        self.lines = lines
        self.fields = tuple(dict.fromkeys(field for line in lines for field in _FIELD.findall(line)
                                          if field not in ("pc", "next")))
        # The field values of a word, in the order of ``fields``, from the selector's dict.
        self._arguments: Callable[[dict[str, int]], tuple[int, ...]] = (
            itemgetter(*self.fields) if len(self.fields) > 1 else
            (lambda values: (values[self.fields[0]],)) if self.fields else (lambda values: ()))
        self._factory: Callable[..., Handler] = self._compile_on_first_use
        self._writer: Callable[..., list[str]] = self._compile_on_first_use

    def handler(self, values: dict[str, int]) -> Handler:
        """The decoded path's handler for one word: the compiled factory applied to its field values."""
        return self._factory(*self._arguments(values))

    def source(self, values: dict[str, int], pc: int) -> list[str]:
        """The translator's lines for one word at ``pc``."""
        return self._writer(*self._arguments(values), pc)

    def _compile_on_first_use(self, *arguments: int) -> Any:
        """Stands in for both compiled functions until the first call, which compiles them."""
        writing = len(arguments) > len(self.fields)   # the writer also takes pc
        self._compile()
        return self._writer(*arguments) if writing else self._factory(*arguments)

    def _compile(self) -> None:
        body = []
        for line in self.lines:
            line = _FIELD.sub(lambda match: _NEXT_PC if match[1] == "next" else match[1], line)
            for macro, method in _MEMORY_MACROS.items():
                line = line.replace(macro, method)
            body.append(line)
        if not body or not body[-1].startswith("return"):
            body.append(f"return {_NEXT_PC}")
        if any(re.search(r"\bgpr\b", line) for line in body):
            body.insert(0, "gpr = cpu.gpr")
        writes = []
        for line in self.lines:
            stripped = line.lstrip()
            indent = line[:len(line) - len(stripped)]
            target = stripped[7:] if stripped.startswith("return ") else ""
            if target and not target.isdigit() and _CONSTANT_EXPRESSION.fullmatch(_FIELD.sub("0", target)):
                expression = _FIELD.sub(r"\1", target)
                writes.append(f"{indent!r} + 'return ' + str(({expression}) & 4294967295)")
            else:
                writes.append("f" + repr(line))
        source = "\n".join([
            f"def build({', '.join(self.fields)}):",
            f"    def {self.name}(cpu, pc):",
            *("        " + line for line in body),
            f"    return {self.name}",
            f"def write({''.join(name + ', ' for name in self.fields)}pc):",
            "    next = (pc + 4) & 4294967295",
            f"    return [{', '.join(writes)}]",
        ])
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<semantics {self.name}>", "exec"), namespace)
        self._factory = namespace["build"]
        self._writer = namespace["write"]


# An instruction with no architectural effect here (nop, cache hints, barriers): no lines, so the
# handler returns the next address and a translated block runs nothing for it.
NO_OPERATION = Semantics("no_operation", ())

Chosen = tuple[Semantics, dict[str, int]]
# select(word) -> the form that executes ``word`` and its field values, or None for an invalid form.
Selector = Callable[[int], "Chosen | None"]


def handler_builder(select: Selector) -> Callable[[int], Handler]:
    """An InstructionSpec ``build`` derived from the instruction's semantics."""

    def build(word: int) -> Handler:
        chosen = select(word)
        if chosen is None:
            return illegal
        return chosen[0].handler(chosen[1])
    return build


def template_emitter(select: Selector) -> Emitter:
    """An InstructionSpec ``emit`` derived from the same semantics."""

    def emit(word: int, pc: int) -> list[str] | None:
        chosen = select(word)
        if chosen is None:
            return None
        return chosen[0].source(chosen[1], pc)
    return emit


def illegal(cpu: HandlerCpu, pc: int) -> int:
    """Handler of every unknown, unimplemented or invalid-form word: program interrupt, ESR[PIL]."""
    raise Interrupt(IVOR_PROGRAM, esr=ESR_PIL)


def privileged_only(handler: Handler) -> Handler:
    """Wrap a supervisor-only handler so that problem state (MSR[PR]=1) raises ESR[PPR] instead."""

    def checked(cpu: HandlerCpu, pc: int) -> int:
        if cpu.msr & MSR_PR:
            raise Interrupt(IVOR_PROGRAM, esr=ESR_PPR)
        return handler(cpu, pc)

    return checked

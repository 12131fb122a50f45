"""The one e500 instruction table and its decoder.

The table is the concatenation of :data:`emulator.ops_integer.SPECS` (user-level integer ISA),
:data:`emulator.ops_system.SPECS` (supervisor, SPR, cache and TLB instructions) and
:data:`emulator.ops_float.SPECS` (the e500mc FPU), each entry an :class:`emulator.isa.InstructionSpec`;
opcode clashes are refused when the table is built (at import). :func:`decode` turns an instruction word
into a handler specialised for that word (fields pre-extracted), which the core caches per address;
:func:`lookup`, :func:`mnemonic`, :func:`models_for` and :func:`disassemble` answer from the same table.

Imports: the standard library, :mod:`emulator.fields`, :mod:`emulator.isa` and the ``ops_*`` modules.
"""

from __future__ import annotations

from emulator import fields
from emulator.isa import Handler, InstructionSpec, illegal, privileged_only
from emulator.ops_float import SPECS as FLOAT_SPECS
from emulator.ops_integer import SPECS as INTEGER_SPECS
from emulator.ops_system import SPECS as SYSTEM_SPECS

# _by_primary[op] is the spec of a primary-only opcode; _by_extended[op] is a 1024-entry list indexed by
# the 10-bit extended opcode (fields.xo10), into which 9-bit (XO-form, OE bit free) and 5-bit (A-form)
# opcodes are replicated, so that decoding is two list indexings whatever the form.
_by_primary: list[InstructionSpec | None] = []
_by_extended: list[list[InstructionSpec | None] | None] = []


def _install(table: list[InstructionSpec | None], index: int, spec: InstructionSpec, strength: int,
             strengths: list[int]) -> None:
    # An exact 10-bit opcode beats a replicated 9-bit one, which beats a replicated 5-bit one.
    if table[index] is None or strength > strengths[index]:
        table[index] = spec
        strengths[index] = strength
    elif strength == strengths[index]:
        raise ValueError(f"opcode clash: {spec.mnemonic} and {table[index].mnemonic}")  # type: ignore[union-attr]


def all_specs() -> list[InstructionSpec]:
    """Every instruction of the table (integer, system, then floating point)."""
    return [*INTEGER_SPECS, *SYSTEM_SPECS, *FLOAT_SPECS]


def _build_tables() -> None:
    by_primary: list[InstructionSpec | None] = [None] * 64
    by_extended: list[list[InstructionSpec | None] | None] = [None] * 64
    strengths: dict[int, list[int]] = {}
    for spec in all_specs():
        if spec.xo is None:
            if by_primary[spec.primary] is not None or by_extended[spec.primary] is not None:
                raise ValueError(f"opcode clash on primary {spec.primary}: {spec.mnemonic}")
            by_primary[spec.primary] = spec
            continue
        if by_primary[spec.primary] is not None:
            raise ValueError(f"opcode clash on primary {spec.primary}: {spec.mnemonic}")
        table = by_extended[spec.primary]
        if table is None:
            table = by_extended[spec.primary] = [None] * 1024
            strengths[spec.primary] = [0] * 1024
        ranks = strengths[spec.primary]
        if spec.xo_bits == 10:
            _install(table, spec.xo, spec, 3, ranks)
        elif spec.xo_bits == 9:
            for high in (0, 512):
                _install(table, spec.xo | high, spec, 2, ranks)
        elif spec.xo_bits == 5:
            for high in range(0, 1024, 32):
                _install(table, spec.xo | high, spec, 1, ranks)
        else:
            raise ValueError(f"{spec.mnemonic}: xo_bits {spec.xo_bits} with an extended opcode")
    _by_primary[:] = by_primary
    _by_extended[:] = by_extended


def lookup(word: int) -> InstructionSpec | None:
    """The spec that implements ``word`` on some model, or None for an unknown opcode."""
    primary = fields.primary(word)
    spec = _by_primary[primary]
    if spec is not None:
        return spec
    table = _by_extended[primary]
    if table is None:
        return None
    return table[fields.xo10(word)]


def decode(word: int, model_name: str) -> tuple[InstructionSpec | None, Handler, int]:
    """Decode ``word`` for core variant ``model_name`` into (spec, handler, cycles).

    Unknown opcodes, and opcodes the model does not implement, give ``(None, illegal, 1)``.
    A spec's builder may itself return :func:`illegal` for an invalid form of a known opcode.
    """
    spec = lookup(word)
    if spec is None or model_name not in spec.models:
        return None, illegal, 1
    handler = spec.build(word)
    if spec.privileged and handler is not illegal:
        handler = privileged_only(handler)
    return spec, handler, spec.cycles


def mnemonic(word: int) -> str | None:
    """The base mnemonic of ``word`` ("addi", "stwcx."), or None when the opcode is unknown."""
    spec = lookup(word)
    return None if spec is None else spec.mnemonic


def models_for(word: int) -> frozenset[str]:
    """The core variants on which ``word``'s opcode is implemented (empty when unknown)."""
    spec = lookup(word)
    return frozenset() if spec is None else spec.models


def disassemble(word: int) -> str:
    """A short human-readable rendering for divergence reports: mnemonic, form bits, raw fields."""
    spec = lookup(word)
    if spec is None:
        return f".long 0x{word:08x}"
    name = spec.mnemonic
    if spec.xo_bits == 9 and fields.oe(word):
        name += "o"
    has_record_bit = spec.xo_bits in (9, 10) or spec.primary in (20, 21, 23)
    if has_record_bit and fields.rc(word) and not name.endswith("."):
        name += "."
    elif spec.primary in (16, 18) or (spec.primary == 19 and spec.xo in (16, 528)):
        name += ("l" if fields.lk(word) else "") + ("a" if fields.aa(word) and spec.primary != 19 else "")
    if spec.xo is None:
        operands = f"{fields.rd(word)},{fields.ra(word)},0x{fields.uimm(word):04x}"
    else:
        operands = f"{fields.rd(word)},{fields.ra(word)},{fields.rb(word)}"
    return f"{name} {operands} [0x{word:08x}]"


_build_tables()

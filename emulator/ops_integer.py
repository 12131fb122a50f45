"""The e500 user-level integer ISA (reference e500-core.md section 4.3): its semantics and table.

Arithmetic (with the OE/Rc forms and XER[SO/OV/CA]), logical, rotate/shift, compare, CR logical and
CR moves, branches, every integer load/store form, lwarx/stwcx., isel and tw/twi.

Each instruction's semantics is written once, as an :class:`emulator.isa.Semantics`: source lines over
named fields. A ``_select_*`` function takes a word apart (:mod:`emulator.fields`) and picks the form
that executes it (Rc, OE, rA=0 and the like choose among forms, so no handler tests them at run time)
with its field values; the decoded handler and the block translator's lines are both derived from
that choice (:func:`emulator.isa.handler_builder`, :func:`emulator.isa.template_emitter`). The lines
do all register writes after the one memory access that may fault, so exceptions stay precise.

Handler-only (written as closures, no translator template, because they raise interrupts themselves,
call into the core, or keep a reservation): tw/twi, lwarx/stwcx. (lmw/stmw have semantics: their
multi-word macros move all their words at once on the translator's fast path.)

Where the architecture leaves a result undefined, the semantics are what QEMU (and therefore Unicorn)
does, so that guests behave as under ``qemu-system-ppc -M ppce500``:

* ``divw``/``divwu`` by zero and ``divw`` 0x80000000 / -1: rD = the dividend (QEMU divides by 1
  instead), CR0 from that value when Rc=1, OV=SO=1 when OE=1. Silicon's value is not documented.
* Load-with-update with rA=0 or rA=rD, store-with-update with rA=0, ``mulhw[u]`` with OE=1,
  ``bcctr`` that would decrement CTR, and ``cmp*`` with L=1 (64-bit compare) are illegal: program
  interrupt ESR[PIL]. (QEMU ignores L on 32-bit cores; the e500 manual lists 64-bit forms as illegal.)
* ``lmw`` whose range includes rA loads rA like any other register (the loaded value wins).
* ``mfocrf``/``mtocrf`` whose FXM does not name exactly one field leave rD/CR unchanged.
* ``lwarx``/``stwcx.``, ``lmw``/``stmw`` on an address that is not word aligned raise an alignment
  interrupt (DEAR = EA, ESR[ST] for stores); ``stwcx.`` succeeds only on the exact reserved address.

Imports: the standard library, :mod:`emulator.exceptions`, :mod:`emulator.fields` and :mod:`emulator.isa`.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator import fields
from emulator.exceptions import ESR_ST, IVOR_ALIGNMENT, Interrupt
from emulator.isa import (
    NO_OPERATION,
    Chosen,
    Handler,
    HandlerCpu,
    InstructionSpec,
    Selector,
    Semantics,
    handler_builder,
    template_emitter,
)

M = 0xFFFFFFFF
SIGN = 0x80000000

XER_SO = 0x80000000
XER_OV = 0x40000000
XER_CA = 0x20000000
XER_SO_OV = XER_SO | XER_OV
_NOT_CA = M ^ XER_CA
_NOT_OV = M ^ XER_OV

CR0_LT = 0x80000000
CR0_GT = 0x40000000
CR0_EQ = 0x20000000
CR0_SO = 0x10000000
_CR0_CLEAR = 0x0FFFFFFF

# e500 issue latencies (approximate, e500 core reference manual appendix): the cycle counter uses them.
CYCLES_SIMPLE = 1
CYCLES_LOAD = 3
CYCLES_MULTIPLY = 4
CYCLES_DIVIDE = 14


def _next(cpu: HandlerCpu, pc: int) -> int:
    return (pc + 4) & M


def _form(name: str, *lines: str) -> Semantics:
    return Semantics(name, lines)


# Source snippets the forms share. ``r`` is the scratch name of a recorded result.
_CR0 = (f"cpu.cr = (cpu.cr & {_CR0_CLEAR}) | ({CR0_LT} if r & {SIGN} else {CR0_GT} if r else {CR0_EQ})"
        f" | ((cpu.xer >> 3) & {CR0_SO})")
_SIGNED_S = f"s = s - ((s & {SIGN}) << 1)"    # the scratch s (a 32-bit value) as a signed int
_SIGNED_T = f"t = t - ((t & {SIGN}) << 1)"
_OVERFLOW_FROM_N = f"cpu.xer = cpu.xer | {XER_SO_OV} if n else cpu.xer & {_NOT_OV}"   # OV, SO from n


def _result(target: str, expression: str, record: bool) -> tuple[str, ...]:
    """``target`` = ``expression`` (already 32-bit), and CR0 from it when ``record`` (Rc=1)."""
    if record:
        return f"r = {target} = {expression}", _CR0
    return (f"{target} = {expression}",)


def _rc_pair(name: str, target: str, expression: str, *before: str) -> tuple[Semantics, Semantics]:
    """The forms of one operation without and with Rc, indexed by ``fields.rc(word)``."""
    return (_form(name, *before, *_result(target, expression, False)),
            _form(name, *before, *_result(target, expression, True)))


# --------------------------------------------------------------------------- arithmetic

_LOAD_IMMEDIATE = _form("load_immediate", "gpr[{rd}] = {value}")
_ADD_IMMEDIATE = _form("add_immediate", f"gpr[{{rd}}] = (gpr[{{ra}}] + {{imm}}) & {M}")


def _select_addi(word: int) -> Chosen:
    rd, ra, imm = fields.rd(word), fields.ra(word), fields.simm(word)
    if fields.primary(word) == 15:   # addis
        imm <<= 16
    if ra == 0:
        return _LOAD_IMMEDIATE, {"rd": rd, "value": imm & M}
    return _ADD_IMMEDIATE, {"rd": rd, "ra": ra, "imm": imm}


def _carrying_sum(name: str, total: str, writes_ca: bool, record: bool) -> Semantics:
    """rD = the low word of ``total``; CA = its bit 32 when ``writes_ca``; CR0 when ``record``."""
    lines = [f"t = {total}"]
    if writes_ca:
        lines.append(f"cpu.xer = (cpu.xer & {_NOT_CA}) | ((t >> 32) << 29)")
    return _form(name, *lines, *_result("gpr[{rd}]", f"t & {M}", record))


_ADD_IMMEDIATE_CARRYING = tuple(_carrying_sum("add_immediate_carrying", "gpr[{ra}] + {imm}", True, record)
                                for record in (False, True))
_SUBTRACT_FROM_IMMEDIATE = _carrying_sum("subtract_from_immediate", f"(gpr[{{ra}}] ^ {M}) + {{imm}}", True,
                                         False)
# The low word of the product does not depend on the signedness of rA.
_MULTIPLY_IMMEDIATE = _form("multiply_immediate", f"gpr[{{rd}}] = (gpr[{{ra}}] * {{imm}}) & {M}")


def _select_addic(word: int) -> Chosen:
    form = _ADD_IMMEDIATE_CARRYING[fields.primary(word) == 13]   # addic.
    return form, {"rd": fields.rd(word), "ra": fields.ra(word), "imm": fields.simm(word) & M}


def _select_subfic(word: int) -> Chosen:
    values = {"rd": fields.rd(word), "ra": fields.ra(word), "imm": (fields.simm(word) & M) + 1}
    return _SUBTRACT_FROM_IMMEDIATE, values


def _select_mulli(word: int) -> Chosen:
    return _MULTIPLY_IMMEDIATE, {"rd": fields.rd(word), "ra": fields.ra(word), "imm": fields.simm(word)}


# The add/subtract family is rD = (rA or ~rA) + (rB | 0 | -1) + (0 | 1 | CA):
# (invert rA, second operand, carry in, writes CA).
_RB, _ZERO, _MINUS_ONE = "rb", "zero", "minus_one"
_CARRY_IN = -1


def _sum_form(invert_a: bool, second: str, carry_in: int, writes_ca: bool, overflow_enable: bool,
              record: bool) -> Semantics:
    x = f"(gpr[{{ra}}] ^ {M})" if invert_a else "gpr[{ra}]"
    y = {_RB: "gpr[{rb}]", _ZERO: "0", _MINUS_ONE: str(M)}[second]
    carry = "((cpu.xer >> 29) & 1)" if carry_in == _CARRY_IN else str(carry_in)
    if not (overflow_enable or writes_ca or carry_in == _CARRY_IN):
        if second == _RB:
            operation = "gpr[{rb}] - gpr[{ra}]" if invert_a else "gpr[{ra}] + gpr[{rb}]"
            return _form("subtract" if invert_a else "add",
                         *_result("gpr[{rd}]", f"({operation}) & {M}", record))
        if second == _ZERO and invert_a and carry_in == 1:
            return _form("negate", *_result("gpr[{rd}]", f"-gpr[{{ra}}] & {M}", record))
    if not overflow_enable:
        return _carrying_sum("add_extended", f"{x} + {y} + {carry}", writes_ca, record)
    lines = [f"s = {x}", f"t = {y}", f"n = s + t + {carry}", f"r = n & {M}"]
    if writes_ca:
        lines.append(f"cpu.xer = (cpu.xer & {_NOT_CA}) | ((n >> 32) << 29)")
    # Signed overflow: both addends have one sign and the result the other.
    lines += [f"cpu.xer = cpu.xer | {XER_SO_OV} if (s ^ r) & (t ^ r) & {SIGN} else cpu.xer & {_NOT_OV}",
              "gpr[{rd}] = r"]
    if record:
        lines.append(_CR0)
    return _form("add_extended_overflow", *lines)


def _sum_selector(invert_a: bool, second: str, carry_in: int, writes_ca: bool) -> Selector:
    forms = {(overflow, record): _sum_form(invert_a, second, carry_in, writes_ca, overflow, record)
             for overflow in (False, True) for record in (False, True)}

    def select(word: int) -> Chosen:
        return forms[fields.oe(word), fields.rc(word)], {"rd": fields.rd(word), "ra": fields.ra(word),
                                                         "rb": fields.rb(word)}
    return select


def _multiply_low_overflow(record: bool) -> Semantics:
    lines = ["s = gpr[{ra}]", "t = gpr[{rb}]", _SIGNED_S, _SIGNED_T, "n = s * t", f"r = n & {M}",
             "n = not -0x80000000 <= n <= 0x7FFFFFFF", _OVERFLOW_FROM_N, "gpr[{rd}] = r"]
    return _form("multiply_low_overflow", *lines, *((_CR0,) if record else ()))


# [OE][Rc]; without OE the low word does not depend on signedness.
_MULTIPLY_LOW = (_rc_pair("multiply_low", "gpr[{rd}]", f"(gpr[{{ra}}] * gpr[{{rb}}]) & {M}"),
                 (_multiply_low_overflow(False), _multiply_low_overflow(True)))
_MULTIPLY_HIGH_SIGNED = _rc_pair("multiply_high_signed", "gpr[{rd}]", f"((s * t) >> 32) & {M}",
                                 "s = gpr[{ra}]", "t = gpr[{rb}]", _SIGNED_S, _SIGNED_T)
_MULTIPLY_HIGH_UNSIGNED = _rc_pair("multiply_high_unsigned", "gpr[{rd}]", "(gpr[{ra}] * gpr[{rb}]) >> 32")


def _select_mullw(word: int) -> Chosen:
    form = _MULTIPLY_LOW[fields.oe(word)][fields.rc(word)]
    return form, {"rd": fields.rd(word), "ra": fields.ra(word), "rb": fields.rb(word)}


def _select_mulhw(word: int) -> Chosen | None:
    if fields.oe(word):
        return None
    forms = _MULTIPLY_HIGH_SIGNED if fields.xo9(word) == 75 else _MULTIPLY_HIGH_UNSIGNED
    return forms[fields.rc(word)], {"rd": fields.rd(word), "ra": fields.ra(word), "rb": fields.rb(word)}


def _divide_form(is_signed: bool, overflow_enable: bool, record: bool) -> Semantics:
    # A zero divisor (and divw's 0x80000000 / -1) leaves the dividend: QEMU divides by 1 instead.
    if not is_signed:
        lines = ["s = gpr[{ra}]", "t = gpr[{rb}]"]
        if overflow_enable:
            lines.append(f"cpu.xer = cpu.xer & {_NOT_OV} if t else cpu.xer | {XER_SO_OV}")
        return _form("divide_unsigned", *lines, *_result("gpr[{rd}]", "s // t if t else s", record))
    lines = ["s = gpr[{ra}]", "t = gpr[{rb}]", f"n = t == 0 or (s == {SIGN} and t == {M})",
             "if n:", "    r = s", "else:", "    " + _SIGNED_S, "    " + _SIGNED_T,
             "    r = abs(s) // abs(t)", f"    r = (-r if (s ^ t) < 0 else r) & {M}"]
    if overflow_enable:
        lines.append(_OVERFLOW_FROM_N)
    lines.append("gpr[{rd}] = r")
    if record:
        lines.append(_CR0)
    return _form("divide", *lines)


_DIVIDE = {(is_signed, overflow_enable, record): _divide_form(is_signed, overflow_enable, record)
           for is_signed in (False, True) for overflow_enable in (False, True) for record in (False, True)}


def _select_divw(word: int) -> Chosen:
    form = _DIVIDE[fields.xo9(word) == 491, fields.oe(word), fields.rc(word)]
    return form, {"rd": fields.rd(word), "ra": fields.ra(word), "rb": fields.rb(word)}


# --------------------------------------------------------------------------- logical, shift, rotate

_OR_IMMEDIATE = _form("or_immediate", "gpr[{ra}] = gpr[{rs}] | {imm}")
_XOR_IMMEDIATE = _form("xor_immediate", "gpr[{ra}] = gpr[{rs}] ^ {imm}")
_AND_IMMEDIATE_RECORDED = _rc_pair("and_immediate_recorded", "gpr[{ra}]", "gpr[{rs}] & {imm}")[True]


def _select_logical_immediate(word: int) -> Chosen:
    rs, ra, imm = fields.rs(word), fields.ra(word), fields.uimm(word)
    primary = fields.primary(word)
    if primary in (25, 27, 29):
        imm <<= 16
    values = {"ra": ra, "rs": rs, "imm": imm}
    if primary in (24, 25):
        if imm == 0 and rs == ra:
            return NO_OPERATION, {}   # nop (ori 0,0,0) and friends
        return _OR_IMMEDIATE, values
    if primary in (26, 27):
        return _XOR_IMMEDIATE, values
    return _AND_IMMEDIATE_RECORDED, values


def _logical_selector(name: str, expression: str) -> Selector:
    """X-form rA = ``expression`` over rS and rB (already 32-bit), with CR0 when Rc=1."""
    forms = _rc_pair(name, "gpr[{ra}]", expression)

    def select(word: int) -> Chosen:
        return forms[fields.rc(word)], {"ra": fields.ra(word), "rs": fields.rs(word), "rb": fields.rb(word)}
    return select


_MOVE_REGISTER = _rc_pair("move_register", "gpr[{ra}]", "gpr[{rs}]")
_OR_REGISTERS = _rc_pair("or_registers", "gpr[{ra}]", "gpr[{rs}] | gpr[{rb}]")


def _select_or(word: int) -> Chosen:
    rs, rb = fields.rs(word), fields.rb(word)
    forms = _MOVE_REGISTER if rs == rb else _OR_REGISTERS
    return forms[fields.rc(word)], {"ra": fields.ra(word), "rs": rs, "rb": rb}


def _unary_selector(name: str, expression: str) -> Selector:
    """X-form rA = ``expression`` over rS (cntlzw, extsb, extsh), with CR0 when Rc=1."""
    forms = _rc_pair(name, "gpr[{ra}]", expression)

    def select(word: int) -> Chosen:
        return forms[fields.rc(word)], {"ra": fields.ra(word), "rs": fields.rs(word)}
    return select


def _shift_right_algebraic(amount: str, *before: str) -> tuple[Semantics, Semantics]:
    # 32..63 shift in only sign bits; CA = a negative source with 1-bits shifted out.
    carry = f"cpu.xer = (cpu.xer | {XER_CA}) if s < 0 and (t << {amount}) != s else (cpu.xer & {_NOT_CA})"
    return _rc_pair("shift_right_algebraic", "gpr[{ra}]", f"t & {M}",
                    "s = gpr[{rs}]", *before, _SIGNED_S, f"t = s >> {amount}", carry)


_SHIFT_RIGHT_ALGEBRAIC = (_shift_right_algebraic("n", "n = gpr[{rb}] & 63"),    # sraw
                          _shift_right_algebraic("{amount}"))                   # srawi


def _select_sraw(word: int) -> Chosen:
    immediate = fields.xo10(word) == 824
    values = {"ra": fields.ra(word), "rs": fields.rs(word), "rb": fields.rb(word), "amount": fields.sh(word)}
    return _SHIFT_RIGHT_ALGEBRAIC[immediate][fields.rc(word)], values


def rotate_mask(mask_begin: int, mask_end: int) -> int:
    """The M-form mask: ones from bit mask_begin to bit mask_end (bit 0 = MSB), wrapping around."""
    from_begin = M >> mask_begin
    to_end = (M << (31 - mask_end)) & M
    return from_begin & to_end if mask_begin <= mask_end else from_begin | to_end


_ROTATE_BY_REGISTER = _rc_pair("rotate_by_register", "gpr[{ra}]", "((s << n) | (s >> (32 - n))) & {mask}",
                               "s = gpr[{rs}]", "n = gpr[{rb}] & 31")
_ROTATE_INSERT = _rc_pair("rotate_insert", "gpr[{ra}]",
                          "(((s << {shift}) | (s >> {back})) & {mask}) | (gpr[{ra}] & {keep})",
                          "s = gpr[{rs}]")
_AND_MASK = _rc_pair("and_mask", "gpr[{ra}]", "gpr[{rs}] & {mask}")
_SHIFT_LEFT_AND_MASK = _rc_pair("shift_left_and_mask", "gpr[{ra}]", "(gpr[{rs}] << {shift}) & {mask}")
_SHIFT_RIGHT_AND_MASK = _rc_pair("shift_right_and_mask", "gpr[{ra}]", "(gpr[{rs}] >> {back}) & {mask}")
_ROTATE_AND_MASK = _rc_pair("rotate_and_mask", "gpr[{ra}]", "((s << {shift}) | (s >> {back})) & {mask}",
                            "s = gpr[{rs}]")


def _select_rotate(word: int) -> Chosen:
    shift = fields.sh(word)
    mask = rotate_mask(fields.mb(word), fields.me(word))
    primary = fields.primary(word)
    values = {"ra": fields.ra(word), "rs": fields.rs(word), "mask": mask, "rb": shift, "shift": shift,
              "back": 32 - shift, "keep": M ^ mask}
    if primary == 23:     # rlwnm: shift amount from rB
        forms = _ROTATE_BY_REGISTER
    elif primary == 20:   # rlwimi: insert under mask
        forms = _ROTATE_INSERT
    elif shift == 0:
        forms = _AND_MASK
    elif not mask & ((1 << shift) - 1):   # no rotated-around bits survive the mask: a left shift
        forms = _SHIFT_LEFT_AND_MASK
    elif not mask >> shift:               # only rotated-around bits survive: a right shift
        forms = _SHIFT_RIGHT_AND_MASK
    else:
        forms = _ROTATE_AND_MASK
    return forms[fields.rc(word)], values


# --------------------------------------------------------------------------- compare, CR, XER

def _compare_selector(signed: bool, immediate: bool) -> Selector:
    """cmp/cmpl/cmpi/cmpli into CR field crfD; flipping the sign bit turns signed into unsigned order."""
    left = f"s = gpr[{{ra}}] ^ {SIGN}" if signed else "s = gpr[{ra}]"
    right = "{constant}" if immediate else "n"
    lines = [left] if immediate else [left, f"n = gpr[{{rb}}] ^ {SIGN}" if signed else "n = gpr[{rb}]"]
    order = f"8 if s < {right} else 4 if s > {right} else 2"
    field = f"(({order}) | (cpu.xer >> 31)) << {{shift}}"
    form = _form("compare", *lines, f"cpu.cr = (cpu.cr & {{keep}}) | ({field})")

    def select(word: int) -> Chosen | None:
        if fields.long_compare(word):   # L=1: 64-bit compare, not on 32-bit e500
            return None
        shift = 28 - 4 * fields.crfd(word)
        constant = (fields.simm(word) & M) ^ SIGN if signed else fields.uimm(word)
        return form, {"ra": fields.ra(word), "rb": fields.rb(word), "keep": M ^ (0xF << shift),
                      "shift": shift, "constant": constant}
    return select


# CR logical operations on the bits a and b, by extended opcode.
_CR_OPERATIONS: dict[int, str] = {
    257: "{a} & {b}",          # crand
    129: "{a} & ({b} ^ 1)",    # crandc
    289: "({a} ^ {b}) ^ 1",    # creqv
    225: "({a} & {b}) ^ 1",    # crnand
    33: "({a} | {b}) ^ 1",     # crnor
    449: "{a} | {b}",          # cror
    417: "{a} | ({b} ^ 1)",    # crorc
    193: "{a} ^ {b}",          # crxor
}
_CR_LOGICAL = {xo: _form("cr_logical", "cpu.cr = (cpu.cr & {keep}) | ((" + operation.format(
                   a="((cpu.cr >> {shift_a}) & 1)", b="((cpu.cr >> {shift_b}) & 1)") + ") << {shift_t})")
               for xo, operation in _CR_OPERATIONS.items()}


def _select_cr_logical(word: int) -> Chosen:
    target_shift = 31 - fields.crbd(word)
    values = {"keep": M ^ (1 << target_shift), "shift_a": 31 - fields.crba(word),
              "shift_b": 31 - fields.crbb(word), "shift_t": target_shift}
    return _CR_LOGICAL[fields.xo10(word)], values


_MOVE_CR_FIELD = _form("move_cr_field",
                       "cpu.cr = (cpu.cr & {keep}) | (((cpu.cr >> {source}) & 15) << {target})")
_MOVE_XER_TO_CR = _form("move_xer_to_cr", "s = cpu.xer",
                        "cpu.cr = (cpu.cr & {keep}) | ((s >> 28) << {target})", "cpu.xer = s & 0x0FFFFFFF")


def _select_mcrf(word: int) -> Chosen:
    target_shift = 28 - 4 * fields.crfd(word)
    source_shift = 28 - 4 * fields.crfs(word)
    return _MOVE_CR_FIELD, {"keep": M ^ (0xF << target_shift), "source": source_shift, "target": target_shift}


def _select_mcrxr(word: int) -> Chosen:
    target_shift = 28 - 4 * fields.crfd(word)
    return _MOVE_XER_TO_CR, {"keep": M ^ (0xF << target_shift), "target": target_shift}


def _field_mask(fxm: int) -> int:
    """FXM (bit 0x80 = CR0) expanded to a CR mask, a nibble per selected field."""
    return sum(0xF << (4 * field) for field in range(8) if fxm & (1 << field))


def _is_one_field(fxm: int) -> bool:
    return fxm != 0 and fxm & (fxm - 1) == 0


_MOVE_FROM_CR = _form("move_from_cr", "gpr[{rd}] = cpu.cr")
_MOVE_FROM_CR_FIELD = _form("move_from_cr_field", "gpr[{rd}] = cpu.cr & {mask}")
_MOVE_TO_CR = _form("move_to_cr", "cpu.cr = (cpu.cr & {keep}) | (gpr[{rs}] & {mask})")


def _select_mfcr(word: int) -> Chosen:
    rd = fields.rd(word)
    if not fields.one_field(word):
        return _MOVE_FROM_CR, {"rd": rd}
    if not _is_one_field(fields.fxm(word)):   # an mfocrf naming several fields: no operation
        return NO_OPERATION, {}
    return _MOVE_FROM_CR_FIELD, {"rd": rd, "mask": _field_mask(fields.fxm(word))}


def _select_mtcrf(word: int) -> Chosen:
    fxm = fields.fxm(word)
    if fields.one_field(word) and not _is_one_field(fxm):   # an mtocrf naming several fields
        return NO_OPERATION, {}
    mask = _field_mask(fxm)
    return _MOVE_TO_CR, {"rs": fields.rs(word), "keep": M ^ mask, "mask": mask}


_INTEGER_SELECT_ZERO = _form("integer_select_zero", "gpr[{rd}] = 0 if cpu.cr & {bit} else gpr[{rb}]")
_INTEGER_SELECT = _form("integer_select", "gpr[{rd}] = gpr[{ra}] if cpu.cr & {bit} else gpr[{rb}]")


def _select_isel(word: int) -> Chosen:
    ra = fields.ra(word)
    form = _INTEGER_SELECT if ra else _INTEGER_SELECT_ZERO
    return form, {"rd": fields.rd(word), "ra": ra, "rb": fields.rb(word), "bit": SIGN >> fields.bc(word)}


# --------------------------------------------------------------------------- traps (handler only)

def _trap_builder(immediate: bool) -> Callable[[int], Handler]:
    def build(word: int) -> Handler:
        to, ra, rb = fields.to(word), fields.ra(word), fields.rb(word)
        constant = fields.simm(word) & M
        if to == 0:
            return _next
        if to == 31:   # `trap`: unconditional whatever the operands
            def trap_always(cpu: HandlerCpu, pc: int) -> int:
                cpu.trap(pc)
                return (pc + 4) & M
            return trap_always

        def trap_conditional(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            a = gpr[ra]
            b = constant if immediate else gpr[rb]
            signed_a, signed_b = a ^ SIGN, b ^ SIGN
            if ((to & 0x10 and signed_a < signed_b) or (to & 0x08 and signed_a > signed_b)
                    or (to & 0x04 and a == b) or (to & 0x02 and a < b) or (to & 0x01 and a > b)):
                cpu.trap(pc)
            return (pc + 4) & M
        return trap_conditional
    return build


# --------------------------------------------------------------------------- branches

def _branch_form(absolute: bool, link: bool) -> Semantics:
    lines = ["cpu.lr = {next}"] if link else []
    lines.append("return {target}" if absolute else f"return ({{pc}} + {{offset}}) & {M}")
    return _form("branch", *lines)


_BRANCH = {(absolute, link): _branch_form(absolute, link)
           for absolute in (False, True) for link in (False, True)}


def _select_b(word: int) -> Chosen:
    offset = fields.branch_offset(word)
    return _BRANCH[fields.aa(word), fields.lk(word)], {"target": offset & M, "offset": offset}


# Where bc/bclr/bcctr go when taken: a constant expression, or a register read before LR is written.
_BRANCH_TARGETS = {"relative": f"(({{pc}} + {{displacement}}) & {M})", "absolute": "({target})",
                   "lr": "cpu.lr & 0xFFFFFFFC", "ctr": "cpu.ctr & 0xFFFFFFFC"}


def _conditional_branch(target: str, bo: int, link: bool) -> Semantics:
    """bc/bclr/bcctr with branch options ``bo`` (the prediction hint bit left out)."""
    decrements, on_zero, tests_cr, wanted = not bo & 0x04, bool(bo & 0x02), not bo & 0x10, bool(bo & 0x08)
    lines = []
    if not target.startswith("("):
        lines.append(f"t = {target}")   # read before bclrl overwrites LR
        target = "t"
    if link:
        lines.append("cpu.lr = {next}")
    conditions = []
    if decrements:
        lines.append(f"n = cpu.ctr = (cpu.ctr - 1) & {M}")
        conditions.append("n == 0" if on_zero else "n != 0")
    if tests_cr:
        conditions.append("cpu.cr & {bit}" if wanted else "not cpu.cr & {bit}")
    if conditions:
        lines += [f"if {' and '.join(conditions)}:", f"    return {target}", "return {next}"]
    else:
        lines.append(f"return {target}")
    return _form("branch_conditional", *lines)


_CONDITIONAL_BRANCH = {(kind, bo, link): _conditional_branch(target, bo, link)
                       for kind, target in _BRANCH_TARGETS.items() for bo in range(0, 32, 2)
                       for link in (False, True)}


def _select_bc(word: int) -> Chosen:
    displacement = fields.branch_displacement(word)
    kind = "absolute" if fields.aa(word) else "relative"
    return _CONDITIONAL_BRANCH[kind, fields.bo(word) & 0x1E, fields.lk(word)], \
        {"target": displacement & M, "displacement": displacement, "bit": SIGN >> fields.bi(word)}


def _select_bclr(word: int) -> Chosen:
    form = _CONDITIONAL_BRANCH["lr", fields.bo(word) & 0x1E, fields.lk(word)]
    return form, {"bit": SIGN >> fields.bi(word)}


def _select_bcctr(word: int) -> Chosen | None:
    bo = fields.bo(word)
    if not bo & 0x04:   # "decrement CTR and branch to CTR" is an invalid form
        return None
    return _CONDITIONAL_BRANCH["ctr", bo & 0x1E, fields.lk(word)], {"bit": SIGN >> fields.bi(word)}


# --------------------------------------------------------------------------- loads and stores

# kind -> (macro, the line that turns the loaded v into the register value).
_LOADS = {"byte": ("LOAD8", ""), "half": ("LOAD16", ""),
          "half_algebraic": ("LOAD16", f"v = ((v ^ 0x8000) - 0x8000) & {M}"),
          "half_reversed": ("LOAD16", "v = ((v & 0xFF) << 8) | (v >> 8)"),
          "word": ("LOAD32", ""),
          "word_reversed": ("LOAD32", "v = int.from_bytes(v.to_bytes(4, 'big'), 'little')")}
# kind -> (macro, the stored value as an expression over rS).
_STORES = {"byte": ("STORE8", "gpr[{rs}] & 0xFF"), "half": ("STORE16", "gpr[{rs}] & 0xFFFF"),
           "half_reversed": ("STORE16", "((gpr[{rs}] & 0xFF) << 8) | ((gpr[{rs}] >> 8) & 0xFF)"),
           "word": ("STORE32", "gpr[{rs}]"),
           "word_reversed": ("STORE32", "int.from_bytes(gpr[{rs}].to_bytes(4, 'big'), 'little')")}


def _address(indexed: bool, ra_is_zero: bool) -> str:
    """The line computing ``ea`` (rA=0 reads as 0)."""
    if indexed:
        return "ea = gpr[{rb}]" if ra_is_zero else f"ea = (gpr[{{ra}}] + gpr[{{rb}}]) & {M}"
    return "ea = {address}" if ra_is_zero else f"ea = (gpr[{{ra}}] + {{displacement}}) & {M}"


def _memory_values(word: int) -> dict[str, int]:
    displacement = fields.simm(word)
    return {"rd": fields.rd(word), "ra": fields.ra(word), "rb": fields.rb(word),
            "displacement": displacement, "address": displacement & M}


def _load_selector(kind: str, update: bool, indexed: bool) -> Selector:
    macro, extend = _LOADS[kind]
    forms = tuple(_form("load", _address(indexed, ra_is_zero), f"v = {macro}(ea)",
                        *((extend,) if extend else ()), *(("gpr[{ra}] = ea",) if update else ()),
                        "gpr[{rd}] = v")
                  for ra_is_zero in (False, True))   # [rA = 0]

    def select(word: int) -> Chosen | None:
        rd, ra = fields.rd(word), fields.ra(word)
        if update and (ra == 0 or ra == rd):
            return None
        return forms[ra == 0], _memory_values(word)
    return select


def _store_selector(kind: str, update: bool, indexed: bool) -> Selector:
    macro, value = _STORES[kind]
    # stwu rS=rA stores the old rA, as the architecture says: the value is read before the update.
    forms = tuple(_form("store", _address(indexed, ra_is_zero), f"v = {value}", f"{macro}(ea, v)",
                        *(("gpr[{ra}] = ea",) if update else ()))
                  for ra_is_zero in (False, True))   # [rA = 0]

    def select(word: int) -> Chosen | None:
        ra = fields.ra(word)
        if update and ra == 0:
            return None
        values = _memory_values(word)
        values["rs"] = values["rd"]
        return forms[ra == 0], values
    return select


# lmw/stmw/lwarx/stwcx. (handler only)

def _check_word_aligned(ea: int, is_store: bool) -> None:
    if ea & 3:
        raise Interrupt(IVOR_ALIGNMENT, esr=ESR_ST if is_store else 0, dear=ea)


def _multiple_selector(is_load: bool) -> Selector:
    """lmw/stmw: rD/rS..r31 from/to consecutive words at EA (rA=0 reads as 0). ``load_words`` and
    ``store_words`` raise the alignment interrupt of an EA that is not word aligned."""
    if is_load:
        lines: tuple[str, ...] = ("v = LOADWORDS(ea, {count})", "gpr[{rd}:] = v")
    else:
        lines = ("STOREWORDS(ea, gpr[{rd}:])",)
    forms = tuple(_form("load_multiple" if is_load else "store_multiple", _address(False, ra_is_zero), *lines)
                  for ra_is_zero in (False, True))   # [rA = 0]

    def select(word: int) -> Chosen:
        values = _memory_values(word)
        values["count"] = 32 - values["rd"]
        return forms[values["ra"] == 0], values
    return select


def _build_lwarx(word: int) -> Handler:
    rd, ra, rb = fields.rd(word), fields.ra(word), fields.rb(word)

    def load_and_reserve(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        ea = ((gpr[ra] if ra else 0) + gpr[rb]) & M
        _check_word_aligned(ea, False)
        value = cpu.load32(ea)
        cpu.reservation = ea
        gpr[rd] = value
        return (pc + 4) & M
    return load_and_reserve


def _build_stwcx(word: int) -> Handler:
    rs, ra, rb = fields.rs(word), fields.ra(word), fields.rb(word)

    def store_conditional(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        ea = ((gpr[ra] if ra else 0) + gpr[rb]) & M
        _check_word_aligned(ea, True)
        stored = cpu.reservation == ea
        if stored:
            cpu.store32(ea, gpr[rs])
        cpu.reservation = None
        so = (cpu.xer >> 3) & CR0_SO
        cpu.cr = (cpu.cr & _CR0_CLEAR) | so | (CR0_EQ if stored else 0)
        return (pc + 4) & M
    return store_conditional


# --------------------------------------------------------------------------- the table

def _spec(mnemonic: str, primary: int, xo: int | None, xo_bits: int, select: Selector,
          cycles: int) -> InstructionSpec:
    return InstructionSpec(mnemonic, primary, xo, xo_bits, handler_builder(select), cycles,
                           emit=template_emitter(select))


def _d(mnemonic: str, primary: int, select: Selector, cycles: int = CYCLES_SIMPLE) -> InstructionSpec:
    return _spec(mnemonic, primary, None, 0, select, cycles)


def _x(mnemonic: str, primary: int, xo: int, select: Selector,
       cycles: int = CYCLES_SIMPLE) -> InstructionSpec:
    return _spec(mnemonic, primary, xo, 10, select, cycles)


def _xo(mnemonic: str, xo: int, select: Selector, cycles: int = CYCLES_SIMPLE) -> InstructionSpec:
    return _spec(mnemonic, 31, xo, 9, select, cycles)


def _handler_only(mnemonic: str, primary: int, xo: int | None, build: Callable[[int], Handler],
                  cycles: int = CYCLES_SIMPLE) -> InstructionSpec:
    return InstructionSpec(mnemonic, primary, xo, 0 if xo is None else 10, build, cycles)


_LOAD_STORE_D_FORMS = [
    # mnemonic, primary, kind, update, is_load
    ("lwz", 32, "word", False, True), ("lwzu", 33, "word", True, True),
    ("lbz", 34, "byte", False, True), ("lbzu", 35, "byte", True, True),
    ("stw", 36, "word", False, False), ("stwu", 37, "word", True, False),
    ("stb", 38, "byte", False, False), ("stbu", 39, "byte", True, False),
    ("lhz", 40, "half", False, True), ("lhzu", 41, "half", True, True),
    ("lha", 42, "half_algebraic", False, True), ("lhau", 43, "half_algebraic", True, True),
    ("sth", 44, "half", False, False), ("sthu", 45, "half", True, False),
]

_LOAD_STORE_X_FORMS = [
    # mnemonic, xo, kind, update, is_load
    ("lwzx", 23, "word", False, True), ("lwzux", 55, "word", True, True),
    ("lbzx", 87, "byte", False, True), ("lbzux", 119, "byte", True, True),
    ("stwx", 151, "word", False, False), ("stwux", 183, "word", True, False),
    ("stbx", 215, "byte", False, False), ("stbux", 247, "byte", True, False),
    ("lhzx", 279, "half", False, True), ("lhzux", 311, "half", True, True),
    ("lhax", 343, "half_algebraic", False, True), ("lhaux", 375, "half_algebraic", True, True),
    ("sthx", 407, "half", False, False), ("sthux", 439, "half", True, False),
    ("lwbrx", 534, "word_reversed", False, True), ("lhbrx", 790, "half_reversed", False, True),
    ("stwbrx", 662, "word_reversed", False, False), ("sthbrx", 918, "half_reversed", False, False),
]

_SUMS = [
    # mnemonic, xo, invert rA, second operand, carry in, writes CA
    ("add", 266, False, _RB, 0, False), ("addc", 10, False, _RB, 0, True),
    ("adde", 138, False, _RB, _CARRY_IN, True), ("addme", 234, False, _MINUS_ONE, _CARRY_IN, True),
    ("addze", 202, False, _ZERO, _CARRY_IN, True),
    ("subf", 40, True, _RB, 1, False), ("subfc", 8, True, _RB, 1, True),
    ("subfe", 136, True, _RB, _CARRY_IN, True), ("subfme", 232, True, _MINUS_ONE, _CARRY_IN, True),
    ("subfze", 200, True, _ZERO, _CARRY_IN, True), ("neg", 104, True, _ZERO, 1, False),
]

# X-form logical operations: rA = the expression over rS and rB. Shift amounts are rB & 63; 32..63
# give 0, which the mask/width already produce.
_LOGICAL = [
    ("and", 28, "gpr[{rs}] & gpr[{rb}]"), ("andc", 60, f"gpr[{{rs}}] & (gpr[{{rb}}] ^ {M})"),
    ("eqv", 284, f"gpr[{{rs}}] ^ gpr[{{rb}}] ^ {M}"), ("nand", 476, f"(gpr[{{rs}}] & gpr[{{rb}}]) ^ {M}"),
    ("nor", 124, f"(gpr[{{rs}}] | gpr[{{rb}}]) ^ {M}"), ("orc", 412, f"gpr[{{rs}}] | (gpr[{{rb}}] ^ {M})"),
    ("xor", 316, "gpr[{rs}] ^ gpr[{rb}]"),
    ("slw", 24, f"(gpr[{{rs}}] << (gpr[{{rb}}] & 63)) & {M}"), ("srw", 536, "gpr[{rs}] >> (gpr[{rb}] & 63)"),
]

_EXTEND_HALF = f"(((gpr[{{rs}}] & 0xFFFF) ^ 0x8000) - 0x8000) & {M}"
_EXTEND_BYTE = f"(((gpr[{{rs}}] & 0xFF) ^ 0x80) - 0x80) & {M}"

SPECS: list[InstructionSpec] = [
    _handler_only("twi", 3, None, _trap_builder(True)),
    _d("mulli", 7, _select_mulli, CYCLES_MULTIPLY),
    _d("subfic", 8, _select_subfic),
    _d("cmpli", 10, _compare_selector(False, True)),
    _d("cmpi", 11, _compare_selector(True, True)),
    _d("addic", 12, _select_addic),
    _d("addic.", 13, _select_addic),
    _d("addi", 14, _select_addi),
    _d("addis", 15, _select_addi),
    _d("bc", 16, _select_bc),
    _d("b", 18, _select_b),
    _d("rlwimi", 20, _select_rotate),
    _d("rlwinm", 21, _select_rotate),
    _d("rlwnm", 23, _select_rotate),
    _d("ori", 24, _select_logical_immediate),
    _d("oris", 25, _select_logical_immediate),
    _d("xori", 26, _select_logical_immediate),
    _d("xoris", 27, _select_logical_immediate),
    _d("andi.", 28, _select_logical_immediate),
    _d("andis.", 29, _select_logical_immediate),
    _d("lmw", 46, _multiple_selector(True), CYCLES_LOAD),
    _d("stmw", 47, _multiple_selector(False)),
    *(_d(name, primary, _load_selector(kind, update, False), CYCLES_LOAD) if is_load else
      _d(name, primary, _store_selector(kind, update, False))
      for name, primary, kind, update, is_load in _LOAD_STORE_D_FORMS),
    _x("mcrf", 19, 0, _select_mcrf),
    _x("bclr", 19, 16, _select_bclr),
    _x("bcctr", 19, 528, _select_bcctr),
    *(_x(name, 19, xo, _select_cr_logical) for name, xo in (
        ("crnor", 33), ("crandc", 129), ("crxor", 193), ("crnand", 225), ("crand", 257),
        ("creqv", 289), ("crorc", 417), ("cror", 449))),
    _x("cmp", 31, 0, _compare_selector(True, False)),
    _handler_only("tw", 31, 4, _trap_builder(False)),
    _x("mfcr", 31, 19, _select_mfcr),
    _handler_only("lwarx", 31, 20, _build_lwarx, CYCLES_LOAD),
    _x("cntlzw", 31, 26, _unary_selector("count_leading_zeros", "32 - gpr[{rs}].bit_length()")),
    _x("cmpl", 31, 32, _compare_selector(False, False)),
    _x("mtcrf", 31, 144, _select_mtcrf),
    _handler_only("stwcx.", 31, 150, _build_stwcx),
    _x("or", 31, 444, _select_or),
    _x("mcrxr", 31, 512, _select_mcrxr),
    _x("sraw", 31, 792, _select_sraw),
    _x("srawi", 31, 824, _select_sraw),
    _x("extsh", 31, 922, _unary_selector("extend_half", _EXTEND_HALF)),
    _x("extsb", 31, 954, _unary_selector("extend_byte", _EXTEND_BYTE)),
    *(_x(name, 31, xo, _logical_selector(name, expression)) for name, xo, expression in _LOGICAL),
    *(_x(name, 31, xo, _load_selector(kind, update, True), CYCLES_LOAD) if is_load else
      _x(name, 31, xo, _store_selector(kind, update, True))
      for name, xo, kind, update, is_load in _LOAD_STORE_X_FORMS),
    *(_xo(name, xo, _sum_selector(invert, second, carry, writes_ca))
      for name, xo, invert, second, carry, writes_ca in _SUMS),
    _xo("mulhwu", 11, _select_mulhw, CYCLES_MULTIPLY),
    _xo("mulhw", 75, _select_mulhw, CYCLES_MULTIPLY),
    _xo("mullw", 235, _select_mullw, CYCLES_MULTIPLY),
    _xo("divwu", 459, _select_divw, CYCLES_DIVIDE),
    _xo("divw", 491, _select_divw, CYCLES_DIVIDE),
    _spec("isel", 31, 15, 5, _select_isel, CYCLES_SIMPLE),
]

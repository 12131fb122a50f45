"""Handlers for the e500 user-level integer ISA (reference e500-core.md section 4.3).

Arithmetic (with the OE/Rc forms and XER[SO/OV/CA]), logical, rotate/shift, compare, CR logical and
CR moves, branches, every integer load/store form, lwarx/stwcx., isel and tw/twi. Each spec's
``build(word)`` pre-extracts the fields of one instruction word and returns a closure
``handler(cpu, pc) -> next pc``; the closures read and write the registers directly and do all
register writes after the last memory access that may fault.

Where the architecture leaves a result undefined, the handlers do what QEMU (and therefore Unicorn)
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

Imports: the standard library, :mod:`emulator.exceptions` and :mod:`emulator.isa`.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.exceptions import ESR_ST, IVOR_ALIGNMENT, Interrupt
from emulator.isa import Handler, HandlerCpu, InstructionSpec, illegal

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


def _simm16(word: int) -> int:
    low = word & 0xFFFF
    return low - 0x10000 if low & 0x8000 else low


def _signed(value: int) -> int:
    return value - 0x100000000 if value & SIGN else value


def _set_cr0(cpu: HandlerCpu, result: int) -> None:
    """CR0 from a 32-bit result (signed compare with 0) and the current XER[SO]."""
    if result & SIGN:
        bits = CR0_LT
    elif result:
        bits = CR0_GT
    else:
        bits = CR0_EQ
    cpu.cr = (cpu.cr & _CR0_CLEAR) | bits | ((cpu.xer >> 3) & CR0_SO)


def _next(cpu: HandlerCpu, pc: int) -> int:
    return (pc + 4) & M


# --------------------------------------------------------------------------- arithmetic

def _build_addi(word: int) -> Handler:
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word)
    if word >> 26 == 15:
        imm <<= 16
    if ra == 0:
        constant = imm & M

        def load_immediate(cpu: HandlerCpu, pc: int) -> int:
            cpu.gpr[rd] = constant
            return (pc + 4) & M
        return load_immediate

    def add_immediate(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        gpr[rd] = (gpr[ra] + imm) & M
        return (pc + 4) & M
    return add_immediate


def _build_addic(word: int) -> Handler:
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word) & M
    record = word >> 26 == 13

    def add_immediate_carrying(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        total = gpr[ra] + imm
        result = total & M
        cpu.xer = (cpu.xer & _NOT_CA) | ((total >> 32) << 29)
        gpr[rd] = result
        if record:
            _set_cr0(cpu, result)
        return (pc + 4) & M
    return add_immediate_carrying


def _build_subfic(word: int) -> Handler:
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word) & M

    def subtract_from_immediate(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        total = (gpr[ra] ^ M) + imm + 1
        cpu.xer = (cpu.xer & _NOT_CA) | ((total >> 32) << 29)
        gpr[rd] = total & M
        return (pc + 4) & M
    return subtract_from_immediate


def _build_mulli(word: int) -> Handler:
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word)

    def multiply_immediate(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        gpr[rd] = (_signed(gpr[ra]) * imm) & M
        return (pc + 4) & M
    return multiply_immediate


# The add/subtract family is rD = (rA or ~rA) + (rB | 0 | -1) + (0 | 1 | CA):
# (invert rA, second operand, carry in, writes CA).
_RB, _ZERO, _MINUS_ONE = "rb", "zero", "minus_one"
_CARRY_IN = -1


def _sum_builder(invert_a: bool, second: str, carry_in: int, writes_ca: bool) -> Callable[[int], Handler]:
    inversion = M if invert_a else 0
    second_constant = M if second == _MINUS_ONE else 0
    uses_rb = second == _RB
    carry_from_xer = carry_in == _CARRY_IN

    def build(word: int) -> Handler:
        rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        overflow_enable, record = bool(word & 0x400), bool(word & 1)
        if not (overflow_enable or record or writes_ca or carry_from_xer) and uses_rb:
            if invert_a:
                def subtract(cpu: HandlerCpu, pc: int) -> int:
                    gpr = cpu.gpr
                    gpr[rd] = (gpr[rb] - gpr[ra]) & M
                    return (pc + 4) & M
                return subtract

            def add(cpu: HandlerCpu, pc: int) -> int:
                gpr = cpu.gpr
                gpr[rd] = (gpr[ra] + gpr[rb]) & M
                return (pc + 4) & M
            return add

        def add_extended(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            xer = cpu.xer
            x = gpr[ra] ^ inversion
            y = gpr[rb] if uses_rb else second_constant
            total = x + y + ((xer >> 29) & 1 if carry_from_xer else carry_in)
            result = total & M
            if writes_ca:
                xer = (xer & _NOT_CA) | ((total >> 32) << 29)
            if overflow_enable:
                # Signed overflow: both addends have one sign and the result the other.
                xer = xer | XER_SO_OV if (x ^ result) & (y ^ result) & SIGN else xer & _NOT_OV
            cpu.xer = xer
            gpr[rd] = result
            if record:
                _set_cr0(cpu, result)
            return (pc + 4) & M
        return add_extended
    return build


def _set_overflow(cpu: HandlerCpu, overflow: bool) -> None:
    cpu.xer = cpu.xer | XER_SO_OV if overflow else cpu.xer & _NOT_OV


def _build_mullw(word: int) -> Handler:
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    overflow_enable, record = bool(word & 0x400), bool(word & 1)
    if not (overflow_enable or record):
        def multiply_low(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            gpr[rd] = (gpr[ra] * gpr[rb]) & M   # the low word does not depend on signedness
            return (pc + 4) & M
        return multiply_low

    def multiply_low_recorded(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        product = _signed(gpr[ra]) * _signed(gpr[rb])
        result = product & M
        if overflow_enable:
            _set_overflow(cpu, not -0x80000000 <= product <= 0x7FFFFFFF)
        gpr[rd] = result
        if record:
            _set_cr0(cpu, result)
        return (pc + 4) & M
    return multiply_low_recorded


def _build_mulhw(word: int) -> Handler:
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    if word & 0x400:
        return illegal
    record = bool(word & 1)
    if (word >> 1) & 0x1FF == 75:
        def multiply_high_signed(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            result = gpr[rd] = ((_signed(gpr[ra]) * _signed(gpr[rb])) >> 32) & M
            if record:
                _set_cr0(cpu, result)
            return (pc + 4) & M
        return multiply_high_signed

    def multiply_high_unsigned(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        result = gpr[rd] = (gpr[ra] * gpr[rb]) >> 32
        if record:
            _set_cr0(cpu, result)
        return (pc + 4) & M
    return multiply_high_unsigned


def _build_divw(word: int) -> Handler:
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    overflow_enable, record = bool(word & 0x400), bool(word & 1)
    is_signed = (word >> 1) & 0x1FF == 491

    def divide(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        dividend, divisor = gpr[ra], gpr[rb]
        if divisor == 0 or (is_signed and dividend == SIGN and divisor == M):
            result, invalid = dividend, True   # QEMU: divides by 1 instead (architecturally undefined)
        elif is_signed:
            quotient = abs(_signed(dividend)) // abs(_signed(divisor))
            result = (-quotient if (dividend ^ divisor) & SIGN else quotient) & M
            invalid = False
        else:
            result, invalid = dividend // divisor, False
        if overflow_enable:
            _set_overflow(cpu, invalid)
        gpr[rd] = result
        if record:
            _set_cr0(cpu, result)
        return (pc + 4) & M
    return divide


# --------------------------------------------------------------------------- logical, shift, rotate

def _build_logical_immediate(word: int) -> Handler:
    rs, ra, imm = (word >> 21) & 31, (word >> 16) & 31, word & 0xFFFF
    primary = word >> 26
    if primary in (25, 27, 29):
        imm <<= 16
    if primary in (24, 25):
        if imm == 0 and rs == ra:
            return _next   # nop (ori 0,0,0) and friends

        def or_immediate(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            gpr[ra] = gpr[rs] | imm
            return (pc + 4) & M
        return or_immediate
    if primary in (26, 27):
        def xor_immediate(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            gpr[ra] = gpr[rs] ^ imm
            return (pc + 4) & M
        return xor_immediate

    def and_immediate_recorded(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        result = gpr[ra] = gpr[rs] & imm
        _set_cr0(cpu, result)
        return (pc + 4) & M
    return and_immediate_recorded


def _logical_builder(operation: Callable[[int, int], int]) -> Callable[[int], Handler]:
    """X-form rA = operation(rS, rB), with CR0 when Rc=1 (results must already be 32-bit)."""

    def build(word: int) -> Handler:
        rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        record = bool(word & 1)

        def logical(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            result = gpr[ra] = operation(gpr[rs], gpr[rb])
            if record:
                _set_cr0(cpu, result)
            return (pc + 4) & M
        return logical
    return build


def _build_or(word: int) -> Handler:
    rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    if word & 1:
        return _logical_builder(int.__or__)(word)
    if rs == rb:
        def move_register(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            gpr[ra] = gpr[rs]
            return (pc + 4) & M
        return move_register

    def or_registers(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        gpr[ra] = gpr[rs] | gpr[rb]
        return (pc + 4) & M
    return or_registers


def _unary_builder(operation: Callable[[int], int]) -> Callable[[int], Handler]:
    """X-form rA = operation(rS) (cntlzw, extsb, extsh), with CR0 when Rc=1."""

    def build(word: int) -> Handler:
        rs, ra = (word >> 21) & 31, (word >> 16) & 31
        record = bool(word & 1)

        def unary(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            result = gpr[ra] = operation(gpr[rs])
            if record:
                _set_cr0(cpu, result)
            return (pc + 4) & M
        return unary
    return build


def _shift_right_algebraic(cpu: HandlerCpu, value: int, amount: int) -> int:
    """sraw/srawi result; CA = negative source with 1-bits shifted out."""
    signed_value = _signed(value)
    shifted = signed_value >> amount
    carry = signed_value < 0 and (shifted << amount) != signed_value
    cpu.xer = (cpu.xer | XER_CA) if carry else (cpu.xer & _NOT_CA)
    return shifted & M


def _build_sraw(word: int) -> Handler:
    rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    record = bool(word & 1)
    immediate = (word >> 1) & 0x3FF == 824
    fixed_amount = rb

    def shift_right_algebraic(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        amount = fixed_amount if immediate else gpr[rb] & 63   # 32..63 shift in only sign bits
        result = gpr[ra] = _shift_right_algebraic(cpu, gpr[rs], amount)
        if record:
            _set_cr0(cpu, result)
        return (pc + 4) & M
    return shift_right_algebraic


def rotate_mask(mask_begin: int, mask_end: int) -> int:
    """The M-form mask: ones from bit mask_begin to bit mask_end (bit 0 = MSB), wrapping around."""
    from_begin = M >> mask_begin
    to_end = (M << (31 - mask_end)) & M
    return from_begin & to_end if mask_begin <= mask_end else from_begin | to_end


def _build_rotate(word: int) -> Handler:
    rs, ra, shift_field = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    mask = rotate_mask((word >> 6) & 31, (word >> 1) & 31)
    record = bool(word & 1)
    primary = word >> 26
    if primary == 23:   # rlwnm: shift amount from rB
        def rotate_by_register(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            value, amount = gpr[rs], gpr[shift_field] & 31
            result = gpr[ra] = ((value << amount) | (value >> (32 - amount))) & mask
            if record:
                _set_cr0(cpu, result)
            return (pc + 4) & M
        return rotate_by_register
    shift, back = shift_field, 32 - shift_field
    if primary == 20:   # rlwimi: insert under mask
        keep = M ^ mask

        def rotate_insert(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            value = gpr[rs]
            result = gpr[ra] = (((value << shift) | (value >> back)) & mask) | (gpr[ra] & keep)
            if record:
                _set_cr0(cpu, result)
            return (pc + 4) & M
        return rotate_insert
    if not record:
        def rotate_and_mask(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            value = gpr[rs]
            gpr[ra] = ((value << shift) | (value >> back)) & mask
            return (pc + 4) & M
        return rotate_and_mask

    def rotate_and_mask_recorded(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        value = gpr[rs]
        result = gpr[ra] = ((value << shift) | (value >> back)) & mask
        _set_cr0(cpu, result)
        return (pc + 4) & M
    return rotate_and_mask_recorded


def _extend_byte(value: int) -> int:
    return (((value & 0xFF) ^ 0x80) - 0x80) & M


def _extend_half(value: int) -> int:
    return (((value & 0xFFFF) ^ 0x8000) - 0x8000) & M


def _count_leading_zeros(value: int) -> int:
    return 32 - value.bit_length()


# --------------------------------------------------------------------------- compare, CR, XER

def _compare_builder(signed: bool, immediate: bool) -> Callable[[int], Handler]:
    """cmp/cmpl/cmpi/cmpli into CR field crfD; flipping the sign bit turns signed into unsigned order."""

    def build(word: int) -> Handler:
        if word & 0x00200000:   # L=1: 64-bit compare, not on 32-bit e500
            return illegal
        shift = 28 - 4 * ((word >> 23) & 7)
        keep = M ^ (0xF << shift)
        ra, rb = (word >> 16) & 31, (word >> 11) & 31
        bias = SIGN if signed else 0
        constant = ((_simm16(word) & M) if signed else word & 0xFFFF) ^ bias

        def compare(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            left = gpr[ra] ^ bias
            right = constant if immediate else gpr[rb] ^ bias
            bits = 8 if left < right else 4 if left > right else 2
            cpu.cr = (cpu.cr & keep) | ((bits | (cpu.xer >> 31)) << shift)
            return (pc + 4) & M
        return compare
    return build


# CR logical operations on bits a and b: the handler's function and the block translator's source.
_CR_OPERATIONS: dict[int, tuple[Callable[[int, int], int], str]] = {
    257: (lambda a, b: a & b, "{a} & {b}"),                  # crand
    129: (lambda a, b: a & (b ^ 1), "{a} & ({b} ^ 1)"),      # crandc
    289: (lambda a, b: (a ^ b) ^ 1, "({a} ^ {b}) ^ 1"),      # creqv
    225: (lambda a, b: (a & b) ^ 1, "({a} & {b}) ^ 1"),      # crnand
    33: (lambda a, b: (a | b) ^ 1, "({a} | {b}) ^ 1"),       # crnor
    449: (lambda a, b: a | b, "{a} | {b}"),                  # cror
    417: (lambda a, b: a | (b ^ 1), "{a} | ({b} ^ 1)"),      # crorc
    193: (lambda a, b: a ^ b, "{a} ^ {b}"),                  # crxor
}


def _build_cr_logical(word: int) -> Handler:
    operation = _CR_OPERATIONS[(word >> 1) & 0x3FF][0]
    target_shift = 31 - ((word >> 21) & 31)
    shift_a, shift_b = 31 - ((word >> 16) & 31), 31 - ((word >> 11) & 31)
    keep = M ^ (1 << target_shift)

    def cr_logical(cpu: HandlerCpu, pc: int) -> int:
        cr = cpu.cr
        bit = operation((cr >> shift_a) & 1, (cr >> shift_b) & 1)
        cpu.cr = (cr & keep) | (bit << target_shift)
        return (pc + 4) & M
    return cr_logical


def _build_mcrf(word: int) -> Handler:
    target_shift = 28 - 4 * ((word >> 23) & 7)
    source_shift = 28 - 4 * ((word >> 18) & 7)
    keep = M ^ (0xF << target_shift)

    def move_cr_field(cpu: HandlerCpu, pc: int) -> int:
        cr = cpu.cr
        cpu.cr = (cr & keep) | (((cr >> source_shift) & 0xF) << target_shift)
        return (pc + 4) & M
    return move_cr_field


def _build_mcrxr(word: int) -> Handler:
    target_shift = 28 - 4 * ((word >> 23) & 7)
    keep = M ^ (0xF << target_shift)

    def move_xer_to_cr(cpu: HandlerCpu, pc: int) -> int:
        xer = cpu.xer
        cpu.cr = (cpu.cr & keep) | ((xer >> 28) << target_shift)
        cpu.xer = xer & 0x0FFFFFFF
        return (pc + 4) & M
    return move_xer_to_cr


def _field_mask(fxm: int) -> int:
    """FXM (bit 0x80 = CR0) expanded to a CR mask, a nibble per selected field."""
    return sum(0xF << (4 * field) for field in range(8) if fxm & (1 << field))


def _is_one_field(fxm: int) -> bool:
    return fxm != 0 and fxm & (fxm - 1) == 0


def _build_mfcr(word: int) -> Handler:
    rd = (word >> 21) & 31
    mask = M
    if word & 0x00100000:   # mfocrf
        fxm = (word >> 12) & 0xFF
        if not _is_one_field(fxm):
            return _next
        mask = _field_mask(fxm)

    def move_from_cr(cpu: HandlerCpu, pc: int) -> int:
        cpu.gpr[rd] = cpu.cr & mask
        return (pc + 4) & M
    return move_from_cr


def _build_mtcrf(word: int) -> Handler:
    rs, fxm = (word >> 21) & 31, (word >> 12) & 0xFF
    if word & 0x00100000 and not _is_one_field(fxm):   # mtocrf naming several fields
        return _next
    mask = _field_mask(fxm)
    keep = M ^ mask

    def move_to_cr(cpu: HandlerCpu, pc: int) -> int:
        cpu.cr = (cpu.cr & keep) | (cpu.gpr[rs] & mask)
        return (pc + 4) & M
    return move_to_cr


def _build_isel(word: int) -> Handler:
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    condition_bit = SIGN >> ((word >> 6) & 31)

    def integer_select(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        if cpu.cr & condition_bit:
            gpr[rd] = gpr[ra] if ra else 0
        else:
            gpr[rd] = gpr[rb]
        return (pc + 4) & M
    return integer_select


# --------------------------------------------------------------------------- traps

def _trap_builder(immediate: bool) -> Callable[[int], Handler]:
    def build(word: int) -> Handler:
        to, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        constant = _simm16(word) & M
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

def _build_b(word: int) -> Handler:
    offset = (word & 0x03FFFFFC) - (0x04000000 if word & 0x02000000 else 0)
    link, absolute = bool(word & 1), bool(word & 2)
    if absolute:
        target = offset & M

        def branch_absolute(cpu: HandlerCpu, pc: int) -> int:
            if link:
                cpu.lr = (pc + 4) & M
            return target
        return branch_absolute
    if not link:
        def branch(cpu: HandlerCpu, pc: int) -> int:
            return (pc + offset) & M
        return branch

    def branch_and_link(cpu: HandlerCpu, pc: int) -> int:
        cpu.lr = (pc + 4) & M
        return (pc + offset) & M
    return branch_and_link


def _bc_fields(word: int) -> tuple[bool, bool, bool, int, int, bool]:
    """(decrements CTR, branch when CTR reaches 0, tests CR, CR bit mask, wanted CR bit, link)."""
    bo, bi = (word >> 21) & 31, (word >> 16) & 31
    condition_bit = SIGN >> bi
    return (not bo & 0x04, bool(bo & 0x02), not bo & 0x10, condition_bit,
            condition_bit if bo & 0x08 else 0, bool(word & 1))


def _build_bc(word: int) -> Handler:
    decrements, on_zero, tests_cr, condition_bit, wanted, link = _bc_fields(word)
    displacement = _simm16(word & ~3)
    absolute = bool(word & 2)

    def branch_conditional(cpu: HandlerCpu, pc: int) -> int:
        if link:
            cpu.lr = (pc + 4) & M
        if decrements:
            ctr = cpu.ctr = (cpu.ctr - 1) & M
            if (ctr == 0) != on_zero:
                return (pc + 4) & M
        if tests_cr and cpu.cr & condition_bit != wanted:
            return (pc + 4) & M
        return displacement & M if absolute else (pc + displacement) & M
    return branch_conditional


def _build_bclr(word: int) -> Handler:
    decrements, on_zero, tests_cr, condition_bit, wanted, link = _bc_fields(word)
    if not (decrements or tests_cr or link):
        def branch_to_lr(cpu: HandlerCpu, pc: int) -> int:
            return cpu.lr & 0xFFFFFFFC
        return branch_to_lr

    def branch_conditional_to_lr(cpu: HandlerCpu, pc: int) -> int:
        target = cpu.lr & 0xFFFFFFFC   # read before bclrl overwrites LR
        if link:
            cpu.lr = (pc + 4) & M
        if decrements:
            ctr = cpu.ctr = (cpu.ctr - 1) & M
            if (ctr == 0) != on_zero:
                return (pc + 4) & M
        if tests_cr and cpu.cr & condition_bit != wanted:
            return (pc + 4) & M
        return target
    return branch_conditional_to_lr


def _build_bcctr(word: int) -> Handler:
    decrements, _on_zero, tests_cr, condition_bit, wanted, link = _bc_fields(word)
    if decrements:   # "decrement CTR and branch to CTR" is an invalid form
        return illegal

    def branch_conditional_to_ctr(cpu: HandlerCpu, pc: int) -> int:
        if link:
            cpu.lr = (pc + 4) & M
        if tests_cr and cpu.cr & condition_bit != wanted:
            return (pc + 4) & M
        return cpu.ctr & 0xFFFFFFFC
    return branch_conditional_to_ctr


# --------------------------------------------------------------------------- loads and stores

def _reverse16(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


def _reverse32(value: int) -> int:
    return int.from_bytes(value.to_bytes(4, "big"), "little")


def _sign_extend16(value: int) -> int:
    return ((value ^ 0x8000) - 0x8000) & M


_LOADERS: dict[str, Callable[[HandlerCpu, int], int]] = {
    "byte": lambda cpu, ea: cpu.load8(ea),
    "half": lambda cpu, ea: cpu.load16(ea),
    "half_algebraic": lambda cpu, ea: _sign_extend16(cpu.load16(ea)),
    "half_reversed": lambda cpu, ea: _reverse16(cpu.load16(ea)),
    "word": lambda cpu, ea: cpu.load32(ea),
    "word_reversed": lambda cpu, ea: _reverse32(cpu.load32(ea)),
}

_STORERS: dict[str, Callable[[HandlerCpu, int, int], None]] = {
    "byte": lambda cpu, ea, value: cpu.store8(ea, value & 0xFF),
    "half": lambda cpu, ea, value: cpu.store16(ea, value & 0xFFFF),
    "half_reversed": lambda cpu, ea, value: cpu.store16(ea, _reverse16(value & 0xFFFF)),
    "word": lambda cpu, ea, value: cpu.store32(ea, value),
    "word_reversed": lambda cpu, ea, value: cpu.store32(ea, _reverse32(value)),
}


def _load_builder(kind: str, update: bool, indexed: bool) -> Callable[[int], Handler]:
    loader = _LOADERS[kind]

    def build(word: int) -> Handler:
        rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        if update and (ra == 0 or ra == rd):
            return illegal
        displacement = _simm16(word)
        if not (update or indexed):
            if kind == "word":   # lwz: the most frequent load, kept free of the loader call
                def load_word(cpu: HandlerCpu, pc: int) -> int:
                    gpr = cpu.gpr
                    gpr[rd] = cpu.load32(((gpr[ra] if ra else 0) + displacement) & M)
                    return (pc + 4) & M
                return load_word

            def load(cpu: HandlerCpu, pc: int) -> int:
                gpr = cpu.gpr
                gpr[rd] = loader(cpu, ((gpr[ra] if ra else 0) + displacement) & M)
                return (pc + 4) & M
            return load

        def load_indexed_or_update(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            offset = gpr[rb] if indexed else displacement
            ea = ((gpr[ra] if ra else 0) + offset) & M
            value = loader(cpu, ea)
            if update:
                gpr[ra] = ea
            gpr[rd] = value
            return (pc + 4) & M
        return load_indexed_or_update
    return build


def _store_builder(kind: str, update: bool, indexed: bool) -> Callable[[int], Handler]:
    storer = _STORERS[kind]

    def build(word: int) -> Handler:
        rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        if update and ra == 0:
            return illegal
        displacement = _simm16(word)
        if not (update or indexed) and kind == "word":
            def store_word(cpu: HandlerCpu, pc: int) -> int:
                gpr = cpu.gpr
                cpu.store32(((gpr[ra] if ra else 0) + displacement) & M, gpr[rs])
                return (pc + 4) & M
            return store_word

        def store(cpu: HandlerCpu, pc: int) -> int:
            gpr = cpu.gpr
            offset = gpr[rb] if indexed else displacement
            ea = ((gpr[ra] if ra else 0) + offset) & M
            storer(cpu, ea, gpr[rs])   # stwu rS=rA stores the old rA, as the architecture says
            if update:
                gpr[ra] = ea
            return (pc + 4) & M
        return store
    return build


def _check_word_aligned(ea: int, is_store: bool) -> None:
    if ea & 3:
        raise Interrupt(IVOR_ALIGNMENT, esr=ESR_ST if is_store else 0, dear=ea)


def _build_lmw(word: int) -> Handler:
    first, ra, displacement = (word >> 21) & 31, (word >> 16) & 31, _simm16(word)

    def load_multiple(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        ea = ((gpr[ra] if ra else 0) + displacement) & M
        _check_word_aligned(ea, False)
        values = [cpu.load32((ea + 4 * index) & M) for index in range(32 - first)]
        gpr[first:] = values
        return (pc + 4) & M
    return load_multiple


def _build_stmw(word: int) -> Handler:
    first, ra, displacement = (word >> 21) & 31, (word >> 16) & 31, _simm16(word)

    def store_multiple(cpu: HandlerCpu, pc: int) -> int:
        gpr = cpu.gpr
        ea = ((gpr[ra] if ra else 0) + displacement) & M
        _check_word_aligned(ea, True)
        for register in range(first, 32):
            cpu.store32(ea, gpr[register])
            ea = (ea + 4) & M
        return (pc + 4) & M
    return store_multiple


def _build_lwarx(word: int) -> Handler:
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31

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
    rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31

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



_Emit = Callable[[int, int], "list[str] | None"]

# --------------------------------------------------------------------------- source templates
# emit(word, pc) for the block translator (see emulator.isa.Emitter): the same semantics as the builder
# named in each docstring, written as source over the locals ``cpu`` and ``gpr``. None = call the handler.

def _cr0_line(result: str) -> str:
    return (f"cpu.cr = (cpu.cr & {_CR0_CLEAR}) | ({CR0_LT} if {result} & {SIGN} else {CR0_GT} if {result} "
            f"else {CR0_EQ}) | ((cpu.xer >> 3) & {CR0_SO})")


def _target(word: int, register: int) -> str:
    """Assignment target: also bind ``r`` for the CR0 line when the word is a record (Rc=1) form."""
    return f"r = gpr[{register}]" if word & 1 else f"gpr[{register}]"


def _emit_addi(word: int, pc: int) -> list[str] | None:
    """_build_addi."""
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word)
    if word >> 26 == 15:
        imm <<= 16
    if ra == 0:
        return [f"gpr[{rd}] = {imm & M}"]
    return [f"gpr[{rd}] = (gpr[{ra}] + {imm}) & {M}"]


def _emit_sum(invert_a: bool, second: str, carry_in: int, writes_ca: bool) -> _Emit:
    """_sum_builder: only the forms without OE, CA in or out."""
    def emit(word: int, pc: int) -> list[str] | None:
        rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        if word & 0x400 or writes_ca or carry_in == _CARRY_IN:
            return None
        if second == _RB:
            expression = f"(gpr[{rb}] - gpr[{ra}]) & {M}" if invert_a else f"(gpr[{ra}] + gpr[{rb}]) & {M}"
        elif second == _ZERO and invert_a and carry_in == 1:
            expression = f"-gpr[{ra}] & {M}"
        else:
            return None
        lines = [f"{_target(word, rd)} = {expression}"]
        if word & 1:
            lines.append(_cr0_line("r"))
        return lines
    return emit


def _carrying_sum_lines(rd: int, total: str, writes_ca: bool, record: bool) -> list[str]:
    """rD = the low word of ``total``; CA = its bit 32 when ``writes_ca``; CR0 when ``record``."""
    lines = [f"t = {total}"]
    if writes_ca:
        lines.append(f"cpu.xer = (cpu.xer & {_NOT_CA}) | ((t >> 32) << 29)")
    if record:
        return [*lines, f"r = gpr[{rd}] = t & {M}", _cr0_line("r")]
    return [*lines, f"gpr[{rd}] = t & {M}"]


def _emit_sum_carrying(invert_a: bool, second: str, carry_in: int, writes_ca: bool) -> _Emit:
    """_sum_builder: the forms with CA in or out (OE forms call the handler)."""
    def emit(word: int, pc: int) -> list[str] | None:
        rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        if word & 0x400:
            return None
        x = f"(gpr[{ra}] ^ {M})" if invert_a else f"gpr[{ra}]"
        y = {_RB: f"gpr[{rb}]", _ZERO: "0", _MINUS_ONE: str(M)}[second]
        carry = "((cpu.xer >> 29) & 1)" if carry_in == _CARRY_IN else str(carry_in)
        return _carrying_sum_lines(rd, f"{x} + {y} + {carry}", writes_ca, bool(word & 1))
    return emit


def _emit_sums(invert_a: bool, second: str, carry_in: int, writes_ca: bool) -> _Emit:
    """The add/subtract family: the plain template where it applies, else the carrying one."""
    plain = _emit_sum(invert_a, second, carry_in, writes_ca)
    carrying = _emit_sum_carrying(invert_a, second, carry_in, writes_ca)

    def emit(word: int, pc: int) -> list[str] | None:
        lines = plain(word, pc)
        return lines if lines is not None else carrying(word, pc)
    return emit


def _emit_addic(word: int, pc: int) -> list[str] | None:
    """_build_addic."""
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word) & M
    return _carrying_sum_lines(rd, f"gpr[{ra}] + {imm}", True, word >> 26 == 13)


def _emit_subfic(word: int, pc: int) -> list[str] | None:
    """_build_subfic."""
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word) & M
    return _carrying_sum_lines(rd, f"(gpr[{ra}] ^ {M}) + {imm + 1}", True, False)


def _emit_mulli(word: int, pc: int) -> list[str] | None:
    """_build_mulli (the low word of the product does not depend on the signedness of rA)."""
    rd, ra, imm = (word >> 21) & 31, (word >> 16) & 31, _simm16(word)
    return [f"gpr[{rd}] = (gpr[{ra}] * {imm}) & {M}"]


def _emit_mulhw(word: int, pc: int) -> list[str] | None:
    """_build_mulhw (the OE form is illegal: handler)."""
    if word & 0x400:
        return None
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    if (word >> 1) & 0x1FF == 75:
        lines = [f"s = gpr[{ra}]", f"t = gpr[{rb}]", f"s = s - ((s & {SIGN}) << 1)",
                 f"t = t - ((t & {SIGN}) << 1)", f"{_target(word, rd)} = ((s * t) >> 32) & {M}"]
    else:
        lines = [f"{_target(word, rd)} = (gpr[{ra}] * gpr[{rb}]) >> 32"]
    if word & 1:
        lines.append(_cr0_line("r"))
    return lines


def _emit_divwu(word: int, pc: int) -> list[str] | None:
    """_build_divw, unsigned without OE (a zero divisor leaves the dividend, as the handler does)."""
    if word & 0x400 or (word >> 1) & 0x1FF != 459:
        return None
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    lines = [f"s = gpr[{ra}]", f"t = gpr[{rb}]", f"{_target(word, rd)} = s // t if t else s"]
    if word & 1:
        lines.append(_cr0_line("r"))
    return lines


def _emit_isel(word: int, pc: int) -> list[str] | None:
    """_build_isel."""
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    condition_bit = SIGN >> ((word >> 6) & 31)
    chosen = f"gpr[{ra}]" if ra else "0"
    return [f"gpr[{rd}] = {chosen} if cpu.cr & {condition_bit} else gpr[{rb}]"]


def _emit_mfcr(word: int, pc: int) -> list[str] | None:
    """_build_mfcr (an mfocrf naming several fields is a no-op: handler)."""
    rd = (word >> 21) & 31
    if not word & 0x00100000:
        return [f"gpr[{rd}] = cpu.cr"]
    fxm = (word >> 12) & 0xFF
    return [f"gpr[{rd}] = cpu.cr & {_field_mask(fxm)}"] if _is_one_field(fxm) else None


def _emit_mtcrf(word: int, pc: int) -> list[str] | None:
    """_build_mtcrf."""
    rs, fxm = (word >> 21) & 31, (word >> 12) & 0xFF
    if word & 0x00100000 and not _is_one_field(fxm):
        return None
    mask = _field_mask(fxm)
    return [f"cpu.cr = (cpu.cr & {M ^ mask}) | (gpr[{rs}] & {mask})"]


def _emit_cr_logical(word: int, pc: int) -> list[str] | None:
    """_build_cr_logical."""
    target_shift = 31 - ((word >> 21) & 31)
    shift_a, shift_b = 31 - ((word >> 16) & 31), 31 - ((word >> 11) & 31)
    source = _CR_OPERATIONS[(word >> 1) & 0x3FF][1]
    bit = source.format(a=f"((cpu.cr >> {shift_a}) & 1)", b=f"((cpu.cr >> {shift_b}) & 1)")
    return [f"cpu.cr = (cpu.cr & {M ^ (1 << target_shift)}) | (({bit}) << {target_shift})"]


def _emit_mullw(word: int, pc: int) -> list[str] | None:
    """_build_mullw: the form without OE/Rc."""
    if word & 0x401:
        return None
    rd, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    return [f"gpr[{rd}] = (gpr[{ra}] * gpr[{rb}]) & {M}"]


def _emit_logical_immediate(word: int, pc: int) -> list[str] | None:
    """_build_logical_immediate."""
    rs, ra, imm = (word >> 21) & 31, (word >> 16) & 31, word & 0xFFFF
    primary = word >> 26
    if primary in (25, 27, 29):
        imm <<= 16
    if primary in (24, 25):
        return [] if imm == 0 and rs == ra else [f"gpr[{ra}] = gpr[{rs}] | {imm}"]
    if primary in (26, 27):
        return [f"gpr[{ra}] = gpr[{rs}] ^ {imm}"]
    return [f"r = gpr[{ra}] = gpr[{rs}] & {imm}", _cr0_line("r")]


def _emit_logical(source: str) -> Callable[[int, int], list[str] | None]:
    """_logical_builder(operation) where ``source`` is the operation over names s and b."""
    def emit(word: int, pc: int) -> list[str] | None:
        rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
        expression = source.replace("s", f"gpr[{rs}]").replace("b", f"gpr[{rb}]")
        lines = [f"{_target(word, ra)} = {expression}"]
        if word & 1:
            lines.append(_cr0_line("r"))
        return lines
    return emit


def _emit_or(word: int, pc: int) -> list[str] | None:
    """_build_or."""
    rs, ra, rb = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    source = f"gpr[{rs}]" if rs == rb else f"gpr[{rs}] | gpr[{rb}]"
    lines = [f"{_target(word, ra)} = {source}"]
    if word & 1:
        lines.append(_cr0_line("r"))
    return lines


def _emit_unary(source: str) -> _Emit:
    """_unary_builder(operation) where ``source`` is the operation over ``{s}``, the value of rS."""
    def emit(word: int, pc: int) -> list[str] | None:
        rs, ra = (word >> 21) & 31, (word >> 16) & 31
        lines = [f"{_target(word, ra)} = {source.format(s=f'gpr[{rs}]')}"]
        if word & 1:
            lines.append(_cr0_line("r"))
        return lines
    return emit


def _emit_extend(bits: int) -> _Emit:
    """_unary_builder(_extend_byte / _extend_half)."""
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    return _emit_unary(f"((({{s}} & {mask}) ^ {sign}) - {sign}) & {M}")


def _emit_srawi(word: int, pc: int) -> list[str] | None:
    """_build_sraw, immediate form only."""
    if (word >> 1) & 0x3FF != 824:
        return None
    rs, ra, amount = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    lines = [f"s = gpr[{rs}]", f"s = s - {1 << 32} if s & {SIGN} else s", f"r = s >> {amount}",
             f"cpu.xer = (cpu.xer | {XER_CA}) if s < 0 and (r << {amount}) != s else (cpu.xer & {_NOT_CA})",
             f"r = gpr[{ra}] = r & {M}"]
    if word & 1:
        lines.append(_cr0_line("r"))
    return lines


def _emit_rotate(word: int, pc: int) -> list[str] | None:
    """_build_rotate."""
    rs, ra, shift = (word >> 21) & 31, (word >> 16) & 31, (word >> 11) & 31
    mask = rotate_mask((word >> 6) & 31, (word >> 1) & 31)
    primary = word >> 26
    if primary == 23:
        lines = [f"s = gpr[{rs}]", f"n = gpr[{shift}] & 31",
                 f"{_target(word, ra)} = ((s << n) | (s >> (32 - n))) & {mask}"]
    elif primary == 20:
        lines = [f"s = gpr[{rs}]",
                 f"{_target(word, ra)} = (((s << {shift}) | (s >> {32 - shift})) & {mask})"
                 f" | (gpr[{ra}] & {M ^ mask})"]
    elif shift == 0:
        lines = [f"{_target(word, ra)} = gpr[{rs}] & {mask}"]
    elif not mask & ((1 << shift) - 1):   # no rotated-around bits survive the mask: a left shift
        lines = [f"{_target(word, ra)} = (gpr[{rs}] << {shift}) & {mask}"]
    elif not mask >> shift:               # only rotated-around bits survive: a right shift
        lines = [f"{_target(word, ra)} = (gpr[{rs}] >> {32 - shift}) & {mask}"]
    else:
        lines = [f"s = gpr[{rs}]", f"{_target(word, ra)} = ((s << {shift}) | (s >> {32 - shift})) & {mask}"]
    if word & 1:
        lines.append(_cr0_line("r"))
    return lines


def _emit_compare(signed: bool, immediate: bool) -> Callable[[int, int], list[str] | None]:
    """_compare_builder."""
    def emit(word: int, pc: int) -> list[str] | None:
        if word & 0x00200000:
            return None
        shift = 28 - 4 * ((word >> 23) & 7)
        keep = M ^ (0xF << shift)
        ra, rb = (word >> 16) & 31, (word >> 11) & 31
        bias = SIGN if signed else 0
        constant = ((_simm16(word) & M) if signed else word & 0xFFFF) ^ bias
        left = f"gpr[{ra}] ^ {bias}" if bias else f"gpr[{ra}]"
        right = str(constant) if immediate else (f"gpr[{rb}] ^ {bias}" if bias else f"gpr[{rb}]")
        if not immediate:
            return [f"s = {left}", f"n = {right}", f"cpu.cr = (cpu.cr & {keep}) | "
                    f"(((8 if s < n else 4 if s > n else 2) | (cpu.xer >> 31)) << {shift})"]
        return [f"s = {left}", f"cpu.cr = (cpu.cr & {keep}) | "
                f"(((8 if s < {right} else 4 if s > {right} else 2) | (cpu.xer >> 31)) << {shift})"]
    return emit


def _emit_b(word: int, pc: int) -> list[str] | None:
    """_build_b."""
    offset = (word & 0x03FFFFFC) - (0x04000000 if word & 0x02000000 else 0)
    target = offset & M if word & 2 else (pc + offset) & M
    lines = [f"cpu.lr = {(pc + 4) & M}"] if word & 1 else []
    return [*lines, f"return {target}"]


def _branch_lines(word: int, pc: int, target: str, allow_decrement: bool) -> list[str] | None:
    """_bc_fields semantics; ``target`` is a constant or an expression read before LR is written."""
    decrements, on_zero, tests_cr, condition_bit, wanted, link = _bc_fields(word)
    if decrements and not allow_decrement:
        return None
    lines = []
    if not target.isdigit():
        lines.append(f"t = {target}")   # read before bclrl overwrites LR
        target = "t"
    if link:
        lines.append(f"cpu.lr = {(pc + 4) & M}")
    conditions = []
    if decrements:
        lines.append(f"n = cpu.ctr = (cpu.ctr - 1) & {M}")
        conditions.append("n == 0" if on_zero else "n != 0")
    if tests_cr:
        conditions.append(f"cpu.cr & {condition_bit}" if wanted else f"not (cpu.cr & {condition_bit})")
    if conditions:
        lines.append(f"if {' and '.join(conditions)}:")
        lines.append(f"    return {target}")
        lines.append(f"return {(pc + 4) & M}")
    else:
        lines.append(f"return {target}")
    return lines


def _emit_bc(word: int, pc: int) -> list[str] | None:
    """_build_bc."""
    displacement = _simm16(word & ~3)
    target = displacement & M if word & 2 else (pc + displacement) & M
    return _branch_lines(word, pc, str(target), True)


def _emit_bclr(word: int, pc: int) -> list[str] | None:
    """_build_bclr."""
    return _branch_lines(word, pc, "cpu.lr & 0xFFFFFFFC", True)


def _emit_bcctr(word: int, pc: int) -> list[str] | None:
    """_build_bcctr (the decrementing form is illegal: handler)."""
    return _branch_lines(word, pc, "cpu.ctr & 0xFFFFFFFC", False)


# kind -> (macro, the line that turns the loaded v into the register value); the same as _LOADERS.
_LOAD_MACROS = {"byte": ("LOAD8", ""), "half": ("LOAD16", ""),
                "half_algebraic": ("LOAD16", "v = ((v ^ 0x8000) - 0x8000) & 0xFFFFFFFF"),
                "half_reversed": ("LOAD16", "v = ((v & 0xFF) << 8) | (v >> 8)"),
                "word": ("LOAD32", ""),
                "word_reversed": ("LOAD32", "v = int.from_bytes(v.to_bytes(4, 'big'), 'little')")}
# kind -> (macro, the stored value as an expression over the register s); the same as _STORERS.
_STORE_MACROS = {"byte": ("STORE8", "{s} & 0xFF"), "half": ("STORE16", "{s} & 0xFFFF"),
                 "half_reversed": ("STORE16", "(({s} & 0xFF) << 8) | (({s} >> 8) & 0xFF)"),
                 "word": ("STORE32", "{s}"),
                 "word_reversed": ("STORE32", "int.from_bytes({s}.to_bytes(4, 'big'), 'little')")}


def _address_line(word: int, indexed: bool) -> str:
    ra, rb = (word >> 16) & 31, (word >> 11) & 31
    offset = f"gpr[{rb}]" if indexed else str(_simm16(word))
    if ra == 0:
        return f"ea = {offset}" if indexed else f"ea = {_simm16(word) & M}"
    return f"ea = (gpr[{ra}] + {offset}) & {M}"


def _emit_load(kind: str, update: bool, indexed: bool) -> Callable[[int, int], list[str] | None]:
    """_load_builder."""
    def emit(word: int, pc: int) -> list[str] | None:
        rd, ra = (word >> 21) & 31, (word >> 16) & 31
        if kind not in _LOAD_MACROS or (update and (ra == 0 or ra == rd)):
            return None
        macro, extend = _LOAD_MACROS[kind]
        lines = [_address_line(word, indexed), f"v = {macro}(ea)"]
        if extend:
            lines.append(extend)
        if update:
            lines.append(f"gpr[{ra}] = ea")
        lines.append(f"gpr[{rd}] = v")
        return lines
    return emit


def _emit_store(kind: str, update: bool, indexed: bool) -> Callable[[int, int], list[str] | None]:
    """_store_builder."""
    def emit(word: int, pc: int) -> list[str] | None:
        rs, ra = (word >> 21) & 31, (word >> 16) & 31
        if kind not in _STORE_MACROS or (update and ra == 0):
            return None
        macro, value = _STORE_MACROS[kind]
        lines = [_address_line(word, indexed), f"v = {value.format(s=f'gpr[{rs}]')}", f"{macro}(ea, v)"]
        if update:
            lines.append(f"gpr[{ra}] = ea")
        return lines
    return emit

# --------------------------------------------------------------------------- the table

def _d(mnemonic: str, primary: int, build: Callable[[int], Handler], cycles: int = CYCLES_SIMPLE,
       emit: _Emit | None = None) -> InstructionSpec:
    return InstructionSpec(mnemonic, primary, None, 0, build, cycles, emit=emit)


def _x(mnemonic: str, primary: int, xo: int, build: Callable[[int], Handler], cycles: int = CYCLES_SIMPLE,
       emit: _Emit | None = None) -> InstructionSpec:
    return InstructionSpec(mnemonic, primary, xo, 10, build, cycles, emit=emit)


def _xo(mnemonic: str, xo: int, build: Callable[[int], Handler], cycles: int = CYCLES_SIMPLE,
        emit: _Emit | None = None) -> InstructionSpec:
    return InstructionSpec(mnemonic, 31, xo, 9, build, cycles, emit=emit)


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

# The source column is the same operation for the block translator (names s and b).
_LOGICAL: list[tuple[str, int, Callable[[int, int], int], str]] = [
    ("and", 28, int.__and__, "s & b"), ("andc", 60, lambda s, b: s & (b ^ M), f"s & (b ^ {M})"),
    ("eqv", 284, lambda s, b: s ^ b ^ M, f"s ^ b ^ {M}"),
    ("nand", 476, lambda s, b: (s & b) ^ M, f"(s & b) ^ {M}"),
    ("nor", 124, lambda s, b: (s | b) ^ M, f"(s | b) ^ {M}"),
    ("orc", 412, lambda s, b: s | (b ^ M), f"s | (b ^ {M})"),
    ("xor", 316, int.__xor__, "s ^ b"),
    # Shift amounts are rB & 63; 32..63 give 0, which the mask/width already produce.
    ("slw", 24, lambda s, b: (s << (b & 63)) & M, f"(s << (b & 63)) & {M}"),
    ("srw", 536, lambda s, b: s >> (b & 63), "s >> (b & 63)"),
]

SPECS: list[InstructionSpec] = [
    _d("twi", 3, _trap_builder(True)),
    _d("mulli", 7, _build_mulli, CYCLES_MULTIPLY, _emit_mulli),
    _d("subfic", 8, _build_subfic, emit=_emit_subfic),
    _d("cmpli", 10, _compare_builder(False, True), emit=_emit_compare(False, True)),
    _d("cmpi", 11, _compare_builder(True, True), emit=_emit_compare(True, True)),
    _d("addic", 12, _build_addic, emit=_emit_addic),
    _d("addic.", 13, _build_addic, emit=_emit_addic),
    _d("addi", 14, _build_addi, emit=_emit_addi),
    _d("addis", 15, _build_addi, emit=_emit_addi),
    _d("bc", 16, _build_bc, emit=_emit_bc),
    _d("b", 18, _build_b, emit=_emit_b),
    _d("rlwimi", 20, _build_rotate, emit=_emit_rotate),
    _d("rlwinm", 21, _build_rotate, emit=_emit_rotate),
    _d("rlwnm", 23, _build_rotate, emit=_emit_rotate),
    _d("ori", 24, _build_logical_immediate, emit=_emit_logical_immediate),
    _d("oris", 25, _build_logical_immediate, emit=_emit_logical_immediate),
    _d("xori", 26, _build_logical_immediate, emit=_emit_logical_immediate),
    _d("xoris", 27, _build_logical_immediate, emit=_emit_logical_immediate),
    _d("andi.", 28, _build_logical_immediate, emit=_emit_logical_immediate),
    _d("andis.", 29, _build_logical_immediate, emit=_emit_logical_immediate),
    _d("lmw", 46, _build_lmw, CYCLES_LOAD),
    _d("stmw", 47, _build_stmw),
    *(_d(name, primary, _load_builder(kind, update, False), CYCLES_LOAD, _emit_load(kind, update, False))
      if is_load else
      _d(name, primary, _store_builder(kind, update, False), CYCLES_SIMPLE, _emit_store(kind, update, False))
      for name, primary, kind, update, is_load in _LOAD_STORE_D_FORMS),
    _x("mcrf", 19, 0, _build_mcrf),
    _x("bclr", 19, 16, _build_bclr, emit=_emit_bclr),
    _x("bcctr", 19, 528, _build_bcctr, emit=_emit_bcctr),
    *(_x(name, 19, xo, _build_cr_logical, emit=_emit_cr_logical) for name, xo in (
        ("crnor", 33), ("crandc", 129), ("crxor", 193), ("crnand", 225), ("crand", 257),
        ("creqv", 289), ("crorc", 417), ("cror", 449))),
    _x("cmp", 31, 0, _compare_builder(True, False), emit=_emit_compare(True, False)),
    _x("tw", 31, 4, _trap_builder(False)),
    _x("mfcr", 31, 19, _build_mfcr, emit=_emit_mfcr),
    _x("lwarx", 31, 20, _build_lwarx, CYCLES_LOAD),
    _x("cntlzw", 31, 26, _unary_builder(_count_leading_zeros), emit=_emit_unary("32 - {s}.bit_length()")),
    _x("cmpl", 31, 32, _compare_builder(False, False), emit=_emit_compare(False, False)),
    _x("mtcrf", 31, 144, _build_mtcrf, emit=_emit_mtcrf),
    _x("stwcx.", 31, 150, _build_stwcx),
    _x("or", 31, 444, _build_or, emit=_emit_or),
    _x("mcrxr", 31, 512, _build_mcrxr),
    _x("sraw", 31, 792, _build_sraw),
    _x("srawi", 31, 824, _build_sraw, emit=_emit_srawi),
    _x("extsh", 31, 922, _unary_builder(_extend_half), emit=_emit_extend(16)),
    _x("extsb", 31, 954, _unary_builder(_extend_byte), emit=_emit_extend(8)),
    *(_x(name, 31, xo, _logical_builder(operation), emit=_emit_logical(source))
      for name, xo, operation, source in _LOGICAL),
    *(_x(name, 31, xo, _load_builder(kind, update, True), CYCLES_LOAD, _emit_load(kind, update, True))
      if is_load else
      _x(name, 31, xo, _store_builder(kind, update, True), CYCLES_SIMPLE, _emit_store(kind, update, True))
      for name, xo, kind, update, is_load in _LOAD_STORE_X_FORMS),
    *(_xo(name, xo, _sum_builder(invert, second, carry, writes_ca),
          emit=_emit_sums(invert, second, carry, writes_ca))
      for name, xo, invert, second, carry, writes_ca in _SUMS),
    _xo("mulhwu", 11, _build_mulhw, CYCLES_MULTIPLY, emit=_emit_mulhw),
    _xo("mulhw", 75, _build_mulhw, CYCLES_MULTIPLY, emit=_emit_mulhw),
    _xo("mullw", 235, _build_mullw, CYCLES_MULTIPLY, emit=_emit_mullw),
    _xo("divwu", 459, _build_divw, CYCLES_DIVIDE, emit=_emit_divwu),
    _xo("divw", 491, _build_divw, CYCLES_DIVIDE),
    InstructionSpec("isel", 31, 15, 5, _build_isel, emit=_emit_isel),
]

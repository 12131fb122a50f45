"""The e500mc's classic floating-point unit: FP loads and stores, arithmetic, conversions, compares
and the FPSCR instructions (Power ISA 2.06 Book I, chapter 4), for the instruction table.

Every entry of :data:`SPECS` is an :class:`emulator.isa.InstructionSpec` for the e500mc only; on the
e500v2, which has no classic FPU, these words stay illegal (ESR[PIL]). Each handler first checks
MSR[FP]: clear -> the FP unavailable interrupt.

Arithmetic is exact integer arithmetic followed by one IEEE rounding in the FPSCR[RN] mode, so
results and the FPSCR status bits (FR, FI, FPRF, OX, UX, ZX, XX, the VX* causes, FX, FEX, VX) are
the architecture's, including the fused multiply-adds and the single-precision forms (rounded once
to single precision, held in double format). Tininess is detected before rounding, as on Power.
With an exception enabled in the FPSCR, the target register is left alone for invalid operations and
divides by zero, and overflowed/underflowed results are delivered with the exponent adjusted by
1536 (192 single); when that sets FPSCR[FEX] and MSR[FE0]/[FE1] is set, the program interrupt
with ESR[FP] is taken precisely (both imprecise modes are treated as precise). An mtmsr that turns
MSR[FE0]/[FE1] on while FPSCR[FEX] is set takes it after the mtmsr (:mod:`emulator.ops_system`).

Implementation choices where the architecture leaves freedom (QEMU 7.2 makes the same ones): mffs
leaves the high word of the target zero; fctiw[z] sign-extends its 32-bit result into it, except for
a NaN (0x80000000, high word zero), and sets FPRF to the quiet-NaN class on an invalid conversion;
fres returns the correctly rounded reciprocal and frsqrte QEMU's two-step value (a rounded square
root, then its rounded reciprocal) rather than a coarse estimate;
FPSCR[NI] is ignored. fsqrt[s], fcfid, fctid[z] and the ISA 2.05 additions are not e500mc
instructions and stay illegal.

Imports: :mod:`emulator.isa` (InstructionSpec), :mod:`emulator.fields`, :mod:`emulator.exceptions`,
:mod:`emulator.models`, :mod:`emulator.cpu` for type checking only.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isqrt

from emulator import fields
from emulator.exceptions import ESR_FP, IVOR_FP_UNAVAILABLE, IVOR_PROGRAM, Interrupt
from emulator.isa import InstructionSpec, SupervisorCpu, illegal
from emulator.models import MSR_FE0, MSR_FE1, MSR_FP

FloatHandler = Callable[["SupervisorCpu", int], int]

M32 = 0xFFFFFFFF
SIGN = 1 << 63
MAGNITUDE = SIGN - 1
FRACTION = (1 << 52) - 1
HIDDEN = 1 << 52
INFINITY = 0x7FF0000000000000
QUIET = 1 << 51
DEFAULT_NAN = 0x7FF8000000000000
ONE = 0x3FF0000000000000
SINGLE_NAN_DROP = (1 << 29) - 1           # fraction bits a single-precision NaN cannot hold
NEGATIVE_SATURATION = 0xFFFFFFFF80000000   # fctiw of a value below -2**31: -2**31, sign-extended

# FPSCR bits (ISA bit n is 1 << (31 - n)).
FX, FEX, VX, OX, UX, ZX, XX = 1 << 31, 1 << 30, 1 << 29, 1 << 28, 1 << 27, 1 << 26, 1 << 25
VXSNAN, VXISI, VXIDI, VXZDZ, VXIMZ, VXVC = 1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20, 1 << 19
FR, FI = 1 << 18, 1 << 17
FPRF_SHIFT = 12
FPRF = 0x1F << FPRF_SHIFT
FPCC = 0xF << FPRF_SHIFT
VXSOFT, VXSQRT, VXCVI = 1 << 10, 1 << 9, 1 << 8
VE, OE, UE, ZE, XE = 1 << 7, 1 << 6, 1 << 5, 1 << 4, 1 << 3
RN = 3
VX_CAUSES = VXSNAN | VXISI | VXIDI | VXZDZ | VXIMZ | VXVC | VXSOFT | VXSQRT | VXCVI
STICKY_EXCEPTIONS = OX | UX | ZX | XX | VX_CAUSES         # a 0 -> 1 change of one of these sets FX
ENABLE_SHIFT = 22                                         # VX, OX, UX, ZX, XX >> 22 = VE .. XE

# FPRF result classes (C, FL, FG, FE, FU) and the compare codes (FL, FG, FE, FU).
CLASS_QNAN, CLASS_MINUS_INF, CLASS_MINUS_NORMAL, CLASS_MINUS_DENORMAL = 0x11, 0x09, 0x08, 0x18
CLASS_MINUS_ZERO, CLASS_PLUS_ZERO, CLASS_PLUS_DENORMAL, CLASS_PLUS_NORMAL = 0x12, 0x02, 0x14, 0x04
CLASS_PLUS_INF = 0x05
LESS, GREATER, EQUAL, UNORDERED = 8, 4, 2, 1

# Rounding modes (FPSCR[RN]).
NEAREST, TOWARD_ZERO, TOWARD_PLUS, TOWARD_MINUS = 0, 1, 2, 3

# Target formats: (precision, minimum exponent, maximum exponent, exponent adjust for enabled traps).
DOUBLE = (53, -1022, 1023, 1536)
SINGLE = (24, -126, 127, 192)
Format = tuple[int, int, int, int]
Result = tuple[int, int]            # (double-format bits, FPSCR exception/status bits)


# ===================================================================================================
# IEEE arithmetic on double-format bit patterns
# ===================================================================================================
def is_nan(bits: int) -> bool:
    return bits & MAGNITUDE > INFINITY


def is_signalling(bits: int) -> bool:
    return bits & MAGNITUDE > INFINITY and not bits & QUIET


def _is_infinite(bits: int) -> bool:
    return bits & MAGNITUDE == INFINITY


def _is_zero(bits: int) -> bool:
    return not bits & MAGNITUDE


def _unpack(bits: int) -> tuple[int, int, int]:
    """(sign, integer significand, exponent) of a finite value: value = significand * 2**exponent."""
    exponent = (bits >> 52) & 0x7FF
    if exponent:
        return bits >> 63, (bits & FRACTION) | HIDDEN, exponent - 1075
    return bits >> 63, bits & FRACTION, -1074


def _pack(sign: int, significand: int, exponent: int) -> int:
    """Double-format bits of sign * significand * 2**exponent (exactly representable by contract)."""
    if not significand:
        return sign << 63
    length = significand.bit_length()
    top = exponent + length - 1
    if top >= -1022:
        return (sign << 63) | ((top + 1023) << 52) | ((significand << (53 - length)) & FRACTION)
    return (sign << 63) | (significand << (exponent + 1074))


def _propagate(single: bool, *operands: int) -> Result:
    """The result of an operation with a NaN operand: the first NaN, quieted (VXSNAN if any signals)."""
    status = VXSNAN if any(is_signalling(operand) for operand in operands) else 0
    for operand in operands:
        if is_nan(operand):
            result = operand | QUIET
            return (result & ~SINGLE_NAN_DROP if single else result), status
    raise AssertionError("no NaN operand")


def round_to_format(sign: int, significand: int, exponent: int, sticky: bool, target: Format,
                    mode: int, fpscr: int) -> Result:
    """Round sign * (significand + sticky fraction of an ulp) * 2**exponent to ``target``.

    ``significand`` > 0; ``sticky`` means the exact value lies strictly above significand * 2**exponent
    and below the next multiple of 2**exponent (division and square-root remainders).
    """
    precision, minimum, maximum, adjust = target
    top = exponent + significand.bit_length() - 1
    tiny = top < minimum
    trap_underflow = tiny and fpscr & UE
    quantum = (minimum if tiny and not trap_underflow else top) - (precision - 1)
    shift = quantum - exponent
    if shift > 0:
        kept = significand >> shift
        rest = significand & ((1 << shift) - 1)
        half = 1 << (shift - 1)
    else:
        kept = significand << -shift
        rest = 0
        half = 1
    status = 0
    if rest or sticky:
        if mode == NEAREST:
            up = rest > half or (rest == half and (sticky or kept & 1))
        elif mode == TOWARD_ZERO:
            up = False
        else:
            up = (mode == TOWARD_PLUS) != bool(sign)
        if up:
            kept += 1
            if kept >> precision:
                kept >>= 1
                quantum += 1
            status = XX | FI | FR
        else:
            status = XX | FI
    if kept and quantum + kept.bit_length() - 1 > maximum:
        if fpscr & OE:
            return _pack(sign, kept, quantum - adjust), status | OX
        to_infinity = mode == NEAREST or (mode == TOWARD_PLUS and not sign) or (mode == TOWARD_MINUS and sign)
        if to_infinity:
            return (sign << 63) | INFINITY, OX | XX | FI | FR
        largest = (1 << precision) - 1
        return _pack(sign, largest, maximum - (precision - 1)), OX | XX | FI
    if trap_underflow:
        return _pack(sign, kept, quantum + adjust), status | UX
    if tiny and status:
        status |= UX
    return _pack(sign, kept, quantum), status


def _exact_sum(sign_a: int, significand_a: int, exponent_a: int, sign_b: int, significand_b: int,
               exponent_b: int, target: Format, mode: int, fpscr: int) -> Result:
    exponent = min(exponent_a, exponent_b)
    a = significand_a << (exponent_a - exponent)
    b = significand_b << (exponent_b - exponent)
    total = (-a if sign_a else a) + (-b if sign_b else b)
    if not total:
        if not a and not b and sign_a == sign_b:
            return sign_a << 63, 0
        return (SIGN if mode == TOWARD_MINUS else 0), 0
    return round_to_format(int(total < 0), abs(total), exponent, False, target, mode, fpscr)


def add(a: int, b: int, target: Format, mode: int, fpscr: int) -> Result:
    if is_nan(a) or is_nan(b):
        return _propagate(target is SINGLE, a, b)
    if _is_infinite(a) or _is_infinite(b):
        if _is_infinite(a) and _is_infinite(b) and (a ^ b) & SIGN:
            return DEFAULT_NAN, VXISI
        return (a if _is_infinite(a) else b), 0
    return _exact_sum(*_unpack(a), *_unpack(b), target, mode, fpscr)


def multiply(a: int, c: int, target: Format, mode: int, fpscr: int) -> Result:
    if is_nan(a) or is_nan(c):
        return _propagate(target is SINGLE, a, c)
    sign = (a ^ c) >> 63
    if _is_infinite(a) or _is_infinite(c):
        if _is_zero(a) or _is_zero(c):
            return DEFAULT_NAN, VXIMZ
        return (sign << 63) | INFINITY, 0
    _, significand_a, exponent_a = _unpack(a)
    _, significand_c, exponent_c = _unpack(c)
    product = significand_a * significand_c
    if not product:
        return sign << 63, 0
    return round_to_format(sign, product, exponent_a + exponent_c, False, target, mode, fpscr)


def multiply_add(a: int, c: int, b: int, negate_addend: bool, target: Format, mode: int,
                 fpscr: int) -> Result:
    """a * c + b (or a * c - b) with a single rounding."""
    infinity_times_zero = ((_is_infinite(a) and _is_zero(c)) or (_is_zero(a) and _is_infinite(c)))
    if is_nan(a) or is_nan(b) or is_nan(c):
        result, status = _propagate(target is SINGLE, a, b, c)
        return result, status | (VXIMZ if infinity_times_zero else 0)
    if infinity_times_zero:
        return DEFAULT_NAN, VXIMZ
    product_sign = (a ^ c) >> 63
    addend_sign = (b >> 63) ^ int(negate_addend)
    if _is_infinite(a) or _is_infinite(c):
        if _is_infinite(b) and addend_sign != product_sign:
            return DEFAULT_NAN, VXISI
        return (product_sign << 63) | INFINITY, 0
    if _is_infinite(b):
        return (addend_sign << 63) | INFINITY, 0
    _, significand_a, exponent_a = _unpack(a)
    _, significand_c, exponent_c = _unpack(c)
    _, significand_b, exponent_b = _unpack(b)
    return _exact_sum(product_sign, significand_a * significand_c, exponent_a + exponent_c,
                      addend_sign, significand_b, exponent_b, target, mode, fpscr)


def divide(a: int, b: int, target: Format, mode: int, fpscr: int) -> Result:
    if is_nan(a) or is_nan(b):
        return _propagate(target is SINGLE, a, b)
    sign = (a ^ b) >> 63
    if _is_infinite(a):
        return (DEFAULT_NAN, VXIDI) if _is_infinite(b) else ((sign << 63) | INFINITY, 0)
    if _is_infinite(b):
        return sign << 63, 0
    if _is_zero(b):
        return (DEFAULT_NAN, VXZDZ) if _is_zero(a) else ((sign << 63) | INFINITY, ZX)
    if _is_zero(a):
        return sign << 63, 0
    _, significand_a, exponent_a = _unpack(a)
    _, significand_b, exponent_b = _unpack(b)
    # Enough quotient bits for any precision plus guard and round bits; the remainder is the sticky bit.
    extra = max(0, 56 + significand_b.bit_length() - significand_a.bit_length())
    quotient, remainder = divmod(significand_a << extra, significand_b)
    return round_to_format(sign, quotient, exponent_a - exponent_b - extra, remainder != 0, target,
                           mode, fpscr)


def square_root(b: int, target: Format, mode: int, fpscr: int) -> Result:
    if is_nan(b):
        return _propagate(target is SINGLE, b)
    if _is_zero(b):
        return b, 0
    if b & SIGN:
        return DEFAULT_NAN, VXSQRT
    if _is_infinite(b):
        return b, 0
    _, significand, exponent = _unpack(b)
    # An even exponent and enough significand bits for a root of more than 56 bits.
    shift = max(0, 2 * 57 - significand.bit_length())
    if (exponent - shift) & 1:
        shift += 1
    significand <<= shift
    root = isqrt(significand)
    return round_to_format(0, root, (exponent - shift) // 2, root * root != significand, target, mode, fpscr)


def reciprocal_square_root(b: int, target: Format, mode: int, fpscr: int) -> Result:
    """frsqrte's estimate as QEMU computes it: the square root rounded to double, then its reciprocal
    rounded to ``target`` (the architecture accepts any estimate within 1/32; QEMU is the reference
    a guest can be compared with)."""
    if is_nan(b):
        return _propagate(target is SINGLE, b)
    if _is_zero(b):
        return (b & SIGN) | INFINITY, ZX
    if b & SIGN:
        return DEFAULT_NAN, VXSQRT
    root, root_status = square_root(b, DOUBLE, mode, fpscr)
    result, status = divide(ONE, root, target, mode, fpscr)
    if root_status & XX and not status & XX:
        status |= XX | FI
    return result, status


def round_to_single(b: int, mode: int, fpscr: int) -> Result:
    if is_nan(b):
        return _propagate(True, b)
    if _is_infinite(b) or _is_zero(b):
        return b, 0
    return round_to_format(*_unpack(b), False, SINGLE, mode, fpscr)


def to_int32(b: int, mode: int) -> Result:
    """fctiw/fctiwz: the 32-bit integer (sign-extended into the low word) and the status bits."""
    if is_nan(b):
        return 0x80000000, VXCVI | (VXSNAN if is_signalling(b) else 0)
    if _is_infinite(b):
        return (NEGATIVE_SATURATION if b & SIGN else 0x7FFFFFFF), VXCVI
    sign, significand, exponent = _unpack(b)
    if exponent >= 0:
        magnitude, rest, half = significand << exponent, 0, 1
    else:
        shift = -exponent
        magnitude = significand >> shift
        rest = significand & ((1 << shift) - 1)
        half = 1 << (shift - 1)
    status = 0
    if rest:
        if mode == NEAREST:
            up = rest > half or (rest == half and magnitude & 1)
        elif mode == TOWARD_ZERO:
            up = False
        else:
            up = (mode == TOWARD_PLUS) != bool(sign)
        magnitude += int(up)
        status = XX | FI | (FR if up else 0)
    value = -magnitude if sign else magnitude
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        return (NEGATIVE_SATURATION if sign else 0x7FFFFFFF), VXCVI
    return value & 0xFFFFFFFFFFFFFFFF, status


def compare(a: int, b: int) -> int:
    """The FL/FG/FE/FU code of a ? b."""
    if is_nan(a) or is_nan(b):
        return UNORDERED
    key_a = -(a & MAGNITUDE) if a & SIGN else a & MAGNITUDE
    key_b = -(b & MAGNITUDE) if b & SIGN else b & MAGNITUDE
    return LESS if key_a < key_b else GREATER if key_a > key_b else EQUAL


def result_class(bits: int, single: bool) -> int:
    """FPRF class of a result (``single``: classified as a single-precision value)."""
    sign = bits >> 63
    exponent = (bits >> 52) & 0x7FF
    if exponent == 0x7FF:
        return CLASS_QNAN if bits & FRACTION else (CLASS_MINUS_INF if sign else CLASS_PLUS_INF)
    if not bits & MAGNITUDE:
        return CLASS_MINUS_ZERO if sign else CLASS_PLUS_ZERO
    if exponent == 0 or (single and exponent < 1023 - 126):
        return CLASS_MINUS_DENORMAL if sign else CLASS_PLUS_DENORMAL
    return CLASS_MINUS_NORMAL if sign else CLASS_PLUS_NORMAL


def single_to_double(word: int) -> int:
    """lfs: a single-precision bit pattern widened to double format (exact, NaNs keep their payload)."""
    sign = (word >> 31) << 63
    exponent = (word >> 23) & 0xFF
    fraction = word & 0x7FFFFF
    if exponent == 0xFF:
        return sign | INFINITY | (fraction << 29)
    if exponent:
        return sign | ((exponent + 896) << 52) | (fraction << 29)
    if not fraction:
        return sign
    shift = 24 - fraction.bit_length()
    return sign | ((897 - shift) << 52) | (((fraction << shift) & 0x7FFFFF) << 29)


def double_to_single(bits: int) -> int:
    """stfs: the ISA's store conversion (truncation, denormalisation below single's normal range)."""
    exponent = (bits >> 52) & 0x7FF
    if exponent > 896 or not bits & MAGNITUDE:
        return ((bits >> 32) & 0xC0000000) | ((bits >> 29) & 0x3FFFFFFF)
    fraction = ((bits & FRACTION) | HIDDEN) >> min(64, -126 - (exponent - 1023))
    return ((bits >> 63) << 31) | ((fraction >> 29) & 0x7FFFFF)


# ===================================================================================================
# FPSCR bookkeeping
# ===================================================================================================
def summarise(fpscr: int) -> int:
    """Recompute the summary bits VX and FEX from the causes and enables."""
    fpscr &= ~(VX | FEX)
    if fpscr & VX_CAUSES:
        fpscr |= VX
    if (fpscr >> ENABLE_SHIFT) & fpscr & (VE | OE | UE | ZE | XE):
        fpscr |= FEX
    return fpscr


def _store_fpscr(cpu: SupervisorCpu, old: int, new: int, raised: int, record: bool,
                 fx_rule: bool = True) -> None:
    """The common tail of every FPSCR-writing instruction: FX by the 0 -> 1 rule (unless the
    instruction writes FX itself), VX and FEX recomputed, CR1 for Rc=1, then the FP enabled program
    interrupt when this instruction raised an enabled exception (or turned FEX on) while MSR[FE0]/[FE1]
    ask for it."""
    if fx_rule and (new & ~old) & STICKY_EXCEPTIONS:
        new |= FX
    new = summarise(new)
    if record:
        _record(cpu, new)
    cpu.fpscr = new
    if new & FEX and cpu.msr & (MSR_FE0 | MSR_FE1):
        summary = raised | (VX if raised & VX_CAUSES else 0)
        if (summary >> ENABLE_SHIFT) & new & (VE | OE | UE | ZE | XE) or not old & FEX:
            raise Interrupt(IVOR_PROGRAM, esr=ESR_FP)


def _complete(cpu: SupervisorCpu, target: int, result: Result, single: bool, record: bool) -> None:
    """Write an arithmetic result and its status: the common tail of every rounding instruction."""
    bits, status = result
    old = cpu.fpscr
    new = (old & ~(FR | FI)) | (status & STICKY_EXCEPTIONS)
    suppressed = (status & VX_CAUSES and old & VE) or (status & ZX and old & ZE)
    if not suppressed:
        cpu.fpr[target] = bits
        new = (new & ~FPRF) | (status & (FR | FI)) | (result_class(bits, single) << FPRF_SHIFT)
    _store_fpscr(cpu, old, new, status, record)


def _record(cpu: SupervisorCpu, fpscr: int | None = None) -> None:
    """Rc=1: CR1 <- FPSCR[FX, FEX, VX, OX] (of ``fpscr`` when given, else the current FPSCR)."""
    value = cpu.fpscr if fpscr is None else fpscr
    cpu.cr = (cpu.cr & 0xF0FFFFFF) | ((value >> 4) & 0x0F000000)


def _available(handler: FloatHandler) -> FloatHandler:
    def checked(cpu: SupervisorCpu, pc: int) -> int:
        if not cpu.msr & MSR_FP:
            raise Interrupt(IVOR_FP_UNAVAILABLE)
        return handler(cpu, pc)
    return checked


# ===================================================================================================
# Instruction builders
# ===================================================================================================
def _fields(word: int) -> tuple[int, int, int, int, bool]:
    """(frT, frA, frB, frC, Rc): the A-form fields, which the other forms use a subset of."""
    return fields.frt(word), fields.fra(word), fields.frb(word), fields.frc(word), fields.rc(word)


def _memory_builder(width: int, store: bool, update: bool, indexed: bool) -> Callable[[int], FloatHandler]:
    def build(word: int) -> FloatHandler:
        frt, ra, rb, _, _ = _fields(word)
        if update and ra == 0:
            return illegal
        displacement = fields.simm(word)

        def effective_address(cpu: SupervisorCpu) -> int:
            offset = cpu.gpr[rb] if indexed else displacement
            return ((cpu.gpr[ra] if ra else 0) + offset) & M32

        if store:
            def store_float(cpu: SupervisorCpu, pc: int) -> int:
                ea = effective_address(cpu)
                bits = cpu.fpr[frt]
                if width == 8:
                    cpu.store64(ea, bits)
                elif width == 4:
                    cpu.store32(ea, double_to_single(bits))
                else:
                    cpu.store32(ea, bits & M32)      # stfiwx
                if update:
                    cpu.gpr[ra] = ea
                return (pc + 4) & M32
            return _available(store_float)

        def load_float(cpu: SupervisorCpu, pc: int) -> int:
            ea = effective_address(cpu)
            cpu.fpr[frt] = cpu.load64(ea) if width == 8 else single_to_double(cpu.load32(ea))
            if update:
                cpu.gpr[ra] = ea
            return (pc + 4) & M32
        return _available(load_float)
    return build


def _mode(cpu: SupervisorCpu) -> int:
    return cpu.fpscr & RN


# operation(fpr, a, b, c, target, mode, fpscr) for each arithmetic kind; a/b/c are the A/B/C fields.
_Operation = Callable[[list[int], int, int, int, Format, int, int], Result]


def _negate_unless_nan(result: Result) -> Result:
    return (result if is_nan(result[0]) else (result[0] ^ SIGN, result[1]))


_OPERATIONS: dict[str, _Operation] = {
    "add": lambda fpr, a, b, c, target, mode, fpscr: add(fpr[a], fpr[b], target, mode, fpscr),
    # A NaN subtrahend propagates with its own sign.
    "sub": lambda fpr, a, b, c, target, mode, fpscr: add(
        fpr[a], fpr[b] if is_nan(fpr[b]) else fpr[b] ^ SIGN, target, mode, fpscr),
    "mul": lambda fpr, a, b, c, target, mode, fpscr: multiply(fpr[a], fpr[c], target, mode, fpscr),
    "div": lambda fpr, a, b, c, target, mode, fpscr: divide(fpr[a], fpr[b], target, mode, fpscr),
    "re": lambda fpr, a, b, c, target, mode, fpscr: divide(ONE, fpr[b], target, mode, fpscr),
    "rsqrte": lambda fpr, a, b, c, target, mode, fpscr: reciprocal_square_root(fpr[b], target, mode, fpscr),
    "madd": lambda fpr, a, b, c, target, mode, fpscr: multiply_add(
        fpr[a], fpr[c], fpr[b], False, target, mode, fpscr),
    "msub": lambda fpr, a, b, c, target, mode, fpscr: multiply_add(
        fpr[a], fpr[c], fpr[b], True, target, mode, fpscr),
    # The architecture rounds the sum, then negates it (QEMU rounds the negated sum).
    "nmadd": lambda fpr, a, b, c, target, mode, fpscr: _negate_unless_nan(multiply_add(
        fpr[a], fpr[c], fpr[b], False, target, mode, fpscr)),
    "nmsub": lambda fpr, a, b, c, target, mode, fpscr: _negate_unless_nan(multiply_add(
        fpr[a], fpr[c], fpr[b], True, target, mode, fpscr)),
}


def _arithmetic_builder(kind: str, single: bool) -> Callable[[int], FloatHandler]:
    target = SINGLE if single else DOUBLE
    operation = _OPERATIONS[kind]

    def build(word: int) -> FloatHandler:
        frt, fra, frb, frc, record = _fields(word)

        def arithmetic(cpu: SupervisorCpu, pc: int) -> int:
            fpscr = cpu.fpscr
            result = operation(cpu.fpr, fra, frb, frc, target, fpscr & RN, fpscr)
            _complete(cpu, frt, result, single, record)
            return (pc + 4) & M32
        return _available(arithmetic)
    return build


def build_frsp(word: int) -> FloatHandler:
    frt, _, frb, _, record = _fields(word)

    def frsp(cpu: SupervisorCpu, pc: int) -> int:
        _complete(cpu, frt, round_to_single(cpu.fpr[frb], cpu.fpscr & RN, cpu.fpscr), True, record)
        return (pc + 4) & M32
    return _available(frsp)


def _convert_builder(toward_zero: bool) -> Callable[[int], FloatHandler]:
    def build(word: int) -> FloatHandler:
        frt, _, frb, _, record = _fields(word)

        def convert_to_integer(cpu: SupervisorCpu, pc: int) -> int:
            old = cpu.fpscr
            value, status = to_int32(cpu.fpr[frb], TOWARD_ZERO if toward_zero else old & RN)
            new = (old & ~(FR | FI)) | status
            if not (status & VX_CAUSES and old & VE):
                cpu.fpr[frt] = value
                if status & VXCVI:    # FPRF is undefined here; QEMU's choice: the quiet-NaN class
                    new = (new & ~FPRF) | (CLASS_QNAN << FPRF_SHIFT)
            _store_fpscr(cpu, old, new, status, record)
            return (pc + 4) & M32
        return _available(convert_to_integer)
    return build


def _compare_builder(ordered: bool) -> Callable[[int], FloatHandler]:
    def build(word: int) -> FloatHandler:
        _, fra, frb, _, _ = _fields(word)
        shift = 28 - 4 * fields.crfd(word)

        def compare_float(cpu: SupervisorCpu, pc: int) -> int:
            a, b = cpu.fpr[fra], cpu.fpr[frb]
            code = compare(a, b)
            old = cpu.fpscr
            status = 0
            if is_signalling(a) or is_signalling(b):
                status = VXSNAN | (VXVC if ordered and not old & VE else 0)
            elif ordered and code == UNORDERED:
                status = VXVC
            cpu.cr = (cpu.cr & ~(0xF << shift) & M32) | (code << shift)
            _store_fpscr(cpu, old, (old & ~FPCC) | (code << FPRF_SHIFT) | status, status, False)
            return (pc + 4) & M32
        return _available(compare_float)
    return build


def _move_builder(operation: Callable[[int], int]) -> Callable[[int], FloatHandler]:
    def build(word: int) -> FloatHandler:
        frt, _, frb, _, record = _fields(word)

        def move(cpu: SupervisorCpu, pc: int) -> int:
            cpu.fpr[frt] = operation(cpu.fpr[frb])
            if record:
                _record(cpu)
            return (pc + 4) & M32
        return _available(move)
    return build


def build_fsel(word: int) -> FloatHandler:
    frt, fra, frb, frc, record = _fields(word)

    def fsel(cpu: SupervisorCpu, pc: int) -> int:
        a = cpu.fpr[fra]
        greater_or_equal = not is_nan(a) and (not a & SIGN or not a & MAGNITUDE)
        cpu.fpr[frt] = cpu.fpr[frc] if greater_or_equal else cpu.fpr[frb]
        if record:
            _record(cpu)
        return (pc + 4) & M32
    return _available(fsel)


def build_mffs(word: int) -> FloatHandler:
    frt, _, _, _, record = _fields(word)

    def mffs(cpu: SupervisorCpu, pc: int) -> int:
        cpu.fpr[frt] = cpu.fpscr
        if record:
            _record(cpu)
        return (pc + 4) & M32
    return _available(mffs)


def _write_fields(cpu: SupervisorCpu, mask: int, value: int, record: bool) -> None:
    """mtfsf/mtfsfi: FPSCR bits under ``mask`` from ``value``. FX changes only when field 0 is written
    (then from ``value``, not by the 0 -> 1 rule); FEX and VX are always recomputed."""
    old = cpu.fpscr
    _store_fpscr(cpu, old, (old & ~mask) | (value & mask), 0, record, fx_rule=False)


def _field_mask(field_mask: int) -> int:
    return sum(0xF << (28 - 4 * index) for index in range(8) if field_mask & (0x80 >> index))


def build_mtfsf(word: int) -> FloatHandler:
    _, _, frb, _, record = _fields(word)
    every_field = fields.mtfsf_all(word)
    upper_word = fields.fpscr_upper(word)
    mask = M32 if every_field else 0 if upper_word else _field_mask(fields.flm(word))

    def mtfsf(cpu: SupervisorCpu, pc: int) -> int:
        _write_fields(cpu, mask, cpu.fpr[frb] & M32, record)
        return (pc + 4) & M32
    return _available(mtfsf)


def build_mtfsfi(word: int) -> FloatHandler:
    shift = 28 - 4 * fields.crfd(word)
    immediate = fields.fpscr_immediate(word) << shift
    mask = 0 if fields.fpscr_upper(word) else 0xF << shift
    record = fields.rc(word)

    def mtfsfi(cpu: SupervisorCpu, pc: int) -> int:
        _write_fields(cpu, mask, immediate, record)
        return (pc + 4) & M32
    return _available(mtfsfi)


def _bit_builder(set_bit: bool) -> Callable[[int], FloatHandler]:
    def build(word: int) -> FloatHandler:
        bit = 1 << (31 - fields.crbt(word))
        record = fields.rc(word)
        writable = bit & ~(FEX | VX)

        def set_or_clear_bit(cpu: SupervisorCpu, pc: int) -> int:
            old = cpu.fpscr
            _store_fpscr(cpu, old, old | writable if set_bit else old & ~writable, 0, record)
            return (pc + 4) & M32
        return _available(set_or_clear_bit)
    return build


def build_mcrfs(word: int) -> FloatHandler:
    destination = 28 - 4 * fields.crfd(word)
    source = 28 - 4 * fields.crfs(word)
    cleared = (0xF << source) & (FX | STICKY_EXCEPTIONS)

    def mcrfs(cpu: SupervisorCpu, pc: int) -> int:
        old = cpu.fpscr
        cpu.cr = (cpu.cr & ~(0xF << destination) & M32) | (((old >> source) & 0xF) << destination)
        cpu.fpscr = summarise(old & ~cleared)
        return (pc + 4) & M32
    return _available(mcrfs)


# ===================================================================================================
# The table
# ===================================================================================================
_E500MC = frozenset({"e500mc"})


def _d(mnemonic: str, primary: int, build: Callable[[int], FloatHandler]) -> InstructionSpec:
    return InstructionSpec(mnemonic=mnemonic, primary=primary, xo=None, xo_bits=0, build=build,  # type: ignore[arg-type]
                           models=_E500MC)


def _x(mnemonic: str, primary: int, xo: int, build: Callable[[int], FloatHandler]) -> InstructionSpec:
    return InstructionSpec(mnemonic=mnemonic, primary=primary, xo=xo, xo_bits=10, build=build,  # type: ignore[arg-type]
                           models=_E500MC)


def _a(mnemonic: str, primary: int, xo: int, build: Callable[[int], FloatHandler]) -> InstructionSpec:
    return InstructionSpec(mnemonic=mnemonic, primary=primary, xo=xo, xo_bits=5, build=build,  # type: ignore[arg-type]
                           models=_E500MC)


_MEMORY = (
    # mnemonic, primary (D-form) or extended opcode under 31 (X-form), width, store, update
    ("lfs", 48, 4, False, False), ("lfsu", 49, 4, False, True), ("lfd", 50, 8, False, False),
    ("lfdu", 51, 8, False, True), ("stfs", 52, 4, True, False), ("stfsu", 53, 4, True, True),
    ("stfd", 54, 8, True, False), ("stfdu", 55, 8, True, True),
)
_MEMORY_INDEXED = (
    ("lfsx", 535, 4, False, False), ("lfsux", 567, 4, False, True), ("lfdx", 599, 8, False, False),
    ("lfdux", 631, 8, False, True), ("stfsx", 663, 4, True, False), ("stfsux", 695, 4, True, True),
    ("stfdx", 727, 8, True, False), ("stfdux", 759, 8, True, True), ("stfiwx", 983, 0, True, False),
)
_ARITHMETIC = (
    # mnemonic stem, A-form extended opcode, kind; op 63 is double precision, op 59 single ("s").
    ("fdiv", 18, "div"), ("fsub", 20, "sub"), ("fadd", 21, "add"), ("fmul", 25, "mul"),
    ("fmsub", 28, "msub"), ("fmadd", 29, "madd"), ("fnmsub", 30, "nmsub"), ("fnmadd", 31, "nmadd"),
)

SPECS: list[InstructionSpec] = [
    *[_d(name, primary, _memory_builder(width, store, update, False))
      for name, primary, width, store, update in _MEMORY],
    *[_x(name, 31, xo, _memory_builder(width, store, update, True))
      for name, xo, width, store, update in _MEMORY_INDEXED],
    *[_a(stem, 63, xo, _arithmetic_builder(kind, False)) for stem, xo, kind in _ARITHMETIC],
    *[_a(stem + "s", 59, xo, _arithmetic_builder(kind, True)) for stem, xo, kind in _ARITHMETIC],
    _a("fres", 59, 24, _arithmetic_builder("re", True)),
    _a("frsqrte", 63, 26, _arithmetic_builder("rsqrte", False)),
    _a("fsel", 63, 23, build_fsel),
    _x("frsp", 63, 12, build_frsp),
    _x("fctiw", 63, 14, _convert_builder(False)),
    _x("fctiwz", 63, 15, _convert_builder(True)),
    _x("fcmpu", 63, 0, _compare_builder(False)),
    _x("fcmpo", 63, 32, _compare_builder(True)),
    _x("fmr", 63, 72, _move_builder(lambda bits: bits)),
    _x("fneg", 63, 40, _move_builder(lambda bits: bits ^ SIGN)),
    _x("fabs", 63, 264, _move_builder(lambda bits: bits & MAGNITUDE)),
    _x("fnabs", 63, 136, _move_builder(lambda bits: bits | SIGN)),
    _x("mffs", 63, 583, build_mffs),
    _x("mtfsf", 63, 711, build_mtfsf),
    _x("mtfsfi", 63, 134, build_mtfsfi),
    _x("mtfsb0", 63, 70, _bit_builder(False)),
    _x("mtfsb1", 63, 38, _bit_builder(True)),
    _x("mcrfs", 63, 64, build_mcrfs),
]

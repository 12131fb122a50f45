"""The e500mc FPU (emulator.ops_float): per-instruction behaviour, rounding against an independent
exact-rational model in every rounding mode, and the places where the architecture and QEMU differ
(our core follows the architecture; tests/test_unicorn_float.py and the lockstep harness mask them).
"""

from __future__ import annotations

import struct
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.board import Machine
from emulator.decoder import decode
from emulator.exceptions import ESR_FP, ESR_PIL, IVOR_FP_UNAVAILABLE, IVOR_PROGRAM, Interrupt
from emulator.ops_float import (
    DOUBLE,
    FEX,
    FI,
    FPRF_SHIFT,
    FR,
    FX,
    OE,
    OX,
    SINGLE,
    UE,
    UX,
    VE,
    VX,
    VXCVI,
    VXIMZ,
    VXISI,
    VXSNAN,
    XX,
    ZE,
    ZX,
    Format,
    add,
    divide,
    double_to_single,
    multiply,
    multiply_add,
    single_to_double,
)
from tests.support.flatcpu import FlatCpu

MSR_FP = 0x2000
MSR_FE0 = 0x0800
CODE = 0x1000


def bits(value: float) -> int:
    return int(struct.unpack(">Q", struct.pack(">d", value))[0])


def value(pattern: int) -> float:
    return float(struct.unpack(">d", struct.pack(">Q", pattern))[0])


def a_form(primary: int, xo: int, frt: int, fra: int, frb: int, frc: int = 0, rc: int = 0) -> int:
    return (primary << 26) | (frt << 21) | (fra << 16) | (frb << 11) | (frc << 6) | (xo << 1) | rc


def x_form(xo: int, frt: int, fra: int, frb: int, rc: int = 0, primary: int = 63) -> int:
    return (primary << 26) | (frt << 21) | (fra << 16) | (frb << 11) | (xo << 1) | rc


FADD, FSUB, FMUL, FDIV, FMADD, FNMADD, FNMSUB = 21, 20, 25, 18, 29, 31, 30


def run(words: list[int], fprs: dict[int, int], fpscr: int = 0, msr: int = MSR_FP) -> FlatCpu:
    cpu = FlatCpu(model_name="e500mc")
    cpu.msr = msr
    for index, pattern in fprs.items():
        cpu.fpr[index] = pattern
    cpu.fpscr = fpscr
    cpu.run(words, address=CODE)
    return cpu


def fprf(cpu: FlatCpu) -> int:
    return (cpu.fpscr >> FPRF_SHIFT) & 0x1F


# ------------------------------------------------------------------------------ reference rounding
def _reference_round(exact: Fraction, target: Format, mode: int) -> int:
    """Round an exact non-zero rational to ``target`` (overflow and underflow disabled), by a
    different method than the core: scale to an integer count of quanta and pick floor or ceiling."""
    precision, minimum, maximum, _ = target
    sign = exact < 0
    magnitude = -exact if sign else exact
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    quantum = Fraction(2) ** (max(exponent, minimum) - (precision - 1))
    count = magnitude / quantum
    low = count.numerator // count.denominator
    if count == low:
        chosen = low
    elif mode == 0:
        remainder = count - low
        chosen = low + 1 if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and low % 2) else low
    elif mode == 1:
        chosen = low
    elif mode == 2:
        chosen = low if sign else low + 1
    else:
        chosen = low + 1 if sign else low
    result = chosen * quantum
    largest = (2 - Fraction(2) ** (1 - precision)) * Fraction(2) ** maximum
    if result > largest:
        to_infinity = mode == 0 or (mode == 2 and not sign) or (mode == 3 and sign)
        return ((1 << 63) if sign else 0) | (0x7FF0000000000000 if to_infinity else bits(float(largest)))
    rounded = float(result)               # exactly representable in double format
    return bits(-rounded if sign else rounded) if result else (1 << 63 if sign else 0)


def _exact(pattern: int) -> Fraction:
    return Fraction(value(pattern))


finite = st.integers(0, (1 << 64) - 1).filter(lambda b: (b >> 52) & 0x7FF != 0x7FF)
# Sampled values make exact halfway cases (ties) likely: 1 + 2**-53 and 1 + 2**-24 lie halfway between
# two doubles / singles, with even and odd neighbours.
interesting = st.one_of(finite, st.sampled_from([
    bits(1.0), bits(-1.0), bits(3.0), bits(0.1), 1, 0x0010000000000000, 0x7FEFFFFFFFFFFFFF, bits(1e-40),
    bits(3.4e38), 0x36A0000000000000, bits(2.0 ** -53), bits(1 + 2.0 ** -52), bits(-(2.0 ** -53)),
    bits(2.0 ** -24), bits(1 + 2.0 ** -23), bits(3 * 2.0 ** -25), bits(0.5)]))


@settings(max_examples=1500, deadline=None)
@given(a=interesting, b=interesting, c=interesting, mode=st.integers(0, 3), single=st.booleans(),
       operation=st.sampled_from(["add", "mul", "div", "fma"]))
def test_rounding_matches_exact_rational_model(a: int, b: int, c: int, mode: int, single: bool,
                                               operation: str) -> None:
    target = SINGLE if single else DOUBLE
    if operation == "add":
        exact = _exact(a) + _exact(b)
        result, status = add(a, b, target, mode, 0)
    elif operation == "mul":
        exact = _exact(a) * _exact(c)
        result, status = multiply(a, c, target, mode, 0)
    elif operation == "div":
        if not value(b):
            return
        exact = _exact(a) / _exact(b)
        result, status = divide(a, b, target, mode, 0)
    else:
        exact = _exact(a) * _exact(c) + _exact(b)
        result, status = multiply_add(a, c, b, False, target, mode, 0)
    if not exact:
        assert not result & ~(1 << 63)
        return
    assert result == _reference_round(exact, target, mode)
    rounded = _exact(result) if (result >> 52) & 0x7FF != 0x7FF else None
    inexact = rounded != exact
    assert bool(status & XX) == inexact and bool(status & FI) == inexact
    if rounded is not None:
        assert bool(status & FR) == (abs(rounded) > abs(exact))


# ------------------------------------------------------------------------------ status bits
def test_fadd_sets_fr_fi_xx_fx_and_the_class() -> None:
    cpu = run([a_form(63, FADD, 0, 1, 2)], {1: bits(1.0), 2: bits(0.1)})
    assert value(cpu.fpr[0]) == 1.1
    # 1.1 in binary is above 1 + 0.1 exactly: the fraction was incremented (FR), QEMU leaves FR clear.
    assert cpu.fpscr == FX | XX | FR | FI | (0x04 << FPRF_SHIFT)


def test_exact_result_clears_fr_fi_but_keeps_sticky_xx() -> None:
    cpu = run([a_form(63, FADD, 0, 1, 2)], {1: bits(1.0), 2: bits(2.0)}, fpscr=FX | XX | FR | FI)
    assert value(cpu.fpr[0]) == 3.0 and cpu.fpscr == FX | XX | (0x04 << FPRF_SHIFT)


@pytest.mark.parametrize(("a", "b", "cause"), [
    (bits(float("inf")), bits(float("-inf")), VXISI),
    (0x7FF4000000000000, bits(1.0), VXSNAN),
])
def test_invalid_operations_give_default_or_quieted_nan(a: int, b: int, cause: int) -> None:
    cpu = run([a_form(63, FADD, 0, 1, 2)], {1: a, 2: b})
    expected = 0x7FF8000000000000 if cause == VXISI else a | (1 << 51)
    assert cpu.fpr[0] == expected
    assert cpu.fpscr == FX | VX | cause | (0x11 << FPRF_SHIFT)


def test_multiply_add_infinity_times_zero_with_nan_addend_keeps_the_nan_and_reports_vximz() -> None:
    nan = 0x7FF8000000000123
    cpu = run([a_form(63, FMADD, 0, 1, 2, 3)], {1: bits(float("inf")), 3: 0, 2: nan})
    assert cpu.fpr[0] == nan and cpu.fpscr & VXIMZ


def test_divide_by_zero() -> None:
    cpu = run([a_form(63, FDIV, 0, 1, 2)], {1: bits(-3.0), 2: 0})
    assert cpu.fpr[0] == bits(float("-inf")) and cpu.fpscr == FX | ZX | (0x09 << FPRF_SHIFT)


def test_single_precision_denormal_result_is_classified_in_single_format() -> None:
    tiny = bits(2.0 ** -140)
    cpu = run([a_form(59, FMUL, 0, 1, 0, 2)], {1: tiny, 2: bits(0.5)})
    assert value(cpu.fpr[0]) == 2.0 ** -141
    assert fprf(cpu) == 0x14               # +denormal (QEMU: +normal, by the double format)
    assert not cpu.fpscr & UX              # exact: tiny but no loss of accuracy


def test_underflow_needs_tiny_and_inexact() -> None:
    cpu = run([a_form(63, FMUL, 0, 1, 0, 2)], {1: 1, 2: bits(0.5)})     # min denormal / 2
    assert cpu.fpr[0] == 0 and cpu.fpscr & UX and cpu.fpscr & XX and fprf(cpu) == 0x02


@pytest.mark.parametrize(("mode", "expected"), [(0, float("inf")), (1, 1.7976931348623157e308),
                                                (2, float("inf")), (3, 1.7976931348623157e308)])
def test_overflow_per_rounding_mode(mode: int, expected: float) -> None:
    cpu = run([a_form(63, FMUL, 0, 1, 0, 2)], {1: bits(1e300), 2: bits(1e300)}, fpscr=mode)
    assert value(cpu.fpr[0]) == expected and cpu.fpscr & (OX | XX | FI) == OX | XX | FI


def test_fnmadd_rounds_then_negates_in_directed_modes() -> None:
    # 1 + 2**-60 rounded toward +inf is 1 + 2**-52; negated: -(1 + 2**-52). QEMU rounds the negated
    # sum toward +inf instead, giving -1.
    cpu = run([a_form(63, FNMADD, 0, 1, 2, 3)], {1: bits(2.0 ** -30), 3: bits(2.0 ** -30), 2: bits(1.0)},
              fpscr=2)
    assert value(cpu.fpr[0]) == -(1 + 2.0 ** -52)


def test_enabled_invalid_and_divide_by_zero_leave_the_target_alone() -> None:
    for xo, a, b, cause, enable in ((FSUB, bits(float("inf")), bits(float("inf")), VXISI, VE),
                                    (FDIV, bits(1.0), 0, ZX, ZE)):
        cpu = run([a_form(63, xo, 0, 1, 2)], {0: bits(42.0), 1: a, 2: b}, fpscr=enable | (0x04 << FPRF_SHIFT))
        assert value(cpu.fpr[0]) == 42.0
        assert cpu.fpscr & (cause | FEX | FX) == cause | FEX | FX
        assert fprf(cpu) == 0x04           # unchanged


def test_enabled_overflow_and_underflow_deliver_the_adjusted_result() -> None:
    cpu = run([a_form(63, FMUL, 0, 1, 0, 2)], {1: bits(1e300), 2: bits(1e300)}, fpscr=OE)
    assert value(cpu.fpr[0]) == float(Fraction(1e300) ** 2 / 2 ** 1536) and cpu.fpscr & (OX | FEX) == OX | FEX
    cpu = run([a_form(63, FMUL, 0, 1, 0, 2)], {1: bits(1e-300), 2: bits(1e-300)}, fpscr=UE)
    assert value(cpu.fpr[0]) == float(Fraction(1e-300) ** 2 * 2 ** 1536)
    assert cpu.fpscr & (UX | FEX) == UX | FEX


def test_enabled_exception_with_msr_fe_takes_a_precise_program_interrupt() -> None:
    cpu = FlatCpu(model_name="e500mc")
    cpu.msr = MSR_FP | MSR_FE0
    cpu.fpr[1], cpu.fpr[2] = bits(1.0), 0
    cpu.fpscr = ZE
    cpu.write_words(CODE, [a_form(63, FDIV, 0, 1, 2)])
    with pytest.raises(Interrupt) as raised:
        cpu.step(CODE)
    assert raised.value.ivor == IVOR_PROGRAM and raised.value.esr == ESR_FP
    assert cpu.fpscr & ZX and cpu.fpscr & FEX


def test_fp_unavailable_and_e500v2_illegal() -> None:
    word = a_form(63, FADD, 0, 1, 2)
    with pytest.raises(Interrupt) as raised:
        run([word], {}, msr=0)
    assert raised.value.ivor == IVOR_FP_UNAVAILABLE
    _spec, handler, _cycles = decode(word, "e500v2")
    with pytest.raises(Interrupt) as raised:
        handler(FlatCpu(model_name="e500v2"), CODE)
    assert raised.value.ivor == IVOR_PROGRAM and raised.value.esr == ESR_PIL


# ------------------------------------------------------------------------------ conversions
@pytest.mark.parametrize(("source", "mode", "expected", "status"), [
    (-3.5, 0, 0xFFFFFFFFFFFFFFFC, XX | FI | FR),
    (2.5, 0, 2, XX | FI),
    (2.5, 2, 3, XX | FI | FR),
    (-2.5, 3, 0xFFFFFFFFFFFFFFFD, XX | FI | FR),
    (2147483647.5, 0, 0x7FFFFFFF, VXCVI | VX),
    (-2147483649.0, 0, 0xFFFFFFFF80000000, VXCVI | VX),
    (float("-inf"), 0, 0xFFFFFFFF80000000, VXCVI | VX),
    (float("nan"), 0, 0x80000000, VXCVI | VX),
])
def test_fctiw(source: float, mode: int, expected: int, status: int) -> None:
    cpu = run([x_form(14, 0, 0, 1)], {1: bits(source)}, fpscr=mode)
    assert cpu.fpr[0] == expected
    assert cpu.fpscr & ~(FX | 3 | (0x1F << FPRF_SHIFT)) == status


def test_fctiwz_truncates_whatever_the_mode() -> None:
    cpu = run([x_form(15, 0, 0, 1)], {1: bits(-7.9)}, fpscr=2)
    assert cpu.fpr[0] == (-7) & 0xFFFFFFFFFFFFFFFF


@pytest.mark.parametrize("single", [0x00000001, 0x80400000, 0x7F7FFFFF, 0x7F800001, 0xFFC00123,
                                    0x3F800000, 0])
def test_single_load_store_round_trip_is_bit_exact(single: int) -> None:
    assert double_to_single(single_to_double(single)) == single


def test_stfs_truncates_and_denormalises_without_rounding() -> None:
    assert double_to_single(bits(1.0 + 2.0 ** -30)) == 0x3F800000        # truncated, not rounded
    assert double_to_single(bits(2.0 ** -127)) == 0x00400000              # single denormal
    assert double_to_single(bits(-(2.0 ** -200))) == 0x80000000           # below: signed zero
    assert single_to_double(0x7F800001) == 0x7FF0000020000000             # sNaN stays signalling


def test_loads_stores_update_forms_and_stfiwx() -> None:
    cpu = FlatCpu(model_name="e500mc")
    cpu.msr = MSR_FP
    cpu.gpr[3] = 0x2000
    cpu.fpr[1] = bits(-2.5)
    cpu.fpr[2] = 0x123456789ABCDEF0
    words = [
        (54 << 26) | (1 << 21) | (3 << 16) | 8,          # stfd f1, 8(r3)
        (53 << 26) | (1 << 21) | (3 << 16) | 16,         # stfsu f1, 16(r3): r3 = 0x2010
        (31 << 26) | (2 << 21) | (0 << 16) | (3 << 11) | (983 << 1),   # stfiwx f2, 0, r3
        (50 << 26) | (4 << 21) | (0 << 16) | 0x2008,     # lfd f4, 0x2008(0)
        (48 << 26) | (5 << 21) | (3 << 16) | 0,          # lfs f5, 0(r3): the stfiwx word as a single
    ]
    cpu.run(words, address=CODE)
    assert cpu.gpr[3] == 0x2010
    assert cpu.load64(0x2008) == bits(-2.5) and cpu.load32(0x2010) == 0x9ABCDEF0
    assert cpu.fpr[4] == bits(-2.5) and cpu.fpr[5] == single_to_double(0x9ABCDEF0)
    _spec, handler, _cycles = decode((49 << 26) | (1 << 21), "e500mc")     # lfsu with RA=0
    with pytest.raises(Interrupt):
        handler(cpu, CODE)


# ------------------------------------------------------------------------------ compares, moves
def test_fcmpu_and_fcmpo() -> None:
    cpu = run([x_form(0, 3 << 2, 1, 2)], {1: bits(1.0), 2: bits(2.0)})
    assert (cpu.cr >> 16) & 0xF == 8 and fprf(cpu) & 0xF == 8
    cpu = run([x_form(32, 3 << 2, 1, 2)], {1: bits(float("nan")), 2: bits(2.0)})
    assert (cpu.cr >> 16) & 0xF == 1 and cpu.fpscr & 0x00080000        # VXVC
    cpu = run([x_form(0, 0, 1, 2)], {1: 0, 2: 1 << 63})                 # +0 == -0
    assert cpu.cr >> 28 == 2


def test_moves_fsel_and_record_forms() -> None:
    cpu = run([x_form(40, 0, 0, 1), x_form(264, 2, 0, 1), x_form(136, 3, 0, 1), x_form(72, 4, 0, 1, rc=1),
               a_form(63, 23, 5, 6, 7, 1)],
              {1: bits(-1.5), 6: 1 << 63, 7: bits(9.0)}, fpscr=FX | OX)
    assert [value(cpu.fpr[i]) for i in (0, 2, 3, 4)] == [1.5, 1.5, -1.5, -1.5]
    assert value(cpu.fpr[5]) == -1.5      # fsel: -0 >= 0, so frC (f1)
    assert (cpu.cr >> 24) & 0xF == 0x9     # CR1 = FX, FEX, VX, OX


# ------------------------------------------------------------------------------ FPSCR instructions
def test_fpscr_instructions() -> None:
    mtfsfi_field1 = (63 << 26) | (1 << 23) | (0xA << 12) | (134 << 1)    # UX, XX
    cpu = run([mtfsfi_field1], {})
    assert cpu.fpscr == UX | XX               # FX is only written through field 0
    cpu = run([(63 << 26) | (3 << 21) | (38 << 1)], {})                  # mtfsb1 3 (OX)
    assert cpu.fpscr == FX | OX
    cpu = run([(63 << 26) | (2 << 21) | (38 << 1)], {})                  # mtfsb1 2 (VX): not settable
    assert cpu.fpscr == 0
    mcrfs = (63 << 26) | (4 << 23) | (0 << 18) | (64 << 1)               # mcrfs cr4, 0
    cpu = run([mcrfs], {}, fpscr=FX | OX | VX | 0x00800000)
    assert (cpu.cr >> 12) & 0xF == 0xB and cpu.fpscr == 0x00800000 | VX  # FX, OX cleared; VXISI stays
    mtfsf_all = (63 << 26) | (0xFF << 17) | (1 << 11) | (711 << 1)       # mtfsf 0xff, f1
    cpu = run([mtfsf_all, (63 << 26) | (583 << 1)], {1: 0x00000000_61000080})
    assert cpu.fpscr == 0x01000080 | VX | FEX | 0x20000000 and cpu.fpr[0] == cpu.fpscr   # FEX, VX computed


# ------------------------------------------------------------------------------ whole machine
def test_the_core_runs_fp_code_through_its_memory_paths() -> None:
    machine = Machine("e500mc")
    machine.reset()
    cpu = machine.cpu
    cpu.set_msr(cpu.msr | MSR_FP)
    program = [
        (50 << 26) | (1 << 21) | (3 << 16) | 0,     # lfd f1, 0(r3)
        a_form(63, FMUL, 2, 1, 0, 1),               # fmul f2, f1, f1
        (55 << 26) | (2 << 21) | (3 << 16) | 8,     # stfdu f2, 8(r3)
    ]
    ram = machine.bus.ram
    for index, word in enumerate(program):
        struct.pack_into(">I", ram, 0x10000 + 4 * index, word)
    struct.pack_into(">Q", ram, 0x20000, bits(1.5))
    cpu.gpr[3] = 0x20000
    cpu.pc = 0x10000
    for _ in program:
        cpu.step()
    assert value(struct.unpack_from(">Q", ram, 0x20008)[0]) == 2.25 and cpu.gpr[3] == 0x20008


def test_mtmsr_enabling_fe_with_an_exception_pending_interrupts_after_the_mtmsr() -> None:
    machine = Machine("e500mc")
    machine.reset()
    cpu = machine.cpu
    mtmsr_r3 = 0x7C600124
    struct.pack_into(">II", machine.bus.ram, 0x10000, mtmsr_r3, mtmsr_r3)
    cpu.set_msr(MSR_FP)
    cpu.fpscr = ZE | ZX | FX | FEX
    cpu.gpr[3] = MSR_FP | MSR_FE0
    cpu.pc = 0x10000
    cpu.step()
    assert cpu.read_spr(62) == ESR_FP and cpu.read_spr(26) == 0x10004      # ESR, SRR0: the next one
    assert cpu.read_spr(27) & MSR_FE0                                      # SRR1: the new MSR
    cpu.set_msr(MSR_FP | MSR_FE0)       # already enabled: a second mtmsr does not interrupt again
    cpu.pc = 0x10004
    cpu.step()
    assert cpu.pc == 0x10008

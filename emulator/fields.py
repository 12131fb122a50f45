"""The named fields of a 32-bit Power ISA (Book E) instruction word, one small function each.

Every module that takes an instruction word apart (the ``ops_*`` tables, :mod:`emulator.isa`'s
disassembly) reads its fields through these, so each field's bit position is written once. Bits are
numbered as the architecture numbers them: bit 0 is the most significant. Fields that share a position
under another name in some forms (rS/rD, TO/BO/frT, BI/rA, SH/NB/rB) have one function per name, so
that a builder says which field it means.

Imports: nothing.
"""

from __future__ import annotations


def primary(word: int) -> int:
    """Bits 0-5: the primary opcode."""
    return word >> 26


def rd(word: int) -> int:
    """Bits 6-10: the target GPR (rD); the same bits as rS, TO, BO, frT, crbD."""
    return (word >> 21) & 31


def rs(word: int) -> int:
    """Bits 6-10: the source GPR of stores, logical and shift forms (rS)."""
    return (word >> 21) & 31


def to(word: int) -> int:
    """Bits 6-10: the trap conditions of tw/twi (TO)."""
    return (word >> 21) & 31


def bo(word: int) -> int:
    """Bits 6-10: the branch options of bc/bclr/bcctr (BO)."""
    return (word >> 21) & 31


def crbd(word: int) -> int:
    """Bits 6-10: the CR bit a CR-logical instruction writes (crbD)."""
    return (word >> 21) & 31


def crfd(word: int) -> int:
    """Bits 6-8: the CR field a compare, mcrf or mcrxr writes (crfD)."""
    return (word >> 23) & 7


def long_compare(word: int) -> bool:
    """Bit 10 of a compare: L, a 64-bit compare (an illegal form on 32-bit e500)."""
    return bool(word & 0x00200000)


def ra(word: int) -> int:
    """Bits 11-15: the GPR rA (base register of an effective address; 0 means the value 0 there)."""
    return (word >> 16) & 31


def bi(word: int) -> int:
    """Bits 11-15: the CR bit a conditional branch tests (BI)."""
    return (word >> 16) & 31


def crba(word: int) -> int:
    """Bits 11-15: the first CR bit a CR-logical instruction reads (crbA)."""
    return (word >> 16) & 31


def crfs(word: int) -> int:
    """Bits 11-13: the CR field mcrf copies (crfS)."""
    return (word >> 18) & 7


def rb(word: int) -> int:
    """Bits 16-20: the GPR rB."""
    return (word >> 11) & 31


def sh(word: int) -> int:
    """Bits 16-20: the shift or rotate amount of srawi and rlwinm/rlwimi (SH)."""
    return (word >> 11) & 31


def crbb(word: int) -> int:
    """Bits 16-20: the second CR bit a CR-logical instruction reads (crbB)."""
    return (word >> 11) & 31


def fxm(word: int) -> int:
    """Bits 12-19: the CR field mask of mtcrf/mfocrf (FXM, 0x80 names CR0)."""
    return (word >> 12) & 0xFF


def one_field(word: int) -> bool:
    """Bit 11 of mtcrf/mfcr: set in the mtocrf/mfocrf forms, which name exactly one field."""
    return bool(word & 0x00100000)


def spr(word: int) -> int:
    """Bits 11-20: the SPR number, whose two 5-bit halves the encoding swaps."""
    field = (word >> 11) & 0x3FF
    return ((field & 0x1F) << 5) | (field >> 5)


def mb(word: int) -> int:
    """Bits 21-25: the first bit of a rotate mask (MB)."""
    return (word >> 6) & 31


def bc(word: int) -> int:
    """Bits 21-25: the CR bit isel tests (BC)."""
    return (word >> 6) & 31


def frc(word: int) -> int:
    """Bits 21-25: the FPR frC of A-form floating-point instructions."""
    return (word >> 6) & 31


def me(word: int) -> int:
    """Bits 26-30: the last bit of a rotate mask (ME)."""
    return (word >> 1) & 31


def xo10(word: int) -> int:
    """Bits 21-30: the extended opcode of X-, XL- and XFX-forms."""
    return (word >> 1) & 0x3FF


def xo9(word: int) -> int:
    """Bits 22-30: the extended opcode of XO-forms (the OE bit left out)."""
    return (word >> 1) & 0x1FF


def uimm(word: int) -> int:
    """Bits 16-31: the unsigned 16-bit immediate (UIMM)."""
    return word & 0xFFFF


def simm(word: int) -> int:
    """Bits 16-31: the signed 16-bit immediate or displacement (SIMM, d), as a Python int."""
    return ((word & 0xFFFF) ^ 0x8000) - 0x8000


def branch_offset(word: int) -> int:
    """Bits 6-29 of b/bl/ba/bla: the signed word-aligned displacement (LI || 0b00)."""
    return ((word & 0x03FFFFFC) ^ 0x02000000) - 0x02000000


def branch_displacement(word: int) -> int:
    """Bits 16-29 of bc: the signed word-aligned displacement (BD || 0b00)."""
    return ((word & 0xFFFC) ^ 0x8000) - 0x8000


def oe(word: int) -> bool:
    """Bit 21 of an XO-form: OE, record overflow in XER[OV/SO]."""
    return bool(word & 0x400)


def rc(word: int) -> bool:
    """Bit 31: Rc, record the result's comparison with 0 in CR0 (or CR1 for FP)."""
    return bool(word & 1)


def lk(word: int) -> bool:
    """Bit 31 of a branch: LK, put the address of the next instruction in LR."""
    return bool(word & 1)


def aa(word: int) -> bool:
    """Bit 30 of b/bc: AA, the target is absolute rather than relative to the branch."""
    return bool(word & 2)


def xo11(word: int) -> int:
    """Bits 21-31: the extended opcode of the SPE and embedded floating-point forms."""
    return word & 0x7FF


def tlbilx_type(word: int) -> int:
    """Bits 9-10 of tlbilx: T, what to invalidate (0 all, 1 one PID, 3 one address; 2 reserved)."""
    return (word >> 21) & 3


def wrteei_enable(word: int) -> bool:
    """Bit 16 of wrteei: E, the new MSR[EE]."""
    return bool(word & 0x8000)


def frt(word: int) -> int:
    """Bits 6-10: the target FPR (frT), or the FPR a floating-point store reads (frS)."""
    return (word >> 21) & 31


def fra(word: int) -> int:
    """Bits 11-15: the FPR frA."""
    return (word >> 16) & 31


def frb(word: int) -> int:
    """Bits 16-20: the FPR frB."""
    return (word >> 11) & 31


def crbt(word: int) -> int:
    """Bits 6-10 of mtfsb0/mtfsb1: the FPSCR bit to clear or set (crbT)."""
    return (word >> 21) & 31


def flm(word: int) -> int:
    """Bits 7-14 of mtfsf: the FPSCR field mask (FLM, 0x80 names field 0)."""
    return (word >> 17) & 0xFF


def mtfsf_all(word: int) -> bool:
    """Bit 6 of mtfsf: L, write every FPSCR field whatever FLM says."""
    return bool(word & (1 << 25))


def fpscr_upper(word: int) -> bool:
    """Bit 15 of mtfsf/mtfsfi: W, the upper word of a 64-bit FPSCR (none on e500mc: nothing written)."""
    return bool(word & (1 << 16))


def fpscr_immediate(word: int) -> int:
    """Bits 16-19 of mtfsfi: the 4-bit immediate (U)."""
    return (word >> 12) & 0xF

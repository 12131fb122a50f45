"""Facts about the e500 core variants the emulator can be: e500v2 (QEMU ``ppce500`` default) and e500mc.

One place for per-model constants (PVR/SVR, debug comparator counts, which save registers the debug
interrupt uses, SPE vs FPU, the software-breakpoint opcode, implemented MSR bits and IVORs). Used by
:mod:`emulator.cpu`, :mod:`emulator.ops_system` and, through the contract, by ``gdbstub``.
Imports: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

# MSR bits (reference e500-core.md 2.1).
MSR_GS = 0x10000000
MSR_UCLE = 0x04000000
MSR_SPE = 0x02000000
MSR_WE = 0x00040000
MSR_CE = 0x00020000
MSR_EE = 0x00008000
MSR_PR = 0x00004000
MSR_FP = 0x00002000
MSR_ME = 0x00001000
MSR_FE0 = 0x00000800
MSR_UBLE = 0x00000400
MSR_DE = 0x00000200
MSR_FE1 = 0x00000100
MSR_IS = 0x00000020
MSR_DS = 0x00000010
MSR_PMM = 0x00000004
MSR_RI = 0x00000002

_E500V2_MSR_MASK = (MSR_UCLE | MSR_SPE | MSR_WE | MSR_CE | MSR_EE | MSR_PR | MSR_FP | MSR_ME | MSR_FE0
                    | MSR_UBLE | MSR_DE | MSR_FE1 | MSR_IS | MSR_DS)
_E500MC_MSR_MASK = (MSR_GS | MSR_UCLE | MSR_CE | MSR_EE | MSR_PR | MSR_FP | MSR_ME | MSR_FE0 | MSR_DE
                    | MSR_FE1 | MSR_IS | MSR_DS | MSR_PMM | MSR_RI)

# IVORs each model implements (QEMU ivor_mask, reference 3.1).
_E500V2_IVORS = frozenset([*range(16), 32, 33, 34, 35])
_E500MC_IVORS = frozenset([*range(16), *range(35, 42)])

SW_BREAK_TRAP = 0x7FE00008      # tw 31,0,0
SW_BREAK_EHPRIV_1 = 0x7C000A1C  # ehpriv 1 (KVMPPC_INST_EHPRIV_DEBUG)

# What mfspr SVR gives on qemu-system-ppc 7.2 -M ppce500 with either core (read by a guest): QEMU's
# virtual board is no particular SoC.
SVR_PPCE500 = 0
# L1CFG0/1 as QEMU 7.2 presents them to a guest (mfspr): 32 KiB, 8-way (CNWAY 7, CSIZE 32); e500mc
# adds 0x01000000 for its 64-byte cache blocks.
_L1CFG_E500V2 = 0x00003820
_L1CFG_E500MC = 0x01003820


@dataclass(frozen=True)
class CpuModel:
    """Static description of one e500 variant.

    The contract lists ``num_iac``/``num_dac`` before the fields without defaults; dataclasses need
    defaulted fields last, so they are at the end here (keyword construction is unaffected).
    """

    name: str
    pvr: int
    svr: int
    debug_uses_dsrr: bool      # e500mc: DSRR0/1 + rfdi; e500v2: CSRR0/1 + rfci
    has_spe: bool
    has_fpu: bool
    sw_break_opcode: int
    msr_mask: int              # MSR bits that mtmsr/rfi can set
    ivors: frozenset[int]      # implemented IVOR numbers
    has_wait: bool             # `wait` instruction (e500mc)
    has_hypervisor: bool       # E.HV: ehpriv -> hypervisor privilege interrupt
    l1cfg0: int
    l1cfg1: int
    cache_line_size: int       # bytes: what dcbz zeroes and icbi invalidates (the device tree says the same)
    num_iac: int = 2
    num_dac: int = 2
    has_l2csr0: bool = False   # e500mc: L2CSR0 (SPR 1017) with self-clearing flash commands


MODELS: dict[str, CpuModel] = {
    "e500v2": CpuModel(
        name="e500v2", pvr=0x80210030, svr=SVR_PPCE500, debug_uses_dsrr=False, has_spe=True, has_fpu=False,
        sw_break_opcode=SW_BREAK_TRAP, msr_mask=_E500V2_MSR_MASK, ivors=_E500V2_IVORS, has_wait=False,
        has_hypervisor=False,
        l1cfg0=_L1CFG_E500V2, l1cfg1=_L1CFG_E500V2, cache_line_size=32),
    "e500mc": CpuModel(
        name="e500mc", pvr=0x80230020, svr=SVR_PPCE500, debug_uses_dsrr=True, has_spe=False, has_fpu=True,
        sw_break_opcode=SW_BREAK_EHPRIV_1, msr_mask=_E500MC_MSR_MASK, ivors=_E500MC_IVORS, has_wait=True,
        has_hypervisor=True,
        l1cfg0=_L1CFG_E500MC, l1cfg1=_L1CFG_E500MC, cache_line_size=64, has_l2csr0=True),
}

"""Supervisor-level, SPR, synchronisation, cache, TLB and unavailable-unit instruction handlers.

Each entry of :data:`SPECS` is an :class:`emulator.isa.InstructionSpec` whose ``build(word)`` returns
a handler ``(cpu, pc) -> next pc`` with the instruction's fields pre-extracted. ``privileged=True``
makes :mod:`emulator.isa` wrap the handler with the MSR[PR] -> ESR[PPR] check.

Choices (documented in the report and here):
- mfspr/mtspr: SPR number bit 0x10 set -> privileged (ESR[PPR] in problem state). An unknown SPR with
  bit 0x10 clear -> ESR[PIL]. An unknown privileged SPR in supervisor state is a no-op, as in QEMU
  (the e500 manual leaves it undefined). A write to a read-only SPR is treated like an unknown SPR.
- SPE (e500v2) arithmetic and loads/stores are not implemented: with MSR[SPE]=0 they raise SPE
  unavailable (ESR[SPV]); otherwise ESR[PIL]. Embedded scalar single-precision (efs*) is not gated by
  MSR[SPE] and is always ESR[PIL] here. The e500mc FPU is :mod:`emulator.ops_float`.
- Cache hints and flushes are no-ops (no cache model); dcbz zeroes its line (the model's
  ``cache_line_size``: 32 bytes on e500v2, 64 on e500mc, as on QEMU) through ordinary
  stores, so translation faults and DAC watches apply; icbi drops decoded instructions of its line
  on every core of an SMP board (as msgsnd reaches every core).
  User-mode cache locking with MSR[UCLE]=0 raises a DSI with ESR[DLK]/[ILK].

Imports: :mod:`emulator.isa` (InstructionSpec), :mod:`emulator.fields`, :mod:`emulator.exceptions`,
:mod:`emulator.models`, :mod:`emulator.cpu` for type checking only.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator import fields
from emulator.exceptions import (
    ESR_DLK,
    ESR_FP,
    ESR_ILK,
    ESR_PIL,
    ESR_PPR,
    ESR_SPV,
    IVOR_DATA_STORAGE,
    IVOR_PROGRAM,
    IVOR_SPE_UNAVAILABLE,
    IVOR_SYSTEM_CALL,
    Interrupt,
)
from emulator.isa import (
    MASK32,
    NO_OPERATION,
    XER_WRITABLE,
    Chosen,
    Emitter,
    InstructionSpec,
    Semantics,
    SupervisorCpu,
    handler_builder,
    template_emitter,
)
from emulator.models import MSR_EE, MSR_FE0, MSR_FE1, MSR_PR, MSR_SPE, MSR_UCLE

SystemHandler = Callable[["SupervisorCpu", int], int]

_SPR_PRIVILEGED_BIT = 0x10
_SPR_SRR0, _SPR_SRR1 = 26, 27
_SPR_CSRR0, _SPR_CSRR1 = 58, 59
_SPR_MCSRR0, _SPR_MCSRR1 = 570, 571
_SPR_DSRR0, _SPR_DSRR1 = 574, 575
_SPR_PIR = 286
_E500MC = frozenset({"e500mc"})
_FPSCR_FEX = 0x40000000
_E500V2 = frozenset({"e500v2"})


def _x_form_ea(word: int) -> Callable[[SupervisorCpu], int]:
    ra, rb = fields.ra(word), fields.rb(word)
    if ra == 0:
        return lambda cpu: cpu.gpr[rb]
    return lambda cpu: (cpu.gpr[ra] + cpu.gpr[rb]) & 0xFFFFFFFF


# --- MSR ------------------------------------------------------------------------------------------
def build_mfmsr(word: int) -> SystemHandler:
    rd = fields.rd(word)

    def mfmsr(cpu: SupervisorCpu, pc: int) -> int:
        cpu.gpr[rd] = cpu.msr
        return (pc + 4) & 0xFFFFFFFF
    return mfmsr


def build_mtmsr(word: int) -> SystemHandler:
    rs = fields.rs(word)

    def mtmsr(cpu: SupervisorCpu, pc: int) -> int:
        enabled_before = cpu.msr & (MSR_FE0 | MSR_FE1)
        cpu.set_msr(cpu.gpr[rs])
        if not enabled_before and cpu.msr & (MSR_FE0 | MSR_FE1) and cpu.fpscr & _FPSCR_FEX:
            # An FP enabled exception already pending in the FPSCR is taken once mtmsr lets it through.
            raise Interrupt(IVOR_PROGRAM, esr=ESR_FP, after=True)
        return (pc + 4) & 0xFFFFFFFF
    return mtmsr


def build_wrtee(word: int) -> SystemHandler:
    rs = fields.rs(word)

    def wrtee(cpu: SupervisorCpu, pc: int) -> int:
        cpu.set_msr((cpu.msr & ~MSR_EE) | (cpu.gpr[rs] & MSR_EE))
        return (pc + 4) & 0xFFFFFFFF
    return wrtee


def build_wrteei(word: int) -> SystemHandler:
    enable = MSR_EE if fields.wrteei_enable(word) else 0

    def wrteei(cpu: SupervisorCpu, pc: int) -> int:
        cpu.set_msr((cpu.msr & ~MSR_EE) | enable)
        return (pc + 4) & 0xFFFFFFFF
    return wrteei


# --- SPRs -----------------------------------------------------------------------------------------
# The user-level SPRs a block keeps in locals (emulator.translate): their moves are written once, as
# Semantics from which both the decoded handler and the translator's lines derive. Every other SPR
# goes through the core's reader and writer tables (cpu.spr_readers / spr_writers).
_MOVE_FROM_LOCAL_SPR = {1: Semantics("move_from_xer", ("gpr[{rd}] = cpu.xer",)),
                        8: Semantics("move_from_lr", ("gpr[{rd}] = cpu.lr",)),
                        9: Semantics("move_from_ctr", ("gpr[{rd}] = cpu.ctr",))}
_MOVE_TO_LOCAL_SPR = {1: Semantics("move_to_xer", (f"cpu.xer = gpr[{{rs}}] & {XER_WRITABLE}",)),
                      8: Semantics("move_to_lr", ("cpu.lr = gpr[{rs}]",)),
                      9: Semantics("move_to_ctr", ("cpu.ctr = gpr[{rs}]",))}


def _select_mfspr(word: int) -> Chosen | None:
    form = _MOVE_FROM_LOCAL_SPR.get(fields.spr(word))
    return None if form is None else (form, {"rd": fields.rd(word)})


def _select_mtspr(word: int) -> Chosen | None:
    form = _MOVE_TO_LOCAL_SPR.get(fields.spr(word))
    return None if form is None else (form, {"rs": fields.rs(word)})


def build_mfspr(word: int) -> SystemHandler:
    chosen = _select_mfspr(word)
    if chosen is not None:
        return chosen[0].handler(chosen[1])
    rd, spr = fields.rd(word), fields.spr(word)
    privileged = bool(spr & _SPR_PRIVILEGED_BIT)

    def mfspr(cpu: SupervisorCpu, pc: int) -> int:
        if privileged and cpu.msr & MSR_PR:
            raise Interrupt(IVOR_PROGRAM, esr=ESR_PPR)
        reader = cpu.spr_readers.get(spr)
        if reader is None:
            if privileged:
                return (pc + 4) & 0xFFFFFFFF  # QEMU: unknown privileged SPR in supervisor state is a no-op
            raise Interrupt(IVOR_PROGRAM, esr=ESR_PIL)
        cpu.gpr[rd] = reader() & 0xFFFFFFFF
        return (pc + 4) & 0xFFFFFFFF
    return mfspr


def build_mtspr(word: int) -> SystemHandler:
    chosen = _select_mtspr(word)
    if chosen is not None:
        return chosen[0].handler(chosen[1])
    rs, spr = fields.rs(word), fields.spr(word)
    privileged = bool(spr & _SPR_PRIVILEGED_BIT)

    def mtspr(cpu: SupervisorCpu, pc: int) -> int:
        if privileged and cpu.msr & MSR_PR:
            raise Interrupt(IVOR_PROGRAM, esr=ESR_PPR)
        writer = cpu.spr_writers.get(spr)
        if writer is None:
            if privileged:
                return (pc + 4) & 0xFFFFFFFF
            raise Interrupt(IVOR_PROGRAM, esr=ESR_PIL)
        writer(cpu.gpr[rs])
        return (pc + 4) & 0xFFFFFFFF
    return mtspr


# Time-base reads (user-readable TBL/TBU) in translated blocks: the value at the instruction's own
# cycle count, which the translator provides as the local ``now`` (a loop polling the time base then
# runs translated). The decoded path reads them through the core's SPR readers, which own the timers.
_TB_READ_EXPRESSIONS = {268: "cpu.timers.tb(now) & 0xFFFFFFFF", 269: "cpu.timers.tb(now) >> 32"}
_emit_local_mfspr = template_emitter(_select_mfspr)


def emit_mfspr(word: int, pc: int) -> list[str] | None:
    """Lines for XER, LR, CTR, TBL and TBU; other SPRs call the handler."""
    time_base = _TB_READ_EXPRESSIONS.get(fields.spr(word))
    if time_base is not None:
        return [f"gpr[{fields.rd(word)}] = {time_base}"]
    return _emit_local_mfspr(word, pc)


# --- returns and system call ----------------------------------------------------------------------
def _build_return(save0: int, save1: int) -> Callable[[int], SystemHandler]:
    def build(word: int) -> SystemHandler:
        def return_from_interrupt(cpu: SupervisorCpu, pc: int) -> int:
            sprs = cpu.sprs
            target = sprs[save0] & ~3
            cpu.set_msr(sprs[save1])
            return target
        return return_from_interrupt
    return build


def build_sc(word: int) -> SystemHandler:
    def sc(cpu: SupervisorCpu, pc: int) -> int:
        raise Interrupt(IVOR_SYSTEM_CALL, after=True)
    return sc


# --- no-ops: synchronisation and cache hints ------------------------------------------------------
def _select_nop(word: int) -> Chosen:
    return NO_OPERATION, {}


build_nop = handler_builder(_select_nop)
_emit_nop = template_emitter(_select_nop)


# dcbz zeroes the cache line (the model's size) that holds EA, through ordinary stores.
_ZERO_LINE = tuple(Semantics("dcbz", (address, "s = cpu.model.cache_line_size",
                                      f"ea = ea & ({MASK32 + 1} - s)", "ZEROS(ea, s)"))
                   # [rA = 0]
                   for address in (f"ea = (gpr[{{ra}}] + gpr[{{rb}}]) & {MASK32}", "ea = gpr[{rb}]"))


def _select_dcbz(word: int) -> Chosen:
    ra = fields.ra(word)
    return _ZERO_LINE[ra == 0], {"ra": ra, "rb": fields.rb(word)}


build_dcbz = handler_builder(_select_dcbz)


def build_icbi(word: int) -> SystemHandler:
    effective_address = _x_form_ea(word)

    def icbi(cpu: SupervisorCpu, pc: int) -> int:
        pa = cpu.translate_debug(effective_address(cpu))
        if pa is not None:
            size = cpu.model.cache_line_size
            cpu.invalidate_physical(pa & ~(size - 1), size)
            for peer in cpu.other_cores:
                peer.invalidate_physical(pa & ~(size - 1), size)
        return (pc + 4) & 0xFFFFFFFF
    return icbi


def _build_cache_lock(esr_bit: int) -> Callable[[int], SystemHandler]:
    def build(word: int) -> SystemHandler:
        effective_address = _x_form_ea(word)

        def cache_lock(cpu: SupervisorCpu, pc: int) -> int:
            msr = cpu.msr
            if msr & MSR_PR and not msr & MSR_UCLE:
                raise Interrupt(IVOR_DATA_STORAGE, esr=esr_bit, dear=effective_address(cpu))
            return (pc + 4) & 0xFFFFFFFF
        return cache_lock
    return build


# --- TLB management (delegated to the MMU) --------------------------------------------------------
def build_tlbwe(word: int) -> SystemHandler:
    def tlbwe(cpu: SupervisorCpu, pc: int) -> int:
        cpu.mmu.tlbwe()
        cpu.translation_changed()
        return (pc + 4) & 0xFFFFFFFF
    return tlbwe


def build_tlbre(word: int) -> SystemHandler:
    def tlbre(cpu: SupervisorCpu, pc: int) -> int:
        cpu.mmu.tlbre()
        return (pc + 4) & 0xFFFFFFFF
    return tlbre


def build_tlbsx(word: int) -> SystemHandler:
    effective_address = _x_form_ea(word)

    def tlbsx(cpu: SupervisorCpu, pc: int) -> int:
        cpu.mmu.tlbsx(effective_address(cpu))
        return (pc + 4) & 0xFFFFFFFF
    return tlbsx


def build_tlbivax(word: int) -> SystemHandler:
    effective_address = _x_form_ea(word)

    def tlbivax(cpu: SupervisorCpu, pc: int) -> int:
        cpu.mmu.tlbivax(effective_address(cpu))
        cpu.translation_changed()
        return (pc + 4) & 0xFFFFFFFF
    return tlbivax


_TLBILX_ILLEGAL_FORM = 2


def build_tlbilx(word: int) -> SystemHandler:
    effective_address = _x_form_ea(word)
    kind = fields.tlbilx_type(word)

    def tlbilx(cpu: SupervisorCpu, pc: int) -> int:
        if kind == _TLBILX_ILLEGAL_FORM:
            raise Interrupt(IVOR_PROGRAM, esr=ESR_PIL)   # T=2 is reserved (QEMU: invalid form)
        cpu.mmu.tlbilx(kind, effective_address(cpu))
        cpu.translation_changed()
        return (pc + 4) & 0xFFFFFFFF
    return tlbilx


# --- doorbells (e500mc) ---------------------------------------------------------------------------
_MSG_TYPE_SHIFT = 27          # rB bits 32:36: 0 = doorbell, 1 = critical doorbell
_MSG_BROADCAST = 0x04000000   # every processor accepts it, whatever its PIR
_MSG_PIRTAG = 0x00003FFF


def _doorbell_type(cpu: SupervisorCpu, value: int) -> int | None:
    """The doorbell type this core accepts from a message in rB, or None when it is not for it."""
    if not value & _MSG_BROADCAST and (value & _MSG_PIRTAG) != cpu.sprs.get(_SPR_PIR, 0) & _MSG_PIRTAG:
        return None
    kind = (value >> _MSG_TYPE_SHIFT) & 0x1F
    return kind if kind in (0, 1) else None


def build_msgsnd(word: int) -> SystemHandler:
    rb = fields.rb(word)

    def msgsnd(cpu: SupervisorCpu, pc: int) -> int:
        message = cpu.gpr[rb]
        for core in (cpu, *cpu.other_cores):     # every core of the board sees the message
            kind = _doorbell_type(core, message)
            if kind is not None:
                core.set_doorbell(critical=kind == 1, pending=True)
        return (pc + 4) & 0xFFFFFFFF
    return msgsnd


def build_msgclr(word: int) -> SystemHandler:
    rb = fields.rb(word)

    def msgclr(cpu: SupervisorCpu, pc: int) -> int:
        kind = _doorbell_type(cpu, cpu.gpr[rb] | _MSG_BROADCAST)   # msgclr acts on this core only
        if kind is not None:
            cpu.set_doorbell(critical=kind == 1, pending=False)
        return (pc + 4) & 0xFFFFFFFF
    return msgclr


# --- wait, ehpriv ---------------------------------------------------------------------------------
def build_wait(word: int) -> SystemHandler:
    def wait(cpu: SupervisorCpu, pc: int) -> int:
        cpu.enter_wait()
        return (pc + 4) & 0xFFFFFFFF
    return wait


def build_ehpriv(word: int) -> SystemHandler:
    def ehpriv(cpu: SupervisorCpu, pc: int) -> int:
        cpu.ehpriv(pc)
        return (pc + 4) & 0xFFFFFFFF  # not reached: ehpriv always exits or interrupts
    return ehpriv


# --- unavailable units ----------------------------------------------------------------------------
_EFS_FIRST, _EFS_END = 0x2C0, 0x2E0   # embedded scalar single-precision: not gated by MSR[SPE]


def build_spe(word: int) -> SystemHandler:
    scalar_single = _EFS_FIRST <= fields.xo11(word) < _EFS_END

    def spe(cpu: SupervisorCpu, pc: int) -> int:
        if not scalar_single and not cpu.msr & MSR_SPE:
            raise Interrupt(IVOR_SPE_UNAVAILABLE, esr=ESR_SPV)
        raise Interrupt(IVOR_PROGRAM, esr=ESR_PIL)  # SPE/EFP arithmetic is not implemented
    return spe


def _x(mnemonic: str, xo: int, build: Callable[[int], SystemHandler], *, primary: int = 31,
       privileged: bool = False, models: frozenset[str] | None = None, cycles: int = 1,
       emit: Emitter | None = None) -> InstructionSpec:
    extra = {} if models is None else {"models": models}
    return InstructionSpec(mnemonic=mnemonic, primary=primary, xo=xo, xo_bits=10, build=build,  # type: ignore[arg-type]
                           cycles=cycles, privileged=privileged, emit=emit, **extra)


SPECS: list[InstructionSpec] = [
    _x("mfmsr", 83, build_mfmsr, privileged=True),
    _x("mtmsr", 146, build_mtmsr, privileged=True, cycles=2),
    _x("wrtee", 131, build_wrtee, privileged=True),
    _x("wrteei", 163, build_wrteei, privileged=True),
    _x("mfspr", 339, build_mfspr, emit=emit_mfspr),
    _x("mtspr", 467, build_mtspr, emit=template_emitter(_select_mtspr)),
    _x("mftb", 371, build_mfspr, emit=emit_mfspr),
    _x("rfi", 50, _build_return(_SPR_SRR0, _SPR_SRR1), primary=19, privileged=True, cycles=2),
    _x("rfci", 51, _build_return(_SPR_CSRR0, _SPR_CSRR1), primary=19, privileged=True, cycles=2),
    _x("rfdi", 39, _build_return(_SPR_DSRR0, _SPR_DSRR1), primary=19, privileged=True, cycles=2,
       models=_E500MC),
    _x("rfmci", 38, _build_return(_SPR_MCSRR0, _SPR_MCSRR1), primary=19, privileged=True, cycles=2),
    InstructionSpec(mnemonic="sc", primary=17, xo=None, xo_bits=0, build=build_sc,  # type: ignore[arg-type]
                    cycles=2),
    _x("isync", 150, build_nop, primary=19, emit=_emit_nop),
    _x("msync", 598, build_nop, emit=_emit_nop),
    _x("mbar", 854, build_nop, emit=_emit_nop),
    _x("dcbz", 1014, build_dcbz, emit=template_emitter(_select_dcbz)),
    _x("dcbf", 86, build_nop, emit=_emit_nop),
    _x("dcbst", 54, build_nop, emit=_emit_nop),
    _x("dcbi", 470, build_nop, privileged=True),
    _x("dcbt", 278, build_nop, emit=_emit_nop),
    _x("dcbtst", 246, build_nop, emit=_emit_nop),
    _x("dcba", 758, build_nop, emit=_emit_nop),
    _x("icbi", 982, build_icbi),
    _x("icbt", 22, build_nop, emit=_emit_nop),
    _x("dcbtls", 166, _build_cache_lock(ESR_DLK)),
    _x("dcbtstls", 134, _build_cache_lock(ESR_DLK)),
    _x("dcblc", 390, _build_cache_lock(ESR_DLK)),
    _x("icbtls", 486, _build_cache_lock(ESR_ILK)),
    _x("icblc", 230, _build_cache_lock(ESR_ILK)),
    _x("tlbwe", 978, build_tlbwe, privileged=True),
    _x("tlbre", 946, build_tlbre, privileged=True),
    _x("tlbsx", 914, build_tlbsx, privileged=True),
    _x("tlbivax", 786, build_tlbivax, privileged=True),
    _x("tlbsync", 566, build_nop, privileged=True),
    _x("tlbilx", 18, build_tlbilx, privileged=True, models=_E500MC),
    _x("msgsnd", 206, build_msgsnd, privileged=True, models=_E500MC),
    _x("msgclr", 238, build_msgclr, privileged=True, models=_E500MC),
    _x("wait", 62, build_wait, models=_E500MC),
    _x("ehpriv", 270, build_ehpriv, models=_E500MC),
    InstructionSpec(mnemonic="spe", primary=4, xo=None, xo_bits=0, build=build_spe,  # type: ignore[arg-type]
                    models=_E500V2),
]

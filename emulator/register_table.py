"""The one register table of the e500 core: every register a debugger can name, per model.

Each :class:`Register` says the register's name, width, bank and where the core keeps it: an element
of a register file (``gpr``/``gpr_hi``/``fpr``), a field of the core (``pc``, ``msr``, ``cr``...), or
an SPR reached through the core's SPR access (the SPR read and the SPR written differ only for the
time base), and its place in the KVM uapi's ``struct kvm_regs`` if it has one. The vCPU's
``get_reg``/``set_reg``/``get_regs`` and ``get_kvm_regs``/``set_kvm_regs`` (:mod:`emulator.kvm`) are
derived from it, and so is the debugger's view of the registers (``gdbstub.registers``, which adds its
own presentation and numbering). The order of :func:`registers_of` is the one order of the registers:
the register files and core fields first, then the SPRs in the order they were added (later additions
at the end, so earlier positions stay put).

The table names every register of the model's register set; whether the core implements an SPR on
this model (MAS5 on neither core, the E.HV registers only on e500mc...) is the core's SPR access's
answer, which the vCPU asks.

Imports: standard library and the emulator modules that number SPRs (:mod:`emulator.sprs`,
:mod:`emulator.debug`, :mod:`emulator.mmu`, :mod:`emulator.timers`) and :mod:`emulator.models`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache

from emulator import mmu, sprs, timers
from emulator.debug import SPR_DAC1, SPR_DAC2, SPR_DBCR0, SPR_DBCR1, SPR_DBCR2, SPR_DBSR, SPR_IAC1, SPR_IAC2
from emulator.models import MODELS, CpuModel


class Bank(enum.Enum):
    """Which part of the core a register belongs to."""

    GPR = "general-purpose registers"
    CORE = "branch and fixed-point control (pc, msr, cr, lr, ctr, xer)"
    SPE = "SPE upper halves, accumulator and status (e500v2)"
    FPU = "floating-point registers and status (e500mc)"
    SPR = "special-purpose registers"


@dataclass(frozen=True, slots=True)
class Register:
    """One register. ``field``/``index``: where the core keeps it (``cpu.gpr[3]``, ``cpu.pc``), None
    for an SPR; ``read_spr``/``write_spr``: the SPR numbers a debugger reads and writes it through;
    ``setter``: the core method a write goes through instead of storing (``set_msr``);
    ``write_mask``: the bits a debugger write keeps (None: all ``bits``); ``kvm_regs``: its field in
    the KVM uapi's ``struct kvm_regs`` (``gpr`` with ``index``), None when it has none there."""

    name: str
    bits: int
    bank: Bank
    field: str | None = None
    index: int | None = None
    read_spr: int | None = None
    write_spr: int | None = None
    setter: str | None = None
    write_mask: int | None = None
    kvm_regs: str | None = None

    @property
    def size(self) -> int:
        return self.bits // 8

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1 if self.write_mask is None else self.write_mask


def _spr(name: str, number: int, write: int | None = None, kvm_regs: str | None = None) -> Register:
    return Register(name, 32, Bank.SPR, read_spr=number, write_spr=number if write is None else write,
                    kvm_regs=kvm_regs)


def _spr_registers(model: CpuModel) -> list[Register]:
    regs = [_spr("srr0", sprs.SPR_SRR0, kvm_regs="srr0"), _spr("srr1", sprs.SPR_SRR1, kvm_regs="srr1"),
            _spr("csrr0", sprs.SPR_CSRR0),
            _spr("csrr1", sprs.SPR_CSRR1), _spr("dsrr0", sprs.SPR_DSRR0), _spr("dsrr1", sprs.SPR_DSRR1),
            _spr("mcsrr0", sprs.SPR_MCSRR0), _spr("mcsrr1", sprs.SPR_MCSRR1), _spr("esr", sprs.SPR_ESR),
            _spr("dear", sprs.SPR_DEAR), _spr("ivpr", sprs.SPR_IVPR)]
    regs += [_spr(f"ivor{n}", sprs.ivor_spr(n)) for n in sorted(model.ivors)]
    regs += [_spr("dbcr0", SPR_DBCR0), _spr("dbcr1", SPR_DBCR1), _spr("dbcr2", SPR_DBCR2),
             _spr("dbsr", SPR_DBSR)]
    regs += [_spr(f"iac{n + 1}", number) for n, number in enumerate((SPR_IAC1, SPR_IAC2)[:model.num_iac])]
    regs += [_spr(f"dac{n + 1}", number) for n, number in enumerate((SPR_DAC1, SPR_DAC2)[:model.num_dac])]
    regs += [_spr("tcr", timers.SPR_TCR), _spr("tsr", timers.SPR_TSR), _spr("dec", timers.SPR_DEC),
             _spr("decar", timers.SPR_DECAR),
             # The time base is read through the user aliases and written through the supervisor SPRs.
             _spr("tbl", timers.SPR_TBL_READ, timers.SPR_TBL_WRITE),
             _spr("tbu", timers.SPR_TBU_READ, timers.SPR_TBU_WRITE)]
    regs += [_spr("mas0", mmu.SPR_MAS0), _spr("mas1", mmu.SPR_MAS1), _spr("mas2", mmu.SPR_MAS2),
             _spr("mas3", mmu.SPR_MAS3), _spr("mas4", mmu.SPR_MAS4), _spr("mas5", mmu.SPR_MAS4 + 1),
             _spr("mas6", mmu.SPR_MAS6), _spr("mas7", mmu.SPR_MAS7)]
    regs += [_spr("pid0", mmu.SPR_PID0, kvm_regs="pid"), _spr("pid1", mmu.SPR_PID1),
             _spr("pid2", mmu.SPR_PID2),
             _spr("mmucsr0", mmu.SPR_MMUCSR0), _spr("hid0", mmu.SPR_HID0), _spr("hid1", sprs.SPR_HID1),
             _spr("pvr", sprs.SPR_PVR), _spr("svr", sprs.SPR_SVR)]
    regs += [_spr(f"sprg{n}", sprs.SPR_SPRG0 + n, kvm_regs=f"sprg{n}") for n in range(8)]
    regs += [_spr("usprg0", sprs.SPR_USPRG0), _spr("pir", sprs.SPR_PIR), _spr("l1cfg0", sprs.SPR_L1CFG0),
             _spr("l1cfg1", sprs.SPR_L1CFG1), _spr("mmucfg", mmu.SPR_MMUCFG),
             _spr("tlb0cfg", mmu.SPR_TLB0CFG), _spr("tlb1cfg", mmu.SPR_TLB1CFG)]
    # Added later, at the end so that earlier positions stay put: machine check, cache and branch-unit
    # control, the alternate time base, the e500mc hypervisor registers and the rest of what a boot
    # routine touches.
    regs += [_spr("mcsr", sprs.SPR_MCSR), _spr("mcar", sprs.SPR_MCAR), _spr("l1csr0", sprs.SPR_L1CSR0),
             _spr("l1csr1", sprs.SPR_L1CSR1), _spr("bucsr", sprs.SPR_BUCSR), _spr("atbl", sprs.SPR_ATBL),
             _spr("atbu", sprs.SPR_ATBU), _spr("bbear", sprs.SPR_BBEAR), _spr("bbtar", sprs.SPR_BBTAR),
             _spr("sprg8", sprs.SPR_SPRG8), _spr("sprg9", sprs.SPR_SPRG9), _spr("epr", sprs.SPR_EPR),
             _spr("eplc", sprs.SPR_EPLC), _spr("epsc", sprs.SPR_EPSC), _spr("epcr", sprs.SPR_EPCR),
             _spr("msrp", sprs.SPR_MSRP), _spr("lpidr", sprs.SPR_LPIDR), _spr("l2csr0", sprs.SPR_L2CSR0)]
    return regs


@cache
def registers_of(model_name: str) -> tuple[Register, ...]:
    """Every register of ``model_name``'s register set, in the table's order."""
    model = MODELS[model_name]
    regs = [Register(f"r{n}", 32, Bank.GPR, field="gpr", index=n, kvm_regs="gpr") for n in range(32)]
    regs += [Register("pc", 32, Bank.CORE, field="pc", write_mask=0xFFFFFFFC, kvm_regs="pc"),
             Register("msr", 32, Bank.CORE, field="msr", setter="set_msr", kvm_regs="msr"),
             Register("cr", 32, Bank.CORE, field="cr", kvm_regs="cr"),
             Register("lr", 32, Bank.CORE, field="lr", kvm_regs="lr"),
             Register("ctr", 32, Bank.CORE, field="ctr", kvm_regs="ctr"),
             # Written as mtxer does: only the implemented bits stick.
             Register("xer", 32, Bank.CORE, field="xer", write_spr=sprs.SPR_XER, kvm_regs="xer")]
    if model.has_spe:
        regs += [Register(f"ev{n}h", 32, Bank.SPE, field="gpr_hi", index=n) for n in range(32)]
        regs += [Register("acc", 64, Bank.SPE, field="acc"),
                 Register("spefscr", 32, Bank.SPE, field="spefscr")]
    if model.has_fpu:
        regs += [Register(f"f{n}", 64, Bank.FPU, field="fpr", index=n) for n in range(32)]
        regs.append(Register("fpscr", 32, Bank.FPU, field="fpscr"))
    regs += _spr_registers(model)
    return tuple(regs)

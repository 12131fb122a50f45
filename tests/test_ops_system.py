"""Supervisor instruction tests (emulator.ops_system): SPR privilege and unknown-SPR rules, mtmsr/wrtee,
rfci/rfdi, dcbz, icbi, tlbwe through the MMU, unavailable FP/SPE units, ehpriv on e500mc.
Imports: the emulator package and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

import pytest
from test_cpu_core import CODE_BASE, make_cpu, vector

from emulator import decoder
from emulator.cpu import SPR_CSRR0, SPR_CSRR1, SPR_DSRR0, SPR_DSRR1, SPR_ESR, SPR_SRR0, Cpu
from emulator.exceptions import (
    ESR_PIL,
    ESR_PPR,
    ESR_SPV,
    IVOR_CRITICAL_DOORBELL,
    IVOR_DOORBELL,
    IVOR_FP_UNAVAILABLE,
    IVOR_HYPERVISOR_PRIVILEGE,
    IVOR_PROGRAM,
    IVOR_SPE_UNAVAILABLE,
)
from emulator.models import MSR_CE, MSR_EE, MSR_PR, MSR_SPE


def test_user_sprs_accessible_in_problem_state() -> None:
    cpu = make_cpu("li 3,5\nmtlr 3\nmflr 4\nmtspr 256,3\nmfspr 6,256\nmfspr 7,268\nmfspr 8,259")
    cpu.set_msr(MSR_PR)
    cpu.sprs[275] = 0xABCD   # SPRG3, readable as SPRG3R
    cpu.run(7)
    assert (cpu.gpr[4], cpu.gpr[6], cpu.gpr[8]) == (5, 5, 0xABCD)
    assert cpu.gpr[7] == 5          # TB as of the start of the 6th instruction


def test_privileged_spr_in_problem_state_is_ppr_and_unknown_user_spr_is_pil() -> None:
    cpu = make_cpu("mfspr 3,26")
    cpu.set_msr(MSR_PR)
    cpu.run(1)
    assert cpu.sprs[SPR_ESR] == ESR_PPR and cpu.pc == vector(cpu, IVOR_PROGRAM)
    cpu = make_cpu("mfspr 3,3")
    cpu.run(1)
    assert cpu.sprs[SPR_ESR] == ESR_PIL
    cpu = make_cpu("li 3,9\nmfspr 3,1016\nli 4,1")   # unknown privileged SPR: no-op (QEMU)
    cpu.run(3)
    assert (cpu.gpr[3], cpu.gpr[4]) == (9, 1)


def test_mtmsr_and_wrtee() -> None:
    cpu = make_cpu("lis 3,0\nori 3,3,0x8000\nmtmsr 3\nmfmsr 4\nwrteei 0\nmfmsr 5")
    cpu.run(6)
    assert (cpu.gpr[4], cpu.gpr[5]) == (MSR_EE, 0)


def test_rfci_and_rfdi_restore() -> None:
    cpu = make_cpu("rfci")
    cpu.sprs[SPR_CSRR0], cpu.sprs[SPR_CSRR1] = 0x3000, MSR_EE
    cpu.run(1)
    assert (cpu.pc, cpu.msr) == (0x3000, MSR_EE)
    cpu = make_cpu("rfdi", "e500mc")
    cpu.sprs[SPR_DSRR0], cpu.sprs[SPR_DSRR1] = 0x3004, MSR_EE
    cpu.run(1)
    assert (cpu.pc, cpu.msr) == (0x3004, MSR_EE)
    cpu = make_cpu(".long 0x4c00004e")    # rfdi is not an e500v2 instruction
    cpu.run(1)
    assert cpu.sprs[SPR_ESR] == ESR_PIL


@pytest.mark.parametrize(("model", "line"), [("e500v2", 32), ("e500mc", 64)])
def test_dcbz_zeroes_the_line(model: str, line: int) -> None:
    # Line sizes as on QEMU ppce500 (a guest's dcbz there zeroes 32 bytes on e500v2, 64 on e500mc).
    cpu = make_cpu("li 3,0x2048\ndcbz 0,3", model)
    base = 0x2040 & ~(line - 1)
    cpu.bus.ram[0x1F00:0x2100] = b"\xff" * 0x200
    cpu.run(2)
    assert cpu.bus.ram[base:base + line] == bytes(line)
    assert cpu.bus.ram[base - 1] == 0xFF and cpu.bus.ram[base + line] == 0xFF


def test_tlbwe_maps_a_new_page() -> None:
    cpu = make_cpu("""
        lis 3,0x1003
        mtspr 624,3      # MAS0: TLB1 entry 3
        lis 3,0x8000
        ori 3,3,0x0100
        mtspr 625,3      # MAS1: V, 4K
        lis 3,0x5000
        mtspr 626,3      # MAS2: EPN 0x50000000
        li 3,0x2000+0x3f
        mtspr 627,3      # MAS3: RPN 0x2000, all permissions
        isync
        tlbwe
        isync
        lis 4,0x5000
        lwz 5,4(4)
    """)
    cpu.bus.ram[0x2004:0x2008] = b"\x12\x34\x56\x78"
    cpu.run(14)
    assert cpu.gpr[5] == 0x12345678


def test_spe_and_fp_unavailable() -> None:
    cpu = make_cpu(".long 0x10642a17")   # evmergehi on e500v2 with MSR[SPE]=0
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_SPE_UNAVAILABLE) and cpu.sprs[SPR_ESR] == ESR_SPV
    cpu = make_cpu(".long 0x10642a17")
    cpu.set_msr(MSR_SPE)
    cpu.run(1)
    assert cpu.sprs[SPR_ESR] == ESR_PIL
    cpu = make_cpu("lfd 1,0(3)", "e500mc")
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_FP_UNAVAILABLE)


def test_ehpriv_on_e500mc_is_hypervisor_privilege() -> None:
    cpu = make_cpu(".long 0x7c00021c", "e500mc")
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_HYPERVISOR_PRIVILEGE) and cpu.sprs[SPR_SRR0] == CODE_BASE


# --- e500mc Power ISA 2.06 additions: tlbilx, msgsnd/msgclr -------------------------------------------
def _tlb_setup(cpu: Cpu) -> None:
    """TLB0 pages for PID 5 and 0, and a TLB1 page for PID 5, besides make_cpu's IPROT-less TLB1 map."""
    from emulator.mmu import MAS1_IPROT
    mmu = cpu.mmu
    mmu.set_entry(0, 0x40 * 4, mas1=0x80000000 | (5 << 16) | (1 << 8), mas2=0x00040000,
                  mas3=0x00040000 | 0x3F)
    mmu.set_entry(0, 0x41 * 4, mas1=0x80000000 | (1 << 8), mas2=0x00041000, mas3=0x00041000 | 0x3F)
    mmu.set_entry(1, 3, mas1=0x80000000 | (5 << 16) | (1 << 8), mas2=0x00042000, mas3=0x00042000 | 0x3F)
    mmu.set_entry(1, 4, mas1=0x80000000 | MAS1_IPROT | (5 << 16) | (1 << 8), mas2=0x00043000,
                  mas3=0x00043000 | 0x3F)


def _valid_epns(cpu: Cpu) -> set[int]:
    return {view.epn for view in cpu.mmu.entries() if view.epn in (0x40000, 0x41000, 0x42000, 0x43000)}


@pytest.mark.parametrize(("source", "left"), [
    # tlbilx 0 (all): every entry without IPROT goes, in both TLBs.
    (".long 0x7c000024", {0x43000}),
    # tlbilx 1 (by PID = MAS6[SPID] = 5): TID 5 entries go, TID 0 stays, IPROT stays.
    ("lis 3,5\nmtspr 630,3\n.long 0x7c200024", {0x41000, 0x43000}),
    # tlbilx 3 (by address 0x42000 for SPID 5): only the TLB1 page holding it.
    ("lis 3,5\nmtspr 630,3\nlis 4,4\nori 4,4,0x2010\n.long 0x7c602024", {0x40000, 0x41000, 0x43000}),
    # tlbilx 3 at 0x41000 with SPID 5: the TID 0 entry matches any PID.
    ("lis 3,5\nmtspr 630,3\nlis 4,4\nori 4,4,0x1000\n.long 0x7c602024", {0x40000, 0x42000, 0x43000}),
])
def test_tlbilx_forms_on_e500mc(source: str, left: set[int]) -> None:
    cpu = make_cpu(source, "e500mc")
    _tlb_setup(cpu)
    count = source.count("\n") + 1
    cpu.run(count)
    assert cpu.pc == CODE_BASE + 4 * count
    assert _valid_epns(cpu) == left
    # make_cpu's flat 16 MiB TLB1 map (TID 0, no IPROT) survives only T=1 with SPID 5: T=0 takes
    # everything and T=3 takes it too, since it also translates the address.
    assert any(view.tlb == 1 and view.epn == 0 for view in cpu.mmu.entries()) == ("0x7c200024" in source)


def test_tlbilx_reserved_form_privilege_and_e500v2() -> None:
    cpu = make_cpu(".long 0x7c400024", "e500mc")   # T=2
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_PROGRAM) and cpu.sprs[SPR_ESR] == ESR_PIL
    cpu = make_cpu(".long 0x7c000024", "e500mc")
    cpu.set_msr(MSR_PR)
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_PROGRAM) and cpu.sprs[SPR_ESR] == ESR_PPR
    cpu = make_cpu(".long 0x7c000024", "e500v2")
    cpu.run(1)
    assert cpu.pc == vector(cpu, IVOR_PROGRAM) and cpu.sprs[SPR_ESR] == ESR_PIL


def test_msgsnd_raises_a_doorbell_when_ee_is_set_and_msgclr_drops_it() -> None:
    # rB = 0 (type doorbell, PIRTAG 0 = this core): pending while EE=0, taken at wrteei 1.
    cpu = make_cpu("li 3,0\n.long 0x7c00199c\nnop\nwrteei 1\nnop", "e500mc")
    cpu.run(4)
    assert cpu.pc == vector(cpu, IVOR_DOORBELL) and cpu.sprs[SPR_SRR0] == CODE_BASE + 16
    assert not cpu.timers.doorbell     # taking it consumed it
    # msgclr before EE is set: nothing is taken.
    cpu = make_cpu("li 3,0\n.long 0x7c00199c\n.long 0x7c0019dc\nwrteei 1\nnop", "e500mc")
    cpu.run(5)
    assert cpu.pc == CODE_BASE + 20
    # Another PIR and no broadcast: ignored; broadcast (0x04000000): accepted.
    cpu = make_cpu("li 3,7\n.long 0x7c00199c\nwrteei 1\nnop\nlis 3,0x400\n.long 0x7c00199c\nnop", "e500mc")
    cpu.run(6)
    assert cpu.pc == vector(cpu, IVOR_DOORBELL) and cpu.sprs[SPR_SRR0] == CODE_BASE + 24


def test_critical_doorbell_uses_csrr() -> None:
    cpu = make_cpu("lis 3,0x800\n.long 0x7c00199c\nnop", "e500mc")
    cpu.set_msr(MSR_CE)
    cpu.run(3)
    assert cpu.pc == vector(cpu, IVOR_CRITICAL_DOORBELL) and cpu.sprs[SPR_CSRR0] == CODE_BASE + 8


@pytest.mark.parametrize("word", [
    0x7C600124,   # mtmsr r3
    0x7C6000A6,   # mfmsr r3
    0x7C008146,   # wrteei 1
    0x7C7043A6,   # mtspr SPRG0, r3
    0x7C7042A6,   # mfspr r3, SPRG0
    0x7C0004AC,   # msync
    0x4C00012C,   # isync
    0x7C00046C,   # tlbsync
])
def test_the_next_address_wraps_at_the_top_of_the_address_space(word: int) -> None:
    # The address after 0xFFFFFFFC is 0 (32-bit effective addresses), on every path.
    cpu = make_cpu("nop")
    _, handler, _ = decoder.decode(word, "e500v2")
    assert handler(cpu, 0xFFFFFFFC) == 0

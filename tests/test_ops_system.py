"""Supervisor instruction tests (emulator.ops_system): SPR privilege and unknown-SPR rules, mtmsr/wrtee,
rfci/rfdi, dcbz, icbi, tlbwe through the MMU, unavailable FP/SPE units, ehpriv on e500mc.
Imports: the emulator package and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

import pytest
from test_cpu_core import CODE_BASE, make_cpu, vector

from emulator.cpu import SPR_CSRR0, SPR_CSRR1, SPR_DSRR0, SPR_DSRR1, SPR_ESR, SPR_SRR0
from emulator.exceptions import (
    ESR_PIL,
    ESR_PPR,
    ESR_SPV,
    IVOR_FP_UNAVAILABLE,
    IVOR_HYPERVISOR_PRIVILEGE,
    IVOR_PROGRAM,
    IVOR_SPE_UNAVAILABLE,
)
from emulator.models import MSR_EE, MSR_PR, MSR_SPE


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

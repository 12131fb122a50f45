"""Tests for emulator.mmu: TLB0 sets/ways/victim hints, TLB1 sizes and IPROT, tlbsx/tlbre/tlbivax,
MMUCSR0 flash invalidate, MAS7 and 36-bit addresses, permissions, TS/TID matching, miss defaults.

Imports: pytest, hypothesis and emulator.mmu / emulator.models / emulator.exceptions.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.exceptions import ESR_PIL, IVOR_PROGRAM, Interrupt
from emulator.mmu import (
    HID0_EN_MAS7_UPDATE,
    MAS1_IPROT,
    MAS1_TS,
    MAS1_V,
    MAS3_SR,
    MAS3_SW,
    MAS3_SX,
    MAS3_UR,
    MAS3_UW,
    MAS3_UX,
    MMUCSR0_TLB0FI,
    MMUCSR0_TLB1FI,
    SPR_HID0,
    SPR_MAS0,
    SPR_MAS1,
    SPR_MAS2,
    SPR_MAS3,
    SPR_MAS4,
    SPR_MAS6,
    SPR_MAS7,
    SPR_MMUCFG,
    SPR_MMUCSR0,
    SPR_PID0,
    SPR_PID1,
    SPR_PID2,
    SPR_TLB0CFG,
    SPR_TLB1CFG,
    Access,
    Mmu,
    ProtectionFault,
    TlbMiss,
)
from emulator.models import MODELS, MSR_DS, MSR_IS, MSR_PR

ALL_PERMISSIONS = MAS3_SR | MAS3_SW | MAS3_SX | MAS3_UR | MAS3_UW | MAS3_UX


def write_entry(mmu: Mmu, *, tlb: int, esel: int, epn: int, rpn: int, tsize: int = 1, tid: int = 0,
                ts: int = 0, iprot: bool = False, permissions: int = ALL_PERMISSIONS, mas7: int = 0,
                nv: int = 0, wimge: int = 0) -> None:
    """Program MAS0-3,7 like a guest would and execute tlbwe."""
    mmu.write_spr(SPR_MAS0, (tlb << 28) | (esel << 16) | nv)
    mmu.write_spr(SPR_MAS1, MAS1_V | (MAS1_IPROT if iprot else 0) | (tid << 16) | (MAS1_TS if ts else 0)
                  | (tsize << 8))
    mmu.write_spr(SPR_MAS2, epn | wimge)
    mmu.write_spr(SPR_MAS3, rpn | permissions)
    mmu.write_spr(SPR_MAS7, mas7)
    mmu.tlbwe()


@pytest.fixture(params=["e500v2", "e500mc"])
def mmu(request: pytest.FixtureRequest) -> Mmu:
    return Mmu(MODELS[request.param])


def test_config_registers_match_qemu() -> None:
    v2, mc = Mmu("e500v2"), Mmu("e500mc")
    assert v2.read_spr(SPR_TLB0CFG) == 0x04110200
    assert v2.read_spr(SPR_TLB1CFG) == 0x101CC010
    assert mc.read_spr(SPR_TLB1CFG) == 0x401CC040
    assert v2.read_spr(SPR_MMUCFG) == 0
    assert len(v2.tlb1) == 16 and len(mc.tlb1) == 64
    assert len(v2.tlb0) == 512
    v2.write_spr(SPR_TLB0CFG, 0)  # read-only
    assert v2.read_spr(SPR_TLB0CFG) == 0x04110200


def test_unknown_model_rejected() -> None:
    with pytest.raises(ValueError, match="e500v9"):
        Mmu("e500v9")


def test_empty_tlb_misses(mmu: Mmu) -> None:
    with pytest.raises(TlbMiss):
        mmu.translate(0x1000, Access.READ, 0)


def test_tlb1_ccsr_mapping_from_reference(mmu: Mmu) -> None:
    # The verified 1 MiB I|G mapping EA 0xE000_0000 -> PA 0xF_E000_0000 (reference section 7).
    mmu.write_spr(SPR_MAS0, 0x10010000)
    mmu.write_spr(SPR_MAS1, 0xC0000500)
    mmu.write_spr(SPR_MAS2, 0xE000000A)
    mmu.write_spr(SPR_MAS3, 0xE0000005)
    mmu.write_spr(SPR_MAS7, 0x0000000F)
    mmu.tlbwe()
    assert mmu.translate(0xE0004505, Access.READ, 0) == 0xF_E000_4505
    assert mmu.translate(0xE00FFFFC, Access.WRITE, 0) == 0xF_E00F_FFFC
    with pytest.raises(ProtectionFault):  # SX not granted
        mmu.translate(0xE0004500, Access.FETCH, 0)
    with pytest.raises(TlbMiss):
        mmu.translate(0xE0100000, Access.READ, 0)
    (view,) = mmu.entries()
    assert (view.tlb, view.index, view.size, view.pa, view.wimge, view.iprot) == (
        1, 1, 1 << 20, 0xF_E000_0000, 0x0A, True)
    assert view.permission_text() == "SR SW -- -- -- --"


@pytest.mark.parametrize("tsize", range(1, 12))
def test_tlb1_page_sizes(tsize: int) -> None:
    mmu = Mmu("e500v2")
    size = 1024 << (2 * tsize)
    epn = 0x40000000 if size <= 0x40000000 else 0
    write_entry(mmu, tlb=1, esel=3, epn=epn, rpn=0, tsize=tsize)
    assert mmu.translate(epn + size - 4, Access.READ, 0) == size - 4
    assert mmu.translate(epn, Access.READ, 0) == 0
    if epn + size < 1 << 32:
        with pytest.raises(TlbMiss):
            mmu.translate(epn + size, Access.READ, 0)


def test_tlb1_epn_and_rpn_aligned_to_page_size(mmu: Mmu) -> None:
    # 16 MiB page written with unaligned EPN/RPN bits: both are truncated to the page boundary.
    write_entry(mmu, tlb=1, esel=0, epn=0x10345000, rpn=0x20678000, tsize=7)
    assert mmu.translate(0x10FFFFF0, Access.READ, 0) == 0x20FFFFF0
    mmu.write_spr(SPR_MAS0, 0x10000000)
    mmu.tlbre()
    assert mmu.read_spr(SPR_MAS2) & 0xFFFFF000 == 0x10000000


@pytest.mark.parametrize("bad_mas1_size", [0x000, 0x080, 0xD00])
def test_tlb1_invalid_size_is_program_interrupt(bad_mas1_size: int) -> None:
    mmu = Mmu("e500v2")
    mmu.write_spr(SPR_MAS0, 0x10000000)
    mmu.write_spr(SPR_MAS1, MAS1_V | bad_mas1_size)
    with pytest.raises(Interrupt) as raised:
        mmu.tlbwe()
    assert raised.value.ivor == IVOR_PROGRAM and raised.value.esr == ESR_PIL


def test_tlb0_is_4k_4way_set_associative(mmu: Mmu) -> None:
    # Four pages that share set 5 (EA bits 45-51) fill the four ways; each keeps its own mapping.
    eas = [0x00005000, 0x00085000, 0x10005000, 0xFFF85000]
    for way, ea in enumerate(eas):
        write_entry(mmu, tlb=0, esel=way, epn=ea, rpn=0x100000 * (way + 1), tsize=7)  # TSIZE ignored
    for way, ea in enumerate(eas):
        assert mmu.translate(ea + 0x123, Access.READ, 0) == 0x100000 * (way + 1) + 0x123
        with pytest.raises(TlbMiss):  # 4 KB, not 16 MiB
            mmu.translate(ea + 0x1000, Access.READ, 0)
    # Rewriting way 2 of that set evicts exactly the page that was there.
    write_entry(mmu, tlb=0, esel=2, epn=0x20005000, rpn=0x900000)
    with pytest.raises(TlbMiss):
        mmu.translate(eas[2], Access.READ, 0)
    assert mmu.translate(0x20005000, Access.READ, 0) == 0x900000
    assert mmu.translate(eas[3], Access.READ, 0) == 0x400000
    slots = sorted(view.index for view in mmu.entries())
    assert slots == [5 * 4 + 0, 5 * 4 + 1, 5 * 4 + 2, 5 * 4 + 3]


def test_tlb0_drops_iprot_and_size(mmu: Mmu) -> None:
    write_entry(mmu, tlb=0, esel=1, epn=0x3000, rpn=0x7000, tsize=5, iprot=True)
    mmu.write_spr(SPR_MAS0, 1 << 16)
    mmu.write_spr(SPR_MAS2, 0x3000)
    mmu.tlbre()
    assert mmu.read_spr(SPR_MAS1) == MAS1_V | (1 << 8)
    mmu.write_spr(SPR_MMUCSR0, MMUCSR0_TLB0FI)
    with pytest.raises(TlbMiss):
        mmu.translate(0x3000, Access.READ, 0)


def test_victim_hint_round_robin_per_set(mmu: Mmu) -> None:
    mmu.write_spr(SPR_MAS4, 0)  # TLBSELD = 0
    proposals = []
    for _ in range(5):
        mmu.load_miss_defaults(0x00007000, Access.READ, 0)
        mas0 = mmu.read_spr(SPR_MAS0)
        proposals.append(((mas0 >> 16) & 0xF, mas0 & 0x3))
    assert proposals == [(0, 1), (1, 2), (2, 3), (3, 0), (0, 1)]
    # Another set has its own counter.
    mmu.load_miss_defaults(0x00008000, Access.READ, 0)
    assert mmu.read_spr(SPR_MAS0) == (0 << 16) | 1
    # tlbwe to TLB0 loads the set's counter from MAS0[NV].
    write_entry(mmu, tlb=0, esel=0, epn=0x00008000, rpn=0, nv=3)
    mmu.load_miss_defaults(0x00008000, Access.READ, 0)
    assert mmu.read_spr(SPR_MAS0) == (3 << 16) | 0


def test_load_miss_defaults_follow_mas4(mmu: Mmu) -> None:
    mmu.write_spr(SPR_PID0, 0x21)
    mmu.write_spr(SPR_PID1, 0x42)
    mmu.write_spr(SPR_PID2, 0x63)
    mmu.write_spr(SPR_MAS3, 0xFFFFFFFF)
    mmu.write_spr(SPR_MAS7, 0xF)
    # TLBSELD=1, TIDSELD=1 (PID1), TSIZED=5 (1 MiB), X0D|WD|GD.
    mmu.write_spr(SPR_MAS4, 0x10000000 | (1 << 16) | 0x500 | 0x40 | 0x10 | 0x02)
    mmu.load_miss_defaults(0x12345678, Access.WRITE, MSR_DS)
    assert mmu.read_spr(SPR_MAS0) & 0xFFFF0000 == 0x10000000
    assert mmu.read_spr(SPR_MAS1) == MAS1_V | (0x42 << 16) | MAS1_TS | 0x500
    assert mmu.read_spr(SPR_MAS2) == 0x12345000 | 0x52
    assert mmu.read_spr(SPR_MAS3) == 0 and mmu.read_spr(SPR_MAS7) == 0
    assert mmu.read_spr(SPR_MAS6) == (0x21 << 16) | 1
    # Fetch uses MSR[IS]; TIDSELD=3 gives TID 0.
    mmu.write_spr(SPR_MAS4, 3 << 16)
    mmu.load_miss_defaults(0x00400000, Access.FETCH, MSR_DS)
    assert mmu.read_spr(SPR_MAS1) == MAS1_V
    assert mmu.read_spr(SPR_MAS6) == 0x21 << 16
    mmu.load_miss_defaults(0x00400000, Access.FETCH, MSR_IS)
    assert mmu.read_spr(SPR_MAS1) & MAS1_TS and mmu.read_spr(SPR_MAS6) & 1


@pytest.mark.parametrize(("access", "supervisor_bit", "user_bit"), [
    (Access.FETCH, MAS3_SX, MAS3_UX), (Access.READ, MAS3_SR, MAS3_UR), (Access.WRITE, MAS3_SW, MAS3_UW)])
def test_permissions_by_privilege(access: Access, supervisor_bit: int, user_bit: int) -> None:
    for permissions in range(64):
        mmu = Mmu("e500v2")
        write_entry(mmu, tlb=1, esel=0, epn=0, rpn=0x1000000, tsize=5, permissions=permissions)
        for msr, bit in ((0, supervisor_bit), (MSR_PR, user_bit)):
            if permissions & bit:
                assert mmu.translate(0x44, access, msr) == 0x1000044
            else:
                with pytest.raises(ProtectionFault):
                    mmu.translate(0x44, access, msr)


def test_translation_space_follows_is_and_ds(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=0, epn=0x10000000, rpn=0x100000, tsize=5, ts=1)
    write_entry(mmu, tlb=1, esel=1, epn=0x10000000, rpn=0x200000, tsize=5, ts=0)
    assert mmu.translate(0x10000010, Access.READ, MSR_DS) == 0x100010
    assert mmu.translate(0x10000010, Access.READ, MSR_IS) == 0x200010
    assert mmu.translate(0x10000010, Access.FETCH, MSR_IS) == 0x100010
    assert mmu.translate(0x10000010, Access.FETCH, MSR_DS) == 0x200010


def test_tid_matches_zero_or_any_pid(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=0, epn=0x20000000, rpn=0x300000, tsize=5, tid=7)
    with pytest.raises(TlbMiss):
        mmu.translate(0x20000000, Access.READ, 0)
    generation = mmu.generation
    mmu.write_spr(SPR_PID2, 7)
    assert mmu.generation > generation
    assert mmu.translate(0x20000000, Access.READ, 0) == 0x300000
    mmu.write_spr(SPR_PID2, 0)
    mmu.write_spr(SPR_PID0, 0x107)  # PIDs are 8 bits
    assert mmu.read_spr(SPR_PID0) == 7
    assert mmu.translate(0x20000000, Access.READ, 0) == 0x300000


def test_first_match_wins_tlb0_before_tlb1(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=0, epn=0, rpn=0x1000000, tsize=5)
    write_entry(mmu, tlb=0, esel=0, epn=0x2000, rpn=0x5000)
    assert mmu.translate(0x2004, Access.READ, 0) == 0x5004
    assert mmu.translate(0x3004, Access.READ, 0) == 0x1003004


def test_mas7_gives_36_bit_addresses_and_hid0_gates_readback() -> None:
    mmu = Mmu("e500v2")
    write_entry(mmu, tlb=1, esel=2, epn=0x80000000, rpn=0x40000000, tsize=5, mas7=0x3)
    assert mmu.translate(0x80000100, Access.READ, 0) == 0x3_4000_0100
    mmu.write_spr(SPR_MAS7, 0)
    mmu.write_spr(SPR_MAS0, (1 << 28) | (2 << 16))
    mmu.tlbre()
    assert mmu.read_spr(SPR_MAS7) == 0  # HID0[EN_MAS7_UPDATE] = 0: MAS7 untouched
    assert mmu.read_spr(SPR_MAS3) == 0x40000000 | ALL_PERMISSIONS
    mmu.write_spr(SPR_HID0, HID0_EN_MAS7_UPDATE)
    mmu.tlbre()
    assert mmu.read_spr(SPR_MAS7) == 0x3
    # e500mc always updates MAS7.
    mc = Mmu("e500mc")
    write_entry(mc, tlb=1, esel=40, epn=0x80000000, rpn=0x40000000, tsize=5, mas7=0xA)
    mc.write_spr(SPR_MAS7, 0)
    mc.write_spr(SPR_MAS6, 0)
    mc.tlbsx(0x80000000)
    assert mc.read_spr(SPR_MAS7) == 0xA and (mc.read_spr(SPR_MAS0) >> 16) & 0xFFF == 40


def test_tlbsx_uses_spid_and_sas(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=5, epn=0x30000000, rpn=0x700000, tsize=5, tid=9, ts=1, iprot=True)
    write_entry(mmu, tlb=0, esel=3, epn=0x40001000, rpn=0x8000, tid=0, wimge=0x4)
    mmu.write_spr(SPR_MAS6, (9 << 16) | 1)
    mmu.tlbsx(0x30001234)
    assert mmu.read_spr(SPR_MAS0) >> 16 == 0x1005
    assert mmu.read_spr(SPR_MAS1) == MAS1_V | MAS1_IPROT | (9 << 16) | MAS1_TS | 0x500
    assert mmu.read_spr(SPR_MAS2) == 0x30000000
    assert mmu.read_spr(SPR_MAS3) == 0x700000 | ALL_PERMISSIONS
    # Wrong SPID or SAS: miss, MAS filled with MAS4 defaults, V=0, TID/TS from SPID/SAS.
    mmu.write_spr(SPR_MAS4, 0x00000300 | 0x08)
    mmu.write_spr(SPR_MAS6, (8 << 16) | 1)
    mmu.tlbsx(0x30001234)
    assert mmu.read_spr(SPR_MAS1) == (8 << 16) | MAS1_TS | 0x300
    assert mmu.read_spr(SPR_MAS2) == 0x30001000 | 0x08
    assert mmu.read_spr(SPR_MAS3) == 0
    # TID 0 entries match any SPID; SAS must still match.
    mmu.write_spr(SPR_MAS6, 0x55 << 16)
    mmu.tlbsx(0x40001FFC)
    assert mmu.read_spr(SPR_MAS0) == (3 << 16) | (mmu.read_spr(SPR_MAS0) & 3)
    assert mmu.read_spr(SPR_MAS2) == 0x40001004
    mmu.write_spr(SPR_MAS6, (0x55 << 16) | 1)
    mmu.tlbsx(0x40001FFC)
    assert not mmu.read_spr(SPR_MAS1) & MAS1_V


def test_tlbsx_miss_proposes_the_victim_without_consuming_it(mmu: Mmu) -> None:
    mmu.write_spr(SPR_MAS4, 0x08)          # TLBSELD = 0, ID
    mmu.write_spr(SPR_MAS2, 0xABCDE000)    # whatever was there before the search
    for _ in range(3):
        mmu.tlbsx(0x00007123)
        assert mmu.read_spr(SPR_MAS0) == (0 << 16) | 1       # ESEL = hint 0, NV = 1: the same each time
        # MAS2: the searched page with the MAS4 attribute defaults (QEMU: EPN 0; KVM: unchanged).
        assert mmu.read_spr(SPR_MAS2) == 0x00007000 | 0x08
    # A TLB error interrupt does move it on, and so does the tlbwe that follows a search.
    mmu.load_miss_defaults(0x00007000, Access.READ, 0)
    assert mmu.read_spr(SPR_MAS0) == (0 << 16) | 1
    mmu.tlbsx(0x00007000)
    assert mmu.read_spr(SPR_MAS0) == (1 << 16) | 2
    mmu.write_spr(SPR_MAS1, MAS1_V | 0x100)
    mmu.write_spr(SPR_MAS3, 0x7000 | ALL_PERMISSIONS)
    mmu.tlbwe()                                              # loads the set's hint from MAS0[NV] = 2
    mmu.tlbsx(0x00007FFF)                                    # a hit now: ESEL = the way written
    assert mmu.read_spr(SPR_MAS0) == (1 << 16) | 2
    mmu.tlbsx(0x00087000)                                    # same set, other page: a miss
    assert mmu.read_spr(SPR_MAS0) == (2 << 16) | 3


def test_tlbivax_by_address_and_all_respects_iprot(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=0, epn=0x00000000, rpn=0, tsize=5, iprot=True)
    write_entry(mmu, tlb=1, esel=1, epn=0x10000000, rpn=0x100000, tsize=5)
    write_entry(mmu, tlb=1, esel=2, epn=0x20000000, rpn=0x200000, tsize=5)
    write_entry(mmu, tlb=0, esel=0, epn=0x30000000, rpn=0x300000)
    write_entry(mmu, tlb=0, esel=1, epn=0x30001000, rpn=0x301000)
    # By address inside a 1 MiB TLB1 page: only that entry goes.
    generation = mmu.generation
    mmu.tlbivax(0x10080000 | 0x8)
    assert mmu.generation > generation
    with pytest.raises(TlbMiss):
        mmu.translate(0x10000000, Access.READ, 0)
    assert mmu.translate(0x20000000, Access.READ, 0) == 0x200000
    # The TLB0 form does not touch TLB1, and vice versa.
    mmu.tlbivax(0x20000000)
    assert mmu.translate(0x20000000, Access.READ, 0) == 0x200000
    mmu.tlbivax(0x30001000)
    assert mmu.translate(0x30000000, Access.READ, 0) == 0x300000
    with pytest.raises(TlbMiss):
        mmu.translate(0x30001000, Access.READ, 0)
    # IPROT survives both the by-address and the invalidate-all forms.
    mmu.tlbivax(0x00000000 | 0x8)
    mmu.tlbivax(0x8 | 0x4)
    assert mmu.translate(0x100, Access.READ, 0) == 0x100
    with pytest.raises(TlbMiss):
        mmu.translate(0x20000000, Access.READ, 0)
    mmu.tlbivax(0x4)
    with pytest.raises(TlbMiss):
        mmu.translate(0x30000000, Access.READ, 0)


def test_mmucsr0_flash_invalidate_keeps_iprot(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=0, epn=0, rpn=0, tsize=5, iprot=True)
    write_entry(mmu, tlb=1, esel=1, epn=0x10000000, rpn=0, tsize=5)
    write_entry(mmu, tlb=0, esel=0, epn=0x30000000, rpn=0)
    mmu.write_spr(SPR_MMUCSR0, MMUCSR0_TLB1FI)
    assert mmu.read_spr(SPR_MMUCSR0) == 0
    assert [(view.tlb, view.index) for view in mmu.entries()] == [(0, 0), (1, 0)]
    mmu.write_spr(SPR_MMUCSR0, MMUCSR0_TLB0FI)
    assert [(view.tlb, view.index) for view in mmu.entries()] == [(1, 0)]


def test_tlbre_round_trips_tlbwe(mmu: Mmu) -> None:
    mmu.write_spr(SPR_HID0, HID0_EN_MAS7_UPDATE)
    write_entry(mmu, tlb=1, esel=7, epn=0x50000000, rpn=0x60000000, tsize=9, tid=0x3C, ts=1,
                iprot=True, permissions=MAS3_SR | MAS3_UX, mas7=0x9, wimge=0x1F)
    for spr in (SPR_MAS1, SPR_MAS2, SPR_MAS3, SPR_MAS7):
        mmu.write_spr(spr, 0)
    mmu.write_spr(SPR_MAS0, (1 << 28) | (7 << 16))
    mmu.tlbre()
    assert mmu.read_spr(SPR_MAS1) == MAS1_V | MAS1_IPROT | (0x3C << 16) | MAS1_TS | 0x900
    assert mmu.read_spr(SPR_MAS2) == 0x5000001F
    assert mmu.read_spr(SPR_MAS3) == 0x60000000 | MAS3_SR | MAS3_UX
    assert mmu.read_spr(SPR_MAS7) == 0x9


def test_generation_and_cache_follow_tlbwe(mmu: Mmu) -> None:
    write_entry(mmu, tlb=1, esel=0, epn=0, rpn=0x100000, tsize=5)
    assert mmu.translate(0x10, Access.READ, 0) == 0x100010
    generation = mmu.generation
    write_entry(mmu, tlb=1, esel=0, epn=0, rpn=0x200000, tsize=5)  # same page, new mapping
    assert mmu.generation > generation
    assert mmu.translate(0x10, Access.READ, 0) == 0x200010
    generation = mmu.generation
    mmu.write_spr(SPR_MAS1, 0)  # plain MAS writes do not change translations
    assert mmu.generation == generation


def test_handles_spr() -> None:
    mmu = Mmu("e500v2")
    for spr in (624, 625, 626, 627, 628, 630, 944, 48, 633, 634, 1012, 1015, 688, 689, 1008):
        assert mmu.handles_spr(spr)
    for spr in (26, 27, 63, 1009, 629):
        assert not mmu.handles_spr(spr)


@given(ea=st.integers(0, 0xFFFFFFFF), rpn=st.integers(0, 0xFFFFF), tsize=st.integers(1, 11),
       high=st.integers(0, 15))
def test_translation_property(ea: int, rpn: int, tsize: int, high: int) -> None:
    """Any EA inside a TLB1 page translates to RPN|MAS7 plus the offset within the page."""
    mmu = Mmu("e500v2")
    size = 1024 << (2 * tsize)
    write_entry(mmu, tlb=1, esel=0, epn=ea & ~(size - 1) & 0xFFFFF000, rpn=rpn << 12, tsize=tsize,
                mas7=high)
    expected = ((high << 32) | (rpn << 12)) & ~(size - 1) | (ea & (size - 1))
    assert mmu.translate(ea, Access.READ, 0) == expected


def test_changed_spans_cover_the_old_and_new_mapping_of_each_change(mmu: Mmu) -> None:
    """What the core keeps after a TLB change rests on these spans (EA page, page count): the old and
    the new mapping of a written entry, each entry an invalidation removes, and None (anything) for
    PID and MMUCSR0 writes."""
    assert mmu.take_changed_spans() is None, "after reset anything may have changed"
    assert mmu.take_changed_spans() == [], "taken: nothing since"
    write_entry(mmu, tlb=1, esel=3, epn=0x10000000, rpn=0x100000, tsize=5)        # 1 MiB, new
    assert mmu.take_changed_spans() == [(0x10000, 256)]
    write_entry(mmu, tlb=1, esel=3, epn=0x20000000, rpn=0x100000, tsize=1)        # rewritten: 4 KiB
    assert mmu.take_changed_spans() == [(0x10000, 256), (0x20000, 1)]
    write_entry(mmu, tlb=0, esel=0, epn=0x30000000, rpn=0x300000)
    write_entry(mmu, tlb=0, esel=1, epn=0x30001000, rpn=0x301000)
    assert mmu.take_changed_spans() == [(0x30000, 1), (0x30001, 1)], "spans add up until taken"
    mmu.tlbivax(0x30001000)
    assert mmu.take_changed_spans() == [(0x30001, 1)]
    mmu.tlbivax(0x40000000)
    assert mmu.take_changed_spans() == [], "nothing there: nothing changed"
    mmu.write_spr(SPR_PID0, 5)
    assert mmu.take_changed_spans() is None
    mmu.tlbivax(0x20000000 | 0x8)
    mmu.write_spr(SPR_MMUCSR0, MMUCSR0_TLB0FI)
    assert mmu.take_changed_spans() is None, "a flash invalidate after a span: anything"

"""The SPR numbers of the registers the core itself keeps (reference e500-core.md 1.1, 3.1, 5.1, 6;
Linux reg_booke.h), and where each IVOR lives. The MMU's, the timers' and the debug facility's SPR
numbers are in :mod:`emulator.mmu`, :mod:`emulator.timers` and :mod:`emulator.debug`.

Imports: nothing.
"""

from __future__ import annotations

SPR_XER = 1
SPR_LR = 8
SPR_CTR = 9
SPR_SRR0 = 26
SPR_SRR1 = 27
SPR_CSRR0 = 58
SPR_CSRR1 = 59
SPR_DEAR = 61
SPR_ESR = 62
SPR_IVPR = 63
SPR_USPRG0 = 256
SPR_SPRG3R = 259   # 259..263: SPRG3R..SPRG7R, user-readable aliases
SPR_SPRG0 = 272    # 272..279: SPRG0..SPRG7 (supervisor)
SPR_PIR = 286
SPR_PVR = 287
SPR_EPCR = 307
SPR_MSRP = 311
SPR_LPIDR = 338
SPR_IVOR0 = 400    # IVOR0..15 = 400..415
SPR_IVOR32 = 528   # IVOR32..37 = 528..533
SPR_IVOR38 = 432   # IVOR38..41 = 432..435
SPR_SPEFSCR = 512
SPR_L1CFG0 = 515
SPR_L1CFG1 = 516
SPR_ATBL = 526
SPR_ATBU = 527
SPR_MCSRR0 = 570
SPR_MCSRR1 = 571
SPR_MCSR = 572
SPR_MCAR = 573
SPR_DSRR0 = 574
SPR_DSRR1 = 575
SPR_HID1 = 1009
SPR_L1CSR0 = 1010
SPR_L1CSR1 = 1011
SPR_BUCSR = 1013
SPR_SVR = 1023
SPR_BBEAR = 513      # branch buffer entry address (user RW)
SPR_BBTAR = 514      # branch buffer target address (user RW)
SPR_SPRG8 = 604
SPR_SPRG9 = 605
SPR_EPR = 702        # external proxy: the vector the interrupt controller gave on the last IVOR4
SPR_EPLC = 947       # external PID load/store context
SPR_EPSC = 948
SPR_L2CSR0 = 1017    # e500mc L2 cache control


def ivor_spr(ivor: int) -> int:
    """The SPR that holds IVOR ``ivor`` (IVOR0-15, IVOR32-37 and IVOR38-41 are three SPR ranges)."""
    if ivor < 16:
        return SPR_IVOR0 + ivor
    if ivor < 38:
        return SPR_IVOR32 + ivor - 32
    return SPR_IVOR38 + ivor - 38

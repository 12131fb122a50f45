/*
 * timer guest, assembly half: the decrementer interrupt handler (IVOR10) and the idle wait.
 *
 * wait_for_tick(period) arms a one-shot DEC (TCR[DIE]=1, ARE=0) with external interrupts off, then
 * enables them and spins on a single self-branch at `idle_spin`. The handler counts the tick,
 * clears TSR[DIS], records SRR1 and TSR, and returns to the instruction after the spin. Because the
 * spin is one instruction with no state, the machine state at interrupt entry is the same however
 * many times it spun: that is what lets the lockstep harness compare a wall-clock QEMU decrementer
 * with our cycle-driven one (see tests/lockstep/harness.py, rule "idle spin").
 */
#define SPR_DEC    22
#define SPR_SRR0   26
#define SPR_SRR1   27
#define SPR_IVPR   63
#define SPR_SPRG0  272
#define SPR_SPRG1  273
#define SPR_TSR    336
#define SPR_TCR    340
#define SPR_IVOR10 410
#define TCR_DIE_HI 0x0400            /* TCR[DIE] = 0x04000000 */
#define TSR_DIS_HI 0x0800            /* TSR[DIS] = 0x08000000 */

    .text
/* void install_dec_handler(void): IVPR/IVOR10 -> dec_handler, TCR = DIE (no auto-reload). */
    .globl install_dec_handler
    .type install_dec_handler, @function
install_dec_handler:
    lis     r3, dec_handler@ha
    addi    r3, r3, dec_handler@l
    rlwinm  r4, r3, 0, 0, 15
    mtspr   SPR_IVPR, r4
    rlwinm  r4, r3, 0, 16, 27
    mtspr   SPR_IVOR10, r4
    lis     r4, TSR_DIS_HI
    mtspr   SPR_TSR, r4              /* drop any stale DIS */
    lis     r4, TCR_DIE_HI
    mtspr   SPR_TCR, r4
    isync
    blr
    .size install_dec_handler, . - install_dec_handler

/* void wait_for_tick(uint32_t period): returns after one decrementer interrupt. */
    .globl wait_for_tick
    .type wait_for_tick, @function
wait_for_tick:
    mtspr   SPR_DEC, r3
    wrteei  1
    .globl idle_spin
idle_spin:
    b       idle_spin
    wrteei  0
    blr
    .size wait_for_tick, . - wait_for_tick

    .align 4
    .globl dec_handler
    .type dec_handler, @function
dec_handler:
    mtspr   SPR_SPRG0, r3
    mtspr   SPR_SPRG1, r4
    lis     r4, tick_count@ha
    lwz     r3, tick_count@l(r4)
    addi    r3, r3, 1
    stw     r3, tick_count@l(r4)
    mfspr   r3, SPR_SRR1
    lis     r4, last_srr1@ha
    stw     r3, last_srr1@l(r4)
    mfspr   r3, SPR_TSR
    lis     r4, last_tsr@ha
    stw     r3, last_tsr@l(r4)
    lis     r3, TSR_DIS_HI
    mtspr   SPR_TSR, r3
    /* Leave the spin: SRR0 = idle_spin + 4 (SRR0 is idle_spin when the interrupt hit the spin). */
    mfspr   r3, SPR_SRR0
    lis     r4, idle_spin@ha
    addi    r4, r4, idle_spin@l
    cmplw   r3, r4
    bne     1f
    addi    r3, r3, 4
    mtspr   SPR_SRR0, r3
1:  mfspr   r4, SPR_SPRG1
    mfspr   r3, SPR_SPRG0
    rfi
    .size dec_handler, . - dec_handler

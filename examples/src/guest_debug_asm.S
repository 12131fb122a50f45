/*
 * guest_debug guest, assembly half: its own Debug interrupt handler (IVOR15).
 *
 * The debug interrupt is critical class on e500v2 (CSRR0/1, rfci) and has its own level on e500mc
 * (DSRR0/1, rfdi); E500MC is defined by the build for the e500mc image.
 * For every event bit in DBSR (IAC1/2, DAC1R/W, DAC2R/W) the handler bumps a counter and disarms the
 * matching DBCR0 enable (the DBSR and DBCR0 bits share positions), because an IAC or DAC event is
 * taken *before* the instruction, which would otherwise fire again on return. It then clears DBSR
 * (write one to clear) and returns. Scratch registers are kept in SPRG0-3, and it touches no CR
 * field: the interrupted code may be between a compare and its branch.
 */
#define SPR_CSRR0  58
#define SPR_IVPR   63
#define SPR_SPRG0  272
#define SPR_SPRG1  273
#define SPR_SPRG2  274
#define SPR_SPRG3  275
#define SPR_DBSR   304
#define SPR_DBCR0  308
#define SPR_IVOR15 415
#define SPR_DSRR0  574

#ifdef E500MC
#define SPR_SAVED_PC SPR_DSRR0
#define RETURN_FROM_DEBUG rfdi
#else
#define SPR_SAVED_PC SPR_CSRR0
#define RETURN_FROM_DEBUG rfci
#endif

/* COUNT_BIT(shift, counter): counter += (r3 >> shift) & 1, using r4/r5. */
#define COUNT_BIT(shift, counter)             \
    rlwinm  r4, r3, 32 - (shift), 31, 31;    \
    lis     r5, counter@ha;                   \
    lwz     r6, counter@l(r5);                \
    add     r6, r6, r4;                       \
    stw     r6, counter@l(r5)

    .text
/* void install_debug_handler(void): IVPR = handler's 64 KiB region, IVOR15 = its offset. */
    .globl install_debug_handler
    .type install_debug_handler, @function
install_debug_handler:
    lis     r3, debug_handler@ha
    addi    r3, r3, debug_handler@l
    rlwinm  r4, r3, 0, 0, 15
    mtspr   SPR_IVPR, r4
    rlwinm  r4, r3, 0, 16, 27
    mtspr   SPR_IVOR15, r4
    isync
    blr
    .size install_debug_handler, . - install_debug_handler

/* The IAC1 target: a function whose first instruction the guest watches. */
    .globl iac_target
    .type iac_target, @function
iac_target:
    addi    r3, r3, 1
    blr
    .size iac_target, . - iac_target

    .align 4
    .globl debug_handler
    .type debug_handler, @function
debug_handler:
    mtspr   SPR_SPRG0, r3
    mtspr   SPR_SPRG1, r4
    mtspr   SPR_SPRG2, r5
    mtspr   SPR_SPRG3, r6
    mfspr   r4, SPR_SAVED_PC
    lis     r5, last_debug_pc@ha
    stw     r4, last_debug_pc@l(r5)
    mfspr   r3, SPR_DBSR
    COUNT_BIT(23, iac_hits)          /* DBSR[IAC1]  0x00800000 */
    COUNT_BIT(18, dac_write_hits)    /* DBSR[DAC1W] 0x00040000 */
    COUNT_BIT(17, dac_read_hits)     /* DBSR[DAC2R] 0x00020000 */
    /* Disarm what fired: DBCR0 &= ~(DBSR & 0x00FF0000). */
    rlwinm  r4, r3, 0, 8, 15         /* & 0x00FF0000; not andis., which would clobber CR0 */
    mfspr   r5, SPR_DBCR0
    andc    r5, r5, r4
    mtspr   SPR_DBCR0, r5
    mtspr   SPR_DBSR, r3             /* write one to clear every bit we saw */
    mfspr   r6, SPR_SPRG3
    mfspr   r5, SPR_SPRG2
    mfspr   r4, SPR_SPRG1
    mfspr   r3, SPR_SPRG0
    RETURN_FROM_DEBUG
    .size debug_handler, . - debug_handler

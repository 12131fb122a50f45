/*
 * traps guest, assembly half: its own Program interrupt handler (IVOR6) and the trap instructions.
 *
 * The handler counts traps (ESR[PTR]) in trap_count, records the last ESR in last_esr, skips the
 * trapping instruction (SRR0 += 4) and returns with rfi. It saves its scratch registers in SPRG0-2,
 * so the interrupted code sees no register change.
 */
#define SPR_SRR0   26
#define SPR_ESR    62
#define SPR_IVPR   63
#define SPR_SPRG0  272
#define SPR_SPRG1  273
#define SPR_SPRG2  274
#define SPR_IVOR6  406
#define ESR_PTR_SHIFT 25            /* ESR[PTR] = 0x02000000 */

    .text
/* void install_trap_handler(void): IVPR = handler's 64 KiB region, IVOR6 = its offset. */
    .globl install_trap_handler
    .type install_trap_handler, @function
install_trap_handler:
    lis     r3, program_handler@ha
    addi    r3, r3, program_handler@l
    rlwinm  r4, r3, 0, 0, 15        /* & 0xFFFF0000 */
    mtspr   SPR_IVPR, r4
    rlwinm  r4, r3, 0, 16, 27       /* & 0x0000FFF0 */
    mtspr   SPR_IVOR6, r4
    isync
    blr
    .size install_trap_handler, . - install_trap_handler

/* void trap_always(void): `trap` (tw 31,0,0), the same word as gdb's PowerPC breakpoint. */
    .globl trap_always
    .type trap_always, @function
trap_always:
    trap
    blr
    .size trap_always, . - trap_always

/* void trap_if_equal(uint32_t a, uint32_t b): tweq a,b. */
    .globl trap_if_equal
    .type trap_if_equal, @function
trap_if_equal:
    tweq    r3, r4
    blr
    .size trap_if_equal, . - trap_if_equal

/* void trap_if_greater(int32_t a): twgti a,5 (traps when a > 5). */
    .globl trap_if_greater
    .type trap_if_greater, @function
trap_if_greater:
    twgti   r3, 5
    blr
    .size trap_if_greater, . - trap_if_greater

    .align 4                         /* IVORs ignore the low 4 bits */
    .globl program_handler
    .type program_handler, @function
program_handler:
    mtspr   SPR_SPRG0, r3
    mtspr   SPR_SPRG1, r4
    mtspr   SPR_SPRG2, r5
    mfspr   r3, SPR_ESR
    lis     r4, last_esr@ha
    stw     r3, last_esr@l(r4)
    rlwinm  r3, r3, 32 - ESR_PTR_SHIFT, 31, 31   /* 1 if this was a trap */
    lis     r4, trap_count@ha
    lwz     r5, trap_count@l(r4)
    add     r5, r5, r3
    stw     r5, trap_count@l(r4)
    mfspr   r3, SPR_SRR0
    addi    r3, r3, 4
    mtspr   SPR_SRR0, r3
    mfspr   r5, SPR_SPRG2
    mfspr   r4, SPR_SPRG1
    mfspr   r3, SPR_SPRG0
    rfi
    .size program_handler, . - program_handler

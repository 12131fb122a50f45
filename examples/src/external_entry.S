/*
 * The External Input interrupt (IVOR4) entry shared by the guests that take MPIC interrupts (pic, smp).
 *
 * It saves every register the C calling convention lets external_interrupt() change (r0, r3-r12,
 * LR, CTR, CR, XER) in a frame below the interrupted stack pointer, calls it, restores them and
 * returns with rfi. SRR0/SRR1 are untouched in between because MSR[EE] stays 0 in the handler.
 * install_external_handler sets the calling core's IVPR and IVOR4 (each core has its own).
 */
#define SPR_IVPR   63
#define SPR_IVOR4  404
#define FRAME      80

    .text
/* void install_external_handler(void): IVPR = handler's 64 KiB region, IVOR4 = its offset. */
    .globl install_external_handler
    .type install_external_handler, @function
install_external_handler:
    lis     r3, external_entry@ha
    addi    r3, r3, external_entry@l
    rlwinm  r4, r3, 0, 0, 15        /* & 0xFFFF0000 */
    mtspr   SPR_IVPR, r4
    rlwinm  r4, r3, 0, 16, 27       /* & 0x0000FFF0 */
    mtspr   SPR_IVOR4, r4
    isync
    blr
    .size install_external_handler, . - install_external_handler

    .align 4                         /* IVORs ignore the low 4 bits */
    .globl external_entry
    .type external_entry, @function
external_entry:
    stwu    r1, -FRAME(r1)
    stw     r0, 8(r1)
    mflr    r0
    stw     r0, 12(r1)
    mfcr    r0
    stw     r0, 16(r1)
    mfctr   r0
    stw     r0, 20(r1)
    mfxer   r0
    stw     r0, 24(r1)
    stw     r3, 28(r1)
    stw     r4, 32(r1)
    stw     r5, 36(r1)
    stw     r6, 40(r1)
    stw     r7, 44(r1)
    stw     r8, 48(r1)
    stw     r9, 52(r1)
    stw     r10, 56(r1)
    stw     r11, 60(r1)
    stw     r12, 64(r1)
    bl      external_interrupt
    lwz     r12, 64(r1)
    lwz     r11, 60(r1)
    lwz     r10, 56(r1)
    lwz     r9, 52(r1)
    lwz     r8, 48(r1)
    lwz     r7, 44(r1)
    lwz     r6, 40(r1)
    lwz     r5, 36(r1)
    lwz     r4, 32(r1)
    lwz     r3, 28(r1)
    lwz     r0, 24(r1)
    mtxer   r0
    lwz     r0, 20(r1)
    mtctr   r0
    lwz     r0, 16(r1)
    mtcr    r0
    lwz     r0, 12(r1)
    mtlr    r0
    lwz     r0, 8(r1)
    addi    r1, r1, FRAME
    rfi
    .size external_entry, . - external_entry

/*
 * mmu guest, assembly half: the data TLB error (IVOR13), instruction TLB error (IVOR14) and data
 * storage (IVOR2) handlers, plus a tiny position-independent function the C half copies into the
 * virtual window to execute it there.
 *
 * TLB-miss handlers: the miss has loaded MAS0-MAS2 from MAS4's defaults (TLB0, victim way in ESEL,
 * 4 KiB TSIZE, TID = PID0, EPN = the missing EA) and cleared MAS3. The handler looks the page up in
 * the software page table `mmu_page_table` (one MAS3 image per window page, 0 = unmapped), writes
 * MAS3/MAS7 and `tlbwe`s the entry into the way the hardware chose. It never reads MAS0 into a GPR:
 * the victim way is an implementation choice (QEMU and our core may pick different ways). A miss
 * outside the window or on an unmapped page jumps to mmu_fatal (C), which reports and powers off.
 *
 * DSI handler: counts the interrupt, records ESR, and if it was a store (ESR[ST]) to a window page
 * grants SW in the page table and in the TLB entry it finds with `tlbsx`, then retries the store.
 * Scratch registers live in SPRG0-3, so the interrupted code sees no register change.
 */
#define SPR_SRR0   26
#define SPR_DEAR   61
#define SPR_ESR    62
#define SPR_IVPR   63
#define SPR_SPRG0  272
#define SPR_SPRG1  273
#define SPR_SPRG2  274
#define SPR_SPRG3  275
#define SPR_IVOR2  402
#define SPR_IVOR13 413
#define SPR_IVOR14 414
#define SPR_MAS3   627
#define SPR_MAS6   630
#define SPR_MAS7   944
#define SPR_PID0   48
/* Must match mmu.c: WINDOW_EA, WINDOW_PAGES and MAS3_SW. */
#define WINDOW_EA_HI   0x4000
#define WINDOW_PAGES   64
#define MAS3_SW        0x04
#define ESR_ST_SHIFT   23               /* ESR[ST] = 0x00800000 */

    .text
/* void install_mmu_handlers(void): IVPR = the handlers' 64 KiB region, IVOR2/13/14 = their offsets. */
    .globl install_mmu_handlers
    .type install_mmu_handlers, @function
install_mmu_handlers:
    lis     r3, dsi_handler@ha
    addi    r3, r3, dsi_handler@l
    rlwinm  r4, r3, 0, 0, 15
    mtspr   SPR_IVPR, r4
    rlwinm  r4, r3, 0, 16, 27
    mtspr   SPR_IVOR2, r4
    lis     r3, dtlb_miss_handler@ha
    addi    r3, r3, dtlb_miss_handler@l
    rlwinm  r4, r3, 0, 16, 27
    mtspr   SPR_IVOR13, r4
    lis     r3, itlb_miss_handler@ha
    addi    r3, r3, itlb_miss_handler@l
    rlwinm  r4, r3, 0, 16, 27
    mtspr   SPR_IVOR14, r4
    isync
    blr
    .size install_mmu_handlers, . - install_mmu_handlers

/* uint32_t window_function(uint32_t x): 3 * x + 7. Position independent: copied into the window. */
    .globl window_function
    .type window_function, @function
window_function:
    mulli   r3, r3, 3
    addi    r3, r3, 7
    blr
    .globl window_function_end
window_function_end:
    .size window_function, . - window_function

/* Saves r3-r5 and CR in SPRG0-3. */
.macro save_scratch
    mtspr   SPR_SPRG0, r3
    mtspr   SPR_SPRG1, r4
    mtspr   SPR_SPRG2, r5
    mfcr    r5
    mtspr   SPR_SPRG3, r5
.endm

.macro restore_scratch_and_return
    mfspr   r5, SPR_SPRG3
    mtcr    r5
    mfspr   r5, SPR_SPRG2
    mfspr   r4, SPR_SPRG1
    mfspr   r3, SPR_SPRG0
    rfi
.endm

/* r3 = missing EA, r5 = address of the miss counter to bump. Fills the TLB entry or goes fatal. */
.macro fill_from_page_table
    lwz     r4, 0(r5)
    addi    r4, r4, 1
    stw     r4, 0(r5)
    lis     r4, WINDOW_EA_HI
    subf    r4, r4, r3
    srwi    r4, r4, 12                  /* page index (huge when EA is below the window) */
    cmplwi  r4, WINDOW_PAGES
    bge-    mmu_fatal
    slwi    r4, r4, 2
    lis     r5, mmu_page_table@ha
    addi    r5, r5, mmu_page_table@l
    lwzx    r4, r5, r4                  /* MAS3 image: RPN | permissions */
    cmpwi   r4, 0
    beq-    mmu_fatal
    mtspr   SPR_MAS3, r4
    li      r4, 0
    mtspr   SPR_MAS7, r4                /* the backing RAM is below 4 GiB */
    tlbwe
    isync
.endm

    .align 4                            /* IVORs ignore the low 4 bits */
    .globl dtlb_miss_handler
    .type dtlb_miss_handler, @function
dtlb_miss_handler:
    save_scratch
    mfspr   r3, SPR_DEAR
    lis     r5, mmu_dtlb_misses@ha
    addi    r5, r5, mmu_dtlb_misses@l
    fill_from_page_table
    restore_scratch_and_return
    .size dtlb_miss_handler, . - dtlb_miss_handler

    .align 4
    .globl itlb_miss_handler
    .type itlb_miss_handler, @function
itlb_miss_handler:
    save_scratch
    mfspr   r3, SPR_SRR0
    lis     r5, mmu_itlb_misses@ha
    addi    r5, r5, mmu_itlb_misses@l
    fill_from_page_table
    restore_scratch_and_return
    .size itlb_miss_handler, . - itlb_miss_handler

    .align 4
    .globl dsi_handler
    .type dsi_handler, @function
dsi_handler:
    save_scratch
    lis     r5, mmu_dsi_count@ha
    lwz     r4, mmu_dsi_count@l(r5)
    addi    r4, r4, 1
    stw     r4, mmu_dsi_count@l(r5)
    mfspr   r4, SPR_ESR
    lis     r5, mmu_last_esr@ha
    stw     r4, mmu_last_esr@l(r5)
    rlwinm. r4, r4, 32 - ESR_ST_SHIFT, 31, 31
    beq-    mmu_fatal                   /* only store faults are expected */
    mfspr   r3, SPR_DEAR
    lis     r4, WINDOW_EA_HI
    subf    r4, r4, r3
    srwi    r4, r4, 12
    cmplwi  r4, WINDOW_PAGES
    bge-    mmu_fatal
    slwi    r4, r4, 2
    lis     r5, mmu_page_table@ha
    addi    r5, r5, mmu_page_table@l
    add     r5, r5, r4
    lwz     r4, 0(r5)
    ori     r4, r4, MAS3_SW
    stw     r4, 0(r5)                   /* the page is writable from now on */
    mfspr   r4, SPR_PID0
    slwi    r4, r4, 16
    mtspr   SPR_MAS6, r4                /* search PID0, address space 0 */
    tlbsx   0, r3
    mfspr   r4, SPR_MAS3
    ori     r4, r4, MAS3_SW
    mtspr   SPR_MAS3, r4
    li      r4, 0
    mtspr   SPR_MAS7, r4
    tlbwe
    isync
    restore_scratch_and_return          /* retries the store */
    .size dsi_handler, . - dsi_handler

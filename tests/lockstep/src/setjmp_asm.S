/*
 * Hand-written setjmp/longjmp for the lockstep corpus (no libc here).
 *
 * jmp_buf layout (words): 0 r1, 1 r2, 2 LR, 3 CR, 4..22 r13..r31. corpus_setjmp returns 0;
 * corpus_longjmp(buf, v) makes that setjmp return v (1 if v == 0), as C's longjmp does.
 */
    .text
    .globl corpus_setjmp
    .type corpus_setjmp, @function
corpus_setjmp:
    stw     r1, 0(r3)
    stw     r2, 4(r3)
    mflr    r0
    stw     r0, 8(r3)
    mfcr    r0
    stw     r0, 12(r3)
    stmw    r13, 16(r3)
    li      r3, 0
    blr
    .size corpus_setjmp, . - corpus_setjmp

    .globl corpus_longjmp
    .type corpus_longjmp, @function
corpus_longjmp:
    lmw     r13, 16(r3)
    lwz     r0, 12(r3)
    mtcrf   0xff, r0
    lwz     r0, 8(r3)
    mtlr    r0
    lwz     r2, 4(r3)
    lwz     r1, 0(r3)
    cmpwi   r4, 0
    mr      r3, r4
    bnelr
    li      r3, 1
    blr
    .size corpus_longjmp, . - corpus_longjmp

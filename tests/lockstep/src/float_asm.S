/* main for the float guest: turn the FPU on (MSR[FP]) before any compiled code can touch an FPR
 * (gcc saves the callee-saved FPRs in the prologue of the function that uses them), then run it. */
    .text
    .globl main
    .type main, @function
main:
    mfmsr   r0
    ori     r0, r0, 0x2000
    mtmsr   r0
    isync
    b       float_main
    .size main, . - main

/*
 * Start-up code shared by every example guest.
 *
 * Entered from QEMU ppce500 `-kernel` boot state (or the emulator's copy of it): MSR = 0,
 * r1 = 0x00FFFFF8, r3 = device tree, TLB1[0] maps EA 0 -> PA 0 (64 MiB). We keep the boot stack,
 * terminate the back chain so gdb's `bt` stops here, clear .bss, map CCSR so the UART is at
 * EA 0xE0004500, call main and power off with its return value.
 */
#define SPR_MAS0 624
#define SPR_MAS1 625
#define SPR_MAS2 626
#define SPR_MAS3 627
#define SPR_MAS7 944

    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    /* A zero back chain and a zero saved LR end gdb's backtrace at _start. */
    li      r0, 0
    stwu    r0, -16(r1)
    stw     r0, 4(r1)

    /* Clear .bss (and .sbss) word by word: the linker script aligns both ends to 8. */
    lis     r3, __bss_start@ha
    addi    r3, r3, __bss_start@l
    lis     r4, __bss_end@ha
    addi    r4, r4, __bss_end@l
1:  cmplw   r3, r4
    bge     2f
    stw     r0, 0(r3)
    addi    r3, r3, 4
    b       1b
2:
    /* TLB1 entry 1: EA 0xE0000000 -> PA 0xF_E0000000, 1 MiB, cache-inhibited + guarded,
       supervisor read/write. CCSR sits above 4 GiB on ppce500, so the guest maps it itself. */
    lis     r3, 0x1001
    mtspr   SPR_MAS0, r3
    lis     r3, 0xC000
    ori     r3, r3, 0x0500
    mtspr   SPR_MAS1, r3
    lis     r3, 0xE000
    ori     r3, r3, 0x000A
    mtspr   SPR_MAS2, r3
    lis     r3, 0xE000
    ori     r3, r3, 0x0005
    mtspr   SPR_MAS3, r3
    li      r3, 0x000F
    mtspr   SPR_MAS7, r3
    isync
    tlbwe
    isync

    bl      main
    /* r3 = main's return value = exit status. */
    bl      poweroff
3:  b       3b
    .size _start, . - _start

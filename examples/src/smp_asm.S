/*
 * smp guest, assembly half: where a secondary core starts when the spin table releases it (every
 * core's External Input entry is external_entry.S).
 *
 * ePAPR spin-table release (what QEMU's ppce500 does for -kernel boots): the core starts at the
 * released address with r3 from the table (here: its index) and one TLB1 entry mapping the 64 MiB
 * around that address one to one (QEMU uses entry 1; ePAPR does not say which); it has no stack and
 * no CCSR mapping of its own yet.
 */
#define SPR_MAS0   624
#define SPR_MAS1   625
#define SPR_MAS2   626
#define SPR_MAS3   627
#define SPR_MAS7   944
#define STACK_SIZE 4096

    .text
/* The ELF entry of this guest (-e smp_start): keeps the device tree address QEMU's -kernel boot
   passes in r3 (crt0's _start uses r3 before main) in boot_device_tree, then starts as any guest. */
    .globl smp_start
    .type smp_start, @function
smp_start:
    lis     r4, boot_device_tree@ha
    stw     r3, boot_device_tree@l(r4)
    b       _start
    .size smp_start, . - smp_start

    .globl secondary_entry
    .type secondary_entry, @function
secondary_entry:
    /* r1 = top of smp_stacks[r3] (minus a zero back chain, so gdb's bt ends here). */
    lis     r1, smp_stacks@ha
    addi    r1, r1, smp_stacks@l
    addi    r4, r3, 1
    slwi    r4, r4, 12              /* (index + 1) * STACK_SIZE */
    add     r1, r1, r4
    li      r0, 0
    stwu    r0, -16(r1)
    stw     r0, 4(r1)
    /* CCSR as crt0.S maps it on the boot core, in this core's TLB1 entry 3 (entry 1 may hold the
       mapping the core runs from). */
    lis     r4, 0x1003
    mtspr   SPR_MAS0, r4
    lis     r4, 0xC000
    ori     r4, r4, 0x0500
    mtspr   SPR_MAS1, r4
    lis     r4, 0xE000
    ori     r4, r4, 0x000A
    mtspr   SPR_MAS2, r4
    lis     r4, 0xE000
    ori     r4, r4, 0x0005
    mtspr   SPR_MAS3, r4
    li      r4, 0x000F
    mtspr   SPR_MAS7, r4
    isync
    tlbwe
    isync
    bl      secondary_main
1:  b       1b
    .size secondary_entry, . - secondary_entry

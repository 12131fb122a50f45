/* smp: several e500 cores sharing memory, seen by a bare-metal guest.
 *
 * The boot core reads the device tree QEMU's ppce500 passes (r3 at entry): one /cpus/cpu node per
 * core, the secondary ones with enable-method "spin-table" and a cpu-release-addr. It releases each
 * secondary core through its ePAPR spin-table entry (r3 = the core's index, then the start address
 * with bit 0 clear) and waits until the core says it runs. Then every core adds 1 to a shared counter
 * ROUNDS times under a lwarx/stwcx. spinlock, and the boot core sends each secondary core an MPIC IPI
 * (IPI 0, dispatched to that core alone) that its External Input handler counts. Each core records
 * its PIR and what the MPIC's WHOAMI register reads on it.
 *
 * Only the boot core prints, after the others are done, so the text depends only on the number of
 * cores, never on how the cores interleave: QEMU and the emulator print the same. With one core the
 * guest still runs and passes. Powers off with 0 when every check passed.
 */
#include "e500.h"

#define MAX_CPUS     8
#define ROUNDS       2000
/* Loop turns before a wait counts as failed: seconds on QEMU, whose other cores are host threads
   that a loaded host may hold back for a while. */
#define WAIT_LIMIT   2000000000u
#define SPR_PIR      286
#define SPR_MAS0     624
#define SPR_MAS1     625
#define SPR_MAS2     626
#define SPR_MAS3     627
#define SPR_MAS7     944

#define MPIC_EA      (CCSR_EA + 0x40000u)
/* MPIC registers, word offsets; 0x40-0xB0 are the registers of the core that accesses them. */
#define GCR          (0x1020 / 4)
#define IPI0_IVPR    (0x10A0 / 4)
#define SPVR         (0x10E0 / 4)
#define OWN_IPIDR0   (0x0040 / 4)
#define OWN_CTPR     (0x0080 / 4)
#define OWN_WHOAMI   (0x0090 / 4)
#define OWN_IACK     (0x00A0 / 4)
#define OWN_EOI      (0x00B0 / 4)
#define GCR_RESET    0x80000000u
#define IPI_VECTOR   0x70
#define SPURIOUS     0xFF
#define PRIO(p)      ((uint32_t)(p) << 16)

/* Where the boot core maps a spin-table page: EA 0xD0000000, 4 KiB, cache-inhibited, guarded. */
#define SPIN_EA      0xD0000000u

/* ePAPR spin-table entry (big-endian, 64-bit fields) */
struct spin_entry {
    uint32_t addr_hi, addr_lo;
    uint32_t r3_hi, r3_lo;
    uint32_t reserved;
    uint32_t pir;
};

uint32_t boot_device_tree = 1;   /* set by smp_start (smp_asm.S); in .data: crt0 clears only .bss */
uint8_t smp_stacks[MAX_CPUS][4096] __attribute__((aligned(16)));

static volatile uint32_t lock;
static volatile uint32_t shared_counter;
static volatile uint32_t running[MAX_CPUS], finished[MAX_CPUS], ipis[MAX_CPUS];
static volatile uint32_t pir_seen[MAX_CPUS], whoami_seen[MAX_CPUS];
static uint32_t cpu_count;
static uint64_t release_address[MAX_CPUS];
static unsigned failures;

static volatile uint32_t *const mpic = (volatile uint32_t *)MPIC_EA;

void install_external_handler(void);
void secondary_entry(void);

static void check(int ok, const char *what)
{
    if (!ok) {
        failures++;
        uart_puts("smp: check failed: ");
        uart_puts(what);
        uart_puts("\n");
    }
}

static void spin_lock(volatile uint32_t *word)
{
    uint32_t seen;
    __asm__ volatile(
        "1: lwarx   %0, 0, %1\n"
        "   cmpwi   %0, 0\n"
        "   bne-    1b\n"
        "   stwcx.  %2, 0, %1\n"
        "   bne-    1b\n"
        "   isync\n"
        : "=&r"(seen) : "r"(word), "r"(1) : "cr0", "memory");
}

static void spin_unlock(volatile uint32_t *word)
{
    __asm__ volatile("msync" : : : "memory");
    *word = 0;
}

static int wait_for(volatile uint32_t *word, uint32_t value)
{
    for (uint32_t i = 0; i < WAIT_LIMIT; i++)
        if (*word >= value)
            return 1;
    return 0;
}

/* -- the device tree: count /cpus/cpu nodes and read their cpu-release-addr ---------------------- */

#define FDT_MAGIC      0xD00DFEEDu
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9

static int same(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int starts_with(const char *text, const char *prefix)
{
    while (*prefix)
        if (*text++ != *prefix++)
            return 0;
    return 1;
}

static uint32_t align4(uint32_t n)
{
    return (n + 3) & ~3u;
}

static void read_device_tree(const uint32_t *fdt)
{
    if (fdt[0] != FDT_MAGIC) {
        cpu_count = 1;
        return;
    }
    const uint8_t *base = (const uint8_t *)fdt;
    const uint8_t *p = base + fdt[2];                 /* off_dt_struct */
    const char *strings = (const char *)base + fdt[3];
    int depth = 0, in_cpus = 0, in_cpu = 0;
    for (;;) {
        uint32_t token = *(const uint32_t *)p;
        p += 4;
        if (token == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            uint32_t length = 0;
            while (name[length])
                length++;
            p += align4(length + 1);
            depth++;
            if (depth == 2 && same(name, "cpus"))
                in_cpus = 1;
            else if (depth == 3 && in_cpus && cpu_count < MAX_CPUS) {
                in_cpu = 1;
                release_address[cpu_count++] = 0;
            }
        } else if (token == FDT_END_NODE) {
            if (depth == 3)
                in_cpu = 0;
            if (depth == 2)
                in_cpus = 0;
            depth--;
        } else if (token == FDT_PROP) {
            uint32_t length = ((const uint32_t *)p)[0];
            const char *name = strings + ((const uint32_t *)p)[1];
            const uint32_t *value = (const uint32_t *)(p + 8);
            if (in_cpu && length == 8 && starts_with(name, "cpu-release-addr"))
                release_address[cpu_count - 1] = ((uint64_t)value[0] << 32) | value[1];
            p += 8 + align4(length);
        } else if (token == FDT_NOP) {
            continue;
        } else {
            break;
        }
    }
    if (cpu_count == 0)
        cpu_count = 1;
}

/* -- releasing a secondary core ----------------------------------------------------------------- */

static volatile struct spin_entry *map_spin_entry(uint64_t physical)
{
    /* TLB1 entry 2: the 4 KiB page holding the entry. */
    mtspr(SPR_MAS0, 0x10020000u);
    mtspr(SPR_MAS1, 0xC0000100u);                    /* valid, protected, 4 KiB */
    mtspr(SPR_MAS2, SPIN_EA | 0xAu);                 /* cache-inhibited, guarded */
    mtspr(SPR_MAS3, ((uint32_t)physical & 0xFFFFF000u) | 0x5u);   /* supervisor read/write */
    mtspr(SPR_MAS7, (uint32_t)(physical >> 32));
    __asm__ volatile("isync; tlbwe; isync" : : : "memory");
    return (volatile struct spin_entry *)(SPIN_EA + ((uint32_t)physical & 0xFFFu));
}

static void release(uint32_t index)
{
    volatile struct spin_entry *entry = map_spin_entry(release_address[index]);
    entry->r3_hi = 0;
    entry->r3_lo = index;
    entry->addr_hi = 0;
    __asm__ volatile("msync" : : : "memory");
    entry->addr_lo = (uint32_t)secondary_entry;      /* bit 0 clear: the core starts */
    __asm__ volatile("msync" : : : "memory");
}

/* -- what every core does ------------------------------------------------------------------------ */

static void count_rounds(void)
{
    for (uint32_t i = 0; i < ROUNDS; i++) {
        spin_lock(&lock);
        shared_counter = shared_counter + 1;
        spin_unlock(&lock);
    }
}

void external_interrupt(void)
{
    uint32_t vector = mpic[OWN_IACK];
    if (vector == SPURIOUS)
        return;
    if (vector == IPI_VECTOR)
        ipis[mfspr(SPR_PIR) & (MAX_CPUS - 1)]++;
    mpic[OWN_EOI] = 0;
}

void secondary_main(uint32_t index)
{
    pir_seen[index] = mfspr(SPR_PIR);
    whoami_seen[index] = mpic[OWN_WHOAMI];
    install_external_handler();
    mpic[OWN_CTPR] = 0;
    __asm__ volatile("wrteei 1" : : : "memory");
    running[index] = 1;
    count_rounds();
    finished[index] = 1;
    for (;;) {
#ifdef E500MC
        __asm__ volatile("wait" : : : "memory");    /* e500v2 has no wait: it spins */
#endif
    }
}

int main(void)
{
    read_device_tree((const uint32_t *)boot_device_tree);
    uart_puts("smp: ");
    uart_put_dec(cpu_count);
    uart_puts(" cpus in the device tree\n");

    mpic[GCR] = GCR_RESET;
    while (mpic[GCR] & GCR_RESET)
        ;
    mpic[SPVR] = SPURIOUS;
    mpic[IPI0_IVPR] = PRIO(9) | IPI_VECTOR;
    pir_seen[0] = mfspr(SPR_PIR);
    whoami_seen[0] = mpic[OWN_WHOAMI];

    for (uint32_t i = 1; i < cpu_count; i++) {
        check(release_address[i] != 0, "cpu-release-addr");
        if (release_address[i] == 0)
            continue;
        release(i);
        check(wait_for(&running[i], 1), "secondary core started");
    }
    count_rounds();
    for (uint32_t i = 1; i < cpu_count; i++)
        check(wait_for(&finished[i], 1), "secondary core finished");
    uart_puts("smp: counter ");
    uart_put_dec(shared_counter);
    uart_puts(" expected ");
    uart_put_dec(cpu_count * ROUNDS);
    uart_puts("\n");
    check(shared_counter == cpu_count * ROUNDS, "counter");

    for (uint32_t i = 1; i < cpu_count; i++) {
        mpic[OWN_IPIDR0] = 1u << i;                   /* IPI 0 to core i alone */
        check(wait_for(&ipis[i], 1), "ipi");
    }
    for (uint32_t i = 0; i < cpu_count; i++) {
        uart_puts("smp: cpu ");
        uart_put_dec(i);
        uart_puts(" pir ");
        uart_put_dec(pir_seen[i]);
        uart_puts(" whoami ");
        uart_put_dec(whoami_seen[i]);
        uart_puts(" ipis ");
        uart_put_dec(ipis[i]);
        uart_puts("\n");
        check(pir_seen[i] == i && whoami_seen[i] == i, "pir and whoami");
        check(ipis[i] == (i ? 1u : 0u), "one ipi to each secondary core");
    }
    uart_puts(failures ? "smp: FAIL\n" : "smp: PASS\n");
    return failures ? 1 : 0;
}

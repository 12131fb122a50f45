/* guest_debug: the guest uses the e500 debug facility itself (no debugger attached).
 *
 * It points IAC1 at iac_target, DAC1 (write) at watched_word and DAC2 (read) at read_word, turns on
 * DBCR0[IDM] and MSR[DE], and each round re-arms the events and touches all three. Its IVOR15 handler
 * (guest_debug_asm.S) counts the events. Exit status: 0 = every event counted (PASS), 1 = no debug
 * events at all (QEMU TCG does not model IAC/DAC events), 2 = some but not all (FAIL).
 */
#include "e500.h"

#define SPR_DBSR  304
#define SPR_DBCR0 308
#define SPR_DBCR1 309
#define SPR_DBCR2 310
#define SPR_IAC1  312
#define SPR_DAC1  316
#define SPR_DAC2  317

#define DBCR0_IDM   0x40000000u
#define DBCR0_IAC1  0x00800000u
#define DBCR0_DAC1W 0x00040000u
#define DBCR0_DAC2R 0x00020000u
#define MSR_DE      0x00000200u

#define DEBUG_ROUNDS 5

volatile uint32_t iac_hits;        /* counted by debug_handler */
volatile uint32_t dac_write_hits;
volatile uint32_t dac_read_hits;
volatile uint32_t last_debug_pc;   /* CSRR0 / DSRR0 of the last debug interrupt */
volatile uint32_t watched_word;    /* DAC1: write watch */
volatile uint32_t read_word = 7;   /* DAC2: read watch */
volatile uint32_t sink;

void install_debug_handler(void);
uint32_t iac_target(uint32_t x);

static void put_count(const char *name, uint32_t value)
{
    uart_puts(name);
    uart_put_dec(value);
}

int main(void)
{
    install_debug_handler();
    mtspr(SPR_DBCR0, 0);
    mtspr(SPR_DBCR1, 0);                     /* exact IAC compares, any privilege */
    mtspr(SPR_DBCR2, 0);                     /* exact DAC compares, any privilege */
    mtspr(SPR_DBSR, 0xFFFFFFFFu);            /* write one to clear: start with no stale events */
    mtspr(SPR_IAC1, (uint32_t)&iac_target);
    mtspr(SPR_DAC1, (uint32_t)&watched_word);
    mtspr(SPR_DAC2, (uint32_t)&read_word);
    mtmsr(mfmsr() | MSR_DE);

    uint32_t accumulated = 0;
    for (uint32_t round = 0; round < DEBUG_ROUNDS; round++) {
        mtspr(SPR_DBCR0, DBCR0_IDM | DBCR0_IAC1 | DBCR0_DAC1W | DBCR0_DAC2R);
        __asm__ volatile("isync" ::: "memory");
        accumulated = iac_target(accumulated);  /* IAC1 event */
        watched_word = round;                   /* DAC1 write event */
        sink = read_word;                       /* DAC2 read event */
    }
    mtspr(SPR_DBCR0, 0);

    uint32_t events = iac_hits + dac_write_hits + dac_read_hits;
    put_count("guest_debug: iac=", iac_hits);
    put_count(" dac_write=", dac_write_hits);
    put_count(" dac_read=", dac_read_hits);
    put_count(" events=", events);
    put_count(" expected=", 3 * DEBUG_ROUNDS);
    uart_puts(" calls=");
    uart_put_dec(accumulated);
    uart_puts("\n");
    if (iac_hits == DEBUG_ROUNDS && dac_write_hits == DEBUG_ROUNDS && dac_read_hits == DEBUG_ROUNDS) {
        uart_puts("guest_debug: PASS\n");
        return 0;
    }
    if (events == 0) {
        uart_puts("guest_debug: 0 events (no IAC/DAC debug events on this machine)\n");
        return 1;
    }
    uart_puts("guest_debug: FAIL\n");
    return 2;
}

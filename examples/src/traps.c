/* traps: the guest handles its own trap instructions.
 *
 * It installs a Program interrupt handler (traps_asm.S), executes tw/twi traps TRAP_ROUNDS times per
 * kind (plus as many non-trapping ones) and checks its handler counted exactly the trapping ones.
 * after_trap() runs once per round so a gdb breakpoint there can be hit repeatedly while the guest's
 * own traps keep going to the guest (the stub must tell its breakpoints from the guest's traps).
 */
#include "e500.h"

#define TRAP_ROUNDS 10
#define TRAPS_PER_ROUND 3

volatile uint32_t trap_count;   /* written by program_handler */
volatile uint32_t last_esr;     /* ESR seen by program_handler */
volatile uint32_t rounds_done;

void install_trap_handler(void);
void trap_always(void);
void trap_if_equal(uint32_t a, uint32_t b);
void trap_if_greater(int32_t a);

__attribute__((noinline)) void after_trap(uint32_t round)
{
    rounds_done = round + 1;
}

int main(void)
{
    install_trap_handler();
    for (uint32_t round = 0; round < TRAP_ROUNDS; round++) {
        trap_always();                  /* traps */
        trap_if_equal(round, round);    /* traps */
        trap_if_equal(round, round + 1);/* does not trap */
        trap_if_greater(6);             /* traps */
        trap_if_greater(5);             /* does not trap */
        after_trap(round);
    }
    uint32_t expected = TRAP_ROUNDS * TRAPS_PER_ROUND;
    uart_puts("traps: counted ");
    uart_put_dec(trap_count);
    uart_puts(" of ");
    uart_put_dec(expected);
    uart_puts(" traps, last ESR ");
    uart_put_hex(last_esr);
    uart_puts(trap_count == expected ? "\ntraps: PASS\n" : "\ntraps: FAIL\n");
    return trap_count == expected ? 0 : 1;
}

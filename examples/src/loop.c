/* loop: the debugging demo guest.
 *
 * What is here for gdb:
 *   - main -> run_round -> accumulate -> bump_counter: a call chain for `bt` (bump_counter is 3 deep);
 *   - square(x): a function with a return value for `finish` and `print square(10)`;
 *   - counter: a global incremented LOOP_ROUNDS times (break/ignore/watch);
 *   - buffer: a 64-byte global array written in a loop (watch on the whole array);
 *   - limit: a global only read in the loop (rwatch/awatch);
 *   - plain C statements in main for `step` / `next`.
 * The globals are volatile so -O2 keeps every access in memory where watchpoints can see it.
 */
#include "e500.h"

#define LOOP_ROUNDS 200

volatile uint32_t counter;                 /* incremented once per round */
volatile uint8_t buffer[64];               /* written in a loop each round */
volatile uint32_t limit = LOOP_ROUNDS;     /* read each round */
volatile uint32_t total;                   /* sum of squares */

__attribute__((noinline)) uint32_t square(uint32_t x)
{
    return x * x;
}

__attribute__((noinline)) void bump_counter(void)
{
    counter = counter + 1;
}

__attribute__((noinline)) void fill_buffer(uint32_t seed)
{
    for (uint32_t i = 0; i < sizeof buffer; i++)
        buffer[i] = (uint8_t)(seed + i);
}

__attribute__((noinline)) uint32_t accumulate(uint32_t round)
{
    uint32_t value = square(round);
    bump_counter();
    total = total + value;
    return value;
}

__attribute__((noinline)) uint32_t run_round(uint32_t round)
{
    uint32_t value = accumulate(round);
    fill_buffer(round);
    return value;
}

int main(void)
{
    uint32_t round = 0;
    uint32_t last = 0;

    uart_puts("loop: start\n");
    while (round < limit) {
        last = run_round(round);
        round = round + 1;
    }
    uart_puts("loop: counter=");
    uart_put_dec(counter);
    uart_puts(" last=");
    uart_put_dec(last);
    uart_puts(" total=");
    uart_put_dec(total);
    uart_puts("\n");
    return counter == LOOP_ROUNDS ? 0 : 1;
}

/* timer: decrementer-interrupt-driven work. Each round does a slice of hashing, then waits for a
 * one-shot DEC interrupt (timer_asm.S); the handler counts ticks and records SRR1/TSR. The checksum
 * covers the work, the tick count and what the handler saw, never a time-base value. */
#include "corpus.h"

#define ROUNDS 12
#define DEC_PERIOD 400

volatile uint32_t tick_count;   /* written by dec_handler */
volatile uint32_t last_srr1;
volatile uint32_t last_tsr;

void install_dec_handler(void);
void wait_for_tick(uint32_t period);

int main(void)
{
    uint32_t sum = 0;
    install_dec_handler();
    corpus_seed(31337);
    for (uint32_t round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < 16; i++)
            sum = corpus_mix(sum, corpus_rand() ^ round);
        wait_for_tick(DEC_PERIOD + round * 16);
        sum = corpus_mix(sum, tick_count);
        sum = corpus_mix(sum, last_srr1);
        sum = corpus_mix(sum, last_tsr);
    }
    sum = corpus_mix(sum, tick_count == ROUNDS);
    return corpus_report("timer", sum);
}

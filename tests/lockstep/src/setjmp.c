/* setjmp: non-local exits through the hand-written corpus_setjmp/corpus_longjmp (setjmp_asm.S):
 * an error-unwinding parser, nested jump buffers and a longjmp(buf, 0) that must return 1. */
#include "corpus.h"

typedef uint32_t jump_buffer[23];
int corpus_setjmp(jump_buffer buf) __attribute__((returns_twice));
void corpus_longjmp(jump_buffer buf, int value) __attribute__((noreturn));

static jump_buffer outer, inner;
static volatile uint32_t depth_seen;

__attribute__((noinline)) static void dive(uint32_t depth, uint32_t limit)
{
    depth_seen = depth;
    if (depth >= limit)
        corpus_longjmp(inner, (int)(depth * 7 + 3));
    if (depth < 64)   /* never reached: limit < 12; bounds the recursion for the compiler */
        dive(depth + 1, limit);
}

/* Sums the digits of s; a non-digit aborts the whole parse via longjmp with its position. */
__attribute__((noinline)) static uint32_t parse_digits(const char *s)
{
    uint32_t total = 0;
    for (int i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9')
            corpus_longjmp(outer, 100 + i);
        total = total * 10 + (uint32_t)(s[i] - '0');
    }
    return total;
}

int main(void)
{
    static const char *const inputs[] = { "12345", "98x76", "0", "4242", "?", "777777" };
    volatile uint32_t sum = 0;
    for (volatile unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        int r = corpus_setjmp(outer);
        if (r == 0)
            sum = corpus_mix(sum, parse_digits(inputs[i]));
        else
            sum = corpus_mix(sum, 0xE0000000u | (uint32_t)r);
    }
    for (volatile uint32_t limit = 1; limit < 12; limit += 3) {
        int r = corpus_setjmp(inner);
        if (r == 0)
            dive(0, limit);
        sum = corpus_mix(sum, (uint32_t)r);
        sum = corpus_mix(sum, depth_seen);
    }
    int r = corpus_setjmp(inner);
    if (r == 0)
        corpus_longjmp(inner, 0);
    sum = corpus_mix(sum, (uint32_t)r);
    return corpus_report("setjmp", sum);
}

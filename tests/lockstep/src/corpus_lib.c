/* Support code for the lockstep corpus: string primitives, PRNG, checksum and report. */
#include "corpus.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}

static uint32_t rand_state = 2463534242u;

void corpus_seed(uint32_t seed)
{
    rand_state = seed ? seed : 1;
}

uint32_t corpus_rand(void)
{
    uint32_t x = rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rand_state = x;
    return x;
}

uint32_t corpus_mix(uint32_t sum, uint32_t value)
{
    for (int i = 0; i < 4; i++) {
        sum ^= (value >> (8 * i)) & 0xFF;
        sum *= 16777619u;
    }
    return sum;
}

int corpus_report(const char *name, uint32_t checksum)
{
    uart_puts(name);
    uart_puts(": checksum ");
    uart_put_hex(checksum);
    uart_puts("\n");
    return 0;
}

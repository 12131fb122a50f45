/* abi: what the PowerPC SysV ABI and gcc's builtins put in a C program that the other guests do not:
 * variadic calls mixing 32- and 64-bit arguments (va_arg over the register save area and the stack),
 * structs passed and returned by value (hidden pointer, memcpy), alloca, bit-fields, the count /
 * parity / byte-swap builtins (cntlzw, libgcc popcount and parity), lwbrx/stwbrx, and 64-bit signed
 * division and shifts, including INT_MIN edge cases. */
#include <stdarg.h>
#include "corpus.h"

struct bits {
    unsigned a : 3, b : 7, c : 13, d : 9;
};

struct big {
    uint32_t w[13];
    uint8_t tail[3];
};

static uint32_t sum;

static void feed(uint32_t value)
{
    sum = corpus_mix(sum, value);
}

__attribute__((noinline)) static uint32_t sum_va(int n, ...)
{
    va_list ap;
    uint32_t s = 0;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        if (i & 1)
            s += (uint32_t)(va_arg(ap, unsigned long long) >> (i * 3));
        else
            s ^= va_arg(ap, uint32_t) * 0x9E3779B9u;
    }
    va_end(ap);
    return s;
}

__attribute__((noinline)) static struct big copy_big(struct big b, int k)
{
    b.w[k % 13] += 7u * (uint32_t)k;
    b.tail[k % 3] ^= 0x5A;
    return b;
}

__attribute__((noinline)) static uint32_t use_alloca(int n)
{
    volatile uint8_t *p = __builtin_alloca(n);
    uint32_t s = 0;
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 13 + n);
    for (int i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

__attribute__((noinline)) static uint32_t byte_reversed(volatile uint32_t *p, uint32_t value)
{
    uint32_t loaded;
    __asm__ volatile("stwbrx %1,0,%2\n\tlwz %0,0(%2)" : "=&r"(loaded) : "r"(value), "r"(p) : "memory");
    uint32_t back;
    __asm__ volatile("lwbrx %0,0,%1" : "=r"(back) : "r"(p) : "memory");
    return loaded ^ (back << 1);
}

int main(void)
{
    volatile struct bits bf = {5, 100, 4000, 300};
    corpus_seed(0xAB1);
    for (unsigned i = 0; i < 50; i++) {
        bf.a += i;
        bf.b ^= i * 3;
        bf.c -= i * 77;
        bf.d += bf.a;
        feed(bf.a | (bf.b << 3) | ((uint32_t)bf.c << 10) | ((uint32_t)bf.d << 23));
    }
    for (int i = 0; i < 40; i++) {
        uint32_t v = corpus_rand() >> (i % 32);
        if (!v)
            v = 1;
        feed((uint32_t)__builtin_clz(v));
        feed((uint32_t)__builtin_ctz(v));
        feed((uint32_t)__builtin_popcount(v));
        feed((uint32_t)__builtin_parity(v));
        feed(__builtin_bswap32(v));
        feed((uint32_t)__builtin_clzll((unsigned long long)v << 20 | 1));
    }
    for (int i = 0; i < 8; i++)
        feed(sum_va(7, corpus_rand(), (unsigned long long)corpus_rand() << 32 | corpus_rand(), 3u,
                    0xFFFFFFFFFFull * (unsigned)i, 9u, 77ull, corpus_rand()));
    struct big b;
    memset(&b, 0, sizeof b);
    b.tail[0] = 1;
    for (int k = 0; k < 40; k++) {
        b = copy_big(b, k);
        feed(b.w[k % 13] + b.tail[k % 3]);
    }
    feed(use_alloca(37));
    feed(use_alloca(200));
    volatile uint32_t word = 0;
    for (int i = 0; i < 16; i++)
        feed(byte_reversed(&word, corpus_rand()));
    long long x = -123456789012345ll;
    unsigned long long y = 987654321987654321ull;
    for (int i = 0; i < 20; i++) {
        x = x * 3 + (long long)(y >> (i + 1));
        y = y / 7 + (y % 1000003) * 17;
        feed((uint32_t)x ^ (uint32_t)(x >> 32));
        feed((uint32_t)(y % 65521));
        feed((uint32_t)(x / (i == 10 ? 3 : i - 10)));
        feed((uint32_t)(x >> (i + 20)) ^ (uint32_t)((unsigned long long)x >> (i + 7)));
    }
    volatile int32_t lowest = -2147483647 - 1;
    volatile int32_t minus_one = -1;
    feed((uint32_t)(lowest % 7));
    feed((uint32_t)(lowest / 3));
    feed((uint32_t)(lowest >> 31));
    feed((uint32_t)lowest * (uint32_t)minus_one);
    return corpus_report("abi", sum);
}

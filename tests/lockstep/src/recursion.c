/* recursion: naive Fibonacci, Ackermann(2, n), Towers of Hanoi, mutual recursion and permutation
 * generation: deep stacks of stwu/mflr/stw/lwz/mtlr/blr frames. */
#include "corpus.h"

static uint32_t moves;
static uint32_t perm_sum;

__attribute__((noinline)) static uint32_t fib(uint32_t n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) static uint32_t ackermann(uint32_t m, uint32_t n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

__attribute__((noinline)) static void hanoi(int n, int from, int to, int via)
{
    if (!n)
        return;
    hanoi(n - 1, from, via, to);
    moves = moves * 3 + (uint32_t)(from * 4 + to);
    hanoi(n - 1, via, to, from);
}

static int is_odd(uint32_t n);
__attribute__((noinline)) static int is_even(uint32_t n) { return n == 0 ? 1 : is_odd(n - 1); }
__attribute__((noinline)) static int is_odd(uint32_t n) { return n == 0 ? 0 : is_even(n - 1); }

__attribute__((noinline)) static void permute(uint8_t *a, int k, int n)
{
    if (k == n) {
        uint32_t v = 0;
        for (int i = 0; i < n; i++)
            v = v * 10 + a[i];
        perm_sum = corpus_mix(perm_sum, v);
        return;
    }
    for (int i = k; i < n; i++) {
        uint8_t t = a[k]; a[k] = a[i]; a[i] = t;
        permute(a, k + 1, n);
        t = a[k]; a[k] = a[i]; a[i] = t;
    }
}

int main(void)
{
    uint8_t items[4] = { 1, 2, 3, 4 };
    uint32_t sum = 0;
    sum = corpus_mix(sum, fib(12));
    sum = corpus_mix(sum, ackermann(2, 3));
    hanoi(6, 1, 3, 2);
    sum = corpus_mix(sum, moves);
    sum = corpus_mix(sum, (uint32_t)is_even(37) << 1 | (uint32_t)is_odd(37));
    permute(items, 0, 4);
    sum = corpus_mix(sum, perm_sum);
    return corpus_report("recursion", sum);
}

/* arith64: 64-bit arithmetic through libgcc helpers (__udivdi3, __divdi3, __umoddi3, __moddi3,
 * __ashldi3, __lshrdi3, __ashrdi3, __muldi3 where gcc uses it) plus 32-bit divw/divwu/mulhw edge
 * cases, all folded into a checksum. Operands come through volatile so nothing is constant-folded. */
#include "corpus.h"

static volatile uint64_t u_values[] = {
    0, 1, 7, 0xFFFFFFFFull, 0x100000000ull, 0x123456789ABCDEFull, 0xFFFFFFFFFFFFFFFFull,
    0x8000000000000000ull, 1000000007ull, 0xDEADBEEFCAFEBABEull,
};
static volatile int64_t s_values[] = { -1, -7, 5, -0x7FFFFFFFFFFFFFFFll, 123456789012ll, -98765 };
static volatile int32_t s32_values[] = { -2147483647 - 1, -1, 3, -17, 1000, 2147483647 };

static uint32_t mix64(uint32_t sum, uint64_t v)
{
    sum = corpus_mix(sum, (uint32_t)v);
    return corpus_mix(sum, (uint32_t)(v >> 32));
}

int main(void)
{
    uint32_t sum = 0;
    const int nu = sizeof u_values / sizeof u_values[0];
    const int ns = sizeof s_values / sizeof s_values[0];
    const int n32 = sizeof s32_values / sizeof s32_values[0];

    for (int i = 0; i < nu; i++)
        for (int j = 0; j < nu; j++) {
            uint64_t a = u_values[i], b = u_values[j];
            sum = mix64(sum, a * b);
            sum = mix64(sum, a + b);
            sum = mix64(sum, a - b);
            if (b) {
                sum = mix64(sum, a / b);
                sum = mix64(sum, a % b);
            }
        }
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < ns; j++) {
            int64_t a = s_values[i], b = s_values[j];
            sum = mix64(sum, (uint64_t)(a / b));
            sum = mix64(sum, (uint64_t)(a % b));
            sum = corpus_mix(sum, a < b);
        }
    for (int i = 0; i < nu; i++)
        for (volatile int shift = 0; shift < 64; shift += 13) {
            uint64_t a = u_values[i];
            sum = mix64(sum, a << shift);
            sum = mix64(sum, a >> shift);
            sum = mix64(sum, (uint64_t)((int64_t)a >> shift));
        }
    for (int i = 0; i < n32; i++)
        for (int j = 0; j < n32; j++) {
            int32_t a = s32_values[i], b = s32_values[j];
            if (!(a == -2147483647 - 1 && b == -1)) {
                sum = corpus_mix(sum, (uint32_t)(a / b));
                sum = corpus_mix(sum, (uint32_t)(a % b));
            }
            sum = corpus_mix(sum, (uint32_t)a / (uint32_t)b);
            sum = corpus_mix(sum, (uint32_t)(((int64_t)a * b) >> 32));
            sum = corpus_mix(sum, (uint32_t)(((uint64_t)(uint32_t)a * (uint32_t)b) >> 32));
        }
    return corpus_report("arith64", sum);
}

/* cache: the configuration SPRs a start-up routine reads (PVR, SVR, L1CFG0/1, MMUCFG, TLBnCFG, PIR,
 * HID0/1) and the cache-block instructions a memset or cache-maintenance loop uses: dcbz over a
 * buffer at every alignment (it zeroes one cache line: 32 bytes on e500v2, 64 on e500mc, the size
 * L1CFG0 and the device tree give), plus dcbf/dcbst/dcbt/dcbtst/icbi over the same lines,
 * which must leave the data alone. Everything read or left behind goes into the checksum. */
#include "corpus.h"

#define BUFFER 256

static uint8_t buffer[BUFFER] __attribute__((aligned(128)));   /* dcbz at 128 + up to 95 + 63 stays inside */

static uint32_t mix_buffer(uint32_t sum)
{
    for (int i = 0; i < BUFFER; i += 4)
        sum = corpus_mix(sum, *(volatile uint32_t *)&buffer[i]);
    return sum;
}

static void fill(void)
{
    for (int i = 0; i < BUFFER; i++)
        buffer[i] = (uint8_t)corpus_rand();
}

int main(void)
{
    uint32_t sum = 2166136261u;
    corpus_seed(0xCAC4E);
    sum = corpus_mix(sum, mfspr(287));      /* PVR */
    sum = corpus_mix(sum, mfspr(1023));     /* SVR */
    sum = corpus_mix(sum, mfspr(515));      /* L1CFG0 */
    sum = corpus_mix(sum, mfspr(516));      /* L1CFG1 */
    sum = corpus_mix(sum, mfspr(1015));     /* MMUCFG */
    sum = corpus_mix(sum, mfspr(688));      /* TLB0CFG */
    sum = corpus_mix(sum, mfspr(689));      /* TLB1CFG */
    sum = corpus_mix(sum, mfspr(286));      /* PIR */
    sum = corpus_mix(sum, mfspr(1008));     /* HID0 */
    sum = corpus_mix(sum, mfspr(1009));     /* HID1 */

    /* Storage SPRs (BBEAR, BBTAR, SPRG8, SPRG9), the masked external-PID contexts (EPLC, EPSC), EPR,
     * and L2CSR0 whose flash-invalidate/flush/lock-clear bits finish at once (e500mc; on e500v2 it
     * is no SPR, so mfspr leaves the register alone, as QEMU does). */
    static const uint32_t patterns[] = {0x12345678u, 0xFFFFFFFFu, 0x80200C01u};
    for (int i = 0; i < 3; i++) {
        uint32_t v = patterns[i], r;
        mtspr(513, v); sum = corpus_mix(sum, mfspr(513));
        mtspr(514, v); sum = corpus_mix(sum, mfspr(514));
        mtspr(604, v); sum = corpus_mix(sum, mfspr(604));
        mtspr(605, v); sum = corpus_mix(sum, mfspr(605));
        mtspr(947, v); sum = corpus_mix(sum, mfspr(947));
        mtspr(948, v); sum = corpus_mix(sum, mfspr(948));
        mtspr(1017, v);
        r = 0xA5A5A5A5u;
        __asm__ volatile("mfspr %0,1017" : "+r"(r));
        sum = corpus_mix(sum, r);
    }
    sum = corpus_mix(sum, mfspr(702));
    mtspr(1017, 0);

    /* The line size as a guest would work it out from L1CFG0[CBSIZE]: 32 << CBSIZE. */
    uint32_t cbsize = (mfspr(515) >> 23) & 3;
    sum = corpus_mix(sum, 32u << (cbsize ? 1 : 0));

    for (int offset = 0; offset < 96; offset += 12) {
        fill();
        __asm__ volatile("dcbz 0,%0" : : "r"(&buffer[128 + offset]) : "memory");
        sum = mix_buffer(sum);
    }
    fill();
    for (int line = 0; line < BUFFER; line += 32) {
        uint8_t *p = &buffer[line];
        __asm__ volatile("dcbst 0,%0\n\tdcbf 0,%0\n\tdcbt 0,%0\n\tdcbtst 0,%0\n\ticbi 0,%0"
                         : : "r"(p) : "memory");
    }
    sum = mix_buffer(sum);
    /* A memset to zero by whole lines, the way optimised libraries clear pages. */
    for (int line = 0; line < BUFFER; line += 32)
        __asm__ volatile("dcbz 0,%0" : : "r"(&buffer[line]) : "memory");
    sum = mix_buffer(sum);
    return corpus_report("cache", sum);
}

/* hash: bitwise and table-driven CRC-32, FNV-1a 32, Adler-32 and a rotate/xor mix over a generated
 * buffer; the table CRC must equal the bitwise one. */
#include "corpus.h"

#define LEN 192

static uint8_t data[LEN];
static uint32_t crc_table[256];

static uint32_t crc32_bitwise(const uint8_t *p, int n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
    }
    return ~crc;
}

static void crc32_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_table(const uint8_t *p, int n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint32_t fnv1a(const uint8_t *p, int n)
{
    uint32_t h = 2166136261u;
    while (n--) {
        h ^= *p++;
        h *= 16777619u;
    }
    return h;
}

static uint32_t adler32(const uint8_t *p, int n)
{
    uint32_t a = 1, b = 0;
    while (n--) {
        a = (a + *p++) % 65521u;
        b = (b + a) % 65521u;
    }
    return (b << 16) | a;
}

static uint32_t rotmix(const uint8_t *p, int n)
{
    uint32_t h = 0x9E3779B9u;
    for (int i = 0; i < n; i++) {
        h = (h << 5 | h >> 27) ^ p[i];
        h += (uint32_t)i * 0x85EBCA6Bu;
    }
    return h;
}

int main(void)
{
    corpus_seed(0xC0FFEE);
    for (int i = 0; i < LEN; i++)
        data[i] = (uint8_t)corpus_rand();
    crc32_init();
    uint32_t bitwise = crc32_bitwise(data, 64);
    uint32_t table = crc32_table(data, LEN);
    uint32_t sum = 0;
    sum = corpus_mix(sum, bitwise);
    sum = corpus_mix(sum, table);
    sum = corpus_mix(sum, crc32_table(data, 64) == bitwise);
    sum = corpus_mix(sum, fnv1a(data, LEN));
    sum = corpus_mix(sum, adler32(data, LEN));
    sum = corpus_mix(sum, rotmix(data, LEN));
    return corpus_report("hash", sum);
}

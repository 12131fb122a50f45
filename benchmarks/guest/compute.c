/* Integer compute workload for the engine benchmarks: CRC32, a sieve, a sort, string handling and a
 * matrix product, repeated ROUNDS times. It prints one checksum and powers off with status 0, so the
 * same ELF gives the same answer on this emulator, on QEMU and on unicorn. Integer-only (e500v2 has no
 * classic FPU). */
#include "e500.h"

#ifndef ROUNDS
#define ROUNDS 50
#endif

#define CRC_BYTES 4096
#define SIEVE_LIMIT 8192
#define SORT_COUNT 512
#define MATRIX_N 16

static uint8_t crc_data[CRC_BYTES];
static uint8_t sieve_flags[SIEVE_LIMIT];
static uint32_t sort_data[SORT_COUNT];
static int32_t mat_a[MATRIX_N][MATRIX_N], mat_b[MATRIX_N][MATRIX_N], mat_c[MATRIX_N][MATRIX_N];
static char text[256];

static uint32_t rng_state = 0x12345678u;

static uint32_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint32_t crc32(const uint8_t *data, uint32_t length)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

static uint32_t sieve(void)
{
    uint32_t primes = 0;
    for (uint32_t i = 0; i < SIEVE_LIMIT; i++)
        sieve_flags[i] = 1;
    for (uint32_t i = 2; i < SIEVE_LIMIT; i++) {
        if (!sieve_flags[i])
            continue;
        primes++;
        for (uint32_t j = i + i; j < SIEVE_LIMIT; j += i)
            sieve_flags[j] = 0;
    }
    return primes;
}

static void shell_sort(uint32_t *values, int count)
{
    for (int gap = count / 2; gap > 0; gap /= 2)
        for (int i = gap; i < count; i++) {
            uint32_t value = values[i];
            int j = i;
            for (; j >= gap && values[j - gap] > value; j -= gap)
                values[j] = values[j - gap];
            values[j] = value;
        }
}

static uint32_t string_work(uint32_t seed)
{
    uint32_t hash = 2166136261u;
    int length = 0;
    for (int i = 0; i < 255; i++) {
        text[i] = (char)('a' + (seed + (uint32_t)i * 7u) % 26u);
        length++;
    }
    text[length] = 0;
    /* reverse in place, then FNV-1a over it, then count a letter */
    for (int i = 0, j = length - 1; i < j; i++, j--) {
        char c = text[i];
        text[i] = text[j];
        text[j] = c;
    }
    for (const char *p = text; *p; p++)
        hash = (hash ^ (uint8_t)*p) * 16777619u;
    for (const char *p = text; *p; p++)
        hash += (*p == 'e');
    return hash;
}

static uint32_t matrix_product(uint32_t seed)
{
    for (int i = 0; i < MATRIX_N; i++)
        for (int j = 0; j < MATRIX_N; j++) {
            mat_a[i][j] = (int32_t)((seed + (uint32_t)(i * 3 + j)) % 97u) - 48;
            mat_b[i][j] = (int32_t)((seed + (uint32_t)(i + j * 5)) % 89u) - 44;
        }
    uint32_t sum = 0;
    for (int i = 0; i < MATRIX_N; i++)
        for (int j = 0; j < MATRIX_N; j++) {
            int32_t acc = 0;
            for (int k = 0; k < MATRIX_N; k++)
                acc += mat_a[i][k] * mat_b[k][j];
            mat_c[i][j] = acc;
            sum += (uint32_t)acc;
        }
    return sum;
}

int main(void)
{
    uint32_t checksum = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < CRC_BYTES; i++)
            crc_data[i] = (uint8_t)next_random();
        checksum ^= crc32(crc_data, CRC_BYTES);
        checksum += sieve();
        for (int i = 0; i < SORT_COUNT; i++)
            sort_data[i] = next_random();
        shell_sort(sort_data, SORT_COUNT);
        for (int i = 1; i < SORT_COUNT; i++)
            if (sort_data[i - 1] > sort_data[i])
                checksum = 0xBAD;
        checksum = (checksum << 1 | checksum >> 31) ^ string_work((uint32_t)round);
        checksum += matrix_product((uint32_t)round * 11u);
    }
    uart_puts("compute checksum ");
    uart_put_hex(checksum);
    uart_puts("\n");
    return 0;
}

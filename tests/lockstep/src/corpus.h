/* Shared helpers for the lockstep corpus guests (tests/lockstep/src).
 *
 * The guests reuse examples/src/crt0.S, support.c (UART, power-off) and e500.ld. This header adds
 * the freestanding string functions gcc may call on its own, a deterministic pseudo-random
 * generator and the checksum report every guest ends with. */
#ifndef CORPUS_H
#define CORPUS_H

#include <stddef.h>
#include <stdint.h>
#include "e500.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* xorshift32: every guest seeds it explicitly so runs are reproducible. */
uint32_t corpus_rand(void);
void corpus_seed(uint32_t seed);

/* Mixes a value into a running checksum (FNV-1a over the 4 bytes). */
uint32_t corpus_mix(uint32_t sum, uint32_t value);

/* Prints "<name>: checksum 0x........\n" and returns 0 so main can `return corpus_report(...)`. */
int corpus_report(const char *name, uint32_t checksum);

#endif

/* Tiny support library for the bare-metal example guests: UART output, power-off, SPR access. */
#ifndef E500_H
#define E500_H

#include <stdint.h>

#define CCSR_EA      0xE0000000u          /* where crt0.S maps CCSR (PA 0xF_E0000000) */
#define UART0_EA     (CCSR_EA + 0x4500u)  /* ns16550, byte registers */
#define GPIO_EA      (CCSR_EA + 0xFF000u) /* GPDIR at +0, GPDAT at +8 */

#define mfspr(spr) ({ uint32_t v_; __asm__ volatile("mfspr %0, %1" : "=r"(v_) : "i"(spr)); v_; })
#define mtspr(spr, v) __asm__ volatile("mtspr %0, %1" : : "i"(spr), "r"((uint32_t)(v)) : "memory")

static inline uint32_t mfmsr(void)
{
    uint32_t v;
    __asm__ volatile("mfmsr %0" : "=r"(v));
    return v;
}

static inline void mtmsr(uint32_t v)
{
    __asm__ volatile("mtmsr %0; isync" : : "r"(v) : "memory");
}

void uart_putc(char c);
void uart_puts(const char *s);
void uart_put_hex(uint32_t value);      /* "0x" + 8 hex digits */
void uart_put_dec(uint32_t value);
void poweroff(uint32_t status) __attribute__((noreturn));

#endif

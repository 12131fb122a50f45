/* Support library for the example guests: polled ns16550 output and the ppce500 power-off GPIO. */
#include "e500.h"

#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20

static volatile uint8_t *const uart = (volatile uint8_t *)UART0_EA;

void uart_putc(char c)
{
    while (!(uart[UART_LSR] & UART_LSR_THRE))
        ;
    uart[UART_THR] = (uint8_t)c;
}

void uart_puts(const char *s)
{
    while (*s) {
        if (*s == '\n')
            uart_putc('\r');
        uart_putc(*s++);
    }
}

void uart_put_hex(uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    uart_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4)
        uart_putc(digits[(value >> shift) & 0xF]);
}

void uart_put_dec(uint32_t value)
{
    char text[11];
    int n = 0;
    do {
        text[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n)
        uart_putc(text[--n]);
}

/* QEMU powers off on GPIO pin 0 (bit 0x80000000) and ignores the low pins; the emulator also takes
 * the low 8 bits of the GPDAT write as the exit status. */
void poweroff(uint32_t status)
{
    volatile uint32_t *const gpio = (volatile uint32_t *)GPIO_EA;
    gpio[0] = 0x800000FFu;                      /* GPDIR: pin 0 and the status pins are outputs */
    gpio[2] = 0x80000000u | (status & 0xFFu);   /* GPDAT */
    for (;;)
        ;
}

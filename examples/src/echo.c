/* echo: reads lines from the UART and echoes each one back in upper case, until the line "quit".
 * Powers off with the number of lines echoed. Both `e500-gdbstub --run` and QEMU's -nographic feed
 * their stdin to the UART, so `printf 'ab\nquit\n' | e500-gdbstub --run echo-e500v2.elf` prints
 * "echo: AB" and exits 1. */
#include "e500.h"

#define LINE_MAX 80
#define UART_RBR 0
#define UART_LSR 5
#define UART_LSR_DR 0x01

static volatile uint8_t *const uart = (volatile uint8_t *)UART0_EA;

static char line[LINE_MAX + 1];
static unsigned lines_echoed;

static int uart_getc(void)
{
    while (!(uart[UART_LSR] & UART_LSR_DR))
        ;
    return uart[UART_RBR];
}

static unsigned read_line(void)
{
    unsigned length = 0;
    for (;;) {
        int c = uart_getc();
        if (c == '\n' || c == '\r')
            break;
        if (length < LINE_MAX)
            line[length++] = (char)c;
    }
    line[length] = '\0';
    return length;
}

static int is_quit(const char *text)
{
    return text[0] == 'q' && text[1] == 'u' && text[2] == 'i' && text[3] == 't' && text[4] == '\0';
}

int main(void)
{
    uart_puts("echo: ready\n");
    for (;;) {
        if (read_line() == 0)
            continue;    /* the \n of a \r\n pair, or an empty line */
        if (is_quit(line))
            break;
        for (char *p = line; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        uart_puts("echo: ");
        uart_puts(line);
        uart_puts("\n");
        lines_echoed++;
    }
    uart_puts("echo: bye\n");
    return (int)lines_echoed;
}

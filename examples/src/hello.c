/* hello: the smallest guest. Prints a greeting and the core's PVR, then powers off with status 3 so
 * the exit status is visibly passed through (`e500-gdbstub --run` exits 3; QEMU always exits 0). */
#include "e500.h"

#define SPR_PVR 287
#define HELLO_EXIT_STATUS 3

int main(void)
{
    uart_puts("Hello from e500!\n");
    uart_puts("PVR ");
    uart_put_hex(mfspr(SPR_PVR));
    uart_puts("\n");
    return HELLO_EXIT_STATUS;
}

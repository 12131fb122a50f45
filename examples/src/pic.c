/* pic: the MPIC and the UART's interrupts, seen by a bare-metal guest.
 *
 * It prints the MPIC's identification and reset state, then checks with MSR[EE] = 0 (polling IACK)
 * that task priority hides an interrupt, that the higher priority wins and that a level source is
 * raised again after EOI while still asserted. With MSR[EE] = 1 and an External Input handler
 * (external_entry.S) it then sends a line by THRE interrupts, receives bytes by received-data interrupts
 * (UART loopback, so no host input is needed), takes three global-timer interrupts and an IPI, and
 * repeats a UART interrupt in external proxy mode (vector from EPR). Every line of output depends
 * only on the order of events, never on timing, so QEMU and the emulator print the same text.
 * Powers off with 0 when every check passed.
 */
#include "e500.h"

#define MPIC_EA      (CCSR_EA + 0x40000u)
#define SPR_EPR      702

/* MPIC registers, word offsets from the MPIC base */
#define BRR1         (0x0000 / 4)
#define FRR          (0x1000 / 4)
#define GCR          (0x1020 / 4)
#define VIR          (0x1080 / 4)
#define IPI0_IVPR    (0x10A0 / 4)
#define SPVR         (0x10E0 / 4)
#define TIMER0_TCCR  (0x1100 / 4)
#define TIMER0_TBCR  (0x1110 / 4)
#define TIMER0_TVPR  (0x1120 / 4)
#define TIMER0_TDR   (0x1130 / 4)
#define SRC_IVPR(n)  ((0x10000 + 0x20 * (n)) / 4)
#define SRC_IDR(n)   ((0x10010 + 0x20 * (n)) / 4)
#define IPIDR0       (0x20040 / 4)
#define CTPR         (0x20080 / 4)
#define WHOAMI       (0x20090 / 4)
#define IACK         (0x200A0 / 4)
#define EOI          (0x200B0 / 4)

#define GCR_RESET    0x80000000u
#define GCR_PROXY    0x60000000u
#define IVPR_MASK    0x80000000u
#define IVPR_ACTIVE  0x40000000u
#define TBCR_CI      0x80000000u
#define UART_SOURCE  42
#define UART_VECTOR  0x42
#define TIMER_VECTOR 0x60
#define IPI_VECTOR   0x70
#define SPURIOUS     0xFF
#define PRIO(p)      ((uint32_t)(p) << 16)
#define TIMER_COUNT  2500         /* 25 MHz ticks: 100 us */
#define WAIT_LIMIT   20000000u

/* ns16550 registers */
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_MCR 4
#define UART_LSR 5
#define IER_RDI  0x01
#define IER_THRI 0x02
#define IIR_ID   0x0F
#define IIR_THRI 0x02
#define IIR_RDI  0x04
#define LSR_DR   0x01
#define MCR_LOOP 0x10

static volatile uint32_t *const mpic = (volatile uint32_t *)MPIC_EA;
static volatile uint8_t *const uart = (volatile uint8_t *)UART0_EA;

static const char tx_text[] = "pic: this line went out by THRE interrupts\r\n";
static unsigned tx_next;
static char rx_text[8];
static volatile unsigned rx_count;
static volatile unsigned tx_interrupts, rx_interrupts, timer_interrupts, ipi_interrupts;
static volatile unsigned spurious_interrupts, other_interrupts, proxy_mode;
static volatile uint32_t last_vector, timer_tccr;
static unsigned failures;

void install_external_handler(void);

static void check(int ok, const char *what)
{
    if (!ok) {
        failures++;
        uart_puts("pic: FAILED ");
        uart_puts(what);
        uart_puts("\n");
    }
}

static void put_line_hex(const char *label, uint32_t value)
{
    uart_puts(label);
    uart_put_hex(value);
}

static void uart_interrupt(void)
{
    uint8_t iir = uart[UART_IIR] & IIR_ID;
    if (iir == IIR_THRI) {
        tx_interrupts++;
        if (tx_text[tx_next])
            uart[UART_THR] = (uint8_t)tx_text[tx_next++];
        else
            uart[UART_IER] = uart[UART_IER] & ~IER_THRI;   /* all sent */
    } else if (iir == IIR_RDI) {
        rx_interrupts++;
        while (uart[UART_LSR] & LSR_DR) {
            uint8_t c = uart[UART_RBR];
            if (rx_count < sizeof rx_text - 1)
                rx_text[rx_count] = (char)c;
            rx_count++;
        }
    } else {
        other_interrupts++;
    }
}

/* Called from external_entry (external_entry.S) with MSR[EE] = 0. */
void external_interrupt(void)
{
    uint32_t vector = proxy_mode ? mfspr(SPR_EPR) : mpic[IACK];
    last_vector = vector;
    if (vector == UART_VECTOR) {
        uart_interrupt();
    } else if (vector == TIMER_VECTOR) {
        if (++timer_interrupts == 3) {
            /* Masked first: on QEMU, whose timers follow host time, a fourth expiry may already be
               pending by now on a loaded host; masked, it is never taken. */
            mpic[TIMER0_TVPR] = IVPR_MASK | PRIO(7) | TIMER_VECTOR;
            mpic[TIMER0_TBCR] = TBCR_CI;              /* stop: the count reads 0 */
            timer_tccr = mpic[TIMER0_TCCR];
        }
    } else if (vector == IPI_VECTOR) {
        ipi_interrupts++;
    } else if (vector == SPURIOUS) {
        spurious_interrupts++;
        return;                                       /* no EOI for a spurious vector */
    } else {
        other_interrupts++;
    }
    mpic[EOI] = 0;
}

static int wait_for(volatile unsigned *counter, unsigned target)
{
    for (uint32_t i = 0; i < WAIT_LIMIT; i++)
        if (*counter >= target)
            return 1;
    return 0;
}

static void identification(void)
{
    put_line_hex("pic: BRR1 ", mpic[BRR1]);
    put_line_hex(" FRR ", mpic[FRR]);
    put_line_hex(" VIR ", mpic[VIR]);
    put_line_hex(" GCR ", mpic[GCR]);
    uart_puts("\n");
    put_line_hex("pic: reset IVPR42 ", mpic[SRC_IVPR(UART_SOURCE)]);
    put_line_hex(" IDR42 ", mpic[SRC_IDR(UART_SOURCE)]);
    put_line_hex(" TVPR0 ", mpic[TIMER0_TVPR]);
    put_line_hex(" TBCR0 ", mpic[TIMER0_TBCR]);
    uart_puts("\n");
    put_line_hex("pic: reset CTPR ", mpic[CTPR]);
    put_line_hex(" SPVR ", mpic[SPVR]);
    put_line_hex(" WHOAMI ", mpic[WHOAMI]);
    uart_puts("\n");
}

static void configure(void)
{
    mpic[GCR] = GCR_RESET;
    while (mpic[GCR] & GCR_RESET)
        ;
    mpic[SPVR] = SPURIOUS;
    /* Internal sources are level, active high: the sense bit reads back 0 whatever is written. */
    mpic[SRC_IVPR(UART_SOURCE)] = IVPR_MASK | 0x00C00000u | PRIO(5) | UART_VECTOR;
    put_line_hex("pic: IVPR42 written 0x80c50042 reads ", mpic[SRC_IVPR(UART_SOURCE)]);
    uart_puts("\n");
    mpic[SRC_IDR(UART_SOURCE)] = 1;
    mpic[SRC_IVPR(UART_SOURCE)] = PRIO(5) | UART_VECTOR;      /* unmask */
    mpic[TIMER0_TVPR] = PRIO(7) | TIMER_VECTOR;
    mpic[TIMER0_TDR] = 1;
    mpic[IPI0_IVPR] = PRIO(9) | IPI_VECTOR;
}

/* With MSR[EE] = 0: IACK by hand. */
static void polled_checks(void)
{
    uart[UART_IER] = IER_THRI;                   /* THRE is pending at once */
    mpic[CTPR] = 15;
    uint32_t hidden = mpic[IACK];
    put_line_hex("pic: THRE pending, CTPR 15: IACK ", hidden);
    check(hidden == SPURIOUS, "task priority");
    mpic[CTPR] = 0;
    uint32_t taken = mpic[IACK];
    uint8_t iir = uart[UART_IIR];
    put_line_hex(", CTPR 0: IACK ", taken);
    put_line_hex(" IIR ", iir);
    uart_puts("\n");
    check(taken == UART_VECTOR && (iir & IIR_ID) == IIR_THRI, "THRE interrupt");
    /* IIR read acknowledged THRE: the line drops; re-enabling ETBEI raises it again. */
    uart[UART_IER] = 0;
    mpic[EOI] = 0;
    uint32_t after_eoi = mpic[IACK];
    uart[UART_IER] = IER_THRI;
    uint32_t reasserted = mpic[IACK];
    put_line_hex("pic: after EOI with THRE acknowledged: IACK ", after_eoi);
    put_line_hex(", ETBEI again: IACK ", reasserted);
    uart_puts("\n");
    check(after_eoi == SPURIOUS && reasserted == UART_VECTOR, "level re-assertion");
    /* Still asserted at EOI (IIR not read): raised again at once. */
    mpic[EOI] = 0;
    uint32_t again = mpic[IACK];
    mpic[EOI] = 0;
    uart[UART_IER] = 0;
    put_line_hex("pic: EOI while THRE still asserted: IACK ", again);
    uart_puts("\n");
    check(again == UART_VECTOR, "level source after EOI");

    /* Priority: the timer (7) is taken before the UART (5) when both are pending. */
    mpic[TIMER0_TBCR] = 1;                       /* expires after one tick */
    for (uint32_t i = 0; i < WAIT_LIMIT && !(mpic[TIMER0_TVPR] & IVPR_ACTIVE); i++)
        ;
    mpic[TIMER0_TBCR] = TBCR_CI;
    uart[UART_IER] = IER_THRI;
    uint32_t first = mpic[IACK];
    mpic[EOI] = 0;
    uint32_t second = mpic[IACK];
    mpic[EOI] = 0;
    uart[UART_IER] = 0;
    put_line_hex("pic: timer and THRE pending: IACK ", first);
    put_line_hex(" then ", second);
    uart_puts("\n");
    check(first == TIMER_VECTOR && second == UART_VECTOR, "priority order");
}

static void interrupt_driven(void)
{
    install_external_handler();
    __asm__ volatile("wrteei 1" : : : "memory");

    /* Transmit: every THRE interrupt sends one byte; the last one turns ETBEI off. */
    unsigned length = sizeof tx_text - 1;
    uart[UART_IER] = IER_THRI;
    check(wait_for(&tx_interrupts, length + 1), "transmit finished");
    uart_puts("pic: tx interrupts ");
    uart_put_dec(tx_interrupts);
    uart_puts(" for ");
    uart_put_dec(length);
    uart_puts(" bytes\n");

    /* Receive, in loopback: each byte sent comes back and raises a received-data interrupt. */
    static const char ping[] = "ping";
    uart[UART_FCR] = 0x07;                       /* FIFO on, trigger level 1 */
    uart[UART_MCR] = MCR_LOOP;
    uart[UART_IER] = IER_RDI;
    for (unsigned i = 0; ping[i]; i++) {
        uart[UART_THR] = (uint8_t)ping[i];
        check(wait_for(&rx_count, i + 1), "byte received");
    }
    uart[UART_IER] = 0;
    uart[UART_MCR] = 0;
    rx_text[rx_count < sizeof rx_text ? rx_count : sizeof rx_text - 1] = 0;
    uart_puts("pic: rx interrupts ");
    uart_put_dec(rx_interrupts);
    uart_puts(" received \"");
    uart_puts(rx_text);
    uart_puts("\"\n");
    check(rx_count == 4 && rx_interrupts == 4, "receive");

    /* Global timer 0: three expiries; the handler stops it on the third. */
    mpic[TIMER0_TBCR] = TIMER_COUNT;
    check(wait_for(&timer_interrupts, 3), "timer");
    for (uint32_t i = 0; i < 1000; i++)
        ;
    uart_puts("pic: timer interrupts ");
    uart_put_dec(timer_interrupts);
    /* TCCR[TOG] is left out: on QEMU, whose timers follow host time, two expiries can come before
       one interrupt is taken, so the number of toggles is not fixed there. */
    put_line_hex(" count after stop ", timer_tccr & ~TBCR_CI);
    uart_puts("\n");

    /* IPI 0 to ourselves. */
    mpic[IPIDR0] = 1;
    check(wait_for(&ipi_interrupts, 1), "ipi");
    uart_puts("pic: ipi interrupts ");
    uart_put_dec(ipi_interrupts);
    uart_puts("\n");

    /* External proxy: the core takes the vector into EPR; the handler does not read IACK. */
    __asm__ volatile("wrteei 0" : : : "memory");
    proxy_mode = 1;
    mpic[GCR] = GCR_PROXY;
    put_line_hex("pic: GCR ", mpic[GCR]);
    unsigned before = tx_interrupts;
    tx_next = sizeof tx_text - 1;                /* nothing left to send: one interrupt */
    uart[UART_IER] = IER_THRI;
    __asm__ volatile("wrteei 1" : : : "memory");
    check(wait_for(&tx_interrupts, before + 1), "proxy interrupt");
    put_line_hex(" proxy EPR ", last_vector);
    uart_puts("\n");
    __asm__ volatile("wrteei 0" : : : "memory");
    proxy_mode = 0;
    mpic[GCR] = 0;
}

int main(void)
{
    identification();
    configure();
    polled_checks();
    interrupt_driven();
    uart_puts("pic: spurious ");
    uart_put_dec(spurious_interrupts);
    uart_puts(" other ");
    uart_put_dec(other_interrupts);
    uart_puts("\n");
    check(spurious_interrupts == 0 && other_interrupts == 0, "no stray interrupts");
    check(timer_interrupts == 3 && (timer_tccr & ~TBCR_CI) == 0, "timer stopped after three");
    uart_puts(failures ? "pic: FAIL\n" : "pic: PASS\n");
    return failures ? 1 : 0;
}

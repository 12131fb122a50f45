"""The ppce500 board's interrupt controller: a Freescale MPIC (OpenPIC) at CCSR + 0x40000.

QEMU's ``ppce500`` machine (TCG) instantiates its FSL MPIC 4.2 model: BRR1 0x00400402, FRR reports
196 sources and version 1.2, vendor ID 0, 16-bit vectors, GCR modes pass-through / mixed / external
proxy. Linux (``arch/powerpc/sysdev/mpic.c`` with ``MPIC_ENABLE_COREINT`` on qemu-e500) and U-Boot
program it as such. Source numbers are what the device tree's ``interrupts`` cells say (QEMU wires the
UARTs to source 42 and the GPIO block to 47): 0-15 external (0-11 edge-triggered after reset, the
sense bit selects level), 16-255 internal (level, active high, sense bit reads 0), then four IPIs
(256-259) and four global timers (260-263), both edge-triggered and multicast.

Register map (offsets in the 256 KiB window): BRR1 0x0, per-CPU aliases of the accessing CPU
0x40-0xB0, FRR 0x1000, GCR 0x1020, VIR 0x1080, PIR 0x1090, IPI vector/priority 0x10A0-0x10D0,
spurious vector 0x10E0, TFRR 0x10F0, timer n at 0x1100 + 0x40n (TCCR, TBCR, TVPR, TDR), MSI
0x1600-0x17FF, summary 0x3800 (reads 0), source n at 0x10000 + 0x20n (IVPR, IDR at +0x10, ILR at
+0x18), CPU n at 0x20000 + 0x1000n (IPIDR0-3 0x40-0x70, CTPR 0x80, WHOAMI 0x90, IACK 0xA0, EOI 0xB0).
Registers are 32-bit; a narrower access reads or writes the addressed bytes of its word.

Delivery follows the OpenPIC rules: a CPU's INT output is asserted while the highest-priority source
raised for it (unmasked and pending) has a priority above both that CPU's task priority (CTPR) and the
highest priority in its in-service set. IACK moves that source into service (an edge source stops
being pending) and returns its vector, or the spurious vector when nothing qualifies; EOI retires the
highest-priority in-service source, so a level source that is still asserted is raised again. The
output is a level, recomputed after every change, so it is precise to the instruction that made it.
Where QEMU's model drives the output from events instead (it drops INT on every IACK, so a
higher-priority interrupt already raised does not nest until the next change), this model follows
the OpenPIC rule. Sources whose ILR selects the critical output drive the core's critical input
(ignoring priority, IACK and EOI, as QEMU does); the machine-check output is recorded but not wired.

The global timers count down at 25 MHz as QEMU's do, i.e. one tick every 16 core cycles of this
emulator's 400 MHz time base, from the core's cycle count (never host time), so they fire on the same
instruction in every run. As in QEMU: clearing TBCR[CI] loads the base count into TCCR and starts it;
setting CI stops it and zeroes the count; at zero the count reloads from TBCR, TCCR[TOG] toggles and
the timer's source is raised for the CPUs in its TDR. A base count of 0 does not run.

Imports: standard library only (the board connects the outputs to the core with callbacks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MPIC_OFFSET = 0x40000
MPIC_WINDOW = 0x40000

# --- identification (QEMU's FSL MPIC 4.2 model) ------------------------------------------------------
BRR1_VALUE = 0x00400402
REPORTED_SOURCES = 196
VERSION_ID = 2            # OpenPIC version 1.2
VENDOR_ID = 0
VECTOR_MASK = 0xFFFF

# --- source numbering ------------------------------------------------------------------------------------
NUM_SOURCES = 256         # external + internal + MSI, addressable through the source registers
FIRST_INTERNAL = 16
EDGE_EXTERNALS = 12       # external sources that reset as edge-triggered
IPI0 = NUM_SOURCES
NUM_IPIS = 4
TIMER0 = IPI0 + NUM_IPIS
NUM_TIMERS = 4
NUM_IRQS = TIMER0 + NUM_TIMERS
MSI0 = 224
NUM_MSI_REGISTERS = 8
UART_SOURCE = 42          # both UARTs (QEMU e500.c); the device tree's serial "interrupts = <42 2>"
GPIO_SOURCE = 47

MAX_CPUS = 32

# --- register offsets -----------------------------------------------------------------------------------
REG_BRR1 = 0x0000
REG_FRR = 0x1000
REG_GCR = 0x1020
REG_VIR = 0x1080
REG_PIR = 0x1090
REG_IPI_IVPR0 = 0x10A0
REG_SPVR = 0x10E0
REG_TFRR = 0x10F0
REG_TIMER0 = 0x1100
TIMER_STRIDE = 0x40
TIMER_TCCR, TIMER_TBCR, TIMER_TVPR, TIMER_TDR = 0x00, 0x10, 0x20, 0x30
GLOBAL_END = 0x10F0
TIMER_END = 0x1310
REG_MSI = 0x1600
MSI_END = 0x1800
REG_MSIIR = 0x140
REG_MSISR = 0x120
REG_SUMMARY = 0x3800
SUMMARY_END = 0x4000
REG_SOURCE0 = 0x10000
SOURCE_STRIDE = 0x20
SOURCE_IVPR, SOURCE_IDR, SOURCE_ILR = 0x00, 0x10, 0x18
SOURCE_END = REG_SOURCE0 + NUM_SOURCES * SOURCE_STRIDE
REG_CPU0 = 0x20000
CPU_STRIDE = 0x1000
CPU_IPIDR0 = 0x40
CPU_CTPR = 0x80
CPU_WHOAMI = 0x90
CPU_IACK = 0xA0
CPU_EOI = 0xB0
CPU_END = REG_CPU0 + 0x100 + (MAX_CPUS - 1) * CPU_STRIDE

# --- register bits --------------------------------------------------------------------------------------
GCR_RESET = 0x80000000
GCR_MODE_MASK = 0x60000000
GCR_MODE_MIXED = 0x20000000
GCR_MODE_PROXY = 0x60000000
IVPR_MASK = 0x80000000
IVPR_ACTIVITY = 0x40000000
IVPR_POLARITY = 0x00800000
IVPR_SENSE = 0x00400000
IVPR_PRIORITY_SHIFT = 16
IVPR_PRIORITY = 0x000F0000
IVPR_WRITABLE = IVPR_MASK | IVPR_PRIORITY | IVPR_SENSE | IVPR_POLARITY | VECTOR_MASK
TBCR_CI = 0x80000000
TCCR_TOG = 0x80000000
COUNT_MASK = 0x7FFFFFFF
ILR_TARGET_MASK = 0xFF

OUTPUT_INT = 0
OUTPUT_CINT = 1
OUTPUT_MCK = 2
_OUTPUT_NAMES = {OUTPUT_INT: "int", OUTPUT_CINT: "critical", OUTPUT_MCK: "machine-check"}

CYCLES_PER_TIMER_TICK = 16     # 400 MHz core time base / QEMU's 25 MHz OpenPIC timer clock

_ALL_ONES = 0xFFFFFFFF


@dataclass
class _Timer:
    tbcr: int = TBCR_CI
    toggle: int = 0               # TCCR[TOG]
    count: int = 0                # TCCR count when stopped, or the count loaded at ``start``
    start: int = 0                # cycle at which ``count`` was loaded (while running)
    running: bool = False

    def expiry(self) -> int:
        return self.start + self.count * CYCLES_PER_TIMER_TICK


@dataclass
class _Destination:
    """One CPU's view: task priority, in-service set, and the output lines as last driven."""

    ctpr: int = 15
    in_service: set[int] = field(default_factory=set)
    int_level: bool = False
    cint_level: bool = False
    mck_level: bool = False
    int_line: Callable[[bool], None] | None = None
    cint_line: Callable[[bool], None] | None = None


class Mpic:
    """FSL MPIC for ``num_cpus`` CPUs (the board wires one). See the module docstring.

    ``clock()`` returns the current core cycle count (drives the global timers); ``events_changed()``
    tells the core that :meth:`next_event_cycle` may have moved. CPU outputs are connected with
    :meth:`connect_cpu`; ``current_cpu()`` says which CPU a guest access comes from (the per-CPU
    aliases at 0x40-0xB0).
    """

    def __init__(self, num_cpus: int = 1) -> None:
        if not 1 <= num_cpus <= MAX_CPUS:
            raise ValueError(f"an MPIC serves 1..{MAX_CPUS} CPUs, not {num_cpus}")
        self.num_cpus = num_cpus
        self.clock: Callable[[], int] = lambda: 0
        self.events_changed: Callable[[], None] = lambda: None
        self.current_cpu: Callable[[], int] = lambda: 0
        self.destinations = [_Destination() for _ in range(num_cpus)]
        self.lines = [False] * NUM_IRQS          # input signal of each source as last driven
        self.reset()

    # -- wiring ------------------------------------------------------------------------------------
    def connect_cpu(self, cpu: int, int_line: Callable[[bool], None],
                    cint_line: Callable[[bool], None] | None = None) -> None:
        """Drive ``int_line`` (the core's external input) and ``cint_line`` (critical input) for ``cpu``."""
        destination = self.destinations[cpu]
        destination.int_line = int_line
        destination.cint_line = cint_line
        int_line(destination.int_level)
        if cint_line is not None:
            cint_line(destination.cint_level)

    # -- reset -------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.gcr = 0
        self.pir = 0
        self.spurious = VECTOR_MASK
        self.tfrr = 0
        self.ivpr = [IVPR_MASK] * NUM_IRQS
        self.idr = [1] * NUM_IRQS
        self.output = [OUTPUT_INT] * NUM_IRQS
        self.level_sensitive = [False] * NUM_IRQS
        # Whether a source is pending; for IPIs and timers a mask of the CPUs it is pending for.
        self.pending = [0] * NUM_IRQS
        self.msir = [0] * NUM_MSI_REGISTERS
        for source in range(FIRST_INTERNAL, NUM_SOURCES):
            self.ivpr[source] |= IVPR_POLARITY
            self.level_sensitive[source] = True
        for source in range(NUM_IRQS):
            if self.level_sensitive[source]:
                self.pending[source] = int(self.lines[source])
        self.timers = [_Timer() for _ in range(NUM_TIMERS)]
        for destination in self.destinations:
            destination.ctpr = 15
            destination.in_service.clear()
        self._active: set[int] = set()   # sources raised somewhere: pending and unmasked
        for source in range(NUM_IRQS):
            self._refresh_active(source)
        self._update_outputs()
        self.events_changed()

    # -- inputs --------------------------------------------------------------------------------------
    def set_irq(self, source: int, level: bool) -> None:
        """A device drives its interrupt signal (active high) for ``source``."""
        was = self.lines[source]
        self.lines[source] = level
        if self.level_sensitive[source]:
            self.pending[source] = int(level)
        elif level and not was:
            self.pending[source] = 1
        else:
            return
        self._refresh_active(source)
        self._update_outputs()

    def _multicast(self, source: int, cpus: int) -> None:
        self.pending[source] |= cpus & ((1 << self.num_cpus) - 1)
        self._refresh_active(source)

    # -- source state ----------------------------------------------------------------------------------
    @staticmethod
    def _is_multicast(source: int) -> bool:
        return source >= IPI0

    def _destmask(self, source: int) -> int:
        return self.idr[source] & ((1 << self.num_cpus) - 1)

    def _raised_for(self, source: int) -> int:
        """Mask of the CPUs ``source`` is raised for (pending, unmasked, routed there)."""
        if self.ivpr[source] & IVPR_MASK or not self.pending[source]:
            return 0
        if self._is_multicast(source):
            return self.pending[source]
        return self._destmask(source)

    def _refresh_active(self, source: int) -> None:
        if self._raised_for(source):
            self._active.add(source)
            self.ivpr[source] |= IVPR_ACTIVITY
        else:
            self._active.discard(source)
            self.ivpr[source] &= ~IVPR_ACTIVITY

    def priority(self, source: int) -> int:
        return (self.ivpr[source] & IVPR_PRIORITY) >> IVPR_PRIORITY_SHIFT

    def _highest_raised(self, cpu: int) -> int:
        """The INT-output source to deliver next on ``cpu`` (highest priority, lowest number), or -1."""
        best, best_priority = -1, -1
        bit = 1 << cpu
        for source in self._active:
            if self.output[source] != OUTPUT_INT or not self._raised_for(source) & bit:
                continue
            priority = self.priority(source)
            if priority > best_priority or (priority == best_priority and source < best):
                best, best_priority = source, priority
        return best

    def _highest_in_service(self, cpu: int) -> int:
        best, best_priority = -1, -1
        for source in self.destinations[cpu].in_service:
            priority = self.priority(source)
            if priority > best_priority or (priority == best_priority and source < best):
                best, best_priority = source, priority
        return best

    def _deliverable(self, cpu: int) -> int:
        """The source an IACK on ``cpu`` would take now, or -1 (then INT is low)."""
        source = self._highest_raised(cpu)
        if source < 0:
            return -1
        priority = self.priority(source)
        if priority <= self.destinations[cpu].ctpr:
            return -1
        serviced = self._highest_in_service(cpu)
        if serviced >= 0 and priority <= self.priority(serviced):
            return -1
        return source

    def _update_outputs(self) -> None:
        for cpu, destination in enumerate(self.destinations):
            level = self._deliverable(cpu) >= 0
            if level != destination.int_level:
                destination.int_level = level
                if destination.int_line is not None:
                    destination.int_line(level)
            bit = 1 << cpu
            cint = mck = False
            for source in self._active:
                if self._raised_for(source) & bit:
                    cint = cint or self.output[source] == OUTPUT_CINT
                    mck = mck or self.output[source] == OUTPUT_MCK
            destination.mck_level = mck
            if cint != destination.cint_level:
                destination.cint_level = cint
                if destination.cint_line is not None:
                    destination.cint_line(cint)

    # -- acknowledge / end of interrupt ---------------------------------------------------------------------
    def acknowledge(self, cpu: int) -> int:
        """IACK for ``cpu``: the vector of the source now in service, or the spurious vector."""
        source = self._deliverable(cpu)
        if source < 0:
            return self.spurious
        self.destinations[cpu].in_service.add(source)
        if self._is_multicast(source):
            self.pending[source] &= ~(1 << cpu)
        elif not self.level_sensitive[source]:
            self.pending[source] = 0
        self._refresh_active(source)
        self._update_outputs()
        return self.ivpr[source] & VECTOR_MASK

    def proxy_acknowledge(self, cpu: int) -> int | None:
        """What the core loads into EPR when it takes the external input: the IACK in proxy mode."""
        if self.gcr & GCR_MODE_MASK != GCR_MODE_PROXY:
            return None
        return self.acknowledge(cpu)

    def end_of_interrupt(self, cpu: int) -> None:
        source = self._highest_in_service(cpu)
        if source >= 0:
            self.destinations[cpu].in_service.discard(source)
            self._update_outputs()

    # -- global timers -----------------------------------------------------------------------------------
    def _start_timer(self, timer: _Timer, count: int, now: int) -> None:
        timer.count = count & COUNT_MASK
        timer.start = now
        timer.running = timer.count != 0
        self.events_changed()

    def _advance_timer(self, index: int, now: int) -> None:
        timer = self.timers[index]
        if not timer.running or now < timer.expiry():
            return
        period = (timer.tbcr & COUNT_MASK) * CYCLES_PER_TIMER_TICK
        first = timer.expiry()
        if period == 0:
            timer.toggle ^= 1
            timer.count = 0
            timer.running = False
        else:
            # Every expiry up to now reloads the same base count; only the parity of their number
            # shows (in TOG). The interrupt is an edge: pending once however many there were.
            expiries = (now - first) // period + 1
            timer.toggle ^= expiries & 1
            timer.count = period // CYCLES_PER_TIMER_TICK
            timer.start = first + (expiries - 1) * period
        source = TIMER0 + index
        self._multicast(source, self._destmask(source))
        self._update_outputs()
        self.events_changed()

    def advance(self, cycles: int) -> None:
        """Apply every timer expiry up to ``cycles`` (the core calls this at its event boundaries)."""
        for index in range(NUM_TIMERS):
            self._advance_timer(index, cycles)

    def next_event_cycle(self) -> int | None:
        """The first cycle at which a running, unmasked timer expires (masked ones catch up lazily)."""
        best: int | None = None
        for index, timer in enumerate(self.timers):
            if timer.running and not self.ivpr[TIMER0 + index] & IVPR_MASK:
                expiry = timer.expiry()
                if best is None or expiry < best:
                    best = expiry
        return best

    def _timer_count(self, timer: _Timer, now: int) -> int:
        if not timer.running:
            return timer.count
        return (timer.count - (now - timer.start) // CYCLES_PER_TIMER_TICK) & COUNT_MASK

    def _write_tbcr(self, index: int, value: int, now: int) -> None:
        timer = self.timers[index]
        if (timer.tbcr ^ value) & TBCR_CI:
            if value & TBCR_CI:
                timer.running = False
                timer.count = 0
                self.events_changed()
            else:
                timer.toggle = 0
                self._start_timer(timer, value, now)
        timer.tbcr = value

    # -- register access ---------------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        return self._access(offset, size, consume=True)

    def peek(self, offset: int, size: int) -> int:
        return self._access(offset, size, consume=False)

    def _access(self, offset: int, size: int, consume: bool) -> int:
        if offset + size > (offset & ~3) + 4:   # crosses a register boundary: byte by byte
            return int.from_bytes(bytes(self._access(offset + index, 1, consume) for index in range(size)),
                                  "big")
        word = self._read_word(offset & ~3, consume)
        shift = 8 * (4 - (offset & 3) - size)
        return (word >> shift) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if offset + size > word + 4:   # crosses a register boundary: byte by byte
            for index in range(size):
                self.write(offset + index, 1, (value >> (8 * (size - 1 - index))) & 0xFF)
            return
        if size != 4:
            # Registers are words: merge the bytes into the current value (read without side effects).
            shift = 8 * (4 - (offset - word) - size)
            field_mask = ((1 << (8 * size)) - 1) << shift
            value = (self._read_word(word, consume=False) & ~field_mask) | ((value << shift) & field_mask)
        self._write_word(word, value & _ALL_ONES)

    def _read_word(self, offset: int, consume: bool) -> int:
        now = self.clock()
        self.advance(now)   # catching up with expiries that are due is not a side effect of reading
        if offset < GLOBAL_END:
            if 0x40 <= offset <= 0xB0:
                return self._read_cpu(self.current_cpu(), offset, consume)
            return self._read_global(offset)
        if offset < TIMER_END:
            return self._read_timer(offset, now)
        if REG_MSI <= offset < MSI_END:
            return self._read_msi(offset - REG_MSI, consume)
        if REG_SUMMARY <= offset < SUMMARY_END:
            return 0
        if REG_SOURCE0 <= offset < SOURCE_END:
            source, register = divmod(offset - REG_SOURCE0, SOURCE_STRIDE)
            return self._read_source(source, register)
        if REG_CPU0 <= offset < CPU_END:
            cpu, register = divmod(offset - REG_CPU0, CPU_STRIDE)
            return self._read_cpu(cpu, register, consume)
        return 0

    def _write_word(self, offset: int, value: int) -> None:
        now = self.clock()
        self.advance(now)
        if offset < GLOBAL_END:
            if 0x40 <= offset <= 0xB0:
                self._write_cpu(self.current_cpu(), offset, value)
            else:
                self._write_global(offset, value)
        elif offset < TIMER_END:
            self._write_timer(offset, value, now)
        elif REG_MSI <= offset < MSI_END:
            self._write_msi(offset - REG_MSI, value)
        elif REG_SOURCE0 <= offset < SOURCE_END:
            source, register = divmod(offset - REG_SOURCE0, SOURCE_STRIDE)
            self._write_source(source, register, value)
        elif REG_CPU0 <= offset < CPU_END:
            cpu, register = divmod(offset - REG_CPU0, CPU_STRIDE)
            self._write_cpu(cpu, register, value)

    # global registers
    def _read_global(self, offset: int) -> int:
        if offset == REG_BRR1:
            return BRR1_VALUE
        if offset == REG_FRR:
            return (REPORTED_SOURCES - 1) << 16 | (self.num_cpus - 1) << 8 | VERSION_ID
        if offset == REG_GCR:
            return self.gcr
        if offset == REG_VIR:
            return VENDOR_ID
        if offset == REG_PIR:
            return 0
        if REG_IPI_IVPR0 <= offset < REG_IPI_IVPR0 + 0x10 * NUM_IPIS and not offset & 0xF:
            return self.ivpr[IPI0 + (offset - REG_IPI_IVPR0) // 0x10]
        if offset == REG_SPVR:
            return self.spurious
        return _ALL_ONES

    def _write_global(self, offset: int, value: int) -> None:
        if offset == REG_GCR:
            if value & GCR_RESET:
                self.reset()   # completes at once: GCR[RST] reads back 0
                return
            self.gcr = value & GCR_MODE_MASK
        elif offset == REG_PIR:
            self.pir = value   # core reset requests are not modelled (one core, reset by the debugger)
        elif REG_IPI_IVPR0 <= offset < REG_IPI_IVPR0 + 0x10 * NUM_IPIS and not offset & 0xF:
            self._write_ivpr(IPI0 + (offset - REG_IPI_IVPR0) // 0x10, value)
        elif offset == REG_SPVR:
            self.spurious = value & VECTOR_MASK

    # timers
    def _read_timer(self, offset: int, now: int) -> int:
        if offset == REG_TFRR:
            return self.tfrr
        if offset & 0xF:
            return _ALL_ONES
        index, register = divmod(offset - REG_TIMER0, TIMER_STRIDE)
        index %= NUM_TIMERS   # the rest of the timer window (0x1200-0x130F) aliases the four timers
        timer = self.timers[index]
        if register == TIMER_TCCR:
            return (TCCR_TOG if timer.toggle else 0) | self._timer_count(timer, now)
        if register == TIMER_TBCR:
            return timer.tbcr
        if register == TIMER_TVPR:
            return self.ivpr[TIMER0 + index]
        return self.idr[TIMER0 + index]

    def _write_timer(self, offset: int, value: int, now: int) -> None:
        if offset == REG_TFRR:
            self.tfrr = value
            return
        if offset & 0xF:
            return
        index, register = divmod(offset - REG_TIMER0, TIMER_STRIDE)
        index %= NUM_TIMERS   # the rest of the timer window (0x1200-0x130F) aliases the four timers
        if register == TIMER_TBCR:
            self._write_tbcr(index, value, now)
        elif register == TIMER_TVPR:
            self._write_ivpr(TIMER0 + index, value)
            self.events_changed()   # (un)masking a timer changes whether its expiry is an event
        elif register == TIMER_TDR:
            self._write_idr(TIMER0 + index, value)

    # MSI
    def _read_msi(self, offset: int, consume: bool) -> int:
        if offset < 0x10 * NUM_MSI_REGISTERS and not offset & 0xF:
            index = offset // 0x10
            value = self.msir[index]
            if consume:
                self.msir[index] = 0      # clear on read
                self.set_irq(MSI0 + index, False)
            return value
        if offset == REG_MSISR:
            return sum(1 << index for index, value in enumerate(self.msir) if value)
        return 0

    def _write_msi(self, offset: int, value: int) -> None:
        if offset != REG_MSIIR:
            return
        index = value >> 29
        self.msir[index] |= 1 << ((value >> 24) & 0x1F)
        self.set_irq(MSI0 + index, True)

    # sources
    def _read_source(self, source: int, register: int) -> int:
        if register == SOURCE_IVPR:
            return self.ivpr[source]
        if register == SOURCE_IDR:
            return self.idr[source]
        if register == SOURCE_ILR:
            return self.output[source]
        return _ALL_ONES

    def _write_source(self, source: int, register: int, value: int) -> None:
        if register == SOURCE_IVPR:
            self._write_ivpr(source, value)
        elif register == SOURCE_IDR:
            self._write_idr(source, value)
        elif register == SOURCE_ILR:
            target = value & ILR_TARGET_MASK
            self.output[source] = target if target in _OUTPUT_NAMES else OUTPUT_INT
            self._update_outputs()

    def _write_ivpr(self, source: int, value: int) -> None:
        ivpr = (self.ivpr[source] & IVPR_ACTIVITY) | (value & IVPR_WRITABLE)
        if source >= NUM_SOURCES:
            ivpr &= ~(IVPR_POLARITY | IVPR_SENSE)      # IPIs and timers: edge, no polarity
        elif source >= FIRST_INTERNAL:
            ivpr &= ~IVPR_SENSE                        # internal sources are always level
        else:
            level = bool(ivpr & IVPR_SENSE)
            if level != self.level_sensitive[source]:
                self.level_sensitive[source] = level
                if level:
                    self.pending[source] = int(self.lines[source])
        self.ivpr[source] = ivpr
        self._refresh_active(source)
        self._update_outputs()

    def _write_idr(self, source: int, value: int) -> None:
        self.idr[source] = value & ((1 << self.num_cpus) - 1)
        self._refresh_active(source)
        self._update_outputs()

    # per-CPU registers
    def _read_cpu(self, cpu: int, register: int, consume: bool) -> int:
        if cpu >= self.num_cpus or register & 0xF:
            return _ALL_ONES
        if register == CPU_CTPR:
            return self.destinations[cpu].ctpr
        if register == CPU_WHOAMI:
            return cpu
        if register == CPU_IACK:
            if not consume:
                source = self._deliverable(cpu)
                return self.spurious if source < 0 else self.ivpr[source] & VECTOR_MASK
            return self.acknowledge(cpu)
        if register == CPU_EOI:
            return 0
        return _ALL_ONES

    def _write_cpu(self, cpu: int, register: int, value: int) -> None:
        if cpu >= self.num_cpus or register & 0xF:
            return
        if CPU_IPIDR0 <= register < CPU_IPIDR0 + 0x10 * NUM_IPIS:
            self._multicast(IPI0 + (register - CPU_IPIDR0) // 0x10, value)
            self._update_outputs()
        elif register == CPU_CTPR:
            self.destinations[cpu].ctpr = value & 0xF
            self._update_outputs()
        elif register == CPU_EOI:
            self.end_of_interrupt(cpu)

    # -- debugger view ------------------------------------------------------------------------------------
    @staticmethod
    def source_name(source: int) -> str:
        if source >= TIMER0:
            return f"timer{source - TIMER0}"
        if source >= IPI0:
            return f"ipi{source - IPI0}"
        if source >= MSI0 and source < MSI0 + NUM_MSI_REGISTERS:
            return f"msi{source - MSI0}"
        if source >= FIRST_INTERNAL:
            return f"internal{source - FIRST_INTERNAL}"
        return f"external{source}"

    def describe(self) -> str:
        """Text for a debugger's ``info pic``: configured sources, per-CPU state, timers."""
        now = self.clock()
        self.advance(now)
        modes = {0: "pass-through", GCR_MODE_MIXED: "mixed", GCR_MODE_PROXY: "external proxy (EPR)"}
        lines = [f"MPIC at CCSR+{MPIC_OFFSET:#x}: FRR {self._read_global(REG_FRR):#010x}, "
                 f"GCR {self.gcr:#010x} ({modes.get(self.gcr, 'reserved')}), "
                 f"spurious vector {self.spurious:#x}"]
        for cpu, destination in enumerate(self.destinations):
            serviced = ", ".join(f"{source}({self.source_name(source)})"
                                 for source in sorted(destination.in_service)) or "none"
            int_text = "asserted" if destination.int_level else "low"
            cint_text = "asserted" if destination.cint_level else "low"
            lines.append(f"cpu{cpu}: CTPR {destination.ctpr}, INT {int_text}, critical {cint_text}, "
                         f"in service: {serviced}")
        lines.append("source          vector prio mask  sense  dest  output         pending  active  "
                     "in-service")
        hidden = 0
        for source in range(NUM_IRQS):
            ivpr = self.ivpr[source]
            in_service = [cpu for cpu, d in enumerate(self.destinations) if source in d.in_service]
            # Unmasked, pending, in service or with its line high; a masked idle source (Linux sets
            # up every one of them at boot) is only counted.
            if ivpr & IVPR_MASK and not (self.pending[source] or in_service or self.lines[source]):
                hidden += ivpr & ~(IVPR_POLARITY | IVPR_MASK) != 0
                continue
            sense = "edge" if not self.level_sensitive[source] else "level"
            lines.append(f"{source:3d} {self.source_name(source):11s} {ivpr & VECTOR_MASK:#6x} "
                         f"{self.priority(source):4d} {'yes' if ivpr & IVPR_MASK else 'no':5s} {sense:6s} "
                         f"{self.idr[source]:#5x} {_OUTPUT_NAMES[self.output[source]]:14s} "
                         f"{'yes' if self.pending[source] else 'no':8s} "
                         f"{'yes' if ivpr & IVPR_ACTIVITY else 'no':7s} "
                         f"{','.join(f'cpu{cpu}' for cpu in in_service) or '-'}")
        if hidden:
            lines.append(f"({hidden} masked idle sources with a vector or priority set are not shown)")
        for index, timer in enumerate(self.timers):
            state = "running" if timer.running else ("inhibited" if timer.tbcr & TBCR_CI else "stopped")
            lines.append(f"timer{index}: TBCR {timer.tbcr:#010x}, TCCR "
                         f"{(TCCR_TOG if timer.toggle else 0) | self._timer_count(timer, now):#010x}, {state}"
                         + (f", next expiry at cycle {timer.expiry()}" if timer.running else ""))
        return "\n".join(lines) + "\n"

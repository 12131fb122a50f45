"""Book E / e500 timer facility driven by the CPU cycle counter: time base, decrementer, FIT, watchdog.

Everything is derived from the deterministic cycle count, so the same instruction stream always sees
the same timer values and interrupts land on the same instruction. The rate is a rational number of
time-base ticks per cycle (:meth:`Timers.set_rate`): one tick per cycle by default (unit tests), or
QEMU's ``-icount shift=N`` rule, where each cycle is 2^N ns of guest time and the time base runs at
:data:`TIMEBASE_HZ` of guest time (:func:`icount_rate`; the board uses it). The CPU asks
:meth:`Timers.next_event_cycle` once per event instead of polling.
Also holds the interrupt input lines (external input, critical input) and answers which asynchronous
interrupt is pending under a given MSR, in Book E priority order. Imports: standard library and
:mod:`emulator.exceptions` (IVOR numbers) only.
"""

from __future__ import annotations

from emulator.exceptions import (
    IVOR_CRITICAL_DOORBELL,
    IVOR_CRITICAL_INPUT,
    IVOR_DECREMENTER,
    IVOR_DOORBELL,
    IVOR_EXTERNAL_INPUT,
    IVOR_FIXED_INTERVAL_TIMER,
    IVOR_WATCHDOG,
)

# The time base and decrementer frequency of QEMU's ppce500 (PLATFORM_CLK_FREQ_HZ), in guest time.
TIMEBASE_HZ = 400_000_000
_NS_PER_SECOND = 1_000_000_000


def icount_rate(shift: int) -> tuple[int, int]:
    """(ticks, cycles): the time base advances ``ticks`` per ``cycles`` under ``-icount shift=N``.

    Each cycle is 2^N ns of guest time and the time base counts :data:`TIMEBASE_HZ` per guest
    second, so a cycle is ``2^N * TIMEBASE_HZ / 10^9`` ticks (2^N * 2/5), kept as an exact fraction.
    """
    if not 0 <= shift <= 30:
        raise ValueError(f"icount shift {shift} is outside 0..30")
    ticks, cycles = (1 << shift) * TIMEBASE_HZ, _NS_PER_SECOND
    divisor = _gcd(ticks, cycles)
    return ticks // divisor, cycles // divisor


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


SPR_DEC = 22
SPR_DECAR = 54
SPR_TBL_READ = 268
SPR_TBU_READ = 269
SPR_TBL_WRITE = 284
SPR_TBU_WRITE = 285
SPR_TSR = 336
SPR_TCR = 340

TCR_WP = 0xC0000000
TCR_WRC = 0x30000000
TCR_WIE = 0x08000000
TCR_DIE = 0x04000000
TCR_FP = 0x03000000
TCR_FIE = 0x00800000
TCR_ARE = 0x00400000
TCR_WPEXT = 0x001E0000
TCR_FPEXT = 0x0001E000

TSR_ENW = 0x80000000
TSR_WIS = 0x40000000
TSR_WRS = 0x30000000
TSR_DIS = 0x08000000
TSR_FIS = 0x04000000

_MSR_CE = 0x00020000
_MSR_EE = 0x00008000
_MASK64 = (1 << 64) - 1


def _next_rising_edge(after_tb: int, bit: int) -> int:
    """Smallest TB value T > after_tb at which TB bit ``bit`` (LSB-0) goes from 0 to 1."""
    period = 1 << (bit + 1)
    half = 1 << bit
    base = after_tb - (after_tb % period) + half
    return base if base > after_tb else base + period


class TimeBaseFloor:
    """The latest time-base value any core of an SMP board has read (see emulator.board.Machine)."""

    def __init__(self) -> None:
        self.value = 0


class Timers:
    """Time base, DEC/DECAR, TCR/TSR, FIT, watchdog and the interrupt input lines."""

    def __init__(self) -> None:
        self.tcr = 0
        self.tsr = 0
        self.decar = 0
        self.external_input = False
        self.critical_input = False
        # e500mc doorbells (msgsnd/msgclr): pending until taken or cleared.
        self.doorbell = False
        self.critical_doorbell = False
        # Set by the watchdog's third expiry when TCR[WRC] != 0: the reset action (WRC value).
        self.reset_request: int | None = None
        self._tb_offset = 0          # TB = cycles * _ticks // _per_cycles + offset
        # SMP: the board's monotonic time-base floor shared by its cores (None: one core).
        self.floor: TimeBaseFloor | None = None
        self._dec_base_tb = 0        # DEC held _dec_base_value at TB _dec_base_tb
        self._dec_base_value = 0
        self._processed_tb = 0       # events up to and including this TB have been applied
        # The next event's TB and the TCR/DECAR it was found with. It stays the next event while
        # _processed_tb is below it (rebasing DEC keeps its expiry); TB and DEC writes drop it.
        self._next_event: tuple[int, int, int] | None = None

    _ticks = 1                       # time-base ticks per _per_cycles cycles (set_rate)
    _per_cycles = 1

    def reset(self) -> None:
        ticks, per_cycles, floor = self._ticks, self._per_cycles, self.floor
        self.__init__()  # type: ignore[misc]
        # The rate and the shared floor are the machine's, not state.
        self._ticks, self._per_cycles, self.floor = ticks, per_cycles, floor

    def set_rate(self, ticks: int, per_cycles: int) -> None:
        """The time base advances ``ticks`` every ``per_cycles`` cycles (call at reset, TB 0)."""
        if ticks <= 0 or per_cycles <= 0:
            raise ValueError("the time-base rate must be positive")
        self._ticks, self._per_cycles = ticks, per_cycles
        self._next_event = None

    @property
    def rate(self) -> tuple[int, int]:
        return self._ticks, self._per_cycles

    # -- time base --------------------------------------------------------------------------------
    def tb(self, cycles: int) -> int:
        value = (cycles * self._ticks // self._per_cycles + self._tb_offset) & _MASK64
        floor = self.floor
        if floor is not None:
            if value < floor.value:
                return floor.value
            floor.value = value
        return value

    def _raw_tb(self, cycles: int) -> int:
        return cycles * self._ticks // self._per_cycles + self._tb_offset

    def write_tb(self, cycles: int, value: int) -> None:
        self.advance(cycles)
        dec_now = self.dec(cycles)
        self._tb_offset = (value & _MASK64) - cycles * self._ticks // self._per_cycles
        self._next_event = None
        now = self._raw_tb(cycles)
        # Timers keep counting from here; a TB jump itself raises no FIT/watchdog edges.
        self._dec_base_tb, self._dec_base_value = now, dec_now
        self._processed_tb = now

    def write_tbl(self, cycles: int, value: int) -> None:
        self.write_tb(cycles, (self.tb(cycles) & ~0xFFFFFFFF) | (value & 0xFFFFFFFF))

    def write_tbu(self, cycles: int, value: int) -> None:
        self.write_tb(cycles, ((value & 0xFFFFFFFF) << 32) | (self.tb(cycles) & 0xFFFFFFFF))

    # -- decrementer -----------------------------------------------------------------------------
    def dec(self, cycles: int) -> int:
        """DEC at ``cycles``: counts down, sets DIS on 1->0, reloads from DECAR if ARE else stops at 0."""
        start = self._dec_base_value
        if start == 0:
            return 0
        elapsed = self._raw_tb(cycles) - self._dec_base_tb
        if elapsed < start:
            return start - elapsed
        if not self.tcr & TCR_ARE or self.decar == 0:
            return 0
        return self.decar - ((elapsed - start) % self.decar)

    def _rebase_dec(self, cycles: int) -> None:
        self._dec_base_value = self.dec(cycles)
        self._dec_base_tb = self._raw_tb(cycles)

    def write_dec(self, cycles: int, value: int) -> None:
        self.advance(cycles)
        self._dec_base_tb = self._raw_tb(cycles)
        self._dec_base_value = value & 0xFFFFFFFF
        self._next_event = None

    def write_decar(self, cycles: int, value: int) -> None:
        self.advance(cycles)
        self._rebase_dec(cycles)
        self.decar = value & 0xFFFFFFFF

    def write_tcr(self, cycles: int, value: int) -> None:
        self.advance(cycles)
        self._rebase_dec(cycles)
        # Book E: once set, TCR[WRC] can only be cleared by a reset.
        self.tcr = (value & 0xFFFFFFFF) | (self.tcr & TCR_WRC)

    def write_tsr(self, cycles: int, value: int) -> None:
        """TSR is write-one-to-clear."""
        self.advance(cycles)
        self.tsr &= ~value & 0xFFFFFFFF

    # -- events ----------------------------------------------------------------------------------
    def _fit_bit(self) -> int:
        index = ((self.tcr & TCR_FP) >> 24) | (((self.tcr & TCR_FPEXT) >> 13) << 2)
        return 63 - index

    def _watchdog_bit(self) -> int:
        index = ((self.tcr & TCR_WP) >> 30) | (((self.tcr & TCR_WPEXT) >> 17) << 2)
        return 63 - index

    def _next_dec_expiry_tb(self) -> int | None:
        start = self._dec_base_value
        if start == 0:
            return None
        expiry = self._dec_base_tb + start
        if expiry > self._processed_tb:
            return expiry
        if not self.tcr & TCR_ARE or self.decar == 0:
            return None
        periods = (self._processed_tb - expiry) // self.decar + 1
        return expiry + periods * self.decar

    def _next_event_tb(self) -> int:
        cached = self._next_event
        if (cached is not None and cached[0] > self._processed_tb and cached[1] == self.tcr
                and cached[2] == self.decar):
            return cached[0]
        candidates = [_next_rising_edge(self._processed_tb, self._fit_bit()),
                      _next_rising_edge(self._processed_tb, self._watchdog_bit())]
        dec_expiry = self._next_dec_expiry_tb()
        if dec_expiry is not None:
            candidates.append(dec_expiry)
        event = min(candidates)
        self._next_event = (event, self.tcr, self.decar)
        return event

    def next_event_cycle(self) -> int:
        """The first cycle count at which a timer event (DEC, FIT or watchdog edge) happens."""
        return self._cycle_at_tb(self._next_event_tb())

    def _cycle_at_tb(self, tb: int) -> int:
        # The first cycle count c with c * _ticks // _per_cycles >= the ticks to that TB value.
        ticks = tb - self._tb_offset
        return -(-ticks * self._per_cycles // self._ticks)

    def advance(self, cycles: int) -> None:
        """Apply every timer event that happened up to ``cycles`` (sets TSR bits, runs the watchdog)."""
        now = self._raw_tb(cycles)
        processed = self._processed_tb
        if now <= processed:
            return
        if now < self._next_event_tb():       # no event in (processed, now]
            self._processed_tb = now
            self._rebase_dec(cycles)
            return
        dec_expiry = self._next_dec_expiry_tb()
        if dec_expiry is not None and dec_expiry <= now:
            self.tsr |= TSR_DIS
        if _next_rising_edge(processed, self._fit_bit()) <= now:
            self.tsr |= TSR_FIS
        edge = _next_rising_edge(processed, self._watchdog_bit())
        # At most three watchdog expiries change state (ENW, then WIS, then the reset action).
        for _ in range(3):
            if edge > now:
                break
            self._watchdog_expiry()
            edge = _next_rising_edge(edge, self._watchdog_bit())
        self._processed_tb = now
        self._rebase_dec(cycles)

    def _watchdog_expiry(self) -> None:
        if not self.tsr & TSR_ENW:
            self.tsr |= TSR_ENW
        elif not self.tsr & TSR_WIS:
            self.tsr |= TSR_WIS
        else:
            action = (self.tcr & TCR_WRC) >> 28
            if action and self.reset_request is None:
                self.tsr = (self.tsr & ~TSR_WRS) | (action << 28)
                self.reset_request = action

    # -- interrupt levels --------------------------------------------------------------------------
    def pending_interrupt(self, msr: int) -> int | None:
        """The IVOR of the highest-priority unmasked pending interrupt (Book E order), else None."""
        if msr & _MSR_CE:
            if self.critical_input:
                return IVOR_CRITICAL_INPUT
            if self.tsr & TSR_WIS and self.tcr & TCR_WIE:
                return IVOR_WATCHDOG
            if self.critical_doorbell:
                return IVOR_CRITICAL_DOORBELL
        if msr & _MSR_EE:
            if self.external_input:
                return IVOR_EXTERNAL_INPUT
            if self.tsr & TSR_FIS and self.tcr & TCR_FIE:
                return IVOR_FIXED_INTERVAL_TIMER
            if self.tsr & TSR_DIS and self.tcr & TCR_DIE:
                return IVOR_DECREMENTER
            if self.doorbell:
                return IVOR_DOORBELL
        return None

    def next_wake_cycle(self, msr: int) -> int | None:
        """The first cycle at which a timer event could interrupt or reset the core with this MSR, or
        None if timer events alone never could. A waiting core skips to it: :meth:`advance` applies
        every event in between (the TSR bits they set are sticky), so nothing is lost, and a guest
        waiting with a fast decrementer it cannot take costs one step, not one per expiry."""
        tbs: list[int] = []
        if msr & _MSR_EE:
            if self.tcr & TCR_FIE:
                tbs.append(_next_rising_edge(self._processed_tb, self._fit_bit()))
            if self.tcr & TCR_DIE:
                dec_expiry = self._next_dec_expiry_tb()
                if dec_expiry is not None:
                    tbs.append(dec_expiry)
        if (msr & _MSR_CE and self.tcr & TCR_WIE) or (self.tcr & TCR_WRC and self.reset_request is None):
            tbs.append(_next_rising_edge(self._processed_tb, self._watchdog_bit()))
        return self._cycle_at_tb(min(tbs)) if tbs else None

"""The e500 debug facility: host (debugger-owned) configuration and the guest's own debug registers.

Two owners share the comparators. The host configuration :class:`HostDebug` comes from
``kvm_guest_debug`` (built by :mod:`emulator.kvm`); its events become ``HostDebugEvent``. The guest's
DBCR0-2/IAC1-2/DAC1-2/DBSR live in :class:`GuestDebug`, always exactly as the guest wrote them, and
their events become debug interrupts (IVOR15) inside :mod:`emulator.cpu`. This module only holds
state and answers "does this match"; it never touches CPU state. Imports: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Debug SPR numbers (reference 1.1).
SPR_DBSR = 304
SPR_DBCR0 = 308
SPR_DBCR1 = 309
SPR_DBCR2 = 310
SPR_IAC1 = 312
SPR_IAC2 = 313
SPR_DAC1 = 316
SPR_DAC2 = 317

# DBCR0 bits.
DBCR0_EDM = 0x80000000
DBCR0_IDM = 0x40000000
DBCR0_RST = 0x30000000
DBCR0_IC = 0x08000000
DBCR0_BRT = 0x04000000
DBCR0_IRPT = 0x02000000
DBCR0_TRAP = 0x01000000
DBCR0_IAC1 = 0x00800000
DBCR0_IAC2 = 0x00400000
DBCR0_DAC1R = 0x00080000
DBCR0_DAC1W = 0x00040000
DBCR0_DAC2R = 0x00020000
DBCR0_DAC2W = 0x00010000
DBCR0_RET = 0x00008000

# DBSR bits (same positions as the DBCR0 enables for the events).
DBSR_IDE = 0x80000000
DBSR_UDE = 0x40000000
DBSR_MRR = 0x30000000
DBSR_IC = 0x08000000
DBSR_BRT = 0x04000000
DBSR_IRPT = 0x02000000
DBSR_TRAP = 0x01000000
DBSR_IAC1 = 0x00800000
DBSR_IAC2 = 0x00400000
DBSR_DAC1R = 0x00080000
DBSR_DAC1W = 0x00040000
DBSR_DAC2R = 0x00020000
DBSR_DAC2W = 0x00010000
DBSR_RET = 0x00008000
# Bits whose presence (with IDM and MSR[DE]) requests a debug interrupt; MRR and IDE are status only.
DBSR_EVENTS = 0x4FFF8060  # UDE, IC..TRAP, IAC1-4, DAC1R..DAC2W, RET, CIRPT, CRET

# DBCR1/DBCR2 qualifier fields.
DBCR1_IAC12M = 0x00C00000
DBCR2_DAC12M = 0x00C00000

_MODE_EXACT = 0
_MODE_MASK = 1
_MODE_RANGE_IN = 2
_MODE_RANGE_OUT = 3

_MSR_PR = 0x00004000
_MSR_IS = 0x00000020
_MSR_DS = 0x00000010


@dataclass(frozen=True)
class DataWatch:
    """A host data watch over [start, end_exclusive) for reads and/or writes."""

    start: int
    end_exclusive: int
    read: bool
    write: bool

    def dac_slots(self) -> int:
        """Comparators this watch needs: one for up to an aligned word, both (range mode) beyond."""
        if self.end_exclusive - self.start <= 4 and (self.start >> 2) == ((self.end_exclusive - 1) >> 2):
            return 1
        return 2


@dataclass
class HostDebug:
    """Debugger-owned debug configuration (from KVM_SET_GUEST_DEBUG)."""

    enabled: bool = False
    single_step: bool = False
    sw_breakpoints: bool = False
    iac: list[int] = field(default_factory=list)
    dac: list[DataWatch] = field(default_factory=list)

    def validate(self, num_iac: int, num_dac: int) -> None:
        """Raise ValueError when the configuration needs more comparators than the model has."""
        if len(self.iac) > num_iac:
            raise ValueError(f"{len(self.iac)} instruction breakpoints, only {num_iac} IACs")
        needed = sum(watch.dac_slots() for watch in self.dac)
        if needed > num_dac:
            raise ValueError(f"watches need {needed} DACs, only {num_dac}")
        for watch in self.dac:
            if watch.end_exclusive <= watch.start or not (watch.read or watch.write):
                raise ValueError(f"empty watch {watch}")

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.single_step or self.iac or self.dac)


def _qualifier_ok(us: int, er: int, msr: int, space_bit: int) -> bool:
    """Apply a 2-bit US (user/supervisor) and ER (address space) qualifier to the current MSR."""
    if us == 2 and msr & _MSR_PR:
        return False
    if us == 3 and not msr & _MSR_PR:
        return False
    if er == 2 and msr & space_bit:
        return False
    return not (er == 3 and not msr & space_bit)


@dataclass
class GuestDebug:
    """The guest's own debug registers, readable back exactly as written (DBSR is w1c)."""

    dbcr0: int = 0
    dbcr1: int = 0
    dbcr2: int = 0
    iac1: int = 0
    iac2: int = 0
    dac1: int = 0
    dac2: int = 0
    dbsr: int = 0

    @property
    def idm(self) -> bool:
        return bool(self.dbcr0 & DBCR0_IDM)

    def iac_addresses(self) -> list[int]:
        """Word addresses that may raise an IAC event (for wrapping decode-cache entries).

        Returns None-equivalent (an empty list) when IDM is off. Range modes cannot be expressed as a
        finite address list; :meth:`iac_needs_every_fetch` covers them.
        """
        if not self.idm or self.iac_needs_every_fetch():
            return []
        addresses = []
        if self.dbcr0 & DBCR0_IAC1:
            addresses.append(self.iac1 & ~3)
        if self.dbcr0 & DBCR0_IAC2:
            addresses.append(self.iac2 & ~3)
        return addresses

    def iac_needs_every_fetch(self) -> bool:
        return (self.idm and bool(self.dbcr0 & (DBCR0_IAC1 | DBCR0_IAC2))
                and (self.dbcr1 & DBCR1_IAC12M) >> 22 != _MODE_EXACT)

    def iac_hits(self, pc: int, msr: int) -> int:
        """DBSR bits of the IAC events that ``pc`` raises under the current MSR (0 for none)."""
        if not self.idm:
            return 0
        dbcr0, dbcr1 = self.dbcr0, self.dbcr1
        mode = (dbcr1 & DBCR1_IAC12M) >> 22
        bits = 0
        pc &= ~3
        if mode == _MODE_EXACT:
            if (dbcr0 & DBCR0_IAC1 and pc == self.iac1 & ~3
                    and _qualifier_ok(dbcr1 >> 30, (dbcr1 >> 28) & 3, msr, _MSR_IS)):
                bits |= DBSR_IAC1
            if (dbcr0 & DBCR0_IAC2 and pc == self.iac2 & ~3
                    and _qualifier_ok((dbcr1 >> 26) & 3, (dbcr1 >> 24) & 3, msr, _MSR_IS)):
                bits |= DBSR_IAC2
            return bits
        if not dbcr0 & DBCR0_IAC1 or not _qualifier_ok(dbcr1 >> 30, (dbcr1 >> 28) & 3, msr, _MSR_IS):
            return 0
        if _address_matches(mode, pc, 4, self.iac1 & ~3, self.iac2 & ~3):
            # Book E: a range/mask match is reported on IAC1 (and IAC2 if also enabled).
            bits = DBSR_IAC1 | (DBSR_IAC2 if dbcr0 & DBCR0_IAC2 else 0)
        return bits

    def dac_enabled(self) -> bool:
        return self.idm and bool(self.dbcr0 & (DBCR0_DAC1R | DBCR0_DAC1W | DBCR0_DAC2R | DBCR0_DAC2W))

    def dac_mode(self) -> int:
        return (self.dbcr2 & DBCR2_DAC12M) >> 22

    def dac_page_ranges(self) -> list[tuple[int, int]] | None:
        """EA ranges [start, end) the guest DACs can match, or None when any address may match."""
        if not self.dac_enabled():
            return []
        mode = self.dac_mode()
        if mode == _MODE_EXACT:
            ranges = []
            if self.dbcr0 & (DBCR0_DAC1R | DBCR0_DAC1W):
                ranges.append((self.dac1, self.dac1 + 1))
            if self.dbcr0 & (DBCR0_DAC2R | DBCR0_DAC2W):
                ranges.append((self.dac2, self.dac2 + 1))
            return ranges
        if mode == _MODE_RANGE_IN and self.dac1 < self.dac2:
            return [(self.dac1, self.dac2)]
        return None

    def dac_hits(self, ea: int, size: int, is_write: bool, msr: int) -> int:
        """DBSR bits of the DAC events an access of ``size`` bytes at ``ea`` raises (0 for none).

        Exact mode matches when the DAC address is one of the bytes accessed (the e500 manual's
        exact byte-lane rule is UNVERIFIED; this is the behaviour a debugger user expects).
        """
        if not self.idm:
            return 0
        dbcr0, dbcr2 = self.dbcr0, self.dbcr2
        enable1 = DBCR0_DAC1W if is_write else DBCR0_DAC1R
        enable2 = DBCR0_DAC2W if is_write else DBCR0_DAC2R
        mode = (dbcr2 & DBCR2_DAC12M) >> 22
        bits = 0
        if mode == _MODE_EXACT:
            if (dbcr0 & enable1 and ea <= self.dac1 < ea + size
                    and _qualifier_ok(dbcr2 >> 30, (dbcr2 >> 28) & 3, msr, _MSR_DS)):
                bits |= enable1
            if (dbcr0 & enable2 and ea <= self.dac2 < ea + size
                    and _qualifier_ok((dbcr2 >> 26) & 3, (dbcr2 >> 24) & 3, msr, _MSR_DS)):
                bits |= enable2
            return bits
        if not dbcr0 & enable1 or not _qualifier_ok(dbcr2 >> 30, (dbcr2 >> 28) & 3, msr, _MSR_DS):
            return 0
        if _address_matches(mode, ea, size, self.dac1, self.dac2):
            bits = enable1
        return bits


def _address_matches(mode: int, ea: int, size: int, first: int, second: int) -> bool:
    """Book E paired-comparator modes: mask (second is the mask), inclusive and exclusive range."""
    last = ea + size - 1
    if mode == _MODE_MASK:
        return (ea & second) == (first & second)
    if mode == _MODE_RANGE_IN:
        return ea < second and last >= first
    return ea < first or last >= second

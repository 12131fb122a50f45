"""The e500 memory-management unit (MMU v1): TLB0, TLB1, the MAS registers and address translation.

What it models (reference e500-core.md section 5, QEMU ``target/ppc/mmu_helper.c`` BookE 2.06 helpers):

- TLB0: 512 entries, 4-way set associative, 128 sets, 4 KB pages only; the set is ``(EA >> 12) & 0x7F``.
  The next-victim hint (MAS0[NV]) is a round-robin counter kept **per set** (choice: the brief asks for
  it; QEMU and KVM keep one global counter). A TLB miss interrupt proposes ``ESEL = hint`` and
  ``NV = hint + 1`` and advances the hint; a ``tlbsx`` miss proposes the same but leaves the hint;
  ``tlbwe`` to TLB0 loads the set's hint from MAS0[NV].
- TLB1: fully associative, 16 entries (e500v2) or 64 (e500mc, as QEMU), variable page size 4^TSIZE KB
  (TSIZE 1..11 on e500v2; QEMU accepts up to 12), IPROT.
- Same config registers as QEMU: TLB0CFG 0x04110200 on both models, TLB1CFG 0x101CC010 (e500v2) /
  0x401CC040 (e500mc), MMUCFG 0 (QEMU leaves it zero; real e500v2 silicon reports NPIDS/PIDSIZE/RASIZE).
- PID0-2 on both models (QEMU registers three PIDs for e500mc too; the real e500mc has PID0 only,
  UNVERIFIED). PIDs and TIDs are 8 bits.
- 36-bit physical addresses: MAS7 holds PA bits 32-35. ``tlbre``/``tlbsx`` update MAS7 only when
  HID0[EN_MAS7_UPDATE] (0x80) is set on e500v2 (RM 12.4.1); on e500mc MAS7 is always updated
  (UNVERIFIED; QEMU always updates it). HID0 is therefore stored here (see ``handles_spr``).
- Multiple matching entries are a programming error on e500 (RM: undefined result). Like QEMU, the first
  match wins, searching TLB0 (ways 0..3 of the set) before TLB1 (lowest index first). The first entry
  that matches EPN/TS/TID decides: a permission failure there is a ProtectionFault even if a later entry
  would allow the access.
- An invalid TLB1 page size written with V=1 raises a program interrupt (ESR[PIL]), as QEMU does;
  TLB0 entries are forced to 4 KB and never keep IPROT.

Translation results are cached per 4 KB page in a dict keyed by ``(EA >> 12) | TS << 20``; the cache is
cleared whenever ``generation`` changes (tlbwe, tlbivax, MMUCSR0 flash invalidate, PID writes, reset).
``take_changed_spans`` tells the core which EA pages those changes can have touched, so it keeps the
code and data page caches of every other page.

Imports: standard library, :mod:`emulator.models` (MSR bits) and :mod:`emulator.exceptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from emulator.exceptions import ESR_PIL, IVOR_PROGRAM, Interrupt
from emulator.models import MSR_DS, MSR_IS, MSR_PR

# --- SPR numbers owned by the MMU (reference 5.1) ---------------------------------------------------
SPR_PID0 = 48
SPR_MAS0 = 624
SPR_MAS1 = 625
SPR_MAS2 = 626
SPR_MAS3 = 627
SPR_MAS4 = 628
SPR_MAS6 = 630
SPR_PID1 = 633
SPR_PID2 = 634
SPR_TLB0CFG = 688
SPR_TLB1CFG = 689
SPR_MAS7 = 944
SPR_HID0 = 1008
SPR_MMUCSR0 = 1012
SPR_MMUCFG = 1015

# --- Register fields (reference 5.2) -----------------------------------------------------------------
MAS0_TLBSEL = 0x10000000
MAS0_ESEL_SHIFT = 16
MAS0_ESEL_MASK = 0x0FFF0000  # Book3E width; the entry index is then reduced modulo the TLB's ways
MAS0_NV_MASK = 0x00000FFF
MAS1_V = 0x80000000
MAS1_IPROT = 0x40000000
MAS1_TID_SHIFT = 16
MAS1_TID_MASK = 0x00FF0000
MAS1_TS = 0x00001000
MAS1_TSIZE_SHIFT = 8
MAS1_TSIZE_MASK = 0x00000F00
MAS1_TSIZE_RESERVED_BIT = 0x00000080  # odd Book3E size code: an invalid size for MMU v1
MAS2_EPN_MASK = 0xFFFFF000
MAS2_ATTRIBUTES = 0x0000007F  # X0 X1 W I M G E
MAS2_WIMGE = 0x0000001F
MAS3_RPN_MASK = 0xFFFFF000
MAS3_USER_BITS = 0x000003C0  # U0-U3
MAS3_UX = 0x20
MAS3_SX = 0x10
MAS3_UW = 0x08
MAS3_SW = 0x04
MAS3_UR = 0x02
MAS3_SR = 0x01
MAS3_PERMISSIONS = 0x3F
MAS4_TLBSELD = 0x10000000
MAS4_TIDSELD_SHIFT = 16
MAS4_TIDSELD_MASK = 0x00030000
MAS4_TSIZED_MASK = 0x00000F00
MAS4_DEFAULT_ATTRIBUTES = 0x0000007F  # X0D X1D WD ID MD GD ED
MAS6_SPID_SHIFT = 16
MAS6_SPID_MASK = 0x00FF0000
MAS6_SAS = 0x00000001
MAS7_RPN_HIGH_MASK = 0x0000000F
MMUCSR0_TLB0FI = 0x4
MMUCSR0_TLB1FI = 0x2
HID0_EN_MAS7_UPDATE = 0x00000080
PID_MASK = 0xFF

TLB0_WAYS = 4
TLB0_SETS = 128
TLB0_TSIZE = 1  # 4 KB
TLBIVAX_TLB1 = 0x8
TLBIVAX_ALL = 0x4

PAGE_SHIFT = 12
PAGE_OFFSET_MASK = 0xFFF
_TS_CACHE_BIT = 1 << 20      # cache key: page number (20 bits) | TS
_CACHE_LIMIT = 8192          # pages kept before the cache is dropped wholesale


class Access(IntEnum):
    """The kind of access being translated (selects MSR[IS] vs MSR[DS] and the permission bit)."""

    FETCH = 0
    READ = 1
    WRITE = 2


class TlbMiss(Exception):
    """No valid TLB entry matches the effective address (instruction/data TLB error interrupt)."""


class ProtectionFault(Exception):
    """A matching entry exists but its permission bits deny the access (ISI/DSI)."""


# Permission bit required, indexed by access + 3 * MSR[PR].
_REQUIRED_PERMISSION = (MAS3_SX, MAS3_SR, MAS3_SW, MAS3_UX, MAS3_UR, MAS3_UW)


@dataclass(frozen=True)
class MmuConfig:
    """Per-model MMU geometry and the read-only configuration registers QEMU reports."""

    tlb1_entries: int
    tlb0cfg: int
    tlb1cfg: int
    mmucfg: int
    max_tsize: int            # largest MMU v1 TSIZE accepted by tlbwe (QEMU: TLB1CFG[MAXSIZE])
    mas7_update_needs_hid0: bool


MMU_CONFIGS: dict[str, MmuConfig] = {
    "e500v2": MmuConfig(tlb1_entries=16, tlb0cfg=0x04110200, tlb1cfg=0x101CC010, mmucfg=0,
                        max_tsize=12, mas7_update_needs_hid0=True),
    "e500mc": MmuConfig(tlb1_entries=64, tlb0cfg=0x04110200, tlb1cfg=0x401CC040, mmucfg=0,
                        max_tsize=12, mas7_update_needs_hid0=False),
}


def tsize_to_bytes(tsize: int) -> int:
    """MMU v1 page size: TSIZE n means 4^n KB."""
    return 1024 << (2 * tsize)


@dataclass(frozen=True)
class TlbEntryView:
    """One valid TLB entry, decoded for a ``monitor info tlb`` listing."""

    tlb: int                  # 0 or 1
    index: int                # TLB1: entry number; TLB0: set * 4 + way
    epn: int                  # effective page address
    pa: int                   # 36-bit physical page address
    size: int                 # bytes
    tid: int
    ts: int
    iprot: bool
    wimge: int
    permissions: int          # MAS3 UX SX UW SW UR SR bits

    def permission_text(self) -> str:
        """The permission bits as a fixed-width string, e.g. ``"SR SW SX UR -- --"``."""
        names = (("SR", MAS3_SR), ("SW", MAS3_SW), ("SX", MAS3_SX),
                 ("UR", MAS3_UR), ("UW", MAS3_UW), ("UX", MAS3_UX))
        return " ".join(name if self.permissions & bit else "--" for name, bit in names)

    def describe(self) -> str:
        """One line: ``TLB1[0] EA 0x00000000 -> PA 0x000000000 size 64 MiB TID 0 TS 0 WIMGE ...``."""
        return (f"TLB{self.tlb}[{self.index}] EA {self.epn:#010x} -> PA {self.pa:#011x}"
                f" size {_size_text(self.size)} TID {self.tid} TS {self.ts} WIMGE {self.wimge:#04x}"
                f" {self.permission_text()}{' IPROT' if self.iprot else ''}")


def _size_text(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


class _ModelLike(Protocol):
    @property
    def name(self) -> str: ...


class _TlbEntry:
    """One TLB slot: the raw MAS images plus the fields translation needs, decoded once on write."""

    __slots__ = ("epn", "iprot", "mas1", "mas2", "mas3", "mas7", "offset_mask", "pa_base", "permissions",
                 "tid", "ts", "valid")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.load(0, 0, 0, 0)

    def load(self, mas1: int, mas2: int, mas3: int, mas7: int) -> None:
        self.mas1 = mas1
        self.mas2 = mas2
        self.mas3 = mas3
        self.mas7 = mas7
        self.valid = bool(mas1 & MAS1_V)
        self.iprot = bool(mas1 & MAS1_IPROT)
        self.tid = (mas1 & MAS1_TID_MASK) >> MAS1_TID_SHIFT
        self.ts = 1 if mas1 & MAS1_TS else 0
        size = tsize_to_bytes((mas1 & MAS1_TSIZE_MASK) >> MAS1_TSIZE_SHIFT)
        self.offset_mask = size - 1
        self.epn = mas2 & MAS2_EPN_MASK & ~self.offset_mask
        self.pa_base = ((mas7 << 32) | (mas3 & MAS3_RPN_MASK)) & ~self.offset_mask
        self.permissions = mas3 & MAS3_PERMISSIONS

    def span(self) -> tuple[int, int]:
        """(first EA page number, page count) this entry maps."""
        return self.epn >> PAGE_SHIFT, (self.offset_mask + 1) >> PAGE_SHIFT

    def invalidate(self) -> None:
        self.load(self.mas1 & ~MAS1_V, self.mas2, self.mas3, self.mas7)


class Mmu:
    """TLB0/TLB1, the MAS/PID/MMU configuration SPRs, and EA -> 36-bit PA translation.

    ``model`` is a :class:`emulator.models.CpuModel` or a model name (``"e500v2"``/``"e500mc"``).
    """

    def __init__(self, model: _ModelLike | str = "e500v2") -> None:
        self.model_name = model if isinstance(model, str) else model.name
        try:
            self.config = MMU_CONFIGS[self.model_name]
        except KeyError:
            raise ValueError(f"unknown e500 model {self.model_name!r}") from None
        self.tlb0 = [_TlbEntry() for _ in range(TLB0_SETS * TLB0_WAYS)]
        self.tlb1 = [_TlbEntry() for _ in range(self.config.tlb1_entries)]
        self.generation = 0
        self._translation_cache: dict[int, tuple[int, int]] = {}
        # EA page spans (first page, page count) whose translation may have changed since the owner
        # last took them (take_changed_spans); None: any translation may have.
        self._changed_spans: list[tuple[int, int]] | None = None
        self.reset()

    # --- state -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on state: every entry invalid (IPROT too), MAS/PID/HID0 zero, victim hints zero.

        The board installs the boot mapping afterwards (``set_entry``).
        """
        for entry in self.tlb0:
            entry.clear()
        for entry in self.tlb1:
            entry.clear()
        self.mas0 = self.mas1 = self.mas2 = self.mas3 = self.mas4 = self.mas6 = self.mas7 = 0
        self.pid = [0, 0, 0]
        self.hid0 = 0
        self.tlb0_victim_hint = [0] * TLB0_SETS
        self._refresh_pids()
        self._tlb1_valid: list[_TlbEntry] = []
        self._changed()

    def _changed(self, spans: list[tuple[int, int]] | None = None) -> None:
        """Some translation may have changed (within ``spans`` of EA pages, or anywhere): bump the
        generation, drop cached results."""
        if spans is None or self._changed_spans is None:
            self._changed_spans = None
        else:
            self._changed_spans += spans
        self.generation += 1
        self._translation_cache.clear()
        self._tlb1_valid = [entry for entry in self.tlb1 if entry.valid]

    def take_changed_spans(self) -> list[tuple[int, int]] | None:
        """The EA page spans (first page, page count) whose translation may have changed since the
        last call, and forget them; None when any may have (PID or MMUCSR0 writes, reset, set_entry).
        A span covers the old and the new mapping of each entry written or invalidated, so a page
        outside every span translates as it did, whatever the address space or PID."""
        spans, self._changed_spans = self._changed_spans, []
        return spans

    def _refresh_pids(self) -> None:
        # TID 0 matches every PID, so it is always in the matching set.
        self._matching_tids = frozenset((0, *self.pid))

    # --- translation -------------------------------------------------------------------------------
    def translate(self, ea: int, access: Access, msr: int) -> int:
        """Translate a 32-bit EA to a 36-bit PA; raise TlbMiss or ProtectionFault."""
        # Access.FETCH is 0: instruction fetches use MSR[IS], data accesses MSR[DS].
        key = (ea >> PAGE_SHIFT) | (_TS_CACHE_BIT if msr & (MSR_DS if access else MSR_IS) else 0)
        cached = self._translation_cache.get(key)
        if cached is None:
            cached = self._walk(ea, 1 if key & _TS_CACHE_BIT else 0)
            if len(self._translation_cache) >= _CACHE_LIMIT:
                self._translation_cache.clear()
            self._translation_cache[key] = cached
        page_pa, permissions = cached
        if not permissions & _REQUIRED_PERMISSION[access + (3 if msr & MSR_PR else 0)]:
            raise ProtectionFault(ea)
        return page_pa | (ea & PAGE_OFFSET_MASK)

    def _walk(self, ea: int, ts: int) -> tuple[int, int]:
        """Search TLB0 then TLB1; return (PA of the 4 KB page holding ea, permission bits)."""
        entry = self._find(ea, ts, self._matching_tids)
        if entry is None:
            raise TlbMiss(ea)
        page_ea = ea & ~PAGE_OFFSET_MASK
        return entry.pa_base | (page_ea & entry.offset_mask), entry.permissions

    def _find(self, ea: int, ts: int, tids: frozenset[int]) -> _TlbEntry | None:
        first = ((ea >> PAGE_SHIFT) & (TLB0_SETS - 1)) * TLB0_WAYS
        for entry in self.tlb0[first:first + TLB0_WAYS]:
            if (entry.valid and entry.ts == ts and entry.tid in tids
                    and (ea & ~entry.offset_mask) == entry.epn):
                return entry
        for entry in self._tlb1_valid:
            if entry.ts == ts and entry.tid in tids and (ea & ~entry.offset_mask) == entry.epn:
                return entry
        return None

    def _find_slot(self, ea: int, ts: int, tids: frozenset[int]) -> tuple[int, int] | None:
        """Like ``_find`` (same search order) but returns (TLB number, slot index)."""
        entry = self._find(ea, ts, tids)
        if entry is None:
            return None
        first = ((ea >> PAGE_SHIFT) & (TLB0_SETS - 1)) * TLB0_WAYS
        for slot in range(first, first + TLB0_WAYS):
            if self.tlb0[slot] is entry:
                return 0, slot
        return 1, next(i for i, candidate in enumerate(self.tlb1) if candidate is entry)

    # --- SPRs --------------------------------------------------------------------------------------
    def handles_spr(self, spr: int) -> bool:
        """True for the SPRs this MMU owns (MAS0-4,6,7, PID0-2, MMUCSR0, MMUCFG, TLBnCFG, HID0)."""
        return spr in _MMU_SPRS

    def read_spr(self, spr: int) -> int:
        if spr == SPR_MAS0:
            return self.mas0
        if spr == SPR_MAS1:
            return self.mas1
        if spr == SPR_MAS2:
            return self.mas2
        if spr == SPR_MAS3:
            return self.mas3
        if spr == SPR_MAS4:
            return self.mas4
        if spr == SPR_MAS6:
            return self.mas6
        if spr == SPR_MAS7:
            return self.mas7
        if spr == SPR_PID0:
            return self.pid[0]
        if spr == SPR_PID1:
            return self.pid[1]
        if spr == SPR_PID2:
            return self.pid[2]
        if spr == SPR_HID0:
            return self.hid0
        if spr == SPR_MMUCSR0:
            return 0  # flash-invalidate bits self-clear at once
        if spr == SPR_MMUCFG:
            return self.config.mmucfg
        if spr == SPR_TLB0CFG:
            return self.config.tlb0cfg
        if spr == SPR_TLB1CFG:
            return self.config.tlb1cfg
        raise KeyError(f"SPR {spr} is not an MMU register")

    def write_spr(self, spr: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if spr == SPR_MAS0:
            self.mas0 = value
        elif spr == SPR_MAS1:
            self.mas1 = value
        elif spr == SPR_MAS2:
            self.mas2 = value
        elif spr == SPR_MAS3:
            self.mas3 = value
        elif spr == SPR_MAS4:
            self.mas4 = value
        elif spr == SPR_MAS6:
            self.mas6 = value
        elif spr == SPR_MAS7:
            self.mas7 = value
        elif spr in (SPR_PID0, SPR_PID1, SPR_PID2):
            self.pid[(SPR_PID0, SPR_PID1, SPR_PID2).index(spr)] = value & PID_MASK
            self._refresh_pids()
            self._changed()
        elif spr == SPR_HID0:
            self.hid0 = value
        elif spr == SPR_MMUCSR0:
            self._flash_invalidate(value)
        elif spr in (SPR_MMUCFG, SPR_TLB0CFG, SPR_TLB1CFG):
            pass  # read-only configuration registers
        else:
            raise KeyError(f"SPR {spr} is not an MMU register")

    def _flash_invalidate(self, value: int) -> None:
        if value & MMUCSR0_TLB0FI:
            self._invalidate_all(self.tlb0)
        if value & MMUCSR0_TLB1FI:
            self._invalidate_all(self.tlb1)
        self._changed()

    @staticmethod
    def _invalidate_all(tlb: list[_TlbEntry]) -> None:
        for entry in tlb:
            if entry.valid and not entry.iprot:
                entry.invalidate()

    # --- TLB management instructions --------------------------------------------------------------
    def _selected_slot(self) -> tuple[int, int]:
        """(TLB number, slot index) addressed by MAS0[TLBSEL,ESEL] and, for TLB0, MAS2[EPN]."""
        esel = (self.mas0 & MAS0_ESEL_MASK) >> MAS0_ESEL_SHIFT
        if self.mas0 & MAS0_TLBSEL:
            return 1, esel % len(self.tlb1)
        tlb0_set = (self.mas2 >> PAGE_SHIFT) & (TLB0_SETS - 1)
        return 0, tlb0_set * TLB0_WAYS + (esel & (TLB0_WAYS - 1))

    def _mas7_updates(self) -> bool:
        return not self.config.mas7_update_needs_hid0 or bool(self.hid0 & HID0_EN_MAS7_UPDATE)

    def tlbwe(self) -> None:
        """Write MAS1/2/3/7 into the entry MAS0 selects (raises a program interrupt for a bad size)."""
        tlb_number, slot = self._selected_slot()
        mas1 = self.mas1
        if tlb_number == 0:
            # TLB0 has a fixed 4 KB page size and no IPROT (TLB0CFG[AVAIL]=0, [IPROT]=0).
            mas1 = (mas1 & ~(MAS1_TSIZE_MASK | MAS1_IPROT | MAS1_TSIZE_RESERVED_BIT)) | (
                TLB0_TSIZE << MAS1_TSIZE_SHIFT)
            self.tlb0_victim_hint[slot // TLB0_WAYS] = (self.mas0 & MAS0_NV_MASK) & (TLB0_WAYS - 1)
            entry = self.tlb0[slot]
        else:
            tsize = (mas1 & MAS1_TSIZE_MASK) >> MAS1_TSIZE_SHIFT
            if mas1 & MAS1_V and (mas1 & MAS1_TSIZE_RESERVED_BIT or not 1 <= tsize <= self.config.max_tsize):
                raise Interrupt(IVOR_PROGRAM, esr=ESR_PIL)
            entry = self.tlb1[slot]
        mas1 &= MAS1_V | MAS1_IPROT | MAS1_TID_MASK | MAS1_TS | MAS1_TSIZE_MASK
        spans = [entry.span()] if entry.valid else []
        entry.load(mas1, self.mas2 & (MAS2_EPN_MASK | MAS2_ATTRIBUTES), self.mas3,
                   self.mas7 & MAS7_RPN_HIGH_MASK)
        # EPN bits inside the page are discarded, as QEMU does (tlbre shows the aligned EPN).
        entry.mas2 = entry.epn | (entry.mas2 & MAS2_ATTRIBUTES)
        if entry.valid:
            spans.append(entry.span())
        self._changed(spans)

    def _entry_to_mas(self, tlb_number: int, slot: int) -> None:
        entry = (self.tlb1 if tlb_number else self.tlb0)[slot]
        if tlb_number:
            esel = slot
            hint_set = (entry.mas2 >> PAGE_SHIFT) & (TLB0_SETS - 1)
        else:
            esel = slot % TLB0_WAYS
            hint_set = slot // TLB0_WAYS
        self.mas0 = ((MAS0_TLBSEL if tlb_number else 0) | (esel << MAS0_ESEL_SHIFT)
                     | self.tlb0_victim_hint[hint_set])
        self.mas1 = entry.mas1
        self.mas2 = entry.mas2
        self.mas3 = entry.mas3
        if self._mas7_updates():
            self.mas7 = entry.mas7

    def tlbre(self) -> None:
        """Read the entry MAS0 (and MAS2[EPN] for TLB0) selects into MAS0-3 (and MAS7)."""
        self._entry_to_mas(*self._selected_slot())

    def tlbsx(self, ea: int) -> None:
        """Search for ea with TID = MAS6[SPID] (or 0) and TS = MAS6[SAS]; load MAS on hit or miss."""
        spid = (self.mas6 & MAS6_SPID_MASK) >> MAS6_SPID_SHIFT
        sas = self.mas6 & MAS6_SAS
        found = self._find_slot(ea, sas, frozenset((0, spid)))
        if found is not None:
            self._entry_to_mas(*found)
            return
        # Miss: the MAS4 defaults, with the search PID and address space (V=0). The victim hint is
        # only proposed: a search does not consume it (only a TLB error interrupt or tlbwe move it).
        # MAS2[EPN] is the searched page (e500 RM Table 12-15 as issue #22 reads it; UNVERIFIED here);
        # QEMU writes 0 there, KVM's emulation leaves the old EPN (docs/fidelity.md).
        self.mas0 = self._default_mas0(ea, advance=False)
        self.mas1 = ((spid << MAS1_TID_SHIFT) | (MAS1_TS if sas else 0) | (self.mas4 & MAS4_TSIZED_MASK))
        self.mas2 = (ea & MAS2_EPN_MASK) | (self.mas4 & MAS4_DEFAULT_ATTRIBUTES)
        self.mas3 = 0
        if self._mas7_updates():
            self.mas7 = 0

    def _default_mas0(self, ea: int, *, advance: bool = True) -> int:
        """MAS0 proposed on a miss: TLBSEL from MAS4, and for TLB0 the set's victim and next victim.

        ``advance`` (a TLB error interrupt) moves the set's hint on; a ``tlbsx`` miss leaves it.
        """
        tlb0_set = (ea >> PAGE_SHIFT) & (TLB0_SETS - 1)
        victim = self.tlb0_victim_hint[tlb0_set]
        if self.mas4 & MAS4_TLBSELD:
            # TLB1 has no victim hardware: ESEL 0, NV just reports the TLB0 hint (not advanced).
            return MAS0_TLBSEL | victim
        next_victim = (victim + 1) & (TLB0_WAYS - 1)
        if advance:
            self.tlb0_victim_hint[tlb0_set] = next_victim
        return (victim << MAS0_ESEL_SHIFT) | next_victim

    def tlbivax(self, ea: int) -> None:
        """Invalidate by EA (EA&8: TLB1, else TLB0; EA&4: the whole TLB). IPROT entries survive."""
        tlb = self.tlb1 if ea & TLBIVAX_TLB1 else self.tlb0
        if ea & TLBIVAX_ALL:
            self._invalidate_all(tlb)
            self._changed()
            return
        if tlb is self.tlb0:
            first = ((ea >> PAGE_SHIFT) & (TLB0_SETS - 1)) * TLB0_WAYS
            candidates = tlb[first:first + TLB0_WAYS]
        else:
            candidates = tlb
        spans = []
        for entry in candidates:
            if entry.valid and not entry.iprot and (ea & ~entry.offset_mask) == entry.epn:
                spans.append(entry.span())
                entry.invalidate()
        self._changed(spans)

    def tlbilx(self, kind: int, ea: int) -> None:
        """e500mc ``tlbilx`` (Power ISA 2.06 local invalidate) over both TLBs; IPROT entries survive.

        ``kind`` is the instruction's T field: 0 every entry, 1 the entries whose TID equals
        MAS6[SPID] (TID 0 only when SPID is 0), 3 the entries that translate ``ea`` for TID
        MAS6[SPID] or 0, in either address space (the e500mc does not compare MAS6[SAS]). T=2 is an
        illegal form and never reaches here. Same rules as QEMU's BookE 2.06 helpers.
        """
        spid = (self.mas6 & MAS6_SPID_MASK) >> MAS6_SPID_SHIFT
        spans = []
        for entry in (*self.tlb0, *self.tlb1):
            if not entry.valid or entry.iprot:
                continue
            if kind == 1 and entry.tid != spid:
                continue
            if kind == 3 and (entry.tid not in (0, spid) or (ea & ~entry.offset_mask) != entry.epn):
                continue
            spans.append(entry.span())
            entry.invalidate()
        self._changed(spans)

    def load_miss_defaults(self, ea: int, access: Access, msr: int) -> None:
        """Load MAS0-3,6,7 as the e500 does on an instruction/data TLB error interrupt (RM 12.7)."""
        ts = bool(msr & (MSR_IS if access == Access.FETCH else MSR_DS))
        tidseld = (self.mas4 & MAS4_TIDSELD_MASK) >> MAS4_TIDSELD_SHIFT
        tid = self.pid[tidseld] if tidseld < 3 else 0  # TIDSELD=3 selects TIDZ
        self.mas0 = self._default_mas0(ea)
        self.mas1 = (MAS1_V | (tid << MAS1_TID_SHIFT) | (MAS1_TS if ts else 0)
                     | (self.mas4 & MAS4_TSIZED_MASK))
        self.mas2 = (ea & MAS2_EPN_MASK) | (self.mas4 & MAS4_DEFAULT_ATTRIBUTES)
        self.mas3 = 0
        self.mas7 = 0
        self.mas6 = (self.pid[0] << MAS6_SPID_SHIFT) | (MAS6_SAS if ts else 0)

    # --- board / debugger helpers -----------------------------------------------------------------
    def set_entry(self, tlb_number: int, index: int, mas1: int, mas2: int, mas3: int, mas7: int = 0) -> None:
        """Install an entry directly (board boot mapping, tests). ``index`` = TLB1 entry or TLB0 slot."""
        tlb = self.tlb1 if tlb_number else self.tlb0
        tlb[index].load(mas1, mas2, mas3, mas7 & MAS7_RPN_HIGH_MASK)
        self._changed()

    def entries(self) -> list[TlbEntryView]:
        """Every valid entry, TLB0 first, for ``monitor info tlb``."""
        views = []
        for tlb_number, tlb in ((0, self.tlb0), (1, self.tlb1)):
            for index, entry in enumerate(tlb):
                if entry.valid:
                    views.append(TlbEntryView(
                        tlb=tlb_number, index=index, epn=entry.epn, pa=entry.pa_base,
                        size=entry.offset_mask + 1, tid=entry.tid, ts=entry.ts, iprot=entry.iprot,
                        wimge=entry.mas2 & MAS2_WIMGE, permissions=entry.permissions))
        return views


_MMU_SPRS = frozenset({SPR_MAS0, SPR_MAS1, SPR_MAS2, SPR_MAS3, SPR_MAS4, SPR_MAS6, SPR_MAS7, SPR_PID0,
                       SPR_PID1, SPR_PID2, SPR_HID0, SPR_MMUCSR0, SPR_MMUCFG, SPR_TLB0CFG, SPR_TLB1CFG})

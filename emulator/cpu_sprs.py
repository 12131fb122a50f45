"""The core's SPR access tables: per model, a reader and a writer for each SPR it implements.

Plain SPRs are storage in ``cpu.sprs``; the others have their behaviour here (IVOR/IVPR masks, w1c
MCSR and DBSR, self-clearing cache commands, the time base and timers, the debug registers, the MMU's
registers). ``read_spr``/``write_spr`` are the debugger's access (no privilege check, never raises);
``spr_read_source`` gives batch readers an inline expression per SPR.

A room of :class:`emulator.cpu.Cpu` (a mixin: the state it works on is the core's, declared in
:class:`emulator.cpu_types.CoreRoom`). Imports: standard library and the emulator core modules.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.cpu_types import CoreRoom
from emulator.debug import SPR_DAC1, SPR_DAC2, SPR_DBCR0, SPR_DBCR1, SPR_DBCR2, SPR_DBSR, SPR_IAC1, SPR_IAC2
from emulator.isa import XER_WRITABLE
from emulator.sprs import (
    SPR_ATBL,
    SPR_ATBU,
    SPR_BBEAR,
    SPR_BBTAR,
    SPR_BUCSR,
    SPR_CSRR0,
    SPR_CSRR1,
    SPR_CTR,
    SPR_DEAR,
    SPR_DSRR0,
    SPR_DSRR1,
    SPR_EPCR,
    SPR_EPLC,
    SPR_EPR,
    SPR_EPSC,
    SPR_ESR,
    SPR_HID1,
    SPR_IVPR,
    SPR_L1CFG0,
    SPR_L1CFG1,
    SPR_L1CSR0,
    SPR_L1CSR1,
    SPR_L2CSR0,
    SPR_LPIDR,
    SPR_LR,
    SPR_MCAR,
    SPR_MCSR,
    SPR_MCSRR0,
    SPR_MCSRR1,
    SPR_MSRP,
    SPR_PIR,
    SPR_PVR,
    SPR_SPEFSCR,
    SPR_SPRG0,
    SPR_SPRG3R,
    SPR_SPRG8,
    SPR_SPRG9,
    SPR_SRR0,
    SPR_SRR1,
    SPR_USPRG0,
    SPR_XER,
    ivor_spr,
)
from emulator.timers import (
    SPR_DEC,
    SPR_DECAR,
    SPR_TBL_READ,
    SPR_TBL_WRITE,
    SPR_TBU_READ,
    SPR_TBU_WRITE,
    SPR_TCR,
    SPR_TSR,
)

# What these registers keep of a write, and the self-clearing command bits, as QEMU 7.2 does.
_EPID_CONTEXT_MASK = 0xC00000FF              # EPR | EAS | EPID
_L2CSR0_COMMANDS = 0x00200C00                # L2FI | L2FL | L2LFC complete at once


class SprAccess(CoreRoom):
    """The SPR access room of the core (see the module docstring)."""

    def _build_spr_table(self) -> None:
        """Per-model SPR readers/writers. Plain SPRs are storage in ``self.sprs``."""
        model = self.model
        plain = [SPR_SRR0, SPR_SRR1, SPR_CSRR0, SPR_CSRR1, SPR_DEAR, SPR_ESR, SPR_IVPR, SPR_USPRG0,
                 *range(SPR_SPRG0, SPR_SPRG0 + 8), SPR_PIR, SPR_MCSRR0, SPR_MCSRR1, SPR_MCAR,
                 SPR_DSRR0, SPR_DSRR1, SPR_HID1, SPR_L1CSR0, SPR_L1CSR1, SPR_BUCSR,
                 SPR_BBEAR, SPR_BBTAR, SPR_SPRG8, SPR_SPRG9, SPR_EPLC, SPR_EPSC]
        if model.has_l2csr0:
            plain.append(SPR_L2CSR0)
        for ivor in model.ivors:
            plain.append(ivor_spr(ivor))
        if model.has_hypervisor:
            plain += [SPR_EPCR, SPR_MSRP, SPR_LPIDR]
        self._plain_sprs = plain
        readers: dict[int, Callable[[], int]] = {}
        writers: dict[int, Callable[[int], None]] = {}
        sprs_of = self._sprs_view
        for spr in plain:
            readers[spr] = (lambda n: lambda: sprs_of()[n])(spr)
            writers[spr] = (lambda n: lambda v: sprs_of().__setitem__(n, v))(spr)
        # SPR -> a Python expression over `cpu` that reads it like its reader (see spr_read_source).
        sources = {spr: f"(cpu.sprs[{spr}] & 0xFFFFFFFF)" for spr in plain}
        storage_readers = dict(readers)
        for offset in range(5):
            readers[SPR_SPRG3R + offset] = (lambda n: lambda: sprs_of()[n])(SPR_SPRG0 + 3 + offset)
        # IVPR and IVORs: low bits are not implemented.
        writers[SPR_IVPR] = lambda v: sprs_of().__setitem__(SPR_IVPR, v & 0xFFFF0000)
        ivors_set = self._ivors_set_view
        for ivor in model.ivors:
            spr = ivor_spr(ivor)

            def write_ivor(value: int, spr: int = spr, ivor: int = ivor) -> None:
                sprs_of()[spr] = value & 0xFFF0
                ivors_set().add(ivor)
            writers[spr] = write_ivor
        writers[SPR_ESR] = lambda v: sprs_of().__setitem__(SPR_ESR, v)
        readers[SPR_MCSR] = lambda: sprs_of()[SPR_MCSR]
        writers[SPR_MCSR] = lambda v: sprs_of().__setitem__(SPR_MCSR, sprs_of()[SPR_MCSR] & ~v)  # w1c
        plain.append(SPR_MCSR)
        # L1CSRn[CFI] and [CLFC] are self-clearing commands.
        writers[SPR_L1CSR0] = lambda v: sprs_of().__setitem__(SPR_L1CSR0, v & ~0x00000102)
        writers[SPR_L1CSR1] = lambda v: sprs_of().__setitem__(SPR_L1CSR1, v & ~0x00000102)
        if model.has_l2csr0:
            writers[SPR_L2CSR0] = lambda v: sprs_of().__setitem__(SPR_L2CSR0, v & ~_L2CSR0_COMMANDS)
        for spr in (SPR_EPLC, SPR_EPSC):
            writers[spr] = (lambda n: lambda v: sprs_of().__setitem__(n, v & _EPID_CONTEXT_MASK))(spr)
        readers[SPR_EPR] = lambda: sprs_of()[SPR_EPR]
        # User-level registers.
        readers[SPR_XER] = lambda: self.xer
        writers[SPR_XER] = lambda v: setattr(self, "xer", v & XER_WRITABLE)
        readers[SPR_LR] = lambda: self.lr
        writers[SPR_LR] = lambda v: setattr(self, "lr", v)
        readers[SPR_CTR] = lambda: self.ctr
        writers[SPR_CTR] = lambda v: setattr(self, "ctr", v)
        if model.has_spe:
            readers[SPR_SPEFSCR] = lambda: self.spefscr
            writers[SPR_SPEFSCR] = lambda v: setattr(self, "spefscr", v)
        # Identification.
        readers[SPR_PVR] = lambda: model.pvr
        readers[1023] = lambda: model.svr
        readers[SPR_L1CFG0] = lambda: model.l1cfg0
        readers[SPR_L1CFG1] = lambda: model.l1cfg1
        # Timers.
        timers = self.timers
        readers[SPR_TBL_READ] = lambda: timers.tb(self.cycles) & 0xFFFFFFFF
        readers[SPR_TBU_READ] = lambda: timers.tb(self.cycles) >> 32
        readers[SPR_ATBL] = readers[SPR_TBL_READ]
        readers[SPR_ATBU] = readers[SPR_TBU_READ]
        writers[SPR_TBL_WRITE] = self._timer_writer(timers.write_tbl)
        writers[SPR_TBU_WRITE] = self._timer_writer(timers.write_tbu)
        readers[SPR_DEC] = lambda: timers.dec(self.cycles)
        writers[SPR_DEC] = self._timer_writer(timers.write_dec)
        writers[SPR_DECAR] = self._timer_writer(timers.write_decar)
        readers[SPR_TCR] = lambda: timers.tcr
        writers[SPR_TCR] = self._timer_writer(timers.write_tcr)
        readers[SPR_TSR] = self._read_tsr
        writers[SPR_TSR] = self._timer_writer(timers.write_tsr)
        # Debug (guest-owned copy, see emulator.debug).
        for spr, name in ((SPR_DBCR0, "dbcr0"), (SPR_DBCR1, "dbcr1"), (SPR_DBCR2, "dbcr2"),
                          (SPR_IAC1, "iac1"), (SPR_IAC2, "iac2"), (SPR_DAC1, "dac1"), (SPR_DAC2, "dac2"),
                          (SPR_DBSR, "dbsr")):
            readers[spr] = (lambda attr: lambda: getattr(self.guest_debug, attr))(name)
            writers[spr] = self._debug_writer(name)
            sources[spr] = f"(cpu.guest_debug.{name} & 0xFFFFFFFF)"
        # MMU registers are the MMU's.
        mmu = self.mmu
        for spr in range(1024):
            if spr not in readers and mmu.handles_spr(spr):
                readers[spr] = (lambda n: lambda: mmu.read_spr(n))(spr)
                writers[spr] = self._mmu_writer(spr)
                sources[spr] = f"(cpu.mmu.read_spr({spr}) & 0xFFFFFFFF)"
        self.spr_readers = readers
        self.spr_writers = writers
        for spr, reader in storage_readers.items():
            if readers[spr] is not reader:      # a plain SPR given another reader after all
                sources.pop(spr, None)
        self._spr_sources = sources

    def spr_read_source(self, spr: int) -> str:
        """A Python expression over ``cpu`` that reads ``spr`` as :meth:`read_spr` does, without its
        dispatch (for code that reads many registers at once, like the debugger's ``g``)."""
        return self._spr_sources.get(spr, f"cpu.read_spr({spr})")

    def _sprs_view(self) -> dict[int, int]:
        return self.sprs

    def _ivors_set_view(self) -> set[int]:
        return self.ivors_set

    _ivor_spr = staticmethod(ivor_spr)

    def _read_tsr(self) -> int:
        # Status bits of events up to this instruction, even between two event boundaries.
        self.timers.advance(self.cycles)
        return self.timers.tsr

    def _timer_writer(self, write: Callable[[int, int], None]) -> Callable[[int], None]:
        def write_timer(value: int) -> None:
            write(self.cycles, value)
            self._event_at = 0
        return write_timer

    def _debug_writer(self, name: str) -> Callable[[int], None]:
        def write_debug(value: int) -> None:
            guest = self.guest_debug
            if name == "dbsr":
                guest.dbsr &= ~value & 0xFFFFFFFF
            else:
                setattr(guest, name, value & 0xFFFFFFFF)
                self._recompute_debug_state()
            self._event_at = 0
        return write_debug

    def _mmu_writer(self, spr: int) -> Callable[[int], None]:
        def write_mmu(value: int) -> None:
            self.mmu.write_spr(spr, value)
            self.translation_changed()
        return write_mmu

    def read_spr(self, spr: int) -> int:
        """Debugger read: no privilege check; 0 for an unknown SPR."""
        reader = self.spr_readers.get(spr)
        return reader() & 0xFFFFFFFF if reader is not None else 0

    def write_spr(self, spr: int, value: int) -> None:
        """Debugger write: side effects as a guest mtspr (w1c, timers); ignores unknown SPRs."""
        writer = self.spr_writers.get(spr)
        if writer is not None:
            writer(value & 0xFFFFFFFF)

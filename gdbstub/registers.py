"""The one register table of the stub, per CPU model, and everything derived from it.

Each :class:`RegisterDef` says a register's gdb name, size, remote register number (``regnum``, what
``p``/``P`` and the expedited stop-reply fields use), group, XML type, target-description feature and
the key :meth:`emulator.kvm.Vcpu.get_reg` knows it by. From that single table this module generates
target.xml and its feature documents (served by ``qXfer:features:read``), the ``g``/``G`` layout
(every register in regnum order, holes taking no space: gdb's built-in e500 layout up to spefscr /
fpscr, then the Book E SPRs, so one ``g`` answers ``info registers`` with no ``p`` at all) and value
encoding (big-endian, the target byte order).

Numbering follows gdb's own descriptions (reference kvm-qemu-gdb-debug.md 5.2): r0-r31 0-31, ev0h-ev31h
(e500v2) or f0-f31 (e500mc) 32-63, pc msr cr lr ctr xer 64-69, fpscr 70 (e500mc), acc 73 and spefscr 74
(e500v2), Book E SPRs from 75 up. Every register carries an explicit regnum in the XML.

Imports: standard library and :mod:`emulator.models` (model facts).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

from emulator.models import MODELS, CpuModel

FEATURE_CORE = "org.gnu.gdb.power.core"
FEATURE_SPE = "org.gnu.gdb.power.spe"
FEATURE_FPU = "org.gnu.gdb.power.fpu"
FEATURE_SPR = "org.e500gdbstub.booke.spr"

_FEATURE_ANNEX = {
    FEATURE_CORE: "power-core.xml",
    FEATURE_SPE: "power-spe.xml",
    FEATURE_FPU: "power-fpu.xml",
    FEATURE_SPR: "booke-spr.xml",
}

# gdb 13 accepts both names in `set architecture`; powerpc:e500 selects the SPE-aware disassembler.
_ARCHITECTURE = {"e500v2": "powerpc:e500", "e500mc": "powerpc:e500mc"}

_STRUCT_CODES = {32: "I", 64: "Q"}   # register width in bits -> big-endian struct code

REGNUM_PC = 64
REGNUM_MSR = 65
REGNUM_CR = 66
REGNUM_LR = 67
REGNUM_CTR = 68
REGNUM_XER = 69
REGNUM_FPSCR = 70
REGNUM_ACC = 73
REGNUM_SPEFSCR = 74
REGNUM_FIRST_SPR = 75
REGNUM_SP = 1


@dataclass(frozen=True, slots=True)
class RegisterDef:
    name: str
    bits: int
    regnum: int
    group: str | None
    type: str
    feature: str
    key: str

    @property
    def size(self) -> int:
        return self.bits // 8


def _spr_names(model: CpuModel) -> list[str]:
    """Book E / e500 SPRs shown to gdb, in the order they get regnums."""
    names = ["srr0", "srr1", "csrr0", "csrr1", "dsrr0", "dsrr1", "mcsrr0", "mcsrr1", "esr", "dear", "ivpr"]
    names += [f"ivor{n}" for n in sorted(model.ivors)]
    names += ["dbcr0", "dbcr1", "dbcr2", "dbsr"]
    names += [f"iac{n + 1}" for n in range(model.num_iac)]
    names += [f"dac{n + 1}" for n in range(model.num_dac)]
    names += ["tcr", "tsr", "dec", "decar", "tbl", "tbu"]
    names += [f"mas{n}" for n in range(8)]
    names += ["pid0", "pid1", "pid2", "mmucsr0", "hid0", "hid1", "pvr", "svr"]
    names += [f"sprg{n}" for n in range(8)]
    names += ["usprg0", "pir", "l1cfg0", "l1cfg1", "mmucfg", "tlb0cfg", "tlb1cfg"]
    # Appended later (earlier regnums stay put): machine check, cache and branch-unit control, the
    # alternate time base, the e500mc hypervisor registers and the rest of what a boot routine touches.
    names += ["mcsr", "mcar", "l1csr0", "l1csr1", "bucsr", "atbl", "atbu", "bbear", "bbtar",
              "sprg8", "sprg9", "epr", "eplc", "epsc", "epcr", "msrp", "lpidr", "l2csr0"]
    return names


def _build(model: CpuModel, available: frozenset[str] | None) -> list[RegisterDef]:
    regs: list[RegisterDef] = []
    for n in range(32):
        # uint32 for every GPR, r1 included, as in gdb's own power-core.xml (QEMU serves the same file):
        # `info registers` then prints r1 exactly as gdb shows it against QEMU or gdbserver.
        regs.append(RegisterDef(f"r{n}", 32, n, "general", "uint32", FEATURE_CORE, f"r{n}"))
    for regnum, name, reg_type in ((REGNUM_PC, "pc", "code_ptr"), (REGNUM_MSR, "msr", "uint32"),
                                   (REGNUM_CR, "cr", "uint32"), (REGNUM_LR, "lr", "code_ptr"),
                                   (REGNUM_CTR, "ctr", "uint32"), (REGNUM_XER, "xer", "uint32")):
        regs.append(RegisterDef(name, 32, regnum, "general", reg_type, FEATURE_CORE, name))
    if model.has_spe:
        for n in range(32):
            regs.append(RegisterDef(f"ev{n}h", 32, 32 + n, "vector", "int", FEATURE_SPE, f"ev{n}h"))
        regs.append(RegisterDef("acc", 64, REGNUM_ACC, "vector", "int", FEATURE_SPE, "acc"))
        regs.append(RegisterDef("spefscr", 32, REGNUM_SPEFSCR, "vector", "int", FEATURE_SPE, "spefscr"))
    if model.has_fpu:
        for n in range(32):
            regs.append(RegisterDef(f"f{n}", 64, 32 + n, "float", "ieee_double", FEATURE_FPU, f"f{n}"))
        regs.append(RegisterDef("fpscr", 32, REGNUM_FPSCR, "float", "int", FEATURE_FPU, "fpscr"))
    regnum = REGNUM_FIRST_SPR
    for name in _spr_names(model):
        if available is not None and name not in available:
            continue
        regs.append(RegisterDef(name, 32, regnum, "spr", "uint32", FEATURE_SPR, name))
        regnum += 1
    regs.sort(key=lambda reg: reg.regnum)
    return regs


class RegisterTable:
    """All registers of one model plus the layouts and documents derived from them."""

    def __init__(self, model_name: str, available: frozenset[str] | None = None) -> None:
        """``available``: names the vCPU implements (``Vcpu.register_names()``); None = trust the table."""
        model = MODELS[model_name]
        self.model_name = model_name
        self.architecture = _ARCHITECTURE[model_name]
        self.registers: tuple[RegisterDef, ...] = tuple(_build(model, available))
        self.by_regnum: dict[int, RegisterDef] = {reg.regnum: reg for reg in self.registers}
        self.by_name: dict[str, RegisterDef] = {reg.name: reg for reg in self.registers}
        # gdb assigns g offsets in regnum order over the whole description, so the SPRs can ride in
        # the same packet; that saves one `p` round trip per SPR on every `info registers`.
        self.g_registers: tuple[RegisterDef, ...] = self.registers
        self.g_size = sum(reg.size for reg in self.g_registers)
        # One struct for the whole `g` payload: a single pack + hex instead of one encode per register.
        self._g_struct = struct.Struct(">" + "".join(_STRUCT_CODES[reg.bits] for reg in self.g_registers))
        self._g_masks = tuple((1 << reg.bits) - 1 for reg in self.g_registers)
        self.documents: dict[str, bytes] = self._documents()

    def encode(self, reg: RegisterDef, value: int) -> bytes:
        """Value as hex in target (big-endian) byte order."""
        return (value & ((1 << reg.bits) - 1)).to_bytes(reg.size, "big").hex().encode()

    def encode_g(self, values: Sequence[int]) -> bytes:
        """The ``g`` reply payload for ``values`` (one per :attr:`g_registers` entry, in order)."""
        try:
            packed = self._g_struct.pack(*values)
        except struct.error:
            # A value outside its register's width (or negative): mask it like encode() does.
            packed = self._g_struct.pack(*(value & mask for value, mask in zip(values, self._g_masks,
                                                                               strict=True)))
        return packed.hex().encode()

    def decode(self, reg: RegisterDef, hex_value: bytes) -> int:
        """Parse a register value gdb sent in target byte order; ValueError if malformed."""
        if len(hex_value) != reg.size * 2:
            raise ValueError(f"{reg.name}: expected {reg.size * 2} hex digits")
        return int.from_bytes(bytes.fromhex(hex_value.decode("ascii")), "big")

    def split_g(self, data: bytes) -> list[tuple[RegisterDef, int]]:
        """Decode a ``G`` payload's data (raw bytes) into (register, value) pairs."""
        if len(data) != self.g_size:
            raise ValueError(f"G packet carries {len(data)} bytes, layout has {self.g_size}")
        return list(zip(self.g_registers, self._g_struct.unpack(data), strict=True))

    def _documents(self) -> dict[str, bytes]:
        features: dict[str, list[RegisterDef]] = {}
        for reg in self.registers:
            features.setdefault(reg.feature, []).append(reg)
        documents: dict[str, bytes] = {}
        includes = []
        for feature, regs in features.items():
            annex = _FEATURE_ANNEX[feature]
            includes.append(f'  <xi:include href="{annex}"/>\n')
            lines = ['<?xml version="1.0"?>\n<!DOCTYPE feature SYSTEM "gdb-target.dtd">\n',
                     f'<feature name="{feature}">\n']
            for reg in regs:
                group = f' group="{reg.group}"' if reg.group else ""
                lines.append(f'  <reg name="{xml_escape(reg.name)}" bitsize="{reg.bits}" type="{reg.type}"'
                             f' regnum="{reg.regnum}"{group}/>\n')
            lines.append("</feature>\n")
            documents[annex] = "".join(lines).encode()
        documents["target.xml"] = (
            '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            '<target version="1.0">\n'
            f"  <architecture>{self.architecture}</architecture>\n" + "".join(includes) + "</target>\n"
        ).encode()
        return documents

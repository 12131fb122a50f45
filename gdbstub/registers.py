"""gdb's view of the core's register table, per CPU model, and everything derived from it.

The registers, their order, widths and banks are the emulator's one table
(:mod:`emulator.register_table`); this module adds what only gdb cares about. Each
:class:`RegisterDef` says a register's gdb name, size, remote register number (``regnum``, what
``p``/``P`` and the expedited stop-reply fields use), group, XML type, target-description feature and
the key :meth:`emulator.kvm.Vcpu.get_reg` knows it by. From those this module generates
target.xml and its feature documents (served by ``qXfer:features:read``), the ``g``/``G`` layout
(every register in regnum order, holes taking no space: gdb's built-in e500 layout up to spefscr /
fpscr, then the Book E SPRs, so one ``g`` answers ``info registers`` with no ``p`` at all) and value
encoding (big-endian, the target byte order).

Numbering follows gdb's own descriptions (reference kvm-qemu-gdb-debug.md 5.2): r0-r31 0-31, ev0h-ev31h
(e500v2) or f0-f31 (e500mc) 32-63, pc msr cr lr ctr xer 64-69, fpscr 70 (e500mc), acc 73 and spefscr 74
(e500v2), Book E SPRs from 75 up. Every register carries an explicit regnum in the XML.

Imports: standard library and :mod:`emulator.register_table`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from emulator.register_table import Bank, Register, registers_of

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


# gdb's numbers for the core fields and the register-file banks (their first regnum).
_FIXED_REGNUMS = {"pc": REGNUM_PC, "msr": REGNUM_MSR, "cr": REGNUM_CR, "lr": REGNUM_LR, "ctr": REGNUM_CTR,
                  "xer": REGNUM_XER, "fpscr": REGNUM_FPSCR, "acc": REGNUM_ACC, "spefscr": REGNUM_SPEFSCR}
_FILE_BASE = {Bank.GPR: 0, Bank.SPE: 32, Bank.FPU: 32}
# bank -> (group, XML type, feature); pc and lr are code pointers, as in gdb's own power-core.xml.
_PRESENTATION = {
    # uint32 for every GPR, r1 included, as in gdb's own power-core.xml (QEMU serves the same file):
    # `info registers` then prints r1 exactly as gdb shows it against QEMU or gdbserver.
    Bank.GPR: ("general", "uint32", FEATURE_CORE),
    Bank.CORE: ("general", "uint32", FEATURE_CORE),
    Bank.SPE: ("vector", "int", FEATURE_SPE),
    Bank.FPU: ("float", "ieee_double", FEATURE_FPU),
    Bank.SPR: ("spr", "uint32", FEATURE_SPR),
}
_CODE_POINTERS = frozenset({"pc", "lr"})


def _xml_attribute(text: str) -> str:
    """``text`` escaped for a double-quoted XML attribute (xml.sax.saxutils would pull in urllib)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _gdb_view(reg: Register, regnum: int) -> RegisterDef:
    group, reg_type, feature = _PRESENTATION[reg.bank]
    if reg.name in _CODE_POINTERS:
        reg_type = "code_ptr"
    elif reg.index is None and reg.bank is Bank.FPU:
        reg_type = "int"          # fpscr, unlike the f registers
    return RegisterDef(reg.name, reg.bits, regnum, group, reg_type, feature, reg.name)


def _build(model_name: str, available: frozenset[str] | None) -> list[RegisterDef]:
    regs: list[RegisterDef] = []
    next_spr = REGNUM_FIRST_SPR
    for reg in registers_of(model_name):
        if reg.bank is Bank.SPR:
            # SPRs are numbered in table order among those the vCPU has, holes taking no number.
            if available is not None and reg.name not in available:
                continue
            regs.append(_gdb_view(reg, next_spr))
            next_spr += 1
        elif reg.index is not None:
            regs.append(_gdb_view(reg, _FILE_BASE[reg.bank] + reg.index))
        else:
            regs.append(_gdb_view(reg, _FIXED_REGNUMS[reg.name]))
    regs.sort(key=lambda reg: reg.regnum)
    return regs


class RegisterTable:
    """All registers of one model plus the layouts and documents derived from them."""

    def __init__(self, model_name: str, available: frozenset[str] | None = None) -> None:
        """``available``: names the vCPU implements (``Vcpu.register_names()``); None = trust the table."""
        self.model_name = model_name
        self.architecture = _ARCHITECTURE[model_name]
        self.registers: tuple[RegisterDef, ...] = tuple(_build(model_name, available))
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
                name = _xml_attribute(reg.name)
                lines.append(f'  <reg name="{name}" bitsize="{reg.bits}" type="{reg.type}"'
                             f' regnum="{reg.regnum}"{group}/>\n')
            lines.append("</feature>\n")
            documents[annex] = "".join(lines).encode()
        documents["target.xml"] = (
            '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            '<target version="1.0">\n'
            f"  <architecture>{self.architecture}</architecture>\n" + "".join(includes) + "</target>\n"
        ).encode()
        return documents

"""Write minimal 32-bit big-endian PowerPC executables from a list of instruction words.

For tests that need an image with one specific property (an entry outside its segment, a store to
nowhere) that no compiler would produce on purpose. Imports: standard library only.
"""

from __future__ import annotations

import struct
from pathlib import Path

EM_PPC = 20
_EHDR = struct.Struct(">16sHHIIIIIHHHHHH")
_PHDR = struct.Struct(">IIIIIIII")
PT_LOAD = 1
PF_RWX = 7


def write_elf(path: Path, words: list[int], *, base: int = 0x100000, entry: int | None = None) -> Path:
    """One PT_LOAD segment holding ``words`` at ``base``; the entry point is ``base`` unless given."""
    code = b"".join(struct.pack(">I", word) for word in words)
    offset = _EHDR.size + _PHDR.size
    ident = b"\x7fELF" + bytes([1, 2, 1]) + bytes(9)          # ELFCLASS32, big-endian, version 1
    header = _EHDR.pack(ident, 2, EM_PPC, 1, base if entry is None else entry, _EHDR.size, 0, 0,
                        _EHDR.size, _PHDR.size, 1, 40, 0, 0)
    program = _PHDR.pack(PT_LOAD, offset, base, base, len(code), len(code), PF_RWX, 4)
    path.write_bytes(header + program + code)
    return path


def lis(rt: int, value: int) -> int:
    return (15 << 26) | (rt << 21) | (value & 0xFFFF)


def stw(rs: int, displacement: int, ra: int) -> int:
    return (36 << 26) | (rs << 21) | (ra << 16) | (displacement & 0xFFFF)


BRANCH_TO_SELF = 0x48000000    # b .

"""Test helpers shared by the emulator tests: the FlatCpu double and a cross-assembler wrapper.

Imports: the standard library only (the cross tools powerpc-linux-gnu-as/objcopy are run as programs).
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path


@functools.cache
def assemble_lines(lines: tuple[str, ...], cpu_flag: str = "-me500") -> tuple[int, ...]:
    """Assemble one instruction per line with binutils and return the big-endian words, in order."""
    with tempfile.TemporaryDirectory() as directory:
        source, obj, binary = (Path(directory) / name for name in ("a.s", "a.o", "a.bin"))
        source.write_text("\n".join(lines) + "\n")
        assembler = subprocess.run(["powerpc-linux-gnu-as", cpu_flag, "-mbig", "-o", str(obj), str(source)],
                                   capture_output=True, text=True)
        if assembler.returncode:
            raise ValueError(f"assembler rejected the snippet:\n{assembler.stderr}")
        subprocess.run(["powerpc-linux-gnu-objcopy", "-O", "binary", "-j", ".text", str(obj), str(binary)],
                       check=True, capture_output=True)
        data = binary.read_bytes()
    words = tuple(int.from_bytes(data[i:i + 4], "big") for i in range(0, len(data), 4))
    if len(words) != len(lines):
        raise ValueError(f"{len(lines)} lines assembled to {len(words)} words")
    return words


def assemble(line: str) -> int:
    """The word of a single instruction (cached)."""
    return assemble_lines((line,))[0]

"""U-Boot under the stub and gdb-multiarch, after it has relocated itself: the procedure of the
README's "Debugging U-Boot" section, checked end to end.

The stub serves ``-bios uboot.elf``; gdb connects and continues; U-Boot boots to its prompt (its
autoboot finds no kernel and gives up); ``bdinfo`` typed into the stub's stdin (which feeds the UART)
prints ``relocaddr`` and ``reloc off``; gdb is interrupted and loads the image at the relocation
offset with ``add-symbol-file FILE -o OFFSET``. Debian's uboot.elf carries no symbol table, so the
check is on what the offset places: the relocated ``.text`` that gdb reads at ``relocaddr`` is the
ELF's ``.text`` word for word, gdb's pc is inside it, and gdb lists the loaded sections at
``relocaddr``.

Imports: pytest, the standard library, pyelftools and tests/gdb_driver.py, tests/support.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from elftools.elf.elffile import ELFFile
from gdb_driver import GDB, REPO_ROOT, require_tool
from support.uboot_console import UBOOT_ELF

TIMEOUT = 180.0


def _reader(stream: object, sink: list[str]) -> None:
    # Whatever arrives, not whole lines: U-Boot's prompt has no newline after it.
    fd = stream.fileno()   # type: ignore[attr-defined]
    while chunk := os.read(fd, 4096):
        sink.append(chunk.decode(errors="replace"))


def _wait_for(sink: list[str], pattern: str, deadline: float) -> re.Match[str]:
    # Output arrives in pieces: a pattern that ends in a number must also match what ends it, or it
    # may match the number's first digits.
    while time.monotonic() < deadline:
        match = re.search(pattern, "".join(sink))
        if match:
            return match
        time.sleep(0.05)
    raise TimeoutError(f"{pattern!r} not seen; got:\n{''.join(sink)[-2000:]}")


def test_gdb_finds_relocated_uboot_at_bdinfo_offset() -> None:
    with UBOOT_ELF.open("rb") as handle:
        text = ELFFile(handle).get_section_by_name(".text")
        text_address, text_bytes = text["sh_addr"], text.data()
    deadline = time.monotonic() + TIMEOUT
    stub = subprocess.Popen([sys.executable, "-m", "gdbstub", "-bios", str(UBOOT_ELF), "--port", "0"],
                            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stub_out: list[str] = []
    stub_err: list[str] = []
    threads = [threading.Thread(target=_reader, args=(stub.stdout, stub_out), daemon=True),
               threading.Thread(target=_reader, args=(stub.stderr, stub_err), daemon=True)]
    for thread in threads:
        thread.start()
    gdb = None
    try:
        port = int(_wait_for(stub_err, r"listening on 127\.0\.0\.1:(\d+)\s", deadline).group(1))
        gdb = subprocess.Popen([require_tool(GDB), "-nx", "-q", "-ex", "set confirm off",
                                "-ex", "set pagination off", "-ex", f"target remote 127.0.0.1:{port}"],
                               cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        gdb_out: list[str] = []
        threading.Thread(target=_reader, args=(gdb.stdout, gdb_out), daemon=True).start()
        assert gdb.stdin is not None and stub.stdin is not None
        gdb.stdin.write("continue\n")
        gdb.stdin.flush()
        _wait_for(stub_out, r"=> ", deadline)                    # autoboot gave up: the prompt
        stub.stdin.write("bdinfo\n")
        stub.stdin.flush()
        relocaddr = int(_wait_for(stub_out, r"relocaddr\s+= (0x[0-9a-f]+)\s", deadline).group(1), 16)
        offset = int(_wait_for(stub_out, r"reloc off\s+= (0x[0-9a-f]+)\s", deadline).group(1), 16)
        _wait_for(stub_out, r"addressing\s+=.*\n(.|\n)*=> ", deadline)
        assert relocaddr == text_address + offset
        gdb.send_signal(signal.SIGINT)
        _wait_for(gdb_out, r"SIGINT", deadline)
        probe = relocaddr + 0x1000
        gdb.stdin.write(f"add-symbol-file {UBOOT_ELF} -o {offset:#x}\n"
                        "info files\n"
                        "printf \"pc=%#x\\n\", $pc\n"
                        f"x/4xw {relocaddr:#x}\n"
                        f"x/4xw {probe:#x}\n"
                        "kill\nquit\n")
        gdb.stdin.close()
        gdb.wait(timeout=max(1.0, deadline - time.monotonic()))
        output = "".join(gdb_out)
        pc = int(re.search(r"pc=(0x[0-9a-f]+)", output).group(1), 16)   # type: ignore[union-attr]
        assert relocaddr <= pc < relocaddr + len(text_bytes) + 0x20000, output   # U-Boot's relocated code
        assert re.search(rf"{relocaddr:#010x} - 0x[0-9a-f]+ is \.text", output), output
        for address in (relocaddr, probe):
            words = re.search(rf"{address:#x}:\s+((?:0x[0-9a-f]+\s*){{4}})", output)
            assert words is not None, output
            seen = b"".join(int(word, 16).to_bytes(4, "big") for word in words.group(1).split())
            start = address - relocaddr
            assert seen == text_bytes[start:start + 16], output
    finally:
        for process in (gdb, stub):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

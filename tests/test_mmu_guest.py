"""The mmu corpus guest (tests/lockstep/src/mmu.c): TLB-miss handlers that build TLB0 entries.

Runs the -O2 e500v2 and e500mc builds on our emulator through the CLI (``--run``) and checks the
printed miss/DSI counts against the numbers the C source itself expects (its EXPECTED_* macros,
evaluated here from the source text, not copied from a run), the exit status, and that QEMU's
``ppce500 -kernel`` prints exactly the same text.

Imports: pytest and the standard library (the emulator runs as a subprocess via ``-m gdbstub``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.qemu_machine import ppce500_command

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tests" / "lockstep" / "src" / "mmu.c"
BIN = REPO / "tests" / "lockstep" / "bin"
RUN_TIMEOUT_S = 120
REPORT = re.compile(r"mmu: dtlb misses (\d+) itlb misses (\d+) dsi (\d+) failures (\d+)")


def source_constants() -> dict[str, int]:
    """Every integer ``#define`` of mmu.c, evaluated in order (expressions may use earlier ones)."""
    text = re.sub(r"/\*.*?\*/", " ", SOURCE.read_text(), flags=re.S).replace("\\\n", " ")
    constants: dict[str, int] = {}
    for name, body in re.findall(r"^#define\s+(\w+)\s+(.+)$", text, flags=re.M):
        expression = re.sub(r"\b(0x[0-9A-Fa-f]+|\d+)u\b", r"\1", body.strip())
        if not re.fullmatch(r"[\w\s()+\-*/<>|&]+", expression):
            continue
        try:
            constants[name] = int(eval(expression, {"__builtins__": {}}, dict(constants)))
        except (NameError, SyntaxError):
            continue    # function-like or non-integer macros
    return constants


def run_ours(elf: Path, model: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub", "--run", str(elf), "--cpu", model],
                          cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def normalised(text: str) -> str:
    return text.replace("\r", "")


def test_expected_counts_follow_from_the_source_constants() -> None:
    constants = source_constants()
    data_pages = constants["WINDOW_PAGES"] - 2
    assert constants["DATA_PAGES"] == data_pages
    # Phases 1, 4, 5, 6 and 8 of main(): first touches, tlbivax, flash invalidate, RO page, two PIDs.
    assert constants["EXPECTED_DTLB_MISSES"] == data_pages + 1 + data_pages + 1 + 2
    assert constants["EXPECTED_ITLB_MISSES"] == 1
    assert constants["EXPECTED_DSI"] == 1


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_mmu_guest_counts_and_qemu_output(model: str) -> None:
    elf = BIN / f"mmu-O2-{model}.elf"
    constants = source_constants()
    ours = run_ours(elf, model)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    report = REPORT.search(ours.stdout)
    assert report, ours.stdout
    dtlb, itlb, dsi, failures = (int(group) for group in report.groups())
    assert (dtlb, itlb, dsi, failures) == (
        constants["EXPECTED_DTLB_MISSES"], constants["EXPECTED_ITLB_MISSES"], constants["EXPECTED_DSI"], 0)
    assert re.search(r"mmu: checksum 0x[0-9a-f]{8}", ours.stdout)

    qemu = subprocess.run(ppce500_command(elf, model), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    assert normalised(qemu.stdout) == normalised(ours.stdout)

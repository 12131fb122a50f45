"""Pins what gdb sees of the register table, byte for byte: target.xml and its feature documents, the
``g`` layout (name, regnum, bits, vCPU key in order) and the names the vCPU accepts, for both cores, as
served with a real vCPU and from the table alone. The pinned files are in tests/golden/registers/;
regenerating them is a change of what gdb sees and needs a reason.

Imports: pytest, the emulator's board and vCPU, gdbstub.registers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.board import Machine
from emulator.kvm import Vcpu
from gdbstub.registers import RegisterTable

GOLDEN = Path(__file__).resolve().parent / "golden" / "registers"


def _tables(model: str) -> dict[str, RegisterTable]:
    vcpu = Vcpu(Machine(model_name=model))
    return {"vcpu": RegisterTable(model, frozenset(vcpu.register_names())), "table": RegisterTable(model)}


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
@pytest.mark.parametrize("variant", ["vcpu", "table"])
def test_documents_and_g_layout_are_the_pinned_bytes(model: str, variant: str) -> None:
    table = _tables(model)[variant]
    pinned = GOLDEN / f"{model}-{variant}"
    annexes = {path.name for path in pinned.glob("*.xml")}
    assert set(table.documents) == annexes
    for annex in sorted(annexes):
        assert table.documents[annex] == (pinned / annex).read_bytes(), annex
    layout = "".join(f"{r.name} {r.regnum} {r.bits} {r.key}\n" for r in table.g_registers)
    assert layout == (pinned / "g-layout.txt").read_text()


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_vcpu_register_names_are_the_pinned_set(model: str) -> None:
    # The set is pinned (sorted in the file); the order is the register table's.
    names = Vcpu(Machine(model_name=model)).register_names()
    assert len(names) == len(set(names))
    assert sorted(names) == (GOLDEN / f"{model}-vcpu-names.txt").read_text().split()

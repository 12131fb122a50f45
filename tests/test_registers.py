"""The register table: gdb's numbering, g layout sizes, target.xml and its features."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gdbstub.registers import RegisterTable


def test_e500v2_layout_matches_gdb_builtin() -> None:
    table = RegisterTable("e500v2")
    numbers = {reg.name: reg.regnum for reg in table.registers}
    assert [numbers[f"r{n}"] for n in range(32)] == list(range(32))
    assert [numbers[f"ev{n}h"] for n in range(32)] == list(range(32, 64))
    assert [numbers[name] for name in ("pc", "msr", "cr", "lr", "ctr", "xer", "acc", "spefscr")] == [
        64, 65, 66, 67, 68, 69, 73, 74]
    # gdb's built-in e500 layout is the first 292 bytes; the SPRs follow in the same packet.
    spr_bytes = 4 * sum(1 for reg in table.registers if reg.regnum >= 75)
    assert spr_bytes > 0
    assert table.g_size == 292 + spr_bytes
    offsets, offset = {}, 0
    for reg in table.g_registers:
        offsets[reg.name] = offset
        offset += reg.size
    assert (offsets["pc"], offsets["acc"], offsets["spefscr"], offsets["srr0"]) == (256, 280, 288, 292)
    assert table.by_name["acc"].bits == 64
    assert min(reg.regnum for reg in table.registers if reg.group == "spr") == 75
    assert "ivor32" in numbers and "ivor36" not in numbers


def test_e500mc_has_fpu_not_spe() -> None:
    table = RegisterTable("e500mc")
    assert table.architecture == "powerpc:e500mc"
    assert table.by_name["f0"].regnum == 32 and table.by_name["f0"].bits == 64
    assert table.by_name["fpscr"].regnum == 70
    assert "ev0h" not in table.by_name and "ivor41" in table.by_name and "ivor32" not in table.by_name
    spr_bytes = 4 * sum(1 for reg in table.registers if reg.regnum >= 75)
    assert table.g_size == 32 * 4 + 32 * 8 + 6 * 4 + 4 + spr_bytes


@pytest.mark.parametrize("model", ["e500v2", "e500mc"])
def test_target_xml_every_register_has_explicit_regnum(model: str) -> None:
    table = RegisterTable(model)
    # gdb's own descriptions use an undeclared xi: prefix; ElementTree needs a plain name.
    text = table.documents["target.xml"].decode().split("\n", 2)[2].replace("xi:include", "include")
    root = ET.fromstring(text)
    assert root.findtext("architecture") == table.architecture
    seen = {}
    for include in root:
        href = include.get("href")
        if href is None:
            continue
        feature = ET.fromstring(table.documents[href].decode().split("\n", 2)[2])
        for reg in feature.findall("reg"):
            seen[reg.get("name")] = int(reg.get("regnum"))
    assert seen == {reg.name: reg.regnum for reg in table.registers}
    assert len(set(seen.values())) == len(seen)


def test_available_names_filter_sprs_only() -> None:
    table = RegisterTable("e500v2", frozenset({"srr0", "tlb1cfg"}))
    sprs = [reg.name for reg in table.registers if reg.group == "spr"]
    assert sprs == ["srr0", "tlb1cfg"]
    assert table.by_name["tlb1cfg"].regnum == 76


def test_encode_decode_big_endian() -> None:
    table = RegisterTable("e500v2")
    acc = table.by_name["acc"]
    assert table.encode(table.by_name["pc"], 0x1000) == b"00001000"
    assert table.decode(acc, table.encode(acc, 0x0123456789ABCDEF)) == 0x0123456789ABCDEF
    with pytest.raises(ValueError):
        table.decode(acc, b"00")

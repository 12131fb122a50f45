"""The on-disk store of compiled regions (emulator/region_store.py): what one run compiles, the next
run of the same guest takes back instead of compiling it again, with the same output; a corrupt,
missing or unwritable store only costs time; ``E500_GDBSTUB_CODE_CACHE=off`` turns it off.

Imports: pytest, the standard library and the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from emulator import region_store, translate
from emulator.board import Machine
from emulator.region_store import RegionStore

ROOT = Path(__file__).resolve().parent.parent
LOOP = ROOT / "examples" / "bin" / "loop-e500v2.elf"


def _code(value: int) -> CodeType:
    return compile(f"result = {value}", "<test>", "exec")


def _run(code: CodeType | None) -> int:
    assert code is not None
    namespace: dict[str, int] = {}
    exec(code, namespace)
    return namespace["result"]


def _key(number: int, pc: int | None = None) -> tuple[object, ...]:
    """A region key as compile_region makes them: superblocks of (pc, word, cycles) and templates."""
    first = 0x1000 + 4 * number if pc is None else pc
    return ((((first, 0x38600000 | (number & 0xFFFF), 1), (first + 4, 0x4E800020, 1)),
             ((f"gpr[3] = {number}",), ("return cpu.lr",))),)


def test_entries_round_trip_through_the_file(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "digest")
    store.add(_key(1), _code(7))
    assert store.flush()
    assert not store.flush(), "nothing new: nothing written"
    again = RegionStore(tmp_path, "digest")
    assert _run(again.get(_key(1))) == 7
    assert again.get(_key(2)) is None
    assert RegionStore(tmp_path, "other digest").get(_key(1)) is None, "another translator sees none of it"


def test_keys_with_the_same_first_instruction(tmp_path: Path) -> None:
    """Records are found by their first address and word, then told apart by the whole key."""
    store = RegionStore(tmp_path, "d")
    one, other = _key(5), _key(5)
    other = ((other[0][0], (("gpr[3] = 99",), ("return cpu.lr",))),)
    store.add(one, _code(1))
    store.add(other, _code(2))
    store.flush()
    again = RegionStore(tmp_path, "d")
    assert (_run(again.get(other)), _run(again.get(one))) == (2, 1)


def test_writers_merge(tmp_path: Path) -> None:
    first, second = RegionStore(tmp_path, "d"), RegionStore(tmp_path, "d")
    first.get(_key(0))
    second.get(_key(0))
    first.add(_key(1), _code(1))
    second.add(_key(2), _code(2))
    assert first.flush() and second.flush()
    merged = RegionStore(tmp_path, "d")
    assert (_run(merged.get(_key(1))), _run(merged.get(_key(2)))) == (1, 2)


def test_a_corrupt_file_is_an_empty_store(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "d")
    store.path.write_bytes(b"\x00not a store at all")
    assert store.get(_key(1)) is None
    store.add(_key(3), _code(3))
    assert store.flush()
    assert _run(RegionStore(tmp_path, "d").get(_key(3))) == 3


def test_a_record_cut_short_keeps_the_whole_ones_before_it(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "d")
    store.add(_key(1), _code(5))
    store.add(_key(2), _code(6))
    assert store.flush()
    whole = store.path.read_bytes()
    store.path.write_bytes(whole[:-3])   # a writer killed in the middle of its last record
    reread = RegionStore(tmp_path, "d")
    assert (_run(reread.get(_key(1))), reread.get(_key(2))) == (5, None)
    assert reread.flush(), "a file found cut short is rewritten"
    rewritten = RegionStore(tmp_path, "d")
    assert (_run(rewritten.get(_key(1))), rewritten.get(_key(2))) == (5, None)
    assert rewritten.path.stat().st_size < len(whole)


def test_a_damaged_record_is_skipped(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "d")
    for number in range(3):
        store.add(_key(number), _code(number + 10))
    store.flush()
    data = bytearray(store.path.read_bytes())
    data[len(data) // 2] ^= 0xFF   # inside the middle record's payload
    store.path.write_bytes(bytes(data))
    reread = RegionStore(tmp_path, "d")
    found = [reread.get(_key(number)) for number in range(3)]
    assert (_run(found[0]), found[1], _run(found[2])) == (10, None, 12)
    assert reread.flush(), "a damaged record makes the next flush rewrite the file"
    rewritten = RegionStore(tmp_path, "d")
    assert rewritten.get(_key(1)) is None and _run(rewritten.get(_key(2))) == 12


def test_batches_reach_the_file_without_a_flush(tmp_path: Path) -> None:
    """A process killed before exit (no flush) has kept all but its last partial batch."""
    store = RegionStore(tmp_path, "d")
    for number in range(region_store.BATCH + 1):
        store.add(_key(number), _code(number))
    reread = RegionStore(tmp_path, "d")
    assert [reread.get(_key(number)) is not None for number in range(region_store.BATCH + 1)] == \
        [True] * region_store.BATCH + [False]


def test_an_unwritable_store_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    store = RegionStore(blocker / "cache", "d")
    store.add(_key(4), _code(4))
    assert store.flush() is False
    assert store.get(_key(4)) is None and not store.path.exists()


def test_where_the_store_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(region_store.ENVIRONMENT_VARIABLE, "off")
    assert region_store.default_directory() is None
    monkeypatch.setenv(region_store.ENVIRONMENT_VARIABLE, str(tmp_path))
    assert region_store.default_directory() == tmp_path
    monkeypatch.delenv(region_store.ENVIRONMENT_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert region_store.default_directory() == tmp_path / "xdg" / "e500-gdbstub"


def _run_loop_guest(cache: str, **environment: str) -> subprocess.CompletedProcess[bytes]:
    environment = dict(os.environ, **environment, **{region_store.ENVIRONMENT_VARIABLE: cache})
    return subprocess.run([sys.executable, "-m", "gdbstub", "--run", str(LOOP)], cwd=ROOT, env=environment,
                          capture_output=True, timeout=120, check=False)


def _stored_keys(path: Path) -> list[Any]:
    """Every region key in a store file, in file order."""
    store = RegionStore(path.parent, "unused")
    store.path = path
    keys = []
    for offsets in store._read_index().values():
        for offset in offsets:
            entry = store._load(offset)
            assert entry is not None, f"a damaged record at {offset}"
            keys.append((offset, entry[0]))
    return [key for _offset, key in sorted(keys, key=lambda item: item[0])]


def test_the_next_run_compiles_nothing_the_last_one_did(tmp_path: Path) -> None:
    """The second run takes back what the first compiled and adds only regions the first never
    compiled (code that got hot sooner, stored regions running from their first entry); from then on
    the guest compiles nothing."""
    first = _run_loop_guest(str(tmp_path))
    assert first.returncode == 0, first.stderr
    stored = list(tmp_path.glob("regions-*.log"))
    assert len(stored) == 1, "the first run stores what it compiled"
    content = stored[0].read_bytes()
    assert content.count(b"<block ") > 3, "the regions' code objects are in it"
    first_keys = _stored_keys(stored[0])
    second = _run_loop_guest(str(tmp_path))
    assert (second.returncode, second.stdout) == (first.returncode, first.stdout)
    grown = stored[0].read_bytes()
    assert grown.startswith(content), "the second run rewrote what the first stored"
    second_keys = _stored_keys(stored[0])
    assert second_keys[:len(first_keys)] == first_keys
    assert len(second_keys) < 2 * len(first_keys), "the second run compiled most of it again"
    assert len({repr(key) for key in second_keys}) == len(second_keys), "a region was compiled twice"
    modified = stored[0].stat().st_mtime_ns
    third = _run_loop_guest(str(tmp_path))
    assert (third.returncode, third.stdout) == (first.returncode, first.stdout)
    assert stored[0].stat().st_mtime_ns == modified and stored[0].read_bytes() == grown, \
        "the third run wrote the store again: it compiled something"
    fourth = _run_loop_guest("off", XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    assert (fourth.returncode, fourth.stdout) == (first.returncode, first.stdout)
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists(), "off, yet stored"


def _loop_machine() -> tuple[Machine, bytearray, list[int]]:
    """The loop guest, with a count of the instructions its core runs on the decoded path."""
    output = bytearray()
    machine = Machine(model_name="e500v2", uart_out=output.extend)
    machine.load_elf(str(LOOP))
    machine.reset()
    cpu = machine.cpu
    decoded = [0]
    run_decoded = cpu._run_decoded

    def counting(limit: int, until_block: Any = None) -> Any:
        result = run_decoded(limit, until_block)
        decoded[0] += result[0]
        return result
    cpu._run_decoded = counting
    return machine, output, decoded


def test_a_region_stored_before_runs_translated_from_its_first_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A region an earlier run compiled is translated where the code is first entered (taken from the
    store, not compiled), not after the decoded path has run it until it is hot; the guest runs the
    same."""
    generated: list[int] = []
    generate = translate._generate

    def counting_generate(superblocks: Any) -> Any:
        generated.append(1)
        return generate(superblocks)
    monkeypatch.setattr(translate, "_generate", counting_generate)
    runs = []
    for _ in range(2):
        # A fresh process as far as the translator knows: no memo, the store read from its file.
        monkeypatch.setattr(translate, "_compiled_blocks", {})
        monkeypatch.setattr(translate, "_compiled_starts", set())
        store = RegionStore(tmp_path, "digest")
        monkeypatch.setattr(translate, "shared_store", lambda store=store: store)
        generated.clear()
        machine, output, decoded = _loop_machine()
        machine.cpu.run(300_000)
        store.flush()
        runs.append((decoded[0], len(generated), bytes(output), machine.cpu.pc, list(machine.cpu.gpr),
                     bytes(machine.bus.ram[:0x200000])))
    (first_decoded, first_compiled, *first_state), (second_decoded, second_compiled, *second_state) = runs
    # A few regions are new: code that got hot within the budget only because the stored ones ran
    # translated from the start.
    assert first_compiled > 3 and second_compiled * 4 < first_compiled, (first_compiled, second_compiled)
    assert second_decoded * 3 < first_decoded, (first_decoded, second_decoded)
    assert first_state == second_state


def test_a_hint_never_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the store knows a region start but not this code, translating on the hint gives up
    (nothing compiled, nothing cached) and the code waits until it is hot, as without a store."""
    monkeypatch.setattr(translate, "_compiled_blocks", {})
    monkeypatch.setattr(translate, "_compiled_starts", set())
    machine, _output, _decoded = _loop_machine()
    cpu = machine.cpu
    pc = cpu.pc
    store = RegionStore(tmp_path, "digest")
    store.add(_key(1, pc=pc), _code(1))   # another guest's region at this address
    store.flush()
    store = RegionStore(tmp_path, "digest")
    monkeypatch.setattr(translate, "shared_store", lambda: store)
    assert translate.known_region_start(pc)
    monkeypatch.setattr(translate, "_generate", lambda superblocks: pytest.fail("compiled on a hint"))
    assert cpu._translate_block(pc, compiled_only=True) is None
    assert pc not in cpu._blocks

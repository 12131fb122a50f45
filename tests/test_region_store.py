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

import pytest

from emulator import region_store
from emulator.region_store import RegionStore

ROOT = Path(__file__).resolve().parent.parent
LOOP = ROOT / "examples" / "bin" / "loop-e500v2.elf"


def _code(value: int) -> object:
    return compile(f"result = {value}", "<test>", "exec")


def _run(code: object) -> int:
    namespace: dict[str, int] = {}
    exec(code, namespace)   # type: ignore[arg-type]
    return namespace["result"]


def test_entries_round_trip_through_the_file(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "digest")
    key = ((0x100, 0x38600001, 1),), (("gpr[3] = 1",),)
    store.add(key, _code(7))   # type: ignore[arg-type]
    assert store.flush()
    assert not store.flush(), "nothing new: nothing written"
    again = RegionStore(tmp_path, "digest")
    assert _run(again.entries()[key]) == 7
    assert RegionStore(tmp_path, "other digest").entries() == {}, "another translator sees none of it"


def test_writers_merge(tmp_path: Path) -> None:
    first, second = RegionStore(tmp_path, "d"), RegionStore(tmp_path, "d")
    first.entries()
    second.entries()
    first.add("a", _code(1))   # type: ignore[arg-type]
    second.add("b", _code(2))   # type: ignore[arg-type]
    assert first.flush() and second.flush()
    merged = RegionStore(tmp_path, "d").entries()
    assert sorted(merged) == ["a", "b"]


def test_a_corrupt_file_is_an_empty_store(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "d")
    store.path.write_bytes(b"\x00not marshal data")
    assert store.entries() == {}
    store.add("a", _code(3))   # type: ignore[arg-type]
    assert store.flush()
    assert _run(RegionStore(tmp_path, "d").entries()["a"]) == 3


def test_a_record_cut_short_keeps_the_whole_ones_before_it(tmp_path: Path) -> None:
    store = RegionStore(tmp_path, "d")
    store.add("a", _code(5))   # type: ignore[arg-type]
    store.add("b", _code(6))   # type: ignore[arg-type]
    assert store.flush()
    whole = store.path.read_bytes()
    store.path.write_bytes(whole[:-3])   # a writer killed in the middle of its last record
    reread = RegionStore(tmp_path, "d")
    assert sorted(reread.entries()) == ["a"]
    assert reread.flush(), "a file found cut short is rewritten"
    assert sorted(RegionStore(tmp_path, "d").entries()) == ["a"]


def test_batches_reach_the_file_without_a_flush(tmp_path: Path) -> None:
    """A process killed before exit (no flush) has kept all but its last partial batch."""
    store = RegionStore(tmp_path, "d")
    for index in range(region_store.BATCH + 1):
        store.add(index, _code(index))   # type: ignore[arg-type]
    assert sorted(RegionStore(tmp_path, "d").entries()) == list(range(region_store.BATCH))


def test_an_unwritable_store_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    store = RegionStore(blocker / "cache", "d")
    store.add("a", _code(4))   # type: ignore[arg-type]
    assert store.flush() is False
    assert _run(store.entries()["a"]) == 4, "still serves this process"


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


def test_the_next_run_compiles_nothing_the_last_one_did(tmp_path: Path) -> None:
    first = _run_loop_guest(str(tmp_path))
    assert first.returncode == 0, first.stderr
    stored = list(tmp_path.glob("regions-*.log"))
    assert len(stored) == 1, "the first run stores what it compiled"
    content, modified = stored[0].read_bytes(), stored[0].stat().st_mtime_ns
    assert len(RegionStore(tmp_path, stored[0].stem.split("-", 1)[1]).entries()) > 3
    second = _run_loop_guest(str(tmp_path))
    assert (second.returncode, second.stdout) == (first.returncode, first.stdout)
    assert stored[0].stat().st_mtime_ns == modified and stored[0].read_bytes() == content, \
        "the second run wrote the store again: it compiled something the first had stored"
    third = _run_loop_guest("off", XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    assert (third.returncode, third.stdout) == (first.returncode, first.stdout)
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists(), "off, yet stored"

"""Compiled regions kept on disk between runs, keyed by what they were compiled from.

The block translator (:mod:`emulator.translate`) compiles a region of guest code into a Python code
object that depends only on the region's instruction addresses, words, cycle counts and templates
(its *key*). Firmware and kernels run the same code in every boot, so a user who starts the same
image again, or a test suite that boots it many times, would compile the same regions again: a third
of U-Boot's time to its prompt and a quarter of a Linux boot. This store keeps the code objects in
one file per translator version and Python version and hands them back by key.

The file's name carries a digest of the translator's own source (the modules that turn a key into
source lines) and of the Python bytecode version, so a changed translator or interpreter never sees
another's code; the key carries everything else (words, templates). A missing, unreadable or
corrupt file is an empty store (or as much of it as is whole), and a store that cannot be written is
skipped: the cache only ever saves time, it never changes what runs. New entries are appended to
the file as they come, in batches, so that several processes can share it.

Where: ``$E500_GDBSTUB_CODE_CACHE`` if set (``off`` turns the store off), else
``$XDG_CACHE_HOME/e500-gdbstub`` or ``~/.cache/e500-gdbstub``.

Imports: the standard library only.
"""

from __future__ import annotations

import atexit
import importlib.util
import marshal
import mmap
import os
import struct
import zlib
from pathlib import Path
from types import CodeType
from typing import Any

ENVIRONMENT_VARIABLE = "E500_GDBSTUB_CODE_CACHE"
# Several times what a Linux boot and a U-Boot session compile together; a larger file (duplicates
# from runs side by side add up) starts over, so it cannot grow without bound.
MAX_BYTES = 128 << 20
BATCH = 32   # new entries per append
# A record's header: payload length, its CRC-32, the address and word of the region's first instruction.
_HEADER = struct.Struct(">IIII")
FORMAT = "v2"   # in the file name: a store written in another layout is another file

_TRANSLATOR_SOURCES = ("translate.py", "fields.py", "decoder.py")


def default_directory() -> Path | None:
    """The directory the store lives in, or None when the environment turns it off."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "no") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "e500-gdbstub"


def translator_digest() -> str:
    """A digest of the translator's source files and the interpreter's bytecode version: two
    different 32-bit checksums of them, which any edit changes (hashlib would load OpenSSL at every
    start-up, for a name that needs no cryptographic strength)."""
    here = Path(__file__).resolve().parent
    data = importlib.util.MAGIC_NUMBER + b"".join((here / name).read_bytes() for name in _TRANSLATOR_SOURCES)
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


class RegionStore:
    """Code objects by region key, from a file in ``directory``.

    The file is a log of records: a header (payload length, its CRC-32, and the address and word of
    the region's first instruction) and the marshalled ``(key, code)``. Opening the store reads the
    headers only (the file is mapped, so a large store costs little to open); :meth:`get` unmarshals
    the records whose first address and word match the key's and checks each (keeping what it found
    is compile_region's memo's job).

    New records are appended in batches of :data:`BATCH` and at exit (:func:`shared_store`
    registers :meth:`flush`), so a process that is killed (a stub ended by a signal, a benchmark
    stopping U-Boot at its prompt) has kept most of what it compiled. Each batch is one ``write`` to
    a file opened for appending, so concurrent writers interleave whole batches; a record cut short
    (a writer killed mid-write) or damaged is skipped, and the next flush rewrites the file with
    the whole records.
    """

    def __init__(self, directory: Path, digest: str) -> None:
        self.path = directory / f"regions-{FORMAT}-{digest}.log"
        self._index: dict[tuple[int, int], list[int]] | None = None   # (pc, word) -> record offsets
        self._starts: set[int] | None = None
        self._data: bytes | mmap.mmap = b""
        self._pending: list[bytes] = []
        self._rewrite = False

    def get(self, key: Any) -> CodeType | None:
        """The code stored for ``key`` (a region key of :func:`emulator.translate.compile_region`)."""
        first = key[0][0][0]   # the first superblock's first instruction: (pc, word, cycles)
        for offset in self._read_index().get((first[0], first[1]), ()):
            entry = self._load(offset)
            if entry is None:
                self._rewrite = True
            elif entry[0] == key:
                return entry[1]
        return None

    def starts(self) -> set[int]:
        """The first addresses of the stored regions (the records' headers say them)."""
        if self._starts is None:
            self._starts = {pc for pc, _word in self._read_index()}
        return self._starts

    def add(self, key: Any, code: CodeType) -> None:
        self._read_index()
        self._pending.append(_record(key, code))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> bool:
        """Append what this process added since the last flush (or rewrite the whole file, when it
        was found damaged or too large); True when written."""
        if not self._pending and not self._rewrite:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._rewrite:
                self._replace_file()
            else:
                with open(self.path, "ab") as file:
                    file.write(b"".join(self._pending))
        except OSError:
            return False
        self._pending.clear()
        self._rewrite = False
        return True

    def _replace_file(self) -> None:
        """The file again: its whole records (not past the size limit) and this process's new ones."""
        kept = []
        size = 0
        for offsets in self._read_index().values():
            for offset in offsets:
                record = self._whole_record(offset)
                if record is not None and size + len(record) <= MAX_BYTES // 2:
                    kept.append(record)
                    size += len(record)
        temporary = self.path.parent / f".regions-{os.getpid()}-{id(self):x}"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(b"".join([*kept, *self._pending]))
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise

    def _read_index(self) -> dict[tuple[int, int], list[int]]:
        """The records' offsets by first address and word (headers only, read once)."""
        if self._index is not None:
            return self._index
        self._index = {}
        try:
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size:
                    self._data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return self._index
        if size > MAX_BYTES:
            self._rewrite = True
        data, position = self._data, 0
        while position + _HEADER.size <= size:
            length, _checksum, pc, word = _HEADER.unpack_from(data, position)
            if position + _HEADER.size + length > size:
                break
            self._index.setdefault((pc, word), []).append(position)
            position += _HEADER.size + length
        if position != size:
            self._rewrite = True   # a record cut short at the end
        return self._index

    def _whole_record(self, offset: int) -> bytes | None:
        """The record at ``offset``, header included, when its payload is what its checksum says."""
        length, checksum, _pc, _word = _HEADER.unpack_from(self._data, offset)
        record = self._data[offset:offset + _HEADER.size + length]
        return record if zlib.crc32(record[_HEADER.size:]) == checksum else None

    def _load(self, offset: int) -> tuple[Any, CodeType] | None:
        record = self._whole_record(offset)
        if record is None:
            return None
        try:
            key, code = marshal.loads(record[_HEADER.size:])
        except (EOFError, ValueError, TypeError):
            return None
        return (key, code) if isinstance(code, CodeType) else None


def _record(key: Any, code: CodeType) -> bytes:
    payload = marshal.dumps((key, code))
    first = key[0][0][0]
    return _HEADER.pack(len(payload), zlib.crc32(payload), first[0], first[1]) + payload


_shared: list[RegionStore | None] = []


def shared_store() -> RegionStore | None:
    """The process's store (None when turned off), created on first use and flushed at exit."""
    if not _shared:
        directory = default_directory()
        store = None if directory is None else RegionStore(directory, translator_digest())
        if store is not None:
            atexit.register(store.flush)
        _shared.append(store)
    return _shared[0]

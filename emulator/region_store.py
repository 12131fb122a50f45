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
_HEADER = struct.Struct(">II")   # a record's payload length and CRC-32

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
    """Code objects by region key, read from ``directory`` on first use.

    The file is a log of records (length, CRC-32, marshalled ``(key, code)``), appended to in batches
    of :data:`BATCH` new entries and at exit (:func:`shared_store` registers :meth:`flush`), so a
    process that is killed (a stub ended by a signal, a benchmark stopping U-Boot at its prompt) has
    kept most of what it compiled. Each batch is one ``write`` to a file opened for appending, so
    concurrent writers interleave whole batches; a record cut short (a writer killed mid-write) ends
    the reading, and the next flush rewrites the file with everything known.
    """

    def __init__(self, directory: Path, digest: str) -> None:
        self.path = directory / f"regions-{digest}.log"
        self._entries: dict[Any, CodeType] | None = None
        self._pending: list[bytes] = []
        self._rewrite = False

    def entries(self) -> dict[Any, CodeType]:
        """Everything stored (read once); empty when there is no usable file."""
        if self._entries is None:
            self._entries, complete = self._read()
            self._rewrite = not complete
        return self._entries

    def add(self, key: Any, code: CodeType) -> None:
        self.entries()[key] = code
        self._pending.append(_record(key, code))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> bool:
        """Append what this process added since the last flush (or rewrite the whole file, when it
        was found cut short or too large); True when written."""
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
        temporary = self.path.parent / f".regions-{os.getpid()}-{id(self):x}"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(b"".join(_record(key, code) for key, code in self.entries().items()))
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise

    def _read(self) -> tuple[dict[Any, CodeType], bool]:
        """The entries of the file, and whether it was whole (and small enough to keep growing)."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}, True
        if len(data) > MAX_BYTES:
            return {}, False
        entries: dict[Any, CodeType] = {}
        position = 0
        while position < len(data):
            if position + _HEADER.size > len(data):
                return entries, False
            length, checksum = _HEADER.unpack_from(data, position)
            payload = data[position + _HEADER.size:position + _HEADER.size + length]
            if len(payload) != length or zlib.crc32(payload) != checksum:
                return entries, False
            try:
                key, code = marshal.loads(payload)
            except (EOFError, ValueError, TypeError):
                return entries, False
            if not isinstance(code, CodeType):
                return entries, False
            entries[key] = code
            position += _HEADER.size + length
        return entries, True


def _record(key: Any, code: CodeType) -> bytes:
    payload = marshal.dumps((key, code))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


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

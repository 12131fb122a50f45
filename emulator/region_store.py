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
corrupt file is an empty store, and a store that cannot be written is skipped: the cache only ever
saves time, it never changes what runs. New entries are written once, at exit, merged with what
another process may have written meanwhile and replaced atomically.

Where: ``$E500_GDBSTUB_CODE_CACHE`` if set (``off`` turns the store off), else
``$XDG_CACHE_HOME/e500-gdbstub`` or ``~/.cache/e500-gdbstub``.

Imports: the standard library only.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import marshal
import os
import tempfile
from pathlib import Path
from types import CodeType
from typing import Any

ENVIRONMENT_VARIABLE = "E500_GDBSTUB_CODE_CACHE"
# More entries than a Linux boot and a U-Boot session compile together; past it a file starts over
# with what the last run compiled, so it cannot grow without bound.
MAX_ENTRIES = 40_000

_TRANSLATOR_SOURCES = ("translate.py", "fields.py", "decoder.py")


def default_directory() -> Path | None:
    """The directory the store lives in, or None when the environment turns it off."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "no") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "e500-gdbstub"


def translator_digest() -> str:
    """A digest of the translator's source files and the interpreter's bytecode version."""
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)
    here = Path(__file__).resolve().parent
    for name in _TRANSLATOR_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:20]


class RegionStore:
    """Code objects by region key, read from ``directory`` on first use and written back by
    :meth:`flush` (registered to run at exit by :func:`shared_store`)."""

    def __init__(self, directory: Path, digest: str) -> None:
        self.path = directory / f"regions-{digest}.marshal"
        self._entries: dict[Any, CodeType] | None = None
        self._new: dict[Any, CodeType] = {}

    def entries(self) -> dict[Any, CodeType]:
        """Everything stored (read once); empty when there is no usable file."""
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def add(self, key: Any, code: CodeType) -> None:
        self.entries()[key] = code
        self._new[key] = code

    def flush(self) -> bool:
        """Write what this process added, merged with the file as it is now; True when written."""
        if not self._new:
            return False
        merged = self._read()
        if len(merged) + len(self._new) > MAX_ENTRIES:
            merged = {}
        merged.update(self._new)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".regions-")
            try:
                with os.fdopen(handle, "wb") as file:
                    marshal.dump(merged, file)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            return False
        self._new.clear()
        return True

    def _read(self) -> dict[Any, CodeType]:
        try:
            with open(self.path, "rb") as file:
                loaded = marshal.load(file)
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return loaded if isinstance(loaded, dict) else {}


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

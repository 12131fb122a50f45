"""Shared pytest fixtures for the end-to-end tests: start a gdb server on an example guest and drive
gdb-multiarch against it. Missing host tools make the tests fail (never skip).

Imports: pytest, the standard library and tests/gdb_driver.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gdb_driver

# Regions compiled by this test run (emulator/region_store.py) go to a store of its own, which the stubs
# it starts share: no test depends on what an earlier run or the user's own sessions left behind.
if "E500_GDBSTUB_CODE_CACHE" not in os.environ:
    _REGION_STORE = tempfile.mkdtemp(prefix="e500-regions-")
    os.environ["E500_GDBSTUB_CODE_CACHE"] = _REGION_STORE
    atexit.register(shutil.rmtree, _REGION_STORE, ignore_errors=True)


@dataclass
class GdbSession:
    """One finished gdb run against a fresh server, with everything a test wants to look at."""

    image: Path
    symbols: dict[str, int]
    result: gdb_driver.GdbResult
    server: gdb_driver.Server

    @property
    def output(self) -> str:
        return self.result.output

    def describe(self) -> str:
        """Everything printed, for assertion messages."""
        return (f"{self.result}\n--- server stdout ---\n{self.server.stdout}"
                f"\n--- server stderr ---\n{self.server.stderr}")


GdbRunner = Callable[..., GdbSession]


@pytest.fixture(scope="session")
def gdb_multiarch() -> str:
    try:
        return gdb_driver.require_tool(gdb_driver.GDB)
    except gdb_driver.ToolMissingError as missing:
        pytest.fail(str(missing))


@pytest.fixture
def gdb_run(gdb_multiarch: str) -> Iterator[GdbRunner]:
    """``gdb_run("loop", ["break main", "continue"], cpu="e500v2")`` -> :class:`GdbSession`.

    Each call starts its own server on the guest, runs gdb-multiarch in batch mode with the commands,
    and stops the server (its output stays readable on the session).
    """
    servers: list[gdb_driver.Server] = []

    def run(guest: str, commands: list[str], cpu: str = "e500v2",
            timeout: float = gdb_driver.GDB_TIMEOUT, connect: str = "remote") -> GdbSession:
        image = gdb_driver.guest_path(guest, cpu)
        server = gdb_driver.start_server(image, cpu)
        servers.append(server)
        try:
            result = gdb_driver.run_gdb(image, server.port, commands, timeout=timeout, connect=connect)
        finally:
            server.stop()
        return GdbSession(image, gdb_driver.elf_symbols(image), result, server)

    yield run
    for server in servers:
        server.stop()


@pytest.fixture
def server_factory() -> Iterator[Callable[[Path, str], gdb_driver.Server]]:
    """Start servers by hand (for tests that need more than one gdb run); all stopped at teardown."""
    servers: list[gdb_driver.Server] = []

    def start(image: Path, cpu: str = "e500v2") -> gdb_driver.Server:
        server = gdb_driver.start_server(image, cpu)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# Differential and fuzz suites print their totals (e.g. "lockstep: 212345 steps ..."); pytest captures
# the stdout of passing tests, so echo those lines in the terminal summary where CI logs show them.
FIGURE_PREFIXES = ("lockstep:", "unicorn differential:", "fuzz:", "fast engine:", "determinism:")
_figures: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" or not report.passed:
        return
    for line in report.capstdout.splitlines():
        if line.startswith(FIGURE_PREFIXES):
            _figures.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _figures:
        terminalreporter.section("figures")
        for line in _figures:
            terminalreporter.write_line(line)

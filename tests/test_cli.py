"""The e500-gdbstub command line: errors are one readable line, --run passes the exit status through."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gdbstub.cli import parse_icount

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "bin" / "hello-e500v2.elf"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "nothere.elf"))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_elf_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.elf"
    bogus.write_bytes(b"\x7fELF not really")
    result = run_cli(str(bogus), "--run")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and str(bogus) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flags", [["--cpu", "e600"], ["--port", "70000"], ["--sw-break", "x"],
                                   ["--ram", "0"], ["--bogus"]])
def test_bad_flags_give_one_line_error(flags: list[str]) -> None:
    result = run_cli(str(HELLO), *flags)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("e500-gdbstub: ") and flags[0] in lines[0], lines


def test_help_lists_every_option() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--cpu", "--port", "--sw-break", "--ram", "--run", "--no-range-stepping", "IMAGE.elf"):
        assert option in result.stdout


def test_ehpriv_on_e500v2_is_refused() -> None:
    result = run_cli(str(HELLO), "--sw-break", "ehpriv", "--run")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_run_passes_uart_and_exit_status() -> None:
    result = run_cli("--run", str(HELLO))
    assert "Hello from e500!" in result.stdout
    assert result.returncode == 3, result.stderr


@pytest.mark.parametrize("stdin", ["", "typed input\n"])
def test_port_in_use_is_one_line(stdin: str) -> None:
    # With input on stdin the console task runs beside the server; the error must still be one line.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "gdbstub", str(HELLO), "--port", str(port)], cwd=ROOT,
                                input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    assert result.stderr.strip().count("\n") == 0 and "cannot listen" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "shift"), [("7", 7), ("shift=7", 7), ("shift=0,align=off,sleep=off", 0),
                                             ("30", 30)])
def test_icount_accepts_qemus_forms(text: str, shift: int) -> None:
    assert parse_icount(text) == shift


@pytest.mark.parametrize("text", ["shift=auto", "auto", "31", "shift=x", "align=off", "rr=record"])
def test_icount_refuses_what_it_cannot_honour(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_icount(text)


def test_bad_icount_is_one_line_and_single_dash_alias_works() -> None:
    result = run_cli(str(HELLO), "-icount", "shift=auto", "--run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "-icount" in result.stderr
    result = run_cli(str(HELLO), "-icount", "shift=3", "--run")
    assert result.returncode == 3 and "Hello from e500!" in result.stdout

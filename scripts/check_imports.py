"""The import rules of docs/architecture.md, checked (``make lint``): every import statement of every
module, at any depth (also inside functions), against what that module may import.

- emulator/ never imports gdbstub or trio.
- In gdbstub/, only server.py imports trio; only target.py, registers.py and cli.py import the emulator,
  each only the emulator modules listed below.
- The sans-I/O modules (protocol/*, session, api, agent, breakpoints, registers) import no I/O
  machinery; protocol/* imports nothing of gdbstub but api, and no emulator.
- Importing gdbstub.session loads no emulator code beyond what the register table (emulator.register_table:
  the model facts and the modules that number SPRs) loads, and neither trio nor construct.

Exit status 0 when every rule holds, else 1 with one line per breach. Imports: standard library only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRIO_OWNER = "gdbstub/server.py"
EMULATOR_DOORS = {
    "gdbstub/target.py": {"emulator.kvm", "emulator.models"},
    "gdbstub/registers.py": {"emulator.register_table"},
    "gdbstub/cli.py": {"emulator.board", "emulator.kvm", "emulator.models"},
}
PROTOCOL_PACKAGE = "gdbstub/protocol/"
PROTOCOL_MAY_IMPORT = {"gdbstub.api"}
SANS_IO = ["gdbstub/session.py", "gdbstub/api.py", "gdbstub/agent.py", "gdbstub/breakpoints.py",
           "gdbstub/registers.py"]
IO_MODULES = {"trio", "socket", "select", "selectors", "asyncio", "subprocess", "threading"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``; ``from a import b`` gives ``a.b`` and ``a``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def top(module: str) -> str:
    return module.split(".", 1)[0]


def _loaded_by(module: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter imports ``module``; its stdout lists the emulator, trio and construct
    modules that import loaded."""
    probe = (f"import sys, {module}; "
             "print(' '.join(m for m in sys.modules if m.startswith(('emulator.', 'trio', 'construct'))))")
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def check() -> list[str]:
    breaches: list[str] = []
    for path in sorted((ROOT / "emulator").rglob("*.py")):
        for line, module in imported_modules(path):
            if top(module) in ("gdbstub", "trio"):
                breaches.append(f"{path.relative_to(ROOT)}:{line}: emulator imports {module}")
    for path in sorted((ROOT / "gdbstub").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        allowed_emulator = EMULATOR_DOORS.get(name, set())
        for line, module in imported_modules(path):
            if top(module) == "trio" and name != TRIO_OWNER:
                breaches.append(f"{name}:{line}: imports trio (only {TRIO_OWNER} may)")
            if top(module) == "emulator" and module != "emulator":
                # "from emulator.kvm import X" lists emulator.kvm and emulator.kvm.X: the module decides.
                owner = next((door for door in allowed_emulator
                              if module == door or module.startswith(door + ".")), None)
                if owner is None:
                    breaches.append(f"{name}:{line}: imports {module} (allowed: "
                                    f"{', '.join(sorted(allowed_emulator)) or 'no emulator module'})")
            protocol = name.startswith(PROTOCOL_PACKAGE)
            if (name in SANS_IO or protocol) and top(module) in IO_MODULES:
                breaches.append(f"{name}:{line}: a sans-I/O module imports {module}")
            inside = module.startswith("gdbstub.protocol") or any(
                module == allowed or module.startswith(allowed + ".") for allowed in PROTOCOL_MAY_IMPORT)
            if protocol and top(module) in ("gdbstub", "emulator") and not inside:
                breaches.append(f"{name}:{line}: the protocol package imports {module} "
                                f"(allowed: {', '.join(sorted(PROTOCOL_MAY_IMPORT))})")
    table_loads = _loaded_by("emulator.register_table")
    if table_loads.returncode != 0:
        breaches.append(f"import emulator.register_table fails: {table_loads.stderr.strip()}")
    for module in sorted(table_loads.stdout.split()):
        if not module.startswith("emulator."):
            breaches.append(f"import emulator.register_table loads {module}")
    loaded = _loaded_by("gdbstub.session")
    extra = sorted(set(loaded.stdout.split()) - set(table_loads.stdout.split()))
    if loaded.returncode != 0 or extra:
        shown = ", ".join(extra[:6]) + (f" and {len(extra) - 6} more" if len(extra) > 6 else "")
        breaches.append(f"import gdbstub.session loads {shown or loaded.stderr.strip()}")
    return breaches


def main() -> int:
    breaches = check()
    for breach in breaches:
        print(breach)
    if not breaches:
        print("import rules: ok")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())

"""``hardware`` sits below the engine: it imports only ``apiary.errors`` and ``apiary.cells.sizing``
from it, and never the UI or the query engine. Its command module (``cli.py``, the CLI layer)
also reads ``apiary.config``, so ``apiary hardware`` shows the budget a node would use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hardware

PACKAGE = Path(hardware.__file__).parent
ALLOWED_FROM_APIARY = {"apiary.errors", "apiary.cells.sizing"}
ALLOWED_IN_CLI = ALLOWED_FROM_APIARY | {"apiary.config", "apiary.units"}  # units: pure text


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_only_the_allowed_engine_modules_are_imported() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        engine = {m for m in imported_modules(path) if m == "apiary" or m.startswith("apiary.")}
        allowed = ALLOWED_IN_CLI if path.name == "cli.py" else ALLOWED_FROM_APIARY
        assert engine <= allowed, f"{path.name} imports {engine - allowed}"
        others = imported_modules(path) & {"textual", "datafusion", "tui"}
        assert not others, f"{path.name} imports {others}"


def test_importing_hardware_loads_no_ui_or_query_engine() -> None:
    code = (
        "import sys, hardware, hardware.cli\n"
        "print(sorted(m for m in ('textual', 'datafusion', 'tui') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,  # the repository root, until `hardware` is installed too
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == "[]"

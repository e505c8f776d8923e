"""The SQL history file shared by ``apiary shell`` and ``apiary tui``: ``~/.apiary/sql_history``.

One statement per line (line breaks become spaces, nothing else changes: a string literal keeps
its spacing), oldest first: the format readline reads and writes, so the shell's arrow keys and
the TUI recall the same statements.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from apiary.storage.uri import apiary_home

KEPT = 1000  # statements loaded; the file itself is only ever appended to


def history_path() -> Path:
    return apiary_home() / "sql_history"


def load(path: Path | None = None, kept: int = KEPT) -> list[str]:
    """The last ``kept`` statements, oldest first; a missing or unreadable file is empty."""
    try:
        lines = (path or history_path()).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-kept:]


def remember(statement: str, path: Path | None = None) -> str | None:
    """Append ``statement`` (folded to one line); return the line, or None if it was not saved."""
    line = statement.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").strip()
    if not line:
        return None
    target = path or history_path()
    with contextlib.suppress(OSError):  # a read-only home must not break a query
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a") as history:
            history.write(line + "\n")
        return line
    return None

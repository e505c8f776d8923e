"""Read small kernel files under an injected root, where a missing file means "unknown"."""

from __future__ import annotations

from pathlib import Path


def read_text(path: Path) -> str | None:
    """The file's text, or None if it is missing or unreadable.

    Any OSError counts: besides "no such file", some sysfs attributes answer EINVAL or EPERM
    to a read, and detection must never fail because one source is unavailable.
    """
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_int(path: Path, base: int = 10) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def count_cpus(cpu_list: str) -> int | None:
    """How many CPUs a kernel CPU list names ("0-3", "0,2-3", "0-1,6"); None if unparseable."""
    total = 0
    for part in cpu_list.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            total += int(high or low) - int(low) + 1
        except ValueError:
            return None
    return total or None

"""Captured ``/proc`` + ``/sys`` trees, and a factory for small made-up ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

Tree = Callable[[dict[str, str | bytes]], tuple[Path, Path]]


@pytest.fixture
def captured() -> Callable[[str], tuple[Path, Path]]:
    """The (proc, sys) roots of a captured fixture tree."""

    def roots(name: str) -> tuple[Path, Path]:
        base = FIXTURES / name
        assert base.is_dir(), f"no fixture tree {name}"
        return base / "proc", base / "sys"

    return roots


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """Write ``{"proc/meminfo": "...", "sys/...": b"..."}`` under tmp_path; return (proc, sys)."""

    def make(files: dict[str, str | bytes]) -> tuple[Path, Path]:
        for relative, content in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        (tmp_path / "proc").mkdir(exist_ok=True)
        (tmp_path / "sys").mkdir(exist_ok=True)
        return tmp_path / "proc", tmp_path / "sys"

    return make

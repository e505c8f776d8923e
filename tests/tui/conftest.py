"""Fixtures for the TUI tests: a real local root holding one frame."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import farm_root


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A local storage root holding farm.sensors.temps (4 rows in 3 regions)."""
    rows = {"region": ["north", "north", "south", "west"], "temp": [1.5, 2.5, 3.0, 4.0]}
    return farm_root(str(tmp_path / "root"), rows)

"""Fixtures for the TUI tests: a real local root holding one frame."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from apiary import Apiary


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A local storage root holding farm.sensors.temps (4 rows in 2 regions)."""
    uri = str(tmp_path / "root")
    with Apiary("test", uri) as ap:
        ap.create_hive("farm")
        ap.create_box("farm", "sensors")
        ap.create_frame(
            "farm", "sensors", "temps", {"region": "string", "temp": "float64"}, ["region"]
        )
        table = pa.table({"region": ["north", "north", "south", "west"], "temp": [1.5, 2.5, 3, 4]})
        ap.write_to_frame("farm", "sensors", "temps", table)
    return uri
